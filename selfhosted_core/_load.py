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

`LoadWatcher` reads every watched endpoint in a daemon thread, each `load_interval`, over a
connection of its own that is closed after each read (a kept-alive one would hold one of
llama-server's HTTP threads), and hands the count to the `Router`. Requests never wait for
it: a read that fails or takes longer than its short timeout leaves the router with its own
count, and a server that offers no load at all is asked again only after a minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import NamedTuple

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

__all__ = ["Load", "LoadWatcher", "from_metrics", "from_slots", "probe"]

_RUNNING = frozenset(
    {"llamacpp:requests_processing", "vllm:num_requests_running", "sglang:num_running_reqs"}
)
_WAITING = frozenset(
    {"llamacpp:requests_deferred", "vllm:num_requests_waiting", "sglang:num_queue_reqs"}
)
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
    malformed value is ignored.
    """
    running: float | None = None
    waiting: float | None = None
    for line in text.splitlines():
        if not line or line[0] == "#":
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


def probe(config: Config, *, slot: int) -> Generator[CallPlan, Whole, Load | None]:
    """Read the load of the server in `slot`; None when it offers none.

    A transport failure propagates (the server may be down); a status it answers is read.
    """
    endpoint = config.endpoints[slot]
    metrics = yield CallPlan.get(
        slot=slot, endpoint=endpoint, url=f"{endpoint.server_root}/metrics"
    )
    if metrics.status_code == 200:
        load = from_metrics(metrics.content.decode("utf-8", "replace"))
        if load is not None:
            return load
    slots = yield CallPlan.get(slot=slot, endpoint=endpoint, url=f"{endpoint.server_root}/slots")
    if slots.status_code == 200:
        return from_slots(slots.content)
    return None


class LoadWatcher:
    """Reads the load of the router's watched endpoints every `load_interval`, in a thread.

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
        self._clients: dict[int, httpx2.Client] = {}
        self._skip_until = dict.fromkeys(self._slots, -math.inf)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether `start` has run (the thread may have stopped since)."""
        return self._thread is not None or self._stopped.is_set()

    def start(self) -> None:
        """Start the thread, once; nothing happens when no endpoint is watched."""
        with self._lock:
            if self._thread is not None or not self._slots or self._stopped.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="selfhosted-load-watcher", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connections."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        if thread is not None:
            thread.join()
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def read_all(self) -> None:
        """Read every watched endpoint once and hand each count (or None) to the router."""
        for slot in self._slots:
            if self._stopped.is_set():
                return
            now = self._clock()
            if now < self._skip_until[slot]:
                continue
            try:
                load = self._read(slot)
            except SelfHostedError:
                self._router.observed(slot, None)
                continue
            if load is None:
                self._skip_until[slot] = now + _UNSUPPORTED_PAUSE
            self._router.observed(slot, None if load is None else load.total)

    def _run(self) -> None:
        while not self._stopped.is_set():
            started = self._clock()
            self.read_all()
            interval = min(self._interval(slot) for slot in self._slots)
            self._stopped.wait(max(0.0, interval - (self._clock() - started)))

    def _interval(self, slot: int) -> float:
        return self._router.policy(self._config.endpoints[slot].id).load_interval

    def _read(self, slot: int) -> Load | None:
        endpoint = self._config.endpoints[slot]
        interval = self._interval(slot)
        call = Call(
            self._router,
            self._router.policy(endpoint.id),
            [endpoint],
            model=endpoint.id,
            needs=frozenset(),
            prefer=slot,
            strict=True,
            max_attempts=1,
            # Short: a server busy with a long prefill may answer only when it is done, and
            # by then the count is stale anyway.
            timeout=max(0.25, min(1.0, 2 * interval)),
            record=False,
            clock=self._clock,
        )
        engine = _engine.attempts(call, lambda chosen: probe(self._config, slot=chosen))
        return _engine.drive(engine, self._client, self._headers)

    def _client(self, slot: int) -> httpx2.Client:
        client = self._clients.get(slot)
        if client is None:
            options = _http.client_options(self._config.endpoints[slot])
            options["limits"] = httpx2.Limits(max_connections=1, max_keepalive_connections=0)
            client = self._clients[slot] = httpx2.Client(transport=self._transport, **options)
        return client


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
