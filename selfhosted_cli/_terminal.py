"""Where the command writes, and the error a command raises for a mistake on its command line."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

__all__ = ["CommandError", "Terminal"]


class CommandError(Exception):
    """A problem with how the command was called; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Terminal:
    """Results go to `out` (stdout), progress, usage and errors to `err` (stderr).

    Keeping them apart means `selfhosted chat ... > answer.txt` captures only the answer.
    """

    out: Console
    err: Console
    verbose: bool = False

    @classmethod
    def standard(cls, *, verbose: bool = False) -> Terminal:
        """Consoles on the process's stdout and stderr."""
        return cls(Console(highlight=False), Console(stderr=True, highlight=False), verbose)
