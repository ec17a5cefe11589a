"""The hooks of one exchange: classify → route → translate → inject → forward → translate back.

Thin by design (DESIGN.md §2): every translation is a call into translators/, every upstream fact
lives in addons/upstreams/, the way back is chosen in addons/exchange.py. Per-flow state is an
Exchange in flow.metadata.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from cliproxy.addons import local
from cliproxy.addons import relay
from cliproxy.addons.accounts.gemini import GeminiAccount
from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.accounts.pool import RefreshError
from cliproxy.addons.accounts.status import account_status
from cliproxy.addons.exchange import ERROR_DIALECT
from cliproxy.addons.exchange import Answer
from cliproxy.addons.exchange import Client
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.exchange import all_cooling_answer
from cliproxy.addons.exchange import make_stream
from cliproxy.addons.exchange import outbound_for
from cliproxy.addons.exchange import whole_answer
from cliproxy.addons.failover import Failover
from cliproxy.addons.routing import LOGIN_COMMAND
from cliproxy.addons.routing import Dialect
from cliproxy.addons.routing import Provider
from cliproxy.addons.routing import Route
from cliproxy.addons.routing import classify
from cliproxy.addons.routing import guess_dialect
from cliproxy.addons.routing import provider_for
from cliproxy.addons.routing import resolve_model
from cliproxy.addons.state import State
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex as codex_upstream
from cliproxy.addons.upstreams.outbound import upstream_of
from cliproxy.translators import anthropic
from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import openai_responses
from cliproxy.translators.tokens import estimate_tokens
from mitmproxy import http
from mitmproxy.connection import Server

logger = logging.getLogger(__name__)

KEY = "cliproxy"


def _client_key(request: http.Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if name in request.headers:
            return request.headers[name].strip()
    return request.query.get("key")


def _is_loopback(flow: http.HTTPFlow) -> bool:
    try:
        return ipaddress.ip_address(flow.client_conn.peername[0]).is_loopback
    except (ValueError, TypeError, IndexError):
        return False


def _http_proxy(proxy_url: str) -> tuple[str, tuple[str, int], str | None] | None:
    """(scheme, address, basic credentials) of an http(s) `proxy-url`, else None."""
    if not proxy_url.startswith(("http://", "https://")):
        return None
    parts = urlsplit(proxy_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    creds = None
    if parts.username:
        raw = f"{parts.username}:{parts.password or ''}".encode()
        creds = "Basic " + base64.b64encode(raw).decode()
    return parts.scheme, (parts.hostname or "127.0.0.1", port), creds


class Gateway:
    def __init__(self, state: State) -> None:
        self.state = state
        self.failover = Failover(state)

    # ------------------------------------------------------------------ request

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            await self._request(flow)
        except ir.RequestError as e:
            message = e.message
            if e.param and e.param not in message:
                message = f"{e.param}: {message}"
            flow.response = local.error_response(self._dialect_of(flow), e.status, message)
        except Exception:
            logger.exception("internal error while handling %s", flow.request.path)
            flow.response = local.error_response(
                self._dialect_of(flow), 500, "internal proxy error (see the proxy's log)"
            )

    def _dialect_of(self, flow: http.HTTPFlow) -> Dialect:
        req = flow.request
        path = req.path.split("?", 1)[0]
        route = classify(req.method, path, req.headers, req.query)
        return route.dialect if route else guess_dialect(path, req.headers, req.query)

    async def _request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        path = req.path.split("?", 1)[0]
        route = classify(req.method, path, req.headers, req.query)
        dialect = route.dialect if route else guess_dialect(path, req.headers, req.query)
        if route is not None and route.action in ("relay", "relay_operation"):
            await self._relay(flow, route)
            return
        denial = self._check_access(flow, dialect)
        if denial is not None and route is not None and route.action == "healthz":
            # readiness probes work without a key; account details need one
            flow.response = local.json_response(200, {"status": "ok", "accounts": {}})
            return
        if denial is not None:
            flow.response = denial
            return
        if route is None:
            flow.response = local.error_response(
                dialect, 404, f"no such endpoint: {req.method} {path}"
            )
            return
        if route.action == "healthz":
            flow.response = local.json_response(200, self.health())
        elif route.action == "models":
            flow.response = local.models_response(dialect, self.available_models())
        elif route.action == "model":
            flow.response = local.model_response(
                dialect, route.model or "", self.available_models()
            )
        else:
            await self._dispatch(flow, route, self._json_body(req))

    def _check_access(self, flow: http.HTTPFlow, dialect: Dialect) -> http.Response | None:
        keys = self.state.settings.api_keys
        if not keys:
            if _is_loopback(flow):
                return None
            return local.error_response(
                dialect,
                403,
                "this proxy serves only loopback clients; set api-keys in config.yaml to allow "
                "remote clients",
            )
        given = _client_key(flow.request)
        if given is not None and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
            return None
        what = "missing API key" if given is None else "invalid API key"
        return local.error_response(
            dialect,
            401,
            f"{what}: send one of config.yaml's api-keys as Authorization: Bearer, x-api-key, "
            "x-goog-api-key or ?key=",
        )

    @staticmethod
    def _json_body(req: http.Request) -> Any:
        raw = req.get_content(strict=False) or b""
        if not raw.strip():
            raise ir.RequestError("the request body is empty; a JSON object is required")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ir.RequestError(f"the request body is not valid JSON: {e}") from None

    async def _dispatch(self, flow: http.HTTPFlow, route: Route, body: Any) -> None:
        action = route.action
        if action == "chat":
            await self._via_ir(flow, "chat", openai_chat.parse_request(body))
        elif action == "messages":
            await self._via_ir(flow, "anthropic", anthropic.parse_request(body))
        elif action == "count_tokens":
            await self._count_tokens(flow, "anthropic", anthropic.parse_count_tokens(body))
        elif action == "responses":
            await self._responses(flow, body)
        elif action in ("generate", "stream_generate"):
            await self._gemini(flow, route, body, stream=action == "stream_generate")
        elif action == "gemini_count_tokens":
            await self._gemini_count_tokens(flow, route, body)

    # ------------------------------------------------------------------ routing

    def _resolve(
        self, flow: http.HTTPFlow, dialect: Dialect, requested: str
    ) -> tuple[str, Provider] | None:
        """The upstream model and provider after `model-aliases`; answers 404 itself."""
        model = resolve_model(requested, self.state.settings.model_aliases)
        provider = provider_for(model)
        if provider is None:
            flow.response = local.error_response(
                dialect,
                404,
                f"model {model!r} is not served: use a gemini-* model (Gemini CLI accounts, AI "
                "Studio keys) or gpt-*/codex-*/o3*/o4* (Codex accounts), or map it in "
                "config.yaml's model-aliases",
            )
            return None
        return model, provider

    async def _account(
        self, flow: http.HTTPFlow, dialect: Dialect, provider: Provider, model: str
    ) -> Account | None:
        """An account that may serve `model` now; answers 429 (all resting) or 503 itself."""
        pool = self.state.pool
        account = await pool.acquire(provider, model) if pool is not None else None
        if account is not None:
            return account
        wait = pool.wait_seconds(provider, model) if pool is not None else None
        if wait is not None:
            answer = all_cooling_answer(dialect, provider, model, wait)
            flow.response = local.json_response(answer.status, answer.body, answer.headers)
        else:
            flow.response = local.error_response(dialect, 503, self._no_account_message(provider))
        return None

    def _no_account_message(self, provider: Provider) -> str:
        login = LOGIN_COMMAND[provider]
        pool = self.state.pool
        known = pool.of(provider) if pool is not None else []
        if known:
            reasons = "; ".join(f"{a.label}: {a.disabled or a.last_error}" for a in known)
            return f"no usable {provider} account ({reasons}); run `{login}`"
        where = self.state.settings.auth_path
        return f"no {provider} account in {where}: run `{login}` to add one"

    @staticmethod
    def _log_dropped(notes: list[str]) -> None:
        for note in notes:
            logger.info("dropped: %s", note)

    # ------------------------------------------------------------------ upstream calls

    def _send(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """Re-target the flow at the exchange's upstream: URL, headers (nothing of the
        client's), body; remember the exchange for the response hooks."""
        out = outbound_for(self.state.settings, ex)
        ex.upstream = out.upstream
        req = flow.request
        req.method = "POST"
        req.headers = http.Headers(
            [(b"host", urlsplit(out.url).netloc.encode())]
            + [(k.encode(), v.encode()) for k, v in out.headers.items()]
        )
        req.url = out.url
        req.content = out.content
        via = _http_proxy(self.state.settings.proxy_url)
        if via is not None:
            scheme, address, _ = via
            if flow.server_conn.timestamp_start is not None:  # an open connection can't move
                flow.server_conn = Server(address=flow.server_conn.address)
            flow.server_conn.via = (scheme, address)  # type: ignore[assignment]
        flow.metadata[KEY] = ex
        flow.comment = f"{ex.client} → {out.upstream} · {ex.account.label}"

    def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        """Credentials for the CONNECT to an upstream proxy (never `upstream_auth`, which
        would overwrite the injected bearer in reverse mode: MITMPROXY.md §9)."""
        via = _http_proxy(self.state.settings.proxy_url)
        if via is not None and via[2]:
            flow.request.headers["proxy-authorization"] = via[2]

    async def _via_ir(
        self,
        flow: http.HTTPFlow,
        client: Client,
        req: ir.Request,
        custom_tools: frozenset[str] = frozenset(),
    ) -> None:
        """A client dialect translated through the IR to whichever upstream serves the model."""
        dialect = ERROR_DIALECT[client]
        resolved = self._resolve(flow, dialect, req.model)
        if resolved is None:
            return
        model, provider = resolved
        account = await self._account(flow, dialect, provider, model)
        if account is None:
            return
        client_model, req.model = req.model, model
        tool_names: dict[str, str] = {}
        if provider == "gemini":
            payload, tool_names = gemini.render_request(req)
            method = "streamGenerateContent" if req.stream else "generateContent"
        else:
            payload, method = codex.render_request(req), "responses"
            tool_names = codex.upstream_tool_names(req)  # names over Codex's 64-char limit
        self._log_dropped(req.extras.get("dropped", []))  # after rendering: it adds notes too
        ex = Exchange(
            client,
            "translate",
            provider,
            client_model,
            model,
            req.stream,
            method,
            payload,
            account,
            upstream_of(account),
            tool_names,
            req.include_usage,
            custom_tools,
        )
        self._send(flow, ex)

    async def _responses(self, flow: http.HTTPFlow, body: Any) -> None:
        """/v1/responses: near pass-through to Codex, through the IR to anything else."""
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            raise ir.RequestError("model is required and must be a string", param="model")
        resolved = self._resolve(flow, "openai", model)
        if resolved is None:
            return
        upstream_model, provider = resolved
        if provider != "codex":
            req = openai_responses.parse_request(body)
            custom = frozenset(req.extras.get("responses_custom_tools", []))
            await self._via_ir(flow, "responses", req, custom)
            return
        prepared, notes = codex.prepare_passthrough(body)
        account = await self._account(flow, "openai", provider, upstream_model)
        if account is None:
            return
        self._log_dropped(notes)
        stream = body.get("stream") is True
        ex = Exchange(
            "responses", "passthrough", provider, model, upstream_model, stream, "responses",
            prepared, account, upstream_of(account),
        )  # fmt: skip
        self._send(flow, ex)

    async def _gemini(self, flow: http.HTTPFlow, route: Route, body: Any, stream: bool) -> None:
        """Gemini clients: near pass-through to Gemini upstreams, through the IR to Codex."""
        resolved = self._resolve(flow, "gemini", route.model or "")
        if resolved is None:
            return
        model, provider = resolved
        if provider != "gemini":
            req = gemini.parse_request(body, route.model or model)
            req.stream = stream
            await self._via_ir(flow, "gemini", req)
            return
        prepared = gemini.prepare_passthrough(body)
        account = await self._account(flow, "gemini", provider, model)
        if account is None:
            return
        method = "streamGenerateContent" if stream else "generateContent"
        ex = Exchange(
            "gemini", "passthrough", provider, route.model or model, model, stream, method,
            prepared, account, upstream_of(account),
        )  # fmt: skip
        self._send(flow, ex)

    async def _count_tokens(self, flow: http.HTTPFlow, client: Client, req: ir.Request) -> None:
        dialect = ERROR_DIALECT[client]
        resolved = self._resolve(flow, dialect, req.model)
        if resolved is None:
            return
        model, provider = resolved
        if provider != "gemini":
            # Codex has no counting method: a local estimate (clients use it to plan context)
            total = estimate_tokens(req)
            body = (
                anthropic.count_tokens_body(total)
                if client == "anthropic"
                else {"totalTokens": total}
            )
            flow.response = local.json_response(200, body)
            return
        account = await self._account(flow, dialect, provider, model)
        if account is None:
            return
        client_model, req.model = req.model, model
        payload, _ = gemini.render_request(req)
        ex = Exchange(
            client, "count_tokens", provider, client_model, model, False, "countTokens",
            payload, account, upstream_of(account),
        )  # fmt: skip
        self._send(flow, ex)

    async def _gemini_count_tokens(self, flow: http.HTTPFlow, route: Route, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
            body = body["generateContentRequest"]  # the public API's "count everything" form
        resolved = self._resolve(flow, "gemini", route.model or "")
        if resolved is None:
            return
        model, provider = resolved
        if provider != "gemini":
            await self._count_tokens(flow, "gemini", gemini.parse_request(body, model))
            return
        prepared = gemini.prepare_passthrough(body)
        prepared.pop("model", None)  # the path names the model
        account = await self._account(flow, "gemini", provider, model)
        if account is None:
            return
        ex = Exchange(
            "gemini", "count_tokens", provider, route.model or model, model, False,
            "countTokens", prepared, account, upstream_of(account),
        )  # fmt: skip
        self._send(flow, ex)

    # ------------------------------------------------------------------ the /v1internal relay

    async def _relay(self, flow: http.HTTPFlow, route: Route) -> None:
        """Gemini CLI's Code Assist calls, served with the pool's credentials."""
        if not _is_loopback(flow):
            flow.response = local.error_response(
                "gemini", 403, "the /v1internal relay serves loopback clients only"
            )
            return
        rpc = route.rpc or ""
        if route.action == "relay_operation" or rpc in relay.SETUP_METHODS:
            project = self._relay_project()
            if project is None:
                flow.response = local.error_response(
                    "gemini", 503, self._no_account_message("gemini")
                )
            elif rpc == "loadCodeAssist":
                flow.response = local.json_response(200, relay.load_code_assist(project))
            else:
                flow.response = local.json_response(200, relay.onboarded_operation(project))
            return
        if rpc in relay.GENERATION_METHODS:
            await self._relay_generation(flow, rpc, self._json_body(flow.request))
            return
        await self._relay_forward(flow, rpc)

    def _relay_project(self) -> str | None:
        """The project Gemini CLI is told it has: the first Code Assist account's (requests are
        re-addressed to whichever account serves them anyway)."""
        pool = self.state.pool
        accounts = pool.usable("gemini") if pool is not None else []
        for account in accounts:
            if account.project_id:
                return account.project_id
        return "cliproxy" if accounts else None

    async def _relay_generation(self, flow: http.HTTPFlow, rpc: str, body: Any) -> None:
        try:
            requested, request = relay.envelope_parts(body)
        except ValueError as e:
            raise ir.RequestError(str(e)) from None
        resolved = self._resolve(flow, "gemini", requested)
        if resolved is None:
            return
        model, provider = resolved
        if provider != "gemini":  # e.g. gpt-* through Codex, answered as Code Assist frames
            req = gemini.parse_request(request, requested)
            if rpc == "countTokens":
                flow.response = local.json_response(200, {"totalTokens": estimate_tokens(req)})
                return
            req.stream = rpc == "streamGenerateContent"
            await self._via_ir(flow, "code_assist", req)
            return
        prepared = gemini.prepare_passthrough(request)
        prepared.pop("model", None)  # countTokens names it inside; the envelope carries it
        account = await self._account(flow, "gemini", provider, model)
        if account is None:
            return
        kind = "count_tokens" if rpc == "countTokens" else "passthrough"
        ex = Exchange(
            "code_assist", kind, provider, requested, model, rpc == "streamGenerateContent",
            rpc, prepared, account, upstream_of(account),
        )  # fmt: skip
        self._send(flow, ex)

    async def _relay_forward(self, flow: http.HTTPFlow, rpc: str) -> None:
        """Any other method (quota, experiments, metrics, settings): forwarded with a Code
        Assist account's token and project; answered locally when there is none."""
        pool = self.state.pool
        account = next(
            (a for a in (pool.usable("gemini") if pool else []) if isinstance(a, GeminiAccount)),
            None,
        )
        if account is not None and pool is not None:
            try:
                await pool.ensure_fresh(account)
            except RefreshError:
                account = None
        if account is None:
            flow.response = local.json_response(200, relay.LOCAL_FALLBACKS.get(rpc, {}))
            return
        req = flow.request
        raw = req.get_content(strict=False) or b""
        query = req.path.partition("?")[2]
        url = code_assist.method_url(self.state.settings.endpoints.gemini_cli, rpc)
        headers = code_assist.headers(account.access_token, False)
        method = req.method
        req.headers = http.Headers(
            [(b"host", urlsplit(url).netloc.encode())]
            + [(k.encode(), v.encode()) for k, v in headers.items()]
        )
        req.url = url + (f"?{query}" if query else "")
        req.method = method
        if raw.strip():
            try:
                rewritten = relay.rewrite_project(json.loads(raw), account.project_id)
                req.content = json.dumps(rewritten, separators=(",", ":")).encode()
            except ValueError:
                req.content = raw
        flow.comment = f"relay {rpc} → code_assist · {account.label}"

    # ------------------------------------------------------------------ response

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex: Exchange | None = flow.metadata.get(KEY)
        if ex is None or not ex.stream or flow.response is None:
            return
        if flow.response.status_code != 200:
            return  # stays buffered: the response hook retries or translates the error
        ex.account.succeeded(ex.model)
        flow.response.stream = make_stream(ex)
        flow.response.headers = self._stream_headers(flow)

    @staticmethod
    def _stream_headers(flow: http.HTTPFlow) -> http.Headers:
        headers = http.Headers(content_type="text/event-stream", cache_control="no-cache")
        if not (flow.request.is_http2 or flow.request.is_http3):
            headers["transfer-encoding"] = "chunked"
        return headers

    async def response(self, flow: http.HTTPFlow) -> None:
        ex: Exchange | None = flow.metadata.get(KEY)
        if ex is None or flow.response is None:
            return
        try:
            status = flow.response.status_code
            if status == 200 and ex.stream:
                return  # already streamed chunk by chunk
            content = flow.response.content or b""
            if status == 200:
                ex.account.succeeded(ex.model)
                answer = whole_answer(ex, content)
            else:
                retry_after = flow.response.headers.get("retry-after")
                answer = await self.failover.recover(flow, ex, status, content, retry_after)
            flow.response = self._to_response(flow, answer)
        except Exception:
            logger.exception("internal error while translating the answer for %s", ex.client)
            flow.response = local.error_response(
                ex.dialect, 502, "the upstream answer could not be translated (see the log)"
            )

    def _to_response(self, flow: http.HTTPFlow, answer: Answer) -> http.Response:
        if isinstance(answer.body, bytes):
            return http.Response.make(answer.status, answer.body, {
                "content-type": "text/event-stream", "cache-control": "no-cache",
            })  # fmt: skip
        return local.json_response(answer.status, answer.body, answer.headers)

    # ------------------------------------------------------------------ local answers

    def available_models(self) -> list[str]:
        pool = self.state.pool
        models: list[str] = []
        if pool is not None and pool.usable("gemini"):
            models.extend(code_assist.MODELS)
        if pool is not None and pool.usable("codex"):
            models.extend(codex_upstream.MODELS)
        servable = set(models)
        for alias, target in self.state.settings.model_aliases.items():
            if target in servable and alias not in servable:
                models.append(alias)
        return models

    def health(self) -> dict:
        pool = self.state.pool
        accounts: dict[str, dict] = {}
        for acc in pool.accounts if pool is not None else []:
            accounts[acc.name] = account_status(acc)
        return {"status": "ok", "accounts": accounts, "models": self.available_models()}
