"""A replica SIGKILLed under load, through the LiteLLM proxy that `proxy_config()` writes and
through a `litellm.Router` on `router_model_list()`: no call is lost that the dead replica had
not started.

Two real llama-server replicas of `tiny`; chat calls and streams (one in three) at concurrency
16, with the first replica killed once a third of them have ended. A deployment keeps naming
the dead replica, whose `api_base` is only a preference: the core serves its calls on the
sibling. The only calls allowed to fail are streams the dead replica was generating, and each
of those must have delivered a beginning of the answer first. Run with `-s` for the figures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from litellm.router import Router

from litellm_selfhosted import proxy_config, register, router_model_list
from selfhosted_core import Config, Provider
from selfhosted_core.local import PLAIN_ANSWER_TEXT, LlamaServer
from tests.integration.conftest import fresh_chat_replicas
from tests.integration.litellm_selfhosted.proxy_server import LiteLLMProxy

pytestmark = pytest.mark.timeout(300)

CALLS = 240
CONCURRENCY = 16
KILL_AFTER = CALLS // 3
STREAM_EVERY = 3
HELLO: list[Any] = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def replicas(binary: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    """Two fresh replicas: the first is killed by the test."""
    with fresh_chat_replicas(binary, parallel=8, ctx_size=4096) as servers:
        yield servers


def replica_config(replicas: tuple[LlamaServer, LlamaServer]) -> Config:
    victim, steady = replicas
    return Config(
        endpoints=[
            {"url": server.url, "id": "tiny", "label": label, "server": "llama.cpp",
             "capabilities": ["chat"], "max_connections": 8}
            for server, label in ((victim, "victim"), (steady, "steady"))
        ]
    )  # fmt: skip


@dataclass
class Run:
    """What the calls came to."""

    ended: int = 0
    killed_at: float | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)


Call = Callable[[bool, list[str]], Awaitable[tuple[str, str | None]]]
"""One call, streamed or not: the text and the finish reason; a stream also appends each piece
of text to the list as it arrives, so what a failed one had delivered is known."""


async def load(call: Call, victim: LlamaServer) -> Run:
    """`CALLS` calls at `CONCURRENCY`, the victim killed after `KILL_AFTER` have ended."""
    run = Run()
    queue = iter(range(CALLS))

    async def one(index: int) -> None:
        stream = index % STREAM_EVERY == 0
        kind = "stream" if stream else "chat"
        delivered: list[str] = []
        try:
            text, finish = await asyncio.wait_for(call(stream, delivered), 120)
        except Exception as exc:  # every failure is classified below
            text = "".join(delivered)
            # A stream the victim was generating may fail, once it had begun: a chunk reached
            # the caller (the first may carry only the role), all text a beginning of the answer.
            started = stream and bool(delivered) and PLAIN_ANSWER_TEXT.startswith(text)
            run.outcomes[f"{kind} failed after output" if started else f"{kind} lost"] += 1
            if not started:
                run.lost.append(f"{kind} {index}: {type(exc).__name__}: {exc}"[:900])
            return
        if (text, finish) == (PLAIN_ANSWER_TEXT, "stop"):
            run.outcomes[f"{kind} answered"] += 1
        else:
            run.outcomes[f"{kind} wrong"] += 1
            run.lost.append(f"{kind} {index}: {text!r} finish={finish}")

    async def worker() -> None:
        for index in queue:
            await one(index)
            run.ended += 1
            if run.ended == KILL_AFTER and victim.pid is not None:
                os.kill(victim.pid, signal.SIGKILL)
                run.killed_at = time.monotonic()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return run


def openai_calls(create: Callable[..., Awaitable[Any]]) -> Call:
    """Calls through an OpenAI-shaped `create`: the openai SDK's, or a Router's `acompletion`."""

    async def call(stream: bool, delivered: list[str]) -> tuple[str, str | None]:
        if not stream:
            answer = await create(model="tiny", messages=HELLO)
            return answer.choices[0].message.content or "", answer.choices[0].finish_reason
        finish = None
        async for chunk in await create(model="tiny", messages=HELLO, stream=True):
            for choice in chunk.choices:
                delivered.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
        return "".join(delivered), finish

    return call


def report(name: str, run: Run, seconds: float) -> None:
    outcomes = dict(sorted(run.outcomes.items()))
    print(f"\n{name}: {CALLS} calls at concurrency {CONCURRENCY} in {seconds:.1f} s, {outcomes}")
    assert run.killed_at is not None
    assert run.lost == [], "\n".join(run.lost)
    assert run.outcomes["chat answered"] + run.outcomes["stream answered"] >= CALLS - CONCURRENCY


def endpoints_file(config: Config, path: Path) -> Path:
    endpoints = [
        endpoint.model_dump(mode="json", exclude_none=True) for endpoint in config.endpoints
    ]
    path.write_text(yaml.safe_dump({"endpoints": endpoints}))
    return path


@pytest.fixture
async def proxy_client(
    replicas: tuple[LlamaServer, LlamaServer], tmp_path: Path
) -> AsyncIterator[openai.AsyncOpenAI]:
    config = replica_config(replicas)
    endpoints = endpoints_file(config, tmp_path / "endpoints.yaml")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(proxy_config(config, config_path=endpoints)))
    with LiteLLMProxy(config_path) as proxy:
        sdk = openai.AsyncOpenAI(
            base_url=f"{proxy.base_url}/v1", api_key=proxy.master_key, max_retries=0
        )
        async with sdk:
            yield sdk


async def test_the_proxy_loses_no_call_the_killed_replica_had_not_started(
    replicas: tuple[LlamaServer, LlamaServer], proxy_client: openai.AsyncOpenAI
) -> None:
    began = time.perf_counter()
    run = await load(openai_calls(proxy_client.chat.completions.create), replicas[0])
    report("LiteLLM proxy", run, time.perf_counter() - began)


async def test_a_router_loses_no_call_the_killed_replica_had_not_started(
    replicas: tuple[LlamaServer, LlamaServer], litellm_state: None
) -> None:
    config = replica_config(replicas)
    async with Provider(config) as provider:
        register(provider=provider)
        router = Router(model_list=router_model_list(config))

        began = time.perf_counter()
        run = await load(openai_calls(router.acompletion), replicas[0])
        stats = {entry.endpoint: entry for entry in provider.stats()}
    report("litellm.Router", run, time.perf_counter() - began)
    # The core, not the Router, kept calls away from the dead replica.
    assert stats["victim"].errors >= 1
    assert stats["steady"].requests > stats["victim"].requests
