"""LiteLLM calls under affinity routing on two real replicas: a session names its replica, and a
Router over `router_model_list` leaves the choice to the core."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litellm.router import Router

from litellm_selfhosted import SelfHostedLLM, register, router_model_list
from selfhosted_core import Config, Provider
from selfhosted_core._affinity import named_key
from selfhosted_core.local import LlamaServer
from tests.integration.conftest import affinity_config, home_label
from tests.litellm_driver import LLDriver


@pytest.fixture
def affine(
    affinity_replicas: tuple[LlamaServer, LlamaServer], litellm_state: None
) -> Iterator[tuple[Config, SelfHostedLLM]]:
    config = affinity_config(affinity_replicas)
    with Provider(config) as provider:
        yield config, register(provider=provider)


def endpoint_of(response: Any) -> str:
    return str(response._hidden_params["selfhosted"]["endpoint"])


def sessions_apart(config: Config) -> list[str]:
    """Two session names whose homes differ, so a wrong key cannot pass by luck."""
    names = [f"session-{number}" for number in range(100)]
    first = home_label(config, named_key(names[0]))
    other = next(name for name in names if home_label(config, named_key(name)) != first)
    return [names[0], other]


@pytest.mark.parametrize("naming", ["metadata", "session_id", "affinity"])
async def test_a_calls_session_names_its_replica(
    ll: LLDriver, affine: tuple[Config, SelfHostedLLM], naming: str
) -> None:
    config, _ = affine
    for session in sessions_apart(config):
        ways: dict[str, dict[str, Any]] = {
            "metadata": {"metadata": {"session_id": session}},
            "session_id": {"litellm_session_id": session},
            "affinity": {"affinity": session},
        }
        named = ways[naming]
        served = [
            endpoint_of(
                await ll.complete(
                    model="selfhosted/tiny",
                    messages=[{"role": "user", "content": f"Question {turn}"}],
                    max_tokens=4,
                    **named,
                )
            )
            for turn in range(3)
        ]
        assert served == [home_label(config, named_key(session))] * 3


async def test_a_router_over_an_affinity_model_lets_the_core_pick(
    ll: LLDriver, affine: tuple[Config, SelfHostedLLM]
) -> None:
    config, _ = affine
    deployments = router_model_list(config)
    assert len(deployments) == 1
    router = Router(model_list=deployments)
    for session in sessions_apart(config):
        for turn in range(3):
            response = await ll.on(router).complete(
                model="tiny",
                messages=[{"role": "user", "content": f"Question {turn}"}],
                max_tokens=4,
                metadata={"session_id": session},
            )
            assert endpoint_of(response) == home_label(config, named_key(session))
