"""Routing state shared by many processes: what they exchange, and the thread that does it.

Processes that route to the same replicas (the workers of one LiteLLM proxy, the pods of one
app) share each endpoint's standing through a store (`routing.state`, see `_redis`):

- its consecutive failures, counted by all, so `failure_threshold` failures in all eject it
  once for every process, not once per process;
- its ejection and when it ends, and which one process probes it then (the probe's claim);
- its rests (429, `Retry-After`, 503 "Loading model");
- each process's requests in flight there, in a record that expires with the process;
- the load its server last reported (`load_signals: auto`); a process skips its own read of
  a server that another read within the interval, so the servers are not asked once per
  process.

Requests never wait for the store. The `Router` queues what happened (`Op`s); one thread per
provider (`StateSync`) sends them with the process's own counts (`Outbox`) in one round trip
when something happened, or every `sync_interval` otherwise, and hands what the store holds
back (`Shared`, per endpoint). The `Router` and `_circuit` decide from it; the store only keeps
and shares it. Affinity needs none of this: rendezvous hashing orders the replicas alike in
every process.

When the store does not answer, every process routes on its own state (logged once), or with
`fail_closed` refuses requests, and the next exchange that succeeds shares its ejections and
rests again.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from selfhosted_core.routing import Router

__all__ = ["Op", "Outbox", "Shared", "StateStore", "StateSync", "StateUnavailable"]

_log = logging.getLogger("selfhosted_core")

OpKind = Literal["fail", "clear", "open", "restore", "rest", "release", "load"]


class Op(NamedTuple):
    """One thing that happened to an endpoint, for the other processes to know.

    `fail` (one more consecutive failure), `clear` (an answer: none in a row), `open` (ejected
    for `seconds`, unless already ejected), `restore` (a probe succeeded), `rest` (rest for
    `seconds`, `loading` or rate limited), `release` (a probe ended without a verdict: its
    claim is given back), `load` (its server reported `seconds` requests).
    """

    kind: OpKind
    slot: int
    seconds: float = 0.0
    error: str = ""
    loading: bool = False


@dataclass(frozen=True, slots=True)
class Outbox:
    """What one exchange sends: the ops since the last, and this process's own standing."""

    ops: tuple[Op, ...]
    in_flight: tuple[int, ...]
    """Per slot, this process's requests in flight (replacing what it sent before)."""
    claims: tuple[int, ...]
    """Slots whose shared ejection is over, whose probe this process would send."""
    probing: tuple[int, ...]
    """Slots whose probe this process has out: its claim is kept."""


@dataclass(frozen=True, slots=True)
class Shared:
    """One endpoint's standing as the store holds it after an exchange."""

    failures: int
    ejected_for: float | None
    """Seconds left of its ejection; None when not ejected, 0 or less when due for a probe."""
    rest_for: float
    loading: bool
    error: str | None
    probe: bool
    """Whether this process holds the claim to probe it."""
    elsewhere: int
    """Requests in flight there from the other processes."""
    load: int | None
    """The load its server last reported to another process (None: none did)."""
    load_age: float | None
    """Seconds since its server reported `load`."""


class StateUnavailable(Exception):
    """The store did not answer; the message names it (never its credentials)."""


class StateStore(Protocol):
    """Keeps and shares the routing state; decides nothing (the `Router` does)."""

    def exchange(self, outbox: Outbox) -> list[Shared]:
        """Apply `outbox` and return every endpoint's shared standing, in slot order.

        Raises:
            StateUnavailable: The store could not be reached or did not answer in time.
        """
        ...

    def close(self) -> None:
        """Leave (this process's counts stop counting) and let go of the connections."""
        ...


class StateSync:
    """The thread exchanging one router's state with the store.

    Started by the provider's first request, stopped by `close()` (and when the provider is
    garbage-collected). `wake` makes it exchange at once, for an ejection or a restore.

    Args:
        router: The router whose state is shared.
        store: Where it is shared.
        interval: Seconds between exchanges when nothing happened.
        fail_closed: Whether the router refuses requests while the store is out of reach.
        where: The store as a log line names it (no credentials).
    """

    def __init__(
        self,
        router: Router,
        store: StateStore,
        *,
        interval: float,
        fail_closed: bool,
        where: str,
    ) -> None:
        self._router = router
        self._store = store
        self._interval = interval
        self._fail_closed = fail_closed
        self._where = where
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reachable: bool | None = None
        router.on_pending(self._wake.set)
        _SYNCS.add(self)

    @property
    def running(self) -> bool:
        """Whether the thread has been started and not stopped since."""
        return self._thread is not None

    def start(self) -> None:
        """Start the thread unless it runs."""
        with self._lock:
            if self._thread is not None:
                return
            self._stopped = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stopped,), name="selfhosted-state-sync", daemon=True
            )
            self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Stop the thread; with `wait`, until it has ended, and leave the store."""
        with self._lock:
            self._stopped.set()
            self._wake.set()
            thread, self._thread = self._thread, None
        if wait:
            if thread is not None:
                thread.join()
            self._store.close()

    def exchange(self) -> bool:
        """One exchange with the store; whether it answered. Never raises.

        The first failure after an answer (and the first answer after failures) is logged;
        the router then routes on its own state (or refuses, `fail_closed`) until it answers.
        """
        outbox = self._router.outbox()
        try:
            shared = self._store.exchange(outbox)
        except StateUnavailable as exc:
            if self._reachable is not False:
                _log.warning(
                    "routing state: %s did not answer (%s); %s until it does",
                    self._where,
                    exc,
                    "refusing requests (routing.state.fail_closed)"
                    if self._fail_closed
                    else "each process routes on its own state",
                )
            self._reachable = False
            self._router.unshared(refuse=self._fail_closed)
            return False
        if self._reachable is False:
            _log.warning("routing state: %s answers again; state shared again", self._where)
        self._reachable = True
        self._router.shared(shared)
        return True

    def _run(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            self._wake.clear()
            self.exchange()
            self._wake.wait(self._interval)

    def _forked(self) -> None:
        # In a child process no thread runs (the next request starts one), and the parent's
        # thread may have held the router's lock.
        self._thread = None
        self._lock = threading.Lock()
        self._router.forked()


_SYNCS: weakref.WeakSet[StateSync] = weakref.WeakSet()


def _after_fork() -> None:
    for sync in list(_SYNCS):
        sync._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
