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
    """Mostly one of `valid`, sometimes anything."""
    return st.one_of(st.sampled_from(valid), arbitrary)


def secrets() -> st.SearchStrategy[str]:
    """Key-like text long enough that a message showing it is not a coincidence."""
    return st.text(min_size=6, max_size=24).map(lambda text: f"sk-{text}")
