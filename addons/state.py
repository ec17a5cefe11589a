"""What the addons share: the settings in force, the account pool and the HTTP client for
token refreshes. Replaced as a whole when the config changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field

import httpx

from addons.accounts.pool import AccountPool
from addons.settings import Settings

logger = logging.getLogger(__name__)


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """httpx for refreshes and other side calls: through the same proxy-url as the API calls
    (UPSTREAMS.md §10: a refresh that ignores proxy-url fails where the API call works)."""
    return httpx.AsyncClient(
        proxy=settings.proxy_url or None,
        timeout=httpx.Timeout(30.0, connect=10.0),
        trust_env=False,
    )


@dataclass
class State:
    settings: Settings = field(default_factory=Settings)
    pool: AccountPool | None = None
    http: httpx.AsyncClient | None = None

    def apply(self, settings: Settings) -> None:
        """Take new settings: a new HTTP client and a pool re-read from auth-dir."""
        old_http = self.http
        self.settings = settings
        self.http = make_http_client(settings)
        auth_dir = settings.auth_path
        try:
            auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            logger.warning("auth-dir %s cannot be created: %s", auth_dir, e)
        token_urls = {
            "gemini": settings.endpoints.google_token,
            "codex": settings.endpoints.openai_token,
        }
        self.pool = AccountPool(auth_dir, token_urls, self.http)
        self.pool.load()
        if old_http is not None:
            # in-flight refreshes hold their own reference; close once they are done
            _close_later(old_http)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()


def _close_later(client: httpx.AsyncClient) -> None:
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_later(120, lambda: loop.create_task(client.aclose()))
