"""What the pool, the refresh and `/usage` need from a shared store: the interface and its values.

The pool depends on this interface, never on Redis itself. Every method is safe to call while the
store is unreachable: it answers "nothing known" (None, empty) at once and the caller goes on with
its in-process state; `available` says whether the store is believed reachable right now.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Rest:
    """An account resting for a model, as every replica sees it."""

    account: str  # the account's name (its auth file's name, or the masked AI Studio key)
    model: str
    until: float  # epoch seconds at which it may serve the model again
    failures: int  # consecutive refusals, so the hint-less backoff keeps doubling across replicas
    reason: str


@dataclass(frozen=True, slots=True)
class Disabled:
    """An account that cannot serve until re-login, for one grant (fingerprint of its token):
    a new login changes the fingerprint, so a stale mark never disables the new grant."""

    reason: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class View:
    """One round trip's worth of what `acquire` needs: the global round-robin turn, and the
    shared rests for the requested model and "needs re-login" marks of the candidates."""

    turn: int
    rests: dict[str, Rest]  # account -> rest for the model asked about
    disabled: dict[str, Disabled]  # account -> mark


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One line of `/usage` (docs/configuration.md "Endpoints")."""

    day: str  # YYYY-MM-DD, UTC
    account: str
    model: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "account": self.account,
            "model": self.model,
            "requests": self.requests,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


class StateStore(Protocol):
    @property
    def available(self) -> bool: ...

    def __str__(self) -> str: ...  # the store's address for log lines, without a password

    # round robin, rests and "needs re-login"
    async def view(self, provider: str, model: str, accounts: Sequence[str]) -> View | None: ...
    async def put_rest(self, rest: Rest) -> None: ...
    async def put_disabled(self, account: str, mark: Disabled) -> None: ...
    async def rests(self) -> list[Rest]: ...

    # token refresh across replicas
    async def lock(self, account: str, ttl: float) -> str | None: ...
    async def unlock(self, account: str, token: str) -> None: ...
    async def token(self, account: str) -> dict[str, Any] | None: ...
    async def put_token(self, account: str, record: dict[str, Any]) -> None: ...
    async def disabled(self, account: str) -> Disabled | None: ...

    # usage totals of every replica
    async def add_usage(
        self,
        day: str,
        account: str,
        model: str,
        requests: int = 1,
        errors: int = 0,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None: ...
    async def usage(self, since_days: int) -> list[UsageRow]: ...

    def on_rejoin(self, callback: Callable[[], Awaitable[None]]) -> None: ...
    async def close(self) -> None: ...
