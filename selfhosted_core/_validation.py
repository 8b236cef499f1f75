"""Validation plumbing of the configuration: every problem reported at once, with its path."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import Self

from selfhosted_core.errors import ConfigurationError


class Problems(ValueError):
    """Several problems found by one validator, each with a path relative to the model."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


class Validated(BaseModel):
    """Every way of building the model reports problems as one `ConfigurationError`.

    The pydantic error is neither chained nor kept as context: it quotes input values, keys
    among them.
    """

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
            return
        except ValidationError as exc:
            problems = format_problems(exc.errors())
        # Raised outside the handler, so not even `__context__` keeps pydantic's error.
        raise ConfigurationError(problems)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate `obj` (a mapping); problems raise `ConfigurationError`."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            problems = format_problems(exc.errors())
        raise ConfigurationError(problems)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Validate a JSON document; problems raise `ConfigurationError`."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            problems = format_problems(exc.errors())
        raise ConfigurationError(problems)


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")


def check_header_value(value: str, name: str | None = None) -> None:
    """Refuse what HTTP cannot send; the message never repeats the (secret) value."""
    if not _HEADER_VALUE.fullmatch(value):
        what = f"header {name!r}" if name else "value"
        raise ValueError(f"{what} contains control or non-ASCII characters")


def format_problems(errors: list[ErrorDetails]) -> list[str]:
    problems: list[str] = []
    for error in errors:
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ConfigurationError):
            # A nested endpoint validated through its own __init__ (pydantic calls overridden
            # initialisers for nested models): its problems are relative to its path.
            problems.extend(f"{_path(error['loc'])}.{problem}" for problem in cause.problems)
        elif isinstance(cause, Problems):
            problems.extend(
                f"{_path((*error['loc'], *loc))}: {message}" for loc, message in cause.problems
            )
        elif isinstance(cause, ValueError):
            problems.append(f"{_path(error['loc'])}: {cause}")
        else:
            problems.append(f"{_path(error['loc'])}: {error['msg']}")
    return problems


def _path(loc: tuple[str | int, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "config"
