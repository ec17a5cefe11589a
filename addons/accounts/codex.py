"""An OpenAI Codex (ChatGPT backend) account backed by one auth file
(docs/configuration.md "Auth files")."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import ClassVar

from cliproxy.addons.accounts import jwt
from cliproxy.addons.accounts.authfile import AuthFileError
from cliproxy.addons.accounts.authfile import format_time
from cliproxy.addons.accounts.authfile import lifetime
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.file_account import AuthFileAccount
from cliproxy.addons.accounts.providers import Provider
from cliproxy.addons.accounts.providers import UpstreamName

# The Codex CLI's public OAuth client (docs/upstreams.md "OpenAI OAuth").
CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
UNKNOWN_LIFETIME = timedelta(hours=1)
# Token-endpoint codes that mean the refresh token is gone for good (never retry them).
PERMANENT_REFRESH_ERRORS = frozenset(
    {"refresh_token_expired", "refresh_token_reused", "refresh_token_invalidated", "invalid_grant"}
)


@dataclass
class CodexAccount(AuthFileAccount):
    account_id: str
    provider: Provider = field(default="codex", init=False)
    upstream: UpstreamName = field(default="codex", init=False)
    REFRESHED_KEYS: ClassVar[tuple[str, ...]] = (
        "access_token", "refresh_token", "id_token", "last_refresh", "expired",
    )  # fmt: skip

    @classmethod
    def from_raw(cls, path: Path, raw: dict[str, Any]) -> CodexAccount:
        access, refresh = raw.get("access_token"), raw.get("refresh_token")
        if not isinstance(refresh, str) and not isinstance(access, str):
            raise AuthFileError("has neither an access_token nor a refresh_token")
        id_token = raw.get("id_token") if isinstance(raw.get("id_token"), str) else ""
        account_id = raw.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            account_id = jwt.openai_auth(id_token).get("chatgpt_account_id") or jwt.openai_auth(
                access or ""
            ).get("chatgpt_account_id")
        if not isinstance(account_id, str) or not account_id:
            raise AuthFileError("has no account_id and its id_token names none")
        email = raw.get("email")
        if not isinstance(email, str) or not email:
            email = jwt.openai_email(id_token)
        return cls(path=path, raw=raw, email=email, account_id=account_id)

    @property
    def expiry(self) -> datetime | None:
        """The earlier of the access token's JWT `exp` and the file's `expired`
        (docs/configuration.md "Auth files": a past `expired` means refresh, whatever the token
        says)."""
        known = [
            t for t in (jwt.expiry(self.access_token), parse_time(self.raw.get("expired"))) if t
        ]
        return min(known) if known else None

    @property
    def plan(self) -> str:
        plan = jwt.openai_auth(str(self.raw.get("id_token") or "")).get("chatgpt_plan_type")
        return plan if isinstance(plan, str) else ""

    @property
    def label(self) -> str:
        return f"codex {self.email or self.path.name}"

    def refresh_request(self) -> tuple[str, dict[str, str]]:
        """("json", body): the Codex CLI sends its refresh as JSON."""
        return "json", {
            "client_id": CODEX_CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
        }

    def is_permanent_refresh_error(self, code: str, status: int) -> bool:
        return code in PERMANENT_REFRESH_ERRORS or status == 401

    def apply_refresh(self, reply: dict[str, Any], now: datetime) -> None:
        """Every token in the reply is optional: replace only those present."""
        if not isinstance(reply.get("access_token"), str) or not reply["access_token"]:
            raise ValueError("the token endpoint answered without an access_token")
        for key in ("access_token", "refresh_token", "id_token"):
            if isinstance(reply.get(key), str) and reply[key]:
                self.raw[key] = reply[key]
        self.raw["last_refresh"] = format_time(now)
        expiry = jwt.expiry(self.raw["access_token"])
        if expiry is None and (expires_in := lifetime(reply.get("expires_in"))) is not None:
            expiry = now + expires_in
        # an opaque token with no lifetime given: assume a short one rather than refreshing on
        # every request because the old `expired` stays in the past
        self.raw["expired"] = format_time(expiry or now + UNKNOWN_LIFETIME)
        new_id = jwt.openai_auth(str(self.raw.get("id_token") or "")).get("chatgpt_account_id")
        if isinstance(new_id, str) and new_id and not self.raw.get("account_id"):
            self.account_id = new_id
