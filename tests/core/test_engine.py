"""The attempt engine by hand, with no I/O: the steps it asks for and what it decides on replies.

The sync and async drivers only carry these steps out; `test_failover.py` runs each decision
through both against mock transports.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from selfhosted_core import Config, EndpointConnectionError, ServerError
from selfhosted_core._calls import CallPlan
from selfhosted_core._engine import (
    Engine,
    Exchange,
    Read,
    Send,
    Sleep,
    Step,
    attempts,
    opening,
    single,
)
from selfhosted_core._failover import Call
from selfhosted_core._http import Whole
from selfhosted_core.profiles import ServerKind
from selfhosted_core.routing import Router

CONFIG = Config(
    endpoints=[
        {"url": f"http://{host}.test:8080", "id": "tiny", "label": host}
        for host in ("gpu-1", "gpu-2")
    ],
    routing={"backoff": 0.5},
)
LOADING = b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'


def plan(slot: int, *, stream: bool = False) -> CallPlan:
    return CallPlan.post(
        slot=slot,
        endpoint=CONFIG.endpoints[slot],
        model="tiny",
        server=ServerKind.GENERIC,
        path="/chat/completions",
        payload={"model": "tiny"},
        stream=stream,
    )


def answer(slot: int) -> Exchange[int]:
    """One POST whose result is its status; an error status raises as in every exchange."""
    planned = plan(slot)

    def status(reply: Whole) -> int:
        planned.raise_for_status(reply)
        return reply.status_code

    return single(planned, status)


def call(router: Router, **options: Any) -> Call:
    return Call(
        router, CONFIG.routing, CONFIG.endpoints, model="tiny", needs=frozenset(), **options
    )


def response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("POST", "http://gpu.test/"))


def whole(status: int, body: bytes = b"{}") -> Whole:
    return Whole(status, httpx2.Headers(), body)


def refused(slot: int, *, stage: str = "connect", hung_up: bool = False) -> EndpointConnectionError:
    return EndpointConnectionError(
        "connection failed", endpoint=CONFIG.endpoints[slot].display_name, stage=stage,  # type: ignore[arg-type]
        hung_up=hung_up,
    )  # fmt: skip


def sends(step: Step, *, read: bool = True) -> int:
    """The slot `step` sends to; whether it reads the whole body is as `read` says."""
    assert isinstance(step, Send)
    assert (step.deadline is not None) is read
    return step.plan.slot


def test_a_refused_send_goes_to_the_sibling_at_once() -> None:
    router = Router(CONFIG)
    engine: Engine[int] = attempts(call(router), answer)
    assert sends(next(engine)) == 0
    assert sends(engine.throw(refused(0))) == 1
    with pytest.raises(StopIteration) as done:
        engine.send(whole(200))
    assert done.value.value == 200
    first, second = router.stats()
    assert (first.errors, second.requests, second.errors) == (1, 1, 0)
    assert (first.in_flight, second.in_flight) == (0, 0)


def test_a_hang_up_is_sent_again_to_the_same_replica_without_a_wait() -> None:
    router = Router(CONFIG)
    engine: Engine[int] = attempts(call(router), answer)
    assert sends(next(engine)) == 0
    assert sends(engine.throw(refused(0, stage="send", hung_up=True))) == 0
    assert router.stats()[0].errors == 0


def test_a_strict_call_waits_out_its_backoff_on_its_own_replica() -> None:
    def frozen() -> float:
        return 100.0

    router = Router(CONFIG, clock=frozen)
    engine: Engine[int] = attempts(call(router, prefer=1, strict=True, clock=frozen), answer)
    assert sends(next(engine)) == 1
    step = engine.send(whole(503, LOADING))
    assert step == Sleep(0.5)
    assert sends(engine.send(None)) == 1


def test_a_stream_is_opened_not_read_and_its_error_status_is_read_and_raised() -> None:
    router = Router(CONFIG)
    engine = opening(call(router, max_attempts=1), lambda slot: plan(slot, stream=True))
    assert sends(next(engine), read=False) == 0
    assert isinstance(engine.send(response(503)), Read)
    with pytest.raises(ServerError) as caught:
        engine.send(whole(503, LOADING))
    assert [attempt.status for attempt in caught.value.attempts] == [503]
    opened = opening(call(router), lambda slot: plan(slot, stream=True))
    assert sends(next(opened), read=False) == 1
    ok = response(200)
    with pytest.raises(StopIteration) as done:
        opened.send(ok)
    assert done.value.value[1] is ok


def test_a_cancelled_attempt_counts_for_nothing() -> None:
    router = Router(CONFIG)
    engine: Engine[int] = attempts(call(router), answer)
    next(engine)
    assert router.stats()[0].in_flight == 1
    with pytest.raises(asyncio.CancelledError):
        engine.throw(asyncio.CancelledError())
    stats = router.stats()[0]
    assert (stats.in_flight, stats.requests, stats.errors) == (0, 0, 0)
