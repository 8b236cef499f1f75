"""Reading a server's own load: the payloads of each server, and a watcher that never delays."""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time

import httpx2
import pytest

from selfhosted_core import ChatRequest, Config, Provider
from selfhosted_core._engine import attempts, drive
from selfhosted_core._failover import Call
from selfhosted_core._http import RequestHeaders
from selfhosted_core._load import (
    Load,
    LoadWatcher,
    Source,
    _after_fork,
    from_metrics,
    from_slots,
    probe,
)
from selfhosted_core.routing import Router
from tests.core import payloads
from tests.core.harness import user

# tools/server/server-task.cpp `server_task_result_metrics::to_metrics`: HELP, TYPE, then
# `llamacpp:<name> <value>` for each counter and gauge (an excerpt, in its order).
LLAMA_METRICS = (
    "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached "
    "tokens\n# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 1502\n"
    "# HELP llamacpp:requests_processing Number of requests processing\n"
    "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\n"
    "# HELP llamacpp:requests_deferred Number of requests deferred\n"
    "# TYPE llamacpp:requests_deferred gauge\nllamacpp:requests_deferred 3\n"
)
# vLLM V1 (vllm/v1/metrics/loggers.py): gauges labelled per engine and model name.
VLLM_METRICS = (
    "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    'vllm:num_requests_running{engine="0",model_name="qwen"} 4.0\n'
    'vllm:num_requests_running{engine="1",model_name="qwen"} 1.0\n'
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    'vllm:num_requests_waiting{engine="0",model_name="qwen"} 2.0\n'
    'vllm:num_requests_waiting{engine="1",model_name="qwen"} NaN\n'
    'vllm:kv_cache_usage_perc{engine="0",model_name="qwen"} 0.42\n'
)
# SGLang docs/references/production_metrics.md (with --enable-metrics).
SGLANG_METRICS = (
    "# HELP sglang:num_running_reqs The number of running requests\n"
    "# TYPE sglang:num_running_reqs gauge\n"
    'sglang:num_running_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0\n'
    "# HELP sglang:num_queue_reqs The number of requests in the waiting queue\n"
    "# TYPE sglang:num_queue_reqs gauge\n"
    'sglang:num_queue_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 2826.0\n'
)
# tools/server/server-context.cpp: `/metrics` without `--metrics`, and `/slots` (slot to_json).
LLAMA_NO_METRICS = (
    b'{"error":{"code":501,"message":"This server does not support metrics endpoint. Start it '
    b'with `--metrics`","type":"not_supported_error"}}'
)
LLAMA_SLOTS = (
    b'[{"id":0,"n_ctx":2048,"speculative":false,"is_processing":true,"id_task":7},'
    b'{"id":1,"n_ctx":2048,"speculative":false,"is_processing":false}]'
)


def test_llama_server_metrics_give_requests_processing_and_deferred() -> None:
    assert from_metrics(LLAMA_METRICS) == Load(2, 3)


def test_vllm_metrics_are_summed_over_engines_and_a_nan_is_ignored() -> None:
    assert from_metrics(VLLM_METRICS) == Load(5, 2)


def test_sglang_metrics_give_running_and_queued() -> None:
    assert from_metrics(SGLANG_METRICS) == Load(7, 2826)
    assert Load(7, 2826).total == 2833


def test_metrics_without_a_running_series_give_no_load() -> None:
    assert from_metrics("# only comments\nprocess_cpu_seconds_total 3.2\n") is None
    assert from_metrics("vllm:num_requests_running{} not-a-number\n") is None


def test_slots_count_the_busy_ones() -> None:
    assert from_slots(LLAMA_SLOTS) == Load(1, None)
    assert from_slots(b'{"error": "no"}') is None


CONFIG = Config(
    endpoints=[
        {"url": "http://gpu-0.test:8080", "id": "tiny", "api_key": "load-key-not-secret"},
        {"url": "http://gpu-1.test:8080", "id": "tiny"},
    ],
    # Readings stay fresh for four intervals: 20 s, longer than any stall of a test machine.
    routing={"load_signals": "auto", "load_interval": 5},
)
HEADERS = [RequestHeaders.of(endpoint) for endpoint in CONFIG.endpoints]


def reply(request: httpx2.Request) -> httpx2.Response:
    """A chat answer, or the load of a llama-server with `--metrics`."""
    if request.url.path == "/metrics":
        return httpx2.Response(200, content=LLAMA_METRICS.encode())
    return httpx2.Response(
        200, content=payloads.LLAMA_OBJECT_ARGUMENTS, headers={"content-type": "application/json"}
    )


def read(
    transport: httpx2.MockTransport, *, source: Source | None = None
) -> tuple[Load, Source] | None:
    router = Router(CONFIG)
    call = Call(
        router,
        CONFIG.routing,
        [CONFIG.endpoints[0]],
        model="tiny",
        needs=frozenset(),
        prefer=0,
        strict=True,
        max_attempts=1,
        record=False,
    )
    with httpx2.Client(transport=transport) as client:
        engine = attempts(call, lambda slot: probe(CONFIG, slot=slot, source=source))
        return drive(engine, lambda _: client, HEADERS)


def slots_only(seen: list[tuple[str, str | None]]) -> httpx2.MockTransport:
    """A llama-server without `--metrics`, recording each path and the key it was sent."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.path, request.headers.get("authorization")))
        if request.url.path == "/metrics":
            return httpx2.Response(501, content=LLAMA_NO_METRICS)
        return httpx2.Response(200, content=LLAMA_SLOTS)

    return httpx2.MockTransport(handle)


def test_a_llama_server_without_metrics_is_read_from_its_slots_with_its_key() -> None:
    seen: list[tuple[str, str | None]] = []
    assert read(slots_only(seen)) == (Load(1, None), "slots")
    assert seen == [
        ("/metrics", "Bearer load-key-not-secret"),
        ("/slots", "Bearer load-key-not-secret"),
    ]


def test_where_the_load_was_found_is_asked_alone_next_time() -> None:
    seen: list[tuple[str, str | None]] = []
    assert read(slots_only(seen), source="slots") == (Load(1, None), "slots")
    assert [path for path, _ in seen] == ["/slots"]


def test_a_server_with_neither_offers_no_load() -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(404, content=b"{}"))
    assert read(transport) is None


def test_a_server_with_metrics_is_read_once() -> None:
    paths: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        paths.append(request.url.path)
        return httpx2.Response(200, content=VLLM_METRICS.encode())

    assert read(httpx2.MockTransport(handle)) == (Load(5, 2), "metrics")
    assert paths == ["/metrics"]


def test_the_watcher_hands_each_count_to_the_router_and_pauses_a_server_without_one() -> None:
    paths: list[tuple[str | None, str]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        paths.append((request.url.host, request.url.path))
        if request.url.host == "gpu-0.test":
            return httpx2.Response(200, content=LLAMA_METRICS.encode())
        return httpx2.Response(404, content=b"{}")

    router = Router(CONFIG)
    watcher = LoadWatcher(CONFIG, router, HEADERS, transport=httpx2.MockTransport(handle))
    for _ in range(2):
        watcher.read(0)
        watcher.read(1)
    assert [entry.server_load for entry in router.stats()] == [5, None]
    # gpu-1 answered neither: asked once (both paths), then left alone for a minute.
    assert paths.count(("gpu-1.test", "/metrics")) == 1
    assert paths.count(("gpu-1.test", "/slots")) == 1
    assert paths.count(("gpu-0.test", "/metrics")) == 2


def test_a_server_that_loses_its_metrics_is_looked_at_again() -> None:
    metrics = [True]

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/metrics" and metrics[0]:
            return httpx2.Response(200, content=LLAMA_METRICS.encode())
        if request.url.path == "/metrics":
            return httpx2.Response(501, content=LLAMA_NO_METRICS)
        return httpx2.Response(200, content=LLAMA_SLOTS)

    router = Router(CONFIG)
    watcher = LoadWatcher(CONFIG, router, HEADERS, transport=httpx2.MockTransport(handle))
    watcher.read(0)
    assert router.stats()[0].server_load == 5
    metrics[0] = False  # restarted without --metrics
    watcher.read(0)
    assert router.stats()[0].server_load == 1


def test_a_failed_read_leaves_no_count() -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    router = Router(CONFIG)
    router.observed(0, 9)
    watcher = LoadWatcher(CONFIG, router, HEADERS, transport=httpx2.MockTransport(handle))
    watcher.read(0)
    assert router.stats()[0].server_load is None


def test_an_unexpected_error_is_logged_once_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reads = threading.Semaphore(0)

    def handle(request: httpx2.Request) -> httpx2.Response:
        reads.release()
        raise RuntimeError("load-key-not-secret in a broken transport")

    fast = Config(
        endpoints=CONFIG.endpoints[:1], routing={"load_signals": "auto", "load_interval": 0.05}
    )
    router = Router(fast)
    router.observed(0, 9)
    watcher = LoadWatcher(fast, router, HEADERS[:1], transport=httpx2.MockTransport(handle))
    with caplog.at_level(logging.WARNING, logger="selfhosted_core"):
        watcher.start()
        try:
            for _ in range(3):
                assert reads.acquire(timeout=10), "the thread keeps reading after the error"
        finally:
            watcher.stop()
    assert router.stats()[0].server_load is None
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [
        "reading the load of tiny@gpu-0.test:8080 failed with RuntimeError; its own count is used"
    ]


def test_requests_are_answered_while_a_load_read_hangs() -> None:
    release = threading.Event()
    metrics_asked = threading.Event()

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/metrics":
            metrics_asked.set()
            release.wait(10)
        return reply(request)

    provider = Provider(CONFIG, transport=httpx2.MockTransport(handle))
    try:
        provider.chat(ChatRequest(model="tiny", messages=user()))  # starts the watcher
        assert metrics_asked.wait(5), "the watcher reads the servers' load in the background"
        answers = [provider.chat(ChatRequest(model="tiny", messages=user())) for _ in range(5)]
        assert not release.is_set()
        assert [answer.finish_reason for answer in answers] == ["tool_calls"] * 5
    finally:
        release.set()
        provider.close()


def watcher_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("selfhosted-load-watcher")}


def wait_for_load(provider: Provider, slot: int) -> int | None:
    deadline = time.monotonic() + 10
    while provider.stats()[slot].server_load is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return provider.stats()[slot].server_load


def test_the_watcher_starts_with_the_first_request_and_stops_with_close() -> None:
    before = watcher_threads()
    provider = Provider(CONFIG, transport=httpx2.MockTransport(reply))
    assert watcher_threads() == before
    provider.chat(ChatRequest(model="tiny", messages=user()))
    assert wait_for_load(provider, 0) == 5
    started = watcher_threads() - before
    assert len(started) == 2, "one thread per watched endpoint"
    provider.close()
    assert not any(thread.is_alive() for thread in started)


def test_a_closed_provider_reads_again_when_it_is_used_again() -> None:
    provider = Provider(CONFIG, transport=httpx2.MockTransport(reply))
    provider.chat(ChatRequest(model="tiny", messages=user()))
    provider.close()
    before = watcher_threads()
    provider.chat(ChatRequest(model="tiny", messages=user()))
    try:
        assert len(watcher_threads() - before) == 2
    finally:
        provider.close()


def test_a_provider_dropped_without_close_stops_its_threads() -> None:
    before = watcher_threads()
    provider = Provider(CONFIG, transport=httpx2.MockTransport(reply))
    provider.chat(ChatRequest(model="tiny", messages=user()))
    started = watcher_threads() - before
    assert started
    del provider
    gc.collect()
    for thread in started:
        thread.join(10)
    assert not any(thread.is_alive() for thread in started)


async def test_aclose_stops_the_threads_without_waiting_on_the_loop() -> None:
    before = watcher_threads()
    provider = Provider(CONFIG, transport=httpx2.MockTransport(reply))
    provider.chat(ChatRequest(model="tiny", messages=user()))
    started = watcher_threads() - before
    await provider.aclose()
    for thread in started:
        thread.join(10)
    assert not any(thread.is_alive() for thread in started)


def test_no_thread_runs_when_load_signals_are_off() -> None:
    before = watcher_threads()
    with Provider(Config(endpoints=CONFIG.endpoints), transport=httpx2.MockTransport(reply)) as p:
        p.chat(ChatRequest(model="tiny", messages=user()))
        assert watcher_threads() == before


@pytest.mark.timeout(20)
def test_a_server_that_never_answers_times_the_read_out_and_leaves_no_count() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        silent = Config(
            endpoints=[{"url": f"http://127.0.0.1:{port}", "id": "tiny"}],
            # Fresh for 4 s, longer than the read's 1 s timeout: only the failed read clears it.
            routing={"load_signals": "auto", "load_interval": 1},
        )
        router = Router(silent)
        router.observed(0, 9)
        watcher = LoadWatcher(silent, router, [RequestHeaders.of(silent.endpoints[0])])
        # The connection is accepted (the backlog holds it) and never answered: only the
        # read's own timeout can end it.
        watcher.read(0)
    assert router.stats()[0].server_load is None


def is_running(watcher: LoadWatcher) -> bool:
    return watcher.running


def test_in_a_forked_child_the_watcher_starts_afresh_and_the_router_lock_is_new() -> None:
    # What os.register_at_fork runs in the child: called here directly, since forking a
    # multi-threaded test process is itself unsafe (and warned about).
    provider = Provider(CONFIG, transport=httpx2.MockTransport(reply))
    provider.chat(ChatRequest(model="tiny", messages=user()))
    router = provider._router
    watcher = provider._watcher
    assert watcher is not None
    assert is_running(watcher)
    parent_lock = router._lock
    parent_lock.acquire()  # as if a parent thread held it at the fork
    try:
        _after_fork()
        assert not is_running(watcher), "no thread of the parent runs in the child"
        assert router._lock is not parent_lock
        provider.chat(ChatRequest(model="tiny", messages=user()))
        assert is_running(watcher)
    finally:
        parent_lock.release()
        provider.close()
