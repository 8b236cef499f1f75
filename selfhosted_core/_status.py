"""The one table from HTTP error statuses (and mid-stream error events) to typed errors.

An error is typed on the server's text as sent. A server may quote the request back in that
text ("invalid key Bearer sk-..."), so given the endpoint's secrets (`endpoint_secrets`), the
errors built here have each replaced by `REDACTED` in whatever they keep, and no message,
body, log line or traceback carries them. A key or header value is a secret unless it is a
well-known placeholder (`EMPTY`, `ollama`, `lm-studio`, ...) or shorter than 8 characters
(`is_secret`): redacting those protects nothing and garbles the text.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Collection, Iterator, Mapping
from urllib.parse import urlsplit

from pydantic import ValidationError

from selfhosted_core._wire import WireErrorBody, WireErrorDetail
from selfhosted_core.config import ModelEndpoint
from selfhosted_core.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from selfhosted_core.types import ChatResponse

_BY_STATUS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}

_CONTEXT_TYPES = frozenset({"exceed_context_size_error", "context_length_exceeded"})
"""Error `type`/`code` values meaning context overflow: llama-server, OpenAI."""

_CONTEXT_PHRASES = (
    # OpenAI, and vLLM before 0.16: "This model's maximum context length is 4096 tokens."
    r"maximum context length",
    # vLLM 0.16+: "You passed 5000 input tokens and requested 100 output tokens. However,
    # the model's context length is only 4096 tokens"
    r"context length is only \d+",
    r"you passed \d+ input (?:tokens|characters)",
    # llama-server: "request (13392 tokens) exceeds the available context size (8192
    # tokens), try increasing it" (tools/server/server-context.cpp)
    r"exceeds the available context size",
    # TGI 422: "`inputs` tokens + `max_new_tokens` must be <= 4096"
    r"`?inputs`? tokens \+ `?max_new_tokens`? must be <=",
    r"`?inputs`? must have less than \d+ tokens",
    # LM Studio: "Trying to keep the first 14538 tokens when context the overflows."
    r"when context the overflows",
    # SGLang: "The input (5000 tokens) is longer than the model's context length"
    r"longer than the model's context length",
)
"""How each server words a context overflow, as regular expressions."""

_CONTEXT_WORDING = re.compile("|".join(_CONTEXT_PHRASES), re.IGNORECASE)


REDACTED = "[redacted]"
"""What stands in for a secret in any text a server sent back."""

_PLACEHOLDER_KEYS = frozenset(
    {
        # The placeholders the servers' own docs tell clients to send.
        "empty",  # vLLM
        "ollama",  # Ollama
        "lm-studio",  # LM Studio
        "sk-no-key-required",  # llama.cpp (tools/server README)
        # Others in common use for a server that checks no key.
        "lmstudio",
        "x",
        "none",
        "null",
        "no-key",
        "nokey",
        "dummy",
        "sk-dummy",
        "not-needed",
        "placeholder",
        "unused",
    }
)
"""Well-known stand-ins for "no key", lowercase (see `is_secret`)."""


def is_secret(value: str) -> bool:
    """Whether `value` is worth redacting: 8 characters or more, and no well-known placeholder.

    The one rule for an endpoint's key and its header values alike; `Bearer <value>` is judged
    by the value. Most self-hosted servers check no key, so clients send a placeholder
    (`_PLACEHOLDER_KEYS`, compared case-insensitively), and short header values are flags
    (`X-Debug: 1`). Redacting such strings protects nothing, since they are public or
    guessable, and garbles every text they occur in: with the key `x`, "exceeds the available
    context size" would read "e[redacted]ceeds the available conte[redacted]t size".
    """
    scheme, _, rest = value.strip().partition(" ")
    credential = rest.strip() if scheme.lower() == "bearer" and rest else value.strip()
    return len(credential) >= 8 and credential.lower() not in _PLACEHOLDER_KEYS


def endpoint_secrets(endpoint: ModelEndpoint) -> tuple[str, ...]:
    """Every credential `endpoint` sends: its key, its `Authorization` value, its header values.

    Only those `is_secret` accepts. Pass the result as `secrets` to `error_from_status` and
    `error_from_event` (and to the `Assembler`), so what a server quotes back of the request
    never reaches an error.
    """
    secrets: list[str] = []
    if endpoint.api_key is not None:
        key = endpoint.api_key.get_secret_value()
        secrets += [f"Bearer {key}", key]
    for value in endpoint.headers.values():
        text = value.get_secret_value()
        # A server may quote a value trimmed, as HTTP parsers read it.
        secrets += [text, text.strip()]
    return tuple(dict.fromkeys(secret for secret in secrets if is_secret(secret)))


def redact(text: str, secrets: Collection[str]) -> str:
    r"""`text` with every occurrence of each secret replaced by `REDACTED`.

    Each secret is also matched as JSON writes it inside a string (quotes and backslashes
    escaped, `/` optionally as `\/`), since error bodies are kept as the server's raw JSON.
    """
    forms = sorted(set(_written_forms(secrets)), key=len, reverse=True)
    if not forms or not text:
        return text
    # Longest first, so "Bearer <key>" goes as a whole rather than leaving "Bearer ".
    return re.sub("|".join(map(re.escape, forms)), REDACTED, text)


def _written_forms(secrets: Collection[str]) -> Iterator[str]:
    for secret in secrets:
        if not secret:
            continue
        yield secret
        escaped = json.dumps(secret, ensure_ascii=True)[1:-1]
        yield escaped
        yield escaped.replace("/", "\\/")


def error_from_status(
    status: int,
    body: bytes,
    *,
    retry_after: str | None,
    model: str,
    endpoint: str,
    secrets: Collection[str] = (),
) -> APIStatusError:
    """The typed error for an HTTP error response, with the server's own message.

    The type is read from the server's text as sent. Every one of `secrets` (see
    `endpoint_secrets`) is then redacted from what is kept: the message, the body excerpt and
    the error type; without them the server's text is kept verbatim.
    """
    raw = body[:2000].decode("utf-8", "replace")
    described, error_type = _describe(body)
    # Typed on the server's own words: redaction could garble the ones that tell the type.
    kind = _kind(status, _excerpt(raw) if described is None else described, error_type)
    text = redact(raw, secrets)
    # Cut from the redacted text, so no cut leaves half a secret.
    message = _excerpt(text) if described is None else redact(described, secrets)
    error = kind(
        message or f"HTTP {status} from server",
        status_code=status,
        body=text,
        error_type=None if error_type is None else redact(error_type, secrets),
        model=model,
        endpoint=endpoint,
    )
    if isinstance(error, RateLimitError):
        error.retry_after = _retry_after_seconds(retry_after)
    return error


def redirect_error(
    status: int, location: str | None, *, model: str, endpoint: str
) -> ResponseError:
    """A redirect the client did not follow, naming where it pointed (without credentials).

    Following it would send the endpoint's key to another address; the fix is to configure
    the address the server redirects to.
    """
    target = "an unnamed address"
    if location:
        parts = urlsplit(location)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        target = repr(f"{parts.scheme}://{host}{port}{parts.path}" if host else parts.path)
    return ResponseError(
        f"HTTP {status} redirect to {target} not followed (the endpoint's key stays with its "
        "endpoint); configure the address it redirects to",
        model=model,
        endpoint=endpoint,
    )


def error_from_event(
    error: WireErrorDetail | str,
    *,
    model: str,
    endpoint: str,
    partial: ChatResponse | None,
    secrets: Collection[str] = (),
) -> APIStatusError:
    """The typed error for an error event inside a 200 stream, keeping what arrived before it.

    The type is read from the event as sent. Every one of `secrets` (see `endpoint_secrets`)
    is then redacted from what is kept: the message, the body and the error type; without
    them the server's text is kept verbatim.
    """
    if isinstance(error, str):
        message, error_type, code = error, None, None
    else:
        message, error_type, code = error.message or "", error.type, error.code
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    # Typed on the server's own words: redaction could garble the ones that tell the type.
    kind = _kind(status, message, error_type)
    message = redact(message, secrets)
    return kind(
        f"error event in stream: {message or 'no message'}",
        status_code=status,
        body=message,
        error_type=None if error_type is None else redact(error_type, secrets),
        model=model,
        endpoint=endpoint,
        partial=partial,
    )


def _kind(status: int, message: str, error_type: str | None) -> type[APIStatusError]:
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else APIStatusError)
    if kind is BadRequestError and _is_context_overflow(message, error_type):
        return ContextWindowExceededError
    return kind


def _describe(body: bytes) -> tuple[str | None, str | None]:
    """The message and error type from any of the servers' error body shapes.

    The message is None when the body has none of them (a web page, plain text): then an
    excerpt of the text stands for it.
    """
    try:
        wire = WireErrorBody.model_validate_json(body)
    except ValidationError:
        return None, None
    if isinstance(wire.error, WireErrorDetail):
        code = wire.error.code if isinstance(wire.error.code, str) else None
        # OpenAI puts the telling word in `code`, llama-server in `type`.
        error_type = code if code in _CONTEXT_TYPES else wire.error.type or code
        return wire.error.message or "", error_type
    if isinstance(wire.error, str):
        return wire.error, wire.error_type
    if wire.message is not None:
        return wire.message, wire.type
    if wire.detail is not None:
        return str(wire.detail), None
    return None, None


def _excerpt(text: str) -> str:
    return text.strip()[:300]


def _is_context_overflow(message: str, error_type: str | None) -> bool:
    return error_type in _CONTEXT_TYPES or bool(_CONTEXT_WORDING.search(message))


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
