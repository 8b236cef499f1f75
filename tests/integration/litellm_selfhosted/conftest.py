"""Real servers for the LiteLLM adapter: two replicas of `tiny`, MiniLM, and `tiny-big`.

`tiny-big` runs the same model with one slot of the whole context, so a prompt that overflows
`tiny` (half the context per slot) fits it: the target of `context_window_fallbacks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from litellm_selfhosted import SelfHostedLLM, register
from selfhosted_core import Config, Provider
from selfhosted_core.local import LlamaServer, chat_model_path
from tests.integration.conftest import CONTEXT, SECOND_ALIAS
from tests.litellm_driver import litellm_state, ll  # noqa: F401 - fixtures

CHAT_CAPABILITIES = ["chat", "function_call", "structured_output"]
BIG = "tiny-big"


@pytest.fixture(scope="session")
def big_chat_server(binary: Path) -> Iterator[LlamaServer]:
    with LlamaServer(
        chat_model_path(), alias=BIG, ctx_size=CONTEXT, parallel=1, binary=binary
    ) as server:
        yield server


@pytest.fixture(scope="session")
def litellm_config(
    config: Config, second_chat_server: LlamaServer, big_chat_server: LlamaServer
) -> Config:
    """The integration config (`tiny` with a key, `minilm`), a second `tiny`, and `tiny-big`."""
    tiny, minilm = config.endpoints
    replica = {
        "url": second_chat_server.base_url,
        "id": "tiny",
        "label": "local-chat-2",
        "served_model": SECOND_ALIAS,
        "server": "llama.cpp",
        "capabilities": CHAT_CAPABILITIES,
    }
    big = {
        "url": big_chat_server.base_url,
        "id": BIG,
        "server": "llama.cpp",
        "capabilities": CHAT_CAPABILITIES,
        "context_window": CONTEXT,
    }
    return Config(endpoints=[tiny, replica, minilm, big])


@pytest.fixture
def registered(litellm_config: Config, litellm_state: None) -> Iterator[SelfHostedLLM]:  # noqa: F811
    """The handler registered with LiteLLM, context sizes discovered from the servers."""
    provider = Provider(litellm_config)
    yield register(provider=provider, discover=True)
    provider.close()
