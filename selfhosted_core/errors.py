"""The errors the core raises: every failure leaves it as a `SelfHostedError`.

```
SelfHostedError
├─ ConfigurationError                bad config; names the field or variable
│  └─ UnknownModelError              no endpoint serves this model (lists those that exist)
├─ InvalidRequestError               the request itself is malformed (checked before any I/O)
├─ CapabilityError                   the model cannot do what the request needs
├─ NotSupportedError                 file upload/delete and other operations servers lack
├─ EndpointConnectionError           connect refused/reset, server disconnected  (retryable)
├─ EndpointTimeoutError              connect/read/write/pool timeout             (retryable)
├─ APIStatusError                    the server answered with an error status
│  ├─ BadRequestError                400, 422
│  │  └─ ContextWindowExceededError  recognised from each server's own wording
│  ├─ AuthenticationError            401, 403
│  ├─ NotFoundError                  404
│  ├─ RateLimitError                 429 (retryable; `retry_after` when sent)
│  └─ ServerError                    5xx, incl. 503 while a model is loading (retryable)
└─ ResponseError                     2xx but malformed body, stream, or embedding
```

Every error carries the model id and the endpoint label (never its key or URL credentials),
says whether retrying may help (`retryable`), and, when a stream broke after output had already
arrived, the aggregated `partial` response so nothing received is lost. A transport error also
says how far the exchange got (`stage`), which is what decides whether it may be sent again; a
request that was sent more than once lists every send in `attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from selfhosted_core.types import ChatResponse

__all__ = [
    "APIStatusError",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "CapabilityError",
    "ConfigurationError",
    "ContextWindowExceededError",
    "EndpointConnectionError",
    "EndpointTimeoutError",
    "InvalidRequestError",
    "NotFoundError",
    "NotSupportedError",
    "RateLimitError",
    "ResponseError",
    "SelfHostedError",
    "ServerError",
    "Stage",
    "UnknownModelError",
]

_BODY_EXCERPT = 500

Stage = Literal["connect", "send", "body"]
"""How far an exchange got when its transport failed.

`connect`: no connection was had (refused, unresolvable, TLS, connecting or waiting for a pooled
connection timed out), so the server never saw the request. `send`: connected, the request was
being sent or its answer awaited, and no byte of a response arrived. `body`: the response had
started (its headers arrived) when the body broke off or stalled.
"""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send of a request and how it ended.

    Attributes:
        endpoint: The label of the endpoint it was sent to.
        outcome: The error type it ended with (`"ServerError"`, `"EndpointConnectionError"`).
        status: The HTTP status, when the server answered with one.
        resent: Whether the request was sent again after it.
    """

    endpoint: str
    outcome: str
    status: int | None = None
    resent: bool = False

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.endpoint}: {self.outcome}{status}{', resent' if self.resent else ''}"


class SelfHostedError(Exception):
    """Base of every error raised by selfhosted-llm.

    Attributes:
        message: What went wrong, in one sentence.
        model: The model id the request asked for, when known.
        endpoint: The label of the endpoint involved, when one was chosen.
        partial: What a broken stream had delivered before it failed.
        attempts: Every send of the request, in order, this error's own last; empty when the
            error came before any send (a bad request, every replica ejected).
    """

    retryable: bool = False
    attempts: tuple[Attempt, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        partial: ChatResponse | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.model = model
        self.endpoint = endpoint
        self.partial = partial

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling (process pools, workers).
        return (_rebuild, (type(self), self.__dict__))

    def __str__(self) -> str:
        where = ", ".join(
            f"{name}={value!r}"
            for name, value in (("model", self.model), ("endpoint", self.endpoint))
            if value is not None
        )
        return f"{self.message} ({where})" if where else self.message


class ConfigurationError(SelfHostedError, ValueError):
    """The configuration is invalid; `problems` lists every problem with its path."""

    def __init__(self, problems: list[str] | str, *, model: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} configuration problems:\n" + "\n".join(
                f"  {problem}" for problem in self.problems
            )
        super().__init__(message, model=model)


class UnknownModelError(ConfigurationError):
    """No configured endpoint serves the requested model id."""

    def __init__(self, model: str, *, known: list[str]) -> None:
        self.known = known
        listing = ", ".join(repr(name) for name in known) or "none"
        super().__init__(f"unknown model {model!r}; configured models: {listing}", model=model)


class InvalidRequestError(SelfHostedError, ValueError):
    """The request is malformed (for example a named tool choice naming no offered tool)."""


class CapabilityError(SelfHostedError):
    """The model is not declared with a capability the request needs."""


class NotSupportedError(SelfHostedError):
    """The operation is not offered by self-hosted inference servers."""


class EndpointConnectionError(SelfHostedError):
    """The endpoint could not be reached or dropped the connection.

    Attributes:
        stage: How far the exchange got (see `Stage`).
        hung_up: The server closed the connection without sending a response: a kept-alive
            connection it had closed, or a server going down.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        partial: ChatResponse | None = None,
        stage: Stage = "send",
        hung_up: bool = False,
    ) -> None:
        super().__init__(message, model=model, endpoint=endpoint, partial=partial)
        self.stage: Stage = stage
        self.hung_up = hung_up


class EndpointTimeoutError(SelfHostedError):
    """The endpoint did not answer within the configured timeout.

    Attributes:
        stage: How far the exchange got (see `Stage`): `connect` means the server never saw
            the request; `send` means it may be generating the answer.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        partial: ChatResponse | None = None,
        stage: Stage = "send",
    ) -> None:
        super().__init__(message, model=model, endpoint=endpoint, partial=partial)
        self.stage: Stage = stage


class APIStatusError(SelfHostedError):
    """The server answered with an HTTP error status.

    Attributes:
        status_code: The HTTP status.
        body: An excerpt of the response body (at most 500 characters).
        error_type: The server's own error type or code, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        error_type: str | None = None,
        model: str | None = None,
        endpoint: str | None = None,
        partial: ChatResponse | None = None,
    ) -> None:
        super().__init__(message, model=model, endpoint=endpoint, partial=partial)
        self.status_code = status_code
        self.body = body[:_BODY_EXCERPT]
        self.error_type = error_type

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {super().__str__()}"


class BadRequestError(APIStatusError):
    """The server rejected the request (400 or 422)."""


class ContextWindowExceededError(BadRequestError):
    """The prompt (plus requested output) does not fit the model's context window."""


class AuthenticationError(APIStatusError):
    """The endpoint rejected the API key (401 or 403)."""


class NotFoundError(APIStatusError):
    """The server does not know the path or the model (404)."""


class RateLimitError(APIStatusError):
    """The server is busy (429); `retry_after` holds its `Retry-After` seconds when sent."""

    retryable = True
    retry_after: float | None = None


class ServerError(APIStatusError):
    """The server failed (5xx); 503 also while a model is still loading (`loading`)."""

    retryable = True

    @property
    def loading(self) -> bool:
        """Whether the server said it is still loading the model."""
        return self.status_code == 503 and "loading" in self.message.lower()


class ResponseError(SelfHostedError):
    """The server answered 2xx but the body, stream or embedding is malformed."""


def _rebuild(cls: type[SelfHostedError], state: dict[str, Any]) -> SelfHostedError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error
