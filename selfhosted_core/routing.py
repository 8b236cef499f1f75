"""Choosing the endpoint for a request, and keeping score of how each endpoint does.

A model's replicas form a pool. A request goes to a replica that declares what it needs, is not
ejected by its circuit breaker and is not resting (loading its model, rate limiting). Among
those, by the model's `RoutingPolicy.strategy`:

- `least_in_flight`: the one with the fewest requests in flight, ties broken by the higher
  `weight`, then by taking turns.
- `affinity`, for a request with a key (see `_affinity`): the first in the key's rendezvous
  order whose load stays within `load_factor` times its weighted share of the pool's load
  (consistent hashing with bounded loads, Mirrokni, Thorup and Zadimoghaddam 2018); a request
  without a key goes by `least_in_flight`.

A replica's load is its requests in flight, or the count its server last reported
(`observed`, from `_load`) when that is fresh and larger: the server's count includes what
other processes sent. Outcomes feed each replica's breaker (see `_circuit`), and `stats()`
shows an operator what each endpoint has done.

With `routing.state.backend: redis` the processes sharing the config share that standing
(`_sharing`): the router queues what happened for the sync thread, takes in what the others
found (`shared`), and counts their requests in flight in a replica's load. Requests never
wait for it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from selfhosted_core._affinity import Rendezvous
from selfhosted_core._circuit import Circuit, CircuitState
from selfhosted_core._sharing import Op, Outbox, Shared
from selfhosted_core.config import Capability, Config, LoadSignals, ModelEndpoint, RoutingPolicy
from selfhosted_core.errors import (
    CapabilityError,
    EndpointConnectionError,
    InvalidRequestError,
    SelfHostedError,
    UnknownModelError,
)

__all__ = ["Affinity", "CircuitState", "EndpointStats", "Pick", "Router", "affinity_name"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointStats:
    """What one endpoint has done since the provider was created.

    Attributes:
        model: The model id it serves.
        endpoint: Its label (`display_name`).
        requests: Attempts that ended (answers and errors; resends count once each).
        errors: Attempts that ended in an error, the request's own 4xx included.
        in_flight: Requests being served now.
        circuit: `closed` (taking requests), `open` (ejected after failures) or `half_open`.
        consecutive_failures: Failures since its last success.
        loading: Whether it last said it is loading its model.
        resting_for: Seconds until it takes requests again, when it is resting or ejected.
        last_error: The type and message of its latest error.
        latency_p50: Median seconds of its latest successful requests (up to 1,024).
        latency_p95: 95th percentile of the same.
        latency_p99: 99th percentile of the same.
        affinity_hits: Requests with an affinity key whose first attempt was sent here, their
            key's choice (where it went last, or for a new key its rendezvous home).
        affinity_spills: Requests whose key's choice this endpoint was, whose first attempt
            was sent to another replica because this one was at its load bound, busier than
            another for a new key, resting or ejected.
        prompt_tokens: Prompt tokens of the answers it gave, as its server reported them.
        cached_prompt_tokens: Of those, the ones its server took from its prompt cache
            (`usage.prompt_tokens_details.cached_tokens`); their share is its cache hit rate.
        server_load: Requests running and waiting, as its server last reported them (with
            `load_signals: auto`); None while no fresh report is at hand.
        in_flight_elsewhere: Requests in flight there from the other processes sharing
            routing state (`routing.state`), as of the last exchange; 0 when unshared.
    """

    model: str
    endpoint: str
    requests: int
    errors: int
    in_flight: int
    circuit: CircuitState
    consecutive_failures: int
    loading: bool
    resting_for: float | None
    last_error: str | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    affinity_hits: int = 0
    affinity_spills: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    server_load: int | None = None
    in_flight_elsewhere: int = 0


@dataclass(slots=True)
class _Tally:
    """What one endpoint's routing and answers added up to (the `Router` holds the lock)."""

    hits: int = 0
    spills: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    load: int | None = None
    load_at: float = -math.inf
    elsewhere: int = 0
    heard_at: float = -math.inf
    """When another process's reading of the server's load was taken (local clock)."""


class Affinity(NamedTuple):
    """A request's affinity key, and its model's slots in the key's rendezvous order."""

    key: bytes
    order: tuple[int, ...]


_PLACED_KEYS = 65_536
"""Keys per model whose replica the router remembers (about 9 MB when full, measured), the
least recently used forgotten."""


@dataclass(frozen=True, slots=True)
class Pick:
    """The endpoint chosen for an attempt, and how long to wait before sending to it."""

    slot: int
    wait: float
    hit: bool | None = None
    """For a keyed request's first attempt, whether it went to its key's choice (an affinity
    hit) or elsewhere (a spill); None otherwise."""


class Router:
    """Picks one of a model's replicas; fails before any I/O when none can serve the request.

    Thread-safe: one provider may serve many threads and event loops at once.

    Example:
        >>> router = Router(config)  # doctest: +SKIP
        >>> pick = router.pick("qwen3", frozenset({Capability.CHAT}))  # doctest: +SKIP
        >>> router.succeeded(pick.slot, latency=0.8)  # doctest: +SKIP
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._pools: dict[str, list[int]] = {}
        for index, endpoint in enumerate(config.endpoints):
            self._pools.setdefault(endpoint.id, []).append(index)
        self._capabilities = {
            model: config.endpoints[pool[0]].capabilities for model, pool in self._pools.items()
        }
        self._turns = dict.fromkeys(self._pools, 0)
        self._listing = {
            model: [config.endpoints[index].api_base for index in pool]
            for model, pool in self._pools.items()
        }
        self._names: dict[tuple[str, str], int] = {}
        for index, endpoint in enumerate(config.endpoints):
            for name in endpoint.names:
                self._names.setdefault((endpoint.id, name), index)
        self._circuits = [Circuit(config.routing, e.display_name) for e in config.endpoints]
        self._policies = {model: config.routing.for_model(model) for model in self._pools}
        self._rings = {
            model: Rendezvous(
                [config.endpoints[slot].api_base for slot in pool],
                [config.endpoints[slot].weight for slot in pool],
            )
            for model, pool in self._pools.items()
        }
        self._tallies = [_Tally() for _ in config.endpoints]
        # Per model: one key (a session, a prompt prefix) may be sent to several models.
        self._placed: dict[str, OrderedDict[bytes, int]] = {
            model: OrderedDict() for model in self._pools
        }
        # How long a server's report of its load counts, per slot (None: it is never read).
        self._fresh: list[float | None] = [None] * len(config.endpoints)
        state = config.routing.state
        self._sharing = state.shared
        # Shared, a replica's load counts the other processes' requests (see `_load`).
        self._watching = dict.fromkeys(self._pools, self._sharing)
        self._pending: list[Op] = []
        self._wake: Callable[[], None] = _nothing
        self._resync = False
        self._refusing = False
        for model, pool in self._pools.items():
            policy = self._policies[model]
            if policy.load_signals is LoadSignals.AUTO:
                self._watching[model] = True
                for slot in pool:
                    self._fresh[slot] = 4 * policy.load_interval
        self._lock = threading.Lock()

    def policy(self, model: str) -> RoutingPolicy:
        """The routing policy of `model`: the config's, with the model's own choices."""
        self.capabilities(model)
        return self._policies[model]

    @property
    def watched(self) -> list[int]:
        """The slots whose servers' load is read (`load_signals: auto`)."""
        return [slot for slot, fresh in enumerate(self._fresh) if fresh is not None]

    def pick(
        self,
        model: str,
        needs: frozenset[Capability],
        *,
        prefer: int | None = None,
        strict: bool = False,
        not_before: Mapping[int, float] | None = None,
        affinity: Affinity | None = None,
        first: bool = True,
    ) -> Pick:
        """Choose the endpoint for the next attempt and count it in flight there.

        `prefer` (a slot, see `slot_named`) is chosen whenever it can take the request now:
        not ejected, not resting, not waiting out this request's backoff there; otherwise
        the replicas are chosen among as usual. With `strict`, `prefer` is chosen whatever
        its state: the caller asked for that replica and no other. `not_before` holds, per
        slot, the earliest time this request may use it again (its own backoff after a
        failure there). `affinity` is the request's key and order (`Router.affinity`), given
        under the `affinity` strategy; `first` says this is the request's first attempt,
        whose choice counts in the affinity hits and spills.

        Raises:
            EndpointConnectionError: Every replica is ejected by its circuit breaker; the
                message names each with its latest error.
        """
        self.check(model, needs)
        waits = not_before or {}
        if self._refusing:
            raise EndpointConnectionError(
                f"routing state for {model!r} is unavailable and routing.state.fail_closed "
                "is set: refusing to route on this process's own state",
                model=model,
            )
        with self._lock:
            now = self._clock()
            if prefer is not None:
                ready = max(self._circuits[prefer].ready_at(now), waits.get(prefer, 0.0))
                if strict or ready <= now:
                    self._circuits[prefer].begin(now)
                    return Pick(prefer, max(0.0, waits.get(prefer, now) - now))
            slots = self._pools[model]
            if all(self._circuits[slot].ejected for slot in slots):
                ready = min(self._circuits[slot].ready_at(now) for slot in slots)
                if ready > now:
                    raise self._all_ejected(model, slots, ready - now)
            ready_at = {
                slot: max(self._circuits[slot].ready_at(now), waits.get(slot, 0.0))
                for slot in slots
            }
            soonest = max(now, min(ready_at.values()))
            usable = [slot for slot in slots if ready_at[slot] <= soonest]
            hit = None
            if affinity is None:
                slot = self._preferred(model, usable, now)
            else:
                slot, hit = self._affine(model, affinity, usable, now, first=first)
            self._circuits[slot].begin(now)
            return Pick(slot, max(0.0, ready_at[slot] - now), hit)

    def affinity(self, model: str, key: bytes) -> Affinity:
        """`key` with `model`'s slots in its rendezvous order, its first choice first.

        Pure (the rings never change), so it is computed outside the lock, once per request.
        """
        pool = self._pools[model]
        return Affinity(key, tuple(pool[index] for index in self._rings[model].order(key)))

    def endpoint(self, slot: int) -> ModelEndpoint:
        """The endpoint in `slot`."""
        return self._config.endpoints[slot]

    def label(self, slot: int) -> str:
        """The label of the endpoint in `slot` (`display_name`)."""
        return self._circuits[slot].label

    def slot_named(self, model: str, name: str) -> int:
        """The slot of `model`'s replica named `name`: its URL (with or without `/v1`) or label.

        Raises:
            UnknownModelError: No model has the id `model`.
            InvalidRequestError: No replica of `model` has that name; the message lists them.
        """
        self.capabilities(model)
        slot = self._names.get((model, name.rstrip("/")))
        if slot is None:
            raise InvalidRequestError(
                f"no replica of model {model!r} is named {name!r}; "
                f"its replicas: {', '.join(self._listing[model])}",
                model=model,
            )
        return slot

    def succeeded(self, slot: int, *, latency: float) -> None:
        """The attempt on `slot` got its answer after `latency` seconds."""
        with self._lock:
            circuit = self._circuits[slot]
            if not self._sharing:
                circuit.succeeded(latency)
                return
            before = circuit.state, circuit.consecutive_failures
            circuit.succeeded(latency)
            self._share_restore(slot, *before)

    def reported(self, slot: int, *, prompt_tokens: int, cached_prompt_tokens: int) -> None:
        """The answer from `slot` counted these prompt tokens, these from its prompt cache."""
        with self._lock:
            tally = self._tallies[slot]
            tally.prompt_tokens += prompt_tokens
            tally.cached_prompt_tokens += cached_prompt_tokens

    def observed(self, slot: int, load: int | None) -> None:
        """The server of `slot` reported `load` requests running and waiting (None: no report)."""
        with self._lock:
            tally = self._tallies[slot]
            tally.load = load
            tally.load_at = self._clock()
            if self._sharing and load is not None:
                # Rides the next exchange; a reading is no reason to wake the thread.
                self._pending[:] = [op for op in self._pending if op[:2] != ("load", slot)]
                self._pending.append(Op("load", slot, load))

    def heard(self, slot: int, *, within: float) -> bool:
        """Whether another process read `slot`'s server's load less than `within` s ago."""
        with self._lock:
            return self._clock() - self._tallies[slot].heard_at < within

    def failed(self, slot: int, error: BaseException) -> None:
        """The endpoint failed the attempt; enough failures in a row eject it."""
        with self._lock:
            circuit = self._circuits[slot]
            now = self._clock()
            text = _describe(error)
            if not self._sharing:
                circuit.failed(now, text)
                return
            was_open = circuit.state is CircuitState.OPEN
            circuit.failed(now, text)
            self._pending.append(Op("fail", slot, error=text))
            if circuit.state is CircuitState.OPEN and not was_open:
                self._pending.append(Op("open", slot, circuit.rest_until - now, text))
        if self._sharing:
            self._wake()

    def rested(self, slot: int, error: BaseException, *, seconds: float, loading: bool) -> None:
        """The endpoint is alive but asked for `seconds` of rest (loading, rate limiting)."""
        with self._lock:
            text = _describe(error)
            circuit = self._circuits[slot]
            probe = circuit.state is CircuitState.HALF_OPEN
            circuit.rested(self._clock(), seconds, text, loading=loading)
            if self._sharing:
                self._pending.append(Op("rest", slot, seconds, text, loading))
                if probe:
                    self._pending.append(Op("release", slot))
        if self._sharing:
            self._wake()

    def answered(self, slot: int) -> None:
        """The endpoint answered with an error about the request itself (a 4xx)."""
        with self._lock:
            circuit = self._circuits[slot]
            before = circuit.state, circuit.consecutive_failures
            circuit.answered()
            if self._sharing:
                self._share_restore(slot, *before)

    def abandoned(self, slot: int) -> None:
        """The caller gave up on the attempt; it counts for nothing."""
        with self._lock:
            circuit = self._circuits[slot]
            probe = circuit.state is CircuitState.HALF_OPEN
            circuit.abandoned()
            if not (self._sharing and probe):
                return
            self._pending.append(Op("release", slot))
        self._wake()

    def probed(self, slot: int, *, healthy: bool, loading: bool) -> None:
        """An active health check's verdict on `slot`."""
        with self._lock:
            circuit = self._circuits[slot]
            now = self._clock()
            before = circuit.state, circuit.consecutive_failures
            circuit.probed(now, healthy=healthy, loading=loading)
            if not self._sharing:
                return
            if healthy:
                self._share_restore(slot, *before)
            elif loading:
                self._pending.append(Op("rest", slot, circuit.rest_until - now, loading=True))
            elif before[0] is not CircuitState.OPEN:
                self._pending.append(Op("open", slot, circuit.rest_until - now))
        if self._sharing:
            self._wake()

    def forked(self) -> None:
        """In a child process after `fork`: the lock may have been held by a parent's thread."""
        self._lock = threading.Lock()

    def on_pending(self, wake: Callable[[], None]) -> None:
        """Call `wake` when something happened the others must know (it must not block)."""
        self._wake = wake

    def outbox(self) -> Outbox:
        """What to send in the next exchange: the ops since the last, and the own counts.

        After the shared state was out of reach, the ejections and rests this process
        decided alone come first, so the others learn them.
        """
        with self._lock:
            now = self._clock()
            circuits = self._circuits
            ops, self._pending = self._pending, []
            if self._resync:
                self._resync = False
                ops = [*self._standing(now), *ops]
            return Outbox(
                ops=tuple(ops),
                in_flight=tuple(circuit.in_flight for circuit in circuits),
                claims=tuple(
                    slot
                    for slot, circuit in enumerate(circuits)
                    if circuit.state is CircuitState.OPEN
                    and not circuit.may_probe
                    and now >= circuit.rest_until
                ),
                probing=tuple(
                    slot
                    for slot, circuit in enumerate(circuits)
                    if circuit.state is CircuitState.HALF_OPEN and circuit.probing
                ),
            )

    def shared(self, standing: Sequence[Shared]) -> None:
        """Take in what the processes sharing the state found, one entry per slot.

        A slot with ops queued since the exchange began waits for the next one, which sends
        them first. When the failures counted together reach the threshold, the circuit
        opens here, and that ejection is shared next.
        """
        opened = False
        with self._lock:
            self._refusing = False
            now = self._clock()
            queued = {op.slot for op in self._pending if op.kind != "load"}
            for slot, found in enumerate(standing):
                tally = self._tallies[slot]
                tally.elsewhere = found.elsewhere
                fresh = self._fresh[slot]
                if found.load is not None and found.load_age is not None and fresh is not None:
                    read_at = now - found.load_age
                    if read_at > tally.load_at:
                        tally.load, tally.load_at = found.load, read_at
                        tally.heard_at = read_at
                if slot in queued:
                    continue
                circuit = self._circuits[slot]
                if circuit.learned(
                    now,
                    failures=found.failures,
                    ejected_for=found.ejected_for,
                    rest_for=found.rest_for,
                    loading=found.loading,
                    error=found.error,
                    may_probe=found.probe,
                ):
                    opened = True
                    self._pending.append(
                        Op("open", slot, circuit.rest_until - now, circuit.last_error or "")
                    )
        if opened:
            self._wake()

    def unshared(self, *, refuse: bool) -> None:
        """The shared state is out of reach: route on this process's own (or, `refuse`, not)."""
        with self._lock:
            self._refusing = refuse
            self._pending.clear()
            self._resync = True
            for slot, circuit in enumerate(self._circuits):
                circuit.unshared()
                self._tallies[slot].elsewhere = 0

    def _standing(self, now: float) -> list[Op]:
        """This process's ejections and rests as ops (re-shared after an outage)."""
        ops = []
        for slot, circuit in enumerate(self._circuits):
            error = circuit.last_error or ""
            if circuit.state is not CircuitState.CLOSED:
                ops.append(Op("open", slot, max(0.0, circuit.rest_until - now), error))
            elif circuit.rest_until > now:
                ops.append(Op("rest", slot, circuit.rest_until - now, error, circuit.loading))
        return ops

    def _share_restore(self, slot: int, state: CircuitState, failures: int) -> None:
        """After an answer: share the restore (or the end of the failures in a row)."""
        if state is not CircuitState.CLOSED:
            self._pending.append(Op("restore", slot))
        elif failures:
            self._pending.append(Op("clear", slot))
        else:
            return
        self._wake()

    def stats(self) -> list[EndpointStats]:
        """A snapshot of every endpoint, in configuration order."""
        with self._lock:
            now = self._clock()
            return [
                _snapshot(
                    endpoint.id,
                    endpoint.display_name,
                    circuit,
                    self._tallies[slot],
                    load=self._signal(slot, now),
                    now=now,
                )
                for slot, (endpoint, circuit) in enumerate(
                    zip(self._config.endpoints, self._circuits, strict=True)
                )
            ]

    def check(self, model: str, needs: frozenset[Capability]) -> None:
        """Raise unless `model` exists and declares every capability in `needs`."""
        declared = self.capabilities(model)
        missing = needs - declared
        if missing:
            names = ", ".join(sorted(capability.value for capability in missing))
            listing = ", ".join(sorted(capability.value for capability in declared))
            raise CapabilityError(
                f"model {model!r} lacks {names} (declared: {listing})", model=model
            )

    def capabilities(self, model: str) -> frozenset[Capability]:
        """The capabilities `model` declares; `UnknownModelError` for an unknown id."""
        if model not in self._capabilities:
            raise UnknownModelError(model, known=list(self._pools))
        return self._capabilities[model]

    def _preferred(self, model: str, usable: list[int], now: float) -> int:
        """Fewest in flight (or reported), then the highest weight, then whose turn it is."""
        endpoints = self._config.endpoints
        circuits = self._circuits
        watching = self._watching[model]
        # One pass, no intermediate tuples: this runs for every request (`make bench`).
        tied: list[int] = []
        best_load, best_weight = 0, 0.0
        for slot in usable:
            load = self._load(slot, now) if watching else circuits[slot].in_flight
            weight = endpoints[slot].weight
            if not tied or load < best_load or (load == best_load and weight > best_weight):
                best_load, best_weight, tied = load, weight, [slot]
            elif load == best_load and weight == best_weight:
                tied.append(slot)
        if len(tied) == 1:
            return tied[0]
        turn = self._turns[model]
        self._turns[model] = turn + 1
        return tied[turn % len(tied)]

    def _affine(
        self, model: str, affinity: Affinity, usable: list[int], now: float, *, first: bool
    ) -> tuple[int, bool | None]:
        """The replica for a keyed request: where its key went before, within the load bound.

        A key this router sent before goes where it went last (its prefix is cached there),
        or while that replica is at its bound to the next in the key's order within its own.
        A replica may hold ceil(factor x (load + 1) x weight / usable weight) requests, this
        one included; the bounds add up to more than the load, so one is always within its.
        A key not seen before has nothing cached to go to: it takes the least loaded replica
        (by weight), the first in its order among equals, which with equal loads is its
        rendezvous home in every process. Returns the slot and, for a first attempt, whether
        it is the key's choice (counted here as a hit or a spill).
        """
        endpoints = self._config.endpoints
        if self._watching[model]:
            loads = {slot: self._load(slot, now) for slot in usable}
        else:
            loads = {slot: self._circuits[slot].in_flight for slot in usable}
        memory = self._placed[model]
        placed = memory.get(affinity.key)
        expected = affinity.order[0] if placed is None else placed
        if placed is None or placed not in loads:
            slot = min(
                (slot for slot in affinity.order if slot in loads),
                key=lambda slot: loads[slot] / endpoints[slot].weight,
            )
        else:
            bound = self._policies[model].load_factor * (sum(loads.values()) + 1)
            weights = sum(endpoints[slot].weight for slot in usable)
            for slot in (placed, *affinity.order):
                load = loads.get(slot)
                if load is not None and load < math.ceil(bound * endpoints[slot].weight / weights):
                    break
            else:
                raise AssertionError("bounded loads always leave one usable replica within bounds")
        memory[affinity.key] = slot
        memory.move_to_end(affinity.key)
        if len(memory) > _PLACED_KEYS:
            memory.popitem(last=False)
        if not first:
            return slot, None
        if slot == expected:
            self._tallies[expected].hits += 1
        else:
            self._tallies[expected].spills += 1
        return slot, slot == expected

    def _load(self, slot: int, now: float) -> int:
        """Requests in flight on `slot`, or its server's fresh report when that is larger."""
        local = self._circuits[slot].in_flight + self._tallies[slot].elsewhere
        reported = self._signal(slot, now)
        return local if reported is None else max(local, reported)

    def _signal(self, slot: int, now: float) -> int | None:
        fresh = self._fresh[slot]
        tally = self._tallies[slot]
        if fresh is None or tally.load is None or now - tally.load_at > fresh:
            return None
        return tally.load

    def _all_ejected(self, model: str, slots: list[int], wait: float) -> EndpointConnectionError:
        endpoints = self._config.endpoints
        listing = "; ".join(
            f"{endpoints[slot].display_name}: {self._circuits[slot].last_error or 'failing'}"
            for slot in slots
        )
        return EndpointConnectionError(
            f"every replica of {model!r} is ejected after repeated failures; the next is "
            f"tried again in {wait:.1f} s ({listing})",
            model=model,
            endpoint=endpoints[slots[0]].display_name if len(slots) == 1 else None,
        )


def affinity_name(value: object) -> str | None:
    """A conversation id found in a framework's run data, as an affinity name; None if unusable.

    A non-empty string or an integer (not a bool) names a conversation; anything else (None,
    "", True, a mapping) is ignored, since run data an integration merely reads is not the
    caller's request. A caller's own `ChatRequest.affinity` is checked strictly instead.

    Example:
        >>> affinity_name(42), affinity_name(""), affinity_name(True)
        ('42', None, None)
    """
    if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
        return str(value)
    return None


def _nothing() -> None:
    """No sync thread to wake (the state is this process's own)."""


def _describe(error: BaseException) -> str:
    message = error.message if isinstance(error, SelfHostedError) else str(error)
    return f"{type(error).__name__}: {message}"


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest sample with at least `fraction` of them at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _snapshot(
    model: str, label: str, circuit: Circuit, tally: _Tally, *, load: int | None, now: float
) -> EndpointStats:
    ordered = sorted(circuit.latencies)
    ready = circuit.ready_at(now)
    return EndpointStats(
        model=model,
        endpoint=label,
        requests=circuit.requests,
        errors=circuit.errors,
        in_flight=circuit.in_flight,
        circuit=circuit.state,
        consecutive_failures=circuit.consecutive_failures,
        loading=circuit.loading,
        resting_for=ready - now if ready > now else None,
        last_error=circuit.last_error,
        latency_p50=_percentile(ordered, 0.50),
        latency_p95=_percentile(ordered, 0.95),
        latency_p99=_percentile(ordered, 0.99),
        affinity_hits=tally.hits,
        affinity_spills=tally.spills,
        prompt_tokens=tally.prompt_tokens,
        cached_prompt_tokens=tally.cached_prompt_tokens,
        server_load=load,
        in_flight_elsewhere=tally.elsewhere,
    )
