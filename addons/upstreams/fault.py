"""What an upstream refusal means for the pool (each upstream module classifies its own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["quota", "auth", "forbidden", "server", "unusable", "request"]


@dataclass(frozen=True, slots=True)
class Fault:
    """`quota`: rest the (account, model) for `retry_after` s and try the next account;
    `auth`: refresh once, then rest; `forbidden`: this account may not serve this (403);
    `server`: retryable upstream trouble; `unusable`: the account can never serve (until the
    user acts: `reason` says what to do); `request`: the client's own fault — pass it on."""

    kind: Kind
    retry_after: float | None = None
    reason: str = ""


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
