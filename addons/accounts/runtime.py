"""What the proxy tracks about every account while running (never written to its file)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field

from cliproxy.addons.accounts.cooldown import Cooldown
from cliproxy.addons.accounts.cooldown import rest_seconds
from cliproxy.translators.fault import RestKind


@dataclass(kw_only=True)
class Runtime:
    requests_served: int = 0
    last_error: str | None = None
    disabled: str | None = None  # why the account cannot be used until re-login
    cooldowns: dict[str, Cooldown] = field(default_factory=dict)  # model -> rest

    def cooling(self, model: str, now: float | None = None) -> float:
        """Seconds left before this account may serve `model` again (0 = ready)."""
        rest = self.cooldowns.get(model)
        if rest is None:
            return 0.0
        return max(0.0, rest.until - (time.time() if now is None else now))

    def cool(self, model: str, kind: RestKind, hint: float | None, reason: str) -> float:
        """Rest after a refusal; re-cooling keeps the later deadline. Returns the rest."""
        now = time.time()
        previous = self.cooldowns.get(model)
        failures = (previous.failures if previous else 0) + 1
        seconds = rest_seconds(kind, failures, hint)
        until = max(now + seconds, previous.until if previous else 0.0)
        self.cooldowns[model] = Cooldown(until, failures, reason)
        return until - now

    def succeeded(self, model: str) -> None:
        self.cooldowns.pop(model, None)
        self.last_error = None

    def take_over(self, other: Runtime) -> None:
        """Keep the running state of an account whose file was re-read (hot reload)."""
        self.requests_served = other.requests_served
        self.last_error = other.last_error
        self.cooldowns = other.cooldowns
