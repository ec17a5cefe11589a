"""An AI Studio API key (`generative-language-api-key`), pooled with the Gemini CLI accounts."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from cliproxy.addons.accounts.providers import Provider
from cliproxy.addons.accounts.providers import UpstreamName
from cliproxy.addons.accounts.runtime import Runtime


def mask(key: str) -> str:
    """Enough of a key to tell keys apart in logs and /healthz, never enough to use it."""
    return f"…{key[-4:]}" if len(key) > 8 else "…"


@dataclass
class AIStudioKey(Runtime):
    key: str
    provider: Provider = field(default="gemini", init=False)
    upstream: UpstreamName = field(default="ai_studio", init=False)
    email: str = field(default="", init=False)
    project_id: str = field(default="", init=False)
    expiry: datetime | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return f"ai-studio-key-{mask(self.key)}"

    @property
    def label(self) -> str:
        return f"AI Studio key {mask(self.key)}"

    @property
    def access_token(self) -> str:
        return self.key

    def needs_refresh(self, now: datetime) -> bool:
        return False
