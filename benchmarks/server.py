"""A canned OpenAI-compatible server: every answer is prebuilt bytes, copied to the socket.

Run as `python -m benchmarks.server`; it prints its port and serves until stdin closes. The
replies are built here, from `benchmarks.payloads`; `canned_server.c` serves them, compiled
once per source and replies into `~/.cache/selfhosted-llm/bench/` (the process becomes the
compiled server, so its pid is the server's). The runner measures the server's CPU per
request against the cheapest client's, so a server too costly to leave the clients deciding
the figures is reported, not hidden.

Routing: a POST to `.../chat/completions` gets the stream when its body says
`"stream": true` (either spacing), else the chat reply; a POST to `.../embeddings` the
vectors; any `.../models` or `.../health` their small replies; anything else a 404.

A stream is sent as one chunked-encoding chunk per event, all in one write: the clients parse
the same events a real server sends, without the server paying a write per event.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from benchmarks import payloads

_JSON = b"application/json"
SOURCE = Path(__file__).with_name("canned_server.c")


def _plain(body: bytes, content_type: bytes = _JSON, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
        + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def _chunked(events: list[bytes]) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache"
        b"\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    chunks = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    return head + b"".join(chunks) + b"0\r\n\r\n"


def replies() -> dict[str, bytes]:
    """Every whole reply (status line, headers, body) by the name the C server reads it by."""
    return {
        "chat": _plain(payloads.chat_body()),
        "stream": _chunked(payloads.stream_events()),
        "embeddings": _plain(payloads.embeddings_body()),
        "models": _plain(
            b'{"object":"list","data":[{"id":"bench","object":"model","owned_by":"bench"}]}'
        ),
        "health": _plain(b'{"status":"ok"}'),
        "not_found": _plain(b'{"error":{"message":"not found"}}', status=b"404 Not Found"),
    }


def prepared(cache: Path | None = None) -> tuple[Path, Path]:
    """The compiled server and the folder of its replies, built unless already cached."""
    answers = replies()
    digest = hashlib.sha256(SOURCE.read_bytes())
    for name, reply in sorted(answers.items()):
        digest.update(name.encode() + b"\0" + reply)
    root = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = root / "selfhosted-llm" / "bench" / digest.hexdigest()[:16]
    binary = folder / "canned_server"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name, reply in answers.items():
            (folder / name).write_bytes(reply)
        building = folder / f"canned_server.{os.getpid()}"
        subprocess.run(
            ["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(building), str(SOURCE)],
            check=True,
        )
        building.replace(binary)
    return binary, folder


def main() -> None:
    """Become the compiled server (same pid, stdin and stdout)."""
    binary, folder = prepared()
    os.execv(binary, [str(binary), str(folder)])


if __name__ == "__main__":
    main()
