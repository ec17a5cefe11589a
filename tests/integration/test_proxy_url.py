"""`proxy-url`: upstream calls go through an HTTP proxy (CONNECT), with its credentials."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import openai
import pytest

from tests.fakes.google import FakeGoogle
from tests.fakes.socks5 import pipe
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth


class ConnectProxy:
    """A minimal HTTP proxy on 127.0.0.1, as real ones are: CONNECT tunnels (https targets) and
    absolute-form requests (http targets). It records each target host:port with its
    Proxy-Authorization, then pipes bytes both ways."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tunnels: list[tuple[str, str | None]] = []
        self.outbound: list[tuple[str, int]] = []  # local address of each upstream socket
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                client.close()
                return
            head += data
        lines = head.split(b"\r\n")
        method, target, _ = lines[0].decode().split(" ", 2)
        auth = next(
            (ln.split(b":", 1)[1].strip().decode() for ln in lines[1:]
             if ln.lower().startswith(b"proxy-authorization:")),
            None,
        )  # fmt: skip
        if method == "CONNECT":
            self.tunnels.append((target, auth))
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.outbound.append(upstream.getsockname()[:2])
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        elif target.startswith("http://"):
            parts = urlsplit(target)
            self.tunnels.append((parts.netloc, auth))
            upstream = socket.create_connection((parts.hostname, parts.port or 80))
            self.outbound.append(upstream.getsockname()[:2])
            origin = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            kept = [ln for ln in lines[1:] if not ln.lower().startswith(b"proxy-")]
            first = f"{method} {origin} HTTP/1.1".encode()
            upstream.sendall(b"\r\n".join([first, *kept]))  # the head, then what followed it
        else:
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def connect_proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()


def test_api_calls_go_through_the_http_proxy_with_credentials(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle, connect_proxy: ConnectProxy
) -> None:
    proxy = proxy_factory(
        config={"proxy-url": f"http://alice:s3cret@127.0.0.1:{connect_proxy.port}"},
        auth_files={
            "gemini-a.json": gemini_auth(
                "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
            )
        },
    )
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0)
    resp = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "via proxy"}]
    )
    assert resp.choices[0].message.content == "Echo: via proxy"
    fake_addr = fake.base_url.removeprefix("http://")
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert (fake_addr, expected) in connect_proxy.tunnels
    assert fake.calls("generateContent")[0].headers["authorization"] == "Bearer ya29.valid-a"
