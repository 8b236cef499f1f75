"""Token counting through the server's own tokenizer, as a sans-I/O protocol.

`count` decides everything that can be decided before I/O (which API, which payloads, or that
the server offers none) and returns a generator: it yields each `CallPlan` to send, receives the
read response, and finally returns the number of tokens. `Provider.count_tokens` drives it with a
sync client and `Provider.acount_tokens` with an async one, so both decide identically.

What is counted:

- `text`: the text's own tokens, with no BOS or other special token added (special-token text
  inside it is parsed as a chat prompt would be);
- `messages`: the whole prompt a chat request with these messages (and no tools) would send,
  chat template and generation prompt included, which is what the server then reports as
  `usage.prompt_tokens`. llama-server tokenizes a chat prompt with `add_special` (and
  `parse_special`) on, after its template step has dropped a BOS the template itself wrote
  (tools/server/server-context.cpp `handle_completions_impl` and `handle_count_tokens`,
  common/chat.cpp); vLLM's `/tokenize` defaults for messages match its chat defaults
  (`add_generation_prompt` true, `add_special_tokens` false).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from selfhosted_core._calls import CallPlan
from selfhosted_core._checks import check_messages
from selfhosted_core._http import Whole
from selfhosted_core._request import wire_messages
from selfhosted_core._wire import WirePrompt, WireTokenCount, WireTokens
from selfhosted_core.config import ModelEndpoint
from selfhosted_core.errors import InvalidRequestError, NotSupportedError
from selfhosted_core.profiles import PROFILES, ServerKind, profile_for
from selfhosted_core.types import EndpointHealth, Message

TokenCount = Generator[CallPlan, Whole, int]


def check(model: str, text: str | None, messages: Sequence[Message] | None) -> None:
    """Reject a count request no server could answer, before any I/O."""
    if not isinstance(model, str):
        raise InvalidRequestError(
            f"model must be a model id (a string), not {type(model).__name__}"
        )
    if (text is None) == (messages is None):
        raise InvalidRequestError("count tokens of exactly one of text or messages", model=model)
    if text is not None and not isinstance(text, str):
        raise InvalidRequestError(f"text must be a string, not {type(text).__name__}", model=model)
    if messages is not None:
        check_messages(messages, model)
        if not messages:
            raise InvalidRequestError("counting messages needs at least one message", model=model)


def count(
    *,
    slot: int,
    endpoint: ModelEndpoint,
    model: str,
    server: ServerKind,
    text: str | None,
    messages: Sequence[Message] | None,
    health: EndpointHealth | None = None,
) -> TokenCount:
    """The calls that count the tokens; `NotSupportedError` when the server has no tokenizer API.

    `health` is the check run because the server kind was unknown; its outcome explains why
    the kind is still unknown.
    """
    profile = profile_for(server)

    def post(path: str, payload: dict[str, Any]) -> CallPlan:
        return CallPlan.post(
            slot=slot,
            endpoint=endpoint,
            model=model,
            server=server,
            path=path,
            payload=payload,
            server_root=True,
        )

    if profile.tokenize is None:
        raise _unsupported(server, endpoint, model, health)
    if messages is None:
        assert text is not None, "checked by check()"
        if profile.tokenize == "llama.cpp":
            return _tokens(post("/tokenize", {"content": text}))
        payload = {"model": endpoint.upstream_model, "prompt": text, "add_special_tokens": False}
        return _count(post("/tokenize", payload))
    if profile.tokenize == "sglang":
        raise NotSupportedError(
            "SGLang's /tokenize takes text only; counting chat messages is not supported",
            model=model,
            endpoint=endpoint.display_name,
        )
    wire = wire_messages(messages, endpoint, profile)
    if profile.tokenize == "llama.cpp":
        return _templated(
            post("/apply-template", {"messages": wire}),
            lambda prompt: post("/tokenize", {"content": prompt, "add_special": True}),
        )
    return _count(post("/tokenize", {"model": endpoint.upstream_model, "messages": wire}))


def _tokens(plan: CallPlan) -> TokenCount:
    response = yield plan
    return len(plan.json_reply(response, WireTokens).tokens)


def _templated(template: CallPlan, tokenize: Callable[[str], CallPlan]) -> TokenCount:
    response = yield template
    prompt = template.json_reply(response, WirePrompt).prompt
    return (yield from _tokens(tokenize(prompt)))


def _count(plan: CallPlan) -> TokenCount:
    response = yield plan
    return plan.json_reply(response, WireTokenCount).count


def _unsupported(
    server: ServerKind, endpoint: ModelEndpoint, model: str, health: EndpointHealth | None
) -> NotSupportedError:
    able = ", ".join(kind.value for kind, profile in PROFILES.items() if profile.tokenize)
    if server is ServerKind.GENERIC:
        found = ""
        if health is not None:
            found = f"; its health check found it {health.status.value}"
            found += f" ({health.detail})" if health.detail else ""
        message = (
            f"token counting needs the server kind, which is unknown for this endpoint{found}; "
            f"declare `server:` in its config (kinds with a tokenizer API: {able})"
        )
    else:
        message = f"{server.value} servers offer no tokenizer API (kinds with one: {able})"
    return NotSupportedError(message, model=model, endpoint=endpoint.display_name)
