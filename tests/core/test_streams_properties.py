"""Properties of reading an answer: whatever a 200 reply holds, however it is split into reads,
a call ends with a complete answer or a typed error, and never reads past `max_response_bytes`.

The typed error is a `ResponseError` (malformed, cut off, too large), or the `APIStatusError`
the stream itself reported (an error event, or a JSON body that is an error). A complete answer
holds only what JSON can carry, as the adapters (a LiteLLM proxy) serialise it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from typing import Any

import httpx2
from hypothesis import event, example, given
from hypothesis import strategies as st

from selfhosted_core import (
    APIStatusError,
    ChatRequest,
    ChatResponse,
    Config,
    Provider,
    ResponseError,
)
from tests.core import payloads
from tests.core.harness import user
from tests.strategies import json_scalars, json_values, one_in

LIMIT = 8192
"""The endpoint's `max_response_bytes`: small, so that replies pass it."""

ENDPOINT = {
    "url": "http://chat.test:8080",
    "id": "tiny",
    "capabilities": ["chat"],
    "max_response_bytes": LIMIT,
}

NUMBERS = st.one_of(
    st.integers(-3, 100),
    st.sampled_from([2**53 + 1, 2**63, 1e308, -0.0, 1.5]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXTS = st.one_of(
    st.sampled_from(["", "Hi", "<think>", "</think>", "<th", " "]), st.text(max_size=8)
)


def sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's own kind of value, one time in eight any JSON a broken server might send."""
    return one_in(8).flatmap(lambda junk: json_scalars if junk else strategy)


ARGUMENTS = st.one_of(
    st.sampled_from(['{"city": ', '"Paris"}', "{}", '{"n": 1e999}', '{"n": NaN}', "[1]"]),
    json_values,
)
HUGE_ARGUMENTS = st.sampled_from(["[" * 3_000, '{"n": ' + "1" * 3_000 + "}"])
"""Past what Python's parser takes: nesting deeper than its recursion limit, or (in a tool call
split into deltas) an integer of more than 4,300 digits."""

tool_call_deltas = st.fixed_dictionaries(
    {},
    optional={
        "index": sometimes(st.integers(-1, 3)),
        "id": sometimes(st.sampled_from(["call_1", "call_2", ""])),
        "type": sometimes(st.just("function")),
        "function": st.fixed_dictionaries(
            {},
            optional={
                "name": sometimes(st.sampled_from(["get_weather", "now", ""])),
                "arguments": one_in(10).flatmap(lambda huge: HUGE_ARGUMENTS if huge else ARGUMENTS),
            },
        ),
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "role": sometimes(st.just("assistant")),
        "content": sometimes(TEXTS),
        "reasoning_content": sometimes(TEXTS),
        "reasoning": sometimes(TEXTS),
        "tool_calls": sometimes(st.lists(tool_call_deltas, max_size=2)),
    },
)
usage = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": NUMBERS,
        "completion_tokens": NUMBERS,
        "total_tokens": NUMBERS,
        "prompt_tokens_details": st.fixed_dictionaries({}, optional={"cached_tokens": NUMBERS}),
        "completion_tokens_details": st.fixed_dictionaries(
            {}, optional={"reasoning_tokens": NUMBERS}
        ),
    },
)
chunks = st.fixed_dictionaries(
    {},
    optional={
        "id": sometimes(st.just("chatcmpl-1")),
        "model": sometimes(st.just("tiny")),
        "created": NUMBERS,
        "system_fingerprint": sometimes(st.just("b6000")),
        "choices": sometimes(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "index": sometimes(st.integers(0, 1)),
                        "delta": sometimes(messages),
                        "message": sometimes(messages),
                        "finish_reason": sometimes(
                            st.sampled_from(["stop", "length", "tool_calls", "eos", "tool"])
                        ),
                    },
                ),
                max_size=2,
            )
        ),
        "usage": sometimes(usage),
        "timings": sometimes(
            st.dictionaries(st.sampled_from(["prompt_ms", "n"]), NUMBERS | json_values, max_size=2)
        ),
        "error": sometimes(
            st.fixed_dictionaries(
                {}, optional={"message": TEXTS, "code": NUMBERS | TEXTS, "type": TEXTS}
            )
        ),
    },
)
event_data = st.one_of(
    chunks.map(json.dumps).map(str.encode),  # NaN and Infinity included, as Python writes them
    st.sampled_from([b"[DONE]", b"", b" ", b"{", b"[]", b"null", b'"text"', b"{}"]),
    json_values.map(json.dumps).map(str.encode),
    st.binary(max_size=20),
)
events = st.one_of(
    chunks.map(lambda chunk: b"data: " + json.dumps(chunk).encode() + b"\n\n"),
    st.tuples(st.sampled_from([b"data: ", b"data:", b"error: "]), event_data).map(
        lambda parts: parts[0] + parts[1].replace(b"\r", b"").replace(b"\n", b"") + b"\n\n"
    ),
    st.sampled_from([b": keep-alive\n\n", b"event: error\n", b"\n", b"data: [DONE]\n\n"]),
    st.binary(max_size=30),
)
STREAM_TYPES = ["text/event-stream", "text/event-stream; charset=utf-8", "application/json", ""]
WHOLE_TYPES = [*["application/json"] * 5, "text/event-stream", "text/html", ""]


whole_bodies = st.builds(
    lambda chunk, message: json.dumps(
        {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], **chunk}
    ).encode(),
    chunks,
    messages,
)
"""A non-streamed answer: one choice with a message, and whatever else."""

FINISHED = b'{"choices": [{"index": 0, "message": {}, "finish_reason": "stop"}]'
"""The start of a finished non-streamed answer, for its explicit examples to end."""

TOOL_CALL = (
    b'{"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"tool_calls": '
    b'[{"id": "c1", "function": {"name": "f", "arguments": "%s"}}]}}]}'
)
"""A non-streamed answer calling a tool with these arguments (JSON text, escaped)."""

FINISH = (
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
)


@st.composite
def replies(draw: st.DrawFn) -> tuple[str, str, list[bytes]]:
    """How the answer is asked for, the reply's content type, and its body as the reads that
    bring it: mostly what was asked for, a stream that ends or one JSON body.
    """
    how = draw(st.sampled_from(["chat", "achat", "stream", "astream"]))
    streamed = how in ("stream", "astream")
    content_type = draw(st.sampled_from(STREAM_TYPES if streamed else WHOLE_TYPES))
    if content_type.startswith("application/json"):
        body = draw(st.one_of(whole_bodies, event_data))
    else:
        body = b"".join(draw(st.lists(events, max_size=6)))
        body += b"".join(FINISH[: draw(st.sampled_from([0, 1, 2]))])
    excess = draw(st.sampled_from([*[None] * 18, "long answer", "long line"]))
    if excess == "long answer":
        # Past the limit in all, each event small.
        body += payloads.LLAMA_STREAM * (LIMIT // len(payloads.LLAMA_STREAM) + 1)
    elif excess == "long line":
        body += b": " + b"x" * (LIMIT + 10) + b"\n"
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=6)))
    edges = [0, *cuts, len(body)]
    return (
        how,
        content_type,
        [body[start:end] for start, end in pairwise(edges)],
    )


class Reads(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A body arriving as `pieces`, counting the bytes the client took."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.taken += len(piece)
            yield piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.taken += len(piece)
            yield piece


async def answer(provider: Provider, how: str) -> ChatResponse:
    request = ChatRequest(model="tiny", messages=user())
    if how == "chat":
        return provider.chat(request)
    if how == "achat":
        return await provider.achat(request)
    if how == "stream":
        with provider.stream(request) as stream:
            for _ in stream:
                pass
            return stream.final_response()
    async with provider.astream(request) as astream:
        async for _ in astream:
            pass
        return await astream.final_response()


def json_clean(value: Any) -> bool:
    """Whether strict JSON can hold `value` (no NaN, no infinity anywhere)."""
    try:
        json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        return False
    return True


@given(replies())
@example(("stream", "text/event-stream", [payloads.LLAMA_STREAM]))
@example(("chat", "application/json", [payloads.LLAMA_OBJECT_ARGUMENTS]))
@example(
    ("chat", "application/json", [FINISHED + b', "usage": {"total_tokens": 1' + b"0" * 400 + b"}}"])
)
@example(("chat", "application/json", [TOOL_CALL % b'{\\"n\\": 1e999}']))
@example(("stream", "application/json", [FINISHED + b', "timings": {"slot": {"ms": NaN}}}']))
def test_any_reply_split_anywhere_is_an_answer_or_a_typed_error_within_the_limit(
    reply: tuple[str, str, list[bytes]],
) -> None:
    how, content_type, pieces = reply
    body = Reads(pieces)
    headers = {"content-type": content_type} if content_type else {}
    transport = httpx2.MockTransport(lambda _: httpx2.Response(200, headers=headers, stream=body))
    config = Config(endpoints=[ENDPOINT], routing={"max_attempts": 1})
    provider = Provider(config, transport=transport, async_transport=transport)
    try:
        response = asyncio.run(answer(provider, how))
    except (ResponseError, APIStatusError) as exc:
        event(f"refused: {type(exc).__name__}")
        response = None
    finally:
        provider.close()
    # Nothing past the limit is read: at most the read that crossed it.
    assert body.taken <= LIMIT + max(map(len, pieces), default=0)
    if response is not None:
        event("answered")
        assert sum(map(len, pieces)) <= LIMIT
        assert json_clean(dataclasses.asdict(response)), response
        for call in response.tool_calls:
            assert isinstance(call.args, dict)
        if response.usage is not None:
            assert math.isfinite(response.usage.billed_tokens)
