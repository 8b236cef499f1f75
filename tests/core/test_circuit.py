"""One endpoint's circuit breaker, driven by a fake clock through the router that owns it."""

from __future__ import annotations

from typing import Any

import pytest

from selfhosted_core import (
    Capability,
    Config,
    EndpointConnectionError,
    RateLimitError,
    ServerError,
)
from selfhosted_core._sharing import Shared
from selfhosted_core.routing import CircuitState, Router

CHAT = frozenset({Capability.CHAT})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_router(clock: Clock, replicas: int = 2, **routing: float) -> Router:
    config = Config(
        endpoints=[
            {"url": f"http://gpu-{n}.test:8080", "id": "tiny", "label": f"gpu-{n}"}
            for n in range(1, replicas + 1)
        ],
        routing={"failure_threshold": 3, "cooldown": 10.0, **routing},
    )
    return Router(config, clock=clock)


def refused() -> EndpointConnectionError:
    return EndpointConnectionError("connection failed: refused", model="tiny", endpoint="gpu-1")


def fail(router: Router, slot: int, times: int = 1) -> None:
    for _ in range(times):
        assert router.pick("tiny", CHAT, prefer=slot, strict=True).slot == slot
        router.failed(slot, refused())


def test_consecutive_failures_up_to_the_threshold_eject_the_endpoint() -> None:
    router = make_router(Clock())
    fail(router, 0, times=2)
    assert router.stats()[0].circuit is CircuitState.CLOSED
    fail(router, 0)
    stats = router.stats()[0]
    assert (stats.circuit, stats.consecutive_failures, stats.errors) == (CircuitState.OPEN, 3, 3)
    assert stats.last_error == "EndpointConnectionError: connection failed: refused"
    assert {router.pick("tiny", CHAT).slot for _ in range(4)} == {1}


def test_a_success_between_failures_resets_the_count() -> None:
    router = make_router(Clock())
    fail(router, 0, times=2)
    router.pick("tiny", CHAT, prefer=0, strict=True)
    router.succeeded(0, latency=0.2)
    fail(router, 0, times=2)
    assert router.stats()[0].circuit is CircuitState.CLOSED


def test_after_the_cooldown_one_request_probes_and_a_success_restores() -> None:
    clock = Clock()
    router = make_router(clock)
    fail(router, 0, times=3)
    resting = router.stats()[0].resting_for
    assert resting is not None
    assert 8.0 <= resting <= 12.0
    clock.now += 12.5
    # Both idle: the turn goes to gpu-1, whose rest is over; it becomes the one probe.
    probe = router.pick("tiny", CHAT)
    others = [router.pick("tiny", CHAT).slot for _ in range(3)]
    assert (probe.slot, router.stats()[0].circuit, others) == (0, CircuitState.HALF_OPEN, [1] * 3)
    router.succeeded(0, latency=0.3)
    stats = router.stats()[0]
    assert (stats.circuit, stats.consecutive_failures, stats.resting_for) == (
        CircuitState.CLOSED,
        0,
        None,
    )


def test_a_failed_probe_ejects_again_at_once() -> None:
    clock = Clock()
    router = make_router(clock)
    fail(router, 0, times=3)
    clock.now += 12.5
    assert router.pick("tiny", CHAT, prefer=0, strict=True).slot == 0
    assert router.stats()[0].circuit is CircuitState.HALF_OPEN
    router.failed(0, refused())
    assert router.stats()[0].circuit is CircuitState.OPEN
    assert router.stats()[0].resting_for is not None


def test_an_abandoned_probe_leaves_the_next_request_to_probe() -> None:
    clock = Clock()
    router = make_router(clock, replicas=1)
    fail(router, 0, times=3)
    clock.now += 12.5
    assert router.pick("tiny", CHAT).slot == 0
    router.abandoned(0)
    assert router.stats()[0].circuit is CircuitState.OPEN
    assert router.pick("tiny", CHAT).slot == 0
    assert router.stats()[0].circuit is CircuitState.HALF_OPEN


def test_cooldowns_are_jittered_so_replicas_do_not_return_together() -> None:
    clock = Clock()
    router = make_router(clock, replicas=12)
    for slot in range(12):
        fail(router, slot, times=3)
    rests = {round(entry.resting_for or 0.0, 6) for entry in router.stats()}
    assert len(rests) > 1
    assert all(8.0 <= rest <= 12.0 for rest in rests)


def test_every_replica_ejected_fails_fast_naming_each_error() -> None:
    router = make_router(Clock())
    fail(router, 0, times=3)
    fail(router, 1, times=3)
    with pytest.raises(EndpointConnectionError) as caught:
        router.pick("tiny", CHAT)
    message = str(caught.value)
    assert "every replica of 'tiny' is ejected after repeated failures" in message
    assert "gpu-1: EndpointConnectionError" in message
    assert "gpu-2: Endpoint" in message
    assert caught.value.retryable


def test_a_loading_server_rests_without_counting_towards_ejection() -> None:
    clock = Clock()
    router = make_router(clock)
    loading = ServerError("Loading model", status_code=503, model="tiny", endpoint="gpu-1")
    for _ in range(5):
        router.pick("tiny", CHAT, prefer=0, strict=True)
        router.rested(0, loading, seconds=10.0, loading=True)
    stats = router.stats()[0]
    assert (stats.circuit, stats.loading, stats.consecutive_failures) == (
        CircuitState.CLOSED,
        True,
        0,
    )
    assert [router.pick("tiny", CHAT).slot for _ in range(3)] == [1, 1, 1]
    clock.now += 10.5
    assert 0 in {router.pick("tiny", CHAT).slot for _ in range(4)}


def test_a_rate_limited_endpoint_rests_for_its_retry_after() -> None:
    clock = Clock()
    router = make_router(clock, replicas=1)
    busy = RateLimitError("slow down", status_code=429, model="tiny", endpoint="gpu-1")
    router.pick("tiny", CHAT)
    router.rested(0, busy, seconds=2.0, loading=False)
    pick = router.pick("tiny", CHAT)
    assert (pick.slot, pick.wait) == (0, 2.0)


def test_active_probes_restore_eject_and_rest() -> None:
    clock = Clock()
    router = make_router(clock)
    fail(router, 0, times=3)
    router.probed(0, healthy=True, loading=False)
    assert router.stats()[0].circuit is CircuitState.CLOSED
    router.probed(1, healthy=False, loading=False)
    assert router.stats()[1].circuit is CircuitState.OPEN
    router.probed(0, healthy=False, loading=True)
    assert (router.stats()[0].loading, router.stats()[0].circuit) == (True, CircuitState.CLOSED)


# --- a standing shared with other processes (`routing.state`), taken in by hand --------------


def shared_router(clock: Clock, **routing: float) -> Router:
    config = Config(
        endpoints=[
            {"url": f"http://gpu-{n}.test:8080", "id": "tiny", "label": f"gpu-{n}"} for n in (1, 2)
        ],
        routing={
            "failure_threshold": 3,
            "cooldown": 10.0,
            **routing,
            "state": {"backend": "redis", "url": "redis://cache.test:6379/0"},
        },
    )
    return Router(config, clock=clock)


def standing(**fields: object) -> Shared:
    values: dict[str, Any] = {
        "failures": 0,
        "ejected_for": None,
        "rest_for": 0.0,
        "loading": False,
        "error": None,
        "probe": False,
        "elsewhere": 0,
        "load": None,
        "load_age": None,
    }
    values.update(fields)
    return Shared(**values)


def test_failures_counted_elsewhere_reaching_the_threshold_eject_here_and_are_shared() -> None:
    router = shared_router(Clock())
    router.shared([standing(failures=3, error="EndpointConnectionError: refused"), standing()])
    stats = router.stats()[0]
    assert (stats.circuit, stats.consecutive_failures) == (CircuitState.OPEN, 3)
    [op] = router.outbox().ops
    assert (op.kind, op.slot, op.error) == ("open", 0, "EndpointConnectionError: refused")
    assert 8.0 <= op.seconds <= 12.0  # the cooldown, drawn within +/-20%


def test_a_shared_ejection_over_is_probed_only_by_the_claim_holder() -> None:
    clock = Clock()
    holder, other = shared_router(clock), shared_router(clock)
    holder.shared([standing(failures=3, ejected_for=0.0, probe=True), standing()])
    other.shared([standing(failures=3, ejected_for=0.0, probe=False), standing()])
    assert holder.pick("tiny", CHAT, prefer=0).slot == 0
    assert holder.stats()[0].circuit is CircuitState.HALF_OPEN
    assert other.pick("tiny", CHAT, prefer=0).slot == 1
    # The other asks for the claim at its next exchange; the holder keeps its claim alive.
    assert other.outbox().claims == (0,)
    assert holder.outbox().probing == (0,)


def test_a_probe_out_is_left_to_its_verdict_whatever_the_others_say() -> None:
    router = shared_router(Clock())
    router.shared([standing(failures=3, ejected_for=0.0, probe=True), standing()])
    router.pick("tiny", CHAT, prefer=0)
    router.shared([standing(failures=0), standing()])
    assert router.stats()[0].circuit is CircuitState.HALF_OPEN
    router.succeeded(0, latency=0.1)
    assert [op.kind for op in router.outbox().ops] == ["restore"]


def test_a_shared_ejection_gone_restores_the_endpoint_here() -> None:
    router = shared_router(Clock())
    router.shared([standing(failures=3, ejected_for=5.0), standing()])
    assert router.stats()[0].circuit is CircuitState.OPEN
    router.shared([standing(), standing()])
    stats = router.stats()[0]
    assert (stats.circuit, stats.consecutive_failures, stats.resting_for) == (
        CircuitState.CLOSED,
        0,
        None,
    )


def test_a_slot_with_ops_queued_waits_for_the_exchange_that_sends_them() -> None:
    router = shared_router(Clock())
    router.outbox()
    fail(router, 0, times=3)  # ejected here while an exchange was under way
    router.shared([standing(), standing()])  # that exchange's answer knows nothing of it
    assert router.stats()[0].circuit is CircuitState.OPEN
    assert [op.kind for op in router.outbox().ops] == ["fail", "fail", "fail", "open"]


def test_after_an_outage_the_ejections_decided_alone_are_shared_first() -> None:
    clock = Clock()
    router = shared_router(clock)
    router.unshared(refuse=False)
    fail(router, 0, times=3)
    clock.now += 4.0
    ops = router.outbox().ops
    assert [(op.kind, op.slot) for op in ops[:1]] == [("open", 0)]
    assert 4.0 <= ops[0].seconds <= 8.0  # what is left of its cooldown


def test_a_shared_rest_keeps_requests_away_for_its_time() -> None:
    clock = Clock()
    router = shared_router(clock)
    router.shared([standing(rest_for=3.0, loading=True), standing()])
    stats = router.stats()[0]
    assert (stats.circuit, stats.loading, stats.resting_for) == (CircuitState.CLOSED, True, 3.0)
    assert router.pick("tiny", CHAT).slot == 1
    clock.now += 3.0
    router.shared([standing(), standing()])
    assert router.stats()[0].resting_for is None
