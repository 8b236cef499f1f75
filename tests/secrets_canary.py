"""Canary secrets, servers that echo them back, and the check that no text produced shows them.

Every test of secret handling configures an endpoint with `KEY` as its `api_key` and `HEADER`
as the value of its `X-Tenant-Token` header, provokes some output (a repr, a log, an error, a
serialised model, the command line's output) and asserts neither canary appears in it. The
echoing servers quote the request's own headers back, as real servers and proxies do in their
error messages ("invalid key Bearer sk-..."), so a test also proves the secret was sent.
"""

from __future__ import annotations

import json
import pickle
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2

from selfhosted_core import SelfHostedError

KEY = "sk-canary-7f3a"
"""The endpoint's `api_key`."""

HEADER_NAME = "X-Tenant-Token"
HEADER = "hdr-canary-5c1e"
"""The value of the endpoint's secret header."""

REDIS_PASSWORD = "redis-canary-2e9b"
"""The password in `routing.state.url`."""

CANARIES = (KEY, HEADER, REDIS_PASSWORD)

"""Why a test of an echoed secret fails until `CallPlan` hands the endpoint's secrets on."""

CHAT_REPLY = (
    b'{"id":"c1","object":"chat.completion","model":"tiny","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'
)
STREAM_REPLY = (
    b'data: {"id":"c2","object":"chat.completion.chunk","model":"tiny","choices":[{"index":0,'
    b'"delta":{"content":"Hi."},"finish_reason":null}]}\n\n'
    b'data: {"id":"c2","object":"chat.completion.chunk","model":"tiny","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
    b"data: [DONE]\n\n"
)
EMBEDDING_REPLY = (
    b'{"object":"list","model":"minilm","data":[{"index":0,"embedding":[0.6,0.8]}],'
    b'"usage":{"prompt_tokens":2,"total_tokens":2}}'
)
MODELS_REPLY = (
    b'{"object":"list","data":[{"id":"tiny","object":"model","owned_by":"llamacpp"},'
    b'{"id":"minilm","object":"model","owned_by":"llamacpp"}]}'
)

Answer = tuple[int, dict[str, str], bytes]
"""Status, headers and body of one reply."""


def chat_endpoint(url: str, **extra: Any) -> dict[str, Any]:
    """A chat endpoint carrying both canaries."""
    return {
        "url": url,
        "id": "tiny",
        "label": "chat-a",
        "capabilities": ["chat"],
        "api_key": KEY,
        "headers": {HEADER_NAME: HEADER},
        **extra,
    }


def embedding_endpoint(url: str, **extra: Any) -> dict[str, Any]:
    """An embedding endpoint carrying both canaries."""
    return {
        "url": url,
        "id": "minilm",
        "label": "embed-a",
        "capabilities": ["embedding"],
        "dimension": 2,
        "api_key": KEY,
        "headers": {HEADER_NAME: HEADER},
        **extra,
    }


def assert_hidden(text: str, where: str = "output") -> None:
    """Fail naming the canary and where it showed, with the text around it."""
    for canary in CANARIES:
        at = text.find(canary)
        assert at < 0, f"{where} shows {canary!r}: ...{text[max(0, at - 120) : at + 60]!r}..."


def assert_sent(headers: Mapping[str, str]) -> None:
    """The request carried both secrets, so an echo of it would quote them."""
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered.get("authorization") == f"Bearer {KEY}"
    assert lowered.get(HEADER_NAME.lower()) == HEADER


def echo_message(headers: Mapping[str, str]) -> str:
    """What a careless server says: the credentials it was sent, quoted back."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return f"bad key {lowered.get('authorization')} for tenant {lowered.get(HEADER_NAME.lower())}"


def echo_error(headers: Mapping[str, str]) -> bytes:
    """An OpenAI-shaped error body quoting the request's credentials."""
    return json.dumps({"error": {"message": echo_message(headers), "type": "auth"}}).encode()


def echo_stream(headers: Mapping[str, str]) -> bytes:
    """A stream that starts answering, then sends an error event quoting the credentials."""
    event = json.dumps({"error": {"code": 500, "message": echo_message(headers)}})
    return (
        b'data: {"id":"c3","object":"chat.completion.chunk","model":"tiny","choices":[{"index":0,'
        b'"delta":{"content":"Partial"},"finish_reason":null}]}\n\n' + f"data: {event}\n\n".encode()
    )


def error_text(error: BaseException) -> str:
    """Everything an error shows: str, repr, attributes, traceback, its chain (`__cause__` and
    `__context__`, suppressed or not) and, for our errors, a copy that went through pickle."""
    parts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        for name in ("message", "body", "error_type"):
            parts.append(repr(getattr(current, name, None)))
        parts.append("".join(traceback.format_exception(current)))
        if isinstance(current, SelfHostedError):  # ours pickle; LiteLLM's, for one, do not
            copy = pickle.loads(pickle.dumps(current))
            parts += [str(copy), repr(copy), repr(vars(copy))]
        pending += [current.__cause__, current.__context__]
    return "\n".join(parts)


def sse_requested(body: bytes) -> bool:
    """Whether a chat request body asks for a stream."""
    try:
        return bool(json.loads(body).get("stream"))
    except ValueError:
        return False


def answer_ok(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """A llama-server-like endpoint that answers everything."""
    json_type = {"content-type": "application/json"}
    if path.endswith("/chat/completions"):
        if sse_requested(body):
            return 200, {"content-type": "text/event-stream"}, STREAM_REPLY
        return 200, json_type, CHAT_REPLY
    if path.endswith("/embeddings"):
        return 200, json_type, EMBEDDING_REPLY
    if path.endswith("/models"):
        return 200, json_type, MODELS_REPLY
    return 200, json_type, b'{"status":"ok"}'


def answer_echo(status: int) -> Callable[[str, str, Mapping[str, str], bytes], Answer]:
    """An endpoint that refuses every call with `status`, quoting the credentials it got."""

    def answer(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        return status, {"content-type": "application/json"}, echo_error(headers)

    return answer


def mock_transport(
    answer: Callable[[str, str, Mapping[str, str], bytes], Answer],
    seen: list[httpx2.Request] | None = None,
) -> httpx2.MockTransport:
    """`answer` as a mock transport for a `Provider`, recording requests into `seen`."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        status, headers, body = answer(
            request.method, request.url.path, dict(request.headers), request.content
        )
        return httpx2.Response(status, headers=headers, content=body)

    return httpx2.MockTransport(handle)


@dataclass
class EchoServer:
    """A threaded HTTP server on 127.0.0.1 answering with `answer`; records request headers."""

    answer: Callable[[str, str, Mapping[str, str], bytes], Answer] = answer_ok
    seen: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = dict(self.headers.items())
                server.seen.append(headers)
                status, extra, content = server.answer(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in {"content-length": str(len(content)), **extra}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _reply

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read `seen`."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's base URL (without `/v1`)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def echo_server(
    answer: Callable[[str, str, Mapping[str, str], bytes], Answer],
) -> Iterator[EchoServer]:
    """A fixture body: an `EchoServer` with `answer`, closed afterwards."""
    server = EchoServer(answer)
    try:
        yield server
    finally:
        server.close()
