"""Recognising a 2xx reply that is not what was asked for, before parsing it.

A proxy in front of a server (an SSO gateway, nginx, a captive portal) may answer 200 with an
HTML login or error page. Parsing that as JSON fails with a message about a character at some
column; naming the content type and showing the page's first words says what actually happened.

Servers label JSON loosely (some send no content type, some `text/plain`), so the body decides:
only a body that cannot be JSON or an event stream is reported, whatever its label says.
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["not_a_stream", "not_json"]

_HEAD = 1024
"""Bytes of the body looked at; leading blank lines beyond this are left to the parser."""

_EXCERPT = 80
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n"
_JSON_STARTS = (b"{", b"[")
_SSE_STARTS = (b":", b"data", b"event", b"id", b"retry", b"error")
"""How an event stream's first line may begin: a comment or a field llama-server et al. send."""


def not_json(content_type: str | None, body: bytes) -> str | None:
    """Why a 2xx reply that must be a JSON object or array is not one, or None when it may be.

    Only the start of `body` is looked at, so the whole body may be passed. A body that is
    empty or blank so far is left to the parser (None).

    Example:
        >>> not_json("text/html; charset=utf-8", b"  <html>   <title>Sign in</title>")
        'expected JSON, got text/html: <html> <title>Sign in</title>'
        >>> not_json("text/plain", b'{"data": []}') is None
        True
    """
    head = _start(body)
    if not head or head.startswith(_JSON_STARTS):
        return None
    return f"expected JSON, got {_describe(content_type, head)}"


def not_a_stream(content_type: str | None, head: bytes) -> str | None:
    """Why a 2xx reply to a stream request is neither an event stream nor JSON, or None.

    `head` is the start of the body (its first read will do). A reply labelled
    `text/event-stream` is taken at its word; otherwise the body must begin like JSON or like
    an event stream. A body that is blank so far, or could still become either, gives None.
    """
    if _media_type(content_type) == "text/event-stream":
        return None
    start = _start(head)
    if not start or start.startswith(_JSON_STARTS + _SSE_STARTS):
        return None
    if any(field.startswith(start) for field in _SSE_STARTS):
        return None  # a field name cut short by the read
    return f"expected an event stream or JSON, got {_describe(content_type, start)}"


def _start(body: bytes) -> bytes:
    return body[:_HEAD].removeprefix(_BOM).lstrip(_BLANK)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def _describe(content_type: str | None, head: bytes) -> str:
    """`<media type>: <first words>`, safe to print: a hostile server chose every byte."""
    media = _printable(_media_type(content_type)[:100]) or "no content type"
    text = " ".join(head.decode("utf-8", "replace").split())
    return f"{media}: {_printable(text[:_EXCERPT])}"


def _printable(text: str) -> str:
    # Control characters (terminal escapes among them) would reach logs and terminals as is.
    return "".join(char if char.isprintable() else "?" for char in text)


def validation_reason(exc: ValidationError) -> str:
    """The parser's first complaint, without the input it quotes (the input may hold secrets).

    "Invalid JSON: recursion limit exceeded at line 1 column 202" says at once why a body that
    looks fine at its start was refused.
    """
    first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]
