"""Per-(account, model) cooldowns: how long an account rests after the upstream refused it.

The upstream's own hint wins (Google RetryInfo / quotaResetDelay / "reset after Ns", Codex
resets_at / resets_in_seconds); without one the wait doubles from 1 s up to 30 min. Absurd hints
are capped so an account is re-probed rather than parked for days (docs/upstreams.md "Pitfalls").
"""

from __future__ import annotations

from dataclasses import dataclass

from cliproxy.translators.fault import RestKind

BACKOFF_START = 1.0
BACKOFF_CAP = 30 * 60.0
HINT_CAP = 6 * 3600.0  # re-probe after this even when the upstream names a later reset
AUTH_REST = 5 * 60.0  # a 401 that survived a fresh token
FORBIDDEN_REST = 10 * 60.0  # 403: the account may not use this model (or must validate)
SERVER_REST_CAP = 60.0  # repeated 5xx


@dataclass(slots=True)
class Cooldown:
    until: float  # time.time() at which the account may serve the model again
    failures: int  # consecutive refusals for this model
    reason: str


def rest_seconds(kind: RestKind, failures: int, hint: float | None) -> float:
    """How long to rest after the `failures`-th consecutive refusal (1-based)."""
    if kind == "quota":
        if hint is not None:
            return min(max(hint, 1.0), HINT_CAP)
        return min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_CAP)
    if kind == "auth":
        return AUTH_REST
    if kind == "forbidden":
        return FORBIDDEN_REST
    # server errors: one is noise, a run of them rests the account briefly
    return 0.0 if failures < 2 else min(2.0 ** (failures - 1), SERVER_REST_CAP)
