"""LiteLLM access to self-hosted inference servers: `model="selfhosted/<id>"`.

Calls, Routers and the LiteLLM proxy reach the endpoints of a selfhosted-llm config through the
core `Provider`, with every server quirk repaired and errors raised as LiteLLM's own classes.
This package is the only place the project imports litellm.

Example:
    >>> import litellm
    >>> from litellm_selfhosted import register, router_model_list
    >>> handler = register("endpoints.yaml")  # doctest: +SKIP
    >>> litellm.completion(model="selfhosted/qwen3", messages=[{"role": "user", "content": "Hi"}])
    ... # doctest: +SKIP
    >>> router = litellm.Router(model_list=router_model_list(handler.provider.config))
    ... # doctest: +SKIP

A LiteLLM proxy names the module-level handler in its `config.yaml`::

    litellm_settings:
      custom_provider_map:
        - {provider: selfhosted, custom_handler: litellm_selfhosted.handler}
"""

from __future__ import annotations

from litellm_selfhosted._errors import PROVIDER
from litellm_selfhosted._handler import SelfHostedLLM, handler
from litellm_selfhosted._models import TokenCost, proxy_config, router_model_list
from litellm_selfhosted._register import register

__all__ = [
    "PROVIDER",
    "SelfHostedLLM",
    "TokenCost",
    "handler",
    "proxy_config",
    "register",
    "router_model_list",
]
