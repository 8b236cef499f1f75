"""The HTTP shell: pooled clients per endpoint and the single place transport errors are mapped."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from selfhosted_core.config import ModelEndpoint
from selfhosted_core.errors import EndpointConnectionError, EndpointTimeoutError
from selfhosted_core.types import ChatResponse

USER_AGENT = "selfhosted-llm/0.1"
_CONNECT_TIMEOUT = 10.0
_LIMITS = httpx2.Limits(max_connections=512, max_keepalive_connections=128)


def client_headers(endpoint: ModelEndpoint) -> dict[str, str]:
    """Headers for every request to `endpoint`; its key goes to it and nowhere else."""
    headers = {"user-agent": USER_AGENT}
    headers.update((name, value.get_secret_value()) for name, value in endpoint.headers.items())
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return headers


def tls_verification(endpoint: ModelEndpoint) -> ssl.SSLContext | bool:
    """How to check an https endpoint's certificate: the system's CAs, its own bundle, or not."""
    if not endpoint.tls_verify:
        return False
    if endpoint.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(endpoint.ca_bundle))
    return True


def timeout_of(seconds: float) -> httpx2.Timeout:
    """A timeout with connecting capped: a server that is up accepts at once."""
    return httpx2.Timeout(seconds, connect=min(_CONNECT_TIMEOUT, seconds))


def client_options(endpoint: ModelEndpoint) -> dict[str, Any]:
    """What the sync and async clients of one endpoint share: its headers, timeout and TLS.

    Redirects are not followed: the endpoint's key would go wherever they point.
    """
    return {
        "headers": client_headers(endpoint),
        "timeout": timeout_of(endpoint.timeout),
        "limits": _LIMITS,
        "follow_redirects": False,
        "verify": tls_verification(endpoint),
    }


def new_client(endpoint: ModelEndpoint, transport: httpx2.BaseTransport | None) -> httpx2.Client:
    """A pooled sync client for one endpoint."""
    return httpx2.Client(transport=transport, **client_options(endpoint))


def new_async_client(
    endpoint: ModelEndpoint, transport: httpx2.AsyncBaseTransport | None
) -> httpx2.AsyncClient:
    """A pooled async client for one endpoint, for use on the event loop that created it."""
    return httpx2.AsyncClient(transport=transport, **client_options(endpoint))


def send(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
    """Send, and once more if a pooled connection turned out to be closed; read nothing yet.

    llama-server may close a kept-alive connection right after a streamed response; the next
    request on it fails with "Server disconnected without sending a response". Only the
    headers are awaited here, so a resend happens only when no byte of a response arrived;
    a body that breaks off later is an error, never a second (billed) generation.
    """
    try:
        return client.send(request, stream=True)
    except httpx2.RemoteProtocolError:
        return client.send(request, stream=True)


async def asend(client: httpx2.AsyncClient, request: httpx2.Request) -> httpx2.Response:
    """Async twin of `send`."""
    try:
        return await client.send(request, stream=True)
    except httpx2.RemoteProtocolError:
        return await client.send(request, stream=True)


@contextmanager
def transport_errors(
    *,
    model: str,
    endpoint: str,
    partial: Callable[[], ChatResponse | None] = lambda: None,
) -> Iterator[None]:
    """Map every httpx error raised inside to `EndpointTimeoutError`/`EndpointConnectionError`.

    `partial` supplies what a stream had delivered, so a broken stream loses nothing.
    """
    try:
        yield
    except httpx2.TimeoutException as exc:
        raise EndpointTimeoutError(
            f"timed out: {type(exc).__name__}", model=model, endpoint=endpoint, partial=partial()
        ) from exc
    except httpx2.HTTPError as exc:
        # A LocalProtocolError quotes the offending request header, which may be the key.
        secret = isinstance(exc, httpx2.LocalProtocolError)
        detail = type(exc).__name__ if secret else str(exc) or type(exc).__name__
        raise EndpointConnectionError(
            f"connection failed: {detail}", model=model, endpoint=endpoint, partial=partial()
        ) from exc
