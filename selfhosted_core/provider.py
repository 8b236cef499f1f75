"""`Provider`: chat, stream, embed, health-check and list models over the configured endpoints."""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import httpx2

from selfhosted_core import _engine, _health, _http, _telemetry, _tokenize
from selfhosted_core._affinity import request_key
from selfhosted_core._calls import CallPlan
from selfhosted_core._failover import Call
from selfhosted_core._load import LoadWatcher
from selfhosted_core._pools import AsyncPools, SyncPools
from selfhosted_core._redis import RedisStore, describe
from selfhosted_core._request import (
    chat_payload,
    chat_warnings,
    embedding_inputs,
    embedding_payload,
    validate_chat,
    validate_routing,
)
from selfhosted_core._sharing import StateSync
from selfhosted_core.config import Capability, Config, RoutingStrategy
from selfhosted_core.errors import CapabilityError, NotSupportedError
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

T = TypeVar("T")
R = TypeVar("R", ChatResponse, EmbeddingResponse)

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
        _telemetry.track(self)
        self._watcher: LoadWatcher | None = None
        if self._router.watched:
            self._watcher = LoadWatcher(
                self.config, self._router, self._headers, transport=transport
            )
            # A provider dropped without `close()` (a model object, a notebook cell) must not
            # leave its threads polling the servers.
            weakref.finalize(self, self._watcher.stop, wait=False)
        self._sync = self._sharing()
        if self._sync is not None:
            weakref.finalize(self, self._sync.stop, wait=False)

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
        return self._observed(call, _engine.attempts(call, self._chat_exchanges(request, call)))

    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Async twin of `chat`."""
        call = self._chat_call(request)
        engine: _engine.Engine[ChatResponse] = _engine.attempts(
            call, self._chat_exchanges(request, call)
        )
        return await self._aobserved(call, engine)

    def stream(self, request: ChatRequest) -> ChatStream:
        """Stream a chat answer; iterate the chunks, then `final_response()` for the whole.

        The request and the model's capabilities are checked here; the replica is
        chosen, and the request sent, when iteration starts.
        """
        call = self._chat_call(request)
        planner = functools.partial(self._chat_plan, request, stream=True)
        return ChatStream(call, lambda: self._drive(_engine.opening(call, planner)))

    def astream(self, request: ChatRequest) -> AsyncChatStream:
        """Async twin of `stream` (call it without `await`, then `async for`)."""
        call = self._chat_call(request)
        planner = functools.partial(self._chat_plan, request, stream=True)
        return AsyncChatStream(call, lambda: self._adrive(_engine.opening(call, planner)))

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Embed texts; vectors come back in input order, checked against the dimension."""
        texts = embedding_inputs(request)
        call = self._embed_call(request)
        if not texts:
            return EmbeddingResponse(model=request.model, embeddings=[], endpoint="")
        return self._observed(call, _engine.attempts(call, self._embed_exchanges(request, texts)))

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Async twin of `embed`."""
        texts = embedding_inputs(request)
        call = self._embed_call(request)
        if not texts:
            return EmbeddingResponse(model=request.model, embeddings=[], endpoint="")
        engine = _engine.attempts(call, self._embed_exchanges(request, texts))
        return await self._aobserved(call, engine)

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
        call = self._call(model, frozenset())
        return self._drive(_engine.attempts(call, self._count_exchanges(model, text, messages)))

    async def acount_tokens(
        self,
        model: str,
        *,
        text: str | None = None,
        messages: Sequence[Message] | None = None,
    ) -> int:
        """Async twin of `count_tokens`."""
        _tokenize.check(model, text, messages)
        call = self._call(model, frozenset())
        exchanges = self._count_exchanges(model, text, messages)
        return await self._adrive(_engine.attempts(call, exchanges))

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
        """Close the sync connection pools, and stop reading the servers' load.

        The provider stays usable: a later call opens new connections (and reads again).
        """
        if self._watcher is not None:
            self._watcher.stop()
        if self._sync is not None:
            self._sync.stop()
        self._pools.close()

    async def aclose(self) -> None:
        """Close the async pools of the running event loop, and the sync pools."""
        await self._async_pools.aclose()
        if self._watcher is not None:
            # Not waited for: a read in flight would block the event loop until it ends.
            self._watcher.stop(wait=False)
        if self._sync is not None:
            self._sync.stop(wait=False)
        self._pools.close()

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

    def _sharing(self) -> StateSync | None:
        """The thread sharing routing state (`routing.state`), after a first exchange.

        The first exchange, here, brings what the other processes know (a replica they
        ejected); when it fails, a warning names the setting and the provider routes on its
        own state (or, `fail_closed`, refuses) until the store answers.

        Raises:
            ConfigurationError: The store refused the URL's credentials, or the `redis`
                package is missing.
        """
        state = self.config.routing.state
        if not state.shared:
            return None
        endpoints = [f"{e.id}@{e.api_base}" for e in self.config.endpoints]
        store = RedisStore(state, endpoints)
        store.check()
        sync = StateSync(
            self._router,
            store,
            interval=state.sync_interval,
            fail_closed=state.fail_closed,
            where=f"{describe(state)} (routing.state.url)",
        )
        sync.exchange()
        return sync

    def _call(
        self,
        model: str,
        needs: frozenset[Capability],
        intent: ChatRequest | EmbeddingRequest | None = None,
    ) -> Call:
        """The attempts of one request, routed and resent as `intent` asks.

        Checks the model, its capabilities and the named replica first, so a request no
        replica could serve fails before any I/O.
        """
        replicas = self.config.replicas(model)
        if self._watcher is not None and not self._watcher.running:
            # Started by the first request (again after `close()`), not by the constructor:
            # a provider that is configured and never used runs no thread.
            self._watcher.start()
        if self._sync is not None and not self._sync.running:
            self._sync.start()
        if intent is None:
            return Call(self._router, self.config.routing, replicas, model=model, needs=needs)
        validate_routing(intent)
        prefer = None
        if intent.endpoint is not None:
            self._router.check(model, needs)  # a capability error comes before a naming one
            prefer = self._router.slot_named(model, intent.endpoint)
        key = None
        if isinstance(intent, ChatRequest) and prefer is None:
            policy = self._router.policy(model)
            if policy.strategy is RoutingStrategy.AFFINITY:
                key = request_key(intent, limit=policy.affinity_prefix_chars)
        return Call(
            self._router,
            self.config.routing,
            replicas,
            model=model,
            needs=needs,
            prefer=prefer,
            strict=intent.strict_endpoint,
            max_attempts=intent.max_attempts,
            resend_unsafe=intent.resend_unsafe,
            timeout=intent.timeout,
            key=key,
            observation=_telemetry.observe(
                "chat" if isinstance(intent, ChatRequest) else "embeddings", intent
            ),
        )

    def _chat_call(self, request: ChatRequest) -> Call:
        validate_chat(request)
        for warning in chat_warnings(request):
            _log.warning(warning)
        return self._call(request.model, request.required_capabilities(), request)

    def _embed_call(self, request: EmbeddingRequest) -> Call:
        return self._call(request.model, _EMBEDDING, request)

    def _chat_plan(self, request: ChatRequest, slot: int, *, stream: bool) -> CallPlan:
        """The chat request as sent to one slot (its server's quirks, its model name)."""
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

    def _chat_exchanges(self, request: ChatRequest, call: Call) -> Callable[[int], _engine.Single]:
        def exchange(slot: int) -> _engine.Single:
            plan = self._chat_plan(request, slot, stream=False)

            def answer(whole: _http.Whole) -> ChatResponse:
                response = plan.chat_response(whole)
                call.reported(slot, response.usage)
                return response

            return _engine.Single(plan, answer)

        return exchange

    def _embed_exchanges(
        self, request: EmbeddingRequest, texts: list[str]
    ) -> Callable[[int], _engine.Exchange[EmbeddingResponse]]:
        def exchange(slot: int) -> _engine.Exchange[EmbeddingResponse]:
            endpoint = self.config.endpoints[slot]
            plan = CallPlan.post(
                slot=slot,
                endpoint=endpoint,
                model=request.model,
                server=self._servers[slot] or ServerKind.GENERIC,
                path="/embeddings",
                payload=embedding_payload(texts, request, endpoint),
            )
            return _engine.single(plan, lambda whole: plan.embedding_response(whole, len(texts)))

        return exchange

    def _count_exchanges(
        self, model: str, text: str | None, messages: Sequence[Message] | None
    ) -> Callable[[int], _engine.Exchange[int]]:
        def exchange(slot: int) -> _engine.Conversation[int]:
            health = None
            if self._servers[slot] is None:
                health = yield from self._health_exchange(slot)
            return (yield from self._plan_count(slot, model, text, messages, health))

        return exchange

    def _health_exchange(self, slot: int) -> _engine.Conversation[EndpointHealth]:
        health = yield from _health.probe(self.config.endpoints[slot], slot=slot)
        return self._remember(slot, health)

    def _health_call(self, slot: int, timeout: float) -> Call:
        """A check of exactly this slot, whatever its state, whose outcome is only its verdict."""
        if self._sync is not None and not self._sync.running:
            # Its verdict is shared too (and queued until the thread sends it).
            self._sync.start()
        endpoint = self.config.endpoints[slot]
        return Call(
            self._router,
            self.config.routing,
            [endpoint],
            model=endpoint.id,
            needs=frozenset(),
            prefer=slot,
            strict=True,
            max_attempts=1,
            timeout=timeout,
            record=False,
        )

    def _observed(self, call: Call, engine: _engine.Engine[R]) -> R:
        """Run a chat or embeddings call, in its span when OpenTelemetry is set up."""
        observation = call.observation
        if observation is None:
            return self._drive(engine)
        with observation.current():
            return observation.answered(self._drive(engine))

    async def _aobserved(self, call: Call, engine: _engine.Engine[R]) -> R:
        """Async twin of `_observed`."""
        observation = call.observation
        if observation is None:
            return await self._adrive(engine)
        with observation.current():
            return observation.answered(await self._adrive(engine))

    def _drive(self, engine: _engine.Engine[T]) -> T:
        return _engine.drive(engine, self._client, self._headers)

    async def _adrive(self, engine: _engine.Engine[T]) -> T:
        return await _engine.adrive(engine, self._aclient, self._headers)

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
        call = self._health_call(slot, timeout)
        return self._drive(_engine.attempts(call, self._health_exchange))

    async def _ahealth_one(self, slot: int, timeout: float) -> EndpointHealth:
        call = self._health_call(slot, timeout)
        return await self._adrive(_engine.attempts(call, self._health_exchange))

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
