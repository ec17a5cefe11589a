"""`cliproxy accounts`: every account of auth-dir (and the AI Studio keys of the config), with
the running proxy's live state — cooldowns, requests served, last error — when it answers."""

from __future__ import annotations

import sys
from datetime import UTC
from datetime import datetime
from typing import Any

import httpx
from cliproxy.addons.accounts.pool import AccountPool
from cliproxy.addons.accounts.status import account_status
from cliproxy.addons.settings import Settings

LOGIN_HINT = (
    "run `cliproxy login gemini` or `cliproxy login codex` "
    "(or adopt a CLI login: `cliproxy import gemini-cli` / `cliproxy import codex`)"
)


def live_status(settings: Settings) -> dict[str, dict[str, Any]] | None:
    """The accounts of a proxy running with this config (its /healthz), or None."""
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    headers = {"authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
    try:
        reply = httpx.get(
            f"http://{host}:{settings.port}/healthz", headers=headers, timeout=1.5, trust_env=False
        )
        accounts = reply.json().get("accounts") if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return accounts if isinstance(accounts, dict) else None


def offline_status(settings: Settings) -> dict[str, dict[str, Any]]:
    pool = AccountPool(settings.auth_path, {}, None)  # type: ignore[arg-type]  # no refresh here
    pool.sync(initial=True)
    pool.set_keys(settings.generative_language_api_key)
    return {account.name: account_status(account) for account in pool.accounts}


def _expiry(value: str | None) -> str:
    if not value:
        return "-"
    left = datetime.fromisoformat(value) - datetime.now(UTC)
    minutes = int(left.total_seconds() // 60)
    return "expired (refreshed on use)" if minutes < 0 else f"in {minutes} min"


def format_accounts(accounts: dict[str, dict[str, Any]], live: bool) -> list[str]:
    lines = []
    for name, a in accounts.items():
        who = a.get("email") or a.get("label") or name
        project = a.get("project") or "-"
        line = f"{a['provider']:7} {who:32} {project:28} token {_expiry(a.get('token_expiry'))}"
        if not a.get("usable", True):
            line += f"  UNUSABLE: {a.get('disabled')}"
        lines.append(line)
        if live:
            lines.append(f"        requests served: {a.get('requests_served', 0)}")
            for model, rest in (a.get("cooldowns") or {}).items():
                left = f"{rest['seconds_left']:.0f} s left"
                lines.append(f"        resting for {model}: {left} ({rest['reason']})")
            if a.get("last_error"):
                lines.append(f"        last error: {a['last_error']}")
    return lines


def run(settings: Settings) -> int:
    live = live_status(settings)
    accounts = live if live is not None else offline_status(settings)
    if not accounts:
        where = settings.auth_path
        files = len(list(where.glob("*.json"))) if where.is_dir() else 0
        what = f"no usable accounts ({files} file(s) skipped)" if files else "no accounts"
        print(f"cliproxy accounts: {what} in {where}: {LOGIN_HINT}", file=sys.stderr)
        return 1
    source = (
        f"live state of the proxy on port {settings.port}"
        if live is not None
        else "from auth-dir (the proxy is not running: no live state)"
    )
    print(f"{len(accounts)} account(s), {source}:")
    for line in format_accounts(accounts, live is not None):
        print(line)
    return 0
