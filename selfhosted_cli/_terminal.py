"""Where the command writes, and the error a command raises for a mistake on its command line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console

from selfhosted_core._status import redact

__all__ = ["CommandError", "Terminal"]


class CommandError(Exception):
    """A problem with how the command was called; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Terminal:
    """Results go to `out` (stdout), progress, usage and errors to `err` (stderr).

    Keeping them apart means `selfhosted chat ... > answer.txt` captures only the answer.
    `hidden` holds the secrets of the loaded config: whatever a server or a library quotes
    back of them is redacted before it is printed.
    """

    out: Console
    err: Console
    verbose: bool = False
    # Never in a repr (that would print the secrets), nor in equality.
    hidden: set[str] = field(default_factory=set, repr=False, compare=False)

    @classmethod
    def standard(cls, *, verbose: bool = False) -> Terminal:
        """Consoles on the process's stdout and stderr."""
        return cls(Console(highlight=False), Console(stderr=True, highlight=False), verbose)

    def hide(self, secrets: Iterable[str]) -> None:
        """Never print these (an endpoint's key and header values) from now on."""
        self.hidden.update(secret for secret in secrets if secret)

    def redact(self, text: str) -> str:
        """`text` with every hidden secret replaced by `[redacted]`."""
        return redact(text, self.hidden)
