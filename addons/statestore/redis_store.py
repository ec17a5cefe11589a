"""The shared state on Redis (redis-py's asyncio client): keys, commands, and what a failure means.

Keys (all under the prefix, default `cliproxy:`):
  rr:{provider}          INCR: the global round-robin cursor
  rest:{account}:{model} JSON Rest, expiring with the rest (PX)
  off:{account}          JSON Disabled ("needs re-login" for one grant), expires after a week
  lock:{account}         the refresh lock: a random token, SET NX PX, freed by compare-and-delete
  token:{account}        JSON: the latest refreshed token fields and their expiry
  usage:{day}            hash "{account}\\t{model}\\t{metric}" -> HINCRBY counters

Every public method turns a Redis failure into "nothing known" and marks the link down, so a
request never fails because of Redis; while the link is down no command is sent at all.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

import redis.asyncio as aioredis
from cliproxy.addons.statestore.base import Disabled
from cliproxy.addons.statestore.base import Rest
from cliproxy.addons.statestore.base import UsageRow
from cliproxy.addons.statestore.base import View
from cliproxy.addons.statestore.link import Link
from cliproxy.addons.statestore.link import Rejoin
from cliproxy.addons.statestore.url import StoreURL
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

T = TypeVar("T")

# Loopback or a LAN answers in well under a millisecond; a Redis that takes longer than this is
# treated as down rather than holding requests up.
SOCKET_TIMEOUT = 0.5
OFF_TTL = 7 * 24 * 3600  # a "needs re-login" mark outlives any restart of the replicas
TOKEN_TTL = 30 * 24 * 3600  # longer than a refresh token is left unused in practice
USAGE_TTL = 400 * 24 * 3600  # usage per day is kept for a bit more than a year
USAGE_METRICS = ("requests", "errors", "input_tokens", "output_tokens")

# Free the lock only if it is still ours: after a PX expiry another replica may hold it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore:
    def __init__(self, url: StoreURL) -> None:
        self._url = url
        self._p = url.prefix
        # One immediate retry on a fresh connection absorbs a pooled connection that died with a
        # Redis restart; no backoff here, the link's reconnect loop does the waiting.
        self.client = aioredis.Redis.from_url(
            url.redis_url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._release = self.client.register_script(RELEASE)
        self.link = Link(self.client.ping, url.display)

    def __str__(self) -> str:
        return self._url.display

    @property
    def available(self) -> bool:
        return self.link.up

    def on_rejoin(self, callback: Rejoin) -> None:
        self.link.on_rejoin(callback)

    async def _run(self, call: Callable[[], Awaitable[T]], default: T) -> T:
        if not self.link.up:
            return default
        try:
            return await call()
        except (RedisError, OSError, TimeoutError) as e:
            self.link.lost(e)
            return default

    # ------------------------------------------------------------------ pool

    async def view(self, provider: str, model: str, accounts: Sequence[str]) -> View | None:
        """INCR the provider's cursor and read the candidates' rests and marks: one round trip."""
        names = list(accounts)
        if not names:
            return None

        async def call() -> View:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.incr(f"{self._p}rr:{provider}")
                pipe.mget([f"{self._p}rest:{a}:{model}" for a in names])
                pipe.mget([f"{self._p}off:{a}" for a in names])
                turn, rest_values, off_values = await pipe.execute()
            rests = {a: r for a, v in zip(names, rest_values, strict=True) if (r := _rest(v))}
            off = {a: d for a, v in zip(names, off_values, strict=True) if (d := _disabled(v))}
            return View(int(turn), rests, off)

        return await self._run(call, None)

    async def put_rest(self, rest: Rest) -> None:
        ms = int((rest.until - time.time()) * 1000)
        if ms <= 0:
            return
        value = json.dumps(
            {
                "account": rest.account,
                "model": rest.model,
                "until": rest.until,
                "failures": rest.failures,
                "reason": rest.reason,
            }
        )
        key = f"{self._p}rest:{rest.account}:{rest.model}"
        await self._run(lambda: self.client.set(key, value, px=ms), None)

    async def put_disabled(self, account: str, mark: Disabled) -> None:
        value = json.dumps({"reason": mark.reason, "fingerprint": mark.fingerprint})
        await self._run(lambda: self.client.set(f"{self._p}off:{account}", value, ex=OFF_TTL), None)

    async def disabled(self, account: str) -> Disabled | None:
        value = await self._run(lambda: self.client.get(f"{self._p}off:{account}"), None)
        return _disabled(value)

    async def rests(self) -> list[Rest]:
        """Every shared rest still running (for `cliproxy_account_resting`)."""

        async def call() -> list[Rest]:
            keys = [k async for k in self.client.scan_iter(match=f"{self._p}rest:*", count=500)]
            values = await self.client.mget(keys) if keys else []
            return [r for v in values if (r := _rest(v)) is not None]

        return await self._run(call, [])

    # ------------------------------------------------------------------ refresh

    async def lock(self, account: str, ttl: float) -> str | None:
        """The lock's token when this replica now holds the refresh lock of `account`."""
        token = secrets.token_hex(16)
        key = f"{self._p}lock:{account}"
        ms = int(ttl * 1000)
        got = await self._run(lambda: self.client.set(key, token, nx=True, px=ms), None)
        return token if got else None

    async def unlock(self, account: str, token: str) -> None:
        key = f"{self._p}lock:{account}"
        await self._run(lambda: self._release(keys=[key], args=[token]), None)

    async def token(self, account: str) -> dict[str, Any] | None:
        value = await self._run(lambda: self.client.get(f"{self._p}token:{account}"), None)
        try:
            record = json.loads(value) if value else None
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    async def put_token(self, account: str, record: dict[str, Any]) -> None:
        key, value = f"{self._p}token:{account}", json.dumps(record)
        await self._run(lambda: self.client.set(key, value, ex=TOKEN_TTL), None)

    # ------------------------------------------------------------------ usage

    async def add_usage(
        self,
        day: str,
        account: str,
        model: str,
        requests: int = 1,
        errors: int = 0,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        key = f"{self._p}usage:{day}"
        counts = (requests, errors, input_tokens, output_tokens)

        async def call() -> None:
            async with self.client.pipeline(transaction=False) as pipe:
                for metric, amount in zip(USAGE_METRICS, counts, strict=True):
                    if amount:
                        pipe.hincrby(key, f"{account}\t{model}\t{metric}", amount)
                pipe.expire(key, USAGE_TTL)
                await pipe.execute()

        await self._run(call, None)

    async def usage(self, since_days: int) -> list[UsageRow]:
        """Totals per (day, account, model) for today and the `since_days - 1` days before (UTC)."""
        today = datetime.now(UTC).date()
        days = [(today - timedelta(days=i)).isoformat() for i in range(max(since_days, 1))]

        async def call() -> list[dict[str, str]]:
            async with self.client.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.hgetall(f"{self._p}usage:{day}")
                return await pipe.execute()

        hashes = await self._run(call, [])
        rows: dict[tuple[str, str, str], dict[str, int]] = {}
        for day, fields in zip(days, hashes, strict=False):
            for field, amount in fields.items():
                account, model, metric = field.rsplit("\t", 2)
                rows.setdefault((day, account, model), {})[metric] = int(amount)
        return [
            UsageRow(day, account, model, *(c.get(m, 0) for m in USAGE_METRICS))
            for (day, account, model), c in sorted(rows.items())
        ]

    async def close(self) -> None:
        self.link.close()
        await self.client.aclose()


def _rest(value: str | None) -> Rest | None:
    if not value:
        return None
    try:
        d = json.loads(value)
        return Rest(
            str(d["account"]), str(d["model"]), float(d["until"]), int(d["failures"]),
            str(d["reason"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None  # another version's value: as if unknown


def _disabled(value: str | None) -> Disabled | None:
    if not value:
        return None
    try:
        d = json.loads(value)
        return Disabled(str(d["reason"]), str(d["fingerprint"]))
    except (ValueError, KeyError, TypeError):
        return None
