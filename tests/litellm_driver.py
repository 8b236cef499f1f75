"""Run one LiteLLM call (or Router call) through the sync or the async API: the parity harness.

Importing this module imports litellm; the root conftest has already switched off its fetch of
the cost map from the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from litellm.types.utils import EmbeddingResponse, ModelResponse, ModelResponseStream

from litellm_selfhosted import PROVIDER


class LLDriver:
    """Runs `completion` / `embedding` on `litellm` itself or on a `litellm.Router`."""

    def __init__(self, mode: str, target: Any = litellm) -> None:
        self.mode = mode
        self.target = target

    def on(self, target: Any) -> LLDriver:
        """The same mode, calling `target` (a Router) instead of litellm."""
        return LLDriver(self.mode, target)

    # Typed `Any`: litellm types its answers as unions (`Choices | TextChoices`, custom tool
    # calls) that every assertion would otherwise have to narrow; the isinstance checks stay.
    async def complete(self, **kwargs: Any) -> Any:
        if self.mode == "sync":
            response = self.target.completion(**kwargs)
        else:
            response = await self.target.acompletion(**kwargs)
        assert isinstance(response, ModelResponse)
        return response

    async def stream(self, **kwargs: Any) -> list[ModelResponseStream]:
        if self.mode == "sync":
            chunks = list(self.target.completion(stream=True, **kwargs))
        else:
            chunks = [chunk async for chunk in await self.target.acompletion(stream=True, **kwargs)]
        assert all(isinstance(chunk, ModelResponseStream) for chunk in chunks)
        return chunks

    async def embed(self, **kwargs: Any) -> Any:
        if self.mode == "sync":
            response = self.target.embedding(**kwargs)
        else:
            response = await self.target.aembedding(**kwargs)
        assert isinstance(response, EmbeddingResponse)
        return response


def model(name: str) -> str:
    """The LiteLLM model string for a configured id."""
    return f"{PROVIDER}/{name}"


@pytest.fixture(params=["sync", "async"])
def ll(request: pytest.FixtureRequest) -> LLDriver:
    return LLDriver(request.param)


@pytest.fixture
def litellm_state() -> Iterator[None]:
    """Restore LiteLLM's process-wide provider registry after a test that registers."""
    providers = list(litellm.custom_provider_map)
    custom = list(litellm._custom_providers)
    yield
    litellm.custom_provider_map = providers
    litellm._custom_providers = custom
