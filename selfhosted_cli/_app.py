"""The parser, and `main`: run one command, turn every failure into one line on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.markup import escape

from selfhosted_cli._terminal import CommandError, Terminal
from selfhosted_core import SelfHostedError

if TYPE_CHECKING:
    from rich.traceback import Trace, Traceback

__all__ = ["main"]

Command = Callable[[argparse.Namespace, Terminal], int]

_INTERRUPTED = 130
_DISTRIBUTION = "selfhosted-llm"
"""The name this package is installed under (`pip install selfhosted-llm`)."""
_EXPECTED = (SelfHostedError, CommandError, OSError)


def main(argv: list[str] | None = None, *, terminal: Terminal | None = None) -> int:
    """Run the `selfhosted` command line; returns the exit status.

    A failure is one line on stderr saying what failed, where, and what to do; `--verbose`
    adds the traceback.

    Args:
        argv: The arguments (default: the process's own).
        terminal: Where to write (default: stdout and stderr).

    Example:
        >>> from selfhosted_cli import main
        >>> main(["models", "-c", "endpoints.yaml"])  # doctest: +SKIP
        0
    """
    args = _parser().parse_args(argv)
    if terminal is None:
        term = Terminal.standard(verbose=args.verbose)
    else:
        term = dataclasses.replace(terminal, verbose=args.verbose)
    run: Command = args.run
    try:
        return run(args, term)
    except BrokenPipeError:
        # The reader went away (`selfhosted chat ... | head`): stop quietly, exit 1 as rich's
        # own broken-pipe handling does for what it prints (Python's docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        term.err.print("interrupted")
        return _INTERRUPTED
    except Exception as exc:
        _report(term, exc)
        return 1


def _report(term: Terminal, exc: Exception) -> None:
    from selfhosted_cli._views import describe_error  # noqa: PLC0415 - keeps --help fast

    if term.verbose:
        term.err.print(_traceback(term, exc))
    # A framework's error (LiteLLM's, in the demo) wraps ours: ours says more.
    cause = exc.__cause__
    known = exc if isinstance(exc, _EXPECTED) else cause if isinstance(cause, _EXPECTED) else None
    if known is not None:
        line = describe_error(known)
    elif isinstance(exc, ImportError):
        line = f"{exc} — install what this command needs: pip install 'selfhosted-llm[all]'"
    else:
        line = f"unexpected {type(exc).__name__}: {describe_error(exc)} — run with --verbose"
    term.err.print(f"[bold red]error:[/] {escape(term.redact(line))}", soft_wrap=True)


def _traceback(term: Terminal, exc: BaseException) -> Traceback:
    """The traceback of `exc` and its chain, each message redacted.

    A message may quote a secret: the server's text, or httpx's complaint about a header value.
    Redacting before rendering keeps the secret whole, so rich's colours cannot split it.
    """
    from rich.traceback import Traceback  # noqa: PLC0415 - pygments stays off the fast path

    trace = Traceback.extract(type(exc), exc, exc.__traceback__)
    _redact_trace(term, trace)
    return Traceback(trace)


def _redact_trace(term: Terminal, trace: Trace) -> None:
    for stack in trace.stacks:
        stack.exc_value = term.redact(stack.exc_value)
        stack.notes = [term.redact(note) for note in stack.notes]
        for group in stack.exceptions:
            _redact_trace(term, group)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose error stays one line whatever the arguments it quotes hold.

    Its subcommands' parsers are of this class too (argparse makes them of the parent's).
    """

    def error(self, message: str) -> NoReturn:
        """Print the usage and the error, control characters (a newline) shown escaped."""
        printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        super().error(printable)


class _Version(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> NoReturn:
        # On stdout, as argparse's own `version` action prints it.
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit()


def _version() -> str:
    """The version of the installed `selfhosted-llm` distribution, from its metadata."""
    from importlib.metadata import PackageNotFoundError  # noqa: PLC0415 - keeps --help fast
    from importlib.metadata import version as installed  # noqa: PLC0415

    try:
        return installed(_DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed: run `pip install -e .` in the checkout)"


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="show the traceback of a failure",
    )  # fmt: skip
    with_config = _Parser(add_help=False, parents=[common])
    with_config.add_argument(
        "-c", "--config", type=Path, default=None,
        help="endpoints file (default: $SELFHOSTED_CONFIG, else what `local up` wrote)",
    )  # fmt: skip

    parser = _Parser(
        prog="selfhosted",
        description="Check, list and call self-hosted OpenAI-compatible servers.",
        parents=[common],
    )
    parser.add_argument(
        "--version", action=_Version, help="print the installed version of selfhosted-llm"
    )
    parser.set_defaults(verbose=False)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser("check", parents=[with_config], help="health of every endpoint")
    check.add_argument(
        "--timeout", type=_positive, default=5.0,
        help="seconds for each request of the check (default 5); endpoints are checked at once",
    )  # fmt: skip
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.set_defaults(run=_lazy("_commands", "check"))

    stats = commands.add_parser(
        "stats", parents=[with_config], help="every endpoint's stats, live (Ctrl-C stops)"
    )
    stats.add_argument(
        "--interval", type=_positive, default=2.0,
        help="seconds between refreshes (default 2; with -c, each health-checks every endpoint)",
    )  # fmt: skip
    stats.add_argument(
        "--count", type=_at_least_one, default=None,
        help="stop after this many refreshes (1: print the table once)",
    )  # fmt: skip
    stats.add_argument(
        "--url", default=None,
        help="read a serving process's stats from its /metrics (serve_metrics) instead",
    )  # fmt: skip
    stats.add_argument(
        "--timeout", type=_positive, default=5.0, help="seconds for each request (default 5)"
    )
    stats.set_defaults(run=_lazy("_commands", "stats"))

    models = commands.add_parser("models", parents=[with_config], help="the configured models")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(run=_lazy("_commands", "models"))

    chat = commands.add_parser("chat", parents=[with_config], help="send one prompt")
    chat.add_argument("prompt", help="the user message; - reads it from stdin")
    chat.add_argument("-m", "--model", help="model id (default: the only chat model)")
    chat.add_argument("-s", "--system", help="a system message")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument(
        "--endpoint", help="send to this replica only (label or URL); no sibling stands in"
    )
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.set_defaults(run=_lazy("_commands", "chat"))

    embed = commands.add_parser("embed", parents=[with_config], help="embed texts")
    embed.add_argument("texts", nargs="+", metavar="TEXT")
    embed.add_argument("-m", "--model", help="model id (default: the only embedding model)")
    embed.add_argument("--json", action="store_true", help="print the vectors as JSON")
    embed.set_defaults(run=_lazy("_commands", "embed"))

    local = commands.add_parser(
        "local", parents=[common], help="run the embedded servers (llama-server or vLLM)"
    )
    actions = local.add_subparsers(required=True, metavar="ACTION")
    up = actions.add_parser("up", parents=[common], help="start them (detached)")
    up.add_argument("--replicas", type=_at_least_one, default=1, help="chat replicas (default 1)")
    up.add_argument(
        "--server",
        choices=("llama.cpp", "vllm"),
        default="llama.cpp",
        help="which server runs the models (default llama.cpp; vllm installs vLLM once)",
    )
    up.set_defaults(run=_lazy("_local", "local_up"))
    down = actions.add_parser("down", parents=[common], help="stop what `local up` started")
    down.set_defaults(run=_lazy("_local", "local_down"))
    for action in (up, down):
        action.add_argument(
            "--dir", type=_folder, default=None, help="state folder (default: <cache>/run)"
        )

    demo = commands.add_parser(
        "demo", parents=[common], help="the whole product on local servers, end to end"
    )
    demo.set_defaults(run=_lazy("_demo", "demo"))
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _at_least_one(text: str) -> int:
    # Checked here, not by the servers: `local up` would otherwise build llama-server first.
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _folder(text: str) -> Path:
    if "\x00" in text:
        raise argparse.ArgumentTypeError(f"no folder can be named {text!r} (a NUL character)")
    return Path(text)


def _lazy(module: str, name: str) -> Command:
    """The command `name` of `selfhosted_cli.<module>`, imported only when it runs."""

    def run(args: argparse.Namespace, term: Terminal) -> int:
        from importlib import import_module  # noqa: PLC0415

        command: Command = getattr(import_module(f"selfhosted_cli.{module}"), name)
        return command(args, term)

    return run
