"""Endpoint configuration: which servers serve which model ids, with what capabilities.

Several endpoints with the same `id` are replicas of one model; the provider spreads requests
over them. Everything is validated once, at construction, and every problem is reported at once
with its path:

```
>>> Config(endpoints=[{"url": "http://gpu-1:8080", "id": "minilm", "capabilities": ["embedding"]}])
Traceback (most recent call last):
...
selfhosted_core.errors.ConfigurationError: endpoints[0].dimension: required for an embedding model
```
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from selfhosted_core._config_files import expand_env, read_config_file
from selfhosted_core._validation import HEADER_NAME, Problems, Validated, check_header_value
from selfhosted_core.errors import ConfigurationError
from selfhosted_core.profiles import ServerKind

__all__ = [
    "Capability",
    "Config",
    "LoadSignals",
    "ModelEndpoint",
    "ModelRouting",
    "RoutingPolicy",
    "RoutingState",
    "RoutingStrategy",
    "StateBackend",
]

DEFAULT_TIMEOUT = 600.0
"""Seconds; generous because a local model may take minutes on a long prompt."""

DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024
"""Room for 2,048 embeddings of 3,072 floats as JSON; a reply past it is refused, not buffered."""


def _shown(path: Path) -> str:
    """A path as an error quotes it: in full when short, else its start and its length."""
    text = str(path)
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"


class Capability(str, Enum):
    """What a model can do; requests needing a capability the model lacks fail before any I/O."""

    CHAT = "chat"
    EMBEDDING = "embedding"
    FUNCTION_CALL = "function_call"
    STRUCTURED_OUTPUT = "structured_output"
    VISION = "vision"
    REASONING = "reasoning"


class ModelEndpoint(Validated):
    """One inference server URL and the model it serves.

    Attributes:
        url: Server base URL, with or without the trailing `/v1`.
        api_key: Bearer key sent to this endpoint only; never shown in reprs or errors.
        id: The model id users ask for; endpoints sharing it are replicas.
        label: A human name for this endpoint, used in errors and reports.
        capabilities: What the model can do (default: chat only).
        dimension: Output size of an embedding model; required exactly when it embeds.
        context_window: The context size in tokens this endpoint runs with, when the operator
            wants to state it; otherwise `Provider.context_window` uses what `health()` found.
            Replicas may differ; the provider reports the smallest.
        token_modifier: Billing multiplier applied to token counts; 0 or unset means 1.0.
        served_model: The model name sent upstream (defaults to `id`).
        server: The server software, when known; otherwise it is detected by `health()`.
        timeout: Seconds a whole request may take, reading a streamed answer and any resends
            included (a request's own `timeout` replaces it).
        connect_timeout: Seconds to open a connection; a server that is up accepts at once.
        first_byte_timeout: Seconds until the response starts; unset, only `timeout` bounds
            it. A non-streamed answer starts when it is complete, so allow for generation.
        idle_timeout: The longest silence while a response body is read, e.g. between two
            streamed tokens; unset, only `timeout` bounds it.
        weight: The replica's relative capacity (default 1). Under `least_in_flight`, the
            higher weight is chosen among replicas with equally many requests in flight, equal
            weights taking turns; under `affinity`, its share of the keys and of the load
            bound.
        max_connections: The most connections open to this endpoint at once; more requests
            wait for one (within their timeout). llama-server serves each connection, idle
            kept-alive ones too, on one of max(`--parallel` + 2, cores - 1) HTTP threads, and
            queues connections beyond them until a kept-alive one idles out after 5 s: keep
            this at or below its `--parallel`.
        max_response_bytes: The largest response body (or streamed event) accepted; anything
            bigger is a `ResponseError`, never buffered whole.
        headers: Extra HTTP headers for this endpoint; values are secrets (they often carry
            credentials), hidden from reprs and serialization like the key.
        tls_verify: Verify an https server's certificate (the default). Turn it off only for
            a server you reach over a network you trust.
        ca_bundle: A PEM file of the certificate authorities to trust for this endpoint
            instead of the system's, e.g. for a server with an internal CA.

    Example:
        >>> ModelEndpoint(url="http://127.0.0.1:8080", id="qwen3", capabilities=["chat"]).api_base
        'http://127.0.0.1:8080/v1'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    url: str
    api_key: SecretStr | None = None
    id: str
    label: str | None = None
    capabilities: frozenset[Capability] = frozenset({Capability.CHAT})
    dimension: int | None = None
    context_window: int | None = None
    token_modifier: float = 1.0
    served_model: str | None = None
    server: ServerKind | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = 10.0
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    weight: float = 1.0
    max_connections: int | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    headers: dict[str, SecretStr] = Field(default_factory=dict, repr=False)
    tls_verify: bool = True
    ca_bundle: Path | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL with a host, got {value!r}")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise ValueError(f"has an invalid port: {value!r}") from None
        if parts.username or parts.password:
            raise ValueError("must not embed credentials; use api_key or headers")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.strip().rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            path = value.expanduser()
            found = path.is_file()
        except RuntimeError as exc:
            # `~name/...` where no user `name` exists on this machine.
            raise ValueError(f"names the home of an unknown user: {_shown(value)}") from exc
        except OSError as exc:
            # A name the file system cannot even look up, e.g. longer than it allows.
            raise ValueError(f"cannot be looked up ({exc.strerror}): {_shown(value)}") from exc
        if not found:
            raise ValueError(f"no such file: {_shown(value)}")
        return path

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _check_api_key(cls, value: Any) -> Any:
        # A key read from a file often ends in a newline; an HTTP header cannot carry one.
        if isinstance(value, str):
            value = value.strip()
            check_header_value(value)
        return value or None

    @field_validator("headers", mode="before")
    @classmethod
    def _check_headers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        checked: dict[Any, Any] = {}
        for name, raw in value.items():
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            # As with api_key: HTTP drops surrounding whitespace, and h11 refuses it with an
            # error quoting the value.
            text = raw.strip() if isinstance(raw, str) else raw
            if isinstance(text, str):
                check_header_value(text, name)
            checked[name] = text
        return checked

    @field_validator("capabilities", mode="before")
    @classmethod
    def _check_capabilities(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValueError("must be a list of capabilities")
        known = {capability.value for capability in Capability}
        unknown = [item for item in value if isinstance(item, str) and item not in known]
        if unknown:
            raise ValueError(
                f"unknown capability {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        return value

    @field_serializer("capabilities")
    def _sorted_capabilities(self, capabilities: frozenset[Capability]) -> list[Capability]:
        # A set has no order; a dumped config (YAML, a notebook cell) should read the same each run.
        return sorted(capabilities, key=lambda capability: capability.value)

    @field_validator("token_modifier")
    @classmethod
    def _check_token_modifier(cls, value: float) -> float:
        if value < 0 or not math.isfinite(value):
            raise ValueError("must be a finite number >= 0")
        return value or 1.0

    @field_validator("timeout", "connect_timeout", "first_byte_timeout", "idle_timeout")
    @classmethod
    def _check_timeout(cls, value: float | None) -> float | None:
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError("must be a finite number of seconds > 0")
        return value

    @field_validator("weight")
    @classmethod
    def _check_weight(cls, value: float) -> float:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError("must be a finite number > 0")
        return value

    @field_validator("max_connections")
    @classmethod
    def _check_max_connections(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("max_response_bytes")
    @classmethod
    def _check_max_response_bytes(cls, value: int) -> int:
        if value < 1024:
            raise ValueError("must be at least 1024 bytes")
        return value

    @field_validator(
        "dimension", "context_window", "max_connections", "max_response_bytes", mode="before"
    )
    @classmethod
    def _check_integer_type(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return value

    @field_validator("context_window")
    @classmethod
    def _check_context_window(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("must be > 0")
        return value

    @model_validator(mode="after")
    def _check_dimension(self) -> ModelEndpoint:
        embeds = Capability.EMBEDDING in self.capabilities
        if embeds and (self.dimension is None or self.dimension <= 0):
            message = "required for an embedding model" if self.dimension is None else "must be > 0"
            raise Problems([(("dimension",), message)])
        if not embeds and self.dimension is not None:
            raise Problems([(("dimension",), "only allowed with the 'embedding' capability")])
        return self

    @model_validator(mode="after")
    def _check_tls(self) -> ModelEndpoint:
        if self.ca_bundle is not None and not self.tls_verify:
            raise Problems([(("ca_bundle",), "has no effect with tls_verify: false")])
        return self

    @property
    def api_base(self) -> str:
        """The OpenAI-compatible API root, ending in `/v1`."""
        return self.url if self.url.endswith("/v1") else f"{self.url}/v1"

    @property
    def server_root(self) -> str:
        """The server root without `/v1`, where `/health` lives."""
        return self.url.removesuffix("/v1")

    @property
    def upstream_model(self) -> str:
        """The model name sent to the server."""
        return self.served_model or self.id

    @property
    def names(self) -> frozenset[str]:
        """What a request may call this endpoint to pin it: label, URL with or without `/v1`."""
        return frozenset(
            name.rstrip("/")
            for name in (self.label, self.url, self.api_base, self.server_root)
            if name
        )

    @property
    def display_name(self) -> str:
        """The label, or `id@host:port` when no label is set; safe to show anywhere."""
        return self.label or f"{self.id}@{urlsplit(self.url).netloc}"


class RoutingStrategy(str, Enum):
    """How a replica is chosen for a request (see `RoutingPolicy.strategy`)."""

    LEAST_IN_FLIGHT = "least_in_flight"
    AFFINITY = "affinity"


class LoadSignals(str, Enum):
    """Whether the provider reads each server's own load (see `RoutingPolicy.load_signals`)."""

    OFF = "off"
    AUTO = "auto"


class ModelRouting(Validated):
    """One model's choices that replace the policy's (`RoutingPolicy.models`); unset: the policy's.

    Example:
        >>> Config(endpoints=[{"url": "http://gpu-1:8080", "id": "qwen3"}],
        ...        routing={"models": {"qwen3": {"strategy": "affinity"}}}
        ...        ).routing.for_model("qwen3").strategy.value
        'affinity'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: RoutingStrategy | None = None
    affinity_prefix_chars: int | None = None
    load_factor: float | None = None
    load_signals: LoadSignals | None = None

    @field_validator("affinity_prefix_chars", mode="before")
    @classmethod
    def _check_prefix(cls, value: Any) -> Any:
        return _check_prefix_chars(value)

    @field_validator("load_factor")
    @classmethod
    def _check_factor(cls, value: float | None) -> float | None:
        return None if value is None else _check_load_factor(value)


_MIN_LOAD_INTERVAL = 0.05
"""Twenty reads a second per server and process at most: a smaller interval only adds load."""


def _check_prefix_chars(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, int) and value < 1):
        raise ValueError("must be an integer >= 1")
    return value


def _check_load_factor(value: float) -> float:
    if not (value >= 1 and math.isfinite(value)):
        raise ValueError("must be a finite number >= 1")
    return value


class StateBackend(str, Enum):
    """Where routing state lives (see `RoutingState.backend`)."""

    LOCAL = "local"
    REDIS = "redis"


_REDIS_SCHEMES = ("redis", "rediss", "unix")


class RoutingState(Validated):
    """Where circuit breakers, rests, in-flight counts and load readings live.

    Attributes:
        backend: `local` (the default): in this process's memory, as every provider always
            kept them. `redis`: shared through a Redis (or Valkey) server by every process
            with this setting and `prefix`, e.g. the workers of one LiteLLM proxy or the pods
            of one app: a replica one process ejects is ejected for all, exactly one process
            probes it when its cooldown is over, rests (429, `Retry-After`, loading) reach
            every process, and each process balances on everyone's requests in flight. Needs
            the `redis` client package (`pip install 'selfhosted-llm[redis]'`).
        url: The server, `redis://[user:password@]host:port/db` (`rediss://` for TLS,
            `unix:///path.sock`); a secret, since it may carry a password: never shown in
            reprs, logs, errors or dumps.
        prefix: The start of every key written, so several configs share one server apart.
        sync_interval: Seconds between two exchanges of this process's state with Redis; an
            ejection, a restore or a rest is sent at once, without waiting for it. Requests
            never wait for Redis: they read what the last exchange brought.
        timeout: Seconds a connection to Redis, or a command, may take.
        fail_closed: While Redis does not answer, refuse requests (an
            `EndpointConnectionError`) instead of routing on this process's own state (the
            default, logged once). Either way the state is exchanged again when it answers.

    Example:
        >>> RoutingState(backend="redis", url="redis://:pw@127.0.0.1:6379/0")
        RoutingState(backend=<StateBackend.REDIS: 'redis'>, url=SecretStr('**********'), \
prefix='selfhosted', sync_interval=0.1, timeout=0.5, fail_closed=False)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: StateBackend = StateBackend.LOCAL
    url: SecretStr | None = None
    prefix: str = "selfhosted"
    sync_interval: float = 0.1
    timeout: float = 0.5
    fail_closed: bool = False

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            return value
        text = text.strip()
        # The message names the scheme at most: the rest may hold a password.
        scheme = urlsplit(text).scheme
        if scheme not in _REDIS_SCHEMES:
            raise ValueError(
                f"must be a redis://, rediss:// or unix:// URL, got scheme {scheme or 'none'!r}"
            )
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        if scheme != "unix" and not parts.hostname:
            raise ValueError("must name a host")
        if scheme == "unix" and not parts.path:
            raise ValueError("must name a socket path")
        del port
        return text or None

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value):
            raise ValueError("must be a non-empty key prefix without spaces")
        return value

    @field_validator("sync_interval", "timeout")
    @classmethod
    def _check_seconds(cls, value: float) -> float:
        if not (0.01 <= value <= 60 and math.isfinite(value)):
            raise ValueError("must be a number of seconds from 0.01 to 60")
        return value

    @model_validator(mode="after")
    def _check_backend(self) -> RoutingState:
        if self.backend is StateBackend.REDIS and self.url is None:
            raise Problems([(("url",), "required with backend: redis")])
        if self.backend is StateBackend.LOCAL and self.url is not None:
            raise Problems([(("url",), "only allowed with backend: redis")])
        return self

    @property
    def shared(self) -> bool:
        """Whether the state is shared with other processes."""
        return self.backend is not StateBackend.LOCAL


class RoutingPolicy(Validated):
    """How a `Provider` spreads, resends and ejects requests across a model's replicas.

    Attributes:
        strategy: `least_in_flight` (the default) sends a request to the replica with the
            fewest requests in flight. `affinity` gives each request a key, the caller's
            (`ChatRequest.affinity`: a session, a thread, a user) or else a hash of its
            leading prefix (tool names, system messages and the first other message, up to
            `affinity_prefix_chars`). A key sent before goes where it went last unless that
            replica is at its load bound; a new one goes to the least loaded replica, the
            first in the key's rendezvous order (highest random weight, scaled by `weight`)
            among equals. So the turns of a conversation, and requests sharing a long prompt
            prefix, reach the replica whose prompt cache holds it; with equal loads every
            process with this config picks alike, with no shared state, and a replica added
            or removed moves only its own keys. It costs a hash of the prefix per request (a
            few microseconds).
        affinity_prefix_chars: How many characters of the leading prompt make the key when
            the request names none (about four per token).
        load_factor: The bound on affinity ("consistent hashing with bounded loads"): a
            replica may hold ceil(`load_factor` x (requests in flight + 1) x its weight / the
            usable replicas' weight) requests, the new one included; a key whose replica
            is at its bound goes to the next in its order. 1 balances strictly;
            higher keeps more requests on their cache.
        load_signals: `auto` reads each server's own count of requests running and waiting
            (llama-server `/metrics` or `/slots`, vLLM and SGLang `/metrics`), one background
            thread per endpoint, every `load_interval`, so requests that other processes
            sent count too: a fresh report counts as the replica's load when it is larger
            than the provider's own count. `off` (the default) counts this provider's
            requests only. A read that fails or is slow never delays a request: the count
            then is the provider's own.
        load_interval: Seconds between two reads of a server's load (at least 0.05).
        models: Per model id, choices that replace the ones above for that model only.
        max_attempts: Sends per request at most, the first included. A request is resent only
            when no byte of an answer arrived (connection refused or reset, 429, 502, 503),
            on another replica when one can take it, else on the same one after a backoff.
            Besides, a call's first hang-up before any answer (a reset, or a close without
            a response: what a kept-alive connection the server had closed looks like) is
            resent once at once to the same replica, outside this budget. A request's own
            `max_attempts` (LangChain's `max_retries + 1`) replaces this one.
        failure_threshold: Consecutive failures that eject an endpoint (its circuit opens).
        cooldown: Seconds an ejected endpoint rests before one request probes it (half-open);
            each endpoint's rest is drawn within +/-20% so replicas do not return in lockstep.
        backoff: Seconds before resending to the endpoint that just failed; doubles with each
            attempt, and a 429's `Retry-After` replaces it.
        resend_unsafe: Also resend what the server may have worked on: a 500, 504 or other
            5xx, a read timeout, a connection lost after the answer began. Off by default:
            each such resend may generate, and bill, the answer twice. A stream that has
            yielded output is never resent.
        state: Where the breakers, rests, in-flight counts and load readings live: this
            process (the default) or a Redis shared by many (see `RoutingState`).

    Example:
        >>> Config(endpoints=[{"url": "http://gpu-1:8080", "id": "qwen3"}],
        ...        routing={"max_attempts": 5}).routing.max_attempts
        5
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: RoutingStrategy = RoutingStrategy.LEAST_IN_FLIGHT
    affinity_prefix_chars: int = 2048
    load_factor: float = 1.5
    load_signals: LoadSignals = LoadSignals.OFF
    load_interval: float = 0.5
    models: dict[str, ModelRouting] = Field(default_factory=dict)
    max_attempts: int = 3
    failure_threshold: int = 3
    cooldown: float = 5.0
    backoff: float = 0.25
    resend_unsafe: bool = False
    state: RoutingState = RoutingState()

    @field_validator("max_attempts", "failure_threshold", mode="before")
    @classmethod
    def _check_count(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, int) and value < 1):
            raise ValueError("must be an integer >= 1")
        return value

    @field_validator("affinity_prefix_chars", mode="before")
    @classmethod
    def _check_prefix(cls, value: Any) -> Any:
        return _check_prefix_chars(value)

    @field_validator("load_factor")
    @classmethod
    def _check_factor(cls, value: float) -> float:
        return _check_load_factor(value)

    @field_validator("cooldown", "backoff")
    @classmethod
    def _check_seconds(cls, value: float) -> float:
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError("must be a finite number of seconds >= 0")
        return value

    @field_validator("load_interval")
    @classmethod
    def _check_interval(cls, value: float) -> float:
        if not (value >= _MIN_LOAD_INTERVAL and math.isfinite(value)):
            raise ValueError(f"must be a finite number of seconds >= {_MIN_LOAD_INTERVAL}")
        return value

    def for_model(self, model: str) -> RoutingPolicy:
        """This policy with `model`'s own choices (`models[model]`) in place of the shared ones."""
        own = self.models.get(model)
        if own is None:
            return self
        return self.model_copy(update=own.model_dump(exclude_none=True))


class Config(Validated):
    """The endpoints a `Provider` may route to, and how it routes among replicas.

    Example:
        >>> config = Config(endpoints=[
        ...     {"url": "http://gpu-1:8080", "id": "qwen3", "capabilities": ["chat"]},
        ...     {"url": "http://gpu-2:8080", "id": "qwen3", "capabilities": ["chat"]},
        ... ])
        >>> [e.display_name for e in config.replicas("qwen3")]
        ['qwen3@gpu-1:8080', 'qwen3@gpu-2:8080']
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoints: tuple[ModelEndpoint, ...]
    routing: RoutingPolicy = RoutingPolicy()

    @model_validator(mode="after")
    def _check_endpoints(self) -> Config:
        if not self.endpoints:
            raise Problems([(("endpoints",), "at least one endpoint is required")])
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first_of: dict[str, int] = {}
        seen: dict[tuple[str, str], int] = {}
        for index, endpoint in enumerate(self.endpoints):
            key = (endpoint.id, endpoint.api_base)
            if key in seen:
                problems.append(
                    (("endpoints", index), f"duplicates endpoints[{seen[key]}] (same id and url)")
                )
                continue
            seen[key] = index
            first = first_of.setdefault(endpoint.id, index)
            reference = self.endpoints[first]
            for field in ("capabilities", "dimension", "token_modifier"):
                if getattr(endpoint, field) != getattr(reference, field):
                    problems.append(
                        (
                            ("endpoints", index, field),
                            f"differs from replica endpoints[{first}] of model {endpoint.id!r}",
                        )
                    )
        for model in self.routing.models:
            if model not in first_of:
                problems.append(
                    (
                        ("routing", "models", model),
                        f"names no configured model; known: {', '.join(first_of)}",
                    )
                )
        if problems:
            raise Problems(problems)
        return self

    @property
    def model_ids(self) -> list[str]:
        """Distinct model ids, in configuration order."""
        return list(dict.fromkeys(endpoint.id for endpoint in self.endpoints))

    def replicas(self, model: str) -> list[ModelEndpoint]:
        """The endpoints serving `model`, in configuration order."""
        return [endpoint for endpoint in self.endpoints if endpoint.id == model]

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Read a YAML, TOML or JSON file and resolve `${VAR}` references from the environment.

        The file holds either a mapping with an `endpoints` list or the list itself.

        Example:
            >>> config = Config.load("endpoints.yaml")  # doctest: +SKIP
        """
        data = read_config_file(Path(path))
        if isinstance(data, list):
            # Wrapped first, so a problem inside is named by its path in the config.
            data = {"endpoints": data}
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: expected a mapping with 'endpoints' or a list")
        resolved = expand_env(data, os.environ if environ is None else environ)
        return cls(**{str(key): value for key, value in resolved.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build a config from `SELFHOSTED_CONFIG` or the one-endpoint variables.

        `SELFHOSTED_CONFIG` names a config file. Otherwise `SELFHOSTED_BASE_URL` and
        `SELFHOSTED_MODEL` (plus optional `SELFHOSTED_API_KEY`, `SELFHOSTED_CAPABILITIES` as a
        comma-separated list, and `SELFHOSTED_DIMENSION`) describe a single endpoint.
        """
        env = os.environ if environ is None else environ
        if path := env.get("SELFHOSTED_CONFIG"):
            return cls.load(path, environ=env)
        base_url, model = env.get("SELFHOSTED_BASE_URL"), env.get("SELFHOSTED_MODEL")
        if not base_url or not model:
            raise ConfigurationError(
                "no configuration: set SELFHOSTED_CONFIG to a config file, or "
                "SELFHOSTED_BASE_URL and SELFHOSTED_MODEL"
            )
        endpoint: dict[str, Any] = {"url": base_url, "id": model}
        if api_key := env.get("SELFHOSTED_API_KEY"):
            endpoint["api_key"] = api_key
        if capabilities := env.get("SELFHOSTED_CAPABILITIES"):
            names = (item.strip() for item in capabilities.split(","))
            endpoint["capabilities"] = [name for name in names if name]
        if dimension := env.get("SELFHOSTED_DIMENSION"):
            endpoint["dimension"] = dimension
        return cls(endpoints=[endpoint])
