from __future__ import annotations

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
from selfhosted_core._status import error_from_event, error_from_status
from selfhosted_core._wire import WireErrorDetail
from tests.core import payloads

OVERFLOWS = [
    pytest.param(400, payloads.LLAMA_CONTEXT_OVERFLOW, id="llama"),
    pytest.param(400, payloads.LLAMA_EMBEDDING_CONTEXT_OVERFLOW, id="llama-embedding"),
    pytest.param(400, payloads.VLLM_OLD_CONTEXT_OVERFLOW, id="vllm-old"),
    pytest.param(400, payloads.VLLM_NEW_CONTEXT_OVERFLOW, id="vllm-new"),
    pytest.param(400, payloads.VLLM_CHARACTERS_CONTEXT_OVERFLOW, id="vllm-characters"),
    pytest.param(422, payloads.TGI_CONTEXT_OVERFLOW, id="tgi"),
    pytest.param(422, payloads.TGI_INPUT_LENGTH_OVERFLOW, id="tgi-input-length"),
    pytest.param(400, payloads.LMSTUDIO_CONTEXT_OVERFLOW, id="lmstudio"),
    pytest.param(400, payloads.SGLANG_CONTEXT_OVERFLOW, id="sglang"),
    pytest.param(400, payloads.OPENAI_CONTEXT_OVERFLOW, id="openai"),
    pytest.param(400, payloads.OPENAI_CONTEXT_WINDOW_OVERFLOW, id="openai-context-window"),
]
"""Each server's context overflow, with the status it answers it with."""


def error(status: int, body: bytes, retry_after: str | None = None) -> APIStatusError:
    return error_from_status(status, body, retry_after=retry_after, model="m", endpoint="gpu-1")


@pytest.mark.parametrize(("status", "body"), OVERFLOWS)
def test_context_overflow_recognised_from_each_server(status: int, body: bytes) -> None:
    raised = error(status, body)
    assert type(raised) is ContextWindowExceededError
    assert (raised.status_code, raised.model, raised.endpoint) == (status, "m", "gpu-1")
    assert not raised.retryable


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
