"""A second tiny chat server, so per-call model overrides reach a different model id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhosted_core import Config
from selfhosted_core.local import LlamaServer, chat_model_path

OVERRIDE_MODEL = "tiny-alt"


@pytest.fixture(scope="session")
def second_chat_server(binary: Path) -> Iterator[LlamaServer]:
    with LlamaServer(chat_model_path(), alias=OVERRIDE_MODEL, binary=binary) as server:
        yield server


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
