"""The clients under test, each doing one request the way its documentation shows.

Every client answers with what a user wants from the reply (the text, or the vectors), and
the worker checks that answer against the canned one before timing it, so a client that
skipped the work could not look fast. A client offers the modes in its `modes`: `chat`,
`stream`, `embed` (sync) and `achat` (async, run at concurrency 64).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, ClassVar

from benchmarks import payloads

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel
    from openai.types.chat import ChatCompletionMessageParam

MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "Say something about foxes."}]
KEY = "bench-key"
Answer = str | list[list[float]]
SYNC_AND_ASYNC = ("chat", "stream", "embed", "achat")


class Client:
    """One library's way of making each kind of request; `modes` says which it offers."""

    name: ClassVar[str] = ""
    group: ClassVar[str] = "peer"
    modes: ClassVar[tuple[str, ...]] = SYNC_AND_ASYNC

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def chat(self) -> str:
        """One chat completion: its text."""
        raise NotImplementedError

    def stream(self) -> str:
        """One streamed chat completion, every delta consumed: its text."""
        raise NotImplementedError

    def embed(self) -> list[list[float]]:
        """One embeddings request of the 16 inputs: the vectors."""
        raise NotImplementedError

    async def astart(self) -> None:
        """Create what must be created inside the event loop."""

    async def achat(self) -> str:
        """One async chat completion: its text."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close what `astart` opened, inside the event loop."""


class Httpx2(Client):
    """The floor: a raw httpx2 POST and `json.loads`, nothing more."""

    name, group = "httpx2 + json.loads", "floor"

    def __init__(self, base_url: str) -> None:
        import httpx2  # noqa: PLC0415

        super().__init__(base_url)
        self.client = httpx2.Client(headers={"authorization": f"Bearer {KEY}"})
        self.aclient = httpx2.AsyncClient(headers={"authorization": f"Bearer {KEY}"})

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        reply = self.client.post(self.base_url + path, json=payload)
        reply.raise_for_status()
        return json.loads(reply.content)

    def chat(self) -> str:
        """One chat completion: its text."""
        reply = self._post("/chat/completions", {"model": "bench", "messages": MESSAGES})
        return str(reply["choices"][0]["message"]["content"])

    def stream(self) -> str:
        """One streamed chat completion: the `data:` lines parsed, the deltas joined."""
        payload = {"model": "bench", "messages": MESSAGES, "stream": True}
        parts: list[str] = []
        with self.client.stream("POST", self.base_url + "/chat/completions", json=payload) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    parts.extend(
                        choice["delta"].get("content") or ""
                        for choice in json.loads(line[6:])["choices"]
                    )
        return "".join(parts)

    def embed(self) -> list[list[float]]:
        """One embeddings request: the vectors."""
        reply = self._post("/embeddings", {"model": "bench", "input": payloads.EMBEDDING_INPUTS})
        return [row["embedding"] for row in reply["data"]]

    async def achat(self) -> str:
        """One async chat completion: its text."""
        payload = {"model": "bench", "messages": MESSAGES}
        reply = await self.aclient.post(self.base_url + "/chat/completions", json=payload)
        reply.raise_for_status()
        return str(json.loads(reply.content)["choices"][0]["message"]["content"])

    async def aclose(self) -> None:
        """Close the async client."""
        await self.aclient.aclose()


class Aiohttp(Client):
    """The async floor: an aiohttp session POST and `json.loads`."""

    name, group, modes = "aiohttp + json.loads", "floor", ("achat",)

    async def astart(self) -> None:
        """Open the session (aiohttp wants a running loop)."""
        import aiohttp  # noqa: PLC0415

        self.session = aiohttp.ClientSession(headers={"authorization": f"Bearer {KEY}"})

    async def achat(self) -> str:
        """One async chat completion: its text."""
        payload = {"model": "bench", "messages": MESSAGES}
        async with self.session.post(self.base_url + "/chat/completions", json=payload) as r:
            r.raise_for_status()
            body = await r.read()
        return str(json.loads(body)["choices"][0]["message"]["content"])

    async def aclose(self) -> None:
        """Close the session."""
        await self.session.close()


class OpenAISDK(Client):
    """The official `openai` SDK."""

    name = "openai SDK"

    def __init__(self, base_url: str) -> None:
        import openai  # noqa: PLC0415

        super().__init__(base_url)
        self.client = openai.OpenAI(base_url=base_url, api_key=KEY)
        self.aclient = openai.AsyncOpenAI(base_url=base_url, api_key=KEY)
        self.messages: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": MESSAGES[0]["content"]}
        ]

    def chat(self) -> str:
        """One chat completion: its text."""
        reply = self.client.chat.completions.create(model="bench", messages=self.messages)
        return reply.choices[0].message.content or ""

    def stream(self) -> str:
        """One streamed chat completion: the deltas joined."""
        chunks = self.client.chat.completions.create(
            model="bench",
            messages=self.messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def embed(self) -> list[list[float]]:
        """One embeddings request: the vectors."""
        reply = self.client.embeddings.create(model="bench", input=payloads.EMBEDDING_INPUTS)
        return [row.embedding for row in reply.data]

    async def achat(self) -> str:
        """One async chat completion: its text."""
        reply = await self.aclient.chat.completions.create(model="bench", messages=self.messages)
        return reply.choices[0].message.content or ""

    async def aclose(self) -> None:
        """Close the async client."""
        await self.aclient.close()


class _LangChain(Client):
    """A LangChain chat model and embeddings, called as LangChain documents them."""

    model: BaseChatModel
    embeddings: Embeddings

    def chat(self) -> str:
        """One chat completion: its text."""
        return str(self.model.invoke(MESSAGES).content)

    def stream(self) -> str:
        """One streamed chat completion: the chunks' text joined."""
        return "".join(str(chunk.content) for chunk in self.model.stream(MESSAGES))

    def embed(self) -> list[list[float]]:
        """One embeddings request: the vectors."""
        return self.embeddings.embed_documents(payloads.EMBEDDING_INPUTS)

    async def achat(self) -> str:
        """One async chat completion: its text."""
        return str((await self.model.ainvoke(MESSAGES)).content)


class LangChainOpenAI(_LangChain):
    """`ChatOpenAI(base_url=...)` and `OpenAIEmbeddings`, as LangChain users point them here."""

    name = "ChatOpenAI(base_url)"

    def __init__(self, base_url: str) -> None:
        from langchain_openai import ChatOpenAI, OpenAIEmbeddings  # noqa: PLC0415
        from pydantic import SecretStr  # noqa: PLC0415

        super().__init__(base_url)
        self.model = ChatOpenAI(model="bench", base_url=base_url, api_key=SecretStr(KEY))
        # Without `check_embedding_ctx_length=False` it fetches a tiktoken vocabulary from the
        # internet to split inputs. Its fields are set by alias, which mypy's plugin misses.
        options: dict[str, Any] = {"base_url": base_url, "api_key": SecretStr(KEY)}
        self.embeddings = OpenAIEmbeddings(
            model="bench", check_embedding_ctx_length=False, **options
        )


class _LiteLLM(Client):
    """`litellm.completion` / `litellm.embedding` with a model prefix."""

    prefix = ""

    def __init__(self, base_url: str) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm  # noqa: PLC0415

        super().__init__(base_url)
        self.litellm = litellm
        self.chat_model = self.embed_model = f"{self.prefix}bench"
        self.options: dict[str, Any] = {"api_base": base_url, "api_key": KEY}

    def chat(self) -> str:
        """One chat completion: its text."""
        reply = self.litellm.completion(model=self.chat_model, messages=MESSAGES, **self.options)
        return str(reply.choices[0].message.content)

    def stream(self) -> str:
        """One streamed chat completion: the deltas joined."""
        chunks = self.litellm.completion(
            model=self.chat_model, messages=MESSAGES, stream=True, **self.options
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def embed(self) -> list[list[float]]:
        """One embeddings request: the vectors."""
        reply = self.litellm.embedding(
            model=self.embed_model, input=payloads.EMBEDDING_INPUTS, **self.options
        )
        return [row["embedding"] for row in reply.data]

    async def achat(self) -> str:
        """One async chat completion: its text."""
        reply = await self.litellm.acompletion(
            model=self.chat_model, messages=MESSAGES, **self.options
        )
        return str(reply.choices[0].message.content)


class LiteLLMOpenAI(_LiteLLM):
    """LiteLLM's `openai/` provider with `api_base`."""

    name, prefix = "litellm openai/", "openai/"


class LiteLLMHostedVLLM(_LiteLLM):
    """LiteLLM's `hosted_vllm/` provider, its own answer for self-hosted vLLM."""

    name, prefix = "litellm hosted_vllm/", "hosted_vllm/"


def bench_config(base_url: str, *, state: dict[str, Any] | None = None) -> Any:
    """The selfhosted-llm config of the canned server: a chat model and an embedding model.

    `state` is its `routing.state` (default: this process's own).
    """
    from selfhosted_core import Config  # noqa: PLC0415

    return Config(
        routing={"state": state or {}},
        endpoints=[
            {"url": base_url, "id": "bench", "capabilities": ["chat"], "api_key": KEY},
            {
                "url": base_url,
                "id": "bench-embed",
                "capabilities": ["embedding"],
                "dimension": payloads.EMBEDDING_DIMENSION,
                "api_key": KEY,
            },
        ],
    )


class Core(Client):
    """Ours: `selfhosted_core.Provider`."""

    name, group = "selfhosted_core Provider", "ours"

    def __init__(self, base_url: str) -> None:
        from selfhosted_core import (  # noqa: PLC0415
            ChatRequest,
            EmbeddingRequest,
            Message,
            Provider,
        )

        super().__init__(base_url)
        self.provider = Provider(self.config(base_url))
        question = Message(role="user", content=MESSAGES[0]["content"])
        self.request = ChatRequest(model="bench", messages=[question])
        self.embedding = EmbeddingRequest(model="bench-embed", input=payloads.EMBEDDING_INPUTS)

    def config(self, base_url: str) -> Any:
        """The provider's config."""
        return bench_config(base_url)

    def chat(self) -> str:
        """One chat completion: its text."""
        return self.provider.chat(self.request).content or ""

    def stream(self) -> str:
        """One streamed chat completion: the chunks' text joined."""
        with self.provider.stream(self.request) as chunks:
            return "".join(chunk.content or "" for chunk in chunks)

    def embed(self) -> list[list[float]]:
        """One embeddings request: the vectors."""
        return self.provider.embed(self.embedding).embeddings

    async def achat(self) -> str:
        """One async chat completion: its text."""
        return (await self.provider.achat(self.request)).content or ""

    async def aclose(self) -> None:
        """Close the provider's clients of this loop."""
        await self.provider.aclose()


class CoreTraced(Core):
    """Ours with OpenTelemetry on, so every call makes its span and metrics.

    The SDK's tracer provider (spans batched to an exporter that drops them) and meter
    provider are installed in the worker's process, as an application would.
    """

    name = "selfhosted_core Provider + OTel SDK"

    def __init__(self, base_url: str) -> None:
        from opentelemetry import metrics, trace  # noqa: PLC0415
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Dropped(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        tracing = TracerProvider()
        tracing.add_span_processor(BatchSpanProcessor(Dropped()))
        trace.set_tracer_provider(tracing)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
        super().__init__(base_url)


class CoreShared(Core):
    """Ours with routing state shared through Redis (`routing.state.backend: redis`).

    The worker starts a redis-server of its own on loopback; the provider exchanges its state
    with it (every `sync_interval`, 0.1 s), as each worker of a proxy would. Nothing fails
    here, so this is the price of sharing when all is well: the sync thread, and routing on
    the shared counts.
    """

    name = "selfhosted_core Provider + Redis state"
    modes = ("chat", "achat")

    def config(self, base_url: str) -> Any:
        """The provider's config, its state in a redis-server of this worker's own."""
        from benchmarks import redis_server  # noqa: PLC0415

        url = redis_server.start()
        return bench_config(base_url, state={"backend": "redis", "url": url, "prefix": "bench"})


class LangChainSelfHosted(_LangChain):
    """Ours: `ChatSelfHosted` and `SelfHostedEmbeddings`."""

    name, group = "ChatSelfHosted", "ours"

    def __init__(self, base_url: str) -> None:
        from langchain_selfhosted import ChatSelfHosted, SelfHostedEmbeddings  # noqa: PLC0415

        super().__init__(base_url)
        config = bench_config(base_url)
        self.model = ChatSelfHosted(model="bench", config=config)
        self.embeddings = SelfHostedEmbeddings(model="bench-embed", config=config)


class LiteLLMSelfHosted(_LiteLLM):
    """Ours: `litellm.completion(model="selfhosted/...")` through `litellm_selfhosted`."""

    name, group, prefix = "litellm selfhosted/", "ours", "selfhosted/"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        from litellm_selfhosted import register  # noqa: PLC0415

        register(bench_config(base_url))
        self.embed_model = "selfhosted/bench-embed"
        self.options = {}


CLIENTS: dict[str, type[Client]] = {
    client.name: client
    for client in (
        Httpx2,
        Aiohttp,
        OpenAISDK,
        LangChainOpenAI,
        LiteLLMOpenAI,
        LiteLLMHostedVLLM,
        Core,
        CoreTraced,
        CoreShared,
        LangChainSelfHosted,
        LiteLLMSelfHosted,
    )
}
