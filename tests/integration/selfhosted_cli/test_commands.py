"""`selfhosted check|models|chat|embed` against the real local llama-servers."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfhosted_core import Config, EmbeddingRequest, Provider
from selfhosted_core.local import PLAIN_ANSWER_TEXT
from tests.cli_terminal import Run
from tests.integration.conftest import API_KEY


def write(tmp_path: Path, config: Config, *extra: dict[str, Any]) -> str:
    endpoints = [
        endpoint.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        | ({"api_key": endpoint.api_key.get_secret_value()} if endpoint.api_key else {})
        for endpoint in config.endpoints
    ]
    path = tmp_path / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"endpoints": [*endpoints, *extra]}))
    return str(path)


def row(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if f"│ {label} " in line)


def test_check_shows_every_endpoint_ok(tmp_path: Path, config: Config) -> None:
    run = Run()
    assert run("check", "-c", write(tmp_path, config)) == 0
    chat = row(run.out, "local-chat")
    for cell in ("tiny", config.endpoints[0].api_base, "llama.cpp b", "ok", " ms", "2,048"):
        assert cell in chat
    assert "minilm" in run.out
    assert run.err == ""
    assert API_KEY not in run.out


def test_check_fails_on_a_refused_key_and_a_dead_endpoint(tmp_path: Path, config: Config) -> None:
    wrong_key = "sk-wrong-key-never-shown"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    path = write(
        tmp_path,
        config,
        {"url": config.endpoints[0].url, "id": "keyed", "label": "bad-key", "api_key": wrong_key},
        {"url": dead, "id": "gone", "label": "dead"},
    )
    run = Run()
    assert run("check", "-c", path) == 1
    assert "unauthorized" in row(run.out, "bad-key")
    assert "down" in row(run.out, "dead")
    assert "ok" in row(run.out, "local-chat")
    assert "bad-key (" in run.err
    assert f"dead ({dead}/v1) is down" in run.err
    assert wrong_key not in run.out + run.err


def test_check_warns_about_an_unlisted_model_without_failing(
    tmp_path: Path, config: Config
) -> None:
    served = config.endpoints[0]
    path = write(
        tmp_path,
        config,
        {"url": served.url, "id": "not-served", "label": "odd", "api_key": API_KEY},
    )
    run = Run()
    assert run("check", "-c", path) == 0
    assert "ok" in row(run.out, "odd")
    assert f"odd ({served.api_base}) is ok: server does not list 'not-served' (lists: tiny)" in (
        run.err
    )


def test_check_json(tmp_path: Path, config: Config) -> None:
    run = Run()
    assert run("check", "-c", write(tmp_path, config), "--json") == 0
    report = json.loads(run.out)
    assert [(e["endpoint"], e["status"], e["server"]) for e in report] == [
        ("local-chat", "ok", "llama.cpp"),
        ("minilm@" + config.endpoints[1].url.removeprefix("http://"), "ok", "llama.cpp"),
    ]
    assert report[0]["version"].startswith("b")


@pytest.mark.parametrize("flags", [[], ["--no-stream"]])
def test_chat_prints_the_answer_then_usage(
    tmp_path: Path, config: Config, flags: list[str]
) -> None:
    run = Run()
    assert run("chat", "-c", write(tmp_path, config), "-m", "tiny", "Hello", *flags) == 0
    assert run.out == PLAIN_ANSWER_TEXT + "\n"
    assert run.err.startswith("tiny via local-chat · ")
    assert "completion = " in run.err
    assert "finish: stop" in run.err


def test_embed_json_equals_the_core(tmp_path: Path, config: Config) -> None:
    run = Run()
    assert run("embed", "-c", write(tmp_path, config), "--json", "first", "second") == 0
    printed = json.loads(run.out)
    with Provider(config) as provider:
        vectors = provider.embed(EmbeddingRequest(model="minilm", input=["first", "second"]))
    assert printed["model"] == "minilm"
    assert len(printed["embeddings"]) == 2
    for shown, direct in zip(printed["embeddings"], vectors.embeddings, strict=True):
        assert shown == pytest.approx(direct, abs=1e-6)


def test_embed_table_and_similarities(tmp_path: Path, config: Config) -> None:
    run = Run()
    assert run("embed", "-c", write(tmp_path, config), "a cat", "a kitten", "tax law") == 0
    assert "│ 384 │ 1.000 │" in row(run.out, "1")
    similarities = row(run.out.split("cosine similarity")[1], "a cat").split("│")
    cat_kitten, cat_tax = float(similarities[3]), float(similarities[4])
    assert cat_kitten > cat_tax
