"""`proxy-url` (docs/configuration.md "Keys", docs/mitmproxy.md "The loopback streamer"): token
refreshes and, through the loopback streamer, every upstream call go through it with the URL's
credentials; a proxy that cannot be reached is a clean 502 naming it.

The proxy here is a small loopback forward proxy that records what it is asked for.
"""

from __future__ import annotations

import base64
import http.client
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fakes.google import FakeGoogle
from tests.hooks.harness import LOOPBACK
from tests.hooks.harness import answer
from tests.hooks.harness import gemini_auth
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings
from tests.hooks.harness import went_to_streamer
from tests.hooks.harness import went_upstream

MODEL = "gemini-2.5-pro"
OLD_TOKEN = "ya29.expired-a"
HOP_BY_HOP = frozenset({"proxy-authorization", "proxy-connection", "connection", "keep-alive"})
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


class _Forward(BaseHTTPRequestHandler):
    """Absolute-form requests (a plain-HTTP target through a proxy), forwarded and recorded."""

    server: _Server

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        self.server.seen.append((self.command, self.path, self.headers.get("proxy-authorization")))
        target = urlsplit(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body, headers=headers)
            reply = upstream.getresponse()
            content = reply.read()
        finally:
            upstream.close()
        self.send_response(reply.status)
        self.send_header("content-type", reply.getheader("content-type") or "application/json")
        self.send_header("content-length", str(len(content)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.seen: list[tuple[str, str, str | None]] = []


@pytest.fixture
def forward_proxy() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_account(OLD_TOKEN, "1//refresh-a", "proj-a", expired=True)
        yield server


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("userinfo", "credentials"),
    [
        ("", None),
        ("user:secret@", basic("user", "secret")),
        ("us%40er:p%3Ass@", basic("us@er", "p:ss")),  # httpx decodes percent-encoded userinfo
    ],
    ids=["no-credentials", "credentials", "encoded-credentials"],
)
async def test_the_refresh_and_the_api_call_both_go_through_proxy_url(
    tmp_path: Path,
    fake: FakeGoogle,
    forward_proxy: _Server,
    userinfo: str,
    credentials: str | None,
) -> None:
    port = forward_proxy.server_address[1]
    gemini_auth(
        tmp_path, "a", access=OLD_TOKEN, refresh="1//refresh-a", project="proj-a",
        expires_in=timedelta(hours=-1),
    )  # fmt: skip
    config = settings(
        tmp_path,
        endpoints={"gemini_cli": fake.base_url, "google_token": fake.token_url},
        proxy_url=f"http://{userinfo}127.0.0.1:{port}",
    )
    async with running(config) as chain:
        flow = await chain.request(make_flow("POST", "/v1/chat/completions", CHAT, peer=LOOPBACK))
        # with a proxy-url every upstream call is httpx's, made by the loopback streamer
        assert went_to_streamer(flow)
        await chain.forward(flow)
    status, body = answer(flow)
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "Echo: hi"
    # the refresh and then the generation reached their upstream through the proxy, each with
    # the URL's credentials
    assert forward_proxy.seen == [
        ("POST", fake.token_url, credentials),
        ("POST", fake.base_url + "/v1internal:generateContent", credentials),
    ]
    assert [r["refresh_token"] for r in fake.token_requests] == ["1//refresh-a"]
    token = fake.calls("generateContent")[0].headers["authorization"].removeprefix("Bearer ")
    assert token.startswith("ya29.fake-") and token != OLD_TOKEN


async def test_without_proxy_url_the_refresh_and_the_flow_go_direct(
    tmp_path: Path, fake: FakeGoogle, forward_proxy: _Server
) -> None:
    gemini_auth(
        tmp_path, "a", access=OLD_TOKEN, refresh="1//refresh-a", project="proj-a",
        expires_in=timedelta(hours=-1),
    )  # fmt: skip
    config = settings(
        tmp_path, endpoints={"gemini_cli": fake.base_url, "google_token": fake.token_url}
    )
    async with running(config) as chain:
        flow = await chain.request(make_flow("POST", "/v1/chat/completions", CHAT, peer=LOOPBACK))
    assert forward_proxy.seen == []
    assert len(fake.token_requests) == 1
    assert went_upstream(flow, fake.base_url + "/v1internal:generateContent")


async def test_a_relayed_call_goes_through_proxy_url(
    tmp_path: Path, fake: FakeGoogle, forward_proxy: _Server
) -> None:
    port = forward_proxy.server_address[1]
    gemini_auth(
        tmp_path, "a", access="ya29.fresh", refresh="1//r", project="proj-a",
        expires_in=timedelta(hours=1),
    )  # fmt: skip
    fake.add_account("ya29.fresh", "1//r", "proj-a")
    config = settings(
        tmp_path,
        endpoints={"gemini_cli": fake.base_url},
        proxy_url=f"http://user:pw@127.0.0.1:{port}",
    )
    async with running(config) as chain:
        flow = make_flow("POST", "/v1internal:retrieveUserQuota", {"project": "x"}, peer=LOOPBACK)
        await chain.request(flow)
        assert went_to_streamer(flow)
        await chain.forward(flow)
    status, _ = answer(flow)
    assert status == 200
    assert forward_proxy.seen == [
        ("POST", fake.base_url + "/v1internal:retrieveUserQuota", basic("user", "pw"))
    ]


async def test_an_unreachable_proxy_is_a_502_naming_it(tmp_path: Path) -> None:
    gemini_auth(
        tmp_path, "a", access="ya29.fresh", refresh="1//r", project="proj-a",
        expires_in=timedelta(hours=1),
    )  # fmt: skip
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = settings(tmp_path, proxy_url=f"socks5://user:pw@127.0.0.1:{port}", request_retry=1)
    async with running(config) as chain:
        flow = await chain.call(make_flow("POST", "/v1/chat/completions", CHAT, peer=LOOPBACK))
    status, body = answer(flow)
    assert status == 502
    message = body["error"]["message"]
    assert f"socks5://127.0.0.1:{port}" in message and "pw" not in message
