"""A canned OpenAI-compatible server: every answer is prebuilt bytes, copied to the socket.

Run as `python -m benchmarks.server`; it prints its port and serves until stdin closes. The
runner measures its CPU per request against the cheapest client's, so a server that is not
cheap enough to leave the clients deciding the figures is reported, not hidden.

A stream is sent as one chunked-encoding chunk per event, all in one write: the clients parse
the same events a real server sends, without the server paying a write per event.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

from benchmarks import payloads

_JSON = b"application/json"


def _plain(body: bytes, content_type: bytes = _JSON, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _chunked(events: list[bytes]) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache"
        b"\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    chunks = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    return head + b"".join(chunks) + b"0\r\n\r\n"


CHAT = _plain(payloads.chat_body())
STREAM = _chunked(payloads.stream_events())
EMBEDDINGS = _plain(payloads.embeddings_body())
MODELS = _plain(b'{"object":"list","data":[{"id":"bench","object":"model","owned_by":"bench"}]}')
HEALTH = _plain(b'{"status":"ok"}')
NOT_FOUND = _plain(b'{"error":{"message":"not found"}}', status=b"404 Not Found")


def answer(method: bytes, path: bytes, body: bytes) -> bytes:
    """The canned reply to one request."""
    if method == b"POST" and path.endswith(b"/chat/completions"):
        streamed = b'"stream":true' in body or b'"stream": true' in body
        return STREAM if streamed else CHAT
    if method == b"POST" and path.endswith(b"/embeddings"):
        return EMBEDDINGS
    if path.endswith(b"/models"):
        return MODELS
    if path.endswith(b"/health"):
        return HEALTH
    return NOT_FOUND


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive: headers, a content-length body, the canned answer; repeat."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            start = end + 4
            if len(self.buffer) < start + length:
                return
            method, path, _ = head.split(b" ", 2)
            body = self.buffer[start : start + length]
            self.buffer = self.buffer[start + length :]
            assert self.transport is not None
            self.transport.write(answer(method, path, body))


async def serve(port: int = 0) -> None:
    """Serve on 127.0.0.1 until stdin closes; print the port first."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main() -> None:
    """Entry point: uvloop when installed, for the cheapest server Python can be."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
