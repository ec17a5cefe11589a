from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from addons.accounts.authfile import parse_time
from addons.accounts.pool import AccountPool
from addons.accounts.pool import load_accounts

TOKEN_URL = "http://token.test/token"


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
    account = await pool.acquire("gemini")
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
    accounts = await asyncio.gather(*(pool.acquire("gemini") for _ in range(20)))
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
    picked = [await pool.acquire("gemini") for _ in range(3)]
    assert [a.email for a in picked if a] == ["b@example.com"] * 3
    a = pool.accounts[0]
    assert a.disabled and "cliproxy login gemini" in a.disabled
    assert a.last_error == "invalid_grant"


async def test_transient_refresh_failure_does_not_disable(tmp_path: Path) -> None:
    write_account(tmp_path, "a", expires_in=timedelta(minutes=-10))
    pool = make_pool(tmp_path, TokenEndpoint(error="temporarily_unavailable"))
    assert await pool.acquire("gemini") is None
    assert pool.accounts[0].disabled is None


async def test_round_robin(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_account(tmp_path, name, expires_in=timedelta(hours=1))
    pool = make_pool(tmp_path, TokenEndpoint())
    picked = [(await pool.acquire("gemini")).email for _ in range(6)]  # type: ignore[union-attr]
    assert sorted(picked[:3]) == ["a@example.com", "b@example.com", "c@example.com"]
    assert picked[:3] == picked[3:]
