from __future__ import annotations

import asyncio
import itertools
import json
import stat
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.pool import AccountPool
from cliproxy.addons.accounts.pool import load_accounts

TOKEN_URL = "http://token.test/token"
MODEL = "gemini-2.5-pro"


def write_account(
    d: Path, name: str, *, expires_in: timedelta, refresh: str = "r1", **extra
) -> Path:
    expiry = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "type": "gemini",
        "email": f"{name}@example.com",
        "project_id": f"proj-{name}",
        "token": {"access_token": f"old-{name}", "refresh_token": refresh, "expiry": expiry},
        **extra,
    }
    path = d / f"gemini-{name}.json"
    path.write_text(json.dumps(data))
    return path


class TokenEndpoint:
    def __init__(self, delay: float = 0.0, error: str | None = None) -> None:
        self.calls: list[dict[str, list[str]]] = []
        self.delay = delay
        self.error = error

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(parse_qs(request.content.decode()))
        await asyncio.sleep(self.delay)
        if self.error:
            return httpx.Response(400, json={"error": self.error})
        return httpx.Response(
            200, json={"access_token": f"new-{len(self.calls)}", "expires_in": 3600}
        )


def make_pool(d: Path, endpoint: TokenEndpoint) -> AccountPool:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handler))
    pool = AccountPool(d, {"gemini": TOKEN_URL}, http)
    pool.load()
    return pool


def test_broken_files_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_account(tmp_path, "good", expires_in=timedelta(hours=1))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text(json.dumps({"type": "gemini", "project_id": "p"}))
    (tmp_path / "noproject.json").write_text(json.dumps({"token": {"refresh_token": "x"}}))
    accounts = load_accounts(tmp_path)
    assert [a.email for a in accounts] == ["good@example.com"]
    text = caplog.text
    assert "bad.json is not valid JSON" in text
    assert "empty.json has no token object" in text
    assert "noproject.json has no project_id" in text


async def test_fresh_token_is_not_refreshed(tmp_path: Path) -> None:
    write_account(tmp_path, "a", expires_in=timedelta(hours=1))
    endpoint = TokenEndpoint()
    pool = make_pool(tmp_path, endpoint)
    account = await pool.acquire("gemini", MODEL)
    assert account is not None and account.access_token == "old-a"
    assert endpoint.calls == []


async def test_near_expiry_refresh_is_shared_and_persisted(tmp_path: Path) -> None:
    path = write_account(
        tmp_path,
        "a",
        expires_in=timedelta(minutes=4),
        refresh="keep-me",
        auto=True,
        universe_domain="googleapis.com",
    )
    endpoint = TokenEndpoint(delay=0.2)
    pool = make_pool(tmp_path, endpoint)
    accounts = await asyncio.gather(*(pool.acquire("gemini", MODEL) for _ in range(20)))
    assert len(endpoint.calls) == 1  # single flight
    form = endpoint.calls[0]
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["keep-me"]
    assert form["client_id"][0].startswith("681255809395-")
    assert {a.access_token for a in accounts if a} == {"new-1"}
    saved = json.loads(path.read_text())
    assert saved["token"]["access_token"] == "new-1"
    assert saved["token"]["refresh_token"] == "keep-me"  # Google sends none back: ours is kept
    assert saved["auto"] is True and saved["universe_domain"] == "googleapis.com"
    expiry = parse_time(saved["token"]["expiry"])
    assert expiry is not None and expiry - datetime.now(UTC) > timedelta(minutes=55)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


async def test_revoked_account_is_skipped_for_the_next(tmp_path: Path) -> None:
    write_account(tmp_path, "a", expires_in=timedelta(minutes=-10))
    write_account(tmp_path, "b", expires_in=timedelta(hours=1))
    pool = make_pool(tmp_path, TokenEndpoint(error="invalid_grant"))
    picked = [await pool.acquire("gemini", MODEL) for _ in range(3)]
    assert [a.email for a in picked if a] == ["b@example.com"] * 3
    a = pool.accounts[0]
    assert a.disabled and "cliproxy login gemini" in a.disabled
    assert a.last_error == "token refresh failed: invalid_grant"


async def test_transient_refresh_failure_does_not_disable(tmp_path: Path) -> None:
    write_account(tmp_path, "a", expires_in=timedelta(minutes=-10))
    pool = make_pool(tmp_path, TokenEndpoint(error="temporarily_unavailable"))
    assert await pool.acquire("gemini", MODEL) is None
    assert pool.accounts[0].disabled is None


async def test_round_robin(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_account(tmp_path, name, expires_in=timedelta(hours=1))
    pool = make_pool(tmp_path, TokenEndpoint())
    picked = [(await pool.acquire("gemini", MODEL)).email for _ in range(6)]  # type: ignore[union-attr]
    assert sorted(picked[:3]) == ["a@example.com", "b@example.com", "c@example.com"]
    assert picked[:3] == picked[3:]


async def test_cooling_account_is_skipped_for_that_model_only(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_account(tmp_path, name, expires_in=timedelta(hours=1))
    pool = make_pool(tmp_path, TokenEndpoint())
    a = pool.accounts[0]
    rest = a.cool(MODEL, "quota", 30.0, "HTTP 429")
    assert 29 < rest <= 30
    picked = {(await pool.acquire("gemini", MODEL)).email for _ in range(4)}  # type: ignore[union-attr]
    assert picked == {"b@example.com"}
    other = {(await pool.acquire("gemini", "gemini-2.5-flash")).email for _ in range(4)}  # type: ignore[union-attr]
    assert other == {"a@example.com", "b@example.com"}
    assert pool.wait_seconds("gemini", MODEL) is None  # b can still serve
    pool.accounts[1].cool(MODEL, "quota", 10.0, "HTTP 429")
    assert await pool.acquire("gemini", MODEL) is None
    wait = pool.wait_seconds("gemini", MODEL)
    assert wait is not None and 9 < wait <= 10  # the earliest one back
    a.succeeded(MODEL)
    assert (await pool.acquire("gemini", MODEL)) is a


def test_backoff_doubles_without_a_hint_and_keeps_the_later_deadline(tmp_path: Path) -> None:
    write_account(tmp_path, "a", expires_in=timedelta(hours=1))
    a = load_accounts(tmp_path)[0]
    rests = [round(a.cool(MODEL, "quota", None, "429")) for _ in range(4)]
    assert rests == [1, 2, 4, 8]
    assert round(a.cool(MODEL, "quota", 2.0, "429")) == 8  # a shorter hint never shortens it
    assert round(a.cool("m2", "quota", 10 * 24 * 3600.0, "429")) == 6 * 3600  # absurd hints capped


async def test_sync_adds_removes_and_keeps_running_state(tmp_path: Path) -> None:
    path_a = write_account(tmp_path, "a", expires_in=timedelta(hours=1))
    pool = make_pool(tmp_path, TokenEndpoint())
    a = pool.accounts[0]
    a.cool(MODEL, "quota", 60.0, "429")
    a.requests_served = 7
    assert pool.sync() is False  # nothing changed
    write_account(tmp_path, "b", expires_in=timedelta(hours=1))
    assert pool.sync() is True
    assert [x.email for x in pool.accounts] == ["a@example.com", "b@example.com"]
    assert pool.accounts[0] is a  # untouched file: the same object, cooldown and all
    data = json.loads(path_a.read_text())
    data["email"] = "a2@example.com"
    path_a.write_text(json.dumps(data))
    assert pool.sync() is True
    edited = pool.accounts[0]
    assert edited.email == "a2@example.com" and edited.requests_served == 7
    assert edited.cooling(MODEL) > 0
    path_a.unlink()
    assert pool.sync() is True
    assert [x.email for x in pool.accounts] == ["b@example.com"]


async def test_own_refresh_write_is_not_a_change(tmp_path: Path) -> None:
    write_account(tmp_path, "a", expires_in=timedelta(minutes=1))
    pool = make_pool(tmp_path, TokenEndpoint())
    account = await pool.acquire("gemini", MODEL)
    assert account is not None and account.access_token == "new-1"
    assert pool.sync() is False


def test_ai_studio_keys_join_the_gemini_pool_masked(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, TokenEndpoint())
    pool.set_keys(["AIzaSyA-first-key-1234", "AIzaSyB-second-key-5678"])
    first = pool.keys[0]
    first.cool(MODEL, "quota", 40.0, "429")
    pool.set_keys(["AIzaSyA-first-key-1234"])
    assert pool.keys == [first] and first.cooling(MODEL) > 0  # unchanged key keeps its state
    assert first.provider == "gemini" and "1234" in first.label
    assert "AIzaSyA" not in first.label and "AIzaSyA" not in first.name


async def test_auth_dir_is_read_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the watcher reads auth files (a slow disk here), the event loop keeps serving."""
    import time as clock

    from cliproxy.addons.accounts import pool as pool_module

    write_account(tmp_path, "a", expires_in=timedelta(hours=1))
    pool = AccountPool(tmp_path, {}, httpx.AsyncClient())
    pool.load()
    write_account(tmp_path, "b", expires_in=timedelta(hours=1))
    real = pool_module.load_account

    def slow(path: Path) -> object:
        clock.sleep(0.3)  # a slow read, blocking its thread
        return real(path)

    monkeypatch.setattr(pool_module, "load_account", slow)
    stamps: list[float] = []

    async def tick() -> None:
        for _ in range(30):
            stamps.append(clock.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    await asyncio.sleep(0.05)  # the loop is ticking when the read starts
    changed = await pool.sync_off_loop()
    await ticker
    assert changed and [a.email for a in pool.accounts] == ["a@example.com", "b@example.com"]
    # the loop ticked on while the file was read: no gap near the read's 0.3 s
    assert max(b - a for a, b in itertools.pairwise(stamps)) < 0.2
