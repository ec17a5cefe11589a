"""What happened to each client request: the access log, /metrics, the usage history, and what
the flow keeps for mitmweb and the request-log (docs/configuration.md "Observability").

Two addons sharing one `Telemetry`: `ObserveEndpoints` sits before the gateway (it notes the
client's request line before the flow is re-targeted, and answers `/metrics` and `/usage` once
Access has ruled), `Observe` sits after it (its `response`/`error` hooks see the final answer).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cliproxy.addons.accesslog import Arrival
from cliproxy.addons.accesslog import Outcome
from cliproxy.addons.accesslog import account_name
from cliproxy.addons.accesslog import log_outcome
from cliproxy.addons.exchange import Attempt
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.limits import RECOVERED
from cliproxy.addons.local import LocalAnswer
from cliproxy.addons.local import error_response
from cliproxy.addons.local import json_response
from cliproxy.addons.local import local_answers
from cliproxy.addons.metrics import Metrics
from cliproxy.addons.routing import Route
from cliproxy.addons.routing import route_of
from cliproxy.addons.state import State
from cliproxy.addons.usage import SQLiteUsageStore
from cliproxy.addons.usage import UsageRecord
from cliproxy.addons.usage import UsageStore
from cliproxy.addons.usage import parse_since
from cliproxy.addons.usage import usage_db_path
from cliproxy.translators import ir
from mitmproxy import ctx
from mitmproxy import http

logger = logging.getLogger(__name__)

EXCHANGE = "cliproxy"  # flow.metadata key of the Exchange (addons/gateway.py)
ARRIVAL = "cliproxy_arrival"
OUTCOME = "cliproxy_outcome"  # the finished request, for the request-log writer
PLACEHOLDER_PORT = 9  # the reverse target nobody is sent to (addons/startup.py)


class Tee:
    """Wraps a response's stream callable: keeps what went to the client, up to `limit` bytes
    (mitmweb shows it, the request-log writes it), and when the first byte went out."""

    def __init__(self, inner: Callable[[bytes], Any], limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.body = bytearray()
        self.total = 0
        self.first: float | None = None

    def __call__(self, chunk: bytes) -> list[bytes]:
        out = self.inner(chunk)
        if isinstance(out, bytes):
            out = [out] if out else []
        for piece in out:
            if piece and self.first is None:
                self.first = time.time()
            self.total += len(piece)
            room = self.limit - len(self.body)
            if room > 0:
                self.body += piece[:room]
        return out

    @property
    def usage(self) -> ir.Usage | None:
        return getattr(self.inner, "usage", None)

    def kept(self) -> bytes:
        if self.total <= len(self.body):
            return bytes(self.body)
        return bytes(self.body) + f"\n… <{self.total} bytes in all>".encode()


class Telemetry:
    """Metrics of this process and the usage store of the config in force."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.metrics = Metrics(lambda: state.pool)
        state.refresh_listeners.append(self.metrics.refreshed)
        self._store: UsageStore | None = None
        self._store_path: Path | None = None
        self._store_failed: Path | None = None
        self._writes: set[asyncio.Task[None]] = set()  # shared usage writes under way
        self._path_of: tuple[tuple[str, Path | None] | None, Path | None] = (None, None)

    def record(self, record: UsageRecord) -> None:
        """One finished request: into this process's history (`usage-db`) and, with a shared
        `state-store`, into the totals of every replica (docs/replicas.md). The shared write
        runs in the background: no request waits for Redis."""
        store = self.store()
        if store is not None:
            store.record(record)
        shared = self.state.store
        if shared is not None and shared.available:
            task = asyncio.ensure_future(
                shared.add_usage(
                    record.day,
                    record.account,
                    record.model,
                    errors=int(record.status >= 400 or record.status == 0),
                    input_tokens=record.input_tokens,
                    output_tokens=record.output_tokens,
                )
            )
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def usage(self, since: float | None) -> list[dict[str, Any]]:
        """`/usage` rows: the totals of every replica while a shared store answers, else this
        process's own history."""
        shared = self.state.store
        if shared is not None and shared.available:
            # "all time" in the shared store: its daily totals of the last 400 days
            days = 400 if since is None else max(1, math.ceil((time.time() - since) / 86400))
            first_day = None if since is None else time.strftime("%Y-%m-%d", time.gmtime(since))
            rows = [row.as_dict() for row in await shared.usage(days)]
            if first_day is not None:
                rows = [row for row in rows if row["day"] >= first_day]
            if shared.available:  # it answered: these are the cluster's totals
                return rows
        store = self.store()
        return await asyncio.to_thread(store.query, since) if store is not None else []

    def store(self) -> UsageStore | None:
        """The usage store for the config in force: reopened only when `usage-db` changes, so a
        hot reload keeps it."""
        key = (self.state.settings.usage_db, self.state.config_path)
        if key != self._path_of[0]:  # resolved once per config, not per request
            self._path_of = (key, usage_db_path(*key))
        path = self._path_of[1]
        if path == self._store_path or path == self._store_failed:
            return self._store if path == self._store_path else None
        if self._store is not None:
            self._store.close()
            self._store, self._store_path = None, None
        if path is None:
            self._store_path = None
            return None
        try:
            self._store = SQLiteUsageStore(path)
            self._store_path = path
        except Exception as e:  # a bad path must not take the proxy down
            logger.error("usage-db %s cannot be opened: %s; no usage history", path, e)
            self._store_failed = path
            return None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store, self._store_path = None, None


def _client(flow: http.HTTPFlow) -> str:
    peer = flow.client_conn.peername
    return str(peer[0]) if peer else "-"


class ObserveEndpoints:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def running(self) -> None:
        self.telemetry.store()  # create the usage-db at start-up: a bad path shows at once

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        flow.metadata[ARRIVAL] = Arrival(
            _client(flow), req.method, req.path.split("?", 1)[0], req.timestamp_start
        )

    @local_answers
    async def request(self, flow: http.HTTPFlow) -> None:
        route = route_of(flow)
        if route is None or route.action not in ("metrics", "usage"):
            return
        if route.action == "metrics":
            pool = self.telemetry.state.pool
            if pool is not None and pool.store is not None:
                self.telemetry.metrics.resting.shared = await pool.resting()
            body, content_type = self.telemetry.metrics.exposition()
            raise LocalAnswer(http.Response.make(200, body, {"content-type": content_type}))
        try:
            since = parse_since(flow.request.query.get("since"))
        except ValueError as e:
            raise LocalAnswer(error_response("openai", 400, str(e))) from None
        raise LocalAnswer(json_response(200, {"usage": await self.telemetry.usage(since)}))

    def done(self) -> None:
        self.telemetry.close()


def body_limit(request_log: bool) -> int:
    """Bytes of a streamed answer to keep: mitmweb's `cliproxy_flow_body_max` when there is a
    flow store to show it, else what the request-log writes, else none."""
    from cliproxy.addons.reqlog import MAX_BODY

    limit = MAX_BODY if request_log else 0
    if ctx.master.addons.get("view") is not None and "cliproxy_flow_body_max" in ctx.options:
        limit = max(limit, ctx.options.cliproxy_flow_body_max)
    return limit


class Observe:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is not None and callable(response.stream):
            response.stream = Tee(
                response.stream, body_limit(self.telemetry.state.settings.request_log)
            )

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _finish(self, flow: http.HTTPFlow) -> None:
        if OUTCOME in flow.metadata or flow.is_replay:
            return
        try:
            outcome = outcome_of(flow)
        except Exception:
            logger.exception("cannot account for %s", flow.request.path)
            return
        flow.metadata[OUTCOME] = outcome
        log_outcome(outcome)
        self.telemetry.metrics.observe(outcome)
        ex: Exchange | None = flow.metadata.get(EXCHANGE)
        if ex is not None and not ex.counting:
            self.telemetry.record(
                UsageRecord(
                    time.time(), outcome.account, outcome.model, outcome.dialect,
                    outcome.upstream, outcome.status, outcome.input_tokens,
                    outcome.output_tokens,
                )
            )  # fmt: skip
        tee = _tee(flow)
        if tee is not None and tee.limit and flow.response is not None:
            # the answer went out chunk by chunk; what is kept is for display only
            flow.response.data.content = tee.kept()


def _tee(flow: http.HTTPFlow) -> Tee | None:
    stream = flow.response.stream if flow.response is not None else None
    return stream if isinstance(stream, Tee) else None


def _local_upstream(flow: http.HTTPFlow, route: Route | None) -> str:
    if route is not None and route.relay and flow.request.port != PLACEHOLDER_PORT:
        return "code_assist"  # a relay call forwarded with a pool account
    return "local"


def outcome_of(flow: http.HTTPFlow) -> Outcome:
    now = time.time()
    arrival: Arrival | None = flow.metadata.get(ARRIVAL)
    if arrival is None:
        req = flow.request
        arrival = Arrival(_client(flow), req.method, req.path.split("?", 1)[0], req.timestamp_start)
    ex: Exchange | None = flow.metadata.get(EXCHANGE)
    route: Route | None = flow.metadata.get("cliproxy_route")
    response = flow.response
    status = response.status_code if response is not None else 502
    tee = _tee(flow)
    if tee is not None:
        ttfb = tee.first - arrival.start if tee.first is not None else None
    else:
        ttfb = now - arrival.start if response is not None else None
    outcome = Outcome(
        client=arrival.client,
        method=arrival.method,
        path=arrival.path,
        dialect=(route.client or "-") if route is not None and route.client else "-",
        upstream=_local_upstream(flow, route),
        model="",
        account="",
        status=status,
        duration=now - arrival.start,
        ttfb=ttfb,
        error=flow.error.msg if flow.error is not None and RECOVERED not in flow.metadata else None,
        streamed=tee is not None,
    )
    if route is not None and route.relay and route.rpc and outcome.dialect == "-":
        outcome.dialect = f"relay:{route.rpc}"
    if ex is None:
        return outcome
    outcome.dialect = ex.client.name
    outcome.upstream = ex.upstream.name
    outcome.model = ex.model
    outcome.account = account_name(ex.account)
    attempts = list(ex.history)
    if not attempts:
        # mitmproxy's own upstream call failed (connect, TLS, reset) before any status
        attempts.append(Attempt(ex.upstream.name, ex.account, 502))
    outcome.attempts = attempts
    usage = ex.usage or (tee.usage if tee is not None else None)
    if usage is not None:
        outcome.input_tokens, outcome.output_tokens = usage.input_tokens, usage.output_tokens
    return outcome
