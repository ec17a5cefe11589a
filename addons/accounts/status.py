"""One account as /healthz and `cliproxy accounts` show it (no secret ever appears)."""

from __future__ import annotations

import time
from typing import Any

from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.addons.accounts.pool import Account


def _project(account: Account) -> str:
    """The project column: a Google project, or a Codex account's ChatGPT account id."""
    return account.account_id if isinstance(account, CodexAccount) else account.project_id


def account_status(account: Account, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    expiry = account.expiry
    cooldowns = {
        model: {"seconds_left": round(rest.until - now, 1), "reason": rest.reason}
        for model, rest in account.cooldowns.items()
        if rest.until > now
    }
    return {
        "provider": account.provider,
        "email": account.email,
        "project": _project(account),
        "label": account.label,
        "token_expiry": expiry.isoformat() if expiry else None,
        "usable": account.disabled is None,
        "disabled": account.disabled,
        "cooldowns": cooldowns,
        "requests_served": account.requests_served,
        "last_error": account.last_error,
    }
