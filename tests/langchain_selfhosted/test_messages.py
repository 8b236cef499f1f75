"""LangChain messages as core messages: malformed content blocks are refused naming their place."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_selfhosted._messages import to_core_messages
from selfhosted_core import ImagePart, InvalidRequestError, Message


def refusal(*blocks: Any) -> str:
    conversation = [SystemMessage(content="Be brief."), HumanMessage(content=list(blocks))]
    with pytest.raises(InvalidRequestError) as caught:
        to_core_messages(conversation, model="tiny")
    assert caught.value.model == "tiny"
    return caught.value.message


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"type": "text", "text": 5},
            "messages[1].content[0]: a text block's text must be a string, not int",
        ),
        (
            {"type": "image", "base64": "iVBORw0KGgo="},
            "messages[1].content: mime_type key is required for base64 data.",
        ),
        (
            {"type": "image"},
            "messages[1].content: Unrecognized content block at messages[1].content[0] has "
            "'type': 'image' but does not have a 'source' or 'image' key.",
        ),
        (
            {"type": "image_url", "image_url": {"url": 5}},
            "messages[1].content[0]: an image_url block needs a URL string and a detail of "
            "auto, low or high (or none), not {'url': 5}",
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "max"}},
            "messages[1].content[0]: an image_url block needs a URL string and a detail of "
            "auto, low or high (or none), not {'url': 'https://x/cat.png', 'detail': 'max'}",
        ),
    ],
)
def test_a_malformed_block_is_refused_naming_its_place(block: dict[str, Any], message: str) -> None:
    assert refusal(block) == message


def test_an_image_url_block_takes_a_bare_url_or_a_url_and_detail() -> None:
    blocks: list[str | dict[str, Any]] = [
        {"type": "image_url", "image_url": "https://x/a.png"},
        {"type": "image_url", "image_url": {"url": "https://x/b.png", "detail": "low"}},
    ]
    assert to_core_messages([HumanMessage(content=blocks)], model="tiny") == [
        Message(
            role="user",
            content=[ImagePart("https://x/a.png"), ImagePart("https://x/b.png", "low")],
        )
    ]
