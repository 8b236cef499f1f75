"""`SelfHostedEmbeddings` against real llama-servers serving all-MiniLM-L6-v2: LangChain's
standard integration suite, then batching and two replicas sharing the work.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx2
import pytest
from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_selfhosted.embeddings import SelfHostedEmbeddings
from selfhosted_core import Config, Provider
from selfhosted_core.local import LlamaServer
from selfhosted_core.local._process import ServerProcess
from tests.lc_driver import LCDriver

pytestmark = pytest.mark.servers("llama.cpp", "vllm")

DOCUMENTS = [
    "A cat sleeps on the warm windowsill.",
    "The central bank raised interest rates again.",
    "Rain is expected over the mountains tonight.",
    "She tuned the violin before the concert.",
    "The compiler rejected the unused import.",
    "Fresh bread smells wonderful in the morning.",
    "The hikers reached the summit at noon.",
    "Solar panels cover the warehouse roof.",
    "The goalkeeper saved a penalty in extra time.",
]


class TestSelfHostedEmbeddingsStandard(EmbeddingsIntegrationTests):
    endpoints: ClassVar[Config]

    @pytest.fixture(autouse=True)
    def _endpoints(self, config: Config) -> None:
        type(self).endpoints = config

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return SelfHostedEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "minilm", "config": self.endpoints}


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> LCDriver:
    return LCDriver(request.param)


@pytest.fixture
async def replicated(
    config: Config, embedding_server: ServerProcess, second_embedding_server: LlamaServer
) -> AsyncIterator[Provider]:
    """A provider with `minilm` on the suite's server and a second llama-server."""
    second = {
        "url": second_embedding_server.url,
        "id": "minilm",
        "label": "minilm-b",
        "capabilities": ["embedding"],
        "dimension": 384,
    }
    async with Provider(Config(endpoints=[*config.endpoints, second])) as provider:
        yield provider


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def last_task(server: LlamaServer) -> int:
    """The newest task any of the server's slots has taken (each text embedded is one task),
    as the server itself reports it on `/slots`; -1 before its first."""
    reply = httpx2.get(f"{server.url}/slots")
    assert reply.status_code == 200, f"llama-server /slots: {reply.status_code} {reply.text}"
    return max((slot.get("id_task", -1) for slot in reply.json()), default=-1)


async def test_batches_across_replicas_match_one_request(
    mode: LCDriver, replicated: Provider
) -> None:
    whole = await mode.documents(
        SelfHostedEmbeddings(model="minilm", provider=replicated), DOCUMENTS
    )
    batched = await mode.documents(
        SelfHostedEmbeddings(model="minilm", provider=replicated, batch_size=2), DOCUMENTS
    )
    assert len(batched) == len(whole) == len(DOCUMENTS)
    for position, vector in enumerate(batched):
        similarities = [cosine(vector, reference) for reference in whole]
        assert similarities[position] > 0.9999
        # The texts differ enough that a vector out of place would be caught.
        assert max(similarities[:position] + similarities[position + 1 :]) < 0.9


# Counted from llama-server's `/slots` task ids, which vLLM has no equivalent of.
@pytest.mark.servers("llama.cpp")
async def test_both_replicas_receive_batches(
    mode: LCDriver,
    embedding_server: LlamaServer,
    second_embedding_server: LlamaServer,
    replicated: Provider,
) -> None:
    servers = [embedding_server, second_embedding_server]
    before = [last_task(server) for server in servers]
    embeddings = SelfHostedEmbeddings(model="minilm", provider=replicated, batch_size=2)
    assert len(await mode.documents(embeddings, DOCUMENTS)) == len(DOCUMENTS)
    after = [last_task(server) for server in servers]
    assert [now > then for then, now in zip(before, after, strict=True)] == [True, True]
