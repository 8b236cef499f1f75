"""The assembler on one whole reply: what it keeps of the server's informational fields."""

from __future__ import annotations

import json

from selfhosted_core._assemble import Assembler
from selfhosted_core.profiles import ServerKind


def assembler() -> Assembler:
    return Assembler(model="m", endpoint="e", server=ServerKind.GENERIC, token_modifier=1.0)


def test_timings_holding_nan_or_infinity_at_any_depth_are_dropped() -> None:
    body = (
        b'{"choices":[{"index":0,"message":{"content":"Hi."},"finish_reason":"stop"}],'
        b'"timings":{"n":3,"per_token":[1.5,NaN],"slots":{"ms":1e999},"prompt_ms":Infinity}}'
    )
    final = assembler().feed_response(body)
    assert final.timings == {"n": 3}
    json.dumps(final.timings, allow_nan=False)


# A vLLM 0.32.0 stream with `stream_options.include_usage`, as it came from a real server: only
# the usage chunk carries `system_fingerprint`.
VLLM_STREAM = [
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":" How"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":" can"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":" I"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":" help"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{"content":"?"},"logprobs":null,"finish_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop","stop_reason":null,"token_ids":null}]}',
    b'{"id":"chatcmpl-9b8a0a663b1689b7","object":"chat.completion.chunk","created":1796691174,"model":"tiny","choices":[],"usage":{"prompt_tokens":61,"total_tokens":69,"completion_tokens":8,"prompt_tokens_details":{"cached_tokens":0,"created_cache_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"vllm-0.32.0-9a9c1114"}',
    b"[DONE]",
]


def test_system_fingerprint_is_taken_from_whichever_chunk_carries_it() -> None:
    stream = assembler()
    for data in VLLM_STREAM:
        stream.feed_event(data)
    final = stream.result()
    assert stream.done
    assert (final.content, final.system_fingerprint) == (
        "Hello! How can I help?",
        "vllm-0.32.0-9a9c1114",
    )
    assert final.usage is not None
    assert final.usage.cached_prompt_tokens == 0
