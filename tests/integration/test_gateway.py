"""Start-up, client authentication, token refresh and account errors through a real mitmdump."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors
from google.genai import types

from tests.fakes.google import FakeGoogle
from tests.integration.conftest import MITMDUMP
from tests.integration.conftest import PROJECT
from tests.integration.conftest import ROOT
from tests.integration.conftest import Proxy
from tests.integration.conftest import free_port
from tests.integration.conftest import gemini_auth

ACCOUNT_FILE = "gemini-a@example.com-helpful-fox-abc123.json"
MSG = [{"role": "user", "content": "hi"}]


def valid_account() -> dict[str, dict]:
    return {
        ACCOUNT_FILE: gemini_auth(
            "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
        )
    }


def test_api_keys_are_enforced_in_each_dialect(proxy_factory: Callable[..., Proxy]) -> None:
    proxy = proxy_factory(config={"api-keys": ["k-right"]}, auth_files=valid_account())
    base = proxy.base_url
    ok = openai.OpenAI(base_url=base + "/v1", api_key="k-right", max_retries=0)
    assert ok.chat.completions.create(model="gemini-2.5-flash", messages=MSG).choices
    bad = openai.OpenAI(base_url=base + "/v1", api_key="k-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gemini-2.5-flash", messages=MSG)

    # anthropic: Bearer (the SDK's default) and x-api-key (Claude Code's)
    a_ok = anthropic.Anthropic(base_url=base, api_key="k-right", max_retries=0)
    assert a_ok.messages.create(model="gemini-2.5-flash", max_tokens=10, messages=MSG).content
    r = httpx.post(
        base + "/v1/messages",
        json={"model": "gemini-2.5-flash", "max_tokens": 10, "messages": MSG},
        headers={"x-api-key": "k-right", "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 200
    r = httpx.post(
        base + "/v1/messages",
        json={"model": "gemini-2.5-flash", "max_tokens": 10, "messages": MSG},
        headers={"x-api-key": "nope", "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"

    # gemini: x-goog-api-key (the SDK) and ?key=
    g_ok = genai.Client(api_key="k-right", http_options=types.HttpOptions(base_url=base))
    assert g_ok.models.generate_content(model="gemini-2.5-flash", contents="x").text
    r = httpx.post(
        base + "/v1beta/models/gemini-2.5-flash:generateContent?key=k-right",
        json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    )
    assert r.status_code == 200
    g_bad = genai.Client(api_key="k-wrong", http_options=types.HttpOptions(base_url=base))
    with pytest.raises(errors.ClientError) as err:
        g_bad.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert err.value.code == 401 and err.value.status == "UNAUTHENTICATED"
    # no key at all
    r = httpx.get(base + "/v1/models")
    assert r.status_code == 401 and "missing API key" in r.json()["error"]["message"]
    # readiness probes need no key, but see no accounts without one
    assert httpx.get(base + "/healthz").json() == {"status": "ok", "accounts": {}}
    keyed = httpx.get(base + "/healthz", headers={"x-api-key": "k-right"}).json()
    assert list(keyed["accounts"]) == [ACCOUNT_FILE]


def test_expired_token_is_refreshed_and_persisted(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    fake.add_account("ya29.stale-b", "1//refresh-b", PROJECT, email="b@example.com", expired=True)
    name = "gemini-b@example.com-helpful-fox-abc123.json"
    auth = gemini_auth(
        "b@example.com", PROJECT, "ya29.stale-b", "1//refresh-b", timedelta(minutes=-30),
        checked=True, universe_domain="googleapis.com",
    )  # fmt: skip
    fake.token_delay = 0.5
    try:
        proxy = proxy_factory(auth_files={name: auth})
        client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0)
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda i: client.chat.completions.create(
                        model="gemini-2.5-flash", messages=[{"role": "user", "content": f"n{i}"}]
                    ),
                    range(8),
                )
            )
    finally:
        fake.token_delay = 0.0
    assert sorted(a.choices[0].message.content for a in answers) == [
        f"Echo: n{i}" for i in range(8)
    ]
    assert len(fake.token_requests) == 1  # one refresh shared by all concurrent requests
    used = {c.headers["authorization"] for c in fake.calls("generateContent")}
    assert len(used) == 1 and used != {"Bearer ya29.stale-b"}
    path = proxy.auth_dir / name
    saved = json.loads(path.read_text())
    assert "Bearer " + saved["token"]["access_token"] in used
    assert saved["token"]["refresh_token"] == "1//refresh-b"
    assert saved["checked"] is True and saved["universe_domain"] == "googleapis.com"
    expiry = datetime.fromisoformat(saved["token"]["expiry"])
    assert expiry > datetime.now(UTC) + timedelta(minutes=50)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the log never shows a token
    log = proxy.log()
    assert "ya29." not in log and "1//refresh" not in log


def test_no_accounts_is_503_naming_the_login(proxy_factory: Callable[..., Proxy]) -> None:
    proxy = proxy_factory(auth_files={"broken.json": {"type": "gemini"}})
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as err:
        client.messages.create(model="gemini-2.5-pro", max_tokens=10, messages=MSG)
    assert err.value.status_code == 503
    assert "cliproxy login gemini" in err.value.message
    assert "broken.json" in proxy.log()  # the skipped file is named in the log
    health = httpx.get(proxy.base_url + "/healthz").json()
    assert health["status"] == "ok" and health["accounts"] == {}


def test_healthz_shows_accounts(proxy: Proxy) -> None:
    health = httpx.get(proxy.base_url + "/healthz").json()
    account = health["accounts"][ACCOUNT_FILE]
    assert account["email"] == "a@example.com" and account["project"] == PROJECT
    assert account["usable"] is True and account["token_expiry"]
    assert "ya29" not in json.dumps(health)


def test_starts_on_config_port_while_8080_is_taken(
    proxy_factory: Callable[..., Proxy],
) -> None:
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("0.0.0.0", 8080))
        blocker.listen()
    except OSError:
        pass  # something else already holds :8080, which is the situation under test
    try:
        proxy = proxy_factory(auth_files=valid_account())
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200
    finally:
        blocker.close()


def test_explicit_port_wins(proxy_factory: Callable[..., Proxy]) -> None:
    port = free_port()
    proxy = proxy_factory(auth_files=valid_account(), extra_args=["-p", str(port)], wait=False)
    r = None
    for _ in range(100):
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    assert r is not None and r.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.base_url + "/healthz", timeout=1)


def test_invalid_config_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("port: eighty\n")
    result = subprocess.run(
        [
            MITMDUMP,
            "-s",
            str(ROOT / "addons" / "cliproxy.py"),
            "--set",
            f"cliproxy_config={config}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"{config}: port: Input should be a valid integer" in out


def test_upstream_unreachable_is_json_not_html(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = proxy_factory(
        auth_files=valid_account(),
        config={"endpoints": {"gemini-cli": dead, "google-token": fake.token_url}},
    )
    r = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": "gemini-2.5-flash", "messages": MSG},
    )
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("application/json")
    assert "error" in r.json()


def test_request_log_writes_redacted_pairs(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    proxy = proxy_factory(
        auth_files=valid_account(), config={"request-log": True, "api-keys": ["k-secret-1"]}
    )
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k-secret-1", max_retries=0)
    client.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    logs = proxy.config_path.parent / "logs"

    def chat_logs() -> list[str]:
        files = sorted(logs.glob("*.json")) if logs.is_dir() else []
        texts = [f.read_text() for f in files]
        return [t for t in texts if "/v1/chat/completions" in t]

    for _ in range(50):
        if chat_logs():
            break
        time.sleep(0.1)
    (text,) = chat_logs()
    entry = json.loads(text)
    assert entry["client_request"]["body"]["messages"] == MSG
    assert entry["upstream_request"]["body"]["project"] == PROJECT
    assert entry["upstream_response"]["status"] == 200
    assert entry["client_response"]["body"]["choices"][0]["message"]["content"] == "Echo: hi"
    assert "k-secret-1" not in text and "ya29." not in text
    assert entry["client_request"]["headers"]["authorization"] == "<redacted>"


def test_mitmweb_serves_the_proxy_and_prints_its_ui_address(tmp_path: Path) -> None:
    port, web_port = free_port(), free_port()
    (tmp_path / "config.yaml").write_text(
        f"host: 127.0.0.1\nport: {port}\nauth-dir: {tmp_path / 'auth'}\n"
    )
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [
            MITMDUMP.replace("mitmdump", "mitmweb"),
            "-s", str(ROOT / "addons" / "cliproxy.py"),
            "--set", "web_open_browser=false", "--set", f"web_port={web_port}",
        ],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        health = None
        for _ in range(100):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert health is not None and health.json()["status"] == "ok"
        assert "Web server listening at http://127.0.0.1:" in (tmp_path / "web.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
