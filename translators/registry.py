"""The dialect table: every client dialect and every upstream dialect, one entry each.

The gateway and the way back (addons/) never compare dialect names: they look the dialect up here
and call what its entry holds. Adding a client dialect (or an upstream dialect) is one translator
module plus one entry below (docs/architecture.md, "Adding a dialect").

- A *client dialect* is what a client speaks to us: how its requests are read and parsed into the
  IR, how answers, streams, errors, model lists and token counts are written back to it, and,
  when an upstream speaks the same wire format, how its body is passed through untranslated.
- An *upstream dialect* is the wire format of an upstream service: how the IR is rendered into
  it, how its answers (streamed or whole) are decoded into IR events, how its refusals are read,
  and how its answers are relayed to a client of the same format.
- An *answer shape* is the family of error bodies and model lists (OpenAI, Anthropic, Google).

Pure: no I/O and no mitmproxy; which service and which account carry a request is addons/' job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Literal

from cliproxy.translators import anthropic
from cliproxy.translators import code_assist
from cliproxy.translators import codex
from cliproxy.translators import codex_errors
from cliproxy.translators import gemini
from cliproxy.translators import google_errors
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import openai_responses
from cliproxy.translators.fault import UpstreamError
from cliproxy.translators.pipeline import GeminiPassthrough
from cliproxy.translators.pipeline import ResponsesRelay
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import data_frame
from cliproxy.translators.sse import parse_json_events
from cliproxy.translators.stream import Decoder
from cliproxy.translators.stream import Encoder

ClientDialectName = Literal[
    "openai-chat",  # POST /v1/chat/completions
    "openai-responses",  # POST /v1/responses (Codex CLI)
    "anthropic-messages",  # POST /v1/messages (Claude Code)
    "gemini-api",  # POST /v1beta/models/{m}:generateContent & co. (google-genai, Gemini CLI)
    "code-assist",  # POST /v1internal:{method} (Gemini CLI through the relay)
]
UpstreamDialectName = Literal["gemini-api", "codex-responses"]
AnswerShape = Literal["openai", "anthropic", "google"]

StreamCallable = Callable[[bytes], list[bytes]]


# ---------------------------------------------------------------------------- answer shapes


@dataclass(frozen=True, slots=True)
class Shape:
    """Error bodies and model lists of one family of client dialects."""

    error_body: Callable[[int, str], dict[str, Any]]
    models_list: Callable[[list[str]], dict[str, Any]]
    model_object: Callable[[str], dict[str, Any]]
    # an upstream refusal passed on: Google clients also get the upstream's status and details
    upstream_error_body: Callable[[int, str, UpstreamError], dict[str, Any]]
    # every account resting: Google clients also get RetryInfo, which Gemini CLI reads
    resting_body: Callable[[int, str, int, UpstreamError | None], dict[str, Any]]


def _plain_upstream_error(
    error_body: Callable[[int, str], dict[str, Any]],
) -> Callable[[int, str, UpstreamError], dict[str, Any]]:
    return lambda status, message, _err: error_body(status, message)


def _plain_resting(
    error_body: Callable[[int, str], dict[str, Any]],
) -> Callable[[int, str, int, UpstreamError | None], dict[str, Any]]:
    return lambda status, message, _after, _last: error_body(status, message)


def _google_upstream_error(status: int, message: str, err: UpstreamError) -> dict[str, Any]:
    body = gemini.error_body(status, message, err.status_name)
    if err.details:
        body["error"]["details"] = err.details
    return body


def _google_resting(
    status: int, message: str, after: int, last: UpstreamError | None
) -> dict[str, Any]:
    """The upstream's own details (ErrorInfo reason…) with our RetryInfo."""
    body = gemini.error_body(status, message)
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{after}s"}
    details = last.details if last else []
    kept = [d for d in details if isinstance(d, dict) and "RetryInfo" not in str(d.get("@type"))]
    body["error"]["details"] = [*kept, retry]
    return body


def _first_model(models_list: Callable[[list[str]], dict[str, Any]]) -> Callable[[str], dict]:
    return lambda model: models_list([model])["data"][0]


SHAPES: dict[AnswerShape, Shape] = {
    "openai": Shape(
        openai_chat.error_body,
        openai_chat.models_list,
        _first_model(openai_chat.models_list),
        _plain_upstream_error(openai_chat.error_body),
        _plain_resting(openai_chat.error_body),
    ),
    "anthropic": Shape(
        anthropic.error_body,
        anthropic.models_list,
        _first_model(anthropic.models_list),
        _plain_upstream_error(anthropic.error_body),
        _plain_resting(anthropic.error_body),
    ),
    "google": Shape(
        gemini.error_body,
        gemini.models_list,
        gemini.model_object,
        _google_upstream_error,
        _google_resting,
    ),
}


# ---------------------------------------------------------------------------- client dialects


@dataclass(frozen=True, slots=True)
class Incoming:
    """A client request as its dialect reads it, before any upstream is chosen."""

    model: str  # the name the client asked for (before model-aliases)
    stream: bool
    body: Any  # the dialect's own request object (an envelope removed)
    request: ir.Request | None = None  # parsed already, for dialects that always translate


@dataclass(frozen=True, slots=True)
class AnswerOptions:
    """What the way back needs to know of the client's request."""

    model: str  # the client's name for the model, echoed in answers
    include_usage: bool = False  # Chat Completions `stream_options.include_usage`
    custom_tools: frozenset[str] = frozenset()  # OpenAI freeform tools (ir.CUSTOM_TOOLS)

    @classmethod
    def of(cls, req: ir.Request, client_model: str) -> AnswerOptions:
        return cls(
            client_model,
            req.include_usage,
            frozenset(req.extras.get(ir.CUSTOM_TOOLS, [])),
        )


@dataclass(frozen=True, slots=True)
class Native:
    """A client dialect that an upstream speaks too: its body goes through untranslated, keeping
    every field the IR does not model."""

    upstream: UpstreamDialectName
    prepare: Callable[[Incoming, bool], tuple[dict[str, Any], list[str]]]  # (…, counting)
    envelope: bool = False  # the client wants Code Assist frames (`{"response": …}`)


# (body, model named by the path, stream named by the path) -> Incoming
Reader = Callable[[Any, str | None, bool | None], Incoming]


@dataclass(frozen=True, slots=True)
class ClientDialect:
    name: ClientDialectName
    shape: AnswerShape
    read: Reader  # a generation request
    parse: Callable[[Incoming], ir.Request]  # Incoming -> IR (for another upstream dialect)
    encoder: Callable[[AnswerOptions], Encoder]
    render: Callable[[ir.Response, AnswerOptions], dict[str, Any]]
    read_count: Reader | None = None  # a token-count request, where the dialect has one
    count_body: Callable[[int], dict[str, Any]] | None = None
    native: Native | None = None
    # the fixed paths it is served on (POST); dialects whose path names the model or the method
    # (Gemini's /v1beta/models/{m}:{verb}, Code Assist's /v1internal:{method}) are routed by
    # pattern in addons/routing.py
    paths: tuple[str, ...] = ()
    count_paths: tuple[str, ...] = ()

    @property
    def answers(self) -> Shape:
        return SHAPES[self.shape]


def _model_of(body: Any) -> str:
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model:
        raise ir.RequestError("model is required and must be a string", param="model")
    return model


def _parsed(parse: Callable[[Any], ir.Request]) -> Reader:
    """A dialect that always translates: parsed (and validated) on arrival."""

    def read(body: Any, _model: str | None, _stream: bool | None) -> Incoming:
        req = parse(body)
        return Incoming(req.model, req.stream, body, req)

    return read


def _already_parsed(incoming: Incoming) -> ir.Request:
    assert incoming.request is not None
    return incoming.request


def _read_responses(body: Any, _model: str | None, _stream: bool | None) -> Incoming:
    # parsed only when no Codex account serves it: the pass-through keeps every field
    return Incoming(_model_of(body), isinstance(body, dict) and body.get("stream") is True, body)


def _read_gemini(body: Any, model: str | None, stream: bool | None) -> Incoming:
    return Incoming(model or "", bool(stream), body)


def _read_gemini_count(body: Any, model: str | None, _stream: bool | None) -> Incoming:
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        body = body["generateContentRequest"]  # the public API's "count everything" form
    return Incoming(model or "", False, body)


def _read_code_assist(body: Any, _model: str | None, stream: bool | None) -> Incoming:
    model, request = code_assist.envelope_parts(body)
    return Incoming(model, bool(stream), request)


def _parse_gemini(incoming: Incoming) -> ir.Request:
    req = gemini.parse_request(incoming.body, incoming.model)
    req.stream = incoming.stream
    return req


def _prepare_gemini(incoming: Incoming, counting: bool) -> tuple[dict[str, Any], list[str]]:
    prepared = gemini.prepare_passthrough(incoming.body)
    if counting:
        prepared.pop("model", None)  # the path (or the envelope) names the model
    return prepared, []


def _prepare_code_assist(incoming: Incoming, _counting: bool) -> tuple[dict[str, Any], list[str]]:
    prepared = gemini.prepare_passthrough(incoming.body)
    prepared.pop("model", None)  # the envelope carries it
    return prepared, []


def _prepare_responses(incoming: Incoming, _counting: bool) -> tuple[dict[str, Any], list[str]]:
    return codex.prepare_passthrough(incoming.body)


def _total_tokens(total: int) -> dict[str, Any]:
    return {"totalTokens": total}


CLIENTS: dict[ClientDialectName, ClientDialect] = {
    "openai-chat": ClientDialect(
        name="openai-chat",
        shape="openai",
        read=_parsed(openai_chat.parse_request),
        parse=_already_parsed,
        encoder=lambda o: openai_chat.StreamEncoder(
            o.model, include_usage=o.include_usage, custom_tools=o.custom_tools
        ),
        render=lambda r, o: openai_chat.render_response(r, custom_tools=o.custom_tools),
        paths=("/v1/chat/completions", "/chat/completions"),
    ),
    "openai-responses": ClientDialect(
        name="openai-responses",
        shape="openai",
        read=_read_responses,
        parse=lambda incoming: openai_responses.parse_request(incoming.body),
        encoder=lambda o: openai_responses.StreamEncoder(o.model, custom_tools=o.custom_tools),
        render=lambda r, o: openai_responses.render_response(r, custom_tools=set(o.custom_tools)),
        native=Native("codex-responses", _prepare_responses),
        paths=("/v1/responses", "/responses"),
    ),
    "anthropic-messages": ClientDialect(
        name="anthropic-messages",
        shape="anthropic",
        read=_parsed(anthropic.parse_request),
        parse=_already_parsed,
        encoder=lambda o: anthropic.StreamEncoder(o.model),
        render=lambda r, _o: anthropic.render_response(r),
        read_count=_parsed(anthropic.parse_count_tokens),
        count_body=anthropic.count_tokens_body,
        paths=("/v1/messages",),
        count_paths=("/v1/messages/count_tokens",),
    ),
    "gemini-api": ClientDialect(
        name="gemini-api",
        shape="google",
        read=_read_gemini,
        parse=_parse_gemini,
        encoder=lambda o: gemini.StreamEncoder(o.model),
        render=lambda r, _o: gemini.render_response(r),
        read_count=_read_gemini_count,
        count_body=_total_tokens,
        native=Native("gemini-api", _prepare_gemini),
    ),
    "code-assist": ClientDialect(
        name="code-assist",
        shape="google",
        read=_read_code_assist,
        parse=_parse_gemini,
        encoder=lambda o: gemini.StreamEncoder(o.model, envelope=True),
        render=lambda r, _o: gemini.render_response(r, envelope=True),
        read_count=_read_code_assist,
        count_body=_total_tokens,
        native=Native("gemini-api", _prepare_code_assist, envelope=True),
    ),
}


# ---------------------------------------------------------------------------- upstream dialects


@dataclass(frozen=True, slots=True)
class UpstreamDialect:
    """The wire format of an upstream service. `envelope` arguments say whether the service
    wraps requests and answers in Code Assist's envelope (a fact of the service, not of the
    dialect: AI Studio speaks the same format bare)."""

    name: UpstreamDialectName
    render: Callable[[ir.Request], tuple[dict[str, Any], dict[str, str]]]  # body, tool names
    method: Callable[[bool, bool], str]  # (stream, counting) -> the method the URL names
    always_streams: bool  # answers in SSE even to a non-stream request
    decoder: Callable[[str, dict[str, str]], Decoder]  # (model, tool names) -> decoder
    stream_unwrap: Callable[[bool], Callable[[Any], dict] | None]  # envelope -> frame unwrapper
    whole_objects: Callable[[bytes, bool], list[Any]]  # a buffered answer -> decoder input
    read_error: Callable[[int, bytes, str | None, float], UpstreamError]
    relay_stream: Callable[[bool, bool], StreamCallable]  # (upstream env, client env)
    relay_whole: Callable[[bytes, bool, bool], dict[str, Any] | None]  # None: no answer in it
    incomplete: str  # what the client is told when relay_whole finds no answer
    count_total: Callable[[bytes], int] | None  # a countTokens answer -> total
    # the frame that ends a stream whose upstream failed after its first byte, in the upstream's
    # own format, so every translator downstream turns it into the client's error event
    interrupted: Callable[[str], bytes]


def _sse_objects(content: bytes) -> list[Any]:
    parser = SSEParser()
    return parse_json_events(parser.feed(content) + parser.finish())


def _gemini_objects(content: bytes, envelope: bool) -> list[Any]:
    obj = json.loads(content or b"{}")
    return [code_assist.unwrap_response(obj) if envelope else obj]


def _gemini_relay_whole(content: bytes, upstream_env: bool, client_env: bool) -> dict[str, Any]:
    obj = json.loads(content or b"{}")
    if client_env:
        return obj if upstream_env else code_assist.wrap_response(obj)
    return code_assist.unwrap_response(obj) if upstream_env else obj


def _gemini_method(stream: bool, counting: bool) -> str:
    if counting:
        return "countTokens"
    return "streamGenerateContent" if stream else "generateContent"


def _gemini_count_total(content: bytes) -> int:
    obj = json.loads(content or b"{}")
    total = obj.get("totalTokens", 0) if isinstance(obj, dict) else 0
    return total if isinstance(total, int) else 0


def _codex_relay_whole(content: bytes, _up: bool, _client: bool) -> dict[str, Any] | None:
    return codex.completed_response([o for o in _sse_objects(content) if isinstance(o, dict)])


UPSTREAM_DIALECTS: dict[UpstreamDialectName, UpstreamDialect] = {
    "gemini-api": UpstreamDialect(
        name="gemini-api",
        render=gemini.render_request,
        method=_gemini_method,
        always_streams=False,
        decoder=lambda model, names: gemini.StreamDecoder(model, names),
        stream_unwrap=lambda envelope: code_assist.unwrap_response if envelope else None,
        whole_objects=_gemini_objects,
        read_error=google_errors.read_error,
        relay_stream=lambda up, client: GeminiPassthrough(
            unwrap=up and not client, wrap=client and not up
        ),
        relay_whole=_gemini_relay_whole,
        incomplete="the upstream answer was incomplete",
        count_total=_gemini_count_total,
        interrupted=lambda message: data_frame(gemini.error_body(503, message)),
    ),
    "codex-responses": UpstreamDialect(
        name="codex-responses",
        render=lambda req: (codex.render_request(req), codex.upstream_tool_names(req)),
        method=lambda _stream, _counting: "responses",
        always_streams=True,
        decoder=lambda model, names: codex.StreamDecoder(model, names),
        stream_unwrap=lambda _envelope: None,
        whole_objects=lambda content, _envelope: _sse_objects(content),
        read_error=codex_errors.read_error,
        relay_stream=lambda _up, _client: ResponsesRelay(),
        relay_whole=_codex_relay_whole,
        incomplete="the Codex stream ended before response.completed",
        count_total=None,  # no countTokens method: the proxy estimates
        interrupted=codex.interrupted_frame,
    ),
}
