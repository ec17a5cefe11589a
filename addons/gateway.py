"""The hooks of one exchange: read → route → translate → inject → forward → translate back.

One forward path serves every client dialect: the dialect's entry in translators/registry.py
reads and parses the body, the provider's upstream dialect renders it, the account's upstream
builds the request (docs/architecture.md, "One request's path"). Per-flow state is an Exchange
in flow.metadata; the way back is chosen in addons/exchange.py, refusals in addons/failover.py.
"""

from __future__ import annotations

import dataclasses
import logging

from cliproxy.addons import attempts
from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.accounts.providers import PROVIDERS
from cliproxy.addons.accounts.providers import Provider
from cliproxy.addons.accounts.providers import provider_for
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.exchange import all_resting_answer
from cliproxy.addons.exchange import answer_into
from cliproxy.addons.exchange import answer_response
from cliproxy.addons.exchange import make_stream
from cliproxy.addons.exchange import outbound_for
from cliproxy.addons.exchange import whole_answer
from cliproxy.addons.failover import Failover
from cliproxy.addons.limits import ERROR_PAGE
from cliproxy.addons.limits import RECOVERED
from cliproxy.addons.limits import SILENT
from cliproxy.addons.limits import TIMED_OUT
from cliproxy.addons.limits import client_http_version
from cliproxy.addons.limits import valid_model_name
from cliproxy.addons.local import LocalAnswer
from cliproxy.addons.local import error_response
from cliproxy.addons.local import json_body
from cliproxy.addons.local import json_response
from cliproxy.addons.local import local_answers
from cliproxy.addons.local import local_error
from cliproxy.addons.retarget import retarget
from cliproxy.addons.routing import Route
from cliproxy.addons.routing import resolve_model
from cliproxy.addons.routing import route_of
from cliproxy.addons.state import State
from cliproxy.addons.streamer import FINAL_HEADER
from cliproxy.addons.streamer import Streamer
from cliproxy.addons.takeover import end_with_error_event
from cliproxy.addons.takeover import take_over
from cliproxy.addons.upstream_call import no_answer_body
from cliproxy.translators.registry import CLIENTS
from cliproxy.translators.registry import UPSTREAM_DIALECTS
from cliproxy.translators.registry import AnswerOptions
from cliproxy.translators.registry import ClientDialect
from cliproxy.translators.tokens import estimate_tokens
from mitmproxy import http

logger = logging.getLogger(__name__)

KEY = "cliproxy"


class Gateway:
    def __init__(self, state: State) -> None:
        self.state = state
        self.failover = Failover(state)
        # the loopback streamer: an addon of its own in the chain (it serves while mitmproxy runs)
        self.streamer = Streamer(state, self.failover)

    # ------------------------------------------------------------------ request

    @local_answers
    async def request(self, flow: http.HTTPFlow) -> None:
        route = route_of(flow)
        if route is None:
            req = flow.request
            path = req.path.split("?", 1)[0]
            raise local_error(flow, 404, f"no such endpoint: {req.method} {path}")
        if route.client is not None:
            self._send(flow, await self.forward(flow, route))

    async def forward(self, flow: http.HTTPFlow, route: Route) -> Exchange:
        """The exchange a client request becomes: read in its dialect, passed through to an
        upstream of the same wire format or translated through the IR, with an account."""
        assert route.client is not None
        client = CLIENTS[route.client]
        counting = route.action == "count_tokens"
        read = client.read_count if counting else client.read
        assert read is not None
        incoming = read(json_body(flow.request), route.model, route.stream)
        model, provider = self._resolve(client, incoming.model)
        upstream_dialect = UPSTREAM_DIALECTS[PROVIDERS[provider].dialect]
        native = client.native is not None and client.native.upstream == upstream_dialect.name
        tool_names: dict[str, str] = {}
        if client.native is not None and native:
            payload, dropped = client.native.prepare(incoming, counting)
            options = AnswerOptions(incoming.model)
        else:
            req = client.parse(incoming)
            if counting and upstream_dialect.count_total is None:
                # no counting method upstream: a local estimate (clients plan context with it)
                assert client.count_body is not None
                raise LocalAnswer(json_response(200, client.count_body(estimate_tokens(req))))
            options = AnswerOptions.of(req, incoming.model)
            req.model = model
            payload, tool_names = upstream_dialect.render(req)
            dropped = req.dropped  # after rendering: it adds notes too
        account = await self._account(client, provider, model)
        for note in dropped:
            logger.info("dropped: %s", note)
        return Exchange(
            client=client,
            upstream_dialect=upstream_dialect,
            native=native,
            counting=counting,
            provider=provider,
            client_model=incoming.model,
            model=model,
            stream=incoming.stream,
            payload=payload,
            account=account,
            options=options,
            tool_names=tool_names,
            max_attempts=self.state.settings.request_retry,
        )

    def _resolve(self, client: ClientDialect, requested: str) -> tuple[str, Provider]:
        """The upstream model and provider after `model-aliases`; 404 when none serves it."""
        model = resolve_model(requested, self.state.settings.model_aliases)
        if not valid_model_name(model):
            raise LocalAnswer(
                error_response(
                    client.shape,
                    400,
                    "model: a model name has letters, digits, '.', '-' and '_' only",
                )
            )
        provider = provider_for(model)
        if provider is None:
            raise LocalAnswer(
                error_response(
                    client.shape,
                    404,
                    f"model {model!r} is not served: use a gemini-* model (Gemini CLI accounts, "
                    "AI Studio keys) or gpt-*/codex-*/o3*/o4* (Codex accounts), or map it in "
                    "config.yaml's model-aliases",
                )
            )
        return model, provider

    async def _account(self, client: ClientDialect, provider: Provider, model: str) -> Account:
        """An account that may serve `model` now; 429 when all rest, 503 when none can."""
        pool = self.state.pool
        account = await pool.acquire(provider, model) if pool is not None else None
        if account is not None:
            return account
        wait = pool.wait_seconds(provider, model) if pool is not None else None
        if wait is not None:
            answer = all_resting_answer(client.shape, provider, model, wait)
            raise LocalAnswer(json_response(answer.status, answer.body, answer.headers))
        raise LocalAnswer(error_response(client.shape, 503, self.state.no_account(provider)))

    def _send(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """Re-target the flow at the exchange's upstream, or at the loopback streamer when the
        exchange needs it; remember the exchange for the response hooks."""
        flow.metadata[KEY] = ex
        if self.streamer.wanted(ex, flow):
            ex.relayed = True
            self.streamer.take(flow, ex)
            return
        attempts.remember_client_request(flow)
        out = outbound_for(self.state.settings, ex)
        retarget(flow, out.url, out.headers, out.content)

    # ------------------------------------------------------------------ response

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex: Exchange | None = flow.metadata.get(KEY)
        if ex is None or not ex.stream or flow.response is None or flow.is_replay:
            return  # a replay shows the upstream's own answer (addons/webview.py)
        if flow.response.status_code != 200:
            return  # stays buffered: the response hook retries or translates the error
        ex.account.succeeded(ex.model)
        if not ex.relayed:  # the streamer records its own attempts
            ex.record(200)
        flow.response.stream = make_stream(ex)
        flow.response.headers = self._stream_headers(flow)

    @staticmethod
    def _stream_headers(flow: http.HTTPFlow) -> http.Headers:
        headers = http.Headers(content_type="text/event-stream", cache_control="no-cache")
        if flow.request.is_http2 or flow.request.is_http3:
            return headers
        if client_http_version(flow) == "HTTP/1.0":
            # HTTP/1.0 has no chunked encoding: the body ends when the connection closes
            # (docs/mitmproxy.md "Streaming responses")
            headers["connection"] = "close"
        else:
            headers["transfer-encoding"] = "chunked"
        return headers

    async def response(self, flow: http.HTTPFlow) -> None:
        ex: Exchange | None = flow.metadata.get(KEY)
        if ex is None or flow.response is None or flow.is_replay:
            return
        try:
            status = flow.response.status_code
            if status == 200 and ex.stream:
                return  # already streamed chunk by chunk
            if ex.relayed and FINAL_HEADER in flow.response.headers:
                del flow.response.headers[FINAL_HEADER]  # the failover's answer, in dialect
                return
            content = flow.response.content or b""
            if ex.relayed and status != 200:
                raise RuntimeError(f"the loopback streamer answered {status}")
            if not ex.relayed:  # the streamer records its own attempts
                ex.record(status)
            if status == 200:
                ex.account.succeeded(ex.model)
                answer = whole_answer(ex, content)
            else:
                retry_after = flow.response.headers.get("retry-after")
                first = (status, content, retry_after, None)
                if ex.stream and await take_over(flow, ex, self.streamer, first):
                    if flow.killable:  # answered on the client's connection: mitmproxy sends
                        flow.kill()  # nothing more and closes it
                    return
                attempts.separate_first_attempt(flow, ex)
                answer = await self.failover.recover(flow, ex, status, content, retry_after)
            answer_into(flow.response, answer)
        except Exception:
            logger.exception("internal error while translating the answer for %s", ex.client.name)
            flow.response = error_response(
                ex.shape, 502, "the upstream answer could not be translated (see the log)"
            )

    async def error(self, flow: http.HTTPFlow) -> None:
        """mitmproxy's own upstream call failed. With no answer yet (the upstream could not be
        reached: refused, `timeouts.upstream-connect`; or sent nothing for
        `timeouts.upstream-idle`), that account rests and the next one is tried, as after a
        refusal: a whole answer replaces the error page mitmproxy is about to write
        (addons/limits.py `error_page`, set by Limits' `error` hook just before this one), a
        stream is answered on the client's connection (addons/takeover.py). A stream that had
        begun ends with an error event in the client's format."""
        ex: Exchange | None = flow.metadata.get(KEY)
        page = ERROR_PAGE.get()
        if ex is None or ex.relayed or flow.is_replay:
            return  # the streamer fails over itself
        if page is None or page is SILENT or page.answer is not None:
            return  # the client is gone, or was answered already
        if ex.stream and flow.response is not None and callable(flow.response.stream):
            if end_with_error_event(flow, ex, self._broken_off(flow, ex)):
                ERROR_PAGE.set(SILENT)
            return
        status = page.status or 502
        if status not in (502, 504) or flow.response is not None:
            return  # 413 and the like: the request itself was refused
        ex.record(status)
        first = (status, no_answer_body(status, page.message), None, "upstream")
        try:
            if ex.stream and await take_over(flow, ex, self.streamer, first):
                ERROR_PAGE.set(SILENT)
                return
            attempts.separate_first_attempt(flow, ex)
            answer = await self.failover.recover(flow, ex, *first)
        except Exception:  # the error page mitmproxy is about to write stays the answer
            logger.exception("failover after no answer for %s", ex.client.name)
            return
        flow.response = answer_response(answer)
        flow.metadata[RECOVERED] = True
        ERROR_PAGE.set(dataclasses.replace(page, answer=flow.response))

    @staticmethod
    def _broken_off(flow: http.HTTPFlow, ex: Exchange) -> str:
        """Why a native stream's upstream stopped after the first byte."""
        cut = flow.metadata.get(TIMED_OUT)
        if cut is not None:
            return f"{cut[1]} during the stream"
        reason = flow.error.msg if flow.error is not None else "the connection broke"
        return f"{ex.upstream.title} broke off the stream ({reason})"
