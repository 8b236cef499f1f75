"""Second servers: a chat model under another id (per-call model overrides) and an
embedding replica (batches spread over two servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhosted_core import Config
from selfhosted_core.local import LlamaServer, embedding_model_path
from tests.integration.conftest import SECOND_ALIAS
from tests.lc_driver import lc  # noqa: F401 - the parity fixture

OVERRIDE_MODEL = SECOND_ALIAS


@pytest.fixture(scope="session")
def langchain_config(config: Config, second_chat_server: LlamaServer) -> Config:
    """The integration config plus `tiny-alt`, served by its own llama-server."""
    alternative = {
        "url": second_chat_server.base_url,
        "id": OVERRIDE_MODEL,
        "server": "llama.cpp",
        "capabilities": ["chat", "function_call", "structured_output"],
    }
    return Config(endpoints=[*config.endpoints, alternative])


@pytest.fixture(scope="session")
def second_embedding_server(binary: Path) -> Iterator[LlamaServer]:
    """Another MiniLM server: with the integration config's, two replicas of `minilm`."""
    with LlamaServer(
        embedding_model_path(), alias="minilm", embeddings=True, binary=binary
    ) as server:
        yield server
