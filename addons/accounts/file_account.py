"""What every account backed by an auth file has in common (Gemini CLI, Codex)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import ClassVar

from cliproxy.addons.accounts.authfile import text
from cliproxy.addons.accounts.runtime import Runtime

# Refresh this long before expiry (google-auth-library does; docs/configuration.md "Auth files"), so
# a request never races the token's end.
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass
class AuthFileAccount(Runtime):
    path: Path
    raw: dict[str, Any]  # the whole file, so unknown keys survive a write-back
    email: str

    # the keys of `tokens` a refresh may change
    REFRESHED_KEYS: ClassVar[tuple[str, ...]] = ()

    @property
    def tokens(self) -> dict[str, Any]:
        """Where the file keeps its tokens (Codex: top level; Gemini: under "token")."""
        return self.raw

    @property
    def access_token(self) -> str:
        return text(self.tokens, "access_token")

    @property
    def refresh_token(self) -> str:
        return text(self.tokens, "refresh_token")

    @property
    def expiry(self) -> datetime | None:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """A stable identity: the auth file's name."""
        return self.path.name

    def token_fields(self) -> dict[str, Any]:
        """What a refresh changes, for other replicas to adopt (docs/replicas.md)."""
        return {k: v for k, v in self.tokens.items() if k in self.REFRESHED_KEYS}

    def adopt_tokens(self, fields: dict[str, Any]) -> None:
        """Take another replica's refresh (the keys of `token_fields`)."""
        for key in self.REFRESHED_KEYS:
            if isinstance(fields.get(key), str):
                self.tokens[key] = fields[key]

    def needs_refresh(self, now: datetime) -> bool:
        if not self.access_token:
            return True
        expiry = self.expiry
        return expiry is not None and expiry - now <= REFRESH_MARGIN
