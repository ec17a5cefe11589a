"""What the addons share: the settings in force, the account pool and the HTTP client for
token refreshes and retries; and the hot reload of config.yaml and auth-dir.

A reload swaps references only: a request in flight keeps the account and client it already
holds, so nothing it is doing is disturbed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx
from cliproxy.addons.accounts.authfile import file_signature
from cliproxy.addons.accounts.pool import AccountPool
from cliproxy.addons.accounts.providers import PROVIDERS
from cliproxy.addons.accounts.providers import Provider
from cliproxy.addons.settings import Settings
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import load_settings
from cliproxy.addons.statestore import StateStore
from cliproxy.addons.statestore import open_store

logger = logging.getLogger(__name__)

RELOAD_INTERVAL = 1.0  # seconds between looks at config.yaml and auth-dir
OLD_CLIENT_GRACE = 600.0  # an HTTP client replaced by a reload closes after in-flight calls


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """httpx for refreshes, retries and side calls: through the same proxy-url as the API calls
    (docs/upstreams.md "Pitfalls": a refresh that ignores proxy-url fails where the API call
    works)."""
    return httpx.AsyncClient(
        proxy=settings.proxy_url or None,
        timeout=httpx.Timeout(30.0, connect=10.0),
        trust_env=False,
    )


def _token_urls(settings: Settings) -> dict[str, str]:
    return {"gemini": settings.endpoints.google_token, "codex": settings.endpoints.openai_token}


@dataclass
class State:
    settings: Settings = field(default_factory=Settings)
    pool: AccountPool | None = None
    http: httpx.AsyncClient | None = None
    # `state-store`: shared by every replica (None = in-process). /usage and /metrics read it via
    # store.usage() / store.rests() (statestore.base.StateStore).
    store: StateStore | None = None
    config_path: Path | None = None
    # called with (old, new) settings after a reload, e.g. to apply `debug`
    listeners: list[Callable[[Settings, Settings], None]] = field(default_factory=list)
    # called with (provider, result) after every token refresh of any pool (metrics)
    refresh_listeners: list[Callable[[str, str], None]] = field(default_factory=list)
    _config_seen: tuple[int, int] | None = None
    _watcher: asyncio.Task[None] | None = None

    def apply(self, settings: Settings, config_path: Path | None = None) -> None:
        """Start-up: take the settings, build the HTTP client and the pool from auth-dir."""
        self.settings = settings
        if config_path is not None:
            self.config_path = config_path
            self._config_seen = file_signature(config_path)
        self.http = make_http_client(settings)
        self.store = open_store(settings.state_store)
        if self.store is not None:
            logger.warning("state-store %s: state shared with the other replicas", self.store)
        self.pool = self._new_pool(settings, self.http)

    def _new_pool(self, settings: Settings, http: httpx.AsyncClient) -> AccountPool:
        auth_dir = settings.auth_path
        try:
            auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            logger.warning("auth-dir %s cannot be created: %s", auth_dir, e)
        pool = AccountPool(auth_dir, _token_urls(settings), http, self.store)
        pool.set_keys(settings.generative_language_api_key)
        pool.on_refresh = self._refreshed
        pool.load()
        return pool

    def _refreshed(self, provider: str, result: str) -> None:
        for listener in self.refresh_listeners:
            listener(provider, result)

    def update(self, settings: Settings) -> None:
        """A changed config while running: unchanged accounts keep their cooldowns."""
        old = self.settings
        if (settings.host, settings.port) != (old.host, old.port):
            logger.warning("host/port changes take effect after a restart")
        if settings.proxy_url != old.proxy_url or self.http is None:
            if self.http is not None:
                _close_later(self.http)
            self.http = make_http_client(settings)
        if settings.state_store != old.state_store:
            self._swap_store(settings)
        if self.pool is None or settings.auth_path != old.auth_path:
            self.pool = self._new_pool(settings, self.http)
        else:
            self.pool.http = self.http
            self.pool.token_urls = _token_urls(settings)
            self.pool.set_keys(settings.generative_language_api_key)
        self.settings = settings
        for listener in self.listeners:
            listener(old, settings)
        logger.warning("config reloaded from %s", self.config_path)

    def no_account(self, provider: Provider) -> str:
        """Why no account of `provider` can serve, and the login that mends it."""
        login = PROVIDERS[provider].login
        known = self.pool.of(provider) if self.pool is not None else []
        if known:
            reasons = "; ".join(f"{a.label}: {a.disabled or a.last_error}" for a in known)
            return f"no usable {provider} account ({reasons}); run `{login}`"
        return f"no {provider} account in {self.settings.auth_path}: run `{login}` to add one"

    def _swap_store(self, settings: Settings) -> None:
        """A new `state-store` while running: requests in flight finish with the old one."""
        if self.store is not None:
            _close_store_later(self.store)
        self.store = open_store(settings.state_store)
        logger.warning("state-store now %s", self.store or "in-process")
        if self.pool is not None:
            self.pool.use_store(self.store)

    # ------------------------------------------------------------------ watching

    def check(self) -> None:
        """One look at config.yaml and auth-dir (cheap: a few stat calls)."""
        self._check_config()
        if self.pool is not None:
            self.pool.sync()

    def _check_config(self) -> None:
        if self.config_path is not None:
            seen = file_signature(self.config_path)
            if seen != self._config_seen:
                self._config_seen = seen
                if seen is None:
                    # deleted, moved, or mid-save (some editors remove, then write): that is
                    # no new config, and certainly not "all defaults" with another auth-dir
                    logger.warning(
                        "%s is gone; the previous config stays in force", self.config_path
                    )
                else:
                    try:
                        settings = load_settings(self.config_path)
                    except SettingsError as e:
                        logger.error("%s (the previous config stays in force)", e)
                    else:
                        if settings != self.settings:
                            self.update(settings)

    def start_watching(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            try:
                self._check_config()
                if self.pool is not None:  # auth files are read off the event loop
                    await self.pool.sync_off_loop()
            except Exception:  # a reload must never take the proxy down
                logger.exception("hot reload failed; the previous state stays in force")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        if self.http is not None:
            await self.http.aclose()
        if self.store is not None:
            await self.store.close()


def _close_later(client: httpx.AsyncClient) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_later(OLD_CLIENT_GRACE, lambda: loop.create_task(client.aclose()))


def _close_store_later(store: StateStore) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_later(OLD_CLIENT_GRACE, lambda: loop.create_task(store.close()))
