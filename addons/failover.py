"""Failover: when an upstream refuses an attempt, rest that account for the model and retry
the same request on the next one (`quota-exceeded.switch-project`, `request-retry`), then on
preview models (`switch-preview-model`), refreshing once on a 401.

mitmproxy cannot re-send a flow, so retries go out through httpx and their answer replaces the
flow's response, buffered (docs/mitmproxy.md "Retries"); the cooldowns make this rare, because the
next request never picks a resting account.
"""

from __future__ import annotations

import json
import logging

import httpx
from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.accounts.pool import RefreshError
from cliproxy.addons.exchange import Answer
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.exchange import all_resting_answer
from cliproxy.addons.exchange import error_to_client
from cliproxy.addons.exchange import outbound_for
from cliproxy.addons.exchange import read_error
from cliproxy.addons.exchange import success_answer
from cliproxy.addons.state import State
from cliproxy.addons.upstreams import code_assist
from cliproxy.translators.fault import UpstreamError
from mitmproxy import http

logger = logging.getLogger(__name__)

RETRY_TIMEOUT = httpx.Timeout(600.0, connect=15.0)  # a whole generation, read in one piece


class Failover:
    def __init__(self, state: State) -> None:
        self.state = state

    async def recover(
        self,
        flow: http.HTTPFlow,
        ex: Exchange,
        status: int,
        content: bytes,
        retry_after: str | None,
    ) -> Answer:
        """The current attempt was refused: rest that account for the model, retry on the next
        one (`quota-exceeded.switch-project`, `request-retry`), then on preview models
        (`switch-preview-model`); the answer of the first success, else a clean error."""
        settings = self.state.settings
        pool = self.state.pool
        origin = ex.model
        previews = list(code_assist.PREVIEW_MODELS.get(origin, ()))
        quota_err: UpstreamError | None = None  # what to report if previews don't help
        while True:
            err = read_error(ex, status, content, retry_after)
            fault = err.fault
            if fault.kind == "request":
                # a preview id the upstream does not know is not the client's fault
                return error_to_client(ex, quota_err or err)
            self._note_refusal(ex, err)
            if fault.kind == "quota":
                quota_err = quota_err or err
                if not settings.quota_exceeded.switch_project:
                    return error_to_client(ex, err)
            account = await self._next_account(ex, fault.kind)
            if (
                account is None
                and fault.kind == "quota"
                and previews
                and (settings.quota_exceeded.switch_preview_model and pool is not None)
            ):
                ex.model, ex.tried, ex.attempts = previews.pop(0), set(), 0
                logger.warning("every account refused for quota; trying %s", ex.model)
                account = await pool.acquire(ex.provider, ex.model)
            if account is None:
                wait = pool.wait_seconds(ex.provider, origin) if pool is not None else None
                if quota_err is not None and wait is not None:
                    return all_resting_answer(ex.shape, ex.provider, origin, wait, quota_err)
                return error_to_client(ex, quota_err or err)
            ex.account, ex.attempts = account, ex.attempts + 1
            status, content, retry_after = await self._attempt(flow, ex)
            ex.record(status)
            if status == 200:
                ex.account.succeeded(ex.model)
                return success_answer(ex, content)

    async def _next_account(self, ex: Exchange, kind: str) -> Account | None:
        """The account for the next attempt: the same one after a forced refresh (first 401),
        else another one that has not refused this request, within `request-retry`."""
        pool = self.state.pool
        if pool is None:
            return None
        if kind == "auth" and not ex.refreshed:
            ex.refreshed = True
            if (account := await self._refreshed(ex.account)) is not None:
                return account
            ex.tried.add(ex.account.name)
        if ex.attempts >= self.state.settings.request_retry:
            return None
        return await pool.acquire(ex.provider, ex.model, frozenset(ex.tried))

    def _note_refusal(self, ex: Exchange, err: UpstreamError) -> None:
        account, fault = ex.account, err.fault
        reason = f"HTTP {err.status}: {err.message}"[:300]
        account.last_error = reason
        ex.tried.add(account.name)
        if fault.kind == "unusable":
            account.disabled = fault.reason or reason
            logger.warning("%s cannot serve: %s", account.label, account.disabled)
            return
        if fault.kind == "auth" and not ex.refreshed:
            return  # refreshed and retried once before it rests
        kind = fault.rest_kind
        if kind is None:
            return
        rest = account.cool(ex.model, kind, fault.retry_after, reason)
        logger.warning("%s refused %s (%s); resting %.0f s", account.label, ex.model, reason, rest)

    async def _refreshed(self, account: Account) -> Account | None:
        """The same account with a forced token refresh, or None when that fails."""
        pool = self.state.pool
        assert pool is not None
        try:
            await pool.ensure_fresh(account, force=True)
        except RefreshError as e:
            account.last_error = f"token refresh failed: {e}"
            return None
        return account

    async def _attempt(self, flow: http.HTTPFlow, ex: Exchange) -> tuple[int, bytes, str | None]:
        """One more upstream call for the exchange (httpx: mitmproxy cannot re-send a flow)."""
        out = outbound_for(self.state.settings, ex)
        flow.comment = (
            f"{ex.client.name} → {ex.upstream.name} · {ex.account.label} (retry {ex.attempts})"
        )
        http_client = self.state.http
        assert http_client is not None
        try:
            reply = await http_client.post(
                out.url,
                content=out.content,
                headers=out.headers,
                timeout=RETRY_TIMEOUT,
            )
        except httpx.HTTPError as e:
            message = f"upstream unreachable: {type(e).__name__}"
            return 502, json.dumps({"error": {"code": 502, "message": message}}).encode(), None
        return reply.status_code, reply.content, reply.headers.get("retry-after")
