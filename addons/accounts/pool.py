"""The credential pool: auth files of auth-dir and AI Studio keys, token refresh, round robin
per provider, per-(account, model) cooldowns, and re-reading auth-dir while running.

Refresh is single-flight per account: the first request that finds the token near expiry starts
the refresh, every other request for that account awaits the same task (docs/mitmproxy.md "Async
hooks": a lock held around every token read serialised a whole run). No lock is held around upstream
requests.

With a shared store (`state-store`, docs/replicas.md) the round-robin cursor, the rests and the
"needs re-login" marks are those of every replica, and a refresh is done once across replicas
(accounts/shared.py); without one, or while it is unreachable, all of it is in-process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from itertools import count
from pathlib import Path

import httpx
from cliproxy.addons.accounts.ai_studio import AIStudioKey
from cliproxy.addons.accounts.authfile import AuthFileError
from cliproxy.addons.accounts.authfile import file_signature
from cliproxy.addons.accounts.authfile import read_auth_file
from cliproxy.addons.accounts.authfile import write_auth_file
from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.addons.accounts.gemini import GeminiAccount
from cliproxy.addons.accounts.providers import PROVIDERS
from cliproxy.addons.accounts.shared import RefreshElsewhereFailed
from cliproxy.addons.accounts.shared import RefreshWaitTimeout
from cliproxy.addons.accounts.shared import coordinated_refresh
from cliproxy.addons.accounts.shared import fingerprint
from cliproxy.addons.accounts.shared import merge_view
from cliproxy.addons.accounts.shared import publish_rests
from cliproxy.addons.accounts.shared import rest_of
from cliproxy.addons.statestore.base import Disabled
from cliproxy.addons.statestore.base import Rest
from cliproxy.addons.statestore.base import StateStore
from cliproxy.translators.fault import RestKind

logger = logging.getLogger(__name__)

WRITE_RETRY_FIRST = 5.0  # seconds before writing a refreshed token again after a failure
WRITE_RETRY_MAX = 300.0

FileAccount = GeminiAccount | CodexAccount
Account = GeminiAccount | CodexAccount | AIStudioKey

REFRESH_TIMEOUT = 30.0  # the token call; shared.LOCK_TTL is longer


class RefreshError(Exception):
    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def provider_of(raw: dict) -> str:
    kind = raw.get("type")
    return "gemini" if kind in (None, "", "gemini", "gemini-cli") else str(kind)


def load_account(path: Path) -> FileAccount | None:
    """One auth file as an account, or None (logged, naming the file, never its contents)."""
    try:
        raw = read_auth_file(path)
        provider = provider_of(raw)
        if provider == "gemini":
            return GeminiAccount.from_raw(path, raw)
        if provider == "codex":
            return CodexAccount.from_raw(path, raw)
        logger.warning("auth file %s: unknown type %r; skipped", path, provider)
    except AuthFileError as e:
        logger.warning("auth file %s %s; skipped", path, e)
    return None


def scan(auth_dir: Path) -> dict[Path, tuple[int, int]]:
    """The auth files of `auth_dir` with (mtime, size), to notice changes cheaply."""
    if not auth_dir.is_dir():
        return {}
    found = {}
    for path in sorted(auth_dir.glob("*.json")):
        sig = file_signature(path)
        if sig is not None:
            found[path] = sig
    return found


def load_accounts(auth_dir: Path) -> list[FileAccount]:
    """Every usable auth file of `auth_dir`, sorted by name."""
    return [a for p in scan(auth_dir) if (a := load_account(p)) is not None]


class AccountPool:
    def __init__(
        self,
        auth_dir: Path,
        token_urls: dict[str, str],
        http: httpx.AsyncClient,
        store: StateStore | None = None,
    ) -> None:
        self.auth_dir = auth_dir
        self.token_urls = token_urls  # provider -> token endpoint (endpoints.*)
        self.http = http
        self.store: StateStore | None = None
        self.use_store(store)
        self.files: dict[Path, FileAccount] = {}
        self.keys: list[AIStudioKey] = []
        self._seen: dict[Path, tuple[int, int]] = {}  # what sync() last read (or we wrote)
        self._turns: dict[str, count] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        # told (provider, "ok" | "transient" | "permanent") after every refresh: metrics
        self.on_refresh: Callable[[str, str], None] | None = None

    def use_store(self, store: StateStore | None) -> None:
        """Share state through `store` (None: in-process only). On a rejoin after an outage the
        rests and marks learned meanwhile are published, so the other replicas learn them too."""
        self.store = store
        if store is not None:
            store.on_rejoin(lambda: publish_rests(store, self.accounts))
        self._pending_writes: dict[str, asyncio.Task[None]] = {}  # auth files to write again

    # ------------------------------------------------------------------ membership

    @property
    def accounts(self) -> list[Account]:
        return [*self.files.values(), *self.keys]

    def load(self) -> None:
        self.sync(initial=True)
        if not self.accounts:
            logger.warning(
                "no accounts in %s: run `cliproxy login gemini` or `cliproxy login codex`",
                self.auth_dir,
            )

    def sync(self, initial: bool = False) -> bool:
        """Re-read auth-dir: new files join, removed ones leave, edited ones are re-read with
        their running state (cooldowns, counters) kept. Returns whether anything changed."""
        return self._apply(self._read(dict(self._seen), set(self.files)), initial)

    async def sync_off_loop(self) -> bool:
        """sync(), with the directory listing and the file reads in a worker thread: a slow disk
        (or a FIFO named *.json) never holds up the event loop; the pool changes on the loop."""
        seen, known = dict(self._seen), set(self.files)
        changes = await asyncio.to_thread(self._read, seen, known)
        return self._apply(changes, initial=False)

    def _read(
        self, seen: dict[Path, tuple[int, int]], known: set[Path]
    ) -> tuple[dict[Path, tuple[int, int]], dict[Path, FileAccount | None]] | None:
        """What changed in auth-dir since `seen`: (every file's signature, the accounts read
        from new or edited files); None when nothing did. Touches no pool state."""
        current = scan(self.auth_dir)
        if current == seen:
            return None
        loaded = {
            path: load_account(path)
            for path, sig in current.items()
            if seen.get(path) != sig or path not in known
        }
        return current, loaded

    def _apply(
        self,
        changes: tuple[dict[Path, tuple[int, int]], dict[Path, FileAccount | None]] | None,
        initial: bool,
    ) -> bool:
        if changes is None:
            return False
        current, loaded = changes
        changed = False
        for path in list(self.files):
            if path not in current:
                logger.warning(
                    "auth file %s removed: %s leaves the pool", path, self.files[path].label
                )
                del self.files[path]
                changed = True
        for path, account in loaded.items():
            if self._seen.get(path) == current[path] and path in self.files:
                continue  # our own write-back, noted while the files were being read
            old = self.files.pop(path, None)
            if account is not None:
                if old is not None:
                    account.take_over(old)
                self.files[path] = account
                if not initial:
                    logger.warning(
                        "auth file %s %s: %s", path, "re-read" if old else "added", account.label
                    )
            changed = True
        self.files = dict(sorted(self.files.items()))
        self._seen = current
        return changed

    def set_keys(self, keys: list[str]) -> None:
        """The AI Studio keys of the config; unchanged keys keep their running state."""
        old = {k.key: k for k in self.keys}
        self.keys = [old.get(key) or AIStudioKey(key) for key in dict.fromkeys(keys)]

    def of(self, provider: str) -> list[Account]:
        return [a for a in self.accounts if a.provider == provider]

    def usable(self, provider: str) -> list[Account]:
        return [a for a in self.accounts if a.provider == provider and not a.disabled]

    # ------------------------------------------------------------------ choosing

    async def acquire(
        self, provider: str, model: str, exclude: frozenset[str] = frozenset()
    ) -> Account | None:
        """The next account of `provider` that may serve `model`, in round-robin order, with a
        fresh token; None when every account is excluded, cooling down or broken.

        With a store: one round trip takes the global turn and the candidates' shared rests."""
        turn: int | None = None
        if self.store is not None and self.store.available:
            usable = self.usable(provider)
            view = await self.store.view(provider, model, [a.name for a in usable])
            if view is not None:
                merge_view(usable, model, view)
                turn = view.turn
        now = time.time()
        candidates = [
            a
            for a in self.usable(provider)
            if a.name not in exclude and a.cooling(model, now) == 0.0
        ]
        if not candidates:
            return None
        if turn is None:
            turn = next(self._turns.setdefault(provider, count()))
        for i in range(len(candidates)):
            account = candidates[(turn + i) % len(candidates)]
            try:
                await self.ensure_fresh(account)
            except RefreshError as e:
                account.last_error = f"token refresh failed: {e}"
                if e.permanent and account.disabled is None:
                    await self.disable(account, relogin_reason(account))
                logger.warning("%s: token refresh failed: %s", account.label, e)
                continue
            account.requests_served += 1
            return account
        return None

    async def rest(
        self, account: Account, model: str, kind: RestKind, hint: float | None, reason: str
    ) -> float:
        """Rest `account` for `model` after a refusal (Runtime.cool), on every replica; returns
        the seconds of rest."""
        seconds = account.cool(model, kind, hint, reason)
        if self.store is not None and (rest := rest_of(account, model)) is not None:
            await self.store.put_rest(rest)
        return seconds

    async def disable(self, account: Account, reason: str) -> None:
        """The account cannot serve until re-login (or a config change), on every replica."""
        account.disabled = reason
        if self.store is not None:
            await self.store.put_disabled(account.name, Disabled(reason, fingerprint(account)))

    async def resting(self) -> list[Rest]:
        """Every (account, model) rest running now, for `cliproxy_account_resting`: those of all
        replicas with a store (docs/replicas.md), with this replica's own (also while the store is
        unreachable)."""
        found: dict[tuple[str, str], Rest] = {}
        for account in self.accounts:
            for model in list(account.cooldowns):
                if (rest := rest_of(account, model)) is not None:
                    found[rest.account, rest.model] = rest
        if self.store is not None:
            now = time.time()
            for rest in await self.store.rests():
                mine = found.get((rest.account, rest.model))
                if rest.until > now and (mine is None or rest.until > mine.until):
                    found[rest.account, rest.model] = rest
        return sorted(found.values(), key=lambda r: (r.account, r.model))

    def wait_seconds(self, provider: str, model: str) -> float | None:
        """When every usable account is cooling for `model`: seconds until the first is back."""
        rests = [a.cooling(model) for a in self.usable(provider)]
        if not rests or min(rests) == 0.0:
            return None
        return min(rests)

    # ------------------------------------------------------------------ tokens

    async def ensure_fresh(self, account: Account, force: bool = False) -> None:
        if not isinstance(account, (GeminiAccount, CodexAccount)):
            return
        if not force and not account.needs_refresh(datetime.now(UTC)):
            return
        task = self._refreshing.get(account.name)
        if task is None:
            task = asyncio.ensure_future(self._refresh(account, force))
            self._refreshing[account.name] = task
            task.add_done_callback(lambda _t, n=account.name: self._refreshing.pop(n, None))
        await asyncio.shield(task)

    async def _refresh(self, account: FileAccount, force: bool) -> None:
        try:
            await self._refresh_coordinated(account, force)
        except RefreshError as e:
            self._report(account.provider, "permanent" if e.permanent else "transient")
            raise
        self._report(account.provider, "ok")

    def _report(self, provider: str, result: str) -> None:
        if self.on_refresh is not None:
            try:
                self.on_refresh(provider, result)
            except Exception:  # a metrics fault must not fail a refresh
                logger.exception("refresh listener failed")

    async def _refresh_coordinated(self, account: FileAccount, force: bool) -> None:
        store = self.store
        if store is None or not store.available:
            await self._refresh_here(account)
            return

        async def refresh_here() -> None:
            if await self._take_from_disk(account):
                return  # another replica wrote a newer token to our shared auth-dir
            try:
                await self._refresh_here(account)
            except RefreshError as e:
                if e.permanent:  # inside the lock: the waiting replicas learn it before retrying
                    mark = Disabled(relogin_reason(account), fingerprint(account))
                    await store.put_disabled(account.name, mark)
                raise

        try:
            await coordinated_refresh(
                store, account, force, refresh_here, lambda: self._persist(account)
            )
        except RefreshElsewhereFailed as e:
            raise RefreshError(f"on another replica: {e}", permanent=True) from None
        except RefreshWaitTimeout as e:
            raise RefreshError(str(e), permanent=False) from None

    async def _take_from_disk(self, account: FileAccount) -> bool:
        """Adopt the token of the auth file on disk when it is newer than the one in memory:
        the last guard before spending a refresh token, should the store have lost its record
        (a Redis restart without persistence) while the file was rewritten by another replica."""
        on_disk = await asyncio.to_thread(load_account, account.path)
        if not isinstance(on_disk, type(account)) or on_disk.access_token == account.access_token:
            return False
        theirs, mine = on_disk.expiry, account.expiry
        if theirs is None or (mine is not None and theirs <= mine):
            return False
        account.adopt_tokens(on_disk.token_fields())
        return not account.needs_refresh(datetime.now(UTC))

    async def _persist(self, account: FileAccount) -> None:
        """Write a token adopted from another replica to our auth file, unless it is already
        there (a shared auth-dir: the refreshing replica wrote it)."""
        on_disk = await asyncio.to_thread(_access_token_on_disk, account.path)
        if on_disk != account.access_token:
            await asyncio.to_thread(write_auth_file, account.path, account.raw)
        self._note_own_write(account.path)

    def _note_own_write(self, path: Path) -> None:
        # our own write is not a change to react to (no pointless reload)
        if path in self._seen and (sig := file_signature(path)) is not None:
            self._seen[path] = sig

    async def _refresh_here(self, account: FileAccount) -> None:
        if not account.refresh_token:
            raise RefreshError("the auth file has no refresh_token", permanent=True)
        kind, payload = account.refresh_request()
        url = self.token_urls[account.provider]
        try:
            if kind == "json":
                reply = await self.http.post(url, json=payload, timeout=REFRESH_TIMEOUT)
            else:
                reply = await self.http.post(url, data=payload, timeout=REFRESH_TIMEOUT)
        except httpx.HTTPError as e:
            raise RefreshError(f"token endpoint unreachable ({type(e).__name__})", False) from None
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code != 200:
            code = _error_code(body) or f"HTTP {reply.status_code}"
            permanent = account.is_permanent_refresh_error(code, reply.status_code)
            raise RefreshError(code, permanent=permanent)
        if not isinstance(body, dict):
            raise RefreshError("token endpoint answered with no JSON object", permanent=False)
        try:
            account.apply_refresh(body, datetime.now(UTC))
        except ValueError as e:
            raise RefreshError(str(e), permanent=False) from None
        account.last_error = None
        logger.info("%s: token refreshed", account.label)
        if not await self._write(account):
            # The new token serves this request all the same; the file must catch up, or a
            # restart would bring back a Codex refresh token that is already spent.
            self._retry_write(account)

    async def _write(self, account: FileAccount) -> bool:
        """Write the account's file; False (logged) when auth-dir is unwritable or full."""
        try:
            # Small file, but still off the event loop (docs/mitmproxy.md "Async hooks": no
            # blocking I/O in hooks).
            await asyncio.to_thread(write_auth_file, account.path, dict(account.raw))
        except OSError as e:
            logger.error(
                "%s: the refreshed token could not be written to %s (%s); serving with it, "
                "retrying the write",
                account.label,
                account.path,
                e.strerror or type(e).__name__,
            )
            return False
        self._note_own_write(account.path)
        return True

    def _retry_write(self, account: FileAccount) -> None:
        if account.name in self._pending_writes:
            return  # the running retry writes the newest state anyway

        async def retry() -> None:
            delay = WRITE_RETRY_FIRST
            try:
                while self.files.get(account.path) is account:
                    await asyncio.sleep(delay)
                    if await self._write(account):
                        logger.warning("%s: refreshed token written at last", account.label)
                        return
                    delay = min(delay * 2, WRITE_RETRY_MAX)
            finally:
                self._pending_writes.pop(account.name, None)

        self._pending_writes[account.name] = asyncio.ensure_future(retry())


def relogin_reason(account: Account) -> str:
    return f"needs re-login: run `{PROVIDERS[account.provider].login}`"


def _access_token_on_disk(path: Path) -> str | None:
    account = load_account(path)
    return account.access_token if account is not None else None


def _error_code(body: object) -> str | None:
    """The error code of a token-endpoint reply: `error` as a string (Google, OAuth),
    `error.code` (OpenAI), or a top-level `code`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error["code"]
    code = body.get("code")
    return code if isinstance(code, str) else None
