from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from selfhosted_core import Capability, Config, ConfigurationError, ModelEndpoint, RoutingPolicy

CHAT = {"url": "http://gpu-1:8080", "id": "qwen3"}
EMBED = {
    "url": "http://gpu-1:8081",
    "id": "minilm",
    "capabilities": ["embedding"],
    "dimension": 384,
}


def problems(**data: object) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        Config(**data)
    return caught.value.problems


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    found = problems(
        endpoints=[
            {"url": "ftp://x", "id": " ", "capabilities": ["chat", "tools"]},
            {"url": "http://a:1", "id": "e", "capabilities": ["embedding"]},
            {"url": "http://a:2", "id": "c", "token_modifier": -1, "dimension": 3},
        ]
    )
    assert found == [
        "endpoints[0].url: must be an http(s) URL with a host, got 'ftp://x'",
        "endpoints[0].id: must not be empty",
        "endpoints[0].capabilities: unknown capability 'tools'; known: chat, embedding, "
        "function_call, reasoning, structured_output, vision",
        "endpoints[1].dimension: required for an embedding model",
        "endpoints[2].token_modifier: must be a finite number >= 0",
    ]


def test_dimension_only_with_embedding_and_positive() -> None:
    assert problems(endpoints=[{**CHAT, "dimension": 8}]) == [
        "endpoints[0].dimension: only allowed with the 'embedding' capability"
    ]
    assert problems(endpoints=[{**EMBED, "dimension": 0}]) == [
        "endpoints[0].dimension: must be > 0"
    ]


def test_context_window_is_optional_positive_and_may_differ_between_replicas() -> None:
    assert ModelEndpoint(**CHAT).context_window is None
    config = Config(
        endpoints=[
            {**CHAT, "context_window": 8192},
            {**CHAT, "url": "http://gpu-2:8080", "context_window": 4096},
        ]
    )
    assert [endpoint.context_window for endpoint in config.endpoints] == [8192, 4096]
    assert problems(
        endpoints=[
            {**CHAT, "context_window": 0},
            {**CHAT, "url": "http://gpu-2:8080", "context_window": -1},
            {**CHAT, "url": "http://gpu-3:8080", "context_window": True},
        ]
    ) == [
        "endpoints[0].context_window: must be > 0",
        "endpoints[1].context_window: must be > 0",
        "endpoints[2].context_window: must be an integer",
    ]


def test_at_least_one_endpoint() -> None:
    assert problems(endpoints=[]) == ["endpoints: at least one endpoint is required"]


def test_replicas_must_agree_and_not_repeat() -> None:
    found = problems(
        endpoints=[
            EMBED,
            {**EMBED, "url": "http://gpu-2:8081", "dimension": 768},
            {**EMBED, "url": "http://gpu-1:8081/v1/"},
        ]
    )
    assert found == [
        "endpoints[1].dimension: differs from replica endpoints[0] of model 'minilm'",
        "endpoints[2]: duplicates endpoints[0] (same id and url)",
    ]


def test_credentials_in_url_are_refused() -> None:
    assert problems(endpoints=[{**CHAT, "url": "http://user:pw@gpu:8080"}]) == [
        "endpoints[0].url: must not embed credentials; use api_key or headers"
    ]


def test_zero_token_modifier_means_one() -> None:
    assert ModelEndpoint(**CHAT, token_modifier=0).token_modifier == 1.0
    assert ModelEndpoint(**CHAT).token_modifier == 1.0


@pytest.mark.parametrize(
    ("url", "api_base", "root"),
    [
        ("http://h:8080", "http://h:8080/v1", "http://h:8080"),
        ("http://h:8080/v1/", "http://h:8080/v1", "http://h:8080"),
        ("https://h/proxy/llm/v1", "https://h/proxy/llm/v1", "https://h/proxy/llm"),
    ],
)
def test_url_with_or_without_v1(url: str, api_base: str, root: str) -> None:
    endpoint = ModelEndpoint(url=url, id="m")
    assert (endpoint.api_base, endpoint.server_root) == (api_base, root)


def test_defaults_and_derived_names() -> None:
    endpoint = ModelEndpoint(**CHAT)
    assert endpoint.capabilities == frozenset({Capability.CHAT})
    assert endpoint.upstream_model == "qwen3"
    assert endpoint.display_name == "qwen3@gpu-1:8080"
    named = ModelEndpoint(**CHAT, served_model="Qwen/Qwen3-8B", label="gpu-1")
    assert (named.upstream_model, named.display_name) == ("Qwen/Qwen3-8B", "gpu-1")


def test_keys_and_headers_never_shown() -> None:
    config = Config(
        endpoints=[{**CHAT, "api_key": "sk-secret-1", "headers": {"x-token": "hdr-secret-2"}}]
    )
    shown = [repr(config), str(config), config.model_dump_json(), repr(config.endpoints[0])]
    for text in shown:
        assert "sk-secret-1" not in text
        assert "hdr-secret-2" not in text
    with pytest.raises(ConfigurationError) as caught:
        Config(endpoints=[{**CHAT, "api_key": "sk-secret-1", "url": "nope"}])
    assert "sk-secret-1" not in str(caught.value)


YAML = """
endpoints:
  - url: ${CHAT_URL}
    id: qwen3
    api_key: ${CHAT_KEY}
    capabilities: [chat, function_call]
  - url: ${CHAT_URL_2:-http://gpu-2:8080}
    id: qwen3
    capabilities: [chat, function_call]
  - url: http://gpu-1:8081
    id: minilm
    capabilities: [embedding]
    dimension: 384
"""

TOML = """
[[endpoints]]
url = "${CHAT_URL}"
id = "qwen3"
api_key = "${CHAT_KEY}"
capabilities = ["chat", "function_call"]

[[endpoints]]
url = "${CHAT_URL_2:-http://gpu-2:8080}"
id = "qwen3"
capabilities = ["chat", "function_call"]

[[endpoints]]
url = "http://gpu-1:8081"
id = "minilm"
capabilities = ["embedding"]
dimension = 384
"""

JSON_TEXT = json.dumps(
    [
        {
            "url": "${CHAT_URL}",
            "id": "qwen3",
            "api_key": "${CHAT_KEY}",
            "capabilities": ["chat", "function_call"],
        },
        {
            "url": "${CHAT_URL_2:-http://gpu-2:8080}",
            "id": "qwen3",
            "capabilities": ["chat", "function_call"],
        },
        EMBED,
    ]
)

ENV = {"CHAT_URL": "http://gpu-1:8080", "CHAT_KEY": "sk-from-env"}


@pytest.mark.parametrize(
    ("suffix", "text"), [(".yaml", YAML), (".toml", TOML), (".json", JSON_TEXT)]
)
def test_load_resolves_environment(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"endpoints{suffix}"
    path.write_text(text)
    config = Config.load(path, environ=ENV)
    assert [e.url for e in config.endpoints] == [
        "http://gpu-1:8080",
        "http://gpu-2:8080",
        "http://gpu-1:8081",
    ]
    key = config.endpoints[0].api_key
    assert key is not None
    assert key.get_secret_value() == "sk-from-env"
    assert config.model_ids == ["qwen3", "minilm"]
    assert len(config.replicas("qwen3")) == 2


def test_missing_variable_is_named_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(YAML)
    with pytest.raises(
        ConfigurationError,
        match=r"endpoints\[0\]\.api_key: environment variable "
        r"CHAT_KEY is not set",
    ):
        Config.load(path, environ={"CHAT_URL": "http://gpu-1:8080"})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "endpoints: [\n", "invalid YAML"),
        ("bad.toml", "endpoints = [", "invalid TOML"),
        ("bad.json", "{", "invalid JSON"),
        ("bad.ini", "", "unsupported config format '.ini'"),
        ("scalar.yaml", "42", "expected a mapping with 'endpoints' or a list"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as caught:
        Config.load(path)
    assert name in str(caught.value)


def test_a_file_not_in_utf8_is_refused_keeping_none_of_its_text(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_bytes(b"\x80endpoints: [{url: 'http://h:1', id: m, api_key: sk-in-the-file}]")
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path)
    assert caught.value.problems == [f"{path}: not UTF-8 text (invalid start byte)"]
    # Not even as the context: the decode error quotes the whole file.
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read config file"):
        Config.load(tmp_path / "absent.yaml")


def test_from_env_reads_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(YAML)
    config = Config.from_env({"SELFHOSTED_CONFIG": str(path), **ENV})
    assert config.model_ids == ["qwen3", "minilm"]


def test_from_env_one_endpoint() -> None:
    config = Config.from_env(
        {
            "SELFHOSTED_BASE_URL": "http://127.0.0.1:8080/v1",
            "SELFHOSTED_MODEL": "tiny",
            "SELFHOSTED_API_KEY": "sk-1",
            "SELFHOSTED_CAPABILITIES": "chat,function_call",
        }
    )
    (endpoint,) = config.endpoints
    assert endpoint.id == "tiny"
    assert endpoint.capabilities == {Capability.CHAT, Capability.FUNCTION_CALL}
    assert endpoint.api_key is not None


def test_from_env_without_configuration() -> None:
    with pytest.raises(ConfigurationError, match="SELFHOSTED_CONFIG"):
        Config.from_env({})


def test_dumped_capabilities_are_sorted() -> None:
    endpoint = {
        "url": "http://gpu-1:8080",
        "id": "m",
        "capabilities": ["structured_output", "reasoning", "chat", "function_call"],
    }
    dumped = Config(endpoints=[endpoint]).model_dump(mode="json")
    assert dumped["endpoints"][0]["capabilities"] == [
        "chat",
        "function_call",
        "reasoning",
        "structured_output",
    ]
    assert Config.model_validate(dumped) == Config(endpoints=[endpoint])


def test_resilience_settings_are_validated_with_their_paths() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config(
            endpoints=[
                {
                    "url": "http://a.test:1",
                    "id": "m",
                    "weight": 0,
                    "idle_timeout": -1,
                    "first_byte_timeout": float("inf"),
                    "max_connections": 0,
                    "max_response_bytes": 10,
                }
            ],
            routing={"max_attempts": 0, "cooldown": -1, "failure_threshold": True},
        )
    assert caught.value.problems == [
        "endpoints[0].first_byte_timeout: must be a finite number of seconds > 0",
        "endpoints[0].idle_timeout: must be a finite number of seconds > 0",
        "endpoints[0].weight: must be a finite number > 0",
        "endpoints[0].max_connections: must be >= 1",
        "endpoints[0].max_response_bytes: must be at least 1024 bytes",
        "routing.max_attempts: must be an integer >= 1",
        "routing.failure_threshold: must be an integer >= 1",
        "routing.cooldown: must be a finite number of seconds >= 0",
    ]


def test_max_connections_caps_the_endpoints_pool() -> None:
    from selfhosted_core._http import client_options  # noqa: PLC0415 - the one private look

    capped = ModelEndpoint(url="http://a.test:1", id="m", max_connections=8)
    limits = client_options(capped)["limits"]
    assert (limits.max_connections, limits.max_keepalive_connections) == (8, 8)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` \|", readme, flags=re.MULTILINE))
    assert set(ModelEndpoint.model_fields) <= rows
    for name in RoutingPolicy.model_fields:
        assert f"`{name}`" in readme


@pytest.mark.parametrize(
    ("ca_bundle", "message"),
    [
        ("x" * 10_000, "cannot be looked up (File name too long): 'xxxxx"),
        ("~no-such-user-here/ca.pem", "names the home of an unknown user: '~no-such-user-here"),
        ("/nonexistent/ca.pem", "no such file: '/nonexistent/ca.pem'"),
    ],
)
def test_an_unusable_ca_bundle_is_a_problem_of_its_field(ca_bundle: str, message: str) -> None:
    (problem,) = problems(endpoints=[{**CHAT, "ca_bundle": ca_bundle}])
    assert problem.startswith(f"endpoints[0].ca_bundle: {message}")
    assert len(problem) < 200


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("deep.json", "[" * 100_000, "JSON nested too deeply"),
        ("deep.yaml", "[" * 1_100, "YAML nested too deeply"),
        ("deep.toml", "endpoints = " + "[" * 1_100, "TOML nested too deeply"),
        ("digits.json", '{"endpoints": ' + "1" * 5_000 + "}", "invalid JSON: Exceeds the limit"),
        ("digits.yaml", "endpoints: " + "1" * 5_000, "invalid YAML: Exceeds the limit"),
    ],
)
def test_files_no_parser_can_hold_name_the_file(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path)
    assert caught.value.problems[0].startswith(f"{path}: {message}")


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text("- &a [*a]\n")
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path)
    assert caught.value.problems == ["endpoints[0][0]: contains itself (a recursive alias)"]


def test_aliases_are_resolved_once_however_often_they_repeat(tmp_path: Path) -> None:
    # Ten to the ninth strings if each alias were expanded anew: this would not finish.
    lines = ['a0: &a0 ["${UNSET}", "lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    path = tmp_path / "endpoints.yaml"
    path.write_text("\n".join([*lines, "endpoints: *a9"]))
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path, environ={})
    assert caught.value.problems == ["a0[0]: environment variable UNSET is not set"]


def test_a_shared_endpoint_is_resolved_in_each_place(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        "endpoints:\n"
        "  - {url: '${URL}', id: qwen3, headers: &headers {X-Tenant: '${TENANT}'}}\n"
        "  - {url: 'http://gpu-2:8080', id: qwen3, headers: *headers}\n"
    )
    config = Config.load(path, environ={"URL": "http://gpu-1:8080", "TENANT": "t-1"})
    assert [e.url for e in config.endpoints] == ["http://gpu-1:8080", "http://gpu-2:8080"]
    assert [e.headers["X-Tenant"].get_secret_value() for e in config.endpoints] == ["t-1", "t-1"]


def test_a_missing_variable_in_an_endpoint_list_file_is_named_by_its_config_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(JSON_TEXT)
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path, environ={"CHAT_URL": "http://gpu-1:8080"})
    assert caught.value.problems == [
        "endpoints[0].api_key: environment variable CHAT_KEY is not set"
    ]
