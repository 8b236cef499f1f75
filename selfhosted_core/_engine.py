"""The attempt engine: every send of every call, and every decision to send again, in one place.

`attempts` is a sans-I/O generator. It asks the `Call` for a replica, runs that replica's
*exchange* (the requests one answer takes: one POST for a chat or an embedding, up to four GETs
for a health check, two POSTs for counting a templated prompt), and when the exchange fails
asks the `Call` whether the request may go again, and where. It yields three kinds of step:

- `Sleep(seconds)`: wait before the next send (a backoff, a `Retry-After`); the reply is None.
- `Send(plan, timeout)`: send the planned request; the reply is the response, its headers read.
- `Read(plan, response, deadline)`: read the response's body to its end; the reply is `Whole`.

A transport failure is thrown into the generator as the core error `transport_errors` mapped
it to (its `stage` says whether the server can have seen the request); anything else thrown in
(a cancellation, a KeyboardInterrupt) abandons the attempt and propagates. `drive` and `adrive`
are the two small loops that carry the steps out, with a sync and an async client; they decide
nothing, so a call made either way is sent, resent and recorded identically.

An exchange is a generator too: it yields `CallPlan`s, receives each read reply (a transport
error is thrown into it, which a health check catches and reports, and anything else lets go
of) and returns the call's result. A streamed chat is opened, not read: `opening` returns the
plan and the response whose headers said 2xx, and the stream reads the body itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx2

from selfhosted_core import _http
from selfhosted_core._calls import CallPlan
from selfhosted_core._failover import Call
from selfhosted_core._http import RequestHeaders, Whole
from selfhosted_core.errors import SelfHostedError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait `seconds` before the next send."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Send:
    """Send `plan` with `timeout` and wait for the response's headers."""

    plan: CallPlan
    timeout: httpx2.Timeout

    def request(self, headers: Sequence[RequestHeaders]) -> httpx2.Request:
        """The HTTP request, with the headers of the plan's endpoint."""
        return self.plan.request(self.timeout, headers[self.plan.slot])


@dataclass(frozen=True, slots=True)
class Read:
    """Read `response` to its end, within `deadline` (monotonic seconds)."""

    plan: CallPlan
    response: httpx2.Response
    deadline: float


Step = Sleep | Send | Read
Exchange = Generator[CallPlan, Whole, T]
"""One replica's part of a call: the requests it sends, the reply each gets, the result."""
Engine = Generator[Step, Any, T]
Opened = tuple[CallPlan, httpx2.Response]


def single(plan: CallPlan, result: Callable[[Whole], T]) -> Exchange[T]:
    """The exchange of a one-request call: send `plan`, make the result of its reply."""
    return result((yield plan))


def attempts(call: Call, exchange_for: Callable[[int], Exchange[T]]) -> Engine[T]:
    """Run `exchange_for(slot)` on the replicas `call` picks until one returns or it gives up."""
    return cast("Engine[T]", _run(call, exchange_for, opens=False))


def opening(call: Call, plan_for: Callable[[int], CallPlan]) -> Engine[Opened]:
    """Send a stream request until one replica answers 2xx; its body is left unread.

    What the stream then reads is recorded by the stream itself (`Call.outcome`): once
    output may have been generated, it is never sent again.
    """
    return cast("Engine[Opened]", _run(call, lambda slot: _opened(plan_for(slot)), opens=True))


def _opened(plan: CallPlan) -> Exchange[None]:
    """An exchange that only sends: a stream's error status reaches it read; 2xx never does."""
    plan.raise_for_status((yield plan))


def _run(call: Call, exchange_for: Callable[[int], Exchange[Any]], *, opens: bool) -> Engine[Any]:
    while True:
        slot, wait = call.next()
        sent = False
        try:
            if wait:
                yield Sleep(wait)
            exchange = exchange_for(slot)
            plan = next(exchange)
            while True:
                try:
                    sent = True
                    response: httpx2.Response = yield Send(plan, call.timeouts(plan.endpoint))
                    if opens and response.status_code < 300:
                        return plan, response
                    reply: Whole = yield Read(plan, response, call.deadline(plan.endpoint))
                except SelfHostedError as exc:
                    # The exchange decides what a failed request means (a health check reports
                    # it); re-raised, it is this attempt's failure.
                    plan = exchange.throw(exc)
                else:
                    plan = exchange.send(reply)
        except StopIteration as done:
            call.succeeded(slot)
            return done.value
        except SelfHostedError as exc:
            if sent and call.failed(slot, exc):
                continue
            if not sent:
                # Refused before anything went out (a body that is not JSON): not a send.
                call.abandoned(slot)
            raise
        except BaseException:
            call.abandoned(slot)
            raise


@dataclass(frozen=True, slots=True)
class _Done:
    """The engine's result, once it has no step left."""

    value: Any


def _resume(engine: Engine[Any], reply: object, error: BaseException | None) -> Step | _Done:
    """Hand the last step's reply (or its failure) to the engine: its next step, or the end."""
    try:
        return engine.send(reply) if error is None else engine.throw(error)
    except StopIteration as done:
        return _Done(done.value)


def drive(
    engine: Engine[T], client: Callable[[int], httpx2.Client], headers: Sequence[RequestHeaders]
) -> T:
    """Carry out `engine`'s steps with sync clients (one per slot); return its result."""
    reply: object = None
    error: BaseException | None = None
    while not isinstance(step := _resume(engine, reply, error), _Done):
        reply, error = None, None
        # Whatever goes wrong is thrown into the engine, which records the attempt and decides.
        try:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
            elif isinstance(step, Send):
                with step.plan.errors(stage="send"):
                    reply = _http.send(client(step.plan.slot), step.request(headers))
            else:
                with step.plan.errors(stage="body"):
                    reply = _http.read_whole(step.response, step.plan.endpoint, step.deadline)
        except BaseException as exc:
            error = exc
    return cast("T", step.value)


async def adrive(
    engine: Engine[T],
    client: Callable[[int], httpx2.AsyncClient],
    headers: Sequence[RequestHeaders],
) -> T:
    """Async twin of `drive`."""
    reply: object = None
    error: BaseException | None = None
    while not isinstance(step := _resume(engine, reply, error), _Done):
        reply, error = None, None
        try:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Send):
                with step.plan.errors(stage="send"):
                    reply = await _http.asend(client(step.plan.slot), step.request(headers))
            else:
                with step.plan.errors(stage="body"):
                    body = _http.aread_whole(step.response, step.plan.endpoint, step.deadline)
                    reply = await body
        except BaseException as exc:
            error = exc
    return cast("T", step.value)
