"""Properties of the SSE decoder: any bytes, split anywhere, decode as the whole stream does,
and no line or event past the limit is held: the decoder gives up on the very read that would
make it hold more than `max_event_bytes` for one line or one event.

The expectation comes from `reference`, a direct reading of the event-stream rules over the
whole stream at once, which also says where that limit is first passed.
"""

from __future__ import annotations

import re
from itertools import pairwise

from hypothesis import example, given
from hypothesis import strategies as st

from selfhosted_core._sse import EventTooLarge, ServerSentEvent, SSEDecoder

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")


def reference(stream: bytes, limit: int) -> tuple[list[ServerSentEvent], int | None]:
    """The events of `stream` once closed, and the offset of the byte at which a decoder holding
    at most `limit` bytes per line and per event must give up (None: it never must).

    A line may not grow past `limit`: its byte number `limit + 1` is where. An event's data may
    not join past `limit`: the end of the data line that takes it past is where (the line is
    only known whole there). Closing ends an unfinished line and event, like two line feeds.
    """
    events: list[ServerSentEvent] = []
    data: list[bytes] = []
    size = 0
    kind: str | None = None
    for match in _LINE.finditer(stream + b"\n\n"):
        line = match.group(1)
        if len(line) > limit:
            return events, match.start() + limit
        if not line:
            if data:
                events.append(ServerSentEvent(b"\n".join(data), kind))
            data, size, kind = [], 0, None
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name in (b"data", b"error"):
            size += len(value) + (1 if data else 0)
            if size > limit:
                return events, match.end(1)
            data.append(value)
            if name == b"error":
                kind = "error"
        elif name == b"event":
            kind = value.decode("utf-8", "replace")
    return events, None


ENDS = st.sampled_from([b"\n", b"\r", b"\r\n"])
values = st.one_of(
    st.sampled_from([b"", b" ", b"{}", b"[DONE]", b'{"a": 1}', b"x" * 40]),
    st.binary(max_size=12).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
)
fields = st.sampled_from([b"data", b"event", b"error", b"id", b"retry", b"", b"dat", b"DATA"])
lines = st.one_of(
    st.tuples(fields, st.sampled_from([b":", b": ", b""]), values, ENDS).map(b"".join),
    ENDS,  # a blank line: dispatch
    st.tuples(st.just(b":"), values, ENDS).map(b"".join),  # a comment
    st.binary(max_size=16),  # anything at all, line ends included
)
streams = st.lists(lines, max_size=12).map(b"".join)
limits = st.one_of(st.integers(1, 48), st.just(1 << 20))


@st.composite
def split_streams(draw: st.DrawFn) -> list[bytes]:
    """A stream as the reads that bring it, cut at arbitrary points, empty reads included."""
    stream = draw(streams)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    edges = [0, *cuts, len(stream)]
    return [stream[start:end] for start, end in pairwise(edges)]


@given(split_streams(), limits)
@example([b"data: a\r", b"\ndata: b\n\n"], 1 << 20)
@example([b"data: " + b"x" * 40 + b"\n\n"], 16)
@example([b"data: abcdef\ndata: ghijkl\n\n"], 12)
@example([b"data: ab", b"c", b"d\n\n"], 8)
@example([b"event: x\r", b"", b"\ndata:\n"], 1 << 20)  # an empty read split a CRLF in two
def test_any_stream_split_anywhere_decodes_as_a_whole_within_its_limit(
    reads: list[bytes], limit: int
) -> None:
    expected, give_up_at = reference(b"".join(reads), limit)
    decoder = SSEDecoder(max_event_bytes=limit)
    decoded: list[ServerSentEvent] = []
    start = 0
    # Closing reads the two line feeds `reference` appends.
    for read in [*reads, None]:
        end = start + (2 if read is None else len(read))
        try:
            decoded += decoder.close() if read is None else decoder.feed(read)
        except EventTooLarge as exc:
            decoded += exc.events
            # The read that brought the byte past the limit is the one that gave up.
            assert give_up_at is not None
            assert start <= give_up_at < end
            break
        start = end
    else:
        assert give_up_at is None
    assert decoded == expected
