"""The command line never prints an endpoint's secrets: not in tables or JSON, not in the one
error line, not in `--verbose` tracebacks, even when a server quotes the credentials back.

The servers are threads on 127.0.0.1 (`tests/secrets_canary.EchoServer`): the command builds
its own `Provider` from the config file, so there is no transport to inject.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_terminal import Run
from tests.secrets_canary import (
    HEADER,
    KEY,
    Answer,
    EchoServer,
    answer_echo,
    answer_ok,
    assert_hidden,
    assert_sent,
    chat_endpoint,
    echo_error,
    echo_stream,
    embedding_endpoint,
    sse_requested,
)

Respond = Callable[[str, str, Mapping[str, str], bytes], Answer]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def servers() -> Iterator[Callable[[Respond], EchoServer]]:
    """Start echo servers on demand; all are closed after the test."""
    started: list[EchoServer] = []

    def start(answer: Respond) -> EchoServer:
        started.append(EchoServer(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def config_file(tmp_path: Path, *endpoints: dict[str, Any]) -> str:
    path = tmp_path / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"endpoints": list(endpoints)}))
    assert KEY in path.read_text()  # the file holds the secrets the output must not
    return str(path)


def run(*argv: str) -> tuple[int, str]:
    """Run the command; its exit status, and stdout and stderr together."""
    terminal = Run()
    status = terminal(*argv)
    return status, terminal.out + terminal.err


VERBOSITY = pytest.mark.parametrize("verbose", [[], ["--verbose"]], ids=["plain", "verbose"])


@VERBOSITY
@pytest.mark.parametrize(
    "command",
    [["models"], ["models", "--json"], ["check"], ["check", "--json"]],
    ids=["models", "models-json", "check", "check-json"],
)
def test_models_and_check_never_print_secrets(
    servers: Callable[[Respond], EchoServer],
    tmp_path: Path,
    command: list[str],
    verbose: list[str],
) -> None:
    server = servers(answer_ok)
    path = config_file(tmp_path, chat_endpoint(server.url), embedding_endpoint(server.url))
    status, output = run(*command, "-c", path, *verbose)
    assert status == 0, output
    assert "tiny" in output
    if command[0] == "check":
        assert_sent(server.seen[0])
    assert_hidden(output, " ".join(command))


def health_quoting_the_secrets(
    method: str, path: str, headers: Mapping[str, str], body: bytes
) -> Answer:
    """Loading (503) on /health, saying so with the credentials it was sent."""
    return 503, {"content-type": "application/json"}, echo_error(headers)


@VERBOSITY
@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["table", "json"])
def test_check_of_servers_quoting_the_secrets_never_prints_them(
    servers: Callable[[Respond], EchoServer],
    tmp_path: Path,
    as_json: list[str],
    verbose: list[str],
) -> None:
    loading = servers(health_quoting_the_secrets)
    refusing = servers(answer_echo(401))
    path = config_file(
        tmp_path, chat_endpoint(loading.url), chat_endpoint(refusing.url, label="chat-b")
    )
    status, output = run("check", "-c", path, *as_json, *verbose)
    assert status == 1, output  # one endpoint refuses its key
    assert "loading" in output
    assert "unauthorized" in output
    assert_sent(loading.seen[0])
    assert_hidden(output, "check")


def chat_failing(case: str) -> Respond:
    def answer(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if case == "stream-error" and sse_requested(body):
            return 200, {"content-type": "text/event-stream"}, echo_stream(headers)
        return 401, {"content-type": "application/json"}, echo_error(headers)

    return answer


@VERBOSITY
@pytest.mark.parametrize(
    "command",
    [
        ["chat", "--no-stream", "Hi"],
        ["chat", "Hi"],
        ["embed", "-m", "minilm", "a text"],
    ],
    ids=["chat", "chat-stream", "embed"],
)
def test_an_endpoint_quoting_the_secrets_back_is_never_printed(
    servers: Callable[[Respond], EchoServer],
    tmp_path: Path,
    command: list[str],
    verbose: list[str],
) -> None:
    server = servers(chat_failing("401"))
    path = config_file(tmp_path, chat_endpoint(server.url), embedding_endpoint(server.url))
    status, output = run(*command, "-c", path, *verbose)
    assert status == 1, output
    assert "HTTP 401" in output
    assert "check the endpoint's `api_key`" in output
    if verbose:
        assert "Traceback" in output
    assert_sent(server.seen[0])
    assert_hidden(output, " ".join(command))


@VERBOSITY
def test_a_stream_error_event_quoting_the_secrets_is_never_printed(
    servers: Callable[[Respond], EchoServer], tmp_path: Path, verbose: list[str]
) -> None:
    server = servers(chat_failing("stream-error"))
    path = config_file(tmp_path, chat_endpoint(server.url))
    status, output = run("chat", "-c", path, "Hi", *verbose)
    assert status == 1, output
    assert "Partial" in output  # what arrived before the error stays printed
    assert "error event in stream" in output
    assert_sent(server.seen[0])
    assert_hidden(output, "chat")


@VERBOSITY
def test_an_unreachable_endpoint_never_prints_secrets(tmp_path: Path, verbose: list[str]) -> None:
    path = config_file(tmp_path, chat_endpoint(f"http://127.0.0.1:{closed_port()}"))
    status, output = run("chat", "-c", path, "Hi", *verbose)
    assert status == 1, output
    assert "is the server running?" in output
    assert_hidden(output, "chat")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_the_terminal_never_shows_what_it_hides() -> None:
    terminal = Run().terminal
    terminal.hide([KEY, HEADER])
    assert terminal.redact(f"Bearer {KEY} {HEADER}") == "Bearer [redacted] [redacted]"
    assert_hidden(f"{terminal!r} {terminal}", "repr of the terminal")


def test_a_config_file_yaml_error_never_prints_the_key(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        f"endpoints:\n  - url: http://127.0.0.1:1\n    id: tiny\n    api_key: {KEY}: x\n"
    )
    status, output = run("models", "-c", str(path))
    assert status == 1
    assert "invalid YAML" in output
    assert_hidden(output, "the YAML error")
