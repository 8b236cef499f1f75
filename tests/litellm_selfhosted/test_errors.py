"""Core errors as LiteLLM's classes, with the status codes its Router decides on."""

from __future__ import annotations

import pytest
from litellm import exceptions as lx

from litellm_selfhosted._errors import PROVIDER, litellm_error, mapped_errors
from selfhosted_core import ChatResponse
from selfhosted_core import errors as core


def status(
    cls: type[core.APIStatusError], code: int, message: str = "failed"
) -> core.APIStatusError:
    return cls(message, status_code=code, body='{"error":{}}', model="tiny", endpoint="chat-a")


def rate_limited(retry_after: float | None) -> core.RateLimitError:
    error = core.RateLimitError("busy", status_code=429, model="tiny", endpoint="chat-a")
    error.retry_after = retry_after
    return error


TABLE: list[tuple[str, core.SelfHostedError, type[Exception], int]] = [
    (
        "context overflow",
        status(core.ContextWindowExceededError, 400, "exceeds the available context size"),
        lx.ContextWindowExceededError,
        400,
    ),
    ("plain 400", status(core.BadRequestError, 400), lx.BadRequestError, 400),
    ("422", status(core.BadRequestError, 422), lx.BadRequestError, 400),
    ("429", rate_limited(None), lx.RateLimitError, 429),
    ("401", status(core.AuthenticationError, 401), lx.AuthenticationError, 401),
    ("403", status(core.AuthenticationError, 403), lx.PermissionDeniedError, 403),
    ("404", status(core.NotFoundError, 404), lx.NotFoundError, 404),
    ("unknown model", core.UnknownModelError("nope", known=["tiny"]), lx.NotFoundError, 404),
    (
        "503 loading",
        status(core.ServerError, 503, "Loading model"),
        lx.ServiceUnavailableError,
        503,
    ),
    (
        "unreachable",
        core.EndpointConnectionError("connection refused", model="tiny", endpoint="chat-a"),
        lx.ServiceUnavailableError,
        503,
    ),
    ("502", status(core.ServerError, 502), lx.BadGatewayError, 502),
    (
        "malformed reply",
        core.ResponseError("not JSON", model="tiny", endpoint="chat-a"),
        lx.BadGatewayError,
        502,
    ),
    ("500", status(core.ServerError, 500), lx.InternalServerError, 500),
    ("504 from the server", status(core.ServerError, 504), lx.APIError, 504),
    ("507", status(core.ServerError, 507), lx.APIError, 507),
    (
        "timeout",
        core.EndpointTimeoutError("read timed out", model="tiny", endpoint="chat-a"),
        lx.Timeout,
        504,
    ),
    (
        "invalid request",
        core.InvalidRequestError("messages[0].role: bad", model="tiny"),
        lx.BadRequestError,
        400,
    ),
    (
        "capability",
        core.CapabilityError("model 'tiny' lacks vision", model="tiny"),
        lx.BadRequestError,
        400,
    ),
    (
        "408 from a reverse proxy",
        core.APIStatusError("request timeout", status_code=408),
        lx.Timeout,
        408,
    ),
    (
        "409 keeps its status",
        core.APIStatusError("conflict", status_code=409),
        lx.APIError,
        409,
    ),
    (
        "configuration",
        core.ConfigurationError("no configuration: set SELFHOSTED_CONFIG"),
        lx.InternalServerError,
        500,
    ),
    (
        "not supported",
        core.NotSupportedError("n > 1 is not supported", model="tiny"),
        lx.BadRequestError,
        400,
    ),
]


@pytest.mark.parametrize(
    ("error", "kind", "code"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_each_core_error_becomes_the_litellm_class_and_status(
    error: core.SelfHostedError, kind: type[Exception], code: int
) -> None:
    mapped = litellm_error(error, model="tiny")
    assert type(mapped) is kind
    assert getattr(mapped, "status_code", None) == code
    assert getattr(mapped, "llm_provider", None) == PROVIDER
    assert getattr(mapped, "model", None) == "tiny"
    assert str(error) in str(mapped)


@pytest.mark.parametrize(
    ("error", "kind", "code"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_no_message_says_api_connection_error(
    error: core.SelfHostedError, kind: type[Exception], code: int
) -> None:
    # LiteLLM's Router skips the cooldown of a deployment whose error mentions APIConnectionError.
    mapped = litellm_error(error, model="tiny")
    assert not isinstance(mapped, lx.APIConnectionError)
    assert "APIConnectionError" not in str(mapped)
    assert "APIConnectionError" not in str(getattr(mapped, "message", ""))


def test_litellm_timeout_is_the_exported_class() -> None:
    import litellm  # noqa: PLC0415 - the public name, checked once

    mapped = litellm_error(
        core.EndpointTimeoutError("slow", model="tiny", endpoint="chat-a"), model="tiny"
    )
    assert isinstance(mapped, litellm.Timeout)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("retry_after", "header"), [(2.2, "3"), (5.0, "5"), (0.0, "0")])
def test_rate_limit_sends_retry_after_when_the_server_gave_one(
    retry_after: float, header: str
) -> None:
    mapped = litellm_error(rate_limited(retry_after), model="tiny")
    assert isinstance(mapped, lx.RateLimitError)
    assert mapped.response.headers["retry-after"] == header


def test_rate_limit_without_retry_after_has_no_header() -> None:
    mapped = litellm_error(rate_limited(None), model="tiny")
    assert isinstance(mapped, lx.RateLimitError)
    assert "retry-after" not in mapped.response.headers


def test_the_message_names_the_endpoint_never_a_url() -> None:
    mapped = litellm_error(status(core.ServerError, 500, "slot crashed"), model="tiny")
    assert "endpoint='chat-a'" in str(mapped)
    assert "http://" not in str(mapped)


def test_mapped_errors_chains_the_core_error_and_keeps_the_partial() -> None:
    partial = ChatResponse(id="chatcmpl-4", model="tiny", content="Partial", endpoint="chat-a")
    error = core.ServerError(
        "error event in stream: slot crashed",
        status_code=500,
        partial=partial,
        model="tiny",
        endpoint="chat-a",
    )
    with pytest.raises(lx.InternalServerError) as caught, mapped_errors("tiny"):
        raise error
    assert caught.value.__cause__ is error
    cause = caught.value.__cause__
    assert isinstance(cause, core.SelfHostedError)
    assert cause.partial is partial
    assert cause.partial.content == "Partial"


def test_mapped_errors_passes_other_exceptions_through() -> None:
    with pytest.raises(KeyError, match="x"), mapped_errors("tiny"):
        raise KeyError("x")


def test_mapped_errors_is_silent_without_an_error() -> None:
    with mapped_errors("tiny"):
        value = 1
    assert value == 1
