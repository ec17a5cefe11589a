"""The credential pool: auth files of auth-dir, token refresh, round robin per provider.

Refresh is single-flight per account: the first request that finds the token near expiry starts
the refresh, every other request for that account awaits the same task (MITMPROXY.md §8: a lock
held around every token read serialised a whole run). No lock is held around upstream requests.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC
from datetime import datetime
from itertools import count
from pathlib import Path

import httpx

from addons.accounts.authfile import AuthFileError
from addons.accounts.authfile import read_auth_file
from addons.accounts.authfile import write_auth_file
from addons.accounts.codex import CodexAccount
from addons.accounts.gemini import GeminiAccount
from addons.routing import LOGIN_COMMAND

logger = logging.getLogger(__name__)

Account = GeminiAccount | CodexAccount


class RefreshError(Exception):
    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def provider_of(raw: dict) -> str:
    kind = raw.get("type")
    return "gemini" if kind in (None, "", "gemini", "gemini-cli") else str(kind)


def load_accounts(auth_dir: Path) -> list[Account]:
    """Every usable auth file of `auth_dir`, sorted by name; broken files are skipped with a log
    line naming the file (never its contents)."""
    accounts: list[Account] = []
    if not auth_dir.is_dir():
        return accounts
    for path in sorted(auth_dir.glob("*.json")):
        try:
            raw = read_auth_file(path)
            provider = provider_of(raw)
            if provider == "gemini":
                accounts.append(GeminiAccount.from_raw(path, raw))
            elif provider == "codex":
                accounts.append(CodexAccount.from_raw(path, raw))
            else:
                logger.warning("auth file %s: unknown type %r; skipped", path, provider)
        except AuthFileError as e:
            logger.warning("auth file %s %s; skipped", path, e)
    return accounts


class AccountPool:
    def __init__(self, auth_dir: Path, token_urls: dict[str, str], http: httpx.AsyncClient) -> None:
        self.auth_dir = auth_dir
        self.token_urls = token_urls  # provider -> token endpoint (endpoints.*)
        self.http = http
        self.accounts: list[Account] = []
        self._turn = count()
        self._refreshing: dict[Path, asyncio.Task[None]] = {}

    def load(self) -> None:
        self.accounts = load_accounts(self.auth_dir)
        for acc in self.accounts:
            logger.info("loaded %s", acc.label)
        if not self.accounts:
            logger.warning(
                "no accounts in %s: run `cliproxy login gemini` or `cliproxy login codex`",
                self.auth_dir,
            )

    def of(self, provider: str) -> list[Account]:
        return [a for a in self.accounts if a.provider == provider]

    def usable(self, provider: str) -> list[Account]:
        return [a for a in self.accounts if a.provider == provider and not a.disabled]

    async def acquire(
        self, provider: str, exclude: frozenset[Path] = frozenset()
    ) -> Account | None:
        """The next account of `provider` in round-robin order with a fresh token, or None."""
        candidates = [a for a in self.usable(provider) if a.path not in exclude]
        if not candidates:
            return None
        start = next(self._turn)
        for i in range(len(candidates)):
            account = candidates[(start + i) % len(candidates)]
            try:
                await self.ensure_fresh(account)
            except RefreshError as e:
                account.last_error = str(e)
                if e.permanent:
                    account.disabled = f"needs re-login: run `{LOGIN_COMMAND[account.provider]}`"
                logger.warning("%s: token refresh failed: %s", account.label, e)
                continue
            account.requests_served += 1
            return account
        return None

    async def ensure_fresh(self, account: Account, force: bool = False) -> None:
        if not force and not account.needs_refresh(datetime.now(UTC)):
            return
        task = self._refreshing.get(account.path)
        if task is None:
            task = asyncio.ensure_future(self._refresh(account))
            self._refreshing[account.path] = task
            task.add_done_callback(lambda _t, p=account.path: self._refreshing.pop(p, None))
        await asyncio.shield(task)

    async def _refresh(self, account: Account) -> None:
        if not account.refresh_token:
            raise RefreshError("the auth file has no refresh_token", permanent=True)
        kind, payload = account.refresh_request()
        url = self.token_urls[account.provider]
        try:
            if kind == "json":
                reply = await self.http.post(url, json=payload, timeout=30)
            else:
                reply = await self.http.post(url, data=payload, timeout=30)
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
        # Small file, but still off the event loop (MITMPROXY.md §8: no blocking I/O in hooks).
        await asyncio.to_thread(write_auth_file, account.path, account.raw)
        account.last_error = None
        logger.info("%s: token refreshed", account.label)


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
