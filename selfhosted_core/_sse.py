"""A sans-I/O server-sent-events decoder: feed it bytes, get back each event's data.

Follows the WHATWG event-stream rules that matter for chat streams: lines end in LF, CR or CRLF;
`:` starts a comment (llama-server sends `: ` keep-alives during long prompts); one space after
`field:` is optional (TGI sends `data:` without it); several `data` lines join with LF; a blank
line dispatches the event. Only `data` and `event` are kept; `id` and `retry` mean nothing here.
Older llama-server builds send errors in a non-standard `error:` field (tools/server/utils.hpp,
`server_sent_event(sink, "error", ...)`); it becomes an event of type `error` rather than being
dropped as the standard says, so the error reaches the caller.

A line or an event longer than `max_event_bytes` raises `EventTooLarge` as soon as the bytes
held for it pass the limit, so a server that never ends a line cannot make the decoder grow
without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfhosted_core.config import DEFAULT_MAX_RESPONSE_BYTES

__all__ = ["EventTooLarge", "SSEDecoder", "ServerSentEvent"]

_LF = b"\n"
_CR = b"\r"
_LINE_ENDS = (b"\n", b"\r")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its data (bytes, decoded later with the JSON) and its type."""

    data: bytes
    event: str | None = None


class EventTooLarge(ValueError):
    """A line or an event of a stream is longer than the decoder accepts.

    Attributes:
        size: The bytes held for it when the limit was passed (a lower bound of its length).
        limit: The decoder's `max_event_bytes`.
        events: The events the same `feed` completed before it, for the caller to deliver.
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of at least {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.events: list[ServerSentEvent] = []


class SSEDecoder:
    """Incremental decoder; keeps partial lines between `feed` calls.

    Args:
        max_event_bytes: The longest line, and the most data one event may join, in bytes.
    """

    __slots__ = ("_data", "_event", "_limit", "_pending", "_pending_size", "_size", "_skip_lf")

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self._limit = max_event_bytes
        # An unfinished line as the reads that brought it: joining only once it ends keeps a
        # line split over many reads linear, not quadratic, in its length.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._data: list[bytes] = []
        self._size = 0
        self._event: str | None = None
        # The last read ended in CR: an LF opening the next read is the rest of that CRLF.
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode `chunk`, returning the events it completes.

        Raises:
            EventTooLarge: A line or an event grew past `max_event_bytes`.
        """
        if not chunk:
            # An empty read between the CR and the LF of one CRLF must not end the pairing.
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(_LF):
                chunk = chunk[1:]
        if self._pending:
            if _LF not in chunk and _CR not in chunk:
                self._hold(chunk)
                return []
            self._pending.append(chunk)
            text = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
        else:
            text = chunk
        lines = text.splitlines(keepends=True)
        if not lines:
            return []
        tail = b""
        if not lines[-1].endswith(_LINE_ENDS):
            tail = lines.pop()
        elif lines[-1].endswith(_CR):
            self._skip_lf = True
        # Only a read longer than the limit can hold a line longer than it.
        return self._decode(lines, tail, check=len(text) > self._limit)

    def close(self) -> list[ServerSentEvent]:
        """Flush at end of stream: a final event without its blank line still counts."""
        events = self.feed(b"\n\n") if self._pending or self._data else []
        self._pending.clear()
        self._pending_size = 0
        self._skip_lf = False
        return events

    def _decode(self, lines: list[bytes], tail: bytes, *, check: bool) -> list[ServerSentEvent]:
        """The events `lines` complete; `tail` is held as the start of the next line."""
        events: list[ServerSentEvent] = []
        try:
            for raw in lines:
                line = raw.rstrip(b"\r\n")
                if check and len(line) > self._limit:
                    raise EventTooLarge("stream line", len(line), self._limit)
                event = self._line(line)
                if event is not None:
                    events.append(event)
            if tail:
                self._hold(tail)
        except EventTooLarge as exc:
            exc.events = events
            raise
        return events

    def _hold(self, piece: bytes) -> None:
        self._pending_size += len(piece)
        if self._pending_size > self._limit:
            size, self._pending, self._pending_size = self._pending_size, [], 0
            raise EventTooLarge("unfinished stream line", size, self._limit)
        self._pending.append(piece)

    def _line(self, line: bytes) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = ServerSentEvent(b"\n".join(self._data), self._event)
            self._data, self._size, self._event = [], 0, None
            return event
        if line.startswith(b":"):
            return None
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name in {b"data", b"error"}:
            # Counted as joined: each line after the first adds its LF.
            self._size += len(value) + (1 if self._data else 0)
            if self._size > self._limit:
                size, self._data, self._size = self._size, [], 0
                raise EventTooLarge("stream event", size, self._limit)
            self._data.append(value)
            if name == b"error":
                self._event = "error"
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        return None
