"""A LiteLLM Router over `router_model_list`: spread, cooldown of a dead replica, fallbacks."""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

import litellm
import pytest
from litellm.router import Router

from litellm_selfhosted import SelfHostedLLM, router_model_list
from selfhosted_core import Config
from selfhosted_core.local import PLAIN_ANSWER_TEXT
from tests.integration.litellm_selfhosted.conftest import BIG, CHAT_CAPABILITIES
from tests.litellm_driver import LLDriver

HELLO = [{"role": "user", "content": "Hello"}]


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def only(config: Config, *models: str, extra: list[dict[str, Any]] | None = None) -> Config:
    endpoints = [endpoint for endpoint in config.endpoints if endpoint.id in models]
    return Config(endpoints=[*endpoints, *(extra or [])])


@pytest.fixture
def replicas(litellm_config: Config) -> Config:
    return only(litellm_config, "tiny")


async def test_router_spreads_load_and_each_healthy_deployment_is_served_by_its_own_endpoint(
    ll: LLDriver, replicas: Config, registered: SelfHostedLLM
) -> None:
    router = Router(model_list=router_model_list(replicas))
    deployment_to_endpoint = {
        f"tiny@{endpoint.api_base}": endpoint.display_name for endpoint in replicas.endpoints
    }
    answered: Counter[str] = Counter()
    for _ in range(20):
        response = await ll.on(router).complete(model="tiny", messages=HELLO)
        endpoint = response._hidden_params["selfhosted"]["endpoint"]
        assert deployment_to_endpoint[response._hidden_params["model_id"]] == endpoint
        answered[endpoint] += 1
    assert set(answered) == set(deployment_to_endpoint.values())


@pytest.mark.parametrize("kind", ["complete", "stream"])
async def test_calls_routed_to_a_dead_deployment_are_served_and_the_core_ejects_it(
    ll: LLDriver, litellm_config: Config, litellm_state: None, kind: str
) -> None:
    dead_url = closed_port_url()
    dead = {"url": dead_url, "id": "tiny", "label": "dead", "capabilities": CHAT_CAPABILITIES}
    config = only(litellm_config, "tiny", extra=[dead])
    handler = SelfHostedLLM(config)
    litellm.custom_provider_map = [{"provider": "selfhosted", "custom_handler": handler}]
    # The Router's own retries and cooldowns stay as a user would set them: they never fire.
    router = Router(
        model_list=router_model_list(config),
        num_retries=3,
        retry_after=0,
        allowed_fails=0,
        cooldown_time=300,
    )
    ids = [deployment["model_info"]["id"] for deployment in router_model_list(config)]
    calls = 0
    # Shuffle routing sends the dead deployment calls sooner or later; every one must succeed.
    while handler.provider.stats()[-1].circuit.value != "open" and calls < 40:
        calls += 1
        if kind == "complete":
            response = await ll.on(router).complete(model="tiny", messages=HELLO)
            assert response._hidden_params["selfhosted"]["endpoint"] != "dead"
            assert response.choices[0].message.content == PLAIN_ANSWER_TEXT
        else:
            chunks = await ll.on(router).stream(model="tiny", messages=HELLO)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
            assert text == PLAIN_ANSWER_TEXT
    dead_stats = handler.provider.stats()[-1]
    assert (dead_stats.endpoint, dead_stats.circuit.value) == ("dead", "open")
    assert dead_stats.errors == dead_stats.requests >= 3  # refused, each time, until ejected
    assert router.health().cooldowns.get_active_cooldowns(ids, None) == []


async def test_context_overflow_falls_back_to_the_larger_model(
    ll: LLDriver, litellm_config: Config, registered: SelfHostedLLM
) -> None:
    first_tiny = litellm_config.replicas("tiny")[0]
    config = Config(endpoints=[first_tiny, *litellm_config.replicas(BIG)])
    router = Router(
        model_list=router_model_list(config), context_window_fallbacks=[{"tiny": [BIG]}]
    )
    prompt = "word " * 600
    assert registered.provider.count_tokens("tiny", text=prompt) > 2048
    response = await ll.on(router).complete(
        model="tiny", messages=[{"role": "user", "content": prompt}]
    )
    assert (
        response._hidden_params["selfhosted"]["endpoint"]
        == litellm_config.replicas(BIG)[0].display_name
    )
    assert response.choices[0].message.content
