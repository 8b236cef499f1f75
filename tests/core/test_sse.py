from __future__ import annotations

import time

import pytest

from selfhosted_core._sse import EventTooLarge, ServerSentEvent, SSEDecoder


def decode(*pieces: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.close()


def test_comments_are_skipped() -> None:
    assert decode(b": keep-alive\n\ndata: {}\n\n") == [ServerSentEvent(b"{}")]


def test_data_without_space_after_colon() -> None:
    assert decode(b"data:[DONE]\n\n") == [ServerSentEvent(b"[DONE]")]


def test_multiline_data_joins_with_newline() -> None:
    assert decode(b"data: a\ndata: b\n\n") == [ServerSentEvent(b"a\nb")]


def test_crlf_split_across_reads() -> None:
    assert decode(b"data: x\r", b"\n\r\n", b"data: y\r\n\r\n") == [
        ServerSentEvent(b"x"),
        ServerSentEvent(b"y"),
    ]


def test_an_empty_read_between_cr_and_lf_keeps_them_one_line_end() -> None:
    assert decode(b"event: x\r", b"", b"\ndata: y\n\n") == [ServerSentEvent(b"y", "x")]


def test_event_split_byte_by_byte() -> None:
    raw = b'event: message\ndata: {"a": 1}\n\n'
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == [
        ServerSentEvent(b'{"a": 1}', "message")
    ]


def test_last_event_without_blank_line_still_counts() -> None:
    assert decode(b"data: tail") == [ServerSentEvent(b"tail")]


def test_llama_error_field_becomes_an_error_event() -> None:
    assert decode(b'error: {"code":400}\n\n') == [ServerSentEvent(b'{"code":400}', "error")]


def test_id_and_retry_are_ignored() -> None:
    assert decode(b"id: 7\nretry: 100\n\n") == []


def test_cr_alone_ends_lines() -> None:
    assert decode(b"data: a\rdata: b\r\rdata: c\r\r") == [
        ServerSentEvent(b"a\nb"),
        ServerSentEvent(b"c"),
    ]


def test_a_blank_cr_line_dispatches_at_once_and_its_lf_is_not_a_second_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\r") == [ServerSentEvent(b"a")]
    assert decoder.feed(b"\ndata: b\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(b"b")]


STREAMS = [
    b'data: {"a": 1}\r\n\r\ndata: [DONE]\r\n\r\n',
    b"event: message\rdata: x\r\rdata: y\n\n: ping\r\n\r\ndata:z\r\n",
    b"data: a\ndata: b\n\nerror: {}\n\n",
]


@pytest.mark.parametrize("raw", STREAMS)
def test_every_split_point_decodes_like_the_whole_stream(raw: bytes) -> None:
    whole = decode(raw)
    for cut in range(len(raw) + 1):
        assert decode(raw[:cut], raw[cut:]) == whole, cut
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == whole


def test_a_line_split_over_many_reads_is_decoded_whole() -> None:
    value = bytes(range(32, 127)) * 1000
    pieces = [b"data: ", *(value[i : i + 7] for i in range(0, len(value), 7)), b"\n\n"]
    assert decode(*pieces) == [ServerSentEvent(value)]


def test_a_line_as_long_as_the_limit_is_accepted() -> None:
    line = b"data: " + b"x" * 1018
    decoder = SSEDecoder(max_event_bytes=1024)
    for start in range(0, len(line), 100):
        assert decoder.feed(line[start : start + 100]) == []
    assert decoder.feed(b"\n\n") == [ServerSentEvent(b"x" * 1018)]


def test_an_unfinished_line_past_the_limit_raises_as_soon_as_it_passes() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    decoder.feed(b"data: " + b"x" * 1018)
    with pytest.raises(EventTooLarge, match="1025 bytes exceeds the limit of 1024 bytes") as info:
        decoder.feed(b"x")
    assert (info.value.size, info.value.limit) == (1025, 1024)
    assert isinstance(info.value, ValueError)


def test_an_endless_line_in_many_reads_is_cut_off_in_linear_time() -> None:
    # Joining the held bytes on every read would copy gigabytes here before reaching the limit.
    limit = 64 * 1024 * 1024
    decoder = SSEDecoder(max_event_bytes=limit)
    piece = b"x" * 4096
    started = time.perf_counter()
    for _ in range(limit // len(piece)):
        assert decoder.feed(piece) == []
    with pytest.raises(EventTooLarge):
        decoder.feed(piece)
    assert time.perf_counter() - started < 10


def test_a_line_past_the_limit_in_one_read_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    with pytest.raises(EventTooLarge, match="stream line of at least 1030 bytes"):
        decoder.feed(b": " + b"x" * 1028 + b"\n")


def test_data_lines_joining_past_the_limit_raise() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    line = b"data: " + b"x" * 99 + b"\n"
    decoder.feed(line * 10)  # 10 lines of 99 bytes joined with LF: 999 bytes
    with pytest.raises(EventTooLarge, match="stream event of at least 1099 bytes"):
        decoder.feed(line)


def test_error_lines_count_towards_the_limit_too() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    with pytest.raises(EventTooLarge, match="stream event"):
        decoder.feed((b"error: " + b"x" * 500 + b"\n") * 3)


def test_events_completed_before_the_oversized_line_travel_with_the_error() -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    with pytest.raises(EventTooLarge) as info:
        decoder.feed(b"data: a\n\ndata: b\n\ndata: " + b"x" * 2000)
    assert info.value.events == [ServerSentEvent(b"a"), ServerSentEvent(b"b")]
