"""Hypothesis strategies shared by the property tests: JSON, junk, and values near the valid.

Purely random values almost never get past the first check of a validator, so most strategies
mix the plausible (a field's valid values and its near misses) with the arbitrary.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities included: Python's JSON reads them
    st.text(max_size=20),
)
"""A JSON scalar as Python's `json` module gives it."""

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any parsed JSON document."""


class Opaque:
    """An object no serializer knows, as a caller's mistake may pass one."""

    def __repr__(self) -> str:
        return "Opaque()"


junk: st.SearchStrategy[Any] = st.one_of(
    json_values,
    st.binary(max_size=8),
    st.tuples(json_scalars),
    st.frozensets(st.integers(), max_size=3),
    st.builds(Opaque),
    st.complex_numbers(),
)
"""What a Python caller might pass where anything is expected: JSON, and what JSON cannot hold."""


def near(*valid: Any, arbitrary: st.SearchStrategy[Any] = junk) -> st.SearchStrategy[Any]:
    """One of `valid` (near misses among them), or as often anything `arbitrary` draws."""
    return st.one_of(st.sampled_from(valid), arbitrary)


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about one time in `n`.

    Hypothesis favours the simplest values: the bounds of `st.integers`, the first elements of
    `st.sampled_from`. So the rare value comes last here.
    """
    return st.sampled_from([False] * (n - 1) + [True])


def mostly(
    valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = junk, *, rarity: int = 4
) -> st.SearchStrategy[Any]:
    """`valid`, but one time in `rarity` `bad`: most examples get past the first check."""
    return one_in(rarity).flatmap(lambda broken: bad if broken else valid)


def secrets() -> st.SearchStrategy[str]:
    """Key-like text long enough that a message showing it is not a coincidence."""
    return st.text(min_size=6, max_size=24).map(lambda text: f"sk-{text}")


# --- OpenAI's chat request JSON ------------------------------------------------------------------

_names = near("get_weather", "now", "", arbitrary=st.text(max_size=10) | junk)

_arguments = st.one_of(
    st.sampled_from(
        [
            '{"city": "Paris"}',
            "{}",
            "",
            " ",
            "[1]",
            "null",
            '{"a": ',
            "[" * 2_000,
            '{"a": ' + "1" * 5_000 + "}",
        ]
    ),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    st.text(max_size=20),
    junk,
)

openai_tool_calls: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries(
        {"function": st.fixed_dictionaries({"name": _names}, optional={"arguments": _arguments})},
        optional={"id": near("call_1", "", None), "type": near("function", "web_search")},
    ),
    junk,
)

openai_parts: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": near("Hi", "")}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.one_of(
                st.fixed_dictionaries(
                    {"url": near("https://x/cat.png", "data:image/png;base64,AA==")},
                    optional={"detail": near("auto", "low", "high", "max")},
                ),
                near("https://x/cat.png"),
            ),
        }
    ),
    st.fixed_dictionaries(
        {"type": near("input_audio", "file", "video", "refusal", "thinking", "tool_use", "")},
        optional={"text": junk},
    ),
    junk,
)

openai_messages_one: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries(
        {"role": near("system", "developer", "user", "assistant", "tool", "function", "")},
        optional={
            "content": st.one_of(near("Hi", "", None), st.lists(openai_parts, max_size=3)),
            "name": near("ann", None),
            "tool_calls": st.lists(openai_tool_calls, max_size=2) | junk,
            "tool_call_id": near("call_1", None),
            "reasoning_content": near("thought", None),
            "reasoning": near("thought", None),
        },
    ),
    junk,
)

openai_messages: st.SearchStrategy[Any] = st.one_of(
    st.lists(openai_messages_one, max_size=4),
    st.tuples(openai_messages_one),
    junk,
)
"""A chat request's `messages` as a caller may send it: mostly OpenAI's shape, often not."""

openai_tools: st.SearchStrategy[Any] = st.one_of(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "type": near("function", "web_search"),
                    "function": st.one_of(
                        st.fixed_dictionaries(
                            {"name": _names},
                            optional={
                                "description": near("Weather", None),
                                "parameters": near({"type": "object", "properties": {}}, None),
                                "strict": near(True, False, None),
                            },
                        ),
                        junk,
                    ),
                }
            ),
            junk,
        ),
        max_size=3,
    ),
    st.none(),
    junk,
)

openai_tool_choices: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["auto", "none", "required", "any", None]),
    st.fixed_dictionaries(
        {"type": near("function"), "function": st.fixed_dictionaries({"name": _names}) | junk}
    ),
    junk,
)

openai_response_formats: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.fixed_dictionaries({"type": near("text", "json_object", "json_schema", "xml")}),
    st.fixed_dictionaries(
        {
            "type": st.just("json_schema"),
            "json_schema": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": near("Person"),
                        "schema": near({"type": "object"}, {}, None),
                        "strict": near(True, None),
                        "description": near("A person", None),
                    },
                ),
                junk,
            ),
        }
    ),
    junk,
)
