"""The endpoint config as LiteLLM's model map, Router model list and proxy config."""

from __future__ import annotations

import json
from typing import Any

import pytest

import litellm_selfhosted
from litellm_selfhosted import SelfHostedLLM, TokenCost, proxy_config, router_model_list
from litellm_selfhosted._models import HANDLER_PATH, model_cost_map, model_info
from selfhosted_core import Config, ModelEndpoint

SECRET = "sk-very-secret-key-4711"

CONFIG = Config(
    endpoints=[
        {
            "url": "http://gpu-1:8080",
            "id": "qwen3",
            "label": "gpu-1",
            "api_key": SECRET,
            "capabilities": ["chat", "function_call", "reasoning"],
            "context_window": 8192,
            "token_modifier": 2.0,
            "headers": {"X-Extra": SECRET},
        },
        {
            "url": "http://gpu-2:8080/v1",
            "id": "qwen3",
            "api_key": SECRET,
            "capabilities": ["chat", "function_call", "reasoning"],
            "token_modifier": 2.0,
        },
        {"url": "http://gpu-3:8080", "id": "tiny", "capabilities": ["chat", "vision"]},
        {
            "url": "http://emb:9000",
            "id": "minilm",
            "api_key": SECRET,
            "capabilities": ["embedding"],
            "dimension": 384,
        },
    ]
)


def endpoint(**fields: Any) -> ModelEndpoint:
    return ModelEndpoint(**{"url": "http://h:1", "id": "m", **fields})


SUPPORTS = (
    "supports_function_calling",
    "supports_tool_choice",
    "supports_parallel_function_calling",
    "supports_response_schema",
    "supports_vision",
    "supports_reasoning",
)


@pytest.mark.parametrize(
    ("capabilities", "flags"),
    [
        (["chat"], set()),
        (
            ["chat", "function_call"],
            {
                "supports_function_calling",
                "supports_tool_choice",
                "supports_parallel_function_calling",
            },
        ),
        (["chat", "structured_output"], {"supports_response_schema"}),
        (["chat", "vision"], {"supports_vision"}),
        (["chat", "reasoning"], {"supports_reasoning"}),
    ],
)
def test_chat_model_info_flags_follow_the_capabilities(
    capabilities: list[str], flags: set[str]
) -> None:
    info = model_info(endpoint(capabilities=capabilities), context_window=None)
    assert (info["mode"], info["litellm_provider"]) == ("chat", "selfhosted")
    assert {name for name in SUPPORTS if info[name] is True} == flags
    assert {name for name in SUPPORTS if info[name] is False} == set(SUPPORTS) - flags


def test_embedding_model_info_has_mode_and_vector_size() -> None:
    info = model_info(endpoint(capabilities=["embedding"], dimension=384), context_window=None)
    assert (info["mode"], info["output_vector_size"]) == ("embedding", 384)
    assert not any(info[name] for name in SUPPORTS)


def test_chat_model_info_has_no_vector_size() -> None:
    assert "output_vector_size" not in model_info(endpoint(), context_window=None)


def test_context_window_only_when_known() -> None:
    assert "max_input_tokens" not in model_info(endpoint(), context_window=None)
    info = model_info(endpoint(), context_window=4096)
    assert info["max_input_tokens"] == 4096
    # `max_tokens` is the output limit in LiteLLM's map; the servers set none.
    assert "max_tokens" not in info


def test_costs_are_zero_unless_given() -> None:
    info = model_info(endpoint(), context_window=None)
    assert (info["input_cost_per_token"], info["output_cost_per_token"]) == (0.0, 0.0)


def test_costs_are_multiplied_by_the_token_modifier() -> None:
    info = model_info(
        endpoint(token_modifier=2.5), context_window=None, cost=TokenCost(input=1e-6, output=4e-6)
    )
    assert info["input_cost_per_token"] == pytest.approx(2.5e-6)
    assert info["output_cost_per_token"] == pytest.approx(1e-5)


def test_model_cost_map_has_one_entry_per_model_keyed_by_provider() -> None:
    cost_map = model_cost_map(
        CONFIG, context_windows={"tiny": 2048}, costs={"tiny": TokenCost(input=1.0)}
    )
    assert list(cost_map) == ["selfhosted/qwen3", "selfhosted/tiny", "selfhosted/minilm"]
    assert cost_map["selfhosted/tiny"]["max_input_tokens"] == 2048
    assert cost_map["selfhosted/tiny"]["input_cost_per_token"] == 1.0
    assert "max_input_tokens" not in cost_map["selfhosted/qwen3"]
    assert cost_map["selfhosted/minilm"]["mode"] == "embedding"


# --- Router model list ----------------------------------------------------------------------------


def test_one_deployment_per_endpoint_replicas_under_one_model_name() -> None:
    deployments = router_model_list(CONFIG)
    assert [d["model_name"] for d in deployments] == ["qwen3", "qwen3", "tiny", "minilm"]
    assert [d["litellm_params"]["model"] for d in deployments] == [
        "selfhosted/qwen3",
        "selfhosted/qwen3",
        "selfhosted/tiny",
        "selfhosted/minilm",
    ]


def test_each_deployment_pins_its_endpoint_api_base() -> None:
    assert [d["litellm_params"]["api_base"] for d in router_model_list(CONFIG)] == [
        "http://gpu-1:8080/v1",
        "http://gpu-2:8080/v1",
        "http://gpu-3:8080/v1",
        "http://emb:9000/v1",
    ]


def test_no_key_is_written_anywhere() -> None:
    deployments = router_model_list(CONFIG)
    assert SECRET not in repr(deployments)
    assert SECRET not in json.dumps(deployments)
    assert all("api_key" not in d["litellm_params"] for d in deployments)
    assert "api_key" not in json.dumps(deployments)


def test_reasoning_effort_is_allowed_only_for_reasoning_endpoints() -> None:
    allowed = [d["litellm_params"].get("allowed_openai_params") for d in router_model_list(CONFIG)]
    assert allowed == [["reasoning_effort"], ["reasoning_effort"], None, None]


def test_model_info_ids_are_unique_and_carry_the_capabilities() -> None:
    infos = [d["model_info"] for d in router_model_list(CONFIG)]
    ids = [info["id"] for info in infos]
    assert len(set(ids)) == len(ids) == 4
    assert ids[0] == "qwen3@http://gpu-1:8080/v1"
    assert [info["mode"] for info in infos] == ["chat", "chat", "chat", "embedding"]
    assert [info["supports_vision"] for info in infos] == [False, False, True, False]


def test_context_windows_come_from_the_endpoint_or_the_given_map() -> None:
    infos = [d["model_info"] for d in router_model_list(CONFIG, context_windows={"qwen3": 4096})]
    # gpu-1 states 8192 itself; its replica gets the reported size; tiny has none.
    assert [info.get("max_input_tokens") for info in infos] == [8192, 4096, None, None]


def test_router_costs_are_per_model_and_multiplied() -> None:
    infos = [
        d["model_info"]
        for d in router_model_list(CONFIG, costs={"qwen3": TokenCost(input=1.0, output=3.0)})
    ]
    assert [(i["input_cost_per_token"], i["output_cost_per_token"]) for i in infos] == [
        (2.0, 6.0),
        (2.0, 6.0),
        (0.0, 0.0),
        (0.0, 0.0),
    ]


# --- proxy config ----------------------------------------------------------------------------------


def test_proxy_config_names_the_module_level_handler() -> None:
    document = proxy_config(CONFIG)
    assert document["litellm_settings"] == {
        "custom_provider_map": [
            {"provider": "selfhosted", "custom_handler": "litellm_selfhosted.handler"}
        ]
    }
    assert document["model_list"] == router_model_list(CONFIG)
    assert "environment_variables" not in document
    assert SECRET not in json.dumps(document)


def test_the_handler_path_resolves_to_a_handler() -> None:
    module, _, name = HANDLER_PATH.rpartition(".")
    assert module == "litellm_selfhosted"
    assert isinstance(getattr(litellm_selfhosted, name), SelfHostedLLM)


def test_proxy_config_with_a_path_sets_selfhosted_config() -> None:
    document = proxy_config(CONFIG, config_path="/etc/selfhosted/endpoints.yaml")
    assert document["environment_variables"] == {
        "SELFHOSTED_CONFIG": "/etc/selfhosted/endpoints.yaml"
    }


def test_proxy_config_passes_windows_and_costs_on() -> None:
    document = proxy_config(
        CONFIG, context_windows={"tiny": 2048}, costs={"tiny": TokenCost(output=1.0)}
    )
    tiny = document["model_list"][2]["model_info"]
    assert (tiny["max_input_tokens"], tiny["output_cost_per_token"]) == (2048, 1.0)


def test_a_model_routed_by_affinity_is_one_deployment_the_core_routes() -> None:
    config = Config(
        endpoints=CONFIG.endpoints,
        routing={"models": {"qwen3": {"strategy": "affinity"}}},
    )
    deployments = router_model_list(config)
    qwen = [d for d in deployments if d["model_name"] == "qwen3"]
    assert len(qwen) == 1
    assert "api_base" not in qwen[0]["litellm_params"]
    assert qwen[0]["model_info"]["id"] == "qwen3"
    # The other models keep one deployment per endpoint.
    assert [d["litellm_params"].get("api_base") for d in deployments[1:]] == [
        "http://gpu-3:8080/v1",
        "http://emb:9000/v1",
    ]
