"""The hooks of one exchange: classify → route → translate → inject → forward → translate back.

Thin by design (DESIGN.md §2): every translation is a call into translators/, every upstream fact
lives in addons/upstreams/. Per-flow state is an Exchange in flow.metadata.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

from mitmproxy import http

from addons import local
from addons.accounts.pool import Account
from addons.routing import LOGIN_COMMAND
from addons.routing import Dialect
from addons.routing import Route
from addons.routing import classify
from addons.routing import guess_dialect
from addons.routing import provider_for
from addons.routing import resolve_model
from addons.state import State
from addons.upstreams import code_assist
from translators import anthropic
from translators import gemini
from translators import ir
from translators import openai_chat
from translators.accumulate import ResponseAccumulator
from translators.pipeline import StreamPipeline

logger = logging.getLogger(__name__)

KEY = "cliproxy"

Kind = Literal["translate", "passthrough", "count_tokens"]


@dataclass
class Exchange:
    """What the response hooks need to know about a flow sent upstream."""

    dialect: Dialect
    kind: Kind
    client_model: str  # the name the client asked for (before model-aliases)
    model: str  # the upstream model
    stream: bool
    account: Account
    tool_names: dict[str, str] = field(default_factory=dict)
    include_usage: bool = False


def _encoder(dialect: Dialect, model: str, include_usage: bool) -> Any:
    if dialect == "anthropic":
        return anthropic.StreamEncoder(model)
    if dialect == "gemini":
        return gemini.StreamEncoder(model)
    return openai_chat.StreamEncoder(model, include_usage=include_usage)


def _render(dialect: Dialect, response: ir.Response) -> dict:
    if dialect == "anthropic":
        return anthropic.render_response(response)
    if dialect == "gemini":
        return gemini.render_response(response)
    return openai_chat.render_response(response)


class PassthroughStream:
    """Code Assist SSE → bare Gemini SSE for Gemini clients; a cut stream ends in an error frame."""

    def __init__(self) -> None:
        self.unwrapper = gemini.CodeAssistUnwrapper()

    def __call__(self, chunk: bytes) -> list[bytes]:
        if chunk:
            return self.unwrapper.feed(chunk)
        out = self.unwrapper.finish()
        if not self.unwrapper.finished:
            body = gemini.error_body(502, "upstream stream ended before completion")
            out.append(b"data: " + json.dumps(body).encode() + b"\n\n")
        return out


def make_stream(ex: Exchange) -> Callable[[bytes], list[bytes]]:
    if ex.kind == "passthrough":
        return PassthroughStream()
    decoder = gemini.StreamDecoder(ex.model, ex.tool_names)
    encoder = _encoder(ex.dialect, ex.client_model, ex.include_usage)
    return StreamPipeline(decoder, encoder, unwrap=gemini.unwrap_code_assist)


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


def _status_for_upstream(status: int) -> int:
    """Upstream status → what the client sees. The account's credentials are ours, not the
    client's: an upstream 401/403 must not make Claude Code retry its own key forever."""
    if status in (401, 403):
        return 503
    if status >= 500:
        return 502 if status != 503 else 503
    return status


def _retry_after(details: list) -> str | None:
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            if delay.endswith("s"):
                try:
                    return str(max(1, math.ceil(float(delay[:-1]))))
                except ValueError:
                    return None
    return None


class Gateway:
    def __init__(self, state: State) -> None:
        self.state = state

    # ------------------------------------------------------------------ request

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            await self._request(flow)
        except ir.RequestError as e:
            dialect = self._dialect_of(flow)
            message = (
                f"{e.param}: {e.message}" if e.param and e.param not in e.message else e.message
            )
            flow.response = local.error_response(dialect, e.status, message)
        except Exception:
            logger.exception("internal error while handling %s", flow.request.path)
            dialect = self._dialect_of(flow)
            flow.response = local.error_response(dialect, 500, "internal proxy error (see log)")

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
        denial = self._check_access(flow, dialect)
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
            return
        if route.action == "models":
            flow.response = local.models_response(dialect, self.available_models())
            return
        if route.action == "model":
            flow.response = local.model_response(
                dialect, route.model or "", self.available_models()
            )
            return
        body = self._json_body(req)
        await self._dispatch(flow, route, body)

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
        dialect = route.dialect
        if route.action == "chat":
            await self._translated(flow, dialect, openai_chat.parse_request(body))
        elif route.action == "messages":
            await self._translated(flow, dialect, anthropic.parse_request(body))
        elif route.action == "count_tokens":
            await self._count_tokens(flow, anthropic.parse_count_tokens(body))
        elif route.action in ("generate", "stream_generate"):
            await self._gemini_native(flow, route, body)
        elif route.action == "gemini_count_tokens":
            await self._gemini_count_tokens(flow, route, body)

    # ------------------------------------------------------------------ routing

    async def _account_for(
        self, flow: http.HTTPFlow, dialect: Dialect, requested: str
    ) -> tuple[str, Account] | None:
        """Resolve the model and take an account; answers the flow itself when it cannot."""
        model = resolve_model(requested, self.state.settings.model_aliases)
        provider = provider_for(model)
        if provider is None:
            flow.response = local.error_response(
                dialect,
                404,
                f"model {model!r} is not served: use a gemini-* model (or gpt-*/codex-* with a "
                "Codex account), or map it in config.yaml's model-aliases",
            )
            return None
        pool = self.state.pool
        account = await pool.acquire(provider) if pool is not None else None
        if account is None:
            flow.response = local.error_response(dialect, 503, self._no_account_message(provider))
            return None
        return model, account

    def _no_account_message(self, provider: str) -> str:
        login = LOGIN_COMMAND.get(provider, "cliproxy login")  # type: ignore[call-overload]
        pool = self.state.pool
        known = pool.of(provider) if pool is not None else []
        if known:
            reasons = "; ".join(f"{a.label}: {a.disabled or a.last_error}" for a in known)
            return f"no usable {provider} account ({reasons}); run `{login}`"
        where = self.state.settings.auth_path
        return f"no {provider} account in {where}: run `{login}` to add one"

    def _log_dropped(self, req: ir.Request) -> None:
        for note in req.extras.get("dropped", []):
            logger.info("dropped: %s", note)

    # ------------------------------------------------------------------ upstream calls

    def _send(self, flow: http.HTTPFlow, url: str, headers: dict[str, str], body: Any) -> None:
        """Re-target the flow: URL, headers (nothing of the client's), JSON body."""
        req = flow.request
        req.method = "POST"
        req.headers = http.Headers(
            [(b"host", urlsplit(url).netloc.encode())]
            + [(k.encode(), v.encode()) for k, v in headers.items()]
        )
        req.url = url
        req.content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    async def _translated(self, flow: http.HTTPFlow, dialect: Dialect, req: ir.Request) -> None:
        self._log_dropped(req)
        picked = await self._account_for(flow, dialect, req.model)
        if picked is None:
            return
        model, account = picked
        client_model = req.model
        req.model = model
        body, tool_names = gemini.render_request(req)
        envelope = gemini.wrap_code_assist(body, model, account.project_id)
        method = "streamGenerateContent" if req.stream else "generateContent"
        self._send(
            flow,
            code_assist.method_url(self.state.settings.endpoints.gemini_cli, method, req.stream),
            code_assist.headers(account.access_token, req.stream),
            envelope,
        )
        flow.metadata[KEY] = Exchange(
            dialect,
            "translate",
            client_model,
            model,
            req.stream,
            account,
            tool_names,
            req.include_usage,
        )
        flow.comment = f"{dialect} → code assist · {account.label}"

    async def _count_tokens(self, flow: http.HTTPFlow, req: ir.Request) -> None:
        picked = await self._account_for(flow, "anthropic", req.model)
        if picked is None:
            return
        model, account = picked
        req.model = model
        body, _ = gemini.render_request(req)
        self._send(
            flow,
            code_assist.method_url(self.state.settings.endpoints.gemini_cli, "countTokens"),
            code_assist.headers(account.access_token, False),
            gemini.count_tokens_request(body, model),
        )
        flow.metadata[KEY] = Exchange("anthropic", "count_tokens", req.model, model, False, account)

    async def _gemini_native(self, flow: http.HTTPFlow, route: Route, body: Any) -> None:
        prepared = gemini.prepare_passthrough(body)
        stream = route.action == "stream_generate"
        picked = await self._account_for(flow, "gemini", route.model or "")
        if picked is None:
            return
        model, account = picked
        method = "streamGenerateContent" if stream else "generateContent"
        self._send(
            flow,
            code_assist.method_url(self.state.settings.endpoints.gemini_cli, method, stream),
            code_assist.headers(account.access_token, stream),
            gemini.wrap_code_assist(prepared, model, account.project_id),
        )
        flow.metadata[KEY] = Exchange(
            "gemini", "passthrough", route.model or model, model, stream, account
        )
        flow.comment = f"gemini → code assist · {account.label}"

    async def _gemini_count_tokens(self, flow: http.HTTPFlow, route: Route, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
            body = body["generateContentRequest"]  # the public API's "count everything" form
        prepared = gemini.prepare_passthrough(body)
        picked = await self._account_for(flow, "gemini", route.model or "")
        if picked is None:
            return
        model, account = picked
        self._send(
            flow,
            code_assist.method_url(self.state.settings.endpoints.gemini_cli, "countTokens"),
            code_assist.headers(account.access_token, False),
            gemini.count_tokens_request(prepared, model),
        )
        flow.metadata[KEY] = Exchange(
            "gemini", "count_tokens", route.model or model, model, False, account
        )

    # ------------------------------------------------------------------ response

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex: Exchange | None = flow.metadata.get(KEY)
        if ex is None or not ex.stream or flow.response is None:
            return
        if flow.response.status_code != 200:
            return  # stays buffered: the response hook translates the error
        flow.response.stream = make_stream(ex)
        headers = http.Headers(content_type="text/event-stream", cache_control="no-cache")
        if not (flow.request.is_http2 or flow.request.is_http3):
            headers["transfer-encoding"] = "chunked"
        flow.response.headers = headers

    async def response(self, flow: http.HTTPFlow) -> None:
        ex: Exchange | None = flow.metadata.get(KEY)
        if ex is None or flow.response is None:
            return
        try:
            if flow.response.status_code != 200:
                self._upstream_error(flow, ex)
            elif not ex.stream:
                self._whole_answer(flow, ex)
        except Exception:
            logger.exception("internal error while translating the answer to %s", ex.dialect)
            flow.response = local.error_response(
                ex.dialect, 502, "the upstream answer could not be translated (see log)"
            )

    def _upstream_error(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        assert flow.response is not None
        upstream_status = flow.response.status_code
        message, status_name, details = gemini.parse_error(flow.response.content or b"")
        ex.account.last_error = f"HTTP {upstream_status}: {message}"[:300]
        logger.warning("%s answered HTTP %s: %s", ex.account.label, upstream_status, message)
        status = _status_for_upstream(upstream_status)
        headers: dict[str, str] = {}
        if status == 429 and (after := _retry_after(details)):
            headers["retry-after"] = after
        text = f"upstream (Code Assist) error {upstream_status}: {message}"
        if ex.dialect == "gemini":
            body = gemini.error_body(status, text, status_name)
            if details:
                body["error"]["details"] = details
            flow.response = local.json_response(status, body, headers)
        else:
            flow.response = local.error_response(ex.dialect, status, text, headers)

    def _whole_answer(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        assert flow.response is not None
        obj = json.loads(flow.response.content or b"{}")
        if ex.kind == "count_tokens":
            total = obj.get("totalTokens", 0) if isinstance(obj, dict) else 0
            out: Any = (
                anthropic.count_tokens_body(total)
                if ex.dialect == "anthropic"
                else {"totalTokens": total}
            )
        elif ex.kind == "passthrough":
            out = gemini.unwrap_code_assist(obj)
        else:
            decoder = gemini.StreamDecoder(ex.model, ex.tool_names)
            acc = ResponseAccumulator(model=ex.client_model)
            acc.extend(decoder.feed(gemini.unwrap_code_assist(obj)))
            acc.extend(decoder.finish())
            out = _render(ex.dialect, acc.response())
        flow.response = local.json_response(200, out)

    # ------------------------------------------------------------------ local answers

    def available_models(self) -> list[str]:
        pool = self.state.pool
        models: list[str] = []
        if pool is not None and pool.usable("gemini"):
            models.extend(code_assist.MODELS)
        servable = set(models)
        for alias, target in self.state.settings.model_aliases.items():
            if target in servable and alias not in servable:
                models.append(alias)
        return models

    def health(self) -> dict:
        pool = self.state.pool
        accounts: dict[str, dict] = {}
        for acc in pool.accounts if pool is not None else []:
            expiry = acc.expiry
            accounts[acc.path.name] = {
                "provider": acc.provider,
                "email": acc.email,
                "project": acc.project_id,
                "token_expiry": expiry.isoformat() if expiry else None,
                "usable": acc.disabled is None,
                "disabled": acc.disabled,
                "requests_served": acc.requests_served,
                "last_error": acc.last_error,
            }
        return {
            "status": "ok",
            "accounts": accounts,
            "models": self.available_models(),
        }
