"""Core errors as LiteLLM's own exception classes: the one place the adapter maps errors.

LiteLLM passes its own exception types through untouched, and its Router decides on them by
`status_code`: it cools a deployment down on 429, 401, 404, 408 and any 5xx, and not on other
4xx or on anything it calls an `APIConnectionError` (BerriAI/litellm #27362). So an unreachable
or loading endpoint becomes `ServiceUnavailableError` (503), a timeout `Timeout` with status
504, a busy server `RateLimitError` (429, with its `Retry-After`), and a context overflow
`ContextWindowExceededError`, the only class `context_window_fallbacks` react to. A malformed
reply is the endpoint's fault: `BadGatewayError` (502), and so is a broken config (500).
Problems with the request itself (missing capability, bad message) are 400 and never cool an
endpoint down; an unknown model is 404, which LiteLLM does cool down (a deployment naming a
model the config lacks is a deployment mistake). Other statuses keep their code.

The core error is the `__cause__`, with the endpoint, every send in `attempts` and, for a
stream that broke after output, the `partial` answer; LiteLLM's message names the endpoint too.
It is also the `selfhosted_error` attribute, which survives where LiteLLM re-raises the error
from another (a Router reading a stream's first chunk raises it `from` its own
`MidStreamFallbackError`, litellm/router_rust/invoke/streaming.py, replacing the cause).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from litellm import exceptions as lx

from selfhosted_core import errors as core

PROVIDER = "selfhosted"
"""The provider prefix: LiteLLM users write `model="selfhosted/<id>"`."""

# A stand-in request for the responses LiteLLM's exception constructors require; it names
# the provider, never an endpoint URL (which may carry credentials).
_REQUEST = httpx.Request("POST", f"{PROVIDER}://chat/completions")


def litellm_error(error: core.SelfHostedError, *, model: str) -> Exception:
    """The LiteLLM exception for a core error (its `__cause__` is set by `mapped_errors`)."""
    text = str(error)
    if isinstance(error, core.ContextWindowExceededError):
        return lx.ContextWindowExceededError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(400)
        )
    if isinstance(error, core.RateLimitError):
        headers = {}
        if error.retry_after is not None:
            headers["retry-after"] = str(math.ceil(error.retry_after))
        return lx.RateLimitError(
            message=text,
            model=model,
            llm_provider=PROVIDER,
            response=_response(429, headers),
            headers=headers,
        )
    if isinstance(error, core.AuthenticationError) and error.status_code == 403:
        return lx.PermissionDeniedError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(403)
        )
    if isinstance(error, core.AuthenticationError):
        return lx.AuthenticationError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(401)
        )
    if isinstance(error, core.NotFoundError | core.UnknownModelError):
        return lx.NotFoundError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(404)
        )
    if isinstance(error, core.APIStatusError) and not isinstance(error, core.BadRequestError):
        return _status_error(error.status_code, text, model)
    if isinstance(error, core.EndpointConnectionError):
        return _server_error(503, text, model)
    if isinstance(error, core.EndpointTimeoutError):
        return lx.Timeout(
            message=text, model=model, llm_provider=PROVIDER, exception_status_code=504
        )
    if isinstance(error, core.ResponseError):
        return _server_error(502, text, model)
    if isinstance(error, core.ConfigurationError):
        # The operator's config, not the caller's request, is wrong.
        return _server_error(500, text, model)
    return lx.BadRequestError(
        message=text, model=model, llm_provider=PROVIDER, response=_response(400)
    )


@contextmanager
def mapped_errors(model: str) -> Iterator[None]:
    """Re-raise core errors as LiteLLM's, chained to the core error.

    Each carries `num_retries = 0`, which a LiteLLM Router reads off the error in place of its
    own setting: the core has already sent the call as often as it may (to sibling replicas
    when they could take it), so a Router retry would only multiply the sends, and resend what
    the core refused to resend because the server may have worked on it.
    """
    try:
        yield
    except core.SelfHostedError as exc:
        error = litellm_error(exc, model=model)
        error.num_retries = 0  # type: ignore[attr-defined]  # LiteLLM's errors define it; the Router reads it
        error.selfhosted_error = exc  # type: ignore[attr-defined]  # ours, see the module docstring
        raise error from exc


def _status_error(status: int, text: str, model: str) -> Exception:
    """An HTTP status the table above does not name: 5xx by code, 408 a timeout, others kept."""
    if status == 408:
        return lx.Timeout(message=text, model=model, llm_provider=PROVIDER)
    return _server_error(status, text, model)


def _server_error(status: int, text: str, model: str) -> Exception:
    if status == 503:
        return lx.ServiceUnavailableError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(503)
        )
    if status == 502:
        return lx.BadGatewayError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(502)
        )
    if status == 500:
        return lx.InternalServerError(
            message=text, model=model, llm_provider=PROVIDER, response=_response(500)
        )
    return lx.APIError(
        status_code=status, message=text, model=model, llm_provider=PROVIDER, request=_REQUEST
    )


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=_REQUEST)
