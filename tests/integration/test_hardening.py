"""Issue 9: nothing a client, a file or an upstream does can knock the proxy over.

A real `mitmdump -s addons/cliproxy.py` on loopback, attacked as the issue describes: huge and
compressed bodies, half-sent requests, silent and hostile upstreams, HTTP/1.0, an emptied
config. Every loop is bounded in time and bytes; every process is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import start_proxy

KEY = "sk-hardening-test-key-0123456789"
AUTH = {
    "gemini-a.json": gemini_auth(
        "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
    )
}
MB = 1 << 20


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the peer sends until it closes or `timeout` passes."""
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def anthropic_error(body: Any) -> dict[str, Any]:
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    return body["error"]


def openai_error(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) >= {"message", "type"}, body
    assert "status" not in body["error"], body  # nothing of Gemini's shape mixed in
    return body["error"]


def google_error(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}, body
    return body["error"]


CHAT = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "gemini-2.5-pro",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
# (path, body, headers, shape checker) for one request of each dialect
DIALECTS = [
    ("/v1/chat/completions", CHAT, {}, openai_error),
    ("/v1/messages", MESSAGES, {"anthropic-version": "2023-06-01"}, anthropic_error),
    ("/v1beta/models/gemini-2.5-pro:generateContent", GEMINI, {}, google_error),
]


# ---------------------------------------------------------------------- hostile upstreams


class Hostile:
    """A loopback 'upstream' that misbehaves: `silent` accepts and never answers, `html`
    answers an HTML page, `redirect` a 302."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        self.seen: list[bytes] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.open.append(conn)
            if self.mode == "silent":
                continue
            conn.settimeout(5)
            try:
                data = conn.recv(65536)
                self.seen.append(data)
                if self.mode == "html":
                    body = b"<html><body>Sign in</body></html>"
                    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                else:
                    body = b""
                    head = b"HTTP/1.1 302 Found\r\nlocation: https://accounts.example/\r\n"
                conn.sendall(head + b"content-length: %d\r\n\r\n" % len(body) + body)
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        self.thread.join(timeout=5)
        for conn in self.open:
            conn.close()


def listener_with_a_full_backlog() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: the kernel leaves further SYNs unanswered, so a
    connect() to it hangs. Close both the listener and the fillers."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(4):  # fill the queue; some of these may themselves hang: non-blocking
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(full.getsockname())
        fillers.append(f)
    time.sleep(0.2)
    return full, fillers


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_account("ya29.valid-a", "1//refresh-a", PROJECT, email="a@example.com")
        yield server


@pytest.fixture
def keyed(fake: FakeGoogle, tmp_path: Path) -> Iterator[Proxy]:
    """A proxy with api-keys set (remote-style access) and the default limits."""
    p = start_proxy(tmp_path / "keyed", fake, config={"api-keys": [KEY]}, auth_files=AUTH)
    yield p
    p.stop()


# ---------------------------------------------------------------------- bodies


def send_body_without_reading(port: int, head: bytes, total: int) -> bytes:
    """Send `head`, then up to `total` zero bytes of body; whatever answer came back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    chunk = b"\0" * MB
    sent = 0
    try:
        sock.sendall(head)
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the proxy refused on the headers and closed: the point of the test
    try:
        return read_response(sock, timeout=5)
    finally:
        sock.close()


def test_huge_bodies_without_key_cost_no_memory(keyed: Proxy) -> None:
    """Three 300 MB bodies without a key: refused on the headers (CONTRACT §4)."""
    before = rss_kib(keyed.process.pid)
    peak = before
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % (300 * MB)
    )
    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(send_body_without_reading, keyed.port, head, 300 * MB) for _ in range(3)
        ]
        while not all(f.done() for f in futures):
            peak = max(peak, rss_kib(keyed.process.pid))
            time.sleep(0.05)
        answers = [f.result() for f in futures]
    assert (peak - before) < 50 * 1024, f"RSS grew by {(peak - before) // 1024} MiB"
    for raw in answers:
        if raw:  # the answer may be lost when the client is still sending: never a 2xx/5xx
            status, _, body = split_response(raw)
            assert status == 401
            assert "API key" in openai_error(json.loads(body))["message"]
    # and the proxy still serves
    ok = httpx.get(keyed.base_url + "/v1/models", headers={"authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200


def test_small_body_without_key_is_answered_in_dialect(keyed: Proxy) -> None:
    r = httpx.post(
        keyed.base_url + "/v1/messages",
        json=MESSAGES,
        headers={"anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 401
    anthropic_error(r.json())


@pytest.mark.parametrize(("path", "body", "headers", "shape"), DIALECTS)
def test_body_over_max_body_size_is_413_in_dialect(
    fake: FakeGoogle, tmp_path: Path, path: str, body: Any, headers: dict, shape: Any
) -> None:
    p = start_proxy(
        tmp_path, fake, config={"api-keys": [KEY], "max-body-size": "64KiB"}, auth_files=AUTH
    )
    try:
        big = dict(body, padding="x" * (100 * 1024))
        r = httpx.post(
            p.base_url + path, json=big, headers={"x-goog-api-key": KEY, **headers}, timeout=10
        )
        assert r.status_code == 413, r.text
        assert "max-body-size" in shape(r.json())["message"]
        # chunked (no Content-Length): counted while read
        chunks = iter([json.dumps(big).encode()[i : i + 8192] for i in range(0, 110_000, 8192)])
        r = httpx.post(
            p.base_url + path, content=chunks, headers={"x-goog-api-key": KEY, **headers}
        )
        assert r.status_code == 413, r.text
        shape(r.json())
    finally:
        p.stop()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzip-compressed to about 1 MB."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (16 * MB)
    out = [c.compress(block) for _ in range(64)]
    out.append(c.flush())
    return b"".join(out)


def test_gzip_bomb_is_413_and_costs_no_memory(keyed: Proxy, gzip_bomb: bytes) -> None:
    before = rss_kib(keyed.process.pid)
    started = time.monotonic()
    r = httpx.post(
        keyed.base_url + "/v1/chat/completions",
        content=gzip_bomb,
        headers={
            "authorization": f"Bearer {KEY}",
            "content-type": "application/json",
            "content-encoding": "gzip",
        },
        timeout=30,
    )
    elapsed = time.monotonic() - started
    grown = rss_kib(keyed.process.pid) - before
    assert r.status_code == 413, r.text
    assert "decompressed" in openai_error(r.json())["message"]
    assert grown < 50 * 1024, f"RSS grew by {grown // 1024} MiB"
    assert elapsed < 10


def test_gzip_body_within_limit_is_served(keyed: Proxy) -> None:
    r = httpx.post(
        keyed.base_url + "/v1/chat/completions",
        content=zlib.compress(json.dumps(CHAT).encode()),
        headers={
            "authorization": f"Bearer {KEY}",
            "content-type": "application/json",
            "content-encoding": "deflate",
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


# ---------------------------------------------------------------------- slow clients


def test_slowloris_does_not_lock_out_a_normal_client(fake: FakeGoogle, tmp_path: Path) -> None:
    p = start_proxy(
        tmp_path,
        fake,
        config={"timeouts": {"client-headers": 2, "client-body": 2}},
        auth_files=AUTH,
    )
    held: list[socket.socket] = []
    try:
        for i in range(500):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            # half a request: headers that never end, or a body that never comes
            if i % 2:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: 1\r\n")
            else:
                s.sendall(
                    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 99\r\n\r\n{"
                )
            held.append(s)
        started = time.monotonic()
        r = httpx.post(p.base_url + "/v1/chat/completions", json=CHAT, timeout=5)
        assert r.status_code == 200
        assert time.monotonic() - started < 1.0
        # and the half-sent requests are cut once their deadline passed
        time.sleep(3.5)
        closed = 0
        for s in held:
            s.settimeout(0.5)
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionError):
                closed += 0
        assert closed == len(held)
    finally:
        for s in held:
            s.close()
        p.stop()


# ---------------------------------------------------------------------- upstreams


@pytest.mark.parametrize(("path", "body", "headers", "shape"), DIALECTS)
def test_unreachable_upstream_is_502_in_dialect_naming_it(
    fake: FakeGoogle, tmp_path: Path, path: str, body: Any, headers: dict, shape: Any
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed when the block ends: nothing listens there
    p = start_proxy(
        tmp_path,
        fake,
        config={"endpoints": {"gemini-cli": f"http://127.0.0.1:{dead}"}},
        auth_files=AUTH,
    )
    try:
        r = httpx.post(p.base_url + path, json=body, headers=headers, timeout=10)
        assert r.status_code == 502, r.text
        assert r.headers["content-type"].startswith("application/json")
        message = shape(r.json())["message"]
        assert "Code Assist" in message and "Errno" not in message
        assert "Traceback" not in p.log()
    finally:
        p.stop()


@pytest.mark.parametrize(("path", "body", "headers", "shape"), DIALECTS)
def test_silent_upstream_is_504_after_upstream_idle(
    fake: FakeGoogle, tmp_path: Path, path: str, body: Any, headers: dict, shape: Any
) -> None:
    silent = Hostile("silent")
    p = start_proxy(
        tmp_path,
        fake,
        config={
            "endpoints": {"gemini-cli": silent.url},
            "timeouts": {"upstream-idle": 1.5},
        },
        auth_files=AUTH,
    )
    try:
        started = time.monotonic()
        r = httpx.post(p.base_url + path, json=body, headers=headers, timeout=15)
        assert r.status_code == 504, r.text
        assert "upstream-idle" in shape(r.json())["message"]
        assert time.monotonic() - started < 6
    finally:
        p.stop()
        silent.close()


def test_upstream_connect_timeout_is_502(fake: FakeGoogle, tmp_path: Path) -> None:
    """An upstream whose accept queue is full: the SYN is dropped and connect() hangs."""
    full, fillers = listener_with_a_full_backlog()
    port = full.getsockname()[1]
    p = start_proxy(
        tmp_path,
        fake,
        config={
            "endpoints": {"gemini-cli": f"http://127.0.0.1:{port}"},
            "timeouts": {"upstream-connect": 1},
        },
        auth_files=AUTH,
    )
    try:
        started = time.monotonic()
        r = httpx.post(p.base_url + "/v1/chat/completions", json=CHAT, timeout=15)
        assert r.status_code == 502, r.text
        assert "upstream-connect" in openai_error(r.json())["message"]
        assert time.monotonic() - started < 6
    finally:
        p.stop()
        for f in fillers:
            f.close()
        full.close()


def streamed(path: str, body: Any) -> tuple[str, Any]:
    """The same request of a dialect, asking for a stream."""
    if path.startswith("/v1beta/"):
        return path.replace(":generateContent", ":streamGenerateContent?alt=sse"), body
    return path, dict(body, stream=True)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("how", ["refused", "connect-timeout"])
def test_unreachable_account_fails_over_to_the_next(
    fake: FakeGoogle, tmp_path: Path, how: str, stream: bool
) -> None:
    """Requests take mitmproxy's own upstream call (the native path), streams included; when it
    gets no answer, the next account serves the request instead of the client getting a 502.
    Here the Code Assist account's endpoint is dead while the AI Studio key's answers."""
    api_key = "AIzaSy-hardening-failover-0001"
    fake.add_api_key(api_key)
    if how == "connect-timeout":
        dead, fillers = listener_with_a_full_backlog()
    else:
        dead, fillers = socket.socket(), []
        dead.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    p = start_proxy(
        tmp_path,
        fake,
        config={
            "generative-language-api-key": [api_key],
            "timeouts": {"upstream-connect": 0.5},
            "endpoints": {
                "gemini-cli": f"http://127.0.0.1:{dead.getsockname()[1]}",
                "google-token": fake.token_url,
                "ai-studio": fake.ai_studio_url,
            },
        },
        auth_files=AUTH,
    )
    try:
        for path, body, headers, _ in DIALECTS * 2:  # round robin: the dead account gets a turn
            if stream:
                path, body = streamed(path, body)
            started = time.monotonic()
            r = httpx.post(p.base_url + path, json=body, headers=headers, timeout=15)
            assert r.status_code == 200, r.text
            assert time.monotonic() - started < 4
            if stream:
                assert r.headers["content-type"].startswith("text/event-stream")
                assert b'"error"' not in r.content and b"Echo: " in r.content, r.text
            else:
                assert "error" not in r.json()
        rpc = "ai_studio:streamGenerateContent" if stream else "ai_studio:generateContent"
        served = [r.credential for r in fake.requests if r.rpc == rpc]
        assert served == [api_key] * len(DIALECTS) * 2
        log = p.log()
        # the dead account was tried and failed over from; resting then (a first transient
        # fault rests 0 s, the next longer), it was not tried for every request
        assert 1 <= log.count("refused attempt 1/2") < len(DIALECTS) * 2, log
        assert "account=a@example.com status=502" in log, log
        assert "Traceback" not in log
    finally:
        p.stop()
        for s in [dead, *fillers]:
            s.close()


# ---------------------------------------------------------------------- the relay


@pytest.mark.parametrize("mode", ["html", "redirect"])
def test_relay_turns_html_and_redirects_into_json_502(
    fake: FakeGoogle, tmp_path: Path, mode: str
) -> None:
    hostile = Hostile(mode)
    p = start_proxy(
        tmp_path, fake, config={"endpoints": {"gemini-cli": hostile.url}}, auth_files=AUTH
    )
    try:
        r = httpx.post(p.base_url + "/v1internal:retrieveUserQuota?key=client-secret", json={})
        assert r.status_code == 502, r.text
        google_error(r.json())
        assert hostile.seen and b"client-secret" not in hostile.seen[0]
    finally:
        p.stop()
        hostile.close()


def test_relay_only_forwards_get_post_on_its_paths(fake: FakeGoogle, tmp_path: Path) -> None:
    p = start_proxy(tmp_path, fake, auth_files=AUTH)
    try:
        before = len(fake.requests)
        r = httpx.put(p.base_url + "/v1internal:retrieveUserQuota", json={})
        assert r.status_code == 405
        google_error(r.json())
        # sent raw: HTTP clients would resolve the dot segments themselves
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
            s.sendall(
                b"POST /v1internal:foo/../../x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
                b"content-length: 2\r\n\r\n{}"
            )
            status, _, raw = split_response(read_response(s))
        assert status == 404
        google_error(json.loads(raw))
        assert len(fake.requests) == before  # nothing went upstream
        r = httpx.post(
            p.base_url + "/v1internal:retrieveUserQuota?key=client-secret&alt=json",
            json={"project": PROJECT},
            headers={"authorization": "Bearer client-token"},
        )
        assert r.status_code == 200, r.text
        sent = fake.requests[-1]
        assert "key" not in sent.query and sent.query.get("alt") == "json"
        assert "client-token" not in json.dumps(dict(sent.headers))
        assert sent.headers["authorization"] == "Bearer ya29.valid-a"
    finally:
        p.stop()


# ---------------------------------------------------------------------- framing, config, logs


def test_http10_stream_is_close_delimited(fake: FakeGoogle, tmp_path: Path) -> None:
    p = start_proxy(tmp_path, fake, auth_files=AUTH)
    try:
        body = json.dumps(dict(CHAT, stream=True)).encode()
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.0\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            raw = read_response(s, timeout=10)
        status, headers, payload = split_response(raw)
        assert status == 200
        assert "chunked" not in headers.get("transfer-encoding", "")
        assert "content-length" not in headers
        assert payload.rstrip().endswith(b"data: [DONE]")  # plain SSE, no chunk sizes
    finally:
        p.stop()


def test_emptied_config_is_refused_on_reload(fake: FakeGoogle, tmp_path: Path) -> None:
    p = start_proxy(tmp_path, fake, config={"api-keys": [KEY]}, auth_files=AUTH)
    try:
        p.config_path.write_text("# nothing but a comment\n")
        deadline = time.monotonic() + 10
        while "empty" not in p.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "empty" in p.log()
        assert httpx.get(p.base_url + "/v1/models").status_code == 401  # keys still in force
    finally:
        p.stop()


def test_empty_config_stops_start_up(fake: FakeGoogle, tmp_path: Path) -> None:
    p = start_proxy(tmp_path, fake, wait=False)
    p.config_path.write_text("")
    try:
        # the file was emptied before mitmdump read it (it reads once the script loads)
        code = p.process.wait(timeout=20)
        assert code != 0 and "empty" in p.log()
    finally:
        p.stop()


def test_debug_logs_no_client_key(fake: FakeGoogle, tmp_path: Path) -> None:
    p = start_proxy(tmp_path, fake, config={"api-keys": [KEY], "debug": True}, auth_files=AUTH)
    try:
        assert httpx.get(p.base_url + f"/v1beta/models?key={KEY}").status_code == 200
        r = httpx.post(
            p.base_url + f"/v1beta/models/gemini-2.5-pro:generateContent?key={KEY}", json=GEMINI
        )
        assert r.status_code == 200
        httpx.get(p.base_url + "/v1/models?key=wrong-key-value-123456")
        time.sleep(0.3)
        log = p.log()
        assert KEY not in log and KEY[:-4] not in log
        assert "ya29.valid-a" not in log and "wrong-key-value" not in log
    finally:
        p.stop()


# ---------------------------------------------------------------------- who is loopback


def test_forwarding_headers_from_loopback_are_not_loopback(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    p = start_proxy(tmp_path, fake, auth_files=AUTH)
    try:
        assert httpx.get(p.base_url + "/v1/models").status_code == 200
        for name, value in [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("x-forwarded-for", "127.0.0.1"),  # loopback still: the peer is not trusted
        ]:
            r = httpx.get(p.base_url + "/v1/models", headers={name: value})
            assert r.status_code == 403, (name, value)
            openai_error(r.json())
        health = httpx.get(p.base_url + "/healthz", headers={"x-forwarded-for": "203.0.113.9"})
        assert health.json()["accounts"] == {}  # no emails for a forwarded client
        relay = httpx.post(
            p.base_url + "/v1internal:loadCodeAssist",
            json={},
            headers={"x-forwarded-for": "203.0.113.9"},
        )
        assert relay.status_code == 403
    finally:
        p.stop()


def test_trusted_proxy_right_most_untrusted_address_counts(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    p = start_proxy(
        tmp_path, fake, config={"trusted-proxies": ["127.0.0.0/8", "10.0.0.0/8"]}, auth_files=AUTH
    )
    try:
        cases = [
            ({"x-forwarded-for": "127.0.0.1"}, 200),  # a local client behind local nginx
            ({"x-forwarded-for": "203.0.113.9, 127.0.0.1"}, 403),
            ({"x-forwarded-for": "127.0.0.1, 203.0.113.9, 10.1.2.3"}, 403),  # spoofed left
            ({"forwarded": 'for="[::1]:4711"'}, 200),
            ({"forwarded": "for=203.0.113.9;proto=https"}, 403),
            ({"x-real-ip": "127.0.0.1", "x-forwarded-for": "203.0.113.9"}, 403),
            ({"x-forwarded-for": "garbage"}, 403),
            ({}, 200),
        ]
        for headers, status in cases:
            r = httpx.get(p.base_url + "/v1/models", headers=headers)
            assert r.status_code == status, (headers, r.status_code)
    finally:
        p.stop()


# ---------------------------------------------------------------------- model names


def test_model_names_cannot_alter_the_ai_studio_url(fake: FakeGoogle, tmp_path: Path) -> None:
    fake.add_api_key("AIza-operator-key")
    p = start_proxy(tmp_path, fake, config={"generative-language-api-key": ["AIza-operator-key"]})
    try:
        for model in ["gemini-x?key=attacker&", "gemini-x/../../v1beta/files?", "gemini-x#frag"]:
            r = httpx.post(
                p.base_url + "/v1/chat/completions",
                json=dict(CHAT, model=model),
                timeout=10,
            )
            assert r.status_code == 400, (model, r.text)
            assert "model" in openai_error(r.json())["message"]
        assert not [r for r in fake.requests if "attacker" in r.path or "files" in r.path]
    finally:
        p.stop()


def test_auth_dir_fifo_and_huge_files_are_skipped(fake: FakeGoogle, tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    os.mkfifo(auth / "fifo.json")
    with (auth / "huge.json").open("wb") as f:
        f.truncate(64 * MB)  # sparse: big on paper, no disk used
    p = start_proxy(tmp_path, fake, auth_files=AUTH)
    try:
        r = httpx.post(p.base_url + "/v1/chat/completions", json=CHAT, timeout=10)
        assert r.status_code == 200
        log = p.log()
        assert "fifo.json is not a regular file" in log and "huge.json is larger" in log
    finally:
        p.stop()
    assert p.process.returncode == 0  # SIGTERM was honoured
