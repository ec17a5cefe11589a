"""mitmweb that tells the truth (docs/configuration.md "Observability"): a comment naming dialect,
upstream,
model, account and attempt on every flow, with the comment column shown; no usable secret in a
stored flow; no placeholder address on answers made here; Replay of an upstream flow with a fresh
token of its account.

Secrets are masked once the request has gone out (`responseheaders`, else `response`/`error`):
the wire carries the real values, the flow mitmweb keeps (and exports) only their last 4
characters. A replay therefore needs the credential again, injected in its `request` hook. Until
failover makes each retry its own flow, the refused attempts are listed in the comment.
"""

from __future__ import annotations

import logging

from cliproxy.addons.accesslog import account_name
from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.accounts.pool import RefreshError
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.masking import mask_request
from cliproxy.addons.state import State
from mitmproxy import ctx
from mitmproxy import http
from mitmproxy.addonmanager import Loader

logger = logging.getLogger(__name__)

EXCHANGE = "cliproxy"
ATTEMPT_ACCOUNT = "cliproxy_attempt_account"  # the account of an attempt made with httpx
PLACEHOLDER = ("127.0.0.1", 9)  # the reverse target of addons/startup.py
FLOW_BODY_MAX = 1024 * 1024


def attempt_line(ex: Exchange, number: int, budget: int) -> str:
    """`<dialect> → <upstream> · <model> · <account> · attempt i/n` for the exchange's current
    account (docs/configuration.md "Observability")."""
    n = max(budget, len(ex.history), number)
    return (
        f"{ex.client.name} → {ex.upstream.name} · {ex.model} · {account_name(ex.account)} · "
        f"attempt {number}/{n}"
    )


def comment(ex: Exchange, budget: int) -> str:
    n = max(budget, len(ex.history))
    head = attempt_line(ex, max(1, len(ex.history)), budget)
    refused = [
        f"attempt {i}/{n} refused: {a.upstream} · {account_name(a.account)} · HTTP {a.status}"
        for i, a in enumerate(ex.history, 1)
        if a.status != 200
    ]
    return "\n".join([head, *refused])


class WebView:
    def __init__(self, state: State) -> None:
        self.state = state
        self.viewing = True  # until `running` knows whether mitmweb's flow view exists

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "cliproxy_flow_body_max",
            int,
            FLOW_BODY_MAX,
            """
            mitmweb only: bytes of a streamed answer kept per flow for display.
            """,
        )

    def running(self) -> None:
        # mitmdump keeps no flows: nothing to mask or annotate there, so these hooks stay idle
        self.viewing = ctx.master.addons.get("view") is not None
        # the account is in the comment: show that column unless the user chose columns
        if "web_columns" in ctx.options and not ctx.options.has_changed("web_columns"):
            columns = list(ctx.options.web_columns)
            if "comment" not in columns:
                ctx.options.update(web_columns=[*columns, "comment"])

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.is_replay != "request":
            return
        ex: Exchange | None = flow.metadata.get(EXCHANGE)
        # an attempt flow (or a relayed side call) names its account; a client flow's request is
        # its first attempt's
        account = flow.metadata.get(ATTEMPT_ACCOUNT)
        if account is None and ex is not None:
            account = ex.history[0].account if ex.history else ex.account
        if account is None:
            return
        pool = self.state.pool
        try:
            if pool is not None:
                await pool.ensure_fresh(account)
        except RefreshError as e:
            logger.warning("replay: %s: token refresh failed: %s", account_name(account), e)
        self._credentials(flow.request, account)
        what = f"{ex.upstream.name} · {ex.model}" if ex is not None else "relay"
        flow.comment = f"replay · {what} · {account_name(account)}"

    @staticmethod
    def _credentials(request: http.Request, account: Account) -> None:
        if "authorization" in request.headers:
            request.headers["authorization"] = f"Bearer {account.access_token}"
        if "x-goog-api-key" in request.headers:
            request.headers["x-goog-api-key"] = account.access_token
        if "key" in request.query:
            request.query["key"] = account.access_token
        if isinstance(account, CodexAccount) and "chatgpt-account-id" in request.headers:
            request.headers["chatgpt-account-id"] = account.account_id

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if self.viewing:
            mask_request(flow.request)  # sent by now: only the stored copy changes

    def response(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def _finished(self, flow: http.HTTPFlow) -> None:
        if not self.viewing:
            return
        mask_request(flow.request)
        if flow.is_replay:
            return
        ex: Exchange | None = flow.metadata.get(EXCHANGE)
        if ex is not None:
            flow.comment = comment(ex, self.state.settings.request_retry)
        elif (flow.request.host, flow.request.port) == PLACEHOLDER:
            # answered here: show the address the client called, not the unused reverse target
            sock = flow.client_conn.sockname
            if sock:
                flow.request.host, flow.request.port = str(sock[0]), int(sock[1])
            if not flow.comment:
                flow.comment = "answered by cliproxy"
