"""What an upstream refusal means for the account pool.

Each upstream dialect classifies its own error bodies (translators/google_errors.py,
translators/codex_errors.py, beside the parsers of those bodies); the pool acts on the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Literal
from typing import get_args

# The refusals after which an account rests for the model (addons/accounts/cooldown.py).
RestKind = Literal["quota", "auth", "forbidden", "server"]
# ...and the two that never rest it: the account can never serve, or the client was at fault.
FaultKind = RestKind | Literal["unusable", "request"]
_REST_KINDS: frozenset[str] = frozenset(get_args(RestKind))


@dataclass(frozen=True, slots=True)
class Fault:
    """`quota`: rest the (account, model) for `retry_after` s and try the next account;
    `auth`: refresh once, then rest; `forbidden`: this account may not serve this (403);
    `server`: retryable upstream trouble; `unusable`: the account can never serve (until the
    user acts: `reason` says what to do); `request`: the client's own fault — pass it on."""

    kind: FaultKind
    retry_after: float | None = None
    reason: str = ""

    @property
    def rest_kind(self) -> RestKind | None:
        """The kind of rest this refusal earns the account, None when it earns none."""
        return self.kind if self.kind in _REST_KINDS else None  # type: ignore[return-value]


def by_status(status: int) -> Fault:
    """What an upstream status means when the body adds nothing more specific."""
    if status == 429:
        return Fault("quota")
    if status == 401:
        return Fault("auth")
    if status == 403:
        return Fault("forbidden")
    if status >= 500:
        return Fault("server")
    return Fault("request")


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """An upstream refusal read and classified: what it said, and what it means for the pool."""

    status: int
    message: str
    fault: Fault
    status_name: str | None = None  # Google's canonical status, for Gemini clients
    details: list = field(default_factory=list)  # Google's error details (RetryInfo, ErrorInfo…)
    code: str | None = None  # the upstream's own error code (Codex `error.code`)
    client_status_override: int | None = None  # when the upstream's status misleads clients

    @property
    def client_status(self) -> int:
        """What the client sees. The account's credentials are ours, not the client's: an
        upstream 401/403 must not make Claude Code retry its own key forever."""
        if self.client_status_override is not None:
            return self.client_status_override
        if self.status in (401, 403, 407):  # 407: the configured proxy-url refused us
            return 503
        if self.status == 499:  # Google's "cancelled", treated like a rate limit
            return 429
        if self.status >= 500:
            return 503 if self.status == 503 else 502
        return self.status
