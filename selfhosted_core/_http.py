"""The HTTP shell: pooled clients per endpoint and the single place transport errors are mapped."""

from __future__ import annotations

import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx2

from selfhosted_core._sse import EventTooLarge
from selfhosted_core.config import ModelEndpoint
from selfhosted_core.errors import (
    EndpointConnectionError,
    EndpointTimeoutError,
    ResponseError,
    Stage,
)
from selfhosted_core.types import ChatResponse

USER_AGENT = "selfhosted-llm/0.1"
_JSON = "application/json"
_CONNECT_TIMEOUT = 10.0
_MAX_CONNECTIONS = 512
_MAX_KEEPALIVE = 128


def client_headers(endpoint: ModelEndpoint) -> dict[str, str]:
    """Headers for every request to `endpoint`; its key goes to it and nowhere else.

    Names are lower-cased, so a request's own headers replace a configured one of any case.
    """
    headers = {"user-agent": USER_AGENT}
    headers.update(
        (name.lower(), value.get_secret_value()) for name, value in endpoint.headers.items()
    )
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return headers


@dataclass(frozen=True, slots=True)
class RequestHeaders:
    """An endpoint's request headers, normalised once: asking for JSON and for an event stream.

    Building and checking them per request cost more CPU than the request's own JSON body.
    """

    json: httpx2.Headers
    sse: httpx2.Headers
    sse_once: httpx2.Headers
    get: httpx2.Headers

    @classmethod
    def of(cls, endpoint: ModelEndpoint) -> RequestHeaders:
        """The headers of every request to `endpoint`; a POST adds only its `content-length`."""
        base = {
            "host": parsed_url(endpoint.url).netloc.decode("ascii"),
            # What httpx2's client offered, and what it can decode without extras.
            "accept-encoding": "gzip, deflate",
            **client_headers(endpoint),
        }
        sse = {**base, "content-type": _JSON, "accept": "text/event-stream"}
        return cls(
            json=httpx2.Headers({**base, "content-type": _JSON, "accept": _JSON}),
            sse=httpx2.Headers({**sse}),
            # For a server that closes the connection after a stream (`closes_after_stream`).
            sse_once=httpx2.Headers({**sse, "connection": "close"}),
            get=httpx2.Headers({**base, "accept": _JSON}),
        )


@lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx2.URL:
    """`url` parsed once: an endpoint's few URLs are sent to again and again."""
    return httpx2.URL(url)


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
        "limits": httpx2.Limits(
            max_connections=endpoint.max_connections or _MAX_CONNECTIONS,
            max_keepalive_connections=min(
                _MAX_KEEPALIVE, endpoint.max_connections or _MAX_KEEPALIVE
            ),
        ),
        "follow_redirects": False,
        "verify": tls_verification(endpoint),
    }


def new_client(endpoint: ModelEndpoint, transport: httpx2.BaseTransport | None) -> httpx2.Client:
    """A pooled sync client for one endpoint."""
    return httpx2.Client(transport=transport, **client_options(endpoint))


def _proxied(url: str) -> bool:
    """Whether the environment names a proxy for `url`'s scheme.

    `NO_PROXY` is left to httpx2, whose reading of it (`.example.com`, CIDR ranges, ports)
    is not urllib's: an endpoint it might exempt still gets httpx2's transports, which decide.
    """
    proxies = urllib.request.getproxies()
    return bool(proxies.get(urlsplit(url).scheme) or proxies.get("all"))


def new_async_client(
    endpoint: ModelEndpoint, transport: httpx2.AsyncBaseTransport | None
) -> httpx2.AsyncClient:
    """A pooled async client for one endpoint, for use on the event loop that created it.

    Without an injected transport it sends through aiohttp (`_aiohttp`), imported here so a
    program that never goes async does not pay for importing it; an endpoint that an
    environment proxy (`HTTP_PROXY`, `ALL_PROXY`, ...) covers keeps httpx2's own transports,
    which go through the proxy.
    """
    options = client_options(endpoint)
    if transport is None and not _proxied(endpoint.url):
        from selfhosted_core._aiohttp import AiohttpTransport  # noqa: PLC0415

        transport = AiohttpTransport(
            max_connections=options["limits"].max_connections, verify=options["verify"]
        )
    return httpx2.AsyncClient(transport=transport, **options)


def _dispatch(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
    """Hand `request` to the client's transport (its pool, or an environment proxy's).

    The client's own `send` is skipped: it adds cookies, auth and redirect machinery the core
    never uses (its headers and timeouts are set on the request), and it cost about a quarter
    of a whole request's CPU against a local server (`make bench`).
    """
    response = client._transport_for_url(request.url).handle_request(request)
    response.request = request
    return response


async def _adispatch(client: httpx2.AsyncClient, request: httpx2.Request) -> httpx2.Response:
    """Async twin of `_dispatch`."""
    transport = client._transport_for_url(request.url)
    response = await transport.handle_async_request(request)
    response.request = request
    return response


def send(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
    """Send once and wait for the response's headers; read nothing of its body yet.

    Whether to send again after a failure is the attempt engine's decision (`_engine`), never
    this shell's.
    """
    return _dispatch(client, request)


async def asend(client: httpx2.AsyncClient, request: httpx2.Request) -> httpx2.Response:
    """Async twin of `send`."""
    return await _adispatch(client, request)


class BodyTooLarge(Exception):
    """A response body grew past the endpoint's `max_response_bytes`."""


class DeadlineExceeded(httpx2.ReadTimeout):
    """The request's total timeout ran out while its response was being read."""


def _start_body(response: httpx2.Response, endpoint: ModelEndpoint, deadline: float) -> None:
    """From now on each read of the body may wait the idle timeout, within the deadline.

    httpcore takes the read timeout from the request's extensions when the body starts, so
    setting it between the headers and the first body read applies it to every body read.
    """
    remaining = max(0.001, deadline - time.monotonic())
    idle = min(endpoint.idle_timeout or remaining, remaining)
    timeouts = response.request.extensions.get("timeout", {})
    response.request.extensions["timeout"] = {**timeouts, "read": idle}


def _checked(data: bytes, received: int, limit: int, deadline: float) -> int:
    received += len(data)
    if received > limit:
        raise BodyTooLarge(f"response body exceeds max_response_bytes ({limit} bytes)")
    if time.monotonic() > deadline:
        raise DeadlineExceeded("the total timeout ran out while reading the response")
    return received


def _as_sent(response: httpx2.Response) -> bool:
    """Whether the body can be read as it arrives, skipping httpx2's decoding layers.

    Only an encoded body needs them; one already read in memory (a mock transport's) must be
    read through them.
    """
    return not response.is_stream_consumed and "content-encoding" not in response.headers


def body_chunks(
    response: httpx2.Response, endpoint: ModelEndpoint, deadline: float
) -> Iterator[bytes]:
    """The body as it arrives, each read bounded by the idle timeout and the deadline.

    More than `max_response_bytes` in all is refused without reading on; the deadline is
    checked at every read, so a server trickling bytes cannot outlast it by more than one read.
    """
    _start_body(response, endpoint, deadline)
    received, limit = 0, endpoint.max_response_bytes
    for data in response.iter_raw() if _as_sent(response) else response.iter_bytes():
        received = _checked(data, received, limit, deadline)
        yield data


async def abody_chunks(
    response: httpx2.Response, endpoint: ModelEndpoint, deadline: float
) -> AsyncIterator[bytes]:
    """Async twin of `body_chunks`."""
    _start_body(response, endpoint, deadline)
    received, limit = 0, endpoint.max_response_bytes
    async for data in response.aiter_raw() if _as_sent(response) else response.aiter_bytes():
        received = _checked(data, received, limit, deadline)
        yield data


@dataclass(frozen=True, slots=True)
class Whole:
    """A response read to its end: its status, its headers and its (decoded) body."""

    status_code: int
    headers: httpx2.Headers
    content: bytes


def read_whole(response: httpx2.Response, endpoint: ModelEndpoint, deadline: float) -> Whole:
    """The response with its whole body read (as `body_chunks` reads) and its connection freed."""
    try:
        body = b"".join(body_chunks(response, endpoint, deadline))
    finally:
        response.close()
    return Whole(response.status_code, response.headers, body)


async def aread_whole(response: httpx2.Response, endpoint: ModelEndpoint, deadline: float) -> Whole:
    """Async twin of `read_whole`."""
    try:
        body = b"".join([data async for data in abody_chunks(response, endpoint, deadline)])
    finally:
        await response.aclose()
    return Whole(response.status_code, response.headers, body)


_NOT_CONNECTED = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
"""httpx2's errors raised before a connection was had: the server never saw the request."""

_LOST = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError)
"""httpx2's errors for a connection lost under a request: before the headers, a hang-up."""


@contextmanager
def transport_errors(
    *,
    model: str,
    endpoint: str,
    stage: Stage = "send",
    partial: Callable[[], ChatResponse | None] = lambda: None,
) -> Iterator[None]:
    """Map every httpx error raised inside to `EndpointTimeoutError`/`EndpointConnectionError`.

    `stage` says how far the exchange has got (`send` while awaiting the headers, `body` once
    they arrived); an error that came before any connection was had is `connect` whatever the
    caller says. `partial` supplies what a stream had delivered, so a broken stream loses
    nothing.
    """
    try:
        yield
    except BodyTooLarge as exc:
        raise ResponseError(str(exc), model=model, endpoint=endpoint, partial=partial()) from exc
    except EventTooLarge as exc:
        message = f"a stream event exceeds max_response_bytes ({exc.limit} bytes)"
        raise ResponseError(message, model=model, endpoint=endpoint, partial=partial()) from exc
    except httpx2.TimeoutException as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise EndpointTimeoutError(
            f"timed out: {detail}",
            model=model,
            endpoint=endpoint,
            partial=partial(),
            stage="connect" if isinstance(exc, _NOT_CONNECTED) else stage,
        ) from exc
    except httpx2.HTTPError as exc:
        # A LocalProtocolError quotes the offending request header, which may be the key.
        secret = isinstance(exc, httpx2.LocalProtocolError)
        detail = type(exc).__name__ if secret else str(exc) or type(exc).__name__
        raise EndpointConnectionError(
            f"connection failed: {detail}",
            model=model,
            endpoint=endpoint,
            partial=partial(),
            stage="connect" if isinstance(exc, _NOT_CONNECTED) else stage,
            hung_up=stage == "send" and isinstance(exc, _LOST),
        ) from exc
