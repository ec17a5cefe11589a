"""`proxy-url` carries every upstream byte (issue 11): a real SOCKS5 server with username/password
on loopback (tests/fakes/socks5.py) and an HTTP proxy with credentials; each connection the fake
upstream accepted must have come out of the proxy. A wrong proxy is a JSON 502 naming it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.fakes.google import FakeGoogle
from tests.fakes.socks5 import Socks5Server
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.streams import HEADERS
from tests.integration.streams import completed
from tests.integration.streams import error_message
from tests.integration.streams import request_for
from tests.integration.streams import stream
from tests.integration.streams import text_of
from tests.integration.test_proxy_url import ConnectProxy

MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def socks() -> Iterator[Socks5Server]:
    with Socks5Server() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_socks(socks: Socks5Server) -> None:
    socks.reset()


def account(expired: bool = False) -> dict[str, dict]:
    life = timedelta(hours=-1) if expired else timedelta(hours=1)
    token = "ya29.stale-a" if expired else "ya29.valid-a"
    return {"gemini-a.json": gemini_auth("a@example.com", PROJECT, token, "1//refresh-a", life)}


def every_kind_of_call(base_url: str) -> None:
    """Generation streamed and whole, a token count, a relayed Code Assist method."""
    streamed = stream(base_url, "chat", MODEL, "via socks")
    assert streamed.status == 200 and completed("chat", streamed.events)
    assert text_of("chat", streamed.events) == "Echo: via socks"
    path, body = request_for("anthropic", MODEL, "whole", stream=False)
    whole = httpx.post(base_url + path, json=body, headers=HEADERS, timeout=20)
    assert whole.status_code == 200, whole.text
    assert whole.json()["content"][0]["text"] == "Echo: whole"
    counted = httpx.post(
        base_url + "/v1/messages/count_tokens",
        json={"model": MODEL, "messages": [{"role": "user", "content": "count me"}]},
        headers=HEADERS,
        timeout=20,
    )
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0, counted.text
    quota = httpx.post(
        base_url + "/v1internal:retrieveUserQuota", json={"project": "whatever"}, timeout=20
    )
    assert quota.status_code == 200 and quota.json() == {"buckets": []}, quota.text


def assert_all_through(fake: FakeGoogle, outbound: list[tuple[str, int]]) -> None:
    """Every connection the fake accepted came from the proxy's own outbound sockets."""
    assert fake.connections, "the fake saw no connection at all"
    assert set(fake.connections) <= set(outbound), (fake.connections, outbound)
    served = {r.rpc: r.status for r in fake.requests if r.rpc}
    assert served == {
        "streamGenerateContent": 200,
        "generateContent": 200,
        "countTokens": 200,
        "retrieveUserQuota": 200,
    }


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_carries_every_upstream_call(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle, socks: Socks5Server, scheme: str
) -> None:
    proxy = proxy_factory(config={"proxy-url": socks.url(scheme)}, auth_files=account(True))
    every_kind_of_call(proxy.base_url)
    assert len(fake.token_requests) == 1  # the expired account was refreshed …
    assert_all_through(fake, socks.outbound)  # … through SOCKS like everything else
    fake_port = int(fake.base_url.rsplit(":", 1)[1])
    assert {(c.port, c.username) for c in socks.connects} == {(fake_port, socks.username)}
    assert socks.auth_failures == 0


def test_http_proxy_with_credentials_carries_every_upstream_call(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    connect = ConnectProxy()
    try:
        url = f"http://alice:s3cret@127.0.0.1:{connect.port}"
        proxy = proxy_factory(config={"proxy-url": url}, auth_files=account(True))
        every_kind_of_call(proxy.base_url)
        assert len(fake.token_requests) == 1
        assert_all_through(fake, connect.outbound)
        assert connect.tunnels and all(
            auth and auth.startswith("Basic ") for _, auth in connect.tunnels
        )
    finally:
        connect.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("broken", ["password", "port"])
def test_broken_socks_proxy_is_a_json_502_naming_it(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle, socks: Socks5Server, broken: str
) -> None:
    if broken == "password":
        url, port = socks.url(password="wrong-pass"), socks.port
    else:
        port = closed_port()
        url = f"socks5://{socks.username}:{socks.password}@127.0.0.1:{port}"
    proxy = proxy_factory(config={"proxy-url": url}, auth_files=account())
    named = f"proxy-url socks5://127.0.0.1:{port}"
    answers: list[tuple[str, Any]] = []
    for dialect, streamed in [
        ("chat", True),
        ("anthropic", False),
        ("gemini", True),
        ("chat", False),
    ]:
        path, body = request_for(dialect, MODEL, "x", stream=streamed)
        r = httpx.post(proxy.base_url + path, json=body, headers=HEADERS, timeout=20)
        answers.append((dialect, r))
    for dialect, r in answers:
        assert r.status_code == 502, (dialect, r.text)
        assert r.headers["content-type"].startswith("application/json")
        message = error_message(dialect, r.json())
        assert named in message, message
        assert socks.password not in r.text and "wrong-pass" not in r.text
        assert socks.username not in r.text
    assert not [r for r in fake.requests if r.rpc]  # nothing went around the proxy
    if broken == "password":
        assert socks.auth_failures >= 1
