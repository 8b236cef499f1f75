"""Real llama-servers for the integration tests, started once per session.

Nothing here skips: when llama-server cannot be built or started, the tests fail with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from selfhosted_core import Config, Provider
from selfhosted_core._affinity import Rendezvous
from selfhosted_core.local import (
    LlamaServer,
    chat_model_path,
    embedding_model_path,
    find_llama_server,
)
from tests.driver import Driver
from tests.faults import FaultProxy

API_KEY = "integration-key-not-secret"
SLOTS = 2
CONTEXT = 4096
SECOND_ALIAS = "tiny-alt"
"""Total context; each of the two slots gets half, which the overflow test exceeds."""


@contextmanager
def fresh_chat_replicas(
    binary: Path, *, parallel: int, ctx_size: int
) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    """Two replicas of `tiny` of the test's own, for a test that kills or restarts one."""
    servers = [
        LlamaServer(
            chat_model_path(), alias="tiny", parallel=parallel, ctx_size=ctx_size, binary=binary
        )
        for _ in range(2)
    ]
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def binary() -> Path:
    return find_llama_server()


@pytest.fixture(scope="session")
def chat_server(binary: Path) -> Iterator[LlamaServer]:
    with LlamaServer(
        chat_model_path(),
        alias="tiny",
        ctx_size=CONTEXT,
        parallel=SLOTS,
        api_key=API_KEY,
        binary=binary,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def second_chat_server(binary: Path) -> Iterator[LlamaServer]:
    """The tiny chat model on a second server, under another alias and without a key."""
    with LlamaServer(chat_model_path(), alias=SECOND_ALIAS, binary=binary) as server:
        yield server


@pytest.fixture(scope="session")
def embedding_server(binary: Path) -> Iterator[LlamaServer]:
    with LlamaServer(
        embedding_model_path(), alias="minilm", embeddings=True, binary=binary
    ) as server:
        yield server


@pytest.fixture(scope="session")
def affinity_replicas(binary: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    """Two replicas of `tiny` for routing by affinity: the first with `--metrics`, the second
    without it (its load is read from `/slots`)."""
    servers = [
        LlamaServer(
            chat_model_path(),
            alias="tiny",
            parallel=SLOTS,
            ctx_size=CONTEXT,
            binary=binary,
            extra_args=extra,
        )
        for extra in (["--metrics"], [])
    ]
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def affinity_config(replicas: tuple[LlamaServer, LlamaServer], **routing: object) -> Config:
    """The two affinity replicas as `tiny`, labelled `replica-a` and `replica-b`."""
    return Config(
        endpoints=[
            {
                "url": server.base_url,
                "id": "tiny",
                "label": label,
                "server": "llama.cpp",
                "capabilities": ["chat", "function_call", "structured_output"],
                "max_connections": SLOTS,
            }
            for server, label in zip(replicas, ("replica-a", "replica-b"), strict=True)
        ],
        routing={"strategy": "affinity", **routing},
    )


def home_label(config: Config, key: bytes) -> str:
    """The label of the replica first in `key`'s rendezvous order (what the router computes)."""
    replicas = config.replicas("tiny")
    ring = Rendezvous([e.api_base for e in replicas], [e.weight for e in replicas])
    return replicas[ring.order(key)[0]].display_name


@pytest.fixture(scope="session")
def config(chat_server: LlamaServer, embedding_server: LlamaServer) -> Config:
    return Config(
        endpoints=[
            {
                "url": chat_server.base_url,
                "id": "tiny",
                "label": "local-chat",
                "api_key": API_KEY,
                "server": "llama.cpp",
                "capabilities": ["chat", "function_call", "structured_output"],
            },
            {
                "url": embedding_server.url,
                "id": "minilm",
                "capabilities": ["embedding"],
                "dimension": 384,
            },
        ]
    )


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest, config: Config) -> AsyncIterator[Driver]:
    async with Provider(config) as provider:
        yield Driver(request.param, provider)


@pytest.fixture
def chat_proxy(chat_server: LlamaServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the chat server."""
    with FaultProxy(chat_server.url) as proxy:
        yield proxy


@pytest.fixture
def embedding_proxy(embedding_server: LlamaServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the embedding server."""
    with FaultProxy(embedding_server.url) as proxy:
        yield proxy
