"""`Provider`: chat, stream, embed, health-check and list models over the configured endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, NoReturn

import httpx2

from selfhosted_core import _health, _http, _tokenize
from selfhosted_core._calls import CallPlan
from selfhosted_core._failover import Call
from selfhosted_core._pools import AsyncPools, SyncPools
from selfhosted_core._request import (
    chat_payload,
    chat_warnings,
    embedding_inputs,
    embedding_payload,
    validate_chat,
)
from selfhosted_core.config import Capability, Config
from selfhosted_core.errors import CapabilityError, NotSupportedError, SelfHostedError
from selfhosted_core.profiles import ServerKind, profile_for
from selfhosted_core.routing import EndpointStats, Router
from selfhosted_core.streams import AsyncChatStream, ChatStream
from selfhosted_core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EndpointHealth,
    HealthReport,
    HealthStatus,
    Message,
    ModelInfo,
)

__all__ = ["Provider"]

_EMBEDDING = frozenset({Capability.EMBEDDING})

_log = logging.getLogger("selfhosted_core")


class Provider:
    """Routes chat and embedding requests to operator-run inference servers.

    One pooled HTTP client per endpoint, created on first use; async clients belong to the event
    loop that created them. Every method that does I/O has an async twin (`achat`, `astream`,
    `aembed`, `acount_tokens`, `ahealth`) that decides exactly as the sync one does.

    Example:
        >>> from selfhosted_core import ChatRequest, Config, Message, Provider
        >>> config = Config(endpoints=[{"url": "http://127.0.0.1:8080", "id": "qwen3"}])
        >>> with Provider(config) as provider:  # doctest: +SKIP
        ...     answer = provider.chat(
        ...         ChatRequest(model="qwen3", messages=[Message(role="user", content="Hi")])
        ...     )
        ...     print(answer.content, answer.usage)

    Args:
        config: The endpoints; `Config.from_env()` when omitted.
        provider_id: The name this provider reports in `ModelInfo`.
        transport: A sync httpx2 transport for every endpoint (tests inject a mock here).
        async_transport: The async counterpart.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        provider_id: str = "SelfHosted",
        transport: httpx2.BaseTransport | None = None,
        async_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config if config is not None else Config.from_env()
        self.provider_id = provider_id
        self._router = Router(self.config)
        self._servers: list[ServerKind | None] = [e.server for e in self.config.endpoints]
        self._reported_context: list[int | None] = [None] * len(self.config.endpoints)
        self._headers = [_http.RequestHeaders.of(e) for e in self.config.endpoints]
        self._transport = transport
        self._async_transport = async_transport
        self._pools = SyncPools(self, self._new_client)
        self._async_pools = AsyncPools(self._new_async_client)

    def __repr__(self) -> str:
        return f"Provider(provider_id={self.provider_id!r}, models={self.config.model_ids!r})"

    def available_models(self) -> list[ModelInfo]:
        """Every configured model, replicas folded into one entry."""
        models = []
        for model in self.config.model_ids:
            replicas = self.config.replicas(model)
            first = replicas[0]
            models.append(
                ModelInfo(
                    id=model,
                    label=first.label or model,
                    capabilities=first.capabilities,
                    dimension=first.dimension,
                    token_modifier=first.token_modifier,
                    provider_id=self.provider_id,
                    replicas=len(replicas),
                    endpoints=tuple(endpoint.display_name for endpoint in replicas),
                    context_window=self.context_window(model),
                )
            )
        return models

    def context_window(self, model: str) -> int | None:
        """The model's context size in tokens, None while unknown.

        Each replica counts with its configured `context_window`, or else with what its latest
        health check that found one reported; the smallest over the replicas is returned, so
        a prompt that fits fits on every replica.
        """
        self._router.check(model, frozenset())
        known = [
            endpoint.context_window or self._reported_context[slot]
            for slot, endpoint in enumerate(self.config.endpoints)
            if endpoint.id == model
        ]
        return min((size for size in known if size is not None), default=None)

    def embedding_dimension(self, model: str) -> int:
        """The configured vector size of an embedding model."""
        if Capability.EMBEDDING not in self._router.capabilities(model):
            raise CapabilityError(f"model {model!r} is not an embedding model", model=model)
        dimension = self.config.replicas(model)[0].dimension
        assert dimension is not None, "validated by Config: embedding models have a dimension"
        return dimension

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Send a chat request and return the repaired answer."""
        call = self._chat_call(request)
        plan, response = self._open(call, self._chat_planner(request, stream=False))
        with call.outcome(plan.slot), plan.errors():
            whole = _http.read_whole(response, plan.endpoint, call.deadline(plan.endpoint))
            return plan.chat_response(whole)

    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Async twin of `chat`."""
        call = self._chat_call(request)
        plan, response = await self._aopen(call, self._chat_planner(request, stream=False))
        with call.outcome(plan.slot), plan.errors():
            whole = await _http.aread_whole(response, plan.endpoint, call.deadline(plan.endpoint))
            return plan.chat_response(whole)

    def stream(self, request: ChatRequest) -> ChatStream:
        """Stream a chat answer; iterate the chunks, then `final_response()` for the whole.

        The request and the model's capabilities are checked here; the replica is
        chosen, and the request sent, when iteration starts.
        """
        call = self._chat_call(request)
        planner = self._chat_planner(request, stream=True)
        return ChatStream(call, lambda: self._open(call, planner))

    def astream(self, request: ChatRequest) -> AsyncChatStream:
        """Async twin of `stream` (call it without `await`, then `async for`)."""
        call = self._chat_call(request)
        planner = self._chat_planner(request, stream=True)
        return AsyncChatStream(call, lambda: self._aopen(call, planner))

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Embed texts; vectors come back in input order, checked against the dimension."""
        texts = embedding_inputs(request)
        call = self._call(request.model, _EMBEDDING, request.endpoint, request.timeout)
        if not texts:
            return EmbeddingResponse(model=request.model, embeddings=[], endpoint="")
        plan, response = self._open(call, self._embed_planner(request, texts))
        with call.outcome(plan.slot), plan.errors():
            whole = _http.read_whole(response, plan.endpoint, call.deadline(plan.endpoint))
            return plan.embedding_response(whole, len(texts))

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Async twin of `embed`."""
        texts = embedding_inputs(request)
        call = self._call(request.model, _EMBEDDING, request.endpoint, request.timeout)
        if not texts:
            return EmbeddingResponse(model=request.model, embeddings=[], endpoint="")
        plan, response = await self._aopen(call, self._embed_planner(request, texts))
        with call.outcome(plan.slot), plan.errors():
            whole = await _http.aread_whole(response, plan.endpoint, call.deadline(plan.endpoint))
            return plan.embedding_response(whole, len(texts))

    def count_tokens(
        self,
        model: str,
        *,
        text: str | None = None,
        messages: Sequence[Message] | None = None,
    ) -> int:
        """Count tokens with the model's own tokenizer, on its server; nothing is downloaded.

        Give exactly one of `text` (counted alone, no BOS or other special token added) or
        `messages` (the whole prompt a chat request with them would send, template and
        generation prompt included, no tools: the server's `usage.prompt_tokens`). Works on
        llama-server and vLLM, and on SGLang for text; an endpoint whose server kind is neither
        configured nor yet detected is health-checked first.

        Raises:
            NotSupportedError: The server offers no tokenizer API (Ollama, LM Studio, LocalAI,
                TGI, or a kind that stays unknown).
        """
        _tokenize.check(model, text, messages)
        call = self._call(model, frozenset(), None, None)
        slot, wait = call.next()
        with call.outcome(slot):
            if wait:
                time.sleep(wait)
            health = None
            if self._servers[slot] is None:
                health = self._health_one(slot, _health.DEFAULT_HEALTH_TIMEOUT)
            steps = self._plan_count(slot, model, text, messages, health)
            client, endpoint = self._client(slot), self.config.endpoints[slot]
            step: CallPlan | int = next(steps)
            while isinstance(step, CallPlan):
                with step.errors():
                    sent = _http.send(
                        client, step.request(call.timeouts(endpoint), self._headers[slot])
                    )
                    response = _http.read_whole(sent, endpoint, call.deadline(endpoint))
                step = _tokenize.advance(steps, response)
            return step

    async def acount_tokens(
        self,
        model: str,
        *,
        text: str | None = None,
        messages: Sequence[Message] | None = None,
    ) -> int:
        """Async twin of `count_tokens`."""
        _tokenize.check(model, text, messages)
        call = self._call(model, frozenset(), None, None)
        slot, wait = call.next()
        with call.outcome(slot):
            if wait:
                await asyncio.sleep(wait)
            health = None
            if self._servers[slot] is None:
                health = await self._ahealth_one(slot, _health.DEFAULT_HEALTH_TIMEOUT)
            steps = self._plan_count(slot, model, text, messages, health)
            client, endpoint = self._aclient(slot), self.config.endpoints[slot]
            step: CallPlan | int = next(steps)
            while isinstance(step, CallPlan):
                with step.errors():
                    sent = await _http.asend(
                        client, step.request(call.timeouts(endpoint), self._headers[slot])
                    )
                    response = await _http.aread_whole(sent, endpoint, call.deadline(endpoint))
                step = _tokenize.advance(steps, response)
            return step

    def health(self, *, timeout: float = _health.DEFAULT_HEALTH_TIMEOUT) -> HealthReport:
        """Check every endpoint; one endpoint down or loading never fails the report."""
        return HealthReport(
            tuple(self._health_one(slot, timeout) for slot in range(len(self.config.endpoints)))
        )

    async def ahealth(self, *, timeout: float = _health.DEFAULT_HEALTH_TIMEOUT) -> HealthReport:
        """Async twin of `health`; endpoints are checked concurrently."""
        slots = range(len(self.config.endpoints))
        results = await asyncio.gather(*(self._ahealth_one(slot, timeout) for slot in slots))
        return HealthReport(tuple(results))

    def stats(self) -> list[EndpointStats]:
        """What each endpoint has done: requests, errors, in flight, latency, circuit state.

        Example:
            >>> for entry in provider.stats():  # doctest: +SKIP
            ...     print(entry.endpoint, entry.circuit.value, entry.in_flight, entry.latency_p50)
        """
        return self._router.stats()

    def upload_file(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not offered by self-hosted inference servers."""
        raise NotSupportedError("file upload is not supported by self-hosted inference servers")

    def delete_file(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not offered by self-hosted inference servers."""
        raise NotSupportedError("file deletion is not supported by self-hosted inference servers")

    def close(self) -> None:
        """Close the sync connection pools."""
        self._pools.close()

    async def aclose(self) -> None:
        """Close the async pools of the running event loop, and the sync pools."""
        await self._async_pools.aclose()
        self.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _call(
        self, model: str, needs: frozenset[Capability], endpoint: str | None, timeout: float | None
    ) -> Call:
        """The attempts of one request; checks the model and its capabilities first."""
        return Call(
            self._router,
            self.config.routing,
            self.config.replicas(model),
            model=model,
            needs=needs,
            endpoint=endpoint,
            timeout=timeout,
        )

    def _chat_call(self, request: ChatRequest) -> Call:
        validate_chat(request)
        for warning in chat_warnings(request):
            _log.warning(warning)
        needs = request.required_capabilities()
        return self._call(request.model, needs, request.endpoint, request.timeout)

    def _chat_planner(self, request: ChatRequest, *, stream: bool) -> Callable[[int], CallPlan]:
        """The chat request as sent to one slot (its server's quirks, its model name)."""

        def plan(slot: int) -> CallPlan:
            endpoint = self.config.endpoints[slot]
            server = self._servers[slot] or ServerKind.GENERIC
            return CallPlan.post(
                slot=slot,
                endpoint=endpoint,
                model=request.model,
                server=server,
                path="/chat/completions",
                payload=chat_payload(request, endpoint, profile_for(server), stream=stream),
                stream=stream,
            )

        return plan

    def _embed_planner(
        self, request: EmbeddingRequest, texts: list[str]
    ) -> Callable[[int], CallPlan]:
        def plan(slot: int) -> CallPlan:
            endpoint = self.config.endpoints[slot]
            return CallPlan.post(
                slot=slot,
                endpoint=endpoint,
                model=request.model,
                server=self._servers[slot] or ServerKind.GENERIC,
                path="/embeddings",
                payload=embedding_payload(texts, request, endpoint),
            )

        return plan

    def _open(
        self, call: Call, planner: Callable[[int], CallPlan]
    ) -> tuple[CallPlan, httpx2.Response]:
        """Send until an answer starts that is not to be resent; the caller reads and records it.

        An error status is read and raised here, so a 429 or 503 can go to another replica.
        """
        while True:
            slot, wait = call.next()
            answered = False
            try:
                if wait:
                    time.sleep(wait)
                plan = planner(slot)
                client = self._client(slot)
                with plan.errors():
                    request = plan.request(call.timeouts(plan.endpoint), self._headers[slot])
                    response = _http.send(client, request)
                    answered = True
                    if response.status_code >= 300:
                        deadline = call.deadline(plan.endpoint)
                        plan.raise_for_status(_http.read_whole(response, plan.endpoint, deadline))
            except SelfHostedError as exc:
                if call.failed(slot, exc, answered=answered):
                    continue
                raise
            except BaseException:
                call.abandoned(slot)
                raise
            return plan, response

    async def _aopen(
        self, call: Call, planner: Callable[[int], CallPlan]
    ) -> tuple[CallPlan, httpx2.Response]:
        """Async twin of `_open`."""
        while True:
            slot, wait = call.next()
            answered = False
            try:
                if wait:
                    await asyncio.sleep(wait)
                plan = planner(slot)
                client = self._aclient(slot)
                with plan.errors():
                    request = plan.request(call.timeouts(plan.endpoint), self._headers[slot])
                    response = await _http.asend(client, request)
                    answered = True
                    if response.status_code >= 300:
                        deadline = call.deadline(plan.endpoint)
                        whole = await _http.aread_whole(response, plan.endpoint, deadline)
                        plan.raise_for_status(whole)
            except SelfHostedError as exc:
                if call.failed(slot, exc, answered=answered):
                    continue
                raise
            except BaseException:
                call.abandoned(slot)
                raise
            return plan, response

    def _plan_count(
        self,
        slot: int,
        model: str,
        text: str | None,
        messages: Sequence[Message] | None,
        health: EndpointHealth | None,
    ) -> _tokenize.TokenCount:
        return _tokenize.count(
            slot=slot,
            endpoint=self.config.endpoints[slot],
            model=model,
            server=self._servers[slot] or ServerKind.GENERIC,
            text=text,
            messages=messages,
            health=health,
        )

    def _client(self, slot: int) -> httpx2.Client:
        return self._pools.get(slot)

    def _aclient(self, slot: int) -> httpx2.AsyncClient:
        return self._async_pools.get(slot)

    def _new_client(self, slot: int) -> httpx2.Client:
        return _http.new_client(self.config.endpoints[slot], self._transport)

    def _new_async_client(self, slot: int) -> httpx2.AsyncClient:
        return _http.new_async_client(self.config.endpoints[slot], self._async_transport)

    def _health_one(self, slot: int, timeout: float) -> EndpointHealth:
        endpoint = self.config.endpoints[slot]
        client = self._client(slot)
        steps = _health.probe(endpoint)
        step: str | EndpointHealth = next(steps)
        while isinstance(step, str):
            try:
                with _http.transport_errors(model=endpoint.id, endpoint=endpoint.display_name):
                    response = client.get(step, timeout=timeout)
                reply: _health.Reply | SelfHostedError = _health.reply(response)
            except SelfHostedError as exc:
                reply = exc
            step = _health.advance(steps, reply)
        return self._remember(slot, step)

    async def _ahealth_one(self, slot: int, timeout: float) -> EndpointHealth:
        endpoint = self.config.endpoints[slot]
        client = self._aclient(slot)
        steps = _health.probe(endpoint)
        step: str | EndpointHealth = next(steps)
        while isinstance(step, str):
            try:
                with _http.transport_errors(model=endpoint.id, endpoint=endpoint.display_name):
                    response = await client.get(step, timeout=timeout)
                reply: _health.Reply | SelfHostedError = _health.reply(response)
            except SelfHostedError as exc:
                reply = exc
            step = _health.advance(steps, reply)
        return self._remember(slot, step)

    def _remember(self, slot: int, health: EndpointHealth) -> EndpointHealth:
        """Adopt the detected server kind unless the config declared one; keep the context size.

        A check that found no context size (the server down or loading) keeps the last one.
        Its verdict also reaches the router: ok restores an ejected endpoint, down ejects it,
        loading rests it.
        """
        if health.status is not HealthStatus.UNAUTHORIZED:
            self._router.probed(
                slot,
                healthy=health.status is HealthStatus.OK,
                loading=health.status is HealthStatus.LOADING,
            )
        if self.config.endpoints[slot].server is None and health.server is not None:
            self._servers[slot] = health.server
        if health.context_window is not None:
            self._reported_context[slot] = health.context_window
        return health
