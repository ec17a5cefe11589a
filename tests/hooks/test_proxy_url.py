"""`proxy-url` (docs/configuration.md "Keys", docs/mitmproxy.md "Upstream proxies"): token
refreshes (httpx) go through it, flows sent upstream are re-targeted through it
(`server_conn.via`), and the CONNECT to it carries the URL's credentials (`http_connect_upstream`).

The proxy here is a small loopback forward proxy that records what it is asked for.
"""

from __future__ import annotations

import base64
import http.client
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
from tests.hooks.harness import NOWHERE
from tests.hooks.harness import gemini_auth
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings
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
async def test_an_expired_token_is_refreshed_through_proxy_url_and_the_flow_goes_via_it(
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
    # the refresh went to the token endpoint through the proxy, with the URL's credentials
    assert forward_proxy.seen == [("POST", fake.token_url, credentials)]
    assert [r["refresh_token"] for r in fake.token_requests] == ["1//refresh-a"]
    # and the flow carries the new token, re-targeted at Code Assist via the proxy
    assert went_upstream(flow, fake.base_url + "/v1internal:generateContent")
    token = flow.request.headers["authorization"].removeprefix("Bearer ")
    assert token.startswith("ya29.fake-") and token != OLD_TOKEN
    assert flow.server_conn.via == ("http", ("127.0.0.1", port))


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
    assert flow.server_conn.via is None


async def test_a_relayed_call_goes_via_proxy_url(tmp_path: Path) -> None:
    gemini_auth(
        tmp_path, "a", access="ya29.fresh", refresh="1//r", project="proj-a",
        expires_in=timedelta(hours=1),
    )  # fmt: skip
    config = settings(tmp_path, proxy_url="https://proxy.example:8443")
    async with running(config) as chain:
        flow = make_flow("POST", "/v1internal:retrieveUserQuota", {"project": "x"}, peer=LOOPBACK)
        await chain.request(flow)
    assert went_upstream(flow, NOWHERE + "/v1internal:retrieveUserQuota")
    assert flow.server_conn.via == ("https", ("proxy.example", 8443))


@pytest.mark.parametrize(
    ("proxy_url", "expected"),
    [
        ("http://user:pass@127.0.0.1:3128", basic("user", "pass")),
        ("https://user:pass@proxy.example:8443", basic("user", "pass")),
        ("http://user@127.0.0.1:3128", basic("user", "")),
        # percent-encoded userinfo is decoded, as httpx does for the refreshes
        ("http://us%40er:p%3Ass%2Fw@127.0.0.1:3128", basic("us@er", "p:ss/w")),
        ("http://127.0.0.1:3128", None),
        ("socks5://user:pass@127.0.0.1:1080", None),  # not an HTTP proxy: no CONNECT to it
    ],
)
async def test_the_connect_to_proxy_url_carries_its_credentials(
    tmp_path: Path, proxy_url: str, expected: str | None
) -> None:
    async with running(settings(tmp_path, proxy_url=proxy_url)) as chain:
        flow = make_flow("CONNECT", "/", peer=LOOPBACK)
        await chain.connect_upstream(flow)
    assert flow.request.headers.get("proxy-authorization") == expected
