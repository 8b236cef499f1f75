"""Embeddings through the core against a real llama-server serving all-MiniLM-L6-v2."""

from __future__ import annotations

import math

import pytest

from selfhosted_core import EmbeddingRequest
from tests.driver import Driver

pytestmark = pytest.mark.servers("llama.cpp", "vllm")

TEXTS = [
    "A cat sleeps on the warm windowsill.",
    "A kitten is napping in the sun by the window.",
    "The central bank raised interest rates again.",
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_dimension_norm_and_similarity(driver: Driver) -> None:
    answer = await driver.embed(EmbeddingRequest(model="minilm", input=TEXTS))
    cat, kitten, bank = answer.embeddings
    assert [len(vector) for vector in answer.embeddings] == [384] * 3
    assert all(math.isclose(cosine(v, v), 1.0, abs_tol=1e-3) for v in answer.embeddings)
    assert cosine(cat, kitten) > 0.5
    assert cosine(cat, bank) < 0.2
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0


async def test_vectors_follow_input_order(driver: Driver) -> None:
    forward = await driver.embed(EmbeddingRequest(model="minilm", input=TEXTS))
    backward = await driver.embed(EmbeddingRequest(model="minilm", input=TEXTS[::-1]))
    for a, b in zip(forward.embeddings, backward.embeddings[::-1], strict=True):
        assert cosine(a, b) > 0.9999
