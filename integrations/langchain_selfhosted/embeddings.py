"""`SelfHostedEmbeddings`: LangChain's embeddings for operator-run embedding servers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.utils import from_env
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_selfhosted._endpoints import EndpointSettings, model_info
from langchain_selfhosted._errors import mapped_errors
from selfhosted_core import (
    Capability,
    ConfigurationError,
    EmbeddingRequest,
)

__all__ = ["SelfHostedEmbeddings"]


class SelfHostedEmbeddings(EndpointSettings, Embeddings):
    """Embed texts with models served by llama-server, vLLM, Ollama, LocalAI, SGLang or TGI.

    Requests go through a `selfhosted_core.Provider`: always as text (servers differ on token
    ids), vectors re-ordered by index and checked against the configured dimension. Documents
    are sent in batches of `batch_size`, spread over the model's replicas: with two replicas,
    two batches are in flight at once.

    Setup:
        Install the package and point it at your servers, with a config file or one URL.

        ```bash
        pip install "selfhosted-llm[langchain]"
        export SELFHOSTED_CONFIG=endpoints.yaml
        # or one server: SELFHOSTED_BASE_URL + SELFHOSTED_MODEL + SELFHOSTED_DIMENSION
        ```

    Key init args — endpoints (first match wins; explicit arguments beat the environment):
        model: str
            The model id, as the config names it; env `SELFHOSTED_MODEL`.
        provider: Provider | None
            A core `Provider` shared with other models (one set of connection pools).
        config: str | Path | Config | None
            A YAML, TOML or JSON config file, or a `Config`; env `SELFHOSTED_CONFIG`.
        base_url: str | None
            One server, with or without `/v1`; env `SELFHOSTED_BASE_URL`.
        api_key: SecretStr | None
            The key for `base_url`; env `SELFHOSTED_API_KEY`. Config endpoints carry their own,
            and each key is only ever sent to its own endpoint.
        dimension: int | None
            The vector size; required with `base_url` (env `SELFHOSTED_DIMENSION`), checked
            against the config otherwise, and filled in from it when not given.
        timeout: float | None
            Seconds to wait for each request (replaces the endpoints' configured timeouts).

    Key init args — embedding params:
        batch_size: int
            Most texts per request (default 64).
        max_retries: int | None
            Sends of a batch after the first, at most, when it fails before the server can
            have worked on it; the core resends, to another replica when one can take it.
        resend_unsafe: bool | None
            Also resend a batch the server may have worked on (5xx, read timeout).
        extra_body: dict | None
            Server-specific payload fields merged into every request (e.g. TEI's
            `{"truncate": True}`).

    Instantiate:
        ```python
        from langchain_selfhosted import SelfHostedEmbeddings

        embeddings = SelfHostedEmbeddings(model="minilm", config="endpoints.yaml")
        # or one server:
        embeddings = SelfHostedEmbeddings(
            model="minilm", base_url="http://127.0.0.1:8081", dimension=384
        )
        ```

    Embed single text:
        ```python
        vector = embeddings.embed_query("What is the capital of France?")
        vector[:3]  # [0.0175, -0.0332, 0.0114]
        ```

    Embed multiple texts:
        ```python
        vectors = embeddings.embed_documents(["Paris is in France.", "Rome is in Italy."])
        len(vectors), len(vectors[0])  # (2, 384)
        ```

    Async:
        ```python
        vector = await embeddings.aembed_query("What is the capital of France?")
        vectors = await embeddings.aembed_documents(["Paris is in France.", "Rome is in Italy."])
        ```
    """

    model_config = ConfigDict(extra="forbid")

    dimension: int | None = Field(
        default_factory=from_env("SELFHOSTED_DIMENSION", default=None),
        validate_default=True,
        gt=0,
    )
    """The vector size: required with `base_url`, checked against (or taken from) the config."""

    batch_size: int = Field(default=64, gt=0)
    """Most texts sent in one request; larger inputs are split, batches run concurrently."""

    extra_body: dict[str, Any] | None = None
    """Fields merged into every request body, for server-specific parameters."""

    _default_capabilities = (Capability.EMBEDDING,)
    _replicas: int = PrivateAttr()

    def _endpoint_extras(self) -> dict[str, Any]:
        # Checked here rather than left to the core, whose message would name `endpoints[0]`,
        # a config the caller never wrote.
        if self.dimension is None:
            raise ConfigurationError(
                "dimension: required with base_url= (the model's vector size, e.g. 384); "
                "or set SELFHOSTED_DIMENSION",
                model=self.model,
            )
        return {"dimension": self.dimension}

    def __init__(self, **data: Any) -> None:
        """Validate, resolve the endpoints, and check `dimension` against what they declare.

        Raises:
            CapabilityError: The endpoints do not declare `model` an embedding model.
            ConfigurationError: `dimension` contradicts the config, or is missing with
                `base_url`.
        """
        super().__init__(**data)
        # Fixed with the config: counted once, not on every call.
        self._replicas = model_info(self._provider, self.model).replicas
        configured = self._provider.embedding_dimension(self.model)
        if self.dimension is None:
            self.dimension = configured
        elif self.dimension != configured:
            raise ConfigurationError(
                f"dimension: {self.dimension} given, but the endpoints of {self.model!r} "
                f"declare {configured}",
                model=self.model,
            )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents, in batches spread over the model's replicas.

        Args:
            texts: The documents; an empty list returns `[]` without a request.

        Returns:
            One vector per document, in the documents' order.

        Example:
            >>> embeddings.embed_documents(["Paris is in France."])  # doctest: +SKIP
            [[0.0175, -0.0332, ...]]
        """
        batches = split_batches(texts, self.batch_size)
        workers = self._workers(len(batches))
        with mapped_errors():
            if workers == 1:
                results = [self._embed_batch(batch) for batch in batches]
            else:
                pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed")
                try:
                    results = list(pool.map(self._embed_batch, batches))
                finally:
                    # One failed batch fails the call: batches not yet sent are dropped; those
                    # in flight (a thread cannot be cancelled) end before the error is raised.
                    pool.shutdown(cancel_futures=True)
        return [vector for result in results for vector in result]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of `embed_documents`: the batches run as tasks, never in threads.

        Args:
            texts: The documents; an empty list returns `[]` without a request.

        Returns:
            One vector per document, in the documents' order.

        Example:
            >>> await embeddings.aembed_documents(["Paris is in France."])  # doctest: +SKIP
            [[0.0175, -0.0332, ...]]
        """
        batches = split_batches(texts, self.batch_size)
        workers = self._workers(len(batches))
        with mapped_errors():
            if workers == 1:
                results = [await self._aembed_batch(batch) for batch in batches]
            else:
                # As many batches in flight as replicas, as in the sync pool; round-robin
                # routing spreads them.
                slots = asyncio.Semaphore(workers)
                tasks = [
                    asyncio.ensure_future(self._aslot_batch(batch, slots)) for batch in batches
                ]
                try:
                    results = await asyncio.gather(*tasks)
                finally:
                    # One failed batch fails the call: batches not yet sent are dropped, those
                    # in flight cancelled, and all of them over before the error is raised
                    # (what a TaskGroup does; Python 3.10 has none).
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
        return [vector for result in results for vector in result]

    def embed_query(self, text: str) -> list[float]:
        """Embed one text.

        Args:
            text: The text.

        Returns:
            Its vector.

        Example:
            >>> embeddings.embed_query("What is the capital of France?")  # doctest: +SKIP
            [0.0175, -0.0332, ...]
        """
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of `embed_query`.

        Args:
            text: The text.

        Returns:
            Its vector.
        """
        return (await self.aembed_documents([text]))[0]

    def _workers(self, batches: int) -> int:
        return worker_count(replicas=self._replicas, batches=batches)

    def _request(self, texts: list[str]) -> EmbeddingRequest:
        return EmbeddingRequest(
            model=self.model,
            input=texts,
            extra_body=self.extra_body,
            timeout=self.timeout,
            max_attempts=self._max_attempts,
            resend_unsafe=self.resend_unsafe,
        )

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        return self._provider.embed(self._request(texts)).embeddings

    async def _aembed_batch(self, texts: list[str]) -> list[list[float]]:
        return (await self._provider.aembed(self._request(texts))).embeddings

    async def _aslot_batch(self, texts: list[str], slots: asyncio.Semaphore) -> list[list[float]]:
        async with slots:
            return await self._aembed_batch(texts)


def split_batches(texts: Sequence[str], size: int) -> list[list[str]]:
    """`texts` in consecutive batches of at most `size`, in order; none for no texts.

    Example:
        >>> split_batches(["a", "b", "c"], 2)
        [['a', 'b'], ['c']]
    """
    return [list(texts[start : start + size]) for start in range(0, len(texts), size)]


def worker_count(*, replicas: int, batches: int) -> int:
    """How many batches to have in flight at once: one per replica, never more than batches.

    One per replica keeps every replica busy (each batch already fills a server's slots)
    without queueing requests in the client's connection pool.

    Example:
        >>> worker_count(replicas=2, batches=5), worker_count(replicas=4, batches=1)
        (2, 1)
    """
    return max(1, min(replicas, batches))
