"""`register()`: make `selfhosted/<id>` models known to LiteLLM in this process."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import litellm
from litellm.utils import custom_llm_setup

from litellm_selfhosted import _handler
from litellm_selfhosted._errors import PROVIDER
from litellm_selfhosted._handler import SelfHostedLLM
from litellm_selfhosted._models import TokenCost, model_cost_map
from selfhosted_core import Config, Provider


def register(
    config: Config | str | PathLike[str] | None = None,
    *,
    provider: Provider | None = None,
    costs: Mapping[str, TokenCost] | None = None,
    discover: bool = False,
) -> SelfHostedLLM:
    """Make `litellm.completion(model="selfhosted/<id>", ...)` reach the configured endpoints.

    Puts the handler into `litellm.custom_provider_map` (replacing an earlier `selfhosted`
    entry), runs LiteLLM's custom-provider setup so the first call and `litellm.ahealth_check`
    find it, and registers every model with `litellm.register_model`: chat or embedding mode,
    context size as `max_input_tokens`, tool, schema, vision and reasoning support, and the
    token costs (zero unless given). The config is read now, so a bad one fails here.

    Example:
        >>> import litellm
        >>> from litellm_selfhosted import register
        >>> register("endpoints.yaml")  # doctest: +SKIP
        >>> litellm.completion(model="selfhosted/qwen3", messages=[...])  # doctest: +SKIP

    Args:
        config: A `Config` or a config file; when omitted (with no `provider`), the
            module-level `handler` is registered, configured from the environment.
        provider: A ready `Provider` to serve the calls.
        costs: Token costs by model id.
        discover: Health-check every endpoint first, so the context sizes the servers report
            are registered where the config states none.

    Returns:
        The registered handler.
    """
    handler = (
        _handler.handler
        if config is None and provider is None
        else SelfHostedLLM(config, provider=provider)
    )
    core = handler.provider
    if discover:
        core.health()
    litellm.custom_provider_map = [
        *(entry for entry in litellm.custom_provider_map if entry["provider"] != PROVIDER),
        {"provider": PROVIDER, "custom_handler": handler},
    ]
    custom_llm_setup()  # type: ignore[no-untyped-call]
    windows = {model: core.context_window(model) for model in core.config.model_ids}
    litellm.register_model(model_cost_map(core.config, context_windows=windows, costs=costs))
    return handler
