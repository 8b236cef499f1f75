"""Hostile and broken servers on real sockets: whatever a 200 reply holds, however large, slow,
endless or malformed it is, the call ends as a typed error in bounded time and memory, and a
stream keeps what it had delivered in `partial`.

Each server here is a thread pool on 127.0.0.1 whose handler plays one misbehaviour, counts the
body bytes it managed to send and notes when the client hung up. Timing bounds are loose (five
times the timeout) because the machines running the tests are shared.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from selfhosted_core import (
    ChatRequest,
    Config,
    EmbeddingRequest,
    EndpointTimeoutError,
    Provider,
    ResponseError,
    SelfHostedError,
)
from tests.core.harness import user
from tests.driver import Driver

MIB = 1024 * 1024
LIMIT = MIB
HUGE = 50 * MIB
KINDS = ["chat", "stream", "embed"]
MODES = ["sync", "async"]

CHAT_REPLY = (
    b'{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}'
)
EMBEDDING_REPLY = b'{"object":"list","model":"e","data":[{"index":0,"embedding":[0.5,0.5]}]}'
TICK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    b'"delta":{"content":"tick "},"finish_reason":null}]}\n\n'
)
FINISH = (
    b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)
HTML = (
    b"<!DOCTYPE html>\n<html>\n  <head><title>Sign in - Corporate SSO</title></head>\n"
    b"  <body><form action='/login'>...</form></body>\n</html>\n"
)

E = TypeVar("E", bound=SelfHostedError)


class Exchange:
    """One request as the misbehaving handler sees it, with ways to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: Hostile, kind: str) -> None:
        self.handler = handler
        self.server = server
        self.kind = kind
        self.chunked = False

    def start(self, content_type: str = "application/json", length: int | None = None) -> None:
        """Status line and headers; without `length` the body is chunked."""
        self.handler.send_response(200)
        self.handler.send_header("content-type", content_type)
        if length is None:
            self.chunked = True
            self.handler.send_header("transfer-encoding", "chunked")
        else:
            self.handler.send_header("content-length", str(length))
        self.handler.send_header("connection", "close")
        self.handler.end_headers()

    def send(self, data: bytes) -> bool:
        """Write body bytes; False once the client is gone or the test is over."""
        if self.server.stop.is_set():
            return False
        framed = b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        try:
            self.handler.wfile.write(framed)
        except OSError:
            self.server.disconnected.set()
            return False
        self.server.sent += len(data)
        return True

    def end(self) -> None:
        """The end of a chunked body (a body with a length just stops)."""
        if self.chunked:
            self.send(b"")

    def pause(self, seconds: float) -> bool:
        """Wait, unless the test ends first; True when the whole pause passed."""
        return not self.server.stop.wait(seconds)

    def reply(self, body: bytes, content_type: str = "application/json") -> None:
        self.start(content_type, len(body))
        self.send(body)


Behaviour = Callable[[Exchange], None]


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close, so none outlives its test.
    daemon_threads = False


class Hostile:
    """A threaded HTTP server on 127.0.0.1 whose every POST plays `behaviour`."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.disconnected = threading.Event()
        self.sent = 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # a client that neither reads nor hangs up cannot hold a thread

            def do_POST(self) -> None:
                self.close_connection = True
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/embeddings"):
                    kind = "embed"
                else:
                    kind = "stream" if request.get("stream") else "chat"
                try:
                    hostile.behaviour(Exchange(self, hostile, kind))
                except OSError:
                    hostile.disconnected.set()

            def do_GET(self) -> None:
                """A health check: `/health` is fine, what follows plays `behaviour`."""
                self.close_connection = True
                if self.path == "/health":
                    Exchange(self, hostile, "health").reply(b'{"status":"ok"}')
                    return
                try:
                    hostile.behaviour(Exchange(self, hostile, "models"))
                except OSError:
                    hostile.disconnected.set()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read `sent` and `disconnected` instead."""

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], Hostile]]:
    started: list[Hostile] = []

    def start(behaviour: Behaviour) -> Hostile:
        server = Hostile(behaviour)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def config(server: Hostile, **options: Any) -> Config:
    # One attempt: a resend would multiply the time a timeout takes and muddle the bounds.
    return Config(
        endpoints=[
            {"url": server.url, "id": "m", **options},
            {"url": server.url, "id": "e", "capabilities": ["embedding"], "dimension": 2,
             **options},
        ],
        routing={"max_attempts": 1},
    )  # fmt: skip


async def call(driver: Driver, kind: str) -> object:
    if kind == "embed":
        return await driver.embed(EmbeddingRequest(model="e", input=["x"]))
    request = ChatRequest(model="m", messages=user())
    if kind == "stream":
        return await driver.stream(request)
    return await driver.chat(request)


async def failure(
    mode: str, server: Hostile, kind: str, expected: type[E], **options: Any
) -> tuple[E, float]:
    """The error the call ends with, and the seconds it took to get there."""
    async with Provider(config(server, **options)) as provider:
        started = time.perf_counter()
        with pytest.raises(expected) as caught:
            await call(Driver(mode, provider), kind)
        return caught.value, time.perf_counter() - started


async def failure_in_bounded_memory(
    mode: str, server: Hostile, kind: str, **options: Any
) -> tuple[ResponseError, int]:
    """The `ResponseError` a call ends with, and the most memory Python held during it."""
    tracemalloc.start()
    try:
        error, _ = await failure(mode, server, kind, ResponseError, **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


def body_of(kind: str, chat: bytes, embed: bytes) -> bytes:
    return embed if kind == "embed" else chat


# --- bodies larger than max_response_bytes ---------------------------------------------------


def huge_json(exchange: Exchange) -> None:
    """A well-formed 50 MiB JSON reply (one long content string, or one long vector)."""
    if exchange.kind == "embed":
        head, piece, tail = b'{"data":[{"index":0,"embedding":[', b"0.5," * 16384, b"0.5]}]}"
    elif exchange.kind == "models":
        head, piece, tail = (
            b'{"object":"list","data":[{"id":"m","owned_by":"',
            b"x" * 65536,
            b'"}]}',
        )
    else:
        head = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"'
        piece, tail = b"x" * 65536, b'"},"finish_reason":"stop"}]}'
    count = HUGE // len(piece)
    exchange.start(length=len(head) + count * len(piece) + len(tail))
    if exchange.send(head) and all(exchange.send(piece) for _ in range(count)):
        exchange.send(tail)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_body_past_max_response_bytes_is_refused_without_reading_it_all(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(huge_json)
    error, peak = await failure_in_bounded_memory(mode, server, kind, max_response_bytes=LIMIT)
    assert "max_response_bytes" in error.message
    assert peak < 8 * MIB
    assert server.disconnected.wait(5)
    assert server.sent < HUGE // 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_health_check_reads_no_more_than_max_response_bytes(
    serve: Callable[[Behaviour], Hostile], mode: str
) -> None:
    server = serve(huge_json)
    tracemalloc.start()
    try:
        async with Provider(config(server, max_response_bytes=LIMIT)) as provider:
            report = await Driver(mode, provider).health()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert {(health.status.value, health.detail) for health in report.endpoints} == {
        ("down", f"response body exceeds max_response_bytes ({LIMIT} bytes)")
    }
    # Both endpoints are checked, at once when async; each stops at the limit.
    assert peak < 8 * MIB * len(report.endpoints)
    assert server.disconnected.wait(5)
    assert server.sent < HUGE // 2


def endless_line(exchange: Exchange) -> None:
    """An event stream whose first `data:` line never ends (capped at 50 MiB)."""
    exchange.start("text/event-stream")
    exchange.send(b'data: {"choices":[{"index":0,"delta":{"content":"')
    piece = b"x" * 65536
    while exchange.server.sent < HUGE and exchange.send(piece):
        pass
    exchange.end()


@pytest.mark.parametrize("mode", MODES)
async def test_a_stream_line_that_never_ends_is_refused_in_bounded_memory(
    serve: Callable[[Behaviour], Hostile], mode: str
) -> None:
    server = serve(endless_line)
    error, peak = await failure_in_bounded_memory(mode, server, "stream", max_response_bytes=LIMIT)
    assert "max_response_bytes" in error.message
    assert error.partial is None
    assert peak < 8 * MIB
    assert server.disconnected.wait(5)
    assert server.sent < HUGE // 2


# --- malformed 200 replies -------------------------------------------------------------------

DEPTH = 100_000
DEEP_CHAT = (
    b'{"choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"}],"timings":{"x":'
    + b"[" * DEPTH
    + b"]" * DEPTH
    + b"}}"
)
DEEP_EMBED = b'{"data":[{"index":0,"embedding":' + b"[" * DEPTH + b"]" * DEPTH + b"}]}"
BAD_UTF8_CHAT = (
    b'{"choices":[{"index":0,"message":{"content":"caf\xc3\x28 \xff"},"finish_reason":"stop"}]}'
)
BAD_UTF8_EMBED = b'{"model":"e\xff\xfe","data":[{"index":0,"embedding":[0.5,0.5]}]}'


def malformed(chat: bytes, embed: bytes) -> Behaviour:
    """A 200 JSON reply with `chat` (as the one event of a stream) or `embed` as its body."""

    def behaviour(exchange: Exchange) -> None:
        if exchange.kind == "stream":
            exchange.reply(b"data: " + chat + b"\n\n" + FINISH, "text/event-stream")
        else:
            exchange.reply(body_of(exchange.kind, chat, embed))

    return behaviour


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_deeply_nested_json_is_a_response_error(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(malformed(DEEP_CHAT, DEEP_EMBED))
    error, _ = await failure(mode, server, kind, ResponseError)
    assert "recursion limit" in error.message


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_invalid_utf8_is_a_response_error(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(malformed(BAD_UTF8_CHAT, BAD_UTF8_EMBED))
    error, _ = await failure(mode, server, kind, ResponseError)
    assert "invalid unicode code point" in error.message


def html_page(exchange: Exchange) -> None:
    """What an SSO proxy in front of the server answers: 200 and a login page."""
    exchange.reply(HTML, "text/html; charset=utf-8")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_an_html_page_is_a_response_error_naming_text_html(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(html_page)
    error, _ = await failure(mode, server, kind, ResponseError)
    assert "text/html" in error.message
    assert "Sign in - Corporate SSO" in error.message


NAN_EMBED = b'{"data":[{"index":0,"embedding":[NaN,Infinity]}]}'
HUGE_NUMBER_EMBED = b'{"data":[{"index":0,"embedding":[1e999999,0.5]}]}'


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body", [NAN_EMBED, HUGE_NUMBER_EMBED], ids=["nan", "1e999999"])
async def test_an_embedding_that_is_not_finite_is_a_response_error(
    serve: Callable[[Behaviour], Hostile], mode: str, body: bytes
) -> None:
    server = serve(malformed(b"", body))
    await failure(mode, server, "embed", ResponseError)


def tool_call_reply(arguments: bytes) -> bytes:
    return (
        b'{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"index":0,'
        b'"id":"call_1","type":"function","function":{"name":"f","arguments":'
        + arguments
        + b'}}]},"finish_reason":"tool_calls"}]}'
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["chat", "stream"])
@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (json.dumps("[" * DEPTH).encode(), "nested too deeply"),
        (b'"{\\"x\\": NaN}"', "NaN"),
        (b'{"x": Infinity}', "Infinity"),
    ],
    ids=["deep-string", "nan-string", "infinity-object"],
)
async def test_tool_call_arguments_that_are_not_json_make_an_invalid_call(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str, arguments: bytes, error: str
) -> None:
    server = serve(malformed(tool_call_reply(arguments), b""))
    async with Provider(config(server)) as provider:
        driver, request = Driver(mode, provider), ChatRequest(model="m", messages=user())
        if kind == "stream":
            _, final = await driver.stream(request)
        else:
            final = await driver.chat(request)
    assert final.tool_calls == ()
    (invalid,) = final.invalid_tool_calls
    assert error in invalid.error


ODD_NUMBERS_CHAT = (
    b'{"created":1e999999,"choices":[{"index":0,"message":{"content":"Hi."},'
    b'"finish_reason":"stop"}],"timings":{"prompt_ms":NaN,"predicted_per_second":Infinity,'
    b'"predicted_n":3}}'
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["chat", "stream"])
async def test_non_finite_numbers_in_informational_fields_are_dropped(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(malformed(ODD_NUMBERS_CHAT, b""))
    async with Provider(config(server)) as provider:
        driver, request = Driver(mode, provider), ChatRequest(model="m", messages=user())
        if kind == "stream":
            _, final = await driver.stream(request)
        else:
            final = await driver.chat(request)
    assert final.content == "Hi."
    assert final.created is None
    assert final.timings == {"predicted_n": 3}
    json.dumps(final.timings, allow_nan=False)


# --- deadlines -------------------------------------------------------------------------------


def ticking(exchange: Exchange) -> None:
    """A reply that never ends but is never silent: a stream chunk or a JSON space every 20 ms.

    Capped at 8 s, after which it ends (a stream without [DONE]), so a client without a total
    deadline fails the test rather than hanging it.
    """
    if exchange.kind == "stream":
        head, tick, tail = b"", TICK, b""
    else:
        whole = body_of(exchange.kind, CHAT_REPLY, EMBEDDING_REPLY)
        head, tick, tail = whole[:-1], b" ", b"}"
    exchange.start("text/event-stream" if exchange.kind == "stream" else "application/json")
    deadline = time.monotonic() + 8
    if not exchange.send(head or tick):
        return
    while time.monotonic() < deadline and exchange.pause(0.02) and exchange.send(tick):
        pass
    if tail:
        exchange.send(tail)
    exchange.end()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_that_never_ends_times_out_at_the_total_deadline(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(ticking)
    error, elapsed = await failure(mode, server, kind, EndpointTimeoutError, timeout=1.0)
    assert elapsed < 5.0
    if kind == "stream":
        assert error.partial is not None
        assert error.partial.content is not None
        assert error.partial.content.startswith("tick tick ")


def falling_silent(exchange: Exchange) -> None:
    """Part of the reply, then 4 s of silence, then the rest."""
    if exchange.kind == "stream":
        first, rest = TICK * 2, FINISH
        exchange.start("text/event-stream")
    else:
        whole = body_of(exchange.kind, CHAT_REPLY, EMBEDDING_REPLY)
        first, rest = whole[: len(whole) // 2], whole[len(whole) // 2 :]
        exchange.start(length=len(whole))
    if exchange.send(first) and exchange.pause(4) and exchange.send(rest):
        exchange.end()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_that_falls_silent_times_out_at_the_idle_timeout(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(falling_silent)
    error, elapsed = await failure(
        mode, server, kind, EndpointTimeoutError, timeout=30.0, idle_timeout=0.3
    )
    assert elapsed < 1.5
    if kind == "stream":
        assert error.partial is not None
        assert error.partial.content == "tick tick "


def slow_to_start(exchange: Exchange) -> None:
    """A correct reply, after 2 s without a byte."""
    if not exchange.pause(2):
        return
    if exchange.kind == "stream":
        exchange.reply(TICK + FINISH, "text/event-stream")
    else:
        exchange.reply(body_of(exchange.kind, CHAT_REPLY, EMBEDDING_REPLY))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_slow_to_start_times_out_at_the_first_byte_timeout(
    serve: Callable[[Behaviour], Hostile], mode: str, kind: str
) -> None:
    server = serve(slow_to_start)
    error, elapsed = await failure(
        mode, server, kind, EndpointTimeoutError, timeout=30.0, first_byte_timeout=0.3
    )
    assert elapsed < 1.5
    assert error.partial is None


def cut_off(exchange: Exchange) -> None:
    """Two chunks of a stream, then the end of the body: no finish reason, no [DONE]."""
    exchange.start("text/event-stream")
    if exchange.send(TICK * 2):
        exchange.end()


@pytest.mark.parametrize("mode", MODES)
async def test_a_stream_cut_off_before_it_finished_is_a_response_error_with_partial(
    serve: Callable[[Behaviour], Hostile], mode: str
) -> None:
    server = serve(cut_off)
    error, _ = await failure(mode, server, "stream", ResponseError)
    assert "stream ended before the answer finished" in error.message
    assert error.partial is not None
    assert error.partial.content == "tick tick "
