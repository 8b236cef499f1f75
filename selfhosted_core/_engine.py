"""The attempt engine: every send of every call, and every decision to send again, in one place.

`attempts` is a sans-I/O generator. It asks the `Call` for a replica, runs that replica's
*exchange* (the requests one answer takes: one POST for a chat or an embedding, up to four GETs
for a health check, two POSTs for counting a templated prompt), and when the exchange fails
asks the `Call` whether the request may go again, and where. It yields three kinds of step:

- `Sleep(seconds)`: wait before the next send (a backoff, a `Retry-After`); the reply is None.
- `Send(plan, timeout, deadline)`: send the planned request and read its whole body within
  `deadline`; the reply is `Whole`. Without a deadline (a stream being opened), only the
  headers are awaited and the reply is the response.
- `Read(plan, response, deadline)`: read an opened response's body to its end (a stream's
  error status); the reply is `Whole`.

A transport failure is thrown into the generator as the core error `transport_errors` mapped
it to (its `stage` says whether the server can have seen the request); anything else thrown in
(a cancellation, a KeyboardInterrupt) abandons the attempt and propagates. `drive` and `adrive`
are the two small loops that carry the steps out, with a sync and an async client; they decide
nothing, so a call made either way is sent, resent and recorded identically.

An exchange is a `Single` request and what to make of its reply (a chat, an embedding), or a
generator: it yields `CallPlan`s, receives each reply (a transport error is thrown into it,
which a health check catches and reports, and anything else lets go of) and returns the
result. A streamed chat is opened, not read: `opening` returns the plan and the response whose
headers said 2xx, and the stream reads the body itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import httpx2

from selfhosted_core import _http
from selfhosted_core._calls import CallPlan
from selfhosted_core._failover import Call
from selfhosted_core._http import RequestHeaders, Whole
from selfhosted_core.errors import SelfHostedError

T = TypeVar("T")


# Steps are named tuples: one or two are made per send, and a frozen dataclass costs a
# microsecond more to make (`make bench`).
class Sleep(NamedTuple):
    """Wait `seconds` before the next send."""

    seconds: float


class Send(NamedTuple):
    """Send `plan` with `timeout`; read its whole body by `deadline` unless it is None."""

    plan: CallPlan
    timeout: httpx2.Timeout
    deadline: float | None


class Read(NamedTuple):
    """Read `response` to its end, within `deadline` (monotonic seconds)."""

    plan: CallPlan
    response: httpx2.Response
    deadline: float


class Single(NamedTuple):
    """The exchange of a one-request call: send `plan`, make the result of its reply."""

    plan: CallPlan
    result: Callable[[Whole], Any]


Step = Sleep | Send | Read
Conversation = Generator[CallPlan, Whole, T]
"""An exchange of several requests: each it yields is sent and its reply handed back."""
Exchange = Single | Conversation[T]
"""One replica's part of a call: the requests it sends, the reply each gets, the result."""
Engine = Generator[Step, Any, T]
Opened = tuple[CallPlan, httpx2.Response]


def single(plan: CallPlan, result: Callable[[Whole], T]) -> Exchange[T]:
    """The exchange of a one-request call."""
    return Single(plan, result)


def attempts(call: Call, exchange_for: Callable[[int], Exchange[T]]) -> Engine[T]:
    """Run `exchange_for(slot)` on the replicas `call` picks until one returns or it gives up."""
    return cast("Engine[T]", _run(call, exchange_for, opens=False))


def opening(call: Call, plan_for: Callable[[int], CallPlan]) -> Engine[Opened]:
    """Send a stream request until one replica answers 2xx; its body is left unread.

    What the stream then reads is recorded by the stream itself (`Call.outcome`): once
    output may have been generated, it is never sent again.
    """

    def exchange(slot: int) -> Single:
        return Single(plan_for(slot), _never)

    return cast("Engine[Opened]", _run(call, exchange, opens=True))


def _never(reply: Whole) -> None:
    raise AssertionError("an opened stream's reply is never read whole")


def _run(call: Call, exchange_for: Callable[[int], Exchange[Any]], *, opens: bool) -> Engine[Any]:
    while True:
        slot, wait = call.next()
        sent = False
        try:
            if wait:
                yield Sleep(wait)
            exchange = exchange_for(slot)
            if not isinstance(exchange, Single):
                sent = True
                result = yield from _converse(call, exchange)
            elif opens:
                plan = exchange.plan
                sent = True
                response: httpx2.Response = yield Send(plan, call.timeouts(plan.endpoint), None)
                if response.status_code < 300:
                    return plan, response
                plan.raise_for_status((yield Read(plan, response, call.deadline(plan.endpoint))))
                raise AssertionError("raise_for_status raises for a status of 300 or more")
            else:
                plan = exchange.plan
                sent = True
                timeouts = call.timeouts(plan.endpoint)
                result = exchange.result((yield Send(plan, timeouts, call.deadline(plan.endpoint))))
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
        call.succeeded(slot)
        return result


def _converse(call: Call, exchange: Conversation[T]) -> Generator[Step, Any, T]:
    """The requests of a multi-request exchange; a failed one is the exchange's to judge."""
    try:
        plan = next(exchange)
        while True:
            try:
                reply = yield Send(plan, call.timeouts(plan.endpoint), call.deadline(plan.endpoint))
            except SelfHostedError as exc:
                # A health check reports it; re-raised, it is this attempt's failure.
                plan = exchange.throw(exc)
            else:
                plan = exchange.send(reply)
    except StopIteration as done:
        return cast("T", done.value)


def drive(
    engine: Engine[T], client: Callable[[int], httpx2.Client], headers: Sequence[RequestHeaders]
) -> T:
    """Carry out `engine`'s steps with sync clients (one per slot); return its result."""
    reply: object = None
    error: BaseException | None = None
    while True:
        try:
            step = engine.send(reply) if error is None else engine.throw(error)
        except StopIteration as done:
            return cast("T", done.value)
        reply, error = None, None
        # Whatever goes wrong is thrown into the engine, which records the attempt and decides.
        try:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
            elif isinstance(step, Send):
                plan = step.plan
                with plan.errors(stage="send"):
                    request = plan.request(step.timeout, headers[plan.slot])
                    reply = _http.send(client(plan.slot), request)
                if step.deadline is not None:
                    with plan.errors(stage="body"):
                        reply = _http.read_whole(reply, plan.endpoint, step.deadline)
            else:
                with step.plan.errors(stage="body"):
                    reply = _http.read_whole(step.response, step.plan.endpoint, step.deadline)
        except BaseException as exc:
            error = exc


async def adrive(
    engine: Engine[T],
    client: Callable[[int], httpx2.AsyncClient],
    headers: Sequence[RequestHeaders],
) -> T:
    """Async twin of `drive`."""
    reply: object = None
    error: BaseException | None = None
    while True:
        try:
            step = engine.send(reply) if error is None else engine.throw(error)
        except StopIteration as done:
            return cast("T", done.value)
        reply, error = None, None
        try:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Send):
                plan = step.plan
                with plan.errors(stage="send"):
                    request = plan.request(step.timeout, headers[plan.slot])
                    reply = await _http.asend(client(plan.slot), request)
                if step.deadline is not None:
                    with plan.errors(stage="body"):
                        reply = await _http.aread_whole(reply, plan.endpoint, step.deadline)
            else:
                with step.plan.errors(stage="body"):
                    body = _http.aread_whole(step.response, step.plan.endpoint, step.deadline)
                    reply = await body
        except BaseException as exc:
            error = exc
