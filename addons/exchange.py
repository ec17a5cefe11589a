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

from addons.accounts.pool import Account
from addons.local import error_body
from addons.routing import Dialect
from addons.upstreams import code_assist
from addons.upstreams import codex as codex_upstream
from translators import anthropic
from translators import codex
from translators import gemini
from translators import ir
from translators import openai_chat
from translators import openai_responses
from translators.accumulate import ResponseAccumulator
from translators.pipeline import ResponsesRelay
from translators.pipeline import StreamPipeline
from translators.sse import SSEParser
from translators.sse import parse_json_events

Client = Literal["chat", "anthropic", "gemini", "responses"]
Upstream = Literal["code_assist", "codex"]
Kind = Literal["translate", "passthrough", "count_tokens"]

ERROR_DIALECT: dict[Client, Dialect] = {
    "chat": "openai",
    "responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
UPSTREAM_NAME: dict[Upstream, str] = {"code_assist": "Code Assist", "codex": "Codex"}


@dataclass
class Exchange:
    """What the response hooks need to know about a flow sent upstream."""

    client: Client
    upstream: Upstream
    kind: Kind
    client_model: str  # the name the client asked for (before model-aliases)
    model: str  # the upstream model
    stream: bool  # the client asked for a stream
    account: Account
    tool_names: dict[str, str] = field(default_factory=dict)  # Gemini-safe name -> client's
    include_usage: bool = False
    custom_tools: frozenset[str] = frozenset()  # Responses `custom` tools served through the IR

    @property
    def dialect(self) -> Dialect:
        return ERROR_DIALECT[self.client]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------- client side


def _encoder(ex: Exchange) -> Any:
    if ex.client == "anthropic":
        return anthropic.StreamEncoder(ex.client_model)
    if ex.client == "gemini":
        return gemini.StreamEncoder(ex.client_model)
    if ex.client == "responses":
        return openai_responses.StreamEncoder(ex.client_model, custom_tools=set(ex.custom_tools))
    return openai_chat.StreamEncoder(ex.client_model, include_usage=ex.include_usage)


def _render(ex: Exchange, response: ir.Response) -> dict:
    if ex.client == "anthropic":
        return anthropic.render_response(response)
    if ex.client == "gemini":
        return gemini.render_response(response)
    if ex.client == "responses":
        return openai_responses.render_response(response, custom_tools=set(ex.custom_tools))
    return openai_chat.render_response(response)


def _decoder(ex: Exchange) -> Any:
    if ex.upstream == "codex":
        return codex.StreamDecoder(ex.model)
    return gemini.StreamDecoder(ex.model, ex.tool_names)


def error_answer(ex: Exchange, status: int, message: str, headers: dict | None = None) -> Answer:
    return Answer(status, error_body(ex.dialect, status, message), headers or {})


# ---------------------------------------------------------------------- streams


class CodeAssistPassthrough:
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
    """The mitmproxy stream callable for a 200 streamed answer."""
    if ex.kind == "passthrough":
        return ResponsesRelay() if ex.upstream == "codex" else CodeAssistPassthrough()
    unwrap = gemini.unwrap_code_assist if ex.upstream == "code_assist" else None
    return StreamPipeline(_decoder(ex), _encoder(ex), unwrap=unwrap)


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
        decoder = codex.StreamDecoder(ex.model)
        events = [ev for obj in objects for ev in decoder.feed(obj)] + decoder.finish()
    else:
        obj = json.loads(content or b"{}")
        if ex.kind == "count_tokens":
            total = obj.get("totalTokens", 0) if isinstance(obj, dict) else 0
            return Answer(200, count_tokens_body(ex, total))
        if ex.kind == "passthrough":
            return Answer(200, gemini.unwrap_code_assist(obj))
        decoder = gemini.StreamDecoder(ex.model, ex.tool_names)
        events = decoder.feed(gemini.unwrap_code_assist(obj)) + decoder.finish()
    acc = ResponseAccumulator(model=ex.client_model)
    acc.extend(events)
    if acc.error is not None:
        return error_answer(ex, acc.error.status, f"upstream error: {acc.error.message}")
    return Answer(200, _render(ex, acc.response()))


def count_tokens_body(ex: Exchange, total: int) -> dict:
    if ex.client == "anthropic":
        return anthropic.count_tokens_body(total)
    return {"totalTokens": total}


# ---------------------------------------------------------------------- upstream errors


def client_status(upstream_status: int) -> int:
    """Upstream status → what the client sees. The account's credentials are ours, not the
    client's: an upstream 401/403 must not make Claude Code retry its own key forever."""
    if upstream_status in (401, 403):
        return 503
    if upstream_status == 404:
        return 404
    if upstream_status >= 500:
        return 503 if upstream_status == 503 else 502
    return upstream_status


def upstream_error(ex: Exchange, status: int, content: bytes) -> tuple[Answer, str]:
    """(the client's answer, a one-line reason for the account's last_error and the log)."""
    name = UPSTREAM_NAME[ex.upstream]
    headers: dict[str, str] = {}
    if ex.upstream == "codex":
        err = codex.parse_error(status, content, time.time())
        fault = codex_upstream.classify(status, err.code, err.resets_in_seconds)
        message = err.message
        if fault.kind == "quota" and fault.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(fault.retry_after)))
        out_status = 400 if status == 404 else client_status(status)
        details: list = []
        status_name = None
    else:
        message, status_name, details = gemini.parse_error(content)
        out_status = client_status(status)
        delay = code_assist.retry_delay(message, details)
        if out_status == 429 and delay is not None:
            headers["retry-after"] = str(max(1, math.ceil(delay)))
    text = f"upstream ({name}) error {status}: {message}"
    if ex.client == "gemini":
        body = gemini.error_body(out_status, text, status_name)
        if details:
            body["error"]["details"] = details
        answer = Answer(out_status, body, headers)
    else:
        answer = error_answer(ex, out_status, text, headers)
    return answer, f"HTTP {status}: {message}"[:300]
