"""Two real LiteLLM proxies (two processes, no shared state) over two real llama-servers under
affinity routing: each session reaches the same replica whichever proxy it goes through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2
import openai
import pytest
import yaml

from litellm_selfhosted import proxy_config
from selfhosted_core import Config
from selfhosted_core._affinity import named_key
from selfhosted_core._load import from_metrics
from selfhosted_core.local import LlamaServer, chat_model_path
from tests.integration.conftest import CONTEXT, SLOTS, affinity_config, home_label
from tests.integration.litellm_selfhosted.proxy_server import LiteLLMProxy

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def metered_replicas(binary: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    """Two replicas that both count their prompt tokens in `/metrics`."""
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                LlamaServer(
                    chat_model_path(),
                    alias="tiny",
                    parallel=SLOTS,
                    ctx_size=CONTEXT,
                    binary=binary,
                    extra_args=["--metrics"],
                )
            )
            for _ in range(2)
        ]
        yield servers[0], servers[1]


@pytest.fixture(scope="module")
def proxies(
    metered_replicas: tuple[LlamaServer, LlamaServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Config, list[LiteLLMProxy]]]:
    config = affinity_config(metered_replicas)
    folder = tmp_path_factory.mktemp("affinity-proxies")
    endpoints = folder / "endpoints.yaml"
    endpoints.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    running = []
    with ExitStack() as stack:
        for number in range(2):
            path = folder / f"proxy-{number}.yaml"
            path.write_text(yaml.safe_dump(proxy_config(config, config_path=endpoints)))
            running.append(stack.enter_context(LiteLLMProxy(path)))
        yield config, running


def prompt_tokens(server: LlamaServer) -> float:
    """Prompt tokens the server has taken in, prefilled or from its cache."""
    text = httpx2.get(f"{server.url}/metrics", timeout=10).text
    assert from_metrics(text) is not None
    totals = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("llamacpp:prompt_tokens_total", "llamacpp:prompt_tokens_cached_total"):
            totals[name] = float(value)
    return sum(totals.values())


@pytest.mark.parametrize("naming", ["metadata", "litellm_session_id"])
def test_a_session_reaches_one_replica_through_either_proxy(
    proxies: tuple[Config, list[LiteLLMProxy]],
    metered_replicas: tuple[LlamaServer, LlamaServer],
    naming: str,
) -> None:
    config, running = proxies
    labels = ("replica-a", "replica-b")
    clients = [
        openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=proxy.master_key)
        for proxy in running
    ]
    names = [f"{naming}-{number}" for number in range(100)]
    first_home = home_label(config, named_key(names[0]))
    sessions = [names[0], next(n for n in names if home_label(config, named_key(n)) != first_home)]
    try:
        for session in sessions:
            before = [prompt_tokens(server) for server in metered_replicas]
            body = (
                {"metadata": {"session_id": session}}
                if naming == "metadata"
                else {"litellm_session_id": session}
            )
            for turn in range(4):
                clients[turn % 2].chat.completions.create(
                    model="tiny",
                    messages=[{"role": "user", "content": f"Turn {turn} of {session}"}],
                    max_tokens=2,
                    extra_body=body,
                )
            grew = [
                prompt_tokens(server) - start
                for server, start in zip(metered_replicas, before, strict=True)
            ]
            home = labels.index(home_label(config, named_key(session)))
            assert grew[home] > 0
            assert grew[1 - home] == 0, f"{session}: both replicas took prompts: {grew}"
    finally:
        for client in clients:
            client.close()
