"""One request's attempts: where each goes, what its failure means, and when to stop resending.

A request is resent only when the server cannot have started on it: no connection was had
(refused, unresolvable, connecting timed out), the connection was lost before any byte of an
answer arrived, or the server said "not now" (429, 502, 503). It goes to another replica when
one can take it, else to the same one after a backoff (or the `Retry-After` a 429 gave), within
the attempt budget (`RoutingPolicy.max_attempts`, or the request's own) and the request's total
timeout. What the server may have worked on (another 5xx, a read timeout, a connection lost
while the answer was read) is resent only when the caller opted in (`resend_unsafe`): a resend
may generate, and bill, the answer twice. A stream that has yielded output is never sent again.

A kept-alive connection the server had closed (llama-server closes one after a streamed reply)
fails the next request on it before any byte is answered; that request is sent once more at
once, to the same replica, without counting against the budget. Every send is listed, in order,
in the raised error's `attempts`.

Each attempt's end is logged here, where it is decided: a debug line of the `selfhosted_core`
logger (model, endpoint label, outcome, milliseconds), and a warning when the request is sent
again. Only labels, error types and statuses are logged: never a key, a message or a reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx2

from selfhosted_core._telemetry import Observation
from selfhosted_core.config import Capability, ModelEndpoint, RoutingPolicy
from selfhosted_core.errors import (
    APIStatusError,
    Attempt,
    EndpointConnectionError,
    EndpointTimeoutError,
    RateLimitError,
    ResponseError,
    SelfHostedError,
    ServerError,
)
from selfhosted_core.routing import Router
from selfhosted_core.types import Usage

_ENDPOINT_FAILURES = (EndpointConnectionError, EndpointTimeoutError, ResponseError, ServerError)
"""Errors that count against an endpoint's circuit breaker."""

_RESENT_STATUSES = frozenset({429, 502, 503})
"""Statuses that say the request was not worked on: busy, bad gateway, unavailable/loading."""

_log = logging.getLogger("selfhosted_core")


def may_resend(error: SelfHostedError, *, unsafe: bool = False) -> bool:
    """Whether the request that ended in `error` may be sent again.

    Safe to resend: what the server cannot have worked on (see the module docstring). With
    `unsafe`, also what it may have: any 5xx, a read timeout, a connection lost mid-answer.
    Never what had delivered output (`partial`), nor an answer that was malformed.
    """
    if error.partial is not None:
        return False
    if isinstance(error, APIStatusError):
        return error.status_code in _RESENT_STATUSES or (unsafe and error.status_code >= 500)
    if isinstance(error, EndpointConnectionError):
        return error.stage != "body" or unsafe
    if isinstance(error, EndpointTimeoutError):
        # Only connecting timed out for sure; a read timeout may be a generation under way.
        return error.stage == "connect" or unsafe
    return False


def _failure(error: SelfHostedError) -> str:
    """An attempt's failure as logged and traced: the error type, and the status if any."""
    if isinstance(error, APIStatusError):
        return f"{type(error).__name__} {error.status_code}"
    return type(error).__name__


def _hung_up(error: SelfHostedError) -> bool:
    """A kept-alive connection closed under the request: no byte of an answer came back."""
    return isinstance(error, EndpointConnectionError) and error.hung_up and error.partial is None


class Call:
    """The attempts of one request: pick, time, record, and decide whether to try again.

    Pure decisions around the `Router`'s shared state; `_engine` does the sending and sleeping.

    Args:
        router: The replicas' shared state.
        policy: The config's routing policy.
        replicas: The model's endpoints.
        model: The model id.
        needs: The capabilities the request needs.
        prefer: The slot to serve on when it can take the request.
        strict: Serve on `prefer` only, even when it is ejected; never on a sibling.
        max_attempts: Sends at most (the first included); the policy's when None.
        resend_unsafe: Whether to resend what the server may have worked on; the policy's
            when None.
        timeout: The request's total seconds; the slowest replica's `timeout` when None.
        record: Whether outcomes count in the router's state (a health check's do not: its
            verdict reaches the router as a probe).
        key: The request's affinity key under the `affinity` strategy (see `_affinity`).
        observation: The call's OpenTelemetry span, when the application set OTel up.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        router: Router,
        policy: RoutingPolicy,
        replicas: Sequence[ModelEndpoint],
        *,
        model: str,
        needs: frozenset[Capability],
        prefer: int | None = None,
        strict: bool = False,
        max_attempts: int | None = None,
        resend_unsafe: bool | None = None,
        timeout: float | None = None,
        record: bool = True,
        key: bytes | None = None,
        observation: Observation | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        router.check(model, needs)
        self._router = router
        self._policy = policy
        self._model = model
        self._needs = needs
        self._prefer = prefer
        self._strict = strict
        self._budget = max_attempts if max_attempts is not None else policy.max_attempts
        self._unsafe = policy.resend_unsafe if resend_unsafe is None else resend_unsafe
        self._record_outcomes = record
        self._affinity = None if key is None else router.affinity(model, key)
        self.observation = observation
        self._clock = clock
        budget = timeout if timeout is not None else max(e.timeout for e in replicas)
        self._timeout = timeout
        self._deadline = clock() + budget
        self._counted = 0
        self._number = 0
        self._again: int | None = None
        self._free_resend = True
        self._started = 0.0
        self._not_before: dict[int, float] = {}
        self._sent: list[tuple[str, SelfHostedError]] = []

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every send that failed so far, in order."""
        last = len(self._sent) - 1
        return tuple(
            Attempt(
                endpoint,
                type(error).__name__,
                error.status_code if isinstance(error, APIStatusError) else None,
                resent=index < last,
            )
            for index, (endpoint, error) in enumerate(self._sent)
        )

    def next(self) -> tuple[int, float]:
        """The slot for the next attempt and the seconds to wait before sending to it.

        Raises the latest attempt's error (or `EndpointTimeoutError` before any) when the
        wait would end past the request's deadline.
        """
        self._number += 1
        if not self._record_outcomes:
            assert self._prefer is not None, "an unrecorded call probes one named slot"
            self._started = self._clock()
            return self._prefer, 0.0
        again, self._again = self._again, None
        pick = self._router.pick(
            self._model,
            self._needs,
            prefer=again if again is not None else self._prefer,
            strict=self._strict or again is not None,
            not_before={} if again is not None else self._not_before,
            affinity=self._affinity,
            first=self._counted == 0,
        )
        now = self._clock()
        if pick.wait > 0 and now + pick.wait >= self._deadline:
            self._router.abandoned(pick.slot)
            if self._sent:
                last = self._sent[-1][1]
                last.attempts = self.attempts
                raise last
            raise EndpointTimeoutError(
                f"no replica of {self._model!r} is ready within the timeout", model=self._model
            )
        if pick.hit is not None and self.observation is not None:
            self.observation.routed(hit=pick.hit)
        if again is None:
            self._counted += 1
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
        self._ended(slot, "ok")
        if self._record_outcomes:
            self._router.succeeded(slot, latency=self._clock() - self._started)

    def reported(self, slot: int, usage: Usage | None) -> None:
        """The answer from `slot` reported `usage`: its prompt tokens count for the replica."""
        if usage is not None and self._record_outcomes:
            self._router.reported(
                slot,
                prompt_tokens=usage.prompt_tokens,
                cached_prompt_tokens=usage.cached_prompt_tokens or 0,
            )

    def abandoned(self, slot: int) -> None:
        """The caller stopped the attempt (cancelled it, closed the stream early)."""
        self._ended(slot, "abandoned")
        if self._record_outcomes:
            self._router.abandoned(slot)

    def failed(self, slot: int, error: SelfHostedError) -> bool:
        """Record the failed attempt; whether to send the request again.

        Giving up lists every send in `error.attempts`.
        """
        self._sent.append((error.endpoint or "", error))
        self._ended(slot, error)
        if not self._record_outcomes:
            error.attempts = self.attempts
            return False
        if _hung_up(error) and self._free_resend and self._clock() < self._deadline:
            # The race with a server closing an idle kept-alive connection, not a failure.
            self._free_resend = False
            self._router.abandoned(slot)
            self._again = slot
            return True
        self._record(slot, error)
        resend = (
            may_resend(error, unsafe=self._unsafe)
            and self._counted < self._budget
            and self._clock() < self._deadline
        )
        if not resend:
            error.attempts = self.attempts
            return False
        retry_after = error.retry_after if isinstance(error, RateLimitError) else None
        backoff = self._policy.backoff * 2 ** (self._counted - 1)
        self._not_before[slot] = self._clock() + (
            retry_after if retry_after is not None else backoff
        )
        _log.warning(
            "%s: attempt %d on %s failed (%s); sending again",
            self._model,
            self._number,
            self._router.label(slot),
            _failure(error),
        )
        return True

    @contextmanager
    def outcome(self, slot: int) -> Iterator[None]:
        """Record how a stream read on `slot` ends: answered, failed (never resent), abandoned."""
        try:
            yield
        except SelfHostedError as exc:
            self._sent.append((exc.endpoint or "", exc))
            self._ended(slot, exc)
            if self._record_outcomes:
                self._record(slot, exc)
            exc.attempts = self.attempts
            raise
        except BaseException:
            self.abandoned(slot)
            raise
        self.succeeded(slot)

    def _ended(self, slot: int, result: SelfHostedError | str) -> None:
        """The attempt on `slot` ended in `result` ("ok", "abandoned", or an error)."""
        debug = _log.isEnabledFor(logging.DEBUG)
        if not debug and self.observation is None:
            return
        seconds = self._clock() - self._started
        if isinstance(result, str):
            outcome, status, shown = result, None, result
        else:
            outcome, shown = type(result).__name__, _failure(result)
            status = result.status_code if isinstance(result, APIStatusError) else None
        if debug:
            _log.debug(
                "%s: attempt %d on %s: %s in %.1f ms",
                self._model,
                self._number,
                self._router.label(slot),
                shown,
                seconds * 1000,
            )
        if self.observation is not None:
            endpoint = self._router.endpoint(slot)
            self.observation.attempt(endpoint, self._number, outcome, status, seconds)

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
