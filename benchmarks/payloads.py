"""The canned replies: one chat answer, one 200-delta stream, one 16 x 384 embeddings list.

They are what vLLM and llama-server send (field for field, `usage` included), built once, so
the server only copies bytes. Every variant is checked against `CHAT_TEXT`, `STREAM_TEXT` and
`EMBEDDING_ROWS` before it is timed.
"""

from __future__ import annotations

import json
import random

MODEL = "bench"
CREATED = 1764000000
CHAT_TEXT = "The quick brown fox jumps over the lazy dog, and the benchmark measures the client."
STREAM_DELTAS = 200
STREAM_TEXT = "".join(f"tok{index} " for index in range(STREAM_DELTAS))
EMBEDDING_ROWS = 16
EMBEDDING_DIMENSION = 384
USAGE = {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def chat_body() -> bytes:
    """A non-streamed chat completion."""
    return _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": CHAT_TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def stream_events() -> list[bytes]:
    """The SSE events of a streamed answer: 200 content deltas, the finish, usage, `[DONE]`."""
    chunks = [
        _chunk(
            {"role": "assistant", "content": f"tok{0} "}
            if index == 0
            else {"content": f"tok{index} "},
            None,
        )
        for index in range(STREAM_DELTAS)
    ]
    chunks.append(_chunk({}, "stop"))
    chunks.append(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [],
            "usage": USAGE,
        }
    )
    events = [b"data: " + _dumps(chunk) + b"\n\n" for chunk in chunks]
    events.append(b"data: [DONE]\n\n")
    return events


def embedding_rows() -> list[list[float]]:
    """The vectors, seeded, with the 7-8 significant digits servers print."""
    generator = random.Random(384)
    return [
        [round(generator.uniform(-0.2, 0.2), 8) for _ in range(EMBEDDING_DIMENSION)]
        for _ in range(EMBEDDING_ROWS)
    ]


EMBEDDING_ROWS_DATA = embedding_rows()


def embeddings_body() -> bytes:
    """An embeddings list of 16 vectors of 384 floats."""
    return _dumps(
        {
            "object": "list",
            "model": MODEL,
            "data": [
                {"object": "embedding", "index": index, "embedding": vector}
                for index, vector in enumerate(EMBEDDING_ROWS_DATA)
            ],
            "usage": {"prompt_tokens": 64, "total_tokens": 64},
        }
    )


EMBEDDING_INPUTS = [f"benchmark sentence number {index}" for index in range(EMBEDDING_ROWS)]
