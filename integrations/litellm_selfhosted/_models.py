"""Pure: the endpoint config as LiteLLM's model map, Router model list and proxy config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litellm_selfhosted._errors import PROVIDER
from selfhosted_core import Capability, Config, ModelEndpoint, RoutingStrategy

HANDLER_PATH = "litellm_selfhosted.handler"
"""Where the LiteLLM proxy finds the module-level handler (`custom_handler` in its config)."""


@dataclass(frozen=True, slots=True)
class TokenCost:
    """What one token costs, in the currency LiteLLM reports (USD by convention).

    The endpoint's `token_modifier` multiplies both, as it multiplies billed tokens.
    """

    input: float = 0.0
    output: float = 0.0


def model_info(
    endpoint: ModelEndpoint, *, context_window: int | None, cost: TokenCost | None = None
) -> dict[str, Any]:
    """LiteLLM's model-map entry for the model an endpoint serves.

    It drives `litellm.get_model_info`, the Router's pre-call context checks
    (`max_input_tokens`), `supports_function_calling` and friends, and cost tracking (zero
    unless a cost is given).
    """
    cost = cost or TokenCost()
    capabilities = endpoint.capabilities
    info: dict[str, Any] = {
        "litellm_provider": PROVIDER,
        "mode": "embedding" if Capability.EMBEDDING in capabilities else "chat",
        "input_cost_per_token": cost.input * endpoint.token_modifier,
        "output_cost_per_token": cost.output * endpoint.token_modifier,
        # A prompt read from the server's cache is billed as any prompt token: stating it
        # keeps LiteLLM from warning that cache costs default to zero.
        "cache_read_input_token_cost": cost.input * endpoint.token_modifier,
        "cache_creation_input_token_cost": cost.input * endpoint.token_modifier,
        "supports_function_calling": Capability.FUNCTION_CALL in capabilities,
        "supports_tool_choice": Capability.FUNCTION_CALL in capabilities,
        "supports_parallel_function_calling": Capability.FUNCTION_CALL in capabilities,
        "supports_response_schema": Capability.STRUCTURED_OUTPUT in capabilities,
        "supports_vision": Capability.VISION in capabilities,
        "supports_reasoning": Capability.REASONING in capabilities,
    }
    if context_window is not None:
        info["max_input_tokens"] = context_window
    if endpoint.dimension is not None:
        info["output_vector_size"] = endpoint.dimension
    return info


def model_cost_map(
    config: Config,
    *,
    context_windows: Mapping[str, int | None],
    costs: Mapping[str, TokenCost] | None = None,
) -> dict[str, dict[str, Any]]:
    """`litellm.register_model`'s argument: one entry per model, keyed `selfhosted/<id>`."""
    return {
        f"{PROVIDER}/{model}": model_info(
            config.replicas(model)[0],
            context_window=context_windows.get(model),
            cost=(costs or {}).get(model),
        )
        for model in config.model_ids
    }


def router_model_list(
    config: Config,
    *,
    context_windows: Mapping[str, int | None] | None = None,
    costs: Mapping[str, TokenCost] | None = None,
) -> list[dict[str, Any]]:
    """The `model_list` of a LiteLLM Router (or proxy) for these endpoints.

    One deployment per endpoint; replicas share their `model_name`, so the Router balances
    them and keeps its per-deployment accounting (usage, latency, cooldowns). Each deployment's
    `api_base` names the endpoint its calls prefer; when that endpoint cannot take a call
    (ejected by the core's breaker, refusing connections, loading) the core serves it on a
    sibling, so a replica that dies loses no call it had not started. The core makes every
    resend, and its errors tell the Router not to retry on top. Keys stay in the endpoint
    config: none is written here.
    A model routed by `affinity` (`RoutingPolicy.strategy`) gets one deployment, without an
    `api_base`: the core picks the replica whose prompt cache holds the call's prefix, which
    a Router balancing over replicas would undo.
    Endpoints declaring `reasoning` list `reasoning_effort` in `allowed_openai_params`, which
    LiteLLM otherwise rejects for custom providers; embedding endpoints drop the
    `encoding_format` the openai SDK always sends (vectors come back as floats). `dimensions`
    stays refused by LiteLLM: servers return the configured dimension only.

    Example:
        >>> import litellm
        >>> from litellm_selfhosted import register, router_model_list
        >>> register(config)  # doctest: +SKIP
        >>> router = litellm.Router(model_list=router_model_list(config))  # doctest: +SKIP

    Args:
        config: The endpoints.
        context_windows: Context sizes by model id, where the config states none (for
            example `Provider.context_window` after a health check).
        costs: Token costs by model id; zero otherwise.
    """
    windows = context_windows or {}
    deployments = []
    pooled: set[str] = set()
    for endpoint in config.endpoints:
        params: dict[str, Any] = {"model": f"{PROVIDER}/{endpoint.id}"}
        deployment_id = f"{endpoint.id}@{endpoint.api_base}"
        if config.routing.for_model(endpoint.id).strategy is RoutingStrategy.AFFINITY:
            if endpoint.id in pooled:
                continue
            pooled.add(endpoint.id)
            deployment_id = endpoint.id
        else:
            params["api_base"] = endpoint.api_base
        if Capability.REASONING in endpoint.capabilities:
            params["allowed_openai_params"] = ["reasoning_effort"]
        if Capability.EMBEDDING in endpoint.capabilities:
            # The openai SDK always sends `encoding_format`, which LiteLLM refuses for custom
            # providers (`allowed_openai_params` is not consulted for embeddings). Dropped, the
            # vectors come back as floats, which the SDK accepts whatever it asked for.
            params["additional_drop_params"] = ["encoding_format"]
        info = model_info(
            endpoint,
            context_window=endpoint.context_window or windows.get(endpoint.id),
            cost=(costs or {}).get(endpoint.id),
        )
        deployments.append(
            {
                "model_name": endpoint.id,
                "litellm_params": params,
                "model_info": {"id": deployment_id, **info},
            }
        )
    return deployments


def proxy_config(
    config: Config,
    *,
    config_path: str | os.PathLike[str] | None = None,
    context_windows: Mapping[str, int | None] | None = None,
    costs: Mapping[str, TokenCost] | None = None,
) -> dict[str, Any]:
    """A LiteLLM proxy `config.yaml` (as a dict) serving these endpoints through the handler.

    With `config_path`, the proxy's `environment_variables` point `SELFHOSTED_CONFIG` at it,
    which the module-level `handler` reads on its first call.

    Example:
        >>> import yaml
        >>> from litellm_selfhosted import proxy_config
        >>> yaml.safe_dump(proxy_config(config, config_path="endpoints.yaml"))  # doctest: +SKIP
    """
    document: dict[str, Any] = {
        "model_list": router_model_list(config, context_windows=context_windows, costs=costs),
        "litellm_settings": {
            "custom_provider_map": [{"provider": PROVIDER, "custom_handler": HANDLER_PATH}]
        },
    }
    if config_path is not None:
        document["environment_variables"] = {"SELFHOSTED_CONFIG": os.fspath(config_path)}
    return document
