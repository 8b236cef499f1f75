"""A LangChain call as a core request: per-call arguments of the wrong shape are refused."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_selfhosted._request import build_request
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
