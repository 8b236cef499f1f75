"""`routing.state` on Redis: its settings, its start-up checks, and its secret (the URL)."""

from __future__ import annotations

import json
import logging
import socket
import sys
import traceback
from typing import Any

import pytest

from selfhosted_core import ChatRequest, Config, ConfigurationError, Provider, RoutingState
from selfhosted_core._redis import RedisStore
from selfhosted_core._sharing import Outbox, StateUnavailable
from tests.core.harness import ENDPOINTS, FakeServer, chat_reply, user
from tests.redis_server import RedisServer, free_port
from tests.secrets_canary import REDIS_PASSWORD, assert_hidden


def shared(url: str, **state: Any) -> Config:
    return Config(
        endpoints=ENDPOINTS,
        routing={"state": {"backend": "redis", "url": url, "prefix": "test-redis", **state}},
    )


def shown(error: BaseException) -> str:
    return f"{error} {error!r} {vars(error)} {''.join(traceback.format_exception(error))}"


@pytest.fixture(scope="module")
def guarded() -> Any:
    """A redis-server that wants `REDIS_PASSWORD`."""
    with RedisServer(password=REDIS_PASSWORD) as server:
        yield server


# --- settings ---------------------------------------------------------------------------------


def test_the_default_state_is_this_process_s_own() -> None:
    state = Config(endpoints=ENDPOINTS).routing.state
    assert (state.backend.value, state.url, state.shared) == ("local", None, False)


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ({"backend": "redis"}, "routing.state.url: required with backend: redis"),
        ({"url": "redis://h:1"}, "routing.state.url: only allowed with backend: redis"),
        (
            {"backend": "redis", "url": f"http://:{REDIS_PASSWORD}@h:1"},
            "routing.state.url: must be a redis://, rediss:// or unix:// URL, got scheme 'http'",
        ),
        (
            {"backend": "redis", "url": f"redis://:{REDIS_PASSWORD}@h:99999"},
            "routing.state.url: has an invalid port",
        ),
        ({"backend": "redis", "url": "redis://"}, "routing.state.url: must name a host"),
        ({"backend": "memcached"}, "routing.state.backend: Input should be 'local' or 'redis'"),
        (
            {"backend": "redis", "url": "redis://h", "sync_interval": 0},
            "routing.state.sync_interval: must be a number of seconds from 0.01 to 60",
        ),
        (
            {"backend": "redis", "url": "redis://h", "prefix": "a b"},
            "routing.state.prefix: must be a non-empty key prefix without spaces",
        ),
    ],
)
def test_bad_state_settings_name_the_field_and_never_quote_the_url(
    state: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config(endpoints=ENDPOINTS, routing={"state": state})
    assert problem in str(caught.value)
    assert_hidden(shown(caught.value), "the configuration error")


def test_reprs_and_dumps_of_a_shared_config_hide_the_url() -> None:
    config = shared(f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    for where, text in {
        "repr(Config)": repr(config),
        "repr(RoutingState)": repr(config.routing.state),
        "Config.model_dump()": repr(config.model_dump()),
        "Config.model_dump_json()": config.model_dump_json(),
    }.items():
        assert_hidden(text, where)
    assert json.loads(config.model_dump_json())["routing"]["state"]["url"] == "**********"


def test_a_state_read_from_a_file_resolves_the_password_from_the_environment(
    tmp_path: Any,
) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        "endpoints: [{url: 'http://gpu-1:8080', id: qwen3}]\n"
        "routing: {state: {backend: redis, url: 'redis://:${REDIS_PASSWORD}@cache:6379/2'}}\n"
    )
    state = Config.load(path, environ={"REDIS_PASSWORD": REDIS_PASSWORD}).routing.state
    assert isinstance(state, RoutingState)
    assert state.url is not None
    assert state.url.get_secret_value() == f"redis://:{REDIS_PASSWORD}@cache:6379/2"


# --- start-up --------------------------------------------------------------------------------


def test_a_wrong_password_is_a_configuration_error_naming_the_setting(guarded: Any) -> None:
    url = f"redis://:not-{REDIS_PASSWORD}@127.0.0.1:{guarded.port}/0"
    with pytest.raises(ConfigurationError, match=r"routing\.state\.url: Redis at 127\.0\.0\.1:\d+"):
        Provider(shared(url))


def test_a_missing_password_is_a_configuration_error_naming_the_setting(guarded: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"routing\.state\.url: .* requires a password"):
        Provider(shared(f"redis://127.0.0.1:{guarded.port}/0"))


def test_the_right_password_is_accepted_and_never_shown(
    guarded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = Provider(shared(guarded.url))
    assert provider.stats()[0].circuit.value == "closed"
    provider.close()
    assert_hidden(caplog.text, "the logs")
    assert_hidden(repr(provider), "repr(Provider)")


def test_an_unreachable_store_is_a_start_up_warning_naming_the_setting_and_never_a_hang(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    server = FakeServer()
    server.on("POST", "/v1/chat/completions", chat_reply)
    provider = Provider(shared(url), transport=server.transport)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "routing.state.url" in warning
    assert "each process routes on its own state" in warning
    assert_hidden(caplog.text, "the logs")
    # Requests are served all the same, on this process's own state.
    answer = provider.chat(ChatRequest(model="tiny", messages=user()))
    assert answer.endpoint == "chat-a"
    provider.close()


def test_an_unresolvable_host_is_unavailable_not_a_configuration_error() -> None:
    state = shared("redis://no-such-host.invalid:6379/0", timeout=0.2).routing.state
    store = RedisStore(state, ["tiny@http://chat.test:8080/v1"])
    store.check()  # unreachable is not a configuration error: the server may come back
    with pytest.raises(StateUnavailable, match=r"^ConnectionError$"):
        store.exchange(Outbox(ops=(), in_flight=(0,), claims=(), probing=()))


def test_a_server_that_never_answers_costs_the_timeout_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Connections complete (the kernel's backlog) and then nothing is ever said.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        provider = Provider(shared(f"redis://127.0.0.1:{port}/0", timeout=0.2))
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert f"Redis at 127.0.0.1:{port} (routing.state.url) did not answer" in warning
        assert "TimeoutError" in warning
        provider.close()


def test_without_the_redis_package_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what `import redis` finds uninstalled
    with pytest.raises(ConfigurationError, match=r"pip install 'selfhosted-llm\[redis\]'"):
        Provider(shared("redis://127.0.0.1:6379/0"))
