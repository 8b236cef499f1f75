"""The health check of one endpoint as a sans-I/O protocol.

`probe` is an exchange of the attempt engine (`_engine`): it yields the GET to send next,
receives the read reply (a failed GET is thrown into it, and reported), and finally returns
the `EndpointHealth`. Its GETs are sent and read as every request is, so the endpoint's limits
(`max_response_bytes`, its timeouts, no redirects) bound a health check too; `Provider.health`
and `Provider.ahealth` drive it with the engine's sync and async loops, which decide alike.

Steps: `/health` (cheap; llama-server answers 503 "Loading model" until the model is in memory),
then `/v1/models` (checks the key, names the server, gives the context window), then for
llama-server `/props` (the context size it actually runs with, not the trained one, and its
build), or for the other servers that have one their version endpoint (`VERSION_PATHS`).
"""

from __future__ import annotations

import time
from collections.abc import Generator

from pydantic import ValidationError

from selfhosted_core._calls import CallPlan
from selfhosted_core._http import Whole
from selfhosted_core._status import endpoint_secrets, error_from_status, redirect_error
from selfhosted_core._wire import WireModelList, WireProps, WireVersion
from selfhosted_core.config import ModelEndpoint
from selfhosted_core.errors import SelfHostedError
from selfhosted_core.profiles import ServerKind, detect_server_kind
from selfhosted_core.types import EndpointHealth, HealthStatus

DEFAULT_HEALTH_TIMEOUT = 5.0

VERSION_PATHS = {
    ServerKind.VLLM: "/version",
    ServerKind.OLLAMA: "/api/version",
    ServerKind.LOCALAI: "/version",
    ServerKind.TGI: "/info",
    ServerKind.SGLANG: "/get_server_info",
}
"""Where each server tells its version (see `WireVersion` for the sources); LM Studio has none."""


Probe = Generator[CallPlan, Whole, EndpointHealth]


def probe(endpoint: ModelEndpoint, *, slot: int) -> Probe:
    """Check the endpoint in `slot`; never raises, whatever the server does."""
    started = time.perf_counter()

    def get(url: str) -> Generator[CallPlan, Whole, Whole | SelfHostedError]:
        try:
            return (yield CallPlan.get(slot=slot, endpoint=endpoint, url=url))
        except SelfHostedError as exc:
            return exc

    def result(status: HealthStatus, detail: str | None = None, **found: object) -> EndpointHealth:
        found["server"] = found.get("server") or endpoint.server
        return EndpointHealth(
            model=endpoint.id,
            endpoint=endpoint.display_name,
            url=endpoint.api_base,
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            detail=detail,
            **found,  # type: ignore[arg-type]
        )

    health = yield from get(f"{endpoint.server_root}/health")
    if isinstance(health, SelfHostedError):
        return result(HealthStatus.DOWN, health.message)
    early = _classify(health, endpoint)
    if early is not None:
        return result(*early)
    models = yield from get(f"{endpoint.api_base}/models")
    if isinstance(models, SelfHostedError):
        return result(HealthStatus.DOWN, models.message)
    failed = _classify(models, endpoint)
    if failed is not None:
        return result(*failed)
    if models.status_code >= 400:
        return result(HealthStatus.DOWN, f"/v1/models answered HTTP {models.status_code}")
    try:
        listing = WireModelList.model_validate_json(models.content)
    except ValidationError:
        return result(HealthStatus.OK, "/v1/models reply is not a model list", server=None)
    kind = detect_server_kind(models.headers, [entry.owned_by or "" for entry in listing.data])
    served = [entry.id for entry in listing.data]
    entry = next((item for item in listing.data if item.id == endpoint.upstream_model), None)
    context = None
    if entry is not None:
        context = entry.max_model_len or (entry.meta.n_ctx_train if entry.meta else None)
    detail = None
    if served and entry is None:
        detail = f"server does not list {endpoint.upstream_model!r} (lists: {', '.join(served)})"
    version = None
    version_path = VERSION_PATHS.get(kind or endpoint.server or ServerKind.GENERIC)
    if version_path is not None:
        version = _version((yield from get(f"{endpoint.server_root}{version_path}")))
    if kind is ServerKind.LLAMA_CPP:
        props = _props((yield from get(f"{endpoint.server_root}/props")))
        if props is not None:
            settings = props.default_generation_settings
            context = (settings.n_ctx if settings else None) or props.n_ctx or context
            version = props.build_info
    return result(HealthStatus.OK, detail, server=kind, context_window=context, version=version)


def _classify(reply: Whole, endpoint: ModelEndpoint) -> tuple[HealthStatus, str] | None:
    """Down (redirected), loading or unauthorized from a reply's status; None otherwise."""
    if 300 <= reply.status_code < 400:
        redirect = redirect_error(
            reply.status_code, reply.headers.get("location"), model=endpoint.id,
            endpoint=endpoint.display_name,
        )  # fmt: skip
        return HealthStatus.DOWN, redirect.message
    if reply.status_code in (401, 403):
        return HealthStatus.UNAUTHORIZED, f"HTTP {reply.status_code}: the API key was refused"
    if reply.status_code == 503:
        error = error_from_status(
            503,
            reply.content,
            retry_after=None,
            secrets=endpoint_secrets(endpoint),
            model=endpoint.id,
            endpoint=endpoint.display_name,
        )
        return HealthStatus.LOADING, error.message
    return None


def _version(reply: Whole | SelfHostedError) -> str | None:
    if isinstance(reply, SelfHostedError) or reply.status_code != 200:
        return None
    try:
        return WireVersion.model_validate_json(reply.content).version
    except ValidationError:
        return None


def _props(props: Whole | SelfHostedError) -> WireProps | None:
    if isinstance(props, SelfHostedError) or props.status_code != 200:
        return None
    try:
        return WireProps.model_validate_json(props.content)
    except ValidationError:
        return None
