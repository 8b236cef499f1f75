"""Properties of the config: any value or file is a `Config` or one `ConfigurationError`.

Each problem names where it is (a field path, or the file), and no text of the error, its
causes included, shows an `api_key` or a header value.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from selfhosted_core import Config, ConfigurationError, ModelEndpoint
from tests.strategies import json_values, near, secrets

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

NUMBERS = st.one_of(st.integers(-5, 10**6), st.floats(), st.booleans())
SOME_FILE = str(Path(__file__))
"""A file that exists, for `ca_bundle` (only its existence is checked)."""

ENDPOINT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "url": near(
        "http://gpu-1:8080",
        "https://gpu-2/v1/",
        "http://h:99999",
        "ftp://x",
        "http://u:p@h",
        "http://h/?q=1",
        " ",
        arbitrary=st.text(max_size=30) | json_values,
    ),
    "api_key": secrets() | json_values,
    "id": near("qwen3", "minilm", " ", "", arbitrary=st.text(max_size=10) | json_values),
    "label": near("gpu-1", None, arbitrary=st.text(max_size=10) | json_values),
    "capabilities": st.lists(
        st.sampled_from(
            ["chat", "embedding", "function_call", "structured_output", "vision", "reasoning", "x"]
        ),
        max_size=3,
    )
    | json_values,
    "dimension": NUMBERS | json_values,
    "context_window": NUMBERS | json_values,
    "token_modifier": NUMBERS | json_values,
    "served_model": st.text(max_size=10) | json_values,
    "server": near("vllm", "llama.cpp", "ollama", "tgi", "bogus", arbitrary=json_values),
    "timeout": NUMBERS | json_values,
    "connect_timeout": NUMBERS,
    "first_byte_timeout": NUMBERS | st.none(),
    "idle_timeout": NUMBERS | st.none(),
    "weight": NUMBERS,
    "max_connections": NUMBERS | st.none(),
    "max_response_bytes": NUMBERS,
    "headers": st.dictionaries(
        near("X-Tenant", "bad name", "", arbitrary=st.text(max_size=8)),
        secrets() | json_values,
        max_size=2,
    )
    | json_values,
    "tls_verify": st.booleans() | json_values,
    "ca_bundle": near(
        SOME_FILE,
        "~",
        "~no-such-user-here/ca.pem",
        "x" * 10_000,
        "a\x00b",
        "/nonexistent/ca.pem",
        arbitrary=st.text(max_size=30) | json_values,
    ),
}

endpoints = st.one_of(
    st.fixed_dictionaries(
        {"url": ENDPOINT_FIELDS["url"], "id": ENDPOINT_FIELDS["id"]},
        optional={
            name: value for name, value in ENDPOINT_FIELDS.items() if name not in ("url", "id")
        },
    ),
    st.dictionaries(st.sampled_from([*ENDPOINT_FIELDS, "extra"]), json_values, max_size=4),
    json_values,
)
routing = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "max_attempts": NUMBERS,
            "failure_threshold": NUMBERS,
            "cooldown": NUMBERS,
            "backoff": NUMBERS,
            "resend_unsafe": st.booleans() | json_values,
            "extra": json_values,
        },
    ),
    json_values,
)
configs = st.one_of(
    st.fixed_dictionaries(
        {"endpoints": st.lists(endpoints, max_size=3) | json_values},
        optional={"routing": routing, "extra": json_values},
    ),
    st.lists(endpoints, max_size=3),
    json_values,
)
"""A config as a mapping, an endpoint list (as a file may hold it), or any JSON at all."""


def secrets_in(value: Any) -> set[str]:
    """Every `api_key` and header value in `value`, wherever it appears."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "api_key" and isinstance(item, str):
                found.add(item.strip())
            elif key == "headers" and isinstance(item, dict):
                found.update(v.strip() for v in item.values() if isinstance(v, str))
            found |= secrets_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= secrets_in(item)
    return found


def without_secrets(value: Any) -> Any:
    """`value` with the secrets taken out, to see whether one also appears as something else."""
    if isinstance(value, dict):
        return {
            key: None if key in ("api_key", "headers") else without_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


def chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything a traceback would print with it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def check_refusal(
    error: ConfigurationError, data: Any, *, roots: tuple[str, ...] = ("config", "endpoints")
) -> None:
    """Every problem starts with a path (one of `roots`, or a key of `data`) and no secret of
    `data` shows anywhere.
    """
    assert error.problems
    if isinstance(data, dict):
        roots += tuple(str(key) for key in data)
    for problem in error.problems:
        assert problem.startswith(tuple(roots)), problem
    # A secret that is also some other value (its own URL, say) may rightly be quoted as that.
    other_text = repr(without_secrets(data))
    hidden = [
        secret for secret in secrets_in(data) if len(secret) >= 6 and secret not in other_text
    ]
    shown = " ".join(f"{exc!s} {exc!r}" for exc in chain(error))
    for secret in hidden:
        assert secret not in shown


@given(configs)
@example({"endpoints": [{"url": "http://h:1", "id": "m", "ca_bundle": "x" * 10_000}]})
@example({"endpoints": [{"url": "http://h:1", "id": "m", "ca_bundle": "~no-such-user/ca.pem"}]})
def test_any_value_is_a_config_or_a_configuration_error(data: Any) -> None:
    try:
        Config.model_validate(data)
    except ConfigurationError as exc:
        check_refusal(exc, data)


@given(st.dictionaries(st.sampled_from(["endpoints", "routing", "extra"]), json_values) | configs)
def test_keyword_construction_is_a_config_or_a_configuration_error(data: Any) -> None:
    if not isinstance(data, dict):
        data = {"endpoints": data}
    try:
        Config(**{str(key): value for key, value in data.items()})
    except ConfigurationError as exc:
        check_refusal(exc, data)


@given(endpoints)
def test_any_endpoint_is_a_model_endpoint_or_a_configuration_error(data: Any) -> None:
    if not isinstance(data, dict):
        data = {"url": data}
    try:
        ModelEndpoint(**data)
    except ConfigurationError as exc:
        check_refusal(exc, data, roots=tuple(ModelEndpoint.model_fields))


@given(configs)
def test_any_json_document_is_a_config_or_a_configuration_error(data: Any) -> None:
    try:
        Config.model_validate_json(json.dumps(data))
    except ConfigurationError as exc:
        check_refusal(exc, data)


# --- files ---------------------------------------------------------------------------------------

SUFFIXES = [".yaml", ".yml", ".toml", ".json", ".YAML", ".ini", ""]
ENVIRON = {"GPU_URL": "http://gpu-1:8080", "EMPTY": ""}


def toml_text(value: Any) -> str:
    """TOML for `value`, as near as a small writer gets; what it gets wrong is fuzz too."""
    if not isinstance(value, dict):
        return f"endpoints = {toml_value(value)}\n"
    return "".join(f"{json.dumps(str(key))} = {toml_value(item)}\n" for key, item in value.items())


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}"
    if isinstance(value, list):
        return f"[{', '.join(toml_value(item) for item in value)}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '""'
    return json.dumps(value)


def rendered(value: Any, suffix: str) -> bytes:
    if suffix == ".toml":
        return toml_text(value).encode()
    if suffix == ".json":
        return json.dumps(value).encode()
    return yaml.safe_dump(value, allow_unicode=True).encode()


BILLION_LAUGHS = "\n".join(
    [
        'a0: &a0 ["${UNSET}", "lol"]',
        *(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)),
        "endpoints: *a9",
    ]
).encode()
"""Nine aliases of nine aliases ...: 10**9 strings if each alias were expanded anew."""

HOSTILE_FILES = [
    BILLION_LAUGHS,
    # Past the recursion limit, and (once closed) just under it: the parsers, the `${VAR}`
    # resolution and pydantic each recurse per level.
    b"[" * 1_100,
    b"{" * 1_100,
    b"endpoints = " + b"[" * 1_100,
    b'{"endpoints": ' + b"[" * 600 + b"]" * 600 + b"}",
    b'{"endpoints": ' + b"1" * 5_000 + b"}",
    b"endpoints: " + b"1" * 5_000,
    b"endpoints = " + b"1" * 5_000,
    b"- &a [*a]",
    b"endpoints: &a [*a]",
    b"\xff\xfe\x00",
    b"a: !!python/object:os.system echo",
    b"endpoints: ${UNSET}",
    b"endpoints: [{url: '${GPU_URL}', id: m, api_key: '${KEY:-sk-default-secret}'}]",
]


@st.composite
def config_files(draw: st.DrawFn) -> tuple[str, bytes, Any]:
    """A suffix, the file's bytes, and the data they were made from (None when not made so)."""
    suffix = draw(st.sampled_from(SUFFIXES))
    kind = draw(st.sampled_from(["rendered", "cut", "spliced", "bytes", "hostile"]))
    if kind == "bytes":
        return suffix, draw(st.binary(max_size=200)), None
    if kind == "hostile":
        return suffix, draw(st.sampled_from(HOSTILE_FILES)), None
    data = draw(configs)
    text = rendered(data, draw(st.sampled_from([suffix, ".yaml", ".json", ".toml"])))
    if kind == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif kind == "spliced":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    return suffix, text, data


@given(config_files())
@example((".json", b"[" * 100_000, None))
@example((".json", b'{"endpoints": ' + b"1" * 5_000 + b"}", None))
@example((".yaml", b"endpoints: &a [*a]", None))
@example((".yaml", b"- &a [*a]", None))
@example((".yaml", BILLION_LAUGHS, None))
@example(
    (".yaml", b"\x80- {url: 'http://h:1', id: m, api_key: sk-secret}", {"api_key": "sk-secret"})
)
def test_any_file_is_a_config_or_a_configuration_error_naming_it(
    case: tuple[str, bytes, Any],
) -> None:
    suffix, content, data = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"endpoints{suffix}"
        path.write_bytes(content)
        try:
            Config.load(path, environ=ENVIRON)
        except ConfigurationError as exc:
            roots = ("config", "endpoints", str(path), *top_level_keys(suffix, content))
            check_refusal(exc, data, roots=roots)


def top_level_keys(suffix: str, content: bytes) -> list[str]:
    """The keys a file's mapping has, which problems with them start with."""
    try:
        # Decoded first, as `Config.load` reads it: given bytes, YAML and JSON detect UTF-16.
        text = content.decode("utf-8")
        if suffix == ".json":
            parsed = json.loads(text)
        elif suffix == ".toml":
            parsed = tomllib.loads(text)
        else:
            parsed = yaml.safe_load(text)
    except (ValueError, RecursionError, yaml.YAMLError):
        return []
    return [str(key) for key in parsed] if isinstance(parsed, dict) else []
