"""Real servers for the integration tests, started once per session.

The suites that say so run against each real server (`pytest.mark.servers("llama.cpp",
"vllm")`): their `chat_server` and `embedding_server` are then a llama-server and a vLLM in
turn, with the same tiny models, and every test id names the server. Everything else runs
against llama-server alone.

Nothing here skips: when a server cannot be built, installed or started, the tests fail with
the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from selfhosted_core import Config, Provider, ServerKind
from selfhosted_core._affinity import Rendezvous
from selfhosted_core.local import (
    LlamaServer,
    VllmServer,
    chat_model_path,
    embedding_model_dir,
    embedding_model_path,
    find_llama_server,
    hf_chat_model_path,
)
from selfhosted_core.local._process import ServerProcess
from tests.driver import Driver
from tests.faults import FaultProxy

API_KEY = "integration-key-not-secret"
OVERFLOW_MESSAGES = {
    ServerKind.LLAMA_CPP: "exceeds the available context size",
    ServerKind.VLLM: "This model's maximum context length is 2048 tokens",
}
"""What each server says when a prompt overflows `tiny`'s 2,048 tokens per request."""
MINILM_WINDOWS = {ServerKind.LLAMA_CPP: 512, ServerKind.VLLM: 256}
"""MiniLM's context window as each server reports it: llama-server the GGUF's training context
(its 512 positions), vLLM sentence-transformers' `max_seq_length` (256, what it was trained
with)."""
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test once per server its suite names (`servers` mark), else on llama-server."""
    if "server_kind" in metafunc.fixturenames:
        mark = metafunc.definition.get_closest_marker("servers")
        kinds = mark.args if mark else (ServerKind.LLAMA_CPP.value,)
        metafunc.parametrize("server_kind", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    """The server the suite's `chat_server` and `embedding_server` run."""
    return ServerKind(request.param)


@pytest.fixture(scope="session")
def binary() -> Path:
    return find_llama_server()


@pytest.fixture(scope="session")
def chat_server(server_kind: ServerKind, binary: Path) -> Iterator[ServerProcess]:
    """`tiny` behind a key: two requests at once, each with half of CONTEXT."""
    server: ServerProcess
    if server_kind is ServerKind.VLLM:
        server = VllmServer(
            hf_chat_model_path(),
            alias="tiny",
            max_model_len=CONTEXT // SLOTS,
            max_num_seqs=SLOTS,
            api_key=API_KEY,
        )
    else:
        server = LlamaServer(
            chat_model_path(),
            alias="tiny",
            ctx_size=CONTEXT,
            parallel=SLOTS,
            api_key=API_KEY,
            binary=binary,
        )
    with server:
        yield server


@pytest.fixture(scope="session")
def second_chat_server(binary: Path) -> Iterator[LlamaServer]:
    """The tiny chat model on a second server, under another alias and without a key."""
    with LlamaServer(chat_model_path(), alias=SECOND_ALIAS, binary=binary) as server:
        yield server


@pytest.fixture(scope="session")
def embedding_server(server_kind: ServerKind, binary: Path) -> Iterator[ServerProcess]:
    server: ServerProcess
    if server_kind is ServerKind.VLLM:
        server = VllmServer(embedding_model_dir(), alias="minilm", embeddings=True)
    else:
        server = LlamaServer(embedding_model_path(), alias="minilm", embeddings=True, binary=binary)
    with server:
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
def config(
    server_kind: ServerKind, chat_server: ServerProcess, embedding_server: ServerProcess
) -> Config:
    """`tiny` (labelled `local-chat`) and `minilm` on the suite's server; the embedding
    server's kind is left for the provider to detect."""
    return Config(
        endpoints=[
            {
                "url": chat_server.base_url,
                "id": "tiny",
                "label": "local-chat",
                "api_key": API_KEY,
                "server": server_kind.value,
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
def chat_proxy(chat_server: ServerProcess) -> Iterator[FaultProxy]:
    """A fault proxy in front of the chat server."""
    with FaultProxy(chat_server.url) as proxy:
        yield proxy


@pytest.fixture
def embedding_proxy(embedding_server: ServerProcess) -> Iterator[FaultProxy]:
    """A fault proxy in front of the embedding server."""
    with FaultProxy(embedding_server.url) as proxy:
        yield proxy
