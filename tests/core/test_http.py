"""The HTTP shell on real sockets: each key reaches only its endpoint, redirects stay unfollowed,
https is verified by default and a CA bundle or `tls_verify: false` can change that.

The servers here are threads on 127.0.0.1 that record every request's `Authorization` header and
answer with llama-server's payloads from `tests/core/payloads.py`.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from selfhosted_core import (
    ChatRequest,
    Config,
    ConfigurationError,
    EmbeddingRequest,
    EndpointConnectionError,
    HealthStatus,
    Provider,
    ResponseError,
)
from tests.core import payloads
from tests.core.harness import user
from tests.driver import Driver

CHAT_REPLY = (
    b'{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'
)
EMBEDDING_REPLY = b'{"object":"list","model":"e","data":[{"index":0,"embedding":[0.5,0.5]}]}'

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Recorder:
    """A threaded HTTP(S) server that records who was sent which Authorization header."""

    answer: Callable[[str, str], Answer]
    tls: ssl.SSLContext | None = None
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                recorder.seen.append((self.path, self.headers.get("authorization")))
                status, headers, body = recorder.answer(self.command, self.path)
                self.send_response(status)
                for name, value in {"content-length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `seen` instead."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def llama(method: str, path: str) -> Answer:
    json = {"content-type": "application/json"}
    if path.endswith("/chat/completions"):
        return 200, json, CHAT_REPLY
    if path.endswith("/embeddings"):
        return 200, json, EMBEDDING_REPLY
    if path == "/v1/models":
        return 200, json, payloads.LLAMA_MODELS
    return 200, json, b'{"status":"ok"}'


@pytest.fixture
def servers() -> Iterator[list[Recorder]]:
    started = [Recorder(llama), Recorder(llama)]
    yield started
    for server in started:
        server.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_each_key_reaches_only_its_own_endpoint(servers: list[Recorder], mode: str) -> None:
    first, second = servers
    config = Config(
        endpoints=[
            {"url": first.url, "id": "m", "api_key": "key-one"},
            {"url": second.url, "id": "m", "api_key": "key-two"},
            {"url": first.url, "id": "e", "api_key": "key-one", "capabilities": ["embedding"],
             "dimension": 2},
            {"url": second.url, "id": "e", "api_key": "key-two", "capabilities": ["embedding"],
             "dimension": 2},
        ]
    )  # fmt: skip
    async with Provider(config) as provider:
        driver = Driver(mode, provider)
        for _ in range(2):
            await driver.chat(ChatRequest(model="m", messages=user()))
            await driver.embed(EmbeddingRequest(model="e", input=["x"]))
        await driver.health()
    for server, key in ((first, "key-one"), (second, "key-two")):
        paths = {path for path, _ in server.seen}
        assert {"/v1/chat/completions", "/v1/embeddings", "/health", "/v1/models"} <= paths
        assert {authorization for _, authorization in server.seen} == {f"Bearer {key}"}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_redirect_is_not_followed_and_the_key_stays_home(
    servers: list[Recorder], mode: str
) -> None:
    first, elsewhere = servers
    target = f"{elsewhere.url}/v1/chat/completions"

    def redirecting(method: str, path: str) -> Answer:
        if path.endswith("/chat/completions") or path == "/health":
            return 307, {"location": f"{target}?token=x"}, b""
        return llama(method, path)

    first.answer = redirecting
    config = Config(endpoints=[{"url": first.url, "id": "m", "api_key": "key-one"}])
    async with Provider(config) as provider:
        driver = Driver(mode, provider)
        for call in (driver.chat, driver.stream):
            with pytest.raises(ResponseError) as info:
                await call(ChatRequest(model="m", messages=user()))
            assert info.value.message.startswith(f"HTTP 307 redirect to {target!r} not followed")
            assert "token=x" not in str(info.value)
        (health,) = (await driver.health()).endpoints
    assert health.status is HealthStatus.DOWN
    assert health.detail is not None
    assert "redirect" in health.detail
    assert elsewhere.seen == []


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the PEM file of its certificate (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "selfhosted-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "ca.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[Recorder, Path]]:
    context, ca = self_signed(tmp_path)
    server = Recorder(llama, tls=context)
    yield server, ca
    server.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_https_is_verified_by_default(https: tuple[Recorder, Path], mode: str) -> None:
    server, _ = https
    config = Config(endpoints=[{"url": server.url, "id": "m", "api_key": "key-one"}])
    async with Provider(config) as provider:
        with pytest.raises(EndpointConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await Driver(mode, provider).chat(ChatRequest(model="m", messages=user()))
    assert server.seen == []


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("trust", ["ca_bundle", "tls_verify"])
async def test_a_ca_bundle_or_no_verification_reaches_the_server(
    https: tuple[Recorder, Path], mode: str, trust: str
) -> None:
    server, ca = https
    choice = {"ca_bundle": str(ca)} if trust == "ca_bundle" else {"tls_verify": False}
    config = Config(endpoints=[{"url": server.url, "id": "m", "api_key": "key-one", **choice}])
    async with Provider(config) as provider:
        answer = await Driver(mode, provider).chat(ChatRequest(model="m", messages=user()))
    assert answer.content == "Hi."
    assert server.seen == [("/v1/chat/completions", "Bearer key-one")]


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Config(
            endpoints=[
                {"url": "https://a", "id": "m", "ca_bundle": str(tmp_path / "missing.pem")},
                {"url": "https://b", "id": "n", "ca_bundle": __file__, "tls_verify": False},
            ]
        )
    assert info.value.problems == [
        f"endpoints[0].ca_bundle: no such file: {str(tmp_path / 'missing.pem')!r}",
        "endpoints[1].ca_bundle: has no effect with tls_verify: false",
    ]
