"""One exchange's state, and the way back: upstream answer → the client's dialect.

Everything here is a choice of translator by (client dialect, upstream, kind); the translating
itself happens in translators/. Kept apart from gateway.py so the hooks stay thin.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.local import error_body
from cliproxy.addons.routing import Dialect
from cliproxy.addons.routing import Provider
from cliproxy.addons.settings import Settings
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex as codex_upstream
from cliproxy.addons.upstreams.fault import Fault
from cliproxy.addons.upstreams.outbound import Outbound
from cliproxy.addons.upstreams.outbound import Upstream
from cliproxy.addons.upstreams.outbound import build
from cliproxy.translators import anthropic
from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import openai_responses
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.pipeline import CodeAssistEnvelope
from cliproxy.translators.pipeline import GeminiPassthrough
from cliproxy.translators.pipeline import ResponsesRelay
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events

# "code_assist" is Gemini CLI through the /v1internal relay
Client = Literal["chat", "anthropic", "gemini", "responses", "code_assist"]
Kind = Literal["translate", "passthrough", "count_tokens"]

ERROR_DIALECT: dict[Client, Dialect] = {
    "chat": "openai",
    "responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "code_assist": "gemini",
}
UPSTREAM_NAME: dict[Upstream, str] = {
    "code_assist": "Code Assist",
    "ai_studio": "AI Studio",
    "codex": "Codex",
}


@dataclass
class Exchange:
    """What the response hooks need to know about a flow sent upstream, and what a retry on
    another account (or model) needs to rebuild it."""

    client: Client
    kind: Kind
    provider: Provider
    client_model: str  # the name the client asked for (before model-aliases)
    model: str  # the upstream model (a preview fallback may change it)
    stream: bool  # the client asked for a stream
    method: str  # Gemini method (generateContent, …) or "responses"
    payload: dict  # the upstream-format body before account-specific wrapping
    account: Account
    upstream: Upstream
    tool_names: dict[str, str] = field(default_factory=dict)  # Gemini-safe name -> client's
    include_usage: bool = False
    custom_tools: frozenset[str] = frozenset()  # Responses `custom` tools served through the IR
    tried: set[str] = field(default_factory=set)  # accounts that refused this request
    attempts: int = 1
    refreshed: bool = False  # a 401 already forced one token refresh

    @property
    def dialect(self) -> Dialect:
        return ERROR_DIALECT[self.client]

    @property
    def upstream_stream(self) -> bool:
        """Codex always streams; Gemini methods stream when the client does."""
        return self.upstream == "codex" or self.method == "streamGenerateContent"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any  # JSON-able, or bytes for an SSE body
    headers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------- client side


def _encoder(ex: Exchange) -> Any:
    if ex.client == "anthropic":
        return anthropic.StreamEncoder(ex.client_model)
    if ex.client == "gemini":
        return gemini.StreamEncoder(ex.client_model)
    if ex.client == "code_assist":
        return CodeAssistEnvelope(gemini.StreamEncoder(ex.client_model))
    if ex.client == "responses":
        return openai_responses.StreamEncoder(ex.client_model, custom_tools=set(ex.custom_tools))
    return openai_chat.StreamEncoder(ex.client_model, include_usage=ex.include_usage)


def _render(ex: Exchange, response: ir.Response) -> dict:
    if ex.client == "anthropic":
        return anthropic.render_response(response)
    if ex.client == "gemini":
        return gemini.render_response(response)
    if ex.client == "code_assist":
        return {"response": gemini.render_response(response)}
    if ex.client == "responses":
        return openai_responses.render_response(response, custom_tools=set(ex.custom_tools))
    return openai_chat.render_response(response)


def _decoder(ex: Exchange) -> Any:
    if ex.upstream == "codex":
        return codex.StreamDecoder(ex.model, ex.tool_names)
    return gemini.StreamDecoder(ex.model, ex.tool_names)


def outbound_for(settings: Settings, ex: Exchange) -> Outbound:
    """The upstream request of the exchange's current attempt (account, model)."""
    return build(
        settings.endpoints,
        ex.account,
        ex.model,
        ex.method,
        ex.method == "streamGenerateContent",
        ex.payload,
    )


def error_answer(ex: Exchange, status: int, message: str, headers: dict | None = None) -> Answer:
    return Answer(status, error_body(ex.dialect, status, message), headers or {})


# ---------------------------------------------------------------------- streams


def make_stream(ex: Exchange) -> Callable[[bytes], list[bytes]]:
    """The mitmproxy stream callable for a 200 streamed answer."""
    if ex.kind == "passthrough":
        if ex.upstream == "codex":
            return ResponsesRelay()
        if ex.client == "code_assist":  # Gemini CLI wants Code Assist frames
            return GeminiPassthrough(unwrap=False, wrap=ex.upstream == "ai_studio")
        return GeminiPassthrough(unwrap=ex.upstream == "code_assist")
    unwrap = gemini.unwrap_code_assist if ex.upstream == "code_assist" else None
    return StreamPipeline(_decoder(ex), _encoder(ex), unwrap=unwrap)


def whole_stream(ex: Exchange, content: bytes) -> bytes:
    """A stream answer delivered in one piece (after a retry mitmproxy cannot stream)."""
    translate = make_stream(ex)
    return b"".join([*translate(content), *translate(b"")]) if content else b"".join(translate(b""))


# ---------------------------------------------------------------------- whole answers


def _sse_objects(content: bytes) -> list[Any]:
    parser = SSEParser()
    return parse_json_events(parser.feed(content) + parser.finish())


def whole_answer(ex: Exchange, content: bytes) -> Answer:
    """A buffered 200 answer → the client's JSON (a non-stream client; Codex always streams)."""
    if ex.upstream == "codex":
        objects = [o for o in _sse_objects(content) if isinstance(o, dict)]
        if ex.kind == "passthrough":
            response = codex.completed_response(objects)
            if response is None:
                return error_answer(ex, 502, "the Codex stream ended before response.completed")
            return Answer(200, response)
        decoder = codex.StreamDecoder(ex.model, ex.tool_names)
        events = [ev for obj in objects for ev in decoder.feed(obj)] + decoder.finish()
    else:
        obj = json.loads(content or b"{}")
        if ex.kind == "count_tokens":
            total = obj.get("totalTokens", 0) if isinstance(obj, dict) else 0
            return Answer(200, count_tokens_body(ex, total))
        if ex.kind == "passthrough" and ex.client == "code_assist":
            return Answer(200, obj if ex.upstream == "code_assist" else {"response": obj})
        if ex.upstream == "code_assist":
            obj = gemini.unwrap_code_assist(obj)
        if ex.kind == "passthrough":
            return Answer(200, obj)
        decoder = gemini.StreamDecoder(ex.model, ex.tool_names)
        events = decoder.feed(obj) + decoder.finish()
    acc = ResponseAccumulator(model=ex.client_model)
    acc.extend(events)
    if acc.error is not None:
        return error_answer(ex, acc.error.status, f"upstream error: {acc.error.message}")
    return Answer(200, _render(ex, acc.response()))


def count_tokens_body(ex: Exchange, total: int) -> dict:
    if ex.client == "anthropic":
        return anthropic.count_tokens_body(total)
    return {"totalTokens": total}


def success_answer(ex: Exchange, content: bytes) -> Answer:
    if ex.stream:
        return Answer(200, whole_stream(ex, content), {"content-type": "text/event-stream"})
    return whole_answer(ex, content)


# ---------------------------------------------------------------------- upstream errors


@dataclass(frozen=True, slots=True)
class UpstreamError:
    status: int
    message: str
    fault: Fault
    status_name: str | None = None  # Google's canonical status, for Gemini clients
    details: list = field(default_factory=list)


def read_error(ex: Exchange, status: int, content: bytes, retry_after: str | None) -> UpstreamError:
    """Parse and classify an upstream refusal of the current attempt."""
    if ex.upstream == "codex":
        err = codex.parse_error(status, content, time.time())
        hint = float(retry_after) if retry_after and retry_after.isdigit() else None
        fault = codex_upstream.classify(status, err.code, err.resets_in_seconds, hint)
        return UpstreamError(status, err.message, fault)
    message, status_name, details = gemini.parse_error(content)
    fault = code_assist.classify(status, message, details)
    return UpstreamError(status, message, fault, status_name, details)


def client_status(upstream_status: int) -> int:
    """Upstream status → what the client sees. The account's credentials are ours, not the
    client's: an upstream 401/403 must not make Claude Code retry its own key forever."""
    if upstream_status in (401, 403, 407):  # 407: the configured proxy-url refused us
        return 503
    if upstream_status == 499:  # Google's "cancelled", treated like a rate limit
        return 429
    if upstream_status == 404:
        return 404
    if upstream_status >= 500:
        return 503 if upstream_status == 503 else 502
    return upstream_status


def error_to_client(ex: Exchange, err: UpstreamError) -> Answer:
    name = UPSTREAM_NAME[ex.upstream]
    status = client_status(err.status)
    if ex.upstream == "codex" and err.status == 404:
        status = 400  # e.g. an item id the backend never stored: the request's fault
    headers: dict[str, str] = {}
    if status == 429 and err.fault.retry_after is not None and math.isfinite(err.fault.retry_after):
        headers["retry-after"] = str(max(1, math.ceil(err.fault.retry_after)))
    text = f"upstream ({name}) error {err.status}: {err.message}"
    if ex.dialect == "gemini":
        body = gemini.error_body(status, text, err.status_name)
        if err.details:
            body["error"]["details"] = err.details
        return Answer(status, body, headers)
    return error_answer(ex, status, text, headers)


def all_cooling_answer(
    dialect: Dialect, provider: str, model: str, wait: float, last: UpstreamError | None = None
) -> Answer:
    """429 when every account rests for `model`: Retry-After names the first one back (and
    Gemini clients get it as RetryInfo too, which gemini-cli reads)."""
    after = max(1, math.ceil(wait))
    message = (
        f"every {provider} account is resting after quota or rate limits for model {model!r}; "
        f"the first is back in {after} s"
    ) + (f" (last refusal: {last.message})" if last else "")
    body = error_body(dialect, 429, message)
    if dialect == "gemini":
        # the upstream's own details (ErrorInfo reason…) with our RetryInfo
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{after}s"}
        details = last.details if last else []
        kept = [
            d for d in details if isinstance(d, dict) and "RetryInfo" not in str(d.get("@type"))
        ]
        body["error"]["details"] = [*kept, retry]
    return Answer(429, body, {"retry-after": str(after)})
