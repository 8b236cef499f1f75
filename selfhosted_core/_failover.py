"""One request's attempts: where each goes, what its failure means, and when to stop resending.

A request is resent only when the server cannot have started on it: nothing of an answer
arrived (connection refused or reset, the server hung up before answering, connecting timed
out) or the server said "not now" (429, 502, 503). It goes to another replica when one can
take it, else to the same one after a backoff (or the `Retry-After` a 429 gave), within
`RoutingPolicy.max_attempts` and the request's total timeout. An answer that had started, a
stream that had yielded output above all, is never sent again: generating twice would bill
twice and could show the caller two different beginnings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx2

from selfhosted_core.config import Capability, ModelEndpoint, RoutingPolicy
from selfhosted_core.errors import (
    APIStatusError,
    EndpointConnectionError,
    EndpointTimeoutError,
    RateLimitError,
    ResponseError,
    SelfHostedError,
    ServerError,
)
from selfhosted_core.routing import Router

_ENDPOINT_FAILURES = (EndpointConnectionError, EndpointTimeoutError, ResponseError, ServerError)
"""Errors that count against an endpoint's circuit breaker."""

_RESENT_STATUSES = frozenset({429, 502, 503})
"""Statuses that say the request was not worked on: busy, bad gateway, unavailable/loading."""


def may_resend(error: SelfHostedError, *, answered: bool) -> bool:
    """Whether `error` proves the server did no work on the request, so resending is safe.

    `answered` says whether response headers had arrived when it was raised.
    """
    if isinstance(error, APIStatusError):
        return error.status_code in _RESENT_STATUSES and error.partial is None
    if answered:
        return False
    if isinstance(error, EndpointTimeoutError):
        # Only connecting timed out for sure; a read timeout may be a generation under way.
        return isinstance(error.__cause__, httpx2.ConnectTimeout)
    return isinstance(error, EndpointConnectionError)


class Call:
    """The attempts of one request: pick, time, record, and decide whether to try again.

    Pure decisions around the `Router`'s shared state; the provider's sync and async shells
    do the sending and sleeping.
    """

    def __init__(
        self,
        router: Router,
        policy: RoutingPolicy,
        replicas: Sequence[ModelEndpoint],
        *,
        model: str,
        needs: frozenset[Capability],
        endpoint: str | None,
        timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        router.check(model, needs)
        self._router = router
        self._policy = policy
        self._model = model
        self._needs = needs
        self._pin = endpoint
        self._clock = clock
        budget = timeout if timeout is not None else max(e.timeout for e in replicas)
        self._timeout = timeout
        self._deadline = clock() + budget
        self._attempts = 0
        self._started = 0.0
        self._not_before: dict[int, float] = {}
        self._failures: list[str] = []
        self._last: SelfHostedError | None = None

    def next(self) -> tuple[int, float]:
        """The slot for the next attempt and the seconds to wait before sending to it.

        Raises the latest attempt's error (or `EndpointTimeoutError` before any) when the
        wait would end past the request's deadline.
        """
        pick = self._router.pick(
            self._model, self._needs, endpoint=self._pin, not_before=self._not_before
        )
        now = self._clock()
        if pick.wait > 0 and now + pick.wait >= self._deadline:
            self._router.abandoned(pick.slot)
            if self._last is not None:
                # The last failure is the one raised; the ones before it are its attempts.
                self._last.attempts = tuple(self._failures[:-1])
            raise self._last or EndpointTimeoutError(
                f"no replica of {self._model!r} is ready within the timeout", model=self._model
            )
        self._attempts += 1
        self._started = now + pick.wait
        return pick.slot, pick.wait

    def deadline(self, endpoint: ModelEndpoint) -> float:
        """When the current attempt on `endpoint` must be over (monotonic seconds)."""
        if self._timeout is not None:
            return self._deadline
        return min(self._deadline, self._started + endpoint.timeout)

    def timeouts(self, endpoint: ModelEndpoint) -> httpx2.Timeout:
        """The current attempt's timeouts until the response starts, all within its deadline."""
        remaining = max(0.001, self.deadline(endpoint) - self._clock())
        first_byte = endpoint.first_byte_timeout or remaining
        return httpx2.Timeout(
            connect=min(endpoint.connect_timeout, remaining),
            read=min(first_byte, remaining),
            write=remaining,
            pool=remaining,
        )

    def succeeded(self, slot: int) -> None:
        """The attempt on `slot` got its whole answer."""
        self._router.succeeded(slot, latency=self._clock() - self._started)

    def abandoned(self, slot: int) -> None:
        """The caller stopped the attempt (cancelled it, closed the stream early)."""
        self._router.abandoned(slot)

    def failed(self, slot: int, error: SelfHostedError, *, answered: bool) -> bool:
        """Record the failed attempt; whether to send the request again.

        Giving up records the earlier attempts in `error.attempts`.
        """
        self._record(slot, error)
        resend = (
            may_resend(error, answered=answered)
            and self._attempts < self._policy.max_attempts
            and self._clock() < self._deadline
        )
        if not resend:
            error.attempts = tuple(self._failures)
            return False
        retry_after = error.retry_after if isinstance(error, RateLimitError) else None
        backoff = self._policy.backoff * 2 ** (self._attempts - 1)
        self._not_before[slot] = self._clock() + (
            retry_after if retry_after is not None else backoff
        )
        self._failures.append(f"{error.endpoint}: {type(error).__name__}")
        self._last = error
        return True

    @contextmanager
    def outcome(self, slot: int) -> Iterator[None]:
        """Record how the attempt on `slot` ends: answered, failed (never resent), abandoned."""
        try:
            yield
        except SelfHostedError as exc:
            self.failed(slot, exc, answered=True)
            raise
        except BaseException:
            self.abandoned(slot)
            raise
        self.succeeded(slot)

    def _record(self, slot: int, error: SelfHostedError) -> None:
        if isinstance(error, RateLimitError):
            seconds = error.retry_after or self._policy.backoff
            self._router.rested(slot, error, seconds=seconds, loading=False)
        elif isinstance(error, ServerError) and error.loading:
            self._router.rested(slot, error, seconds=self._policy.cooldown, loading=True)
        elif isinstance(error, _ENDPOINT_FAILURES):
            self._router.failed(slot, error)
        elif isinstance(error, APIStatusError):
            self._router.answered(slot)
        else:
            # Refused before or after the server (unsupported, invalid): not the endpoint's doing.
            self._router.abandoned(slot)
