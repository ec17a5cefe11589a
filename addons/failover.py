"""Failover: when an upstream refuses an attempt, rest that account for the model and retry
the same request on the next one (`quota-exceeded.switch-project`, `request-retry`), then on
preview models (`switch-preview-model`), refreshing once on a 401.

mitmproxy cannot re-send a flow, so retries go out through httpx and their answer replaces the
flow's response, buffered (docs/mitmproxy.md "Retries"); the cooldowns make this rare, because the
next request never picks a resting account.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal

import httpx
from cliproxy.addons import attempts
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
from cliproxy.addons.upstream_call import TooLarge
from cliproxy.addons.upstream_call import no_answer_body
from cliproxy.addons.upstream_call import no_answer_reason
from cliproxy.addons.upstream_call import read_capped
from cliproxy.addons.upstream_call import read_refusal
from cliproxy.addons.upstream_call import timeout
from cliproxy.addons.upstreams import code_assist
from cliproxy.translators.fault import UpstreamError
from mitmproxy import http

logger = logging.getLogger(__name__)

# why an attempt got no answer: the upstream did not answer in time, or proxy-url failed
NoAnswer = Literal["upstream", "proxy"]


class Failover:
    def __init__(self, state: State) -> None:
        self.state = state

    def recovery(self, ex: Exchange) -> Recovery:
        return Recovery(self, ex)

    async def recover(
        self,
        flow: http.HTTPFlow,
        ex: Exchange,
        status: int,
        content: bytes,
        retry_after: str | None,
        no_answer: NoAnswer | None = None,
    ) -> Answer:
        """The native path's refused attempt (or one that got no answer: `no_answer`): retried
        through httpx, buffered (mitmproxy cannot re-send a flow); the answer of the first
        success, else a clean error."""
        recovery = Recovery(self, ex)
        while (
            final := await recovery.after_refusal(status, content, retry_after, no_answer)
        ) is None:
            status, content, retry_after, no_answer = await self._attempt(flow, ex)
            ex.record(status)
            if status == 200:
                ex.account.succeeded(ex.model)
                return success_answer(ex, content)
        return final

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

    async def _note_refusal(self, ex: Exchange, err: UpstreamError) -> None:
        account, fault = ex.account, err.fault
        pool = self.state.pool
        reason = f"HTTP {err.status}: {err.message}"[:300]
        account.last_error = reason
        ex.tried.add(account.name)
        if fault.kind == "unusable":
            # via the pool: with a state-store every replica learns it (docs/replicas.md)
            if pool is not None:
                await pool.disable(account, fault.reason or reason)
            else:
                account.disabled = fault.reason or reason
            logger.warning("%s cannot serve: %s", account.label, account.disabled)
            return
        if fault.kind == "auth" and not ex.refreshed:
            return  # refreshed and retried once before it rests
        kind = fault.rest_kind
        if kind is None:
            return
        if pool is not None:  # via the pool: with a state-store every replica rests it
            rest = await pool.rest(account, ex.model, kind, fault.retry_after, reason)
        else:
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

    async def _attempt(
        self, flow: http.HTTPFlow, ex: Exchange
    ) -> tuple[int, bytes, str | None, NoAnswer | None]:
        """One more upstream call for the exchange (httpx: mitmproxy cannot re-send a flow):
        status, body, Retry-After, and "upstream" when the proxy wrote the refusal because the
        call got no answer (the native path never has `proxy-url`: the streamer carries those)."""
        out = outbound_for(self.state.settings, ex)
        record = attempts.AttemptRecord.start(ex, out)
        http_client = self.state.http
        assert http_client is not None
        settings = self.state.settings
        try:
            async with http_client.stream(
                "POST", out.url, content=out.content, headers=out.headers, timeout=timeout(settings)
            ) as reply:
                if reply.status_code == 200:
                    content = await read_capped(reply, settings.max_body_size)
                else:
                    content = await read_refusal(reply)
        except TooLarge as e:
            body = no_answer_body(502, str(e))
            record.finish(502, body, {})
            return 502, body, None, None
        except httpx.HTTPError as e:
            status, message = no_answer_reason(ex.upstream.title, e, settings)
            body = no_answer_body(status, message)
            record.finish(status, body, {})
            return status, body, None, "upstream"
        record.finish(reply.status_code, content, dict(reply.headers))
        return reply.status_code, content, reply.headers.get("retry-after"), None


class Recovery:
    """The failover of one exchange across its attempts: after each refusal, rest that account
    for the model and name the next attempt (`quota-exceeded.switch-project`, `request-retry`),
    then preview models (`switch-preview-model`), refreshing once on a 401. Used by the native
    path (buffered retries) and by the loopback relay (streamed retries) alike."""

    def __init__(self, failover: Failover, ex: Exchange) -> None:
        self.failover = failover
        self.ex = ex
        self.origin = ex.model
        self.previews = list(code_assist.PREVIEW_MODELS.get(ex.model, ()))
        self.quota_err: UpstreamError | None = None  # what to report if previews don't help

    async def after_refusal(
        self,
        status: int,
        content: bytes,
        retry_after: str | None,
        no_answer: NoAnswer | None = None,
    ) -> Answer | None:
        """None when the exchange now names the next account (and model) to try; else the
        answer the client gets. `no_answer`: the proxy wrote this refusal because the attempt
        got no answer (connect failure 502, `upstream-idle` 504), its status is what the client
        sees (an upstream's own 504 would be a 502); "proxy" when `proxy-url` is what failed:
        every account goes through it, so none rests and no other is tried."""
        ex, failover = self.ex, self.failover
        settings, pool = failover.state.settings, failover.state.pool
        err = read_error(ex, status, content, retry_after)
        if no_answer is not None:
            err = dataclasses.replace(err, client_status_override=status)
        if no_answer == "proxy":
            return error_to_client(ex, err)
        fault = err.fault
        if fault.kind == "request":
            # a preview id the upstream does not know is not the client's fault
            return error_to_client(ex, self.quota_err or err)
        await failover._note_refusal(ex, err)
        if fault.kind == "quota":
            self.quota_err = self.quota_err or err
            if not settings.quota_exceeded.switch_project:
                return error_to_client(ex, err)
        account = await failover._next_account(ex, fault.kind)
        if (
            account is None
            and fault.kind == "quota"
            and self.previews
            and (settings.quota_exceeded.switch_preview_model and pool is not None)
        ):
            ex.model, ex.tried, ex.attempts = self.previews.pop(0), set(), 0
            logger.warning("every account refused for quota; trying %s", ex.model)
            account = await pool.acquire(ex.provider, ex.model)
        if account is None:
            wait = pool.wait_seconds(ex.provider, self.origin) if pool is not None else None
            if self.quota_err is not None and wait is not None:
                return all_resting_answer(ex.shape, ex.provider, self.origin, wait, self.quota_err)
            return error_to_client(ex, self.quota_err or err)
        ex.account, ex.attempts = account, ex.attempts + 1
        return None
