"""`Provider`: chat, stream, embed, health-check and list models over the configured endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any, NoReturn

import httpx2

from selfhosted_core import _health, _http, _tokenize
from selfhosted_core._calls import CallPlan
from selfhosted_core._pools import AsyncPools, SyncPools
from selfhosted_core._request import chat_payload, embedding_inputs, embedding_payload
from selfhosted_core.config import Capability, Config
from selfhosted_core.errors import CapabilityError, NotSupportedError, SelfHostedError
from selfhosted_core.profiles import ServerKind, profile_for
from selfhosted_core.routing import Router
from selfhosted_core.streams import AsyncChatStream, ChatStream
from selfhosted_core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EndpointHealth,
    HealthReport,
    Message,
    ModelInfo,
)

__all__ = ["Provider"]

_EMBEDDING = frozenset({Capability.EMBEDDING})


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
        plan = self._plan_chat(request, stream=False)
        client = self._client(plan.slot)
        with plan.errors():
            response = _http.send(client, plan.request(client))
            response.read()
        return plan.chat_response(response)

    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Async twin of `chat`."""
        plan = self._plan_chat(request, stream=False)
        client = self._aclient(plan.slot)
        with plan.errors():
            response = await _http.asend(client, plan.request(client))
            await response.aread()
        return plan.chat_response(response)

    def stream(self, request: ChatRequest) -> ChatStream:
        """Stream a chat answer; iterate the chunks, then `final_response()` for the whole.

        Routing and capability checks happen here, before anything is sent.
        """
        plan = self._plan_chat(request, stream=True)
        return ChatStream(plan, self._client(plan.slot))

    def astream(self, request: ChatRequest) -> AsyncChatStream:
        """Async twin of `stream` (call it without `await`, then `async for`)."""
        plan = self._plan_chat(request, stream=True)
        return AsyncChatStream(plan, self._aclient(plan.slot))

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Embed texts; vectors come back in input order, checked against the dimension."""
        plan, texts = self._plan_embed(request)
        if plan is None:
            return EmbeddingResponse(model=request.model, embeddings=[], endpoint="")
        client = self._client(plan.slot)
        with plan.errors():
            response = _http.send(client, plan.request(client))
            response.read()
        return plan.embedding_response(response, len(texts))

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Async twin of `embed`."""
        plan, texts = self._plan_embed(request)
        if plan is None:
            return EmbeddingResponse(model=request.model, embeddings=[], endpoint="")
        client = self._aclient(plan.slot)
        with plan.errors():
            response = await _http.asend(client, plan.request(client))
            await response.aread()
        return plan.embedding_response(response, len(texts))

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
        slot = self._count_slot(model, text, messages)
        health = None
        if self._servers[slot] is None:
            health = self._health_one(slot, _health.DEFAULT_HEALTH_TIMEOUT)
        steps = self._plan_count(slot, model, text, messages, health)
        client = self._client(slot)
        step: CallPlan | int = next(steps)
        while isinstance(step, CallPlan):
            with step.errors():
                response = _http.send(client, step.request(client))
                response.read()
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
        slot = self._count_slot(model, text, messages)
        health = None
        if self._servers[slot] is None:
            health = await self._ahealth_one(slot, _health.DEFAULT_HEALTH_TIMEOUT)
        steps = self._plan_count(slot, model, text, messages, health)
        client = self._aclient(slot)
        step: CallPlan | int = next(steps)
        while isinstance(step, CallPlan):
            with step.errors():
                response = await _http.asend(client, step.request(client))
                await response.aread()
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

    def _plan_chat(self, request: ChatRequest, *, stream: bool) -> CallPlan:
        slot = self._router.select(
            request.model, request.required_capabilities(), endpoint=request.endpoint
        )
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
            timeout=request.timeout,
        )

    def _plan_embed(self, request: EmbeddingRequest) -> tuple[CallPlan | None, list[str]]:
        """The call, or None when there is nothing to embed (the model is still checked)."""
        texts = embedding_inputs(request)
        if not texts:
            self._router.check(request.model, _EMBEDDING)
            return None, texts
        slot = self._router.select(request.model, _EMBEDDING, endpoint=request.endpoint)
        endpoint = self.config.endpoints[slot]
        plan = CallPlan.post(
            slot=slot,
            endpoint=endpoint,
            model=request.model,
            server=self._servers[slot] or ServerKind.GENERIC,
            path="/embeddings",
            payload=embedding_payload(texts, request, endpoint),
            timeout=request.timeout,
        )
        return plan, texts

    def _count_slot(self, model: str, text: str | None, messages: Sequence[Message] | None) -> int:
        """The replica to count on (any capability will do), after checking the request."""
        _tokenize.check(model, text, messages)
        return self._router.select(model, frozenset())

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
        """
        if self.config.endpoints[slot].server is None and health.server is not None:
            self._servers[slot] = health.server
        if health.context_window is not None:
            self._reported_context[slot] = health.context_window
        return health
