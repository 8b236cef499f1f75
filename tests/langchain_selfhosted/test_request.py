"""A LangChain call as a core request: per-call arguments of the wrong shape are refused."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableLambda

from langchain_selfhosted._request import build_request, run_affinity
from selfhosted_core import InvalidRequestError
from selfhosted_core._request import validate_chat


def request(*, stop: Any = None, **options: Any) -> None:
    validate_chat(
        build_request(
            [HumanMessage(content="Hi")],
            model="tiny",
            defaults={},
            stop=stop,
            extra_body=None,
            timeout=None,
            options=options,
        )
    )


def test_a_call_body_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"^extra_body must be a mapping, not bytes "):
        request(extra_body=b"\x00")


def test_stop_sequences_that_are_not_a_list_are_refused() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        request(stop=5)
    assert caught.value.message == "stop must be a list, not int 5"


def affinity_of(**options: Any) -> str | None:
    return build_request(
        [HumanMessage(content="Hi")],
        model="tiny",
        defaults={},
        stop=None,
        extra_body=None,
        timeout=None,
        options=options,
        affinity=run_affinity(options.pop("metadata", None)),
    ).affinity


def test_a_runs_thread_id_in_its_configurable_names_its_affinity() -> None:
    chain: RunnableLambda[None, str | None] = RunnableLambda(lambda _: affinity_of())
    assert chain.invoke(None, config={"configurable": {"thread_id": "t1"}}) == "t1"


def test_metadata_names_the_affinity_when_configurable_does_not() -> None:
    assert affinity_of(metadata={"session_id": "s1"}) == "s1"
    assert affinity_of(metadata={"thread_id": 7}) == "7"
    assert affinity_of(metadata={"thread_id": True}) is None
    assert affinity_of() is None


def test_a_per_call_affinity_wins_over_the_runs() -> None:
    chain: RunnableLambda[None, str | None] = RunnableLambda(lambda _: affinity_of(affinity="mine"))
    assert chain.invoke(None, config={"configurable": {"thread_id": "t1"}}) == "mine"
