"""The pool's side of the shared state (docs/replicas.md): what a replica learns from the store and
what it tells it. The store is an interface (statestore.base); nothing here imports Redis.

- Rests and "needs re-login" marks read from the store are merged into the accounts' own
  in-process state, so every existing check (cooling, usable, /healthz, wait_seconds) sees them and
  a replica keeps what it learned when the store goes away.
- A refresh takes the account's lock in the store; a replica that does not get it waits for the
  holder's result and adopts it, so a single-use refresh token is never spent twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from typing import Any

from cliproxy.addons.accounts.ai_studio import AIStudioKey
from cliproxy.addons.accounts.cooldown import Cooldown
from cliproxy.addons.accounts.file_account import AuthFileAccount
from cliproxy.addons.accounts.runtime import Runtime
from cliproxy.addons.statestore.base import Disabled
from cliproxy.addons.statestore.base import Rest
from cliproxy.addons.statestore.base import StateStore
from cliproxy.addons.statestore.base import View

logger = logging.getLogger(__name__)

# The refresh lock outlives the token call's own timeout (pool.REFRESH_TIMEOUT, 30 s), so it is
# never lost while its holder is still refreshing; a replica that dies holding it frees it by this.
LOCK_TTL = 45.0
LOCK_POLL = 0.05  # seconds between looks while another replica refreshes
LOCK_WAIT = LOCK_TTL + 5.0  # bound of the wait: by then the lock expired and was taken over


class RefreshElsewhereFailed(Exception):
    """The replica holding the lock found the grant dead; str() says why."""


class RefreshWaitTimeout(Exception):
    """Another replica held the refresh lock past LOCK_WAIT without publishing a token."""


def fingerprint(account: Runtime) -> str:
    """Identifies one grant without revealing it: a new login (or a rotated refresh token)
    changes it. Only these 16 hex digits of a SHA-256 ever reach the store."""
    if isinstance(account, AIStudioKey):
        secret = account.key
    elif isinstance(account, AuthFileAccount):
        secret = account.refresh_token or account.access_token
    else:
        secret = ""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- rests and marks


def merge_view(accounts: Iterable[Any], model: str, view: View) -> None:
    """Fold the store's rests for `model` and its marks into the accounts' in-process state."""
    for account in accounts:
        rest = view.rests.get(account.name)
        if rest is not None:
            merge_rest(account, rest)
        mark = view.disabled.get(account.name)
        if (
            mark is not None
            and account.disabled is None
            and mark.fingerprint == fingerprint(account)
        ):
            account.disabled = mark.reason


def merge_rest(account: Runtime, rest: Rest) -> None:
    """The later deadline and the longer run of failures win; a local rest is never shortened."""
    mine = account.cooldowns.get(rest.model)
    if mine is None or rest.until > mine.until or rest.failures > mine.failures:
        until = max(rest.until, mine.until if mine else 0.0)
        failures = max(rest.failures, mine.failures if mine else 0)
        account.cooldowns[rest.model] = Cooldown(until, failures, rest.reason)


def rest_of(account: Any, model: str) -> Rest | None:
    cooldown = account.cooldowns.get(model)
    if cooldown is None or cooldown.until <= time.time():
        return None
    return Rest(account.name, model, cooldown.until, cooldown.failures, cooldown.reason)


async def publish_rests(store: StateStore, accounts: Iterable[Any]) -> None:
    """Every rest still running, e.g. those learned while the store was away (rejoin)."""
    for account in accounts:
        for model in list(account.cooldowns):
            if (rest := rest_of(account, model)) is not None:
                await store.put_rest(rest)
        if account.disabled is not None:
            await store.put_disabled(account.name, Disabled(account.disabled, fingerprint(account)))


# ---------------------------------------------------------------------- refresh


def token_record(account: AuthFileAccount) -> dict[str, Any]:
    expiry = account.expiry
    return {"fields": account.token_fields(), "expiry": expiry.timestamp() if expiry else None}


def newer(record: dict[str, Any] | None, account: AuthFileAccount) -> bool:
    """Whether the store holds a later token than the account: a later expiry and another access
    token. An older record (e.g. from before a new login) never replaces the file's token."""
    if not record or not isinstance(record.get("fields"), dict):
        return False
    theirs = record.get("expiry")
    if not isinstance(theirs, (int, float)):
        return False
    if record["fields"].get("access_token") == account.access_token:
        return False
    mine = account.expiry
    return mine is None or theirs > mine.timestamp()


async def coordinated_refresh(
    store: StateStore,
    account: AuthFileAccount,
    force: bool,
    refresh_here: Callable[[], Awaitable[None]],
    adopted: Callable[[], Awaitable[None]],
) -> None:
    """Refresh `account` once across every replica.

    The lock holder refreshes (unless another replica did so since this one looked) and publishes
    the new token; the others poll until a newer token is published, then adopt it. A replica never
    sends the refresh token it read before the lock was taken without first checking the store,
    so a single-use refresh token is spent once. When the store goes away midway, the in-process
    refresh takes over (docs/replicas.md: no request fails because of Redis).
    """
    deadline = time.monotonic() + LOCK_WAIT
    while store.available:
        token = await store.lock(account.name, LOCK_TTL)
        if token is not None:
            try:
                if await _take_published(store, account):
                    await adopted()
                    return
                await refresh_here()
                await store.put_token(account.name, token_record(account))
            finally:
                await store.unlock(account.name, token)
            return
        if not store.available:
            break
        # another replica refreshes: wait for its token (or its lock to go)
        await asyncio.sleep(LOCK_POLL)
        if await _take_published(store, account):
            await adopted()
            return
        if not force and not account.needs_refresh(datetime.now(UTC)):
            return  # the file was re-read meanwhile (hot reload) with a fresh token
        if time.monotonic() > deadline:
            raise RefreshWaitTimeout("another replica's token refresh did not finish")
    await refresh_here()


async def _take_published(store: StateStore, account: AuthFileAccount) -> bool:
    """Adopt the token another replica published, if newer; raise when it found the grant dead."""
    record = await store.token(account.name)
    if newer(record, account):
        assert record is not None
        account.adopt_tokens(record["fields"])
        account.last_error = None
        logger.info("%s: token refreshed by another replica", account.label)
        return True
    mark = await store.disabled(account.name)
    if mark is not None and mark.fingerprint == fingerprint(account):
        raise RefreshElsewhereFailed(mark.reason)
    return False
