"""Issue 9's pure parts: sizes and timeouts in config.yaml, the empty config, who is loopback,
bounded decoding, error pages in the caller's shape, auth files a hostile auth-dir holds, and a
refreshed token that cannot be written."""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cliproxy.addons.access import client_addresses
from cliproxy.addons.access import key_matches
from cliproxy.addons.access import relay_refusal
from cliproxy.addons.access import trusted_networks
from cliproxy.addons.accounts import pool as pool_module
from cliproxy.addons.accounts.authfile import AuthFileError
from cliproxy.addons.accounts.authfile import lifetime
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.authfile import read_auth_file
from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.addons.accounts.pool import AccountPool
from cliproxy.addons.jsoncheck import check_json
from cliproxy.addons.limits import ERROR_PAGE
from cliproxy.addons.limits import BodyTooLarge
from cliproxy.addons.limits import ErrorPage
from cliproxy.addons.limits import UnknownEncoding
from cliproxy.addons.limits import decode_bounded
from cliproxy.addons.limits import error_page
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import load_settings
from cliproxy.addons.settings import parse_settings
from cliproxy.addons.upstreams.ai_studio import method_url
from mitmproxy import http


@pytest.mark.parametrize(
    ("value", "size"),
    [("32MiB", 32 << 20), ("512KiB", 512 << 10), ("100B", 100), (4096, 4096), ("1GiB", 1 << 30)],
)
def test_max_body_size_units(value: object, size: int) -> None:
    assert parse_settings({"max-body-size": value}).max_body_size == size


@pytest.mark.parametrize("value", ["32MB", "-1", 0, True, "lots", 1.5])
def test_bad_sizes_name_the_key(value: object) -> None:
    with pytest.raises(SettingsError, match="max-body-size"):
        parse_settings({"max-body-size": value})


def test_timeouts_and_trusted_proxies() -> None:
    s = parse_settings({"timeouts": {"client-headers": 3}, "trusted-proxies": ["10.0.0.0/8"]})
    assert s.timeouts.client_headers == 3 and s.timeouts.upstream_idle == 600
    with pytest.raises(SettingsError, match=r"timeouts\.client-body"):
        parse_settings({"timeouts": {"client-body": 0}})
    with pytest.raises(SettingsError, match="trusted-proxies"):
        parse_settings({"trusted-proxies": ["nginx"]})


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # another\n"])
def test_empty_config_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match="empty"):
        load_settings(path)


TRUSTED = trusted_networks(["127.0.0.0/8", "::1/128", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "loopback"),
    [
        ("127.0.0.1", {}, [], True),
        ("::1", {}, [], True),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, [], False),
        ("127.0.0.1", {"forwarded": "for=127.0.0.1"}, [], False),
        ("127.0.0.1", {"x-real-ip": "127.0.0.1"}, [], False),
        ("203.0.113.1", {}, TRUSTED, False),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, TRUSTED, True),
        ("127.0.0.1", {"x-forwarded-for": "198.51.100.7, 127.0.0.1"}, TRUSTED, False),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1, 198.51.100.7, 10.0.0.2"}, TRUSTED, False),
        ("127.0.0.1", {"forwarded": 'for="[::1]:80", for=10.0.0.1'}, TRUSTED, True),
        ("127.0.0.1", {"forwarded": "for=_hidden"}, TRUSTED, False),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1", "x-real-ip": "8.8.8.8"}, TRUSTED, False),
        ("10.0.0.5", {}, TRUSTED, False),  # the trusted proxy itself is no loopback client
    ],
)
def test_who_is_loopback(peer: str, headers: dict, trusted: list, loopback: bool) -> None:
    found = client_addresses(peer, http.Headers(**headers) if headers else http.Headers(), trusted)
    assert (bool(found) and all(a is not None and a.is_loopback for a in found)) is loopback


def test_key_compare_survives_undecodable_keys() -> None:
    assert key_matches("k1", ["k0", "k1"])
    assert not key_matches("\udcff", ["k1"])
    assert not key_matches("k", ["k1"])


@pytest.mark.parametrize(
    ("method", "action", "rpc", "status"),
    [
        ("POST", "relay", "retrieveUserQuota", None),
        ("GET", "relay_operation", "operations/abc-1", None),
        ("PUT", "relay", "retrieveUserQuota", 405),
        ("POST", "relay", "foo/../../x", 404),
        ("POST", "relay", "x?alt=1", 404),
        ("GET", "relay_operation", "operations/../../v1/x", 404),
    ],
)
def test_relay_refusal(method: str, action: str, rpc: str, status: int | None) -> None:
    refusal = relay_refusal(method, action, rpc)
    assert (refusal.status_code if refusal else None) == status


def test_ai_studio_url_never_changes_path_or_query() -> None:
    url = method_url("https://g.example", "gemini-x?key=attacker&/../../files", "generateContent")
    assert url.startswith("https://g.example/v1beta/models/")
    assert "?" not in url and "/../" not in url and url.endswith(":generateContent")


def test_decode_bounded() -> None:
    data = b'{"a": 1}'
    assert decode_bounded(zlib.compress(data, wbits=31), "gzip", 100) == data
    assert decode_bounded(zlib.compress(data), "deflate", 100) == data
    raw = zlib.compressobj(wbits=-15)
    assert decode_bounded(raw.compress(data) + raw.flush(), "deflate", 100) == data
    with pytest.raises(BodyTooLarge):
        decode_bounded(zlib.compress(b"\0" * 10_000, wbits=31), "gzip", 1000)
    with pytest.raises(UnknownEncoding):
        decode_bounded(data, "br", 100)
    with pytest.raises(ValueError, match="cannot be decoded"):
        decode_bounded(b"not gzip", "gzip", 100)


def test_check_json() -> None:
    assert check_json({"a": [1, "x", {"b": None}]}) is None
    assert "surrogate" in (check_json({"a": "\ud800"}) or "")
    assert "surrogate" in (check_json({"\udfff": 1}) or "")
    deep: object = 1
    for _ in range(101):
        deep = [deep]
    assert "deeper" in (check_json(deep) or "")


def test_error_page_takes_the_callers_shape() -> None:
    token = ERROR_PAGE.set(ErrorPage("anthropic", 504, "Codex sent nothing"))
    try:
        raw = error_page(502, "ignored")
    finally:
        ERROR_PAGE.reset(token)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504")
    answer = json.loads(body)
    assert set(answer) == {"type", "error"} and answer["type"] == "error"
    assert answer["error"]["message"] == "Codex sent nothing"
    assert "status" not in answer["error"]  # nothing of the Gemini shape mixed in


def test_auth_files_hostile_shapes(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(AuthFileError, match="regular file"):
        read_auth_file(fifo)  # returns at once: never blocks on the FIFO
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(8 << 20)
    with pytest.raises(AuthFileError, match="larger"):
        read_auth_file(huge)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(AuthFileError):
        read_auth_file(tmp_path / "dir.json")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(AuthFileError):
        read_auth_file(deep)


@pytest.mark.parametrize("value", [99999999999999999999, 1e300, float("nan"), -1e20])
def test_absurd_expiries_are_no_expiry(value: float) -> None:
    assert parse_time(value) is None


@pytest.mark.parametrize("value", [1e30, float("inf"), float("nan"), -5, "3600", True])
def test_absurd_expires_in_is_bounded(value: object) -> None:
    got = lifetime(value)
    assert got is None or got <= timedelta(days=3650)


async def test_unwritable_auth_dir_serves_the_new_token_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "codex.json"
    path.write_text(json.dumps({
        "type": "codex", "email": "c@example.com", "account_id": "acc",
        "access_token": "old", "refresh_token": "rt-1", "expired": later,
    }))  # fmt: skip

    def token(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"access_token": "new", "refresh_token": "rt-2", "expires_in": 1e30}
        )

    http_client = httpx.AsyncClient(transport=httpx.MockTransport(token))
    pool = AccountPool(tmp_path, {"codex": "http://token.test"}, http_client)
    pool.load()
    writes: list[str] = []

    def failing_write(p: Path, data: dict) -> None:
        writes.append(data["refresh_token"])
        if len(writes) < 3:
            raise OSError(28, "No space left on device")
        p.write_text(json.dumps(data))

    monkeypatch.setattr(pool_module, "write_auth_file", failing_write)
    monkeypatch.setattr(pool_module, "WRITE_RETRY_FIRST", 0.01)
    account = await pool.acquire("codex", "gpt-5")
    assert isinstance(account, CodexAccount) and account.access_token == "new"
    for _ in range(200):
        if len(writes) >= 3:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert writes == ["rt-2", "rt-2", "rt-2"]
    assert json.loads(path.read_text())["refresh_token"] == "rt-2"  # the rotated token survives
    await http_client.aclose()


def test_startup_refuses_clients_of_any_other_listener() -> None:
    """Should mitmproxy's default forward proxy come up before `load()` held it back, its
    clients are refused before any byte is relayed."""
    from cliproxy.addons.startup import Startup
    from cliproxy.addons.state import State
    from mitmproxy.proxy.mode_specs import ProxyMode
    from mitmproxy.test import tflow

    startup = Startup(State())
    startup.own_mode = True
    regular = tflow.tclient_conn()
    regular.proxy_mode = ProxyMode.parse("regular")
    startup.client_connected(regular)
    assert regular.error
    ours = tflow.tclient_conn()
    ours.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9@8317")
    startup.client_connected(ours)
    assert not ours.error
    startup.own_mode = False  # --mode given: whatever the user asked for is served
    other = tflow.tclient_conn()
    other.proxy_mode = ProxyMode.parse("regular")
    startup.client_connected(other)
    assert not other.error
