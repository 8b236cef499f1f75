"""Core errors as LangChain sees them: each HTTP-level error is also LangChain's own type.

LangChain's `ModelError` family (`langchain_core.exceptions`) asks integrations to raise errors
that "also inherit from the provider SDK's own exception type, so code catching either continues
to work". Here the SDK is `selfhosted_core`: a context overflow is both a
`ContextWindowExceededError` and a `ContextOverflowError`, so LangChain middleware that trims
history on overflow recognises it, and code written against the core still catches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from langchain_core import exceptions as lc

from selfhosted_core import errors as core


class ContextOverflow(core.ContextWindowExceededError, lc.ContextOverflowError):
    """The prompt does not fit the model's context window."""


class InvalidRequest(core.BadRequestError, lc.ModelInvalidRequestError):
    """The server rejected the request (400, 422)."""


class AuthenticationFailed(core.AuthenticationError, lc.ModelAuthenticationError):
    """The server refused the key (401)."""


class PermissionDenied(core.AuthenticationError, lc.ModelPermissionDeniedError):
    """The server refused the key for this request (403)."""


class ModelNotFound(core.NotFoundError, lc.ModelNotFoundError):
    """The server does not know the model or the path (404)."""


class RateLimited(core.RateLimitError, lc.ModelRateLimitError):
    """The server is rate limiting (429)."""


class ServerFailure(core.ServerError, lc.ModelAPIError):
    """The server failed (5xx, including 503 while loading the model)."""


class ConnectionFailed(core.EndpointConnectionError, lc.ModelConnectionError):
    """The endpoint could not be reached."""


class TimedOut(core.EndpointTimeoutError, lc.ModelTimeoutError):
    """The endpoint did not answer in time."""


# Most specific first: the first class the error is an instance of decides.
_TABLE: tuple[tuple[type[core.SelfHostedError], type[core.SelfHostedError]], ...] = (
    (core.ContextWindowExceededError, ContextOverflow),
    (core.BadRequestError, InvalidRequest),
    (core.RateLimitError, RateLimited),
    (core.NotFoundError, ModelNotFound),
    (core.ServerError, ServerFailure),
    (core.EndpointConnectionError, ConnectionFailed),
    (core.EndpointTimeoutError, TimedOut),
)


def langchain_error(error: core.SelfHostedError) -> core.SelfHostedError:
    """The same error (same attributes) as the class LangChain also recognises.

    Errors with no LangChain counterpart (configuration, capability, malformed replies) are
    returned unchanged.
    """
    target: type[core.SelfHostedError] | None = None
    if isinstance(error, core.AuthenticationError):
        status = error.status_code
        target = PermissionDenied if status == 403 else AuthenticationFailed
    else:
        target = next((lc_cls for cls, lc_cls in _TABLE if isinstance(error, cls)), None)
    if target is None or isinstance(error, target):
        return error
    mapped = target.__new__(target)
    Exception.__init__(mapped, *error.args)
    mapped.__dict__.update(error.__dict__)
    return mapped


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Re-raise core errors as their LangChain-recognised classes."""
    try:
        yield
    except core.SelfHostedError as exc:
        mapped = langchain_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
