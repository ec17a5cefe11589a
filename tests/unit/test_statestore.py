"""The shared store on a real redis-server: keys, expiry, the refresh lock, usage totals, what an
outage does; and the pool's use of it with two pools standing for two replicas."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from cliproxy.addons.accounts.pool import AccountPool
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import parse_settings
from cliproxy.addons.statestore import Rest
from cliproxy.addons.statestore import open_store
from cliproxy.addons.statestore import parse_store_url
from cliproxy.addons.statestore.base import Disabled
from cliproxy.addons.statestore.redis_store import RedisStore

from tests.fixtures.redis_server import RedisServer
from tests.fixtures.redis_server import free_port
from tests.fixtures.redis_server import redis_server  # noqa: F401  (fixture)

MODEL = "gemini-2.5-pro"
TOKEN_URL = "http://token.test/token"


@pytest.fixture
async def stores(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:  # noqa: F811
    """Two clients of one Redis: what two replicas hold."""
    a, b = open_store(redis_server.url), open_store(redis_server.url)
    assert isinstance(a, RedisStore) and isinstance(b, RedisStore)
    yield a, b
    await a.close()
    await b.close()


# ---------------------------------------------------------------------- config and URL


def test_url_prefix_and_masked_password() -> None:
    url = parse_store_url("redis://user:s3cret@h:6380/2?prefix=team-a:&health_check_interval=5")
    assert url.prefix == "team-a:"
    assert url.redis_url == "redis://user:s3cret@h:6380/2?health_check_interval=5"
    assert url.display == "redis://***@h:6380/2" and "s3cret" not in str(url)
    assert parse_store_url("redis://h:6379/0").prefix == "cliproxy:"


def test_state_store_setting_is_validated() -> None:
    assert parse_settings({"state-store": "redis://h:6379/0"}).state_store == "redis://h:6379/0"
    assert parse_settings({}).state_store == ""
    with pytest.raises(SettingsError, match="state-store"):
        parse_settings({"state-store": "memcached://h:11211"})


@pytest.mark.parametrize(("url", "imported"), [("", False), ("redis://127.0.0.1:1/0", True)])
def test_redis_is_imported_only_with_a_redis_state_store(
    tmp_path: Path, url: str, imported: bool
) -> None:
    code = (
        "import sys\n"
        "from cliproxy.addons.settings import Settings\n"
        "from cliproxy.addons.state import State\n"
        f"State().apply(Settings(auth_dir={str(tmp_path)!r}, state_store={url!r}))\n"
        "print('redis' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(imported)


# ---------------------------------------------------------------------- the store


async def test_round_robin_cursor_is_global(stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = stores
    turns = []
    for store in (a, b, a, b):
        view = await store.view("gemini", MODEL, ["x.json"])
        assert view is not None
        turns.append(view.turn)
    assert turns == [1, 2, 3, 4]
    other = await a.view("codex", "gpt-5", ["y.json"])
    assert other is not None and other.turn == 1  # one cursor per provider


async def test_rest_is_seen_by_the_other_and_expires_with_it(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = stores
    await a.put_rest(Rest("x.json", MODEL, time.time() + 0.5, 2, "HTTP 429: quota"))
    view = await b.view("gemini", MODEL, ["x.json", "y.json"])
    assert view is not None and set(view.rests) == {"x.json"}
    assert view.rests["x.json"].failures == 2 and view.rests["x.json"].reason == "HTTP 429: quota"
    other_model = await b.view("gemini", "gemini-2.5-flash", ["x.json"])
    assert other_model is not None and other_model.rests == {}  # per (account, model)
    assert [r.account for r in await b.rests()] == ["x.json"]
    ttl = await a.client.pttl("cliproxy:rest:x.json:" + MODEL)
    assert 0 < ttl <= 500  # the key expires with the rest, under the default prefix
    await asyncio.sleep(0.6)
    view = await b.view("gemini", MODEL, ["x.json"])
    assert view is not None and view.rests == {}
    assert await b.rests() == []


async def test_disabled_mark_is_shared(stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = stores
    await a.put_disabled("x.json", Disabled("needs re-login", "f" * 16))
    view = await b.view("gemini", MODEL, ["x.json"])
    assert view is not None and view.disabled["x.json"] == Disabled("needs re-login", "f" * 16)
    assert await b.disabled("x.json") == Disabled("needs re-login", "f" * 16)


async def test_lock_is_exclusive_and_freed_only_by_its_holder(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = stores
    token = await a.lock("x.json", ttl=5)
    assert token is not None
    assert await b.lock("x.json", ttl=5) is None
    await b.unlock("x.json", "not-the-token")  # compare-and-delete: not b's lock
    assert await b.lock("x.json", ttl=5) is None
    await a.unlock("x.json", token)
    assert await b.lock("x.json", ttl=5) is not None


async def test_a_dead_holders_lock_expires(stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = stores
    assert await a.lock("x.json", ttl=0.2) is not None  # a "dies" holding it
    assert await b.lock("x.json", ttl=5) is None
    await asyncio.sleep(0.3)
    assert await b.lock("x.json", ttl=5) is not None


async def test_usage_totals_are_the_same_for_every_replica(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = stores
    today = datetime.now(UTC).date().isoformat()
    await a.add_usage(today, "a@example.com", MODEL, 1, 0, 100, 10)
    await b.add_usage(today, "a@example.com", MODEL, 1, 1, 50, 0)
    await b.add_usage(today, "b@example.com", "gpt-5", 1, 0, 7, 3)
    old = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    await a.add_usage(old, "a@example.com", MODEL, 2, 0, 1, 1)
    rows_a = [r.as_dict() for r in await a.usage(since_days=1)]
    rows_b = [r.as_dict() for r in await b.usage(since_days=1)]
    assert rows_a == rows_b == [
        {"day": today, "account": "a@example.com", "model": MODEL, "requests": 2, "errors": 1,
         "input_tokens": 150, "output_tokens": 10},
        {"day": today, "account": "b@example.com", "model": "gpt-5", "requests": 1, "errors": 0,
         "input_tokens": 7, "output_tokens": 3},
    ]  # fmt: skip
    assert len(await b.usage(since_days=7)) == 3


async def test_prefix_keeps_two_deployments_apart(redis_server: RedisServer) -> None:  # noqa: F811
    team_a = open_store(redis_server.url + "?prefix=team-a:")
    team_b = open_store(redis_server.url + "?prefix=team-b:")
    assert team_a is not None and team_b is not None
    try:
        await team_a.put_rest(Rest("x.json", MODEL, time.time() + 30, 1, "429"))
        assert [r.account for r in await team_a.rests()] == ["x.json"]
        assert await team_b.rests() == []
    finally:
        await team_a.close()
        await team_b.close()


async def test_outage_is_one_log_line_and_the_store_rejoins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis")
    store = open_store(server.url)
    assert store is not None
    rejoined = asyncio.Event()

    async def on_rejoin() -> None:
        rejoined.set()

    store.on_rejoin(on_rejoin)
    caplog.set_level(logging.WARNING)
    try:
        started = time.monotonic()
        for _ in range(20):  # nothing listens: every call answers "nothing known", at once
            assert await store.view("gemini", MODEL, ["x.json"]) is None
            assert await store.lock("x.json", 5) is None
        assert time.monotonic() - started < 2.0
        assert not store.available
        lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(lines) == 1
        server.start()
        await asyncio.wait_for(rejoined.wait(), timeout=15)
        assert store.available
        view = await store.view("gemini", MODEL, ["x.json"])
        assert view is not None and view.turn == 1
    finally:
        await store.close()
        server.stop()


# ---------------------------------------------------------------------- two pools, one Redis


class SingleUseTokens:
    """A Google-style token endpoint whose refresh tokens are single use (as OpenAI's are)."""

    def __init__(self) -> None:
        self.valid = {"r-1"}
        self.calls: list[str] = []
        self.issued = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        token = parse_qs(request.content.decode())["refresh_token"][0]
        self.calls.append(token)
        await asyncio.sleep(0.2)  # long enough for every replica to find the token expired
        if token not in self.valid:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.valid.discard(token)
        self.issued += 1
        self.valid.add(f"r-{self.issued + 1}")
        return httpx.Response(
            200,
            json={
                "access_token": f"new-{self.issued}",
                "refresh_token": f"r-{self.issued + 1}",
                "expires_in": 3600,
            },
        )


def write_gemini(d: Path, name: str, expires_in: timedelta) -> Path:
    expiry = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = d / f"gemini-{name}.json"
    data = {
        "type": "gemini",
        "email": f"{name}@example.com",
        "project_id": f"proj-{name}",
        "token": {"access_token": f"old-{name}", "refresh_token": "r-1", "expiry": expiry},
    }
    path.write_text(json.dumps(data))
    return path


def replica(auth_dir: Path, url: str, endpoint: SingleUseTokens) -> AccountPool:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handler))
    pool = AccountPool(auth_dir, {"gemini": TOKEN_URL}, http, open_store(url))
    pool.load()
    return pool


async def test_one_refresh_across_replicas_with_separate_auth_dirs(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """Each replica has its own copy of the file (several hosts): the token travels via Redis."""
    endpoint = SingleUseTokens()
    pools = []
    for i in range(3):
        (tmp_path / f"r{i}").mkdir()
        write_gemini(tmp_path / f"r{i}", "a", timedelta(minutes=-1))
        pools.append(replica(tmp_path / f"r{i}", redis_server.url, endpoint))
    try:
        picked = await asyncio.gather(*(pools[i % 3].acquire("gemini", MODEL) for i in range(8)))
        assert endpoint.calls == ["r-1"]  # one refresh, never the spent token again
        assert {a.access_token for a in picked if a} == {"new-1"} and all(picked)
        for i in range(3):  # every copy of the file now holds the new grant
            saved = json.loads((tmp_path / f"r{i}" / "gemini-a.json").read_text())
            assert saved["token"]["refresh_token"] == "r-2"
    finally:
        for pool in pools:
            assert pool.store is not None
            await pool.store.close()


async def test_rest_and_relogin_mark_travel_between_pools(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    write_gemini(tmp_path, "a", timedelta(hours=1))
    write_gemini(tmp_path, "b", timedelta(hours=1))
    endpoint = SingleUseTokens()
    one, two = (replica(tmp_path, redis_server.url, endpoint) for _ in range(2))
    try:
        first = await one.acquire("gemini", MODEL)
        assert first is not None
        await one.rest(first, MODEL, "quota", 30.0, "HTTP 429: quota")
        picks = {a.name for a in [await two.acquire("gemini", MODEL) for _ in range(4)] if a}
        other = next(a for a in one.accounts if a.name != first.name)
        shared = await two.resting()  # what `cliproxy_account_resting` shows on either replica
        assert [(r.account, r.model) for r in shared] == [(first.name, MODEL)]
        assert picks == {other.name}  # `two` never served from a rest it had not seen itself
        assert two.wait_seconds("gemini", MODEL) is None
        await one.disable(other, "needs re-login: run `cliproxy login gemini`")
        assert await two.acquire("gemini", MODEL) is None
        wait = two.wait_seconds("gemini", MODEL)
        assert wait is not None and 25 < wait <= 30  # one rests, the other needs a login
    finally:
        for pool in (one, two):
            assert pool.store is not None
            await pool.store.close()


async def test_pool_serves_when_redis_is_unreachable(tmp_path: Path) -> None:
    write_gemini(tmp_path, "a", timedelta(hours=1))
    write_gemini(tmp_path, "b", timedelta(hours=1))
    pool = replica(tmp_path, f"redis://127.0.0.1:{free_port()}/0", SingleUseTokens())
    try:
        picked = [await pool.acquire("gemini", MODEL) for _ in range(4)]
        assert [a.name for a in picked if a] == ["gemini-a.json", "gemini-b.json"] * 2
        assert pool.store is not None and not pool.store.available
    finally:
        assert pool.store is not None
        await pool.store.close()
