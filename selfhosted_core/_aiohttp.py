"""An httpx2 async transport on aiohttp's connection pool, the core's default for async calls.

At 64 concurrent requests, aiohttp's C-accelerated HTTP/1.1 client answered about five times
as many requests per CPU second as httpx2's own pool (`make bench`, async table), so async
calls go through it; the rest of the core sees an ordinary `httpx2.AsyncBaseTransport` and
httpx2's errors, mapped here exactly as httpx2's own transport maps httpcore's.

Timeouts follow the request's `timeout` extension as httpx2's do: `connect` bounds connecting,
`pool` waiting for a free connection, and `read` each socket read, read again when the body
starts so the core's switch to the idle timeout applies to the body.
"""

from __future__ import annotations

import asyncio
import io
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx2

_KEEPALIVE_EXPIRY = 5.0
_MAX_LINE = 64 * 1024
_LARGE_BODY = 1024 * 1024  # httpx2's default; llama-server drops idle connections after 5 s


@contextmanager
def _mapped(*, body: bool) -> Iterator[None]:
    """Raise aiohttp's errors as the httpx2 errors httpx2's own transport raises for them.

    Before the headers, a server that hung up is a `RemoteProtocolError` (the core resends
    once on a fresh connection, as with httpx2); within the body it is a broken answer.
    """
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx2.ConnectTimeout(str(exc) or "connecting timed out") from exc
    except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
        raise httpx2.ReadTimeout(str(exc) or "reading timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx2.ConnectError(str(exc)) from exc
    except aiohttp.ServerDisconnectedError as exc:
        message = (
            "peer closed connection without sending complete message body"
            if body
            else "Server disconnected without sending a response."
        )
        raise httpx2.RemoteProtocolError(message) from exc
    except aiohttp.ClientPayloadError as exc:
        raise httpx2.RemoteProtocolError(f"incomplete message body: {exc}") from exc
    except aiohttp.ClientResponseError as exc:
        # aiohttp's parser refused the reply (a malformed status line or header). Its message
        # quotes the offending bytes, which may be a cookie or an echoed key.
        raise httpx2.RemoteProtocolError(f"malformed response ({type(exc).__name__})") from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        # Connected (connecting failed above), then the connection was lost: writing the
        # request to a kept-alive connection the server had closed ("Can not write request
        # body"), or a reset. The core's stage says whether an answer had begun.
        raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc
    except ValueError as exc:
        # aiohttp refuses a header value with a control character; httpx2's word for that.
        raise httpx2.LocalProtocolError(type(exc).__name__) from exc


class _Body(httpx2.AsyncByteStream):
    """A response body as aiohttp reads it; closing before its end closes the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._response.connection
        if connection is not None and connection.protocol is not None:
            protocol = connection.protocol
            protocol.read_timeout = self._request.extensions.get("timeout", {}).get("read")
            if not self._response.content.at_eof():
                # The timer running since the headers arrived still counts the first-byte
                # timeout; restart it with the body's.
                protocol.start_timeout()
        with _mapped(body=True):
            async for data in self._response.content.iter_any():
                yield data

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Send httpx2 requests with aiohttp: one session and connection pool per transport.

    The session is opened on first use, inside the event loop that uses it. Bodies are left
    encoded (httpx2 decodes them); the request's own headers are sent, and aiohttp adds none.
    `verify=True` trusts what httpx2 trusts (`httpx2.create_ssl_context`), so sync and async
    calls accept the same certificates.

    Args:
        max_connections: The most connections open at once.
        verify: `False`, `True` (the system's CAs) or an `ssl.SSLContext`.
    """

    def __init__(self, *, max_connections: int, verify: ssl.SSLContext | bool) -> None:
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | bool = (
            httpx2.create_ssl_context(verify=True) if verify is True else verify
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            ssl=self._ssl,
            keepalive_timeout=_KEEPALIVE_EXPIRY,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "Accept", "User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            # h11 (the sync path) reads header lines of any length; aiohttp stops at 8 KiB,
            # which a gateway's session cookie can pass.
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_LINE,
        )
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request`; return once the headers have arrived, the body unread."""
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        # `pool` is what is left of the request's deadline; as the total it also bounds
        # sending, which aiohttp has no timeout of its own for.
        timeout = aiohttp.ClientTimeout(
            total=timeouts.get("pool"),
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = request.content
        # aiohttp warns (ResourceWarning) about a large body given as bytes; a stream it is not.
        data = io.BytesIO(body) if len(body) > _LARGE_BODY else body or None
        with _mapped(body=False):
            response = await session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=data,
                timeout=timeout,
                allow_redirects=False,
            )
        return httpx2.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
