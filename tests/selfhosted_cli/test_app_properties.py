"""Properties of the command line: any argv ends with exit 0, or 2 (argparse's usage and one
`error:` line), or 1 with one `error:` line on stderr; never a traceback unless `--verbose`
asked for it, never an "unexpected" error, never a key.

Nothing leaves the machine and nothing is started: the commands' `Provider` talks to a fake
server, and the local servers are never prepared (`local up` and `demo` stop with an error
right there; `local down` finds nothing to stop). Everything runs in a scratch folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from selfhosted_cli import _app, _commands, _demo, _local
from selfhosted_cli._terminal import CommandError
from selfhosted_core import Config, Provider
from tests.cli_terminal import Run
from tests.core import payloads
from tests.core.harness import ENDPOINTS, FakeServer, Route, chat_reply
from tests.strategies import mostly, one_in

SECRET = ENDPOINTS[0]["api_key"]
FILES = {
    "good.yaml": yaml.safe_dump({"endpoints": ENDPOINTS, "routing": {"max_attempts": 1}}),
    "bad.yaml": "endpoints:\n  - {url: 'ftp://x', id: a, api_key: " + SECRET + "}\n",
    "broken.toml": "endpoints = [",
    "scalar.json": "42",
    "notes.ini": "[endpoints]",
}


def vectors(request: httpx2.Request) -> Route:
    texts = json.loads(request.content)["input"]
    data = [{"index": index, "embedding": [0.5, 0.5]} for index in range(len(texts))]
    return 200, json.dumps({"object": "list", "data": data}).encode(), {}


def not_prepared(*_: object) -> Path:
    raise CommandError("the local servers are not prepared in this test")


def never_started(*_: object) -> None:
    raise AssertionError("a test asked to start the local servers")


def never_stopped(pid: int) -> bool:
    raise AssertionError(f"a test asked to stop process {pid}")


@pytest.fixture(scope="module", autouse=True)
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A scratch folder as the working directory and cache, config files in it, a fake server."""
    folder = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    (folder / "folder.yaml").mkdir()
    server = FakeServer()
    server.on("GET", "/health", {"status": "ok"})
    server.on("GET", "/v1/models", payloads.LLAMA_MODELS)
    server.on("POST", "/v1/chat/completions", chat_reply)
    server.on("POST", "/v1/embeddings", vectors)
    transport = server.transport

    def provider(config: Config) -> Provider:
        return Provider(config, transport=transport, async_transport=transport)

    import selfhosted_core.local  # noqa: PLC0415 - numpy only for this module's tests

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name in ("SELFHOSTED_CONFIG", "SELFHOSTED_BASE_URL", "SELFHOSTED_MODEL"):
            patch.delenv(name, raising=False)
        patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        patch.setattr(_commands, "Provider", provider)
        # `_demo` holds its own names of `_local`'s functions (imported before this, by
        # another test, it would not see `_local`'s replaced).
        for module in (_local, _demo):
            patch.setattr(module, "prepare", not_prepared)
            patch.setattr(module, "start_stack", never_started)
        patch.setattr(selfhosted_core.local, "stop_detached", never_stopped)
        patch.setattr(sys, "stdin", io.StringIO("Hi from stdin"))
        yield


OPTIONS = [
    *("-c", "--config", "-v", "--verbose", "--timeout", "--json", "-m", "--model", "-s"),
    *("--system", "--max-tokens", "--temperature", "--endpoint", "--no-stream", "--replicas"),
    *("--dir", "-h", "--help", "-", "--", "--bogus", "-x", "--conf", "--max"),
]
VALUES = [
    *FILES,
    *("folder.yaml", "missing.yaml", "tiny", "minilm", "nope", "chat-a", "Hi", "5", "0", "-1"),
    *("nan", "inf", "1e309", "1.5", "abc", "", " ", "a\x00b", "x" * 300, "run", "{}", "é"),
]
# Arbitrary text, but never a path outside the scratch folder (`local up` creates its folder).
texts = st.text(max_size=12).filter(
    lambda text: not text.startswith(("/", "~")) and ".." not in text
)
values = st.one_of(st.sampled_from(VALUES), texts)
tokens = st.one_of(st.sampled_from(OPTIONS), values)
configs = mostly(st.just("good.yaml"), st.sampled_from([*FILES, "folder.yaml", "missing.yaml"]))

Option = tuple[str, st.SearchStrategy[str] | None]
COMMON: list[Option] = [("-v", None)]
SHAPES: dict[tuple[str, ...], tuple[list[Option], st.SearchStrategy[list[str]]]] = {
    ("check",): ([("--timeout", mostly(st.just("5"), values)), ("--json", None)], st.just([])),
    ("models",): ([("--json", None)], st.just([])),
    ("chat",): (
        [
            ("-m", mostly(st.just("tiny"), values)),
            ("-s", values),
            ("--max-tokens", mostly(st.just("16"), values)),
            ("--temperature", mostly(st.just("0.2"), values)),
            ("--endpoint", mostly(st.just("chat-a"), values)),
            ("--no-stream", None),
        ],
        st.lists(values, min_size=1, max_size=1),
    ),
    ("embed",): (
        [("-m", mostly(st.just("minilm"), values)), ("--json", None)],
        st.lists(values, min_size=1, max_size=3),
    ),
    ("local", "up"): ([("--replicas", values), ("--dir", values)], st.just([])),
    ("local", "down"): ([("--dir", values)], st.just([])),
    ("demo",): ([], st.just([])),
}


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    """A command line: mostly one command with some of its options, sometimes a stray token."""
    command = draw(st.sampled_from(sorted(SHAPES)))
    options, positionals = SHAPES[command]
    argv = list(command)
    chosen = draw(st.lists(st.sampled_from(options + COMMON), max_size=3, unique=True))
    for flag, value in chosen:
        argv += [flag] if value is None else [flag, draw(value)]
    if command[0] in ("check", "models", "chat", "embed") and draw(
        mostly(st.just(True), st.just(False))
    ):
        argv += ["-c", draw(configs)]
    argv += draw(positionals)
    if draw(one_in(3)):
        argv.insert(draw(st.integers(0, len(argv))), draw(tokens))
    return (
        argv if draw(mostly(st.just(True), st.just(False))) else draw(st.lists(tokens, max_size=6))
    )


ENDPOINT_REPORT = re.compile(r"^\S.* \(.*\) is (down|unauthorized|loading|ok): ")


def lines(text: str) -> list[str]:
    """The lines a terminal shows: only a line feed ends one (`splitlines` also splits on
    control characters such as `\\x1e`).
    """
    return text.removesuffix("\n").split("\n")


def verbose(argv: list[str]) -> bool:
    """Whether the command line asked for tracebacks, as the parser reads it."""
    with contextlib.suppress(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        return bool(_app._parser().parse_args(argv).verbose)
    return False


@given(argvs())
@example(["local", "up", "--replicas", "0"])
@example(["local", "down", "\n"])
@example(["chat", "-c", "a\x00b", "Hi"])
@example(["local", "down", "--dir", "a\x00b"])
@example(["chat", "-c", "good.yaml", "-m", "tiny", "--temperature", "nan", "Hi"])
def test_any_command_line_ends_in_an_exit_status_and_at_most_one_error_line(
    argv: list[str],
) -> None:
    run = Run()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status: Any = run(*argv)
        except SystemExit as exc:
            status = exc.code
    event(f"exit {status}")
    shown = run.out + run.err + stdout.getvalue() + stderr.getvalue()
    assert SECRET not in shown
    if status == 2:
        # argparse: its usage, then one line saying what is wrong.
        *_, last = lines(stderr.getvalue())
        assert re.match(r"^selfhosted( \w+)*: error: ", last), stderr.getvalue()
        assert stderr.getvalue().count(": error: ") == 1
        return
    assert status in (0, 1), status
    assert stderr.getvalue() == ""
    if status == 1:
        lines_ = lines(run.err)
        if verbose(argv):
            assert lines_[-1].startswith("error: ")
        elif not all(ENDPOINT_REPORT.match(line) for line in lines_):
            (line,) = lines_
            assert line.startswith("error: "), run.err
            assert "Traceback" not in run.err
            assert "unexpected" not in line, line
