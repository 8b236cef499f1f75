"""One endpoint's standing: requests in flight, its circuit breaker, and what it has done.

Pure bookkeeping: every method takes the time (`time.monotonic()` seconds) instead of reading a
clock, and the `Router` holds the lock. The breaker follows the classic three states:

```
closed --N consecutive failures--> open --cooldown (+/-20%) elapsed--> half_open (one probe)
   ^                                 ^                                     |
   +---------- probe succeeded ------|------------- probe failed ----------+
```

A server still loading its model (503 "Loading model") or rate limiting (429) is not broken:
it rests until the time it gave (or the cooldown) without counting towards the breaker.

An ejection (the circuit opening) and a restore (closing again) are logged here, where they are
decided, as warnings of the `selfhosted_core` logger naming the endpoint's label.

When processes share routing state (`routing.state`, see `_sharing`), `learned` takes in what
they found, and an open circuit is probed only by the process holding the endpoint's probe
(`may_probe`): the others keep it ejected until the probe's verdict reaches them.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from selfhosted_core.config import RoutingPolicy

__all__ = ["Circuit", "CircuitState"]

_JITTER = 0.2
_LATENCY_WINDOW = 1024

_log = logging.getLogger("selfhosted_core")


class CircuitState(str, Enum):
    """Whether an endpoint takes requests: `closed` yes, `open` no (ejected), `half_open` one."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class Circuit:
    """The mutable standing of one endpoint; the `Router` serialises access to it."""

    policy: RoutingPolicy
    label: str = ""
    state: CircuitState = CircuitState.CLOSED
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    consecutive_failures: int = 0
    rest_until: float = 0.0
    loading: bool = False
    probing: bool = False
    last_error: str | None = None
    shared: bool = False
    """Whether other processes share this standing now (then probing takes the probe's claim)."""
    may_probe: bool = True
    """Whether this process may probe the endpoint when its ejection is over."""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))

    def ready_at(self, now: float) -> float:
        """When this endpoint can take a new request (`now` or earlier when it can now)."""
        if self.state is CircuitState.CLOSED:
            # First: the common case, and a check per replica of every request.
            return self.rest_until
        if self.state is CircuitState.HALF_OPEN and self.probing:
            # The probe decides; until then the endpoint is as good as ejected.
            return now + self.policy.cooldown
        if self.state is CircuitState.OPEN and not self.may_probe:
            # Another process probes it (or will claim to): until its verdict, ejected.
            return max(self.rest_until, now + self.policy.cooldown)
        return self.rest_until

    @property
    def ejected(self) -> bool:
        """Whether the breaker keeps requests away (open, or half-open with its probe out)."""
        return self.state is CircuitState.OPEN or (
            self.state is CircuitState.HALF_OPEN and self.probing
        )

    def begin(self, now: float) -> None:
        """A request was sent here; an open circuit whose rest is over lets it probe."""
        self.in_flight += 1
        if self.state is CircuitState.OPEN and now >= self.rest_until and self.may_probe:
            self.state = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN:
            self.probing = True

    def succeeded(self, latency: float) -> None:
        """The request got its answer: the endpoint is healthy."""
        self._end()
        self.requests += 1
        self.latencies.append(latency)
        self._restore()

    def failed(self, now: float, error: str) -> None:
        """The endpoint failed the request (no answer, a broken answer, a 5xx)."""
        self._end()
        self.requests += 1
        self.errors += 1
        self.last_error = error
        self.consecutive_failures += 1
        if (
            self.state is CircuitState.HALF_OPEN
            or self.consecutive_failures >= self.policy.failure_threshold
        ):
            self._open(now)

    def rested(self, now: float, seconds: float, error: str, *, loading: bool) -> None:
        """The endpoint is alive but asked for time: loading its model, or rate limiting."""
        self._end()
        self.requests += 1
        self.errors += 1
        self.last_error = error
        self.loading = loading
        self.rest_until = max(self.rest_until, now + seconds)
        if self.state is CircuitState.HALF_OPEN:
            self.state = CircuitState.OPEN
            self._probe_undecided()

    def answered(self) -> None:
        """The server answered (a 4xx about the request itself): alive, but no latency sample."""
        self._end()
        self.requests += 1
        self.errors += 1
        self._restore()

    def abandoned(self) -> None:
        """The caller gave up (cancelled, closed a stream early): says nothing of the endpoint."""
        self._end()
        if self.state is CircuitState.HALF_OPEN:
            self.state = CircuitState.OPEN
            self._probe_undecided()

    def probed(self, now: float, *, healthy: bool, loading: bool) -> None:
        """An active health check's verdict: restore, rest while loading, or eject."""
        if healthy:
            self._restore()
        elif loading:
            self.loading = True
            self.rest_until = max(self.rest_until, now + self.policy.cooldown)
        else:
            self._open(now)

    def learned(
        self,
        now: float,
        *,
        failures: int,
        ejected_for: float | None,
        rest_for: float,
        loading: bool,
        error: str | None,
        may_probe: bool,
    ) -> bool:
        """Take in the standing the processes sharing it agree on; whether it opened now.

        `failures` are the consecutive failures every process counted (this one's included),
        `ejected_for` the seconds left of the shared ejection (None: not ejected; 0 or less:
        over, to be probed), `rest_for` of the shared rest, and `may_probe` whether this
        process holds the probe. A probe this process has out is left to its verdict. It
        opens here when the failures counted together reach the threshold; the caller shares
        that ejection.
        """
        self.shared = True
        if self.state is CircuitState.HALF_OPEN and self.probing:
            return False
        self.consecutive_failures = failures
        if error is not None:
            self.last_error = error
        resting = now + rest_for if rest_for > 0 else 0.0
        if ejected_for is not None:
            if self.state is CircuitState.CLOSED:
                _log.warning(
                    "endpoint %s ejected by another process sharing its state (%s)",
                    self.label,
                    self.last_error or "failing",
                )
            self.state = CircuitState.OPEN
            self.rest_until = max(now + ejected_for, resting)
            self.may_probe = may_probe
            self.loading = loading
            return False
        if self.state is not CircuitState.CLOSED:
            _log.info("endpoint %s restored by another process's probe", self.label)
            self.state = CircuitState.CLOSED
        self.may_probe = True
        self.rest_until = resting
        self.loading = loading and rest_for > 0
        if failures >= self.policy.failure_threshold:
            self._open(now)
            return True
        return False

    def unshared(self) -> None:
        """The shared standing is out of reach: this process decides alone until it is back."""
        self.shared = False
        self.may_probe = True

    def _probe_undecided(self) -> None:
        # A probe that ended with no verdict (a rest, the caller gone) gives its claim back:
        # shared, the next probe is claimed anew, by whoever asks first after the rest.
        self.may_probe = not self.shared

    def _end(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.probing = False

    def _restore(self) -> None:
        if self.state is not CircuitState.CLOSED:
            _log.warning("endpoint %s restored (circuit closed)", self.label)
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.loading = False
        self.rest_until = 0.0

    def _open(self, now: float) -> None:
        spread = 1 + random.uniform(-_JITTER, _JITTER)
        self.rest_until = now + self.policy.cooldown * spread
        # Shared, the next probe is whoever claims it first once the cooldown is over.
        self.may_probe = not self.shared
        if self.state is not CircuitState.OPEN:
            _log.warning(
                "endpoint %s ejected (circuit open; failures in a row: %d); tried again in %.1f s",
                self.label,
                self.consecutive_failures,
                self.rest_until - now,
            )
        self.state = CircuitState.OPEN
