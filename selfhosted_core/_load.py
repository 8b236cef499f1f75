"""A server's own count of its load, read in the background (`load_signals: auto`).

`probe` is an exchange of the attempt engine, as a health check is: it GETs the server's
Prometheus `/metrics` and reads the requests running and waiting from whichever series it has,

- llama-server (with `--metrics`): `llamacpp:requests_processing`, `llamacpp:requests_deferred`
  (tools/server/server-task.cpp, `server_task_result_metrics::to_metrics`);
- vLLM: `vllm:num_requests_running`, `vllm:num_requests_waiting` (summed over engines);
- SGLang (with `--enable-metrics`): `sglang:num_running_reqs`, `sglang:num_queue_reqs`;

and for a llama-server that answers `/metrics` with 501 (started without `--metrics`), counts
the busy entries of `/slots` (on by default; `--no-slots` turns it off). Those are what the
endpoint pickers of llm-d and SGLang's router read.

`LoadWatcher` reads each watched endpoint in a daemon thread of its own, each `load_interval`,
over a connection that is closed after each read (a kept-alive one would hold one of
llama-server's HTTP threads), and hands the count to the `Router`. Requests never wait for
it: a read that fails or takes longer than its short timeout leaves the router with its own
count, and a server that offers no load at all is asked again only after a minute. Where a
server's load was found (`/metrics` or `/slots`) is remembered, so each read is one GET.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from typing import Literal, NamedTuple

import httpx2
from pydantic import ValidationError

from selfhosted_core import _engine, _http
from selfhosted_core._calls import CallPlan
from selfhosted_core._failover import Call
from selfhosted_core._http import RequestHeaders, Whole
from selfhosted_core._wire import WireSlots
from selfhosted_core.config import Config
from selfhosted_core.errors import SelfHostedError
from selfhosted_core.routing import Router

__all__ = ["Load", "LoadWatcher", "Source", "from_metrics", "from_slots", "probe"]

_log = logging.getLogger("selfhosted_core")

_RUNNING = frozenset(
    {"llamacpp:requests_processing", "vllm:num_requests_running", "sglang:num_running_reqs"}
)
_WAITING = frozenset(
    {"llamacpp:requests_deferred", "vllm:num_requests_waiting", "sglang:num_queue_reqs"}
)
_NAMESPACES = ("llamacpp:", "vllm:", "sglang:")
_UNSUPPORTED_PAUSE = 60.0
"""Seconds before a server that offered no load is asked again (it may be restarted with it)."""


class Load(NamedTuple):
    """Requests a server is running, and waiting to run (None: it does not say)."""

    running: int
    waiting: int | None

    @property
    def total(self) -> int:
        """Running and waiting: what the router compares across replicas."""
        return self.running + (self.waiting or 0)


def from_metrics(text: str) -> Load | None:
    """The load in a Prometheus text exposition; None when it has no running-requests series.

    Series of one name with several label sets (vLLM's engines) are summed; a NaN or a
    malformed value is ignored. Only lines of the three servers' namespaces are split: vLLM's
    page runs to hundreds of kilobytes of histograms.
    """
    running: float | None = None
    waiting: float | None = None
    for line in text.splitlines():
        if not line.startswith(_NAMESPACES):
            continue
        name, rest = _split_name(line)
        if name not in _RUNNING and name not in _WAITING:
            continue
        value = _sample_value(rest)
        if value is None:
            continue
        if name in _RUNNING:
            running = (running or 0.0) + value
        else:
            waiting = (waiting or 0.0) + value
    if running is None:
        return None
    return Load(round(running), None if waiting is None else round(waiting))


def from_slots(body: bytes) -> Load | None:
    """The load in llama-server's `/slots`: its busy slots; None when the body is not a list."""
    try:
        slots = WireSlots.model_validate_json(body).root
    except ValidationError:
        return None
    return Load(sum(slot.is_processing for slot in slots), None)


Source = Literal["metrics", "slots"]
"""Where a server's load is read: its Prometheus `/metrics`, or llama-server's `/slots`."""


def probe(
    config: Config, *, slot: int, source: Source | None = None
) -> Generator[CallPlan, Whole, tuple[Load, Source] | None]:
    """Read the load of the server in `slot`, and where it was read; None when it offers none.

    `source` is where it was read last time, tried alone (a llama-server without `--metrics`
    would otherwise cost a 501 every time). A transport failure propagates (the server may be
    down); a status it answers is read.
    """
    endpoint = config.endpoints[slot]
    if source in (None, "metrics"):
        url = f"{endpoint.server_root}/metrics"
        metrics = yield CallPlan.get(slot=slot, endpoint=endpoint, url=url)
        if metrics.status_code == 200:
            load = from_metrics(metrics.content.decode("utf-8", "replace"))
            if load is not None:
                return load, "metrics"
        if source is not None:
            return None
    url = f"{endpoint.server_root}/slots"
    slots = yield CallPlan.get(slot=slot, endpoint=endpoint, url=url)
    if slots.status_code == 200:
        load = from_slots(slots.content)
        if load is not None:
            return load, "slots"
    return None


class LoadWatcher:
    """Reads the load of the router's watched endpoints every `load_interval`, in threads.

    One daemon thread per endpoint, so a server slow to answer delays no other's reading.
    `start` is called by each request and starts them once; `stop` ends them (and a later
    `start` starts them again). A watcher whose provider is garbage-collected stops too.

    Args:
        config: The provider's config.
        router: Where the counts go (`Router.observed`).
        headers: Each slot's request headers (its key).
        transport: A sync transport for every endpoint (tests inject one).
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        config: Config,
        router: Router,
        headers: Sequence[RequestHeaders],
        *,
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._router = router
        self._headers = headers
        self._transport = transport
        self._clock = clock
        self._slots = router.watched
        self._sources: dict[int, Source | None] = dict.fromkeys(self._slots)
        self._skip_until = dict.fromkeys(self._slots, -math.inf)
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._warned = False
        _WATCHERS.add(self)

    @property
    def running(self) -> bool:
        """Whether the threads have been started and not stopped since."""
        return bool(self._threads)

    def start(self) -> None:
        """Start one thread per watched endpoint, unless they run."""
        with self._lock:
            if self._threads or not self._slots:
                return
            self._stopped = threading.Event()
            self._threads = [
                threading.Thread(
                    target=self._watch,
                    args=(slot, self._stopped),
                    name=f"selfhosted-load-watcher-{slot}",
                    daemon=True,
                )
                for slot in self._slots
            ]
            for thread in self._threads:
                thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Stop the threads; with `wait`, until they have ended (a read in flight ends first)."""
        with self._lock:
            self._stopped.set()
            threads, self._threads = self._threads, []
        if wait:
            for thread in threads:
                thread.join()

    def read(self, slot: int) -> None:
        """Read `slot`'s server once and hand the count (or None) to the router.

        Never raises: whatever goes wrong leaves the router with its own count.
        """
        now = self._clock()
        if now < self._skip_until[slot]:
            return
        client = self._new_client(slot)
        try:
            found = self._read(slot, client, self._sources[slot])
            if found is None and self._sources[slot] is not None:
                # The server changed (restarted without --metrics, say): look again.
                found = self._read(slot, client, None)
        except SelfHostedError:
            found = None
        except Exception as exc:  # a watcher thread must not die of it
            found = None
            self._warn(slot, exc)
        else:
            if found is None:
                self._skip_until[slot] = now + _UNSUPPORTED_PAUSE
        finally:
            client.close()
        self._sources[slot] = None if found is None else found[1]
        self._router.observed(slot, None if found is None else found[0].total)

    def turn(self, slot: int) -> None:
        """Read `slot`'s server, unless another process sharing routing state just did.

        Its reading reached the router (`routing.state`), so one read per interval serves
        every process.
        """
        interval = self._router.policy(self._config.endpoints[slot].id).load_interval
        if not self._router.heard(slot, within=interval):
            self.read(slot)

    def _watch(self, slot: int, stopped: threading.Event) -> None:
        interval = self._router.policy(self._config.endpoints[slot].id).load_interval
        while not stopped.is_set():
            started = self._clock()
            self.turn(slot)
            stopped.wait(max(0.0, interval - (self._clock() - started)))

    def _read(
        self, slot: int, client: httpx2.Client, source: Source | None
    ) -> tuple[Load, Source] | None:
        endpoint = self._config.endpoints[slot]
        policy = self._router.policy(endpoint.id)
        call = Call(
            self._router,
            policy,
            [endpoint],
            model=endpoint.id,
            needs=frozenset(),
            prefer=slot,
            strict=True,
            max_attempts=1,
            # Short: a server busy with a long prefill may answer only when it is done, and
            # by then the count is stale anyway.
            timeout=max(0.25, min(1.0, 2 * policy.load_interval)),
            record=False,
            clock=self._clock,
        )
        engine = _engine.attempts(
            call, lambda chosen: probe(self._config, slot=chosen, source=source)
        )
        return _engine.drive(engine, lambda _: client, self._headers)

    def _new_client(self, slot: int) -> httpx2.Client:
        # One connection per read, closed after it: a kept-alive one would hold one of
        # llama-server's HTTP threads for as long as the provider lives.
        options = _http.client_options(self._config.endpoints[slot])
        options["limits"] = httpx2.Limits(max_connections=1, max_keepalive_connections=0)
        return httpx2.Client(transport=self._transport, **options)

    def _warn(self, slot: int, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            _log.warning(
                "reading the load of %s failed with %s; its own count is used",
                self._config.endpoints[slot].display_name,
                type(exc).__name__,
            )

    def _forked(self) -> None:
        """In a child process: no thread runs there, and the router's lock may be held."""
        self._threads = []
        self._lock = threading.Lock()
        self._router.forked()


_WATCHERS: weakref.WeakSet[LoadWatcher] = weakref.WeakSet()


def _after_fork() -> None:
    for watcher in list(_WATCHERS):
        watcher._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _split_name(line: str) -> tuple[str, str]:
    """A sample line's metric name, and what follows it (labels, value, timestamp)."""
    ends = [index for index in (line.find("{"), line.find(" ")) if index >= 0]
    end = min(ends, default=len(line))
    return line[:end], line[end:]


def _sample_value(rest: str) -> float | None:
    """The value of a sample line after its name: `{labels} value [timestamp]` or `value`."""
    if "}" in rest:
        rest = rest.rsplit("}", 1)[1]
    fields = rest.split()
    if not fields:
        return None
    try:
        value = float(fields[0])
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
