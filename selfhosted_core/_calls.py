"""One planned call: everything decided before I/O, and everything done with the reply after.

The sync and async paths of `Provider` build the same `CallPlan` and hand the same bytes back
to it; only the sending differs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from selfhosted_core import _repair
from selfhosted_core._assemble import Assembler
from selfhosted_core._http import RequestHeaders, Whole, parsed_url, transport_errors
from selfhosted_core._replies import not_json, validation_reason
from selfhosted_core._sse import SSEDecoder
from selfhosted_core._status import endpoint_secrets, error_from_status, redact, redirect_error
from selfhosted_core._wire import WireEmbeddingList
from selfhosted_core.config import ModelEndpoint
from selfhosted_core.errors import InvalidRequestError, ResponseError, Stage
from selfhosted_core.profiles import ServerKind, profile_for
from selfhosted_core.types import ChatResponse, EmbeddingResponse

WireT = TypeVar("WireT", bound=BaseModel)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPlan:
    """A routed request: which endpoint, which method and URL, which bytes."""

    slot: int
    endpoint: ModelEndpoint
    model: str
    server: ServerKind
    url: str
    body: bytes
    stream: bool = False
    method: str = "POST"

    @classmethod
    def post(
        cls,
        *,
        slot: int,
        endpoint: ModelEndpoint,
        model: str,
        server: ServerKind,
        path: str,
        payload: dict[str, Any],
        stream: bool = False,
        server_root: bool = False,
    ) -> CallPlan:
        """Plan a JSON POST to `path` under the endpoint's API root.

        With `server_root`, `path` lives beside `/v1` instead of under it (`/tokenize`).
        """
        try:
            body = to_json(payload)
        except PydanticSerializationError as exc:
            raise InvalidRequestError(
                f"request is not JSON-serialisable: {exc}", model=model
            ) from exc
        return cls(
            slot=slot,
            endpoint=endpoint,
            model=model,
            server=server,
            url=f"{endpoint.server_root if server_root else endpoint.api_base}{path}",
            body=body,
            stream=stream,
        )

    @classmethod
    def get(cls, *, slot: int, endpoint: ModelEndpoint, url: str) -> CallPlan:
        """Plan a GET of `url` (a health check's), sent and read as every other request is."""
        return cls(
            slot=slot,
            endpoint=endpoint,
            model=endpoint.id,
            server=endpoint.server or ServerKind.GENERIC,
            url=url,
            body=b"",
            method="GET",
        )

    def request(self, timeout: httpx2.Timeout, headers: RequestHeaders) -> httpx2.Request:
        """The HTTP request: the endpoint's headers (its key) and this call's timeouts."""
        if self.method == "GET":
            sent = httpx2.Headers(headers.get)
        else:
            if not self.stream:
                chosen = headers.json
            elif profile_for(self.server).closes_after_stream:
                chosen = headers.sse_once
            else:
                chosen = headers.sse
            sent = httpx2.Headers(chosen)
            sent["content-length"] = str(len(self.body))
        request = httpx2.Request(
            self.method,
            parsed_url(self.url),
            headers=sent,
            stream=httpx2.ByteStream(self.body),
            extensions={"timeout": timeout.as_dict()},
        )
        request.read()
        return request

    def errors(
        self, partial: Callable[[], ChatResponse | None] = lambda: None, *, stage: Stage = "body"
    ) -> AbstractContextManager[None]:
        """The transport-error mapping for this call, `stage` being how far it has got."""
        return transport_errors(
            model=self.model, endpoint=self.endpoint.display_name, stage=stage, partial=partial
        )

    def assembler(self) -> Assembler:
        """A fresh assembler for this call's answer."""
        return Assembler(
            model=self.model,
            endpoint=self.endpoint.display_name,
            server=self.server,
            token_modifier=self.endpoint.token_modifier,
            secrets=endpoint_secrets(self.endpoint),
        )

    def decoder(self) -> SSEDecoder:
        """A fresh event-stream decoder for this call's answer."""
        return SSEDecoder(max_event_bytes=self.endpoint.max_response_bytes)

    def raise_for_status(self, response: Whole) -> None:
        """Raise the typed error for an error status or a redirect; the body must have been read.

        Redirects are never followed: the endpoint's key would go to wherever they point.
        """
        if 300 <= response.status_code < 400:
            raise redirect_error(
                response.status_code,
                response.headers.get("location"),
                model=self.model,
                endpoint=self.endpoint.display_name,
            )
        if response.status_code >= 400:
            raise error_from_status(
                response.status_code,
                response.content,
                retry_after=response.headers.get("retry-after"),
                secrets=endpoint_secrets(self.endpoint),
                model=self.model,
                endpoint=self.endpoint.display_name,
            )

    def json_body(self, response: Whole) -> bytes:
        """The read body of a reply that must be JSON; an error status or a web page raises."""
        self.raise_for_status(response)
        problem = not_json(response.headers.get("content-type"), response.content)
        if problem is not None:
            # The excerpt is the server's text, which may echo the key.
            problem = redact(problem, endpoint_secrets(self.endpoint))
            raise self._malformed(f"malformed {urlsplit(self.url).path} response: {problem}")
        return response.content

    def chat_response(self, response: Whole) -> ChatResponse:
        """The repaired answer of a non-streamed chat call."""
        return self.assembler().feed_response(self.json_body(response))

    def stream_end(self, assembler: Assembler) -> ChatResponse:
        """The final answer once the stream's bytes ran out; a cut-off stream is an error."""
        if not (assembler.done or assembler.finished):
            raise ResponseError(
                "stream ended before the answer finished (no finish reason, no [DONE])",
                model=self.model,
                endpoint=self.endpoint.display_name,
                partial=assembler.partial(),
            )
        return assembler.result()

    def json_reply(self, response: Whole, wire: type[WireT]) -> WireT:
        """The read body validated as `wire`.

        An error status raises its typed error; a body that does not fit raises `ResponseError`.
        """
        body = self.json_body(response)
        try:
            return wire.model_validate_json(body)
        except ValidationError as exc:
            reason = validation_reason(exc)
        # Raised outside the handler: pydantic's error quotes the body, which may echo a key.
        raise self._malformed(f"malformed {urlsplit(self.url).path} response: {reason}")

    def embedding_response(self, response: Whole, count: int) -> EmbeddingResponse:
        """The vectors in input order, each checked against the configured dimension."""
        body = self.json_body(response)
        reason: str | None = None
        try:
            wire = WireEmbeddingList.model_validate_json(body)
            ordered = sorted(
                enumerate(wire.data),
                key=lambda item: item[1].index if item[1].index is not None else item[0],
            )
            vectors = [_repair.embedding_vector(entry.embedding) for _, entry in ordered]
        except ValidationError as exc:
            reason = validation_reason(exc)
        except ValueError as exc:
            raise self._malformed(f"malformed embeddings response: {exc}") from exc
        if reason is not None:
            # Outside the handler, as in `json_reply`.
            raise self._malformed(f"malformed embeddings response: {reason}")
        if len(vectors) != count:
            raise self._malformed(f"{len(vectors)} embeddings returned for {count} inputs")
        expected = self.endpoint.dimension
        for position, vector in enumerate(vectors):
            if len(vector) != expected:
                raise self._malformed(
                    f"embedding {position} has {len(vector)} dimensions; configured {expected}"
                )
        return EmbeddingResponse(
            model=wire.model,
            embeddings=vectors,
            usage=_repair.usage(wire.usage, self.endpoint.token_modifier),
            endpoint=self.endpoint.display_name,
        )

    def _malformed(self, message: str) -> ResponseError:
        return ResponseError(message, model=self.model, endpoint=self.endpoint.display_name)
