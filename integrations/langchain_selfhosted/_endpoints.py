"""Where a LangChain model's endpoints come from: the fields both classes share.

`ChatSelfHosted` and `SelfHostedEmbeddings` accept the same four sources, first match wins:

1. `provider=`: an existing core `Provider`, shared with other models (one connection pool set);
2. `config=`: a config file path or a `Config`;
3. `base_url=` (with `api_key=`): one endpoint serving `model`;
4. the environment: `SELFHOSTED_CONFIG`, else `SELFHOSTED_BASE_URL` (+ `SELFHOSTED_API_KEY`).

Arguments given explicitly beat the environment, so `base_url=` wins over a `SELFHOSTED_CONFIG`
that happens to be set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from langchain_core.utils import from_env, secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from selfhosted_core import Capability, Config, ConfigurationError, ModelInfo, Provider
from selfhosted_core.errors import UnknownModelError


class EndpointSettings(BaseModel):
    """The endpoint fields of the LangChain classes, and the `Provider` they resolve to."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model: str = Field(default_factory=from_env("SELFHOSTED_MODEL", default=""))
    """The model id, as the config names it (or as `base_url`'s server serves it)."""

    config: str | Path | Config | None = Field(
        default_factory=from_env("SELFHOSTED_CONFIG", default=None)
    )
    """A config file (YAML, TOML or JSON) or a `Config`; env `SELFHOSTED_CONFIG`."""

    base_url: str | None = Field(default_factory=from_env("SELFHOSTED_BASE_URL", default=None))
    """One server's URL, with or without `/v1`; env `SELFHOSTED_BASE_URL`."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("SELFHOSTED_API_KEY", default=None)
    )
    """The key for `base_url` (config endpoints carry their own); env `SELFHOSTED_API_KEY`."""

    capabilities: list[Capability] | None = None
    """What the `base_url` model can do; config endpoints declare their own."""

    timeout: float | None = Field(default=None, gt=0)
    """Seconds to wait for each request, replacing the endpoints' configured timeouts."""

    max_retries: int | None = Field(default=None, ge=0)
    """Sends after the first, at most, of one call; None keeps the config's budget.

    The core sends a call again only when the server cannot have worked on it (refused, reset
    before answering, 429, 502, 503), to a sibling replica when one can take it: a call makes
    at most `max_retries + 1` sends (`routing.max_attempts`, 3, when None), plus one immediate
    resend when a kept-alive connection turns out closed. LangChain adds no loop of its own.
    """

    resend_unsafe: bool | None = None
    """Also resend what the server may have worked on (a 500 or 504, a read timeout); None
    keeps the config's `routing.resend_unsafe` (off). Each such resend may generate, and bill,
    the answer twice; a stream that has yielded output is never resent."""

    provider: Provider | None = Field(default=None, exclude=True)
    """A core `Provider` to share between models; overrides every other source."""

    _provider: Provider = PrivateAttr()
    _default_capabilities: ClassVar[tuple[Capability, ...]] = (Capability.CHAT,)
    """What a `base_url` endpoint declares when `capabilities` is not given."""

    def _endpoint_extras(self) -> dict[str, Any]:
        """Further `ModelEndpoint` fields for a `base_url` endpoint."""
        return {}

    @property
    def _max_attempts(self) -> int | None:
        """The request's attempt budget: `max_retries` as sends, the first included."""
        return None if self.max_retries is None else self.max_retries + 1

    def __init__(self, **data: Any) -> None:
        """Validate the fields, then resolve the provider and check that it serves `model`.

        Resolution happens after pydantic's validation so that its errors (`ConfigurationError`,
        `UnknownModelError`) reach the caller as themselves, not wrapped in a ValidationError.
        """
        super().__init__(**data)
        if not self.model:
            raise ConfigurationError("model: required (or set SELFHOSTED_MODEL)")
        self._provider = self.provider or self._new_provider()
        model_info(self._provider, self.model)

    def _new_provider(self) -> Provider:
        explicit = self.model_fields_set
        if {"config", "base_url"} <= explicit and self.config is not None:
            raise ConfigurationError("pass config= or base_url=, not both", model=self.model)
        if self.config is not None and "base_url" not in explicit:
            config = self.config if isinstance(self.config, Config) else Config.load(self.config)
            return Provider(config)
        if self.base_url is None:
            raise ConfigurationError(
                "no endpoints: pass provider=, config= or base_url=, or set SELFHOSTED_CONFIG "
                "or SELFHOSTED_BASE_URL",
                model=self.model,
            )
        endpoint: dict[str, Any] = {
            "url": self.base_url,
            "id": self.model,
            "api_key": self.api_key,
            "capabilities": self.capabilities or self._default_capabilities,
            **self._endpoint_extras(),
        }
        return Provider(Config(endpoints=[endpoint]))


def model_info(provider: Provider, model: str) -> ModelInfo:
    """The provider's entry for `model`; `UnknownModelError` naming the known ids otherwise."""
    models = provider.available_models()
    for info in models:
        if info.id == model:
            return info
    raise UnknownModelError(model, known=[info.id for info in models])
