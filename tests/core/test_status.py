from __future__ import annotations

import json
import re

import pytest

from selfhosted_core import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from selfhosted_core._status import (
    _CONTEXT_PHRASES,
    _CONTEXT_TYPES,
    REDACTED,
    endpoint_secrets,
    error_from_event,
    error_from_status,
)
from selfhosted_core._wire import WireErrorDetail
from selfhosted_core.config import ModelEndpoint
from tests.core import payloads

OVERFLOWS = {
    "llama": (400, payloads.LLAMA_CONTEXT_OVERFLOW),
    "llama-embedding": (400, payloads.LLAMA_EMBEDDING_CONTEXT_OVERFLOW),
    "vllm-old": (400, payloads.VLLM_OLD_CONTEXT_OVERFLOW),
    "vllm-new": (400, payloads.VLLM_NEW_CONTEXT_OVERFLOW),
    "vllm-characters": (400, payloads.VLLM_CHARACTERS_CONTEXT_OVERFLOW),
    "tgi": (422, payloads.TGI_CONTEXT_OVERFLOW),
    "tgi-input-length": (422, payloads.TGI_INPUT_LENGTH_OVERFLOW),
    "lmstudio": (400, payloads.LMSTUDIO_CONTEXT_OVERFLOW),
    "sglang": (400, payloads.SGLANG_CONTEXT_OVERFLOW),
    "openai": (400, payloads.OPENAI_CONTEXT_OVERFLOW),
    "openai-context-window": (400, payloads.OPENAI_CONTEXT_WINDOW_OVERFLOW),
}
"""Each server's context overflow, with the status it answers it with."""

OVERFLOW_EVENTS = {
    "llama": payloads.LLAMA_CONTEXT_OVERFLOW,
    "llama-field": payloads.LLAMA_STREAM_ERROR_FIELD.rpartition(b"error: ")[2],
    "vllm-old": payloads.VLLM_OLD_CONTEXT_OVERFLOW,
    "vllm-new": payloads.VLLM_NEW_CONTEXT_OVERFLOW,
    "vllm-characters": payloads.VLLM_CHARACTERS_CONTEXT_OVERFLOW,
    "sglang": payloads.SGLANG_CONTEXT_OVERFLOW,
}
"""The overflows whose error object gives its status in `code`, as an error event carries it."""

PLACEHOLDER_KEYS = ["x", "EMPTY", "ollama", "lm-studio", "sk-no-key-required"]

REAL_KEY = "sk-live-0123456789abcdef"


def error_object(body: bytes) -> dict[str, object] | str:
    """What a server's error body says (nested under `error`, or the body itself)."""
    wire = json.loads(body)
    error: dict[str, object] | str = wire.get("error", wire)
    return error


def server_message(body: bytes) -> str:
    """The message a server's error body carries, read without `_status`."""
    error = error_object(body)
    return error if isinstance(error, str) else str(error["message"])


def secrets_of(key: str) -> tuple[str, ...]:
    return endpoint_secrets(ModelEndpoint(url="http://gpu-1:8080", id="m", api_key=key))


def error(status: int, body: bytes, retry_after: str | None = None) -> APIStatusError:
    return error_from_status(status, body, retry_after=retry_after, model="m", endpoint="gpu-1")


@pytest.mark.parametrize(("status", "body"), OVERFLOWS.values(), ids=OVERFLOWS)
def test_context_overflow_recognised_from_each_server(status: int, body: bytes) -> None:
    raised = error(status, body)
    assert type(raised) is ContextWindowExceededError
    assert (raised.status_code, raised.model, raised.endpoint) == (status, "m", "gpu-1")
    assert not raised.retryable


def test_every_overflow_wording_and_type_is_answered_by_some_server() -> None:
    # So the tests over OVERFLOWS reach every way an overflow is recognised.
    messages = [server_message(body) for _, body in OVERFLOWS.values()]
    for phrase in _CONTEXT_PHRASES:
        assert any(re.search(phrase, message, re.IGNORECASE) for message in messages), phrase
    objects = [error_object(body) for _, body in OVERFLOWS.values()]
    fields = {value for error in objects if isinstance(error, dict) for value in error.values()}
    assert fields >= _CONTEXT_TYPES


@pytest.mark.parametrize(("status", "body"), OVERFLOWS.values(), ids=OVERFLOWS)
@pytest.mark.parametrize("key", PLACEHOLDER_KEYS)
def test_overflow_is_typed_and_reads_verbatim_with_a_placeholder_key(
    key: str, status: int, body: bytes
) -> None:
    raised = error_from_status(
        status, body, retry_after=None, model="m", endpoint="gpu-1", secrets=secrets_of(key)
    )
    assert type(raised) is ContextWindowExceededError
    assert raised.message == server_message(body)
    assert raised.body == body.decode()
    assert REDACTED not in f"{raised} {raised!r} {raised.error_type}"


@pytest.mark.parametrize("body", OVERFLOW_EVENTS.values(), ids=OVERFLOW_EVENTS)
@pytest.mark.parametrize("key", PLACEHOLDER_KEYS)
def test_overflow_event_is_typed_and_reads_verbatim_with_a_placeholder_key(
    key: str, body: bytes
) -> None:
    event = WireErrorDetail.model_validate(error_object(body))
    raised = error_from_event(
        event, model="m", endpoint="gpu-1", partial=None, secrets=secrets_of(key)
    )
    assert type(raised) is ContextWindowExceededError
    assert raised.message == f"error event in stream: {server_message(body)}"
    assert raised.error_type == event.type
    assert REDACTED not in f"{raised} {raised!r} {raised.body}"


def test_a_real_key_quoted_in_an_overflow_is_redacted_and_the_overflow_still_typed() -> None:
    words = "request (13392 tokens) exceeds the available context size (8192 tokens)"
    detail = {
        "code": 400,
        "message": f"{words} for Bearer {REAL_KEY}",
        "type": "invalid_request_error",
    }
    body = json.dumps({"error": detail}).encode()
    answered = error_from_status(
        400, body, retry_after=None, model="m", endpoint="gpu-1", secrets=secrets_of(REAL_KEY)
    )
    streamed = error_from_event(
        WireErrorDetail.model_validate(detail),
        model="m",
        endpoint="gpu-1",
        partial=None,
        secrets=secrets_of(REAL_KEY),
    )
    for raised in (answered, streamed):
        assert type(raised) is ContextWindowExceededError
        assert raised.message.endswith(f"{words} for {REDACTED}")
        assert REDACTED in raised.body
        assert REAL_KEY not in f"{raised} {raised!r} {raised.body} {vars(raised)}"


def test_llama_overflow_keeps_the_server_message_and_type() -> None:
    raised = error(400, payloads.LLAMA_CONTEXT_OVERFLOW)
    assert raised.message.startswith("request (13392 tokens) exceeds the available context size")
    assert raised.error_type == "exceed_context_size_error"


@pytest.mark.parametrize(
    ("key", "status", "body"),
    [
        pytest.param("overflows", 400, payloads.LMSTUDIO_CONTEXT_OVERFLOW, id="lmstudio-wording"),
        pytest.param("max_new_tokens", 422, payloads.TGI_CONTEXT_OVERFLOW, id="tgi-wording"),
        pytest.param(
            "context_length", 400, payloads.OPENAI_CONTEXT_WINDOW_OVERFLOW, id="openai-code"
        ),
    ],
)
def test_overflow_is_typed_from_the_servers_words_even_where_they_quote_a_secret(
    key: str, status: int, body: bytes
) -> None:
    # The only words telling the overflow contain the secret: they are read before redaction.
    raised = error_from_status(
        status, body, retry_after=None, model="m", endpoint="gpu-1", secrets=(key,)
    )
    assert type(raised) is ContextWindowExceededError
    assert key not in f"{raised.message} {raised.body} {raised.error_type} {raised!r}"


def test_overflow_event_is_typed_from_the_servers_words_even_where_they_quote_a_secret() -> None:
    event = WireErrorDetail(
        code=400,
        message="the request exceeds the available context size. try increasing the context "
        "size or enable context shift",
        type="invalid_request_error",
    )
    raised = error_from_event(
        event, model="m", endpoint="gpu-1", partial=None, secrets=("available",)
    )
    assert type(raised) is ContextWindowExceededError
    assert "available" not in f"{raised.message} {raised.body} {raised!r}"


def test_other_bad_requests_are_not_overflow() -> None:
    raised = error(400, payloads.VLLM_NO_TOOL_PARSER)
    assert type(raised) is BadRequestError
    assert "--enable-auto-tool-choice" in raised.message


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (404, NotFoundError, False),
        (429, RateLimitError, True),
        (500, ServerError, True),
        (502, ServerError, True),
        (418, APIStatusError, False),
    ],
)
def test_status_table(status: int, kind: type[APIStatusError], retryable: bool) -> None:
    raised = error(status, b"")
    assert type(raised) is kind
    assert raised.retryable is retryable
    assert str(raised) == f"HTTP {status}: HTTP {status} from server (model='m', endpoint='gpu-1')"


def test_invalid_key() -> None:
    raised = error(401, payloads.LLAMA_INVALID_KEY)
    assert isinstance(raised, AuthenticationError)
    assert raised.message == "Invalid API Key"


def test_loading_is_a_retryable_server_error() -> None:
    raised = error(503, payloads.LLAMA_LOADING)
    assert isinstance(raised, ServerError)
    assert raised.loading
    assert raised.retryable


def test_retry_after_seconds_and_date() -> None:
    seconds = error(429, b"busy", retry_after="3")
    assert isinstance(seconds, RateLimitError)
    assert seconds.retry_after == 3.0
    past = error(429, b"busy", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert isinstance(past, RateLimitError)
    assert past.retry_after == 0.0


def test_html_error_page_is_excerpted() -> None:
    page = b"<html><body>" + b"x" * 2000 + b"</body></html>"
    raised = error(502, page)
    assert raised.body.startswith("<html>")
    assert len(raised.body) == 500
