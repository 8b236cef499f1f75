"""A fault-injecting HTTP proxy in front of a real server, for the robustness tests.

``FaultProxy`` listens on ``127.0.0.1`` and runs its own asyncio loop in a daemon thread, so
sync and async tests drive it alike through thread-safe methods::

    with FaultProxy(chat_server.url) as proxy:
        proxy.inject(faults.cut(300))            # the next request only
        proxy.inject(faults.DROP, times=None)    # then every request, until proxy.clear()

Every connection carries one request: the proxy answers with ``Connection: close`` and closes,
except under ``STALE``, which relays the answer as reusable and then reads the next request sent
on that connection and closes without answering it (recorded with the fault ``STALE_NEXT``).
Pass-through opens a fresh upstream connection per request (``Connection: close`` upstream too)
and relays the raw response bytes until upstream closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

_T = TypeVar("_T")

Kind = Literal[
    "pass", "reset", "drop", "delay", "stall", "cut", "status", "html", "not_json", "endless",
    "stale", "stale_next",
]  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """One way to answer a request; use the constants and builders below, not the fields."""

    kind: Kind
    seconds: float = 0.0
    after_bytes: int = 0
    code: int = 0
    retry_after: float | None = None


PASS = Fault("pass")  # forward to upstream and relay the answer
RESET = Fault("reset")  # read the request, then abort with a TCP RST
DROP = Fault("drop")  # read the request, then close cleanly (FIN) without a byte
STALL = Fault("stall")  # read the request and never answer
HTML = Fault("html")  # 200 text/html with a web server's welcome page
NOT_JSON = Fault("not_json")  # 200 application/json whose body is not JSON
ENDLESS = Fault("endless")  # 200 SSE chunk every 50 ms, never [DONE]
STALE = Fault("stale")  # relay as keep-alive, then drop the next request on that connection
STALE_NEXT = Fault("stale_next")  # recorded only: the request that arrived on a stale connection
LOADING = Fault("status", code=503)  # llama-server's own "Loading model" reply


def delay(seconds: float) -> Fault:
    """Wait ``seconds``, then pass through."""
    return Fault("delay", seconds=seconds)


def cut(after_bytes: int) -> Fault:
    """Relay the response head and ``after_bytes`` raw body bytes, then close (FIN).

    The count is of body bytes as relayed, chunked framing (``1e4\\r\\n``) included.
    """
    return Fault("cut", after_bytes=after_bytes)


def status(code: int, retry_after: float | None = None) -> Fault:
    """Answer ``code`` without contacting upstream; 503 is llama-server's loading reply.

    Other codes get an OpenAI-shaped error body; ``retry_after`` adds a ``Retry-After`` header.
    """
    return Fault("status", code=code, retry_after=retry_after)


# tools/server/server-http.cpp of the llama.cpp vendored in llama-cpp-python 0.3.36 (what this
# project builds) writes this inline, keys in this order, as "application/json; charset=utf-8".
# Older examples/server/server.cpp sent format_error_response("Loading model",
# ERROR_TYPE_UNAVAILABLE), the same object with keys sorted: {"code":503,"message":...,"type":...}.
LOADING_BODY = b'{"error":{"message":"Loading model","type":"unavailable_error","code":503}}'
JSON_TYPE = "application/json; charset=utf-8"
HTML_BODY = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head></html>\n"
NOT_JSON_BODY = b'{"choices": [{"message": {"content": "trunc'
TICK = 0.05
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection"}


def error_body(code: int) -> bytes:
    """The OpenAI-shaped error body that ``status(code)`` sends for codes other than 503."""
    if code == 429:
        message, kind, short = "Rate limit reached for requests", "requests", "rate_limit_exceeded"
    else:
        message, kind, short = HTTPStatus(code).phrase, "server_error", None
    error = {"message": message, "type": kind, "param": None, "code": short}
    return json.dumps({"error": error}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it, and the fault it was answered with."""

    method: str
    path: str
    headers: dict[str, str]  # lowercase names; repeated headers joined with ", "
    body: bytes
    fault: Fault

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class FaultProxy:
    """An HTTP/1.1 proxy on ``127.0.0.1`` that misbehaves on demand; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        """Describe a proxy to ``upstream`` (``http://host:port``; any path is ignored)."""
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        self.port = 0
        self._lock = threading.Lock()
        self._queue: deque[tuple[Fault, int | None]] = deque()
        self._seen: list[Seen] = []
        self._errors: list[Exception] = []
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The proxy root, e.g. ``http://127.0.0.1:PORT``; paths are forwarded unchanged."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``url`` plus ``/v1``, like ``LlamaServer.base_url``."""
        return f"{self.url}/v1"

    @property
    def seen(self) -> list[Seen]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._seen)

    @property
    def connections(self) -> int:
        """Client connections being handled right now (0 once every client has gone)."""
        with self._lock:
            return self._open

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests (``None``: every one, until cleared)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None")
        with self._lock:
            self._queue.append((fault, times))

    def clear(self) -> None:
        """Drop every queued fault: pass-through from the next request on."""
        with self._lock:
            self._queue.clear()

    def refuse(self) -> None:
        """Close the listening socket: new connects get ECONNREFUSED, open ones carry on."""
        self._call(self._refuse())

    def accept(self) -> None:
        """Listen again, on the same port."""
        self._call(self._listen())

    def start(self) -> None:
        """Start the loop thread and listen on a free port."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy")
        self._thread.daemon = True
        self._thread.start()
        try:
            self._call(self._listen())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop listening, end every connection and task, and join the thread."""
        if self._loop is None or self._thread is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        # A connection the kernel had accepted as the proxy shut down may have started its
        # handler since; closing the loop over it would destroy it pending.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        # an exception in a connection handler is a bug in the proxy: surface it in the test
        if exc_info[1] is None and self._errors:
            raise self._errors[0]

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        assert self._loop is not None, "the proxy is not running"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            # reuse_address lets accept() re-bind the port while old connections sit in TIME_WAIT
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _refuse(self) -> None:
        # close() shuts the listening socket at once; wait_closed() would (3.12+) also wait
        # for every open connection, which a stalled client may hold for its whole timeout.
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _shutdown(self) -> None:
        await self._refuse()
        me = asyncio.current_task()
        while others := [task for task in asyncio.all_tasks() if task is not me]:
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_default_executor()

    def _next_fault(self) -> Fault:
        with self._lock:
            if not self._queue:
                return PASS
            fault, left = self._queue[0]
            if left == 1:
                self._queue.popleft()
            elif left is not None:
                self._queue[0] = (fault, left - 1)
            return fault

    def _record(self, request: Seen) -> None:
        with self._lock:
            self._seen.append(request)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._open += 1
        try:
            request = await _read_request(reader, self._next_fault)
            if request is not None:
                self._record(request)
                await self._apply(request, reader, writer)
                await writer.drain()
            writer.close()
            await writer.wait_closed()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client or upstream went away mid-way: that is the faults' business
        except asyncio.CancelledError:
            pass  # stop(); Python 3.11 logs a cancelled client_connected_cb task as an error
        except Exception as exc:
            with self._lock:
                self._errors.append(exc)
        finally:
            writer.close()
            with self._lock:
                self._open -= 1

    async def _apply(
        self, request: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        fault = request.fault
        match fault.kind:
            case "reset":
                # linger on with timeout 0 turns close into an RST instead of a FIN
                linger = struct.pack("ii", 1, 0)
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, linger
                )
                writer.transport.abort()
            case "drop":
                pass
            case "stall":
                await reader.read()  # until the client closes, or stop() cancels us
            case "delay":
                await asyncio.sleep(fault.seconds)
                await self._relay(request, writer)
            case "stale":
                await self._relay(request, writer)
                # Closing right now would race the client: httpx discards an idle pooled
                # connection that is already readable (our FIN), and the next request would
                # quietly succeed on a new one. Dropping that next request fails it every time.
                follow = await _read_request(reader, lambda: STALE_NEXT)
                if follow is not None:
                    self._record(follow)
            case "status" if fault.code == 503:
                writer.write(_reply(503, JSON_TYPE, LOADING_BODY, ["Server: llama.cpp"]))
            case "status":
                retry = [] if fault.retry_after is None else [f"Retry-After: {fault.retry_after:g}"]
                writer.write(_reply(fault.code, JSON_TYPE, error_body(fault.code), retry))
            case "html":
                writer.write(_reply(200, "text/html; charset=utf-8", HTML_BODY))
            case "not_json":
                writer.write(_reply(200, JSON_TYPE, NOT_JSON_BODY))
            case "endless":
                await _endless(request, reader, writer)
            case _:
                await self._relay(request, writer)

    async def _relay(self, request: Seen, writer: asyncio.StreamWriter) -> None:
        limit = request.fault.after_bytes if request.fault.kind == "cut" else None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.write(_reply(502, "text/plain", b"fault proxy: upstream unreachable"))
            return
        try:
            up_writer.write(_request_bytes(request))
            head = await up_reader.readuntil(b"\r\n\r\n")
            writer.write(_rewrite_head(head, keep_alive=request.fault.kind == "stale"))
            sent = 0
            while (limit is None or sent < limit) and (chunk := await up_reader.read(65536)):
                if limit is not None:
                    chunk = chunk[: limit - sent]
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
        finally:
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader, fault: Callable[[], Fault]) -> Seen | None:
    """Read one request (head and Content-Length body); ``None`` if the client closed first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, path, headers, body, fault())


def _request_bytes(request: Seen) -> bytes:
    headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
    lines = [f"{request.method} {request.path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()] + ["connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


def _rewrite_head(head: bytes, *, keep_alive: bool) -> bytes:
    lines = head[:-4].decode("latin-1").split("\r\n")
    kept = [line for line in lines if line.split(":")[0].strip().lower() not in _HOP_BY_HOP]
    # without a Connection header an HTTP/1.1 client assumes it may reuse the connection
    if not keep_alive:
        kept.append("Connection: close")
    return ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1")


def _reply(code: int, content_type: str, body: bytes, extra: list[str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {code} {HTTPStatus(code).phrase}", f"Content-Type: {content_type}"]
    lines += [f"Content-Length: {len(body)}", "Connection: close", *(extra or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _endless(
    request: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    model = "endless"
    with contextlib.suppress(ValueError, AttributeError):
        model = str(request.json().get("model", model))
    head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked"]
    writer.write(("\r\n".join([*head, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
    n = 0
    # the client's FIN marks the reader at EOF even though nobody reads: that ends the stream
    while not reader.at_eof():
        delta = {"role": "assistant", "content": ""} if n == 0 else {"content": f"{n} "}
        chunk = {
            "id": "chatcmpl-endless",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        event = b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        await asyncio.sleep(TICK)
        n += 1
