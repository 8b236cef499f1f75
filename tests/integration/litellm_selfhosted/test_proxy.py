"""End to end: the real LiteLLM proxy loads `litellm_selfhosted.handler` from the installed
package, and the openai SDK talks to the proxy: chat, stream, tools, embeddings, errors."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from litellm_selfhosted import proxy_config
from selfhosted_core import Config
from selfhosted_core.local import PLAIN_ANSWER_TEXT
from tests.integration.litellm_selfhosted.proxy_server import LiteLLMProxy

pytestmark = pytest.mark.timeout(240)

HELLO: list[Any] = [{"role": "user", "content": "Hello"}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def endpoints_file(config: Config, path: Path) -> Path:
    """The config as the YAML file an operator writes, keys included."""
    endpoints = []
    for endpoint in config.endpoints:
        data = endpoint.model_dump(mode="json", exclude_none=True, exclude={"headers"})
        if endpoint.api_key is not None:
            data["api_key"] = endpoint.api_key.get_secret_value()
        endpoints.append(data)
    path.write_text(yaml.safe_dump({"endpoints": endpoints}))
    return path


@pytest.fixture(scope="module")
def proxy(
    litellm_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiteLLMProxy]:
    folder = tmp_path_factory.mktemp("proxy")
    endpoints = endpoints_file(litellm_config, folder / "endpoints.yaml")
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(proxy_config(litellm_config, config_path=endpoints)))
    with LiteLLMProxy(config_path) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: LiteLLMProxy) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=proxy.master_key) as sdk:
        yield sdk


def test_handler_is_imported_from_the_installed_package(proxy: LiteLLMProxy) -> None:
    spec = importlib.util.find_spec("litellm_selfhosted")
    assert spec is not None
    assert spec.origin is not None
    assert Path(spec.origin).parent.name == "litellm_selfhosted"
    assert not (proxy.log_path.parent / "litellm_selfhosted.py").exists()


def test_models_are_listed(client: openai.OpenAI) -> None:
    listed = {model.id for model in client.models.list()}
    assert {"tiny", "minilm", "tiny-big"} <= listed


def test_chat_through_the_proxy(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="tiny", messages=HELLO)
    assert response.choices[0].message.content == PLAIN_ANSWER_TEXT
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens > 0


def test_stream_through_the_proxy(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == PLAIN_ANSWER_TEXT
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert usage
    assert usage[-1].completion_tokens > 0


def test_tool_call_through_the_proxy(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="tiny", messages=HELLO, tools=[WEATHER])
    calls = response.choices[0].message.tool_calls
    assert calls is not None
    (call,) = calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "a"}


def test_streamed_tool_call_through_the_proxy(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny", messages=HELLO, tools=[WEATHER], stream=True
    )
    names, arguments = [], ""
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta.function and delta.function.name:
                names.append(delta.function.name)
            if delta.function and delta.function.arguments:
                arguments += delta.function.arguments
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"city": "a"}


@pytest.mark.parametrize("encoding", ["float", "base64", None])
def test_embeddings_through_the_proxy(client: openai.OpenAI, encoding: Any) -> None:
    """The SDK asks for base64 when no format is given, and decodes it."""
    texts = ["one text", "another"]
    if encoding is None:
        response = client.embeddings.create(model="minilm", input=texts)
    else:
        response = client.embeddings.create(model="minilm", input=texts, encoding_format=encoding)
    assert [item.index for item in response.data] == [0, 1]
    assert all(len(item.embedding) == 384 for item in response.data)
    reference = client.embeddings.create(model="minilm", input=texts, encoding_format="float")
    for got, expected in zip(response.data, reference.data, strict=True):
        assert got.embedding == pytest.approx(expected.embedding, abs=1e-6)


def test_embedding_dimensions_are_refused_not_ignored(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="minilm", input=["text"], dimensions=128)
    assert "dimensions" in str(caught.value)


def test_context_overflow_comes_back_as_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="tiny-big", messages=[{"role": "user", "content": "word " * 1200}]
        )
    assert "exceeds the available context size" in str(caught.value)
