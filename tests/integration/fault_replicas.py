"""What the fault-injection tests of the adapters share: two replicas, A behind a fault proxy."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import API_KEY

ROUTING: dict[str, Any] = {"max_attempts": 3, "cooldown": 0.2, "backoff": 0.05}
A, B = "replica-a", "replica-b"


def chat_endpoint(url: str, label: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "id": "tiny",
        "label": label,
        "api_key": API_KEY,
        "server": "llama.cpp",
        "capabilities": ["chat"],
        **extra,
    }


def embedding_endpoint(url: str, label: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "id": "minilm",
        "label": label,
        "capabilities": ["embedding"],
        "dimension": 384,
        **extra,
    }
