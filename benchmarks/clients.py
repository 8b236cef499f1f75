"""The clients under test, each doing one request the way its documentation shows.

Every client answers with what a user wants from the reply (the text, or the vectors), and
the worker checks that answer against the canned one before timing it, so a client that
skipped the work could not look fast. A client offers the modes it has: `chat`, `stream`,
`embed` (sync) and `achat` (async, run at concurrency 64).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from benchmarks import payloads

MESSAGES = [{"role": "user", "content": "Say something about foxes."}]
KEY = "bench-key"
Answer = str | list[list[float]]


class Client:
    """A client's one-request functions; modes it lacks are None."""

    name: str = ""
    group: str = "peer"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    chat: Callable[[], str] | None = None
    stream: Callable[[], str] | None = None
    embed: Callable[[], list[list[float]]] | None = None

    async def astart(self) -> None:
        """Create what must be created inside the event loop."""

    async def achat(self) -> str:
        """One async chat request."""
        raise NotImplementedError

    has_async: bool = False


class Httpx2(Client):
    """The floor: a raw httpx2 POST and `json.loads`, nothing more."""

    name, group, has_async = "httpx2 + json.loads", "floor", True

    def __init__(self, base_url: str) -> None:
        import httpx2  # noqa: PLC0415

        super().__init__(base_url)
        self.client = httpx2.Client(headers={"authorization": f"Bearer {KEY}"})
        self.aclient: Any = None
        self.chat, self.stream, self.embed = self._chat, self._stream, self._embed

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        reply = self.client.post(self.base_url + path, json=payload)
        reply.raise_for_status()
        return json.loads(reply.content)

    def _chat(self) -> str:
        reply = self._post("/chat/completions", {"model": "bench", "messages": MESSAGES})
        return str(reply["choices"][0]["message"]["content"])

    def _stream(self) -> str:
        payload = {"model": "bench", "messages": MESSAGES, "stream": True}
        parts = []
        with self.client.stream("POST", self.base_url + "/chat/completions", json=payload) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:])["choices"]:
                        parts.append(choice["delta"].get("content") or "")
        return "".join(parts)

    def _embed(self) -> list[list[float]]:
        reply = self._post("/embeddings", {"model": "bench", "input": payloads.EMBEDDING_INPUTS})
        return [row["embedding"] for row in reply["data"]]

    async def astart(self) -> None:
        import httpx2  # noqa: PLC0415

        self.aclient = httpx2.AsyncClient(headers={"authorization": f"Bearer {KEY}"})

    async def achat(self) -> str:
        payload = {"model": "bench", "messages": MESSAGES}
        reply = await self.aclient.post(self.base_url + "/chat/completions", json=payload)
        reply.raise_for_status()
        return str(json.loads(reply.content)["choices"][0]["message"]["content"])


class Aiohttp(Client):
    """The async floor: an aiohttp session POST and `json.loads`."""

    name, group, has_async = "aiohttp + json.loads", "floor", True

    async def astart(self) -> None:
        import aiohttp  # noqa: PLC0415

        self.session = aiohttp.ClientSession(headers={"authorization": f"Bearer {KEY}"})

    async def achat(self) -> str:
        payload = {"model": "bench", "messages": MESSAGES}
        async with self.session.post(self.base_url + "/chat/completions", json=payload) as r:
            r.raise_for_status()
            body = await r.read()
        return str(json.loads(body)["choices"][0]["message"]["content"])


class OpenAISDK(Client):
    """The official `openai` SDK."""

    name, has_async = "openai SDK", True

    def __init__(self, base_url: str) -> None:
        import openai  # noqa: PLC0415

        super().__init__(base_url)
        self.client = openai.OpenAI(base_url=base_url, api_key=KEY)
        self.aclient = openai.AsyncOpenAI(base_url=base_url, api_key=KEY)
        self.chat, self.stream, self.embed = self._chat, self._stream, self._embed

    def _chat(self) -> str:
        reply = self.client.chat.completions.create(model="bench", messages=MESSAGES)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""

    def _stream(self) -> str:
        chunks = self.client.chat.completions.create(
            model="bench",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def _embed(self) -> list[list[float]]:
        reply = self.client.embeddings.create(model="bench", input=payloads.EMBEDDING_INPUTS)
        return [row.embedding for row in reply.data]

    async def achat(self) -> str:
        reply = await self.aclient.chat.completions.create(model="bench", messages=MESSAGES)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""


class LangChainOpenAI(Client):
    """`ChatOpenAI(base_url=...)` and `OpenAIEmbeddings`, as LangChain users point them here."""

    name, has_async = "ChatOpenAI(base_url)", True

    def __init__(self, base_url: str) -> None:
        from langchain_openai import ChatOpenAI, OpenAIEmbeddings  # noqa: PLC0415

        super().__init__(base_url)
        self.model = ChatOpenAI(model="bench", base_url=base_url, api_key=KEY)  # type: ignore[arg-type]
        # Without this it fetches a tiktoken vocabulary from the internet to split inputs.
        self.embeddings = OpenAIEmbeddings(
            model="bench",
            base_url=base_url,
            api_key=KEY,
            check_embedding_ctx_length=False,  # type: ignore[arg-type]
        )
        self.chat, self.stream, self.embed = self._chat, self._stream, self._embed

    def _chat(self) -> str:
        return str(self.model.invoke(MESSAGES).content)

    def _stream(self) -> str:
        return "".join(str(chunk.content) for chunk in self.model.stream(MESSAGES))

    def _embed(self) -> list[list[float]]:
        return self.embeddings.embed_documents(payloads.EMBEDDING_INPUTS)

    async def achat(self) -> str:
        return str((await self.model.ainvoke(MESSAGES)).content)


class _LiteLLM(Client):
    """`litellm.completion` / `litellm.embedding` with a model prefix."""

    prefix = ""
    has_async = True

    def __init__(self, base_url: str) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm  # noqa: PLC0415

        super().__init__(base_url)
        self.litellm = litellm
        self.options: dict[str, Any] = {"api_base": base_url, "api_key": KEY}
        self.chat, self.stream, self.embed = self._chat, self._stream, self._embed

    def _chat(self) -> str:
        reply = self.litellm.completion(
            model=f"{self.prefix}bench", messages=MESSAGES, **self.options
        )
        return str(reply.choices[0].message.content)

    def _stream(self) -> str:
        chunks = self.litellm.completion(
            model=f"{self.prefix}bench", messages=MESSAGES, stream=True, **self.options
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def _embed(self) -> list[list[float]]:
        reply = self.litellm.embedding(
            model=f"{self.prefix}bench", input=payloads.EMBEDDING_INPUTS, **self.options
        )
        return [row["embedding"] for row in reply.data]

    async def achat(self) -> str:
        reply = await self.litellm.acompletion(
            model=f"{self.prefix}bench", messages=MESSAGES, **self.options
        )
        return str(reply.choices[0].message.content)


class LiteLLMOpenAI(_LiteLLM):
    """LiteLLM's `openai/` provider with `api_base`."""

    name, prefix = "litellm openai/", "openai/"


class LiteLLMHostedVLLM(_LiteLLM):
    """LiteLLM's `hosted_vllm/` provider, its own answer for self-hosted vLLM."""

    name, prefix = "litellm hosted_vllm/", "hosted_vllm/"


def bench_config(base_url: str) -> Any:
    """The selfhosted-llm config of the canned server: a chat model and an embedding model."""
    from selfhosted_core import Config  # noqa: PLC0415

    return Config(
        endpoints=[
            {"url": base_url, "id": "bench", "capabilities": ["chat"], "api_key": KEY},
            {
                "url": base_url,
                "id": "bench-embed",
                "capabilities": ["embedding"],
                "dimension": payloads.EMBEDDING_DIMENSION,
                "api_key": KEY,
            },
        ]
    )


class Core(Client):
    """Ours: `selfhosted_core.Provider`."""

    name, group, has_async = "selfhosted_core Provider", "ours", True

    def __init__(self, base_url: str) -> None:
        from selfhosted_core import (  # noqa: PLC0415
            ChatRequest,
            EmbeddingRequest,
            Message,
            Provider,
        )

        super().__init__(base_url)
        self.provider = Provider(bench_config(base_url))
        messages = [Message(role=m["role"], content=m["content"]) for m in MESSAGES]
        self.request = ChatRequest(model="bench", messages=messages)
        self.embedding = EmbeddingRequest(model="bench-embed", input=payloads.EMBEDDING_INPUTS)
        self.chat, self.stream, self.embed = self._chat, self._stream, self._embed

    def _chat(self) -> str:
        return self.provider.chat(self.request).content

    def _stream(self) -> str:
        with self.provider.stream(self.request) as chunks:
            return "".join(chunk.content or "" for chunk in chunks)

    def _embed(self) -> list[list[float]]:
        return self.provider.embed(self.embedding).embeddings

    async def achat(self) -> str:
        return (await self.provider.achat(self.request)).content


class LangChainSelfHosted(Client):
    """Ours: `ChatSelfHosted` and `SelfHostedEmbeddings`."""

    name, group, has_async = "ChatSelfHosted", "ours", True

    def __init__(self, base_url: str) -> None:
        from langchain_selfhosted import ChatSelfHosted, SelfHostedEmbeddings  # noqa: PLC0415

        super().__init__(base_url)
        config = bench_config(base_url)
        self.model = ChatSelfHosted(model="bench", config=config)
        self.embeddings = SelfHostedEmbeddings(model="bench-embed", config=config)
        self.chat, self.stream, self.embed = self._chat, self._stream, self._embed

    def _chat(self) -> str:
        return str(self.model.invoke(MESSAGES).content)

    def _stream(self) -> str:
        return "".join(str(chunk.content) for chunk in self.model.stream(MESSAGES))

    def _embed(self) -> list[list[float]]:
        return self.embeddings.embed_documents(payloads.EMBEDDING_INPUTS)

    async def achat(self) -> str:
        return str((await self.model.ainvoke(MESSAGES)).content)


class LiteLLMSelfHosted(_LiteLLM):
    """Ours: `litellm.completion(model="selfhosted/...")` through `litellm_selfhosted`."""

    name, group, prefix = "litellm selfhosted/", "ours", "selfhosted/"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        from litellm_selfhosted import register  # noqa: PLC0415

        register(bench_config(base_url))
        self.options = {}

    def _embed(self) -> list[list[float]]:
        reply = self.litellm.embedding(
            model="selfhosted/bench-embed", input=payloads.EMBEDDING_INPUTS
        )
        return [row["embedding"] for row in reply.data]


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
        LangChainSelfHosted,
        LiteLLMSelfHosted,
    )
}
