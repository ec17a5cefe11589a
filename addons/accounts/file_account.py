"""What every account backed by an auth file has in common (Gemini CLI, Codex)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

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

    def needs_refresh(self, now: datetime) -> bool:
        if not self.access_token:
            return True
        expiry = self.expiry
        return expiry is not None and expiry - now <= REFRESH_MARGIN
