"""The arms: three ways of spreading the same requests over the same two replicas.

- `affinity`: the library's `Provider` with `routing.strategy: affinity`;
- `least_in_flight`: the same `Provider` with the default strategy (the baseline);
- `litellm_shuffle`: LiteLLM's own `Router(routing_strategy="simple-shuffle")` over the two
  replicas through its `openai/` provider, with LiteLLM's default retries (a kept-alive
  connection that llama-server closed after a streamed reply is then resent, as the library
  resends it).

Both library arms send exactly the same calls: `Provider.astream` with the request's session
as `affinity=` (the library's public way to name a conversation), which `least_in_flight`
ignores. Every arm streams with `max_tokens=1` and times the first content delta.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.servers.workload import Request

__all__ = ["ARMS", "MODEL", "Arm", "Send", "Timing"]

MODEL = "bench"
TIMEOUT = 300.0


@dataclass(frozen=True)
class Timing:
    """One request's times, in seconds from just before the client was called, and where.

    `replica` is the label of the replica that served it (`replica-0`, `replica-1`), as the
    client reported it; empty when it did not say.
    """

    ttft: float
    total: float
    replica: str = ""


Send = Callable[[Request], Awaitable[Timing]]


@dataclass(frozen=True)
class Arm:
    """A named way to send requests: `open(replica base URLs)` yields a `send` coroutine."""

    name: str
    open: Callable[[Sequence[str]], AbstractAsyncContextManager[Send]]


def _library(strategy: str) -> Callable[[Sequence[str]], AbstractAsyncContextManager[Send]]:
    @asynccontextmanager
    async def open_(urls: Sequence[str]) -> AsyncIterator[Send]:
        from selfhosted_core import ChatRequest, Config, Message, Provider  # noqa: PLC0415

        config = Config(
            endpoints=[
                {
                    "url": url,
                    "id": MODEL,
                    "label": f"replica-{index}",
                    "server": "llama.cpp",
                    "capabilities": ["chat"],
                    # At or below llama-server's --parallel (see the README).
                    "max_connections": 2,
                    "timeout": TIMEOUT,
                }
                for index, url in enumerate(urls)
            ],
            routing={"strategy": strategy},
        )
        async with Provider(config) as provider:

            async def send(request: Request) -> Timing:
                chat = ChatRequest(
                    model=MODEL,
                    messages=[
                        Message(role=role, content=content)  # type: ignore[arg-type]
                        for role, content in request.messages
                    ],
                    max_tokens=1,
                    affinity=request.session,
                )
                start = time.perf_counter()
                first: float | None = None
                replica = ""
                async for chunk in provider.astream(chat):
                    if first is None and chunk.content:
                        first = time.perf_counter() - start
                    replica = replica or chunk.endpoint
                total = time.perf_counter() - start
                return Timing(total if first is None else first, total, replica)

            yield send

    return open_


@asynccontextmanager
async def _litellm_shuffle(urls: Sequence[str]) -> AsyncIterator[Send]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.router import Router  # noqa: PLC0415

    router = Router(
        model_list=[
            {
                "model_name": MODEL,
                "litellm_params": {"model": f"openai/{MODEL}", "api_base": url, "api_key": "x"},
                "model_info": {"id": f"replica-{index}"},
            }
            for index, url in enumerate(urls)
        ],
        routing_strategy="simple-shuffle",
        timeout=TIMEOUT,
    )

    async def send(request: Request) -> Timing:
        messages: list[Any] = [
            {"role": role, "content": content} for role, content in request.messages
        ]
        start = time.perf_counter()
        first: float | None = None
        stream = await router.acompletion(model=MODEL, messages=messages, max_tokens=1, stream=True)
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        # The Router names the deployment it chose by its `model_info.id`.
        hidden = getattr(stream, "_hidden_params", None) or {}
        return Timing(total if first is None else first, total, str(hidden.get("model_id") or ""))

    yield send


ARMS: tuple[Arm, ...] = (
    Arm("affinity", _library("affinity")),
    Arm("least_in_flight", _library("least_in_flight")),
    Arm("litellm_shuffle", _litellm_shuffle),
)
