"""Streamed chat answers: iterate the chunks, then ask for the aggregated final response.

```
with provider.stream(request) as stream:
    for chunk in stream:
        print(chunk.content or "", end="")
    final = stream.final_response()
```

The connection is read to its very end (past `[DONE]`) so it goes back to the pool; breaking out
of the loop early and leaving the `with` block closes it instead.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from types import TracebackType

import httpx2

from selfhosted_core import _http
from selfhosted_core._assemble import Assembler
from selfhosted_core._calls import CallPlan
from selfhosted_core._failover import Call
from selfhosted_core._replies import not_a_stream
from selfhosted_core._sse import EventTooLarge, ServerSentEvent, SSEDecoder
from selfhosted_core._status import endpoint_secrets, redact
from selfhosted_core._telemetry import Observation
from selfhosted_core.errors import ResponseError, SelfHostedError
from selfhosted_core.types import ChatChunk, ChatResponse

__all__ = ["AsyncChatStream", "ChatStream"]


def _is_json(response: httpx2.Response) -> bool:
    """Whether a server ignored `stream: true` and answered with one JSON body."""
    return response.headers.get("content-type", "").startswith("application/json")


def _chunks(decoder: SSEDecoder, assembler: Assembler, data: bytes | None) -> Iterator[ChatChunk]:
    """What one read of the body adds (`None` marks the end of the body).

    A generator, so the chunks that came in the same read as an error event are delivered
    before the error is raised.
    """
    try:
        events = decoder.close() if data is None else decoder.feed(data)
    except EventTooLarge as exc:
        # The events before the oversized one are delivered; transport_errors maps the error.
        yield from _deliver(assembler, exc.events)
        raise
    yield from _deliver(assembler, events)


def _deliver(assembler: Assembler, events: list[ServerSentEvent]) -> Iterator[ChatChunk]:
    for event in events:
        chunk = assembler.feed_event(event.data, event=event.event)
        if chunk is not None:
            yield chunk


def _check_start(plan: CallPlan, response: httpx2.Response, data: bytes) -> None:
    """Refuse a 200 that is neither an event stream nor JSON (a proxy's HTML page)."""
    problem = not_a_stream(response.headers.get("content-type"), data)
    if problem is not None:
        # The excerpt is the server's text, which may echo the key.
        message = redact(problem, endpoint_secrets(plan.endpoint))
        raise ResponseError(message, model=plan.model, endpoint=plan.endpoint.display_name)


Opened = tuple[CallPlan, httpx2.Response]


class _StreamState:
    """What both stream flavours hold: the call, the plan once sent, and how the stream ended."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._plan: CallPlan | None = None
        self._assembler: Assembler | None = None
        self._final: ChatResponse | None = None
        self._error: SelfHostedError | None = None

    @property
    def endpoint(self) -> str | None:
        """The label of the endpoint answering this stream; None until it has been sent."""
        return self._plan.endpoint.display_name if self._plan is not None else None

    def _started(self, opened: Opened) -> tuple[CallPlan, Assembler, httpx2.Response]:
        plan, response = opened
        self._plan, self._assembler = plan, plan.assembler()
        return plan, self._assembler, response

    def _partial(self) -> ChatResponse | None:
        return self._assembler.partial() if self._assembler is not None else None

    def _outcome(self) -> ChatResponse:
        if self._error is not None:
            raise self._error
        if self._final is None:
            raise ResponseError(
                "the stream was closed before it finished",
                model=self._plan.model if self._plan is not None else None,
                endpoint=self.endpoint,
                partial=self._partial(),
            )
        return self._final


class ChatStream(_StreamState):
    """A streamed chat answer (sync). Iterate once; `final_response()` aggregates everything.

    The request is sent when iteration starts; until the first chunk it may be resent to
    another replica (see `RoutingPolicy`), never after.
    """

    def __init__(self, call: Call, open_: Callable[[], Opened]) -> None:
        super().__init__(call)
        self._open = open_
        observation = call.observation
        self._iterator = self._generate() if observation is None else self._observed(observation)

    def __iter__(self) -> Iterator[ChatChunk]:
        return self._iterator

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._iterator.close()

    def final_response(self) -> ChatResponse:
        """Read whatever is left and return the aggregated, repaired answer.

        Raises the error that ended the stream, if one did.
        """
        for _ in self._iterator:
            pass
        return self._outcome()

    def _observed(self, observation: Observation) -> Generator[ChatChunk, None, None]:
        """`_generate` in the call's span, opened at the first read and ended with the stream."""
        observation.start()
        chunks = self._generate()
        try:
            for chunk in chunks:
                observation.first_chunk()
                yield chunk
        except GeneratorExit:
            chunks.close()  # its attempt ends (abandoned) before the span does
            observation.closed()
            raise
        except BaseException as exc:
            observation.failed(exc)
            raise
        assert self._final is not None, "a stream that ended without an error has its answer"
        observation.answered(self._final)

    def _generate(self) -> Generator[ChatChunk, None, None]:
        try:
            plan, assembler, response = self._started(self._open())
            decoder = plan.decoder()
            with self._call.outcome(plan.slot), plan.errors(assembler.partial):
                try:
                    deadline = self._call.deadline(plan.endpoint)
                    if _is_json(response):
                        whole = _http.read_whole(response, plan.endpoint, deadline)
                        yield from filter(None, [assembler.feed_whole(whole.content)])
                    else:
                        try:
                            first = True
                            for data in _http.body_chunks(response, plan.endpoint, deadline):
                                if first:
                                    first = False
                                    _check_start(plan, response, data)
                                yield from _chunks(decoder, assembler, data)
                        except httpx2.HTTPError:
                            # Past [DONE] the answer is whole; a failed drain only costs the
                            # connection its place in the pool.
                            if not assembler.done:
                                raise
                        yield from _chunks(decoder, assembler, None)
                finally:
                    response.close()
                self._final = plan.stream_end(assembler)
                self._call.reported(plan.slot, self._final.usage)
        except SelfHostedError as exc:
            self._error = exc
            raise


class AsyncChatStream(_StreamState):
    """A streamed chat answer (async twin of `ChatStream`)."""

    def __init__(self, call: Call, open_: Callable[[], Awaitable[Opened]]) -> None:
        super().__init__(call)
        self._open = open_
        observation = call.observation
        self._iterator = self._generate() if observation is None else self._observed(observation)

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self._iterator

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        await self._iterator.aclose()

    async def final_response(self) -> ChatResponse:
        """Read whatever is left and return the aggregated, repaired answer.

        Raises the error that ended the stream, if one did.
        """
        async for _ in self._iterator:
            pass
        return self._outcome()

    async def _observed(self, observation: Observation) -> AsyncGenerator[ChatChunk, None]:
        """Async twin of `ChatStream._observed`."""
        observation.start()
        chunks = self._generate()
        try:
            async for chunk in chunks:
                observation.first_chunk()
                yield chunk
        except GeneratorExit:
            await chunks.aclose()  # its attempt ends (abandoned) before the span does
            observation.closed()
            raise
        except BaseException as exc:
            observation.failed(exc)
            raise
        assert self._final is not None, "a stream that ended without an error has its answer"
        observation.answered(self._final)

    async def _generate(self) -> AsyncGenerator[ChatChunk, None]:
        try:
            plan, assembler, response = self._started(await self._open())
            decoder = plan.decoder()
            with self._call.outcome(plan.slot), plan.errors(assembler.partial):
                try:
                    deadline = self._call.deadline(plan.endpoint)
                    if _is_json(response):
                        whole = await _http.aread_whole(response, plan.endpoint, deadline)
                        for chunk in filter(None, [assembler.feed_whole(whole.content)]):
                            yield chunk
                    else:
                        try:
                            first = True
                            async for data in _http.abody_chunks(response, plan.endpoint, deadline):
                                if first:
                                    first = False
                                    _check_start(plan, response, data)
                                for chunk in _chunks(decoder, assembler, data):
                                    yield chunk
                        except httpx2.HTTPError:
                            # Past [DONE] the answer is whole; a failed drain only costs the
                            # connection its place in the pool.
                            if not assembler.done:
                                raise
                        for chunk in _chunks(decoder, assembler, None):
                            yield chunk
                finally:
                    await response.aclose()
                self._final = plan.stream_end(assembler)
                self._call.reported(plan.slot, self._final.usage)
        except SelfHostedError as exc:
            self._error = exc
            raise
