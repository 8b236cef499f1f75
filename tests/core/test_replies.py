from __future__ import annotations

import pytest

from selfhosted_core._replies import not_a_stream, not_json

LOGIN = b"<!DOCTYPE html>\n<html>\n  <head>\n    <title>Sign in</title>\n  </head>\n</html>\n"


def test_an_html_page_is_named_with_its_first_words_on_one_line() -> None:
    assert not_json("text/html; charset=utf-8", LOGIN) == (
        "expected JSON, got text/html: <!DOCTYPE html> <html> <head> <title>Sign in</title> "
        "</head> </html>"
    )


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "text/html", "x/y; q=1"])
@pytest.mark.parametrize(
    "body",
    [b'{"data": []}', b"[1]", b"\xef\xbb\xbf \r\n\t{}", b"", b"  \n "],
    ids=["object", "array", "bom-and-blanks", "empty", "blank"],
)
def test_a_body_that_may_be_json_passes_whatever_its_label(
    content_type: str | None, body: bytes
) -> None:
    assert not_json(content_type, body) is None


def test_a_missing_content_type_is_said_so() -> None:
    assert not_json(None, b"Bad Gateway") == "expected JSON, got no content type: Bad Gateway"


def test_the_excerpt_is_80_printable_characters() -> None:
    problem = not_json("text/plain\x1b[2J", b"\x1b]0;owned\x07" + b"y" * 500 + b"\xff")
    assert problem == "expected JSON, got text/plain?[2j: ?]0;owned?" + "y" * 70


def test_only_the_start_of_a_huge_body_is_looked_at() -> None:
    assert not_json("text/html", b" " * 10_000 + b"<html>") is None
    assert not_json("text/html", b"<html>" + b"x" * 50_000_000) == (
        "expected JSON, got text/html: <html>" + "x" * 74
    )


@pytest.mark.parametrize(
    ("content_type", "head"),
    [
        ("text/event-stream", b"<html>"),
        ("Text/Event-Stream; charset=utf-8", b"anything"),
        ("application/json", b'{"choices": []}'),
        ("text/plain", b"[1]"),
        (None, b"data: {}\n\n"),
        (None, b"\r\n: keep-alive\n\n"),
        ("text/plain", b"event: message\n"),
        ("text/html", b"error: {}\n\n"),
        (None, b"da"),
        (None, b"\xef\xbb\xbf"),
        (None, b""),
    ],
)
def test_a_reply_that_may_be_a_stream_or_json_passes(content_type: str | None, head: bytes) -> None:
    assert not_a_stream(content_type, head) is None


def test_an_html_page_answering_a_stream_request_is_named() -> None:
    assert not_a_stream("text/html", LOGIN) == (
        "expected an event stream or JSON, got text/html: <!DOCTYPE html> <html> <head> "
        "<title>Sign in</title> </head> </html>"
    )
    assert not_a_stream(None, b"Service Unavailable") == (
        "expected an event stream or JSON, got no content type: Service Unavailable"
    )
