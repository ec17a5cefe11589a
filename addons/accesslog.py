"""The access log (docs/configuration.md "Observability"): one line per client request at the
default level, and one per
refused upstream attempt, naming the account and the upstream's status.

Lines carry the client address, method and path (without the query: `key=` may be in it),
dialect, upstream, model, account email, status, duration, tokens and attempts — never a token,
key or prompt text, whatever the log level. They go to their own logger with its own handler,
because mitmdump's terminal log is quieted to warnings (docs/mitmproxy.md "Start-up").
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from dataclasses import field

from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.exchange import Attempt

logger = logging.getLogger("cliproxy.access")


def _setup() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # mitmproxy's own handler would drop INFO or print it twice


_setup()


def account_name(account: Account) -> str:
    """How logs and metrics name an account: its email; an AI Studio key by its masked name."""
    return account.email or account.name


@dataclass(slots=True)
class Arrival:
    """The client's request line, captured before the gateway re-targets the flow."""

    client: str
    method: str
    path: str  # without the query string
    start: float


@dataclass(slots=True)
class Outcome:
    """One finished client request."""

    client: str
    method: str
    path: str
    dialect: str  # the client's dialect, or "-" for endpoints without one
    upstream: str  # the upstream service, "local" when the proxy answered itself
    model: str
    account: str  # email, "" when no account served
    status: int
    duration: float  # seconds
    ttfb: float | None  # seconds to the first byte sent to the client
    input_tokens: int = 0
    output_tokens: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    streamed: bool = False


def access_line(o: Outcome) -> str:
    route = f"{o.dialect} → {o.upstream}"
    line = (
        f"{o.client} {o.method} {o.path} {route} model={o.model or '-'} "
        f"account={o.account or '-'} status={o.status} {o.duration * 1000:.0f}ms "
        f"tokens={o.input_tokens}/{o.output_tokens} attempts={len(o.attempts)}"
    )
    if o.error:
        line += f" error={o.error!r}"
    return line


def log_outcome(o: Outcome) -> None:
    for i, attempt in enumerate(o.attempts, 1):
        if attempt.status != 200:
            logger.warning(
                "upstream %s refused attempt %d/%d of %s %s: account=%s status=%d",
                attempt.upstream,
                i,
                len(o.attempts),
                o.method,
                o.path,
                account_name(attempt.account),
                attempt.status,
            )
    logger.info("%s", access_line(o))
