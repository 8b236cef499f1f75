"""A recording fake server for mock transports, and the endpoints the core tests use."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

from selfhosted_core import Message
from tests.core import payloads

Route = tuple[int, bytes, dict[str, str]]


@dataclass
class FakeServer:
    """Answers by (method, path) with canned bytes and records every request it sees."""

    routes: dict[tuple[str, str], Route | Callable[[httpx2.Request], Route]] = field(
        default_factory=dict
    )
    requests: list[httpx2.Request] = field(default_factory=list)

    def on(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | Callable[[httpx2.Request], Route],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        if callable(body):
            self.routes[(method, path)] = body
            return
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        self.routes[(method, path)] = (status, raw, headers or {})

    def stream(self, path: str, body: bytes) -> None:
        self.on("POST", path, body, headers={"content-type": "text/event-stream"})

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx2.Response(404, content=b'{"error":{"message":"not found"}}')
        status, body, headers = route(request) if callable(route) else route
        return httpx2.Response(status, content=body, headers=headers)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


ENDPOINTS: list[dict[str, Any]] = [
    {
        "url": "http://chat.test:8080",
        "id": "tiny",
        "label": "chat-a",
        "capabilities": ["chat", "function_call", "structured_output"],
        "api_key": "key-for-chat",
        "token_modifier": 2.0,
    },
    {
        "url": "http://embed.test:8081/v1",
        "id": "minilm",
        "capabilities": ["embedding"],
        "dimension": 2,
    },
]


SERVER_SAMPLING_VALUES: dict[str, Any] = {
    "top_k": 40,
    "min_p": 0.05,
    "typical_p": 0.9,
    "repetition_penalty": 1.1,
    "repeat_penalty": 1.2,
    "logit_bias": {"15": -100},
    "reasoning_effort": "low",
}
"""A value for each server sampling parameter, as a caller of either adapter would give it."""


def chat_reply(request: httpx2.Request) -> Route:
    """A canned answer to any chat request, streamed when it asks for a stream."""
    if json.loads(request.content).get("stream"):
        return 200, payloads.LLAMA_STREAM, {"content-type": "text/event-stream"}
    return 200, payloads.LLAMA_OBJECT_ARGUMENTS, {"content-type": "application/json"}


def strict_json(body: bytes) -> Any:
    """`body` parsed as JSON that any server reads: no NaN or Infinity."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"sent {constant}, which is not JSON")

    return json.loads(body, parse_constant=refuse)


def user(text: str = "Hi") -> list[Message]:
    return [Message(role="user", content=text)]
