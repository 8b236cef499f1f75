"""Through a `litellm.Router` built from `router_model_list`, sends per call never exceed the
documented budget, counted at the server.

Two replicas of `tiny`, A and B, each a `FaultProxy` in front of the same llama-server, so every
send that reaches a server is in a proxy's `seen`. A call makes at most `routing.max_attempts`
sends (3 here), to the sibling when one can take it, plus one immediate resend to the same
replica after a hang-up; the mapped error carries `num_retries = 0`, so the Router's own
`num_retries` adds none. A deployment's `api_base` is a preference: a call the Router routed to
a replica that cannot take it is served by the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, TypeVar

import pytest
from litellm.exceptions import InternalServerError, ServiceUnavailableError
from litellm.router import Router

from litellm_selfhosted import register, router_model_list
from selfhosted_core import Attempt, Config, Provider, SelfHostedError, ServerError
from selfhosted_core.local import PLAIN_ANSWER_TEXT, LlamaServer
from tests import faults
from tests.faults import Fault, FaultProxy
from tests.integration.fault_replicas import ROUTING, A, B, chat_endpoint
from tests.litellm_driver import LLDriver

E = TypeVar("E", bound=Exception)
Kind = Literal["complete", "stream"]
KINDS: list[Kind] = ["complete", "stream"]
HELLO = [{"role": "user", "content": "Say hello"}]
BUDGET: int = ROUTING["max_attempts"]
HANG_UP_SENDS = 2
"""Sends to a replica that resets a call before answering: the budget's one, and the immediate
resend the engine makes after a connection lost before any byte (meant for stale pooled
connections; a reset counts as one too)."""
CALLS_PER_DEPLOYMENT = 2
"""Calls the Router must have routed to each deployment before a failover test ends."""
MAX_CALLS = 40
FAILING: dict[str, tuple[Fault, type[Exception], int]] = {
    "loading": (faults.LOADING, ServiceUnavailableError, BUDGET),
    "server_error": (faults.status(500), InternalServerError, 1),
}
"""Each fault both replicas answer with: LiteLLM's error class, and the sends the call makes."""


@pytest.fixture
def second_chat_proxy(chat_server: LlamaServer) -> Iterator[FaultProxy]:
    """Another fault proxy in front of the chat server: replica B."""
    with FaultProxy(chat_server.url) as proxy:
        yield proxy


@pytest.fixture
async def replicas(
    chat_proxy: FaultProxy, second_chat_proxy: FaultProxy, litellm_state: None
) -> AsyncIterator[Provider]:
    """`tiny` on A (`chat_proxy`) and on B (`second_chat_proxy`), registered with LiteLLM."""
    endpoints = [chat_endpoint(chat_proxy.url, A), chat_endpoint(second_chat_proxy.url, B)]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        register(provider=provider)
        yield provider


def router(provider: Provider, **settings: Any) -> Router:
    """A fresh Router with one deployment per replica."""
    target: Router = Router(
        model_list=router_model_list(provider.config), retry_after=0, **settings
    )
    return target


def deployment_labels(provider: Provider) -> dict[str, str]:
    """The endpoint label of each Router deployment, by deployment id."""
    deployments = router_model_list(provider.config)
    return {
        deployment["model_info"]["id"]: endpoint.display_name
        for deployment, endpoint in zip(deployments, provider.config.endpoints, strict=True)
    }


async def call(ll: LLDriver, target: Router, kind: Kind) -> Any:
    """One Router call of `kind`: the response, or the streamed chunks."""
    if kind == "complete":
        return await ll.on(target).complete(model="tiny", messages=HELLO, max_tokens=64)
    return await ll.on(target).stream(model="tiny", messages=HELLO, max_tokens=64)


async def failure(ll: LLDriver, target: Router, kind: Kind, expected: type[E]) -> E:
    """Make one Router call of `kind` that must fail with `expected`; the error."""
    with pytest.raises(expected) as caught:
        await call(ll, target, kind)
    return caught.value


def core_cause(error: BaseException) -> SelfHostedError:
    """Our error behind LiteLLM's: its `selfhosted_error`, which a Router stream keeps.

    litellm's Router reads a stream's first chunk itself and re-raises our error `from` its own
    `MidStreamFallbackError` (router_rust/invoke/streaming.py), replacing the `__cause__`.
    """
    cause = getattr(error, "selfhosted_error", None)
    assert isinstance(cause, SelfHostedError), f"no core error behind {error!r}"
    return cause


def sends(a: FaultProxy, b: FaultProxy) -> dict[str, int]:
    """Requests each replica's proxy has received, by label."""
    return {A: len(a.seen), B: len(b.seen)}


def attempts_by_endpoint(attempts: tuple[Attempt, ...]) -> dict[str, int]:
    counts = Counter(attempt.endpoint for attempt in attempts)
    return {A: counts[A], B: counts[B]}


def fail_both(a: FaultProxy, b: FaultProxy, fault: Fault) -> None:
    a.inject(fault, times=None)
    b.inject(fault, times=None)


@pytest.mark.parametrize("kind", KINDS)
async def test_loading_replicas_get_the_budget_in_sends_whatever_the_router_num_retries(
    ll: LLDriver,
    replicas: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
) -> None:
    fail_both(chat_proxy, second_chat_proxy, faults.LOADING)
    error = await failure(ll, router(replicas, num_retries=5), kind, ServiceUnavailableError)
    assert error.status_code == 503
    measured = sends(chat_proxy, second_chat_proxy)
    assert sum(measured.values()) == BUDGET
    # while the first replica rested, the core went to its sibling
    assert all(measured.values()), measured
    assert {seen.fault for seen in chat_proxy.seen + second_chat_proxy.seen} == {faults.LOADING}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_error_is_sent_once_whatever_the_router_num_retries(
    ll: LLDriver,
    replicas: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
) -> None:
    fail_both(chat_proxy, second_chat_proxy, faults.status(500))
    error = await failure(ll, router(replicas, num_retries=3), kind, InternalServerError)
    assert error.status_code == 500
    assert sum(sends(chat_proxy, second_chat_proxy).values()) == 1


@pytest.mark.parametrize("kind", ["complete", "stream"])
@pytest.mark.parametrize("failing", list(FAILING))
async def test_the_core_error_behind_a_router_failure_lists_the_sends_the_replicas_saw(
    ll: LLDriver,
    replicas: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
    failing: str,
) -> None:
    fault, litellm_class, expected = FAILING[failing]
    fail_both(chat_proxy, second_chat_proxy, fault)
    error = await failure(ll, router(replicas, num_retries=5), kind, litellm_class)
    cause = core_cause(error)
    assert isinstance(cause, ServerError)
    assert (cause.status_code, cause.loading) == (fault.code, fault == faults.LOADING)
    assert attempts_by_endpoint(cause.attempts) == sends(chat_proxy, second_chat_proxy)
    assert len(cause.attempts) == expected
    assert {(a.outcome, a.status) for a in cause.attempts} == {("ServerError", fault.code)}
    assert [a.resent for a in cause.attempts] == [True] * (expected - 1) + [False]
    assert cause.attempts[-1].endpoint == cause.endpoint


@pytest.mark.parametrize("fault", ["refuse", "reset"])
@pytest.mark.parametrize("kind", KINDS)
async def test_calls_the_router_routes_to_a_dead_replica_are_answered_by_the_other(
    ll: LLDriver,
    replicas: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
    fault: str,
) -> None:
    if fault == "refuse":
        chat_proxy.refuse()
    else:
        chat_proxy.inject(faults.RESET, times=None)
    target = router(replicas, num_retries=5)
    labels = deployment_labels(replicas)
    routed: Counter[str] = Counter()
    calls = 0
    # Shuffle routing picks each deployment sooner or later; every call must be answered.
    while calls < MAX_CALLS and min(routed[A], routed[B]) < CALLS_PER_DEPLOYMENT:
        calls += 1
        before = sends(chat_proxy, second_chat_proxy)
        answer = await call(ll, target, kind)
        if kind == "complete":
            assert answer.choices[0].message.content == PLAIN_ANSWER_TEXT
            assert answer._hidden_params["selfhosted"]["endpoint"] == B
            deployment = labels[answer._hidden_params["model_id"]]
        else:
            text = "".join(chunk.choices[0].delta.content or "" for chunk in answer)
            assert text == PLAIN_ANSWER_TEXT
            deployment = labels[answer[0]._hidden_params["model_id"]]
        routed[deployment] += 1
        after = sends(chat_proxy, second_chat_proxy)
        # B answered in one send; A saw the call only when the Router had routed it there
        assert after[B] - before[B] == 1
        if deployment == B or fault == "refuse":
            assert after[A] == before[A]
        else:
            # A's circuit may have ejected it by now: then the call skips it
            assert after[A] - before[A] in (0, HANG_UP_SENDS)
    assert min(routed[A], routed[B]) >= CALLS_PER_DEPLOYMENT, routed
    measured = sends(chat_proxy, second_chat_proxy)
    assert measured[B] == calls
    assert measured[A] <= HANG_UP_SENDS * routed[A]
    assert {seen.fault for seen in chat_proxy.seen} <= {faults.RESET}
