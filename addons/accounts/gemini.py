"""A Gemini CLI (Code Assist) account backed by one auth file."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import ClassVar

from cliproxy.addons.accounts.authfile import AuthFileError
from cliproxy.addons.accounts.authfile import format_time
from cliproxy.addons.accounts.authfile import lifetime
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.file_account import AuthFileAccount
from cliproxy.addons.accounts.providers import Provider
from cliproxy.addons.accounts.providers import UpstreamName

# The public installed-app client of gemini-cli (docs/upstreams.md "Google OAuth"); used when a file
# names none.
GEMINI_CLI_CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
GEMINI_CLI_CLIENT_SECRET = "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"
# Token-endpoint errors that mean the grant is gone for good: re-login, never retry.
PERMANENT_REFRESH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


@dataclass
class GeminiAccount(AuthFileAccount):
    project_id: str
    provider: Provider = field(default="gemini", init=False)
    upstream: UpstreamName = field(default="code_assist", init=False)
    REFRESHED_KEYS: ClassVar[tuple[str, ...]] = (
        "access_token", "refresh_token", "expiry", "token_type", "scope", "id_token",
    )  # fmt: skip

    @classmethod
    def from_raw(cls, path: Path, raw: dict[str, Any]) -> GeminiAccount:
        token = raw.get("token")
        if not isinstance(token, dict):
            raise AuthFileError("has no token object")
        if not isinstance(token.get("refresh_token"), str) and not isinstance(
            token.get("access_token"), str
        ):
            raise AuthFileError("has neither an access_token nor a refresh_token")
        project = raw.get("project_id")
        if not isinstance(project, str) or not project:
            raise AuthFileError("has no project_id (run: cliproxy login gemini)")
        email = raw.get("email") if isinstance(raw.get("email"), str) else ""
        return cls(path=path, raw=raw, email=email, project_id=project)

    @property
    def token(self) -> dict[str, Any]:
        return self.raw["token"]

    @property
    def tokens(self) -> dict[str, Any]:
        return self.token

    @property
    def expiry(self) -> datetime | None:
        return parse_time(self.token.get("expiry"))

    @property
    def label(self) -> str:
        return f"gemini {self.email or self.path.name} ({self.project_id})"

    def refresh_request(self) -> tuple[str, dict[str, str]]:
        """("form", fields): Google's token endpoint takes a form
        (docs/upstreams.md "Google OAuth")."""
        return "form", {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": str(self.token.get("client_id") or GEMINI_CLI_CLIENT_ID),
            "client_secret": str(self.token.get("client_secret") or GEMINI_CLI_CLIENT_SECRET),
        }

    def is_permanent_refresh_error(self, code: str, status: int) -> bool:
        return code in PERMANENT_REFRESH_ERRORS

    def apply_refresh(self, reply: dict[str, Any], now: datetime) -> None:
        """Take a token-endpoint reply; Google normally sends no new refresh_token: keep ours."""
        access = reply.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the token endpoint answered without an access_token")
        token = self.token
        token["access_token"] = access
        expires_in = lifetime(reply.get("expires_in"))
        if expires_in is not None:
            token["expiry"] = format_time(now + expires_in)
        for key in ("refresh_token", "token_type", "scope", "id_token"):
            if isinstance(reply.get(key), str) and reply[key]:
                token[key] = reply[key]
        self._mirror()

    def adopt_tokens(self, fields: dict[str, Any]) -> None:
        super().adopt_tokens(fields)
        self._mirror()

    def _mirror(self) -> None:
        # CLIProxyAPI v7 mirrors the token at top level; keep the mirror true if it is there.
        token = self.token
        for key in ("access_token", "expiry"):
            if key in self.raw and key in token:
                self.raw[key] = token[key]
