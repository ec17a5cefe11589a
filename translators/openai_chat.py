"""OpenAI Chat Completions client dialect (`POST /v1/chat/completions`, `GET /v1/models`).

Wire facts: docs/upstreams.md "OpenAI Chat Completions" (request, response, stream chunk rules,
errors) and "Cross-dialect mappings". Only this dialect's JSON and the IR are known here
(docs/architecture.md "Rules of the house"); what it shares with the Responses dialect lives in
openai_common.py.

Everything a client sent that cannot be translated is noted in ONE place: `openai_common.drop()`,
which appends a human-readable line to `req.dropped` so the addon can log it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from cliproxy.translators import fields
from cliproxy.translators import ir
from cliproxy.translators.media import EXT_MIME
from cliproxy.translators.media import data_url
from cliproxy.translators.media import mime_from_name
from cliproxy.translators.media import parse_data_url
from cliproxy.translators.openai_common import EFFORTS
from cliproxy.translators.openai_common import TOOL_CHOICE_MODES
from cliproxy.translators.openai_common import add_custom_tool
from cliproxy.translators.openai_common import args_json
from cliproxy.translators.openai_common import arguments_object
from cliproxy.translators.openai_common import content_parts
from cliproxy.translators.openai_common import custom_input
from cliproxy.translators.openai_common import drop
from cliproxy.translators.openai_common import drop_unknown_keys
from cliproxy.translators.openai_common import image_url_part
from cliproxy.translators.openai_common import mark_custom
from cliproxy.translators.openai_common import request_object
from cliproxy.translators.openai_common import system_text
from cliproxy.translators.sse import data_frame
from cliproxy.translators.stream import SafeStreamEncoder

ROLES = frozenset({"developer", "system", "user", "assistant", "tool", "function"})

# Top-level keys with no effect on the answer: ignored without a note.
_IGNORED_KEYS = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)
# Keys translated by parse_request (anything else gets a "dropped" note).
_KNOWN_KEYS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_completion_tokens",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "n",
        "stop",
        "tools",
        "functions",
        "tool_choice",
        "function_call",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
    }
)

_MODELS_CREATED = 1750000000  # a constant `created` for /v1/models (clients only display it)


# ================================================================ request


def parse_request(body: object) -> ir.Request:
    """Validate a Chat Completions request and translate it to the IR.

    Raises only ir.RequestError, whose `param` names the offending field.
    """
    body, model = request_object(body)
    req = ir.Request(model=model, messages=[])
    _parse_messages(body.get("messages"), req)
    _parse_tools(body, req)
    _parse_tool_choice(body, req)
    _parse_sampling(body, req)
    _parse_output(body, req)
    _parse_stream(body, req)
    drop_unknown_keys(body, req, _KNOWN_KEYS, _IGNORED_KEYS)
    return req


# ---------------------------------------------------------------- messages


class _History:
    """State carried across messages: call id -> name (tool results need the name), whether
    the previous IR message holds tool results (consecutive tool messages merge), and legacy
    function_call ids waiting for their `role:"function"` answer."""

    def __init__(self) -> None:
        self.call_names: dict[str, str] = {}
        self.results_msg: ir.Message | None = None
        self.legacy_pending: list[tuple[str, str]] = []  # (name, synthesized id)


def _parse_messages(messages: object, req: ir.Request) -> None:
    if not isinstance(messages, list) or not messages:
        raise ir.RequestError("messages is required and must be a non-empty array", "messages")
    hist = _History()
    leading = True  # leading system/developer messages become req.system
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise ir.RequestError(f"{where} must be an object", where)
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ir.RequestError(
                f"{where}.role must be one of developer, system, user, assistant, tool",
                f"{where}.role",
            )
        if role in ("system", "developer"):
            text = _system_text(msg.get("content"), f"{where}.content", req)
            if leading:
                if text:
                    req.system.append(text)
            elif text:
                req.messages.append(ir.Message("system", [ir.TextPart(text)]))
            hist.results_msg = None
            continue
        leading = False
        if role in ("tool", "function"):
            _add_tool_result(msg, role, i, hist, req)
            continue
        hist.results_msg = None
        if role == "user":
            parts = _content_parts(msg.get("content"), f"{where}.content", req, required=True)
            if parts:
                req.messages.append(ir.Message("user", list(parts)))
        else:
            _add_assistant(msg, i, where, hist, req)


def _system_text(content: object, where: str, req: ir.Request) -> str:
    return system_text(_content_parts(content, where, req, required=True), where, req)


def _content_parts(
    content: object, where: str, req: ir.Request, *, required: bool
) -> list[ir.TextPart | ir.ImagePart]:
    return content_parts(content, where, req, _content_part, required=required)


def _content_part(part: object, where: str, req: ir.Request) -> ir.TextPart | ir.ImagePart | None:
    if not isinstance(part, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get(kind)
        if not isinstance(text, str):
            raise ir.RequestError(f"{where}.{kind} must be a string", f"{where}.{kind}")
        return ir.TextPart(text) if text else None
    if kind == "image_url":
        return image_url_part(part.get("image_url"), f"{where}.image_url")
    if kind == "input_audio":
        return _audio_part(part.get("input_audio"), f"{where}.input_audio", req)
    if kind == "file":
        return _file_part(part.get("file"), f"{where}.file", req)
    if not isinstance(kind, str):
        raise ir.RequestError(f"{where}.type must be a string", f"{where}.type")
    drop(req, f"{where}: content part type {kind!r} not supported")
    return None


def _audio_part(value: object, where: str, req: ir.Request) -> ir.ImagePart | None:
    if not isinstance(value, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    data, fmt = value.get("data"), value.get("format")
    if not isinstance(data, str) or not data:
        drop(req, f"{where}: audio without base64 data")
        return None
    fmt = fmt.lower() if isinstance(fmt, str) else ""
    return ir.ImagePart(EXT_MIME.get(fmt, "audio/wav"), data)


def _file_part(value: object, where: str, req: ir.Request) -> ir.ImagePart | None:
    if not isinstance(value, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    file_data, filename = value.get("file_data"), value.get("filename")
    if not isinstance(file_data, str) or not file_data:
        # file_id references the OpenAI Files API, which no upstream here can resolve
        drop(req, f"{where}: file without inline file_data (file_id is not supported)")
        return None
    name = filename if isinstance(filename, str) else ""
    fallback = mime_from_name(name, "application/octet-stream")
    if file_data.startswith("data:"):
        mime, data = parse_data_url(file_data, f"{where}.file_data")
        return ir.ImagePart(mime or fallback, data)
    return ir.ImagePart(fallback, file_data)  # plain base64


def _add_assistant(
    msg: dict[str, Any], i: int, where: str, hist: _History, req: ir.Request
) -> None:
    parts: list[ir.Part] = []
    reasoning = msg.get("reasoning_content")
    if reasoning is not None and not isinstance(reasoning, str):
        raise ir.RequestError(
            f"{where}.reasoning_content must be a string", f"{where}.reasoning_content"
        )
    if reasoning:
        parts.append(ir.ThinkingPart(reasoning))
    parts.extend(_content_parts(msg.get("content"), f"{where}.content", req, required=False))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(ir.TextPart(refusal))
    parts.extend(_tool_calls(msg.get("tool_calls"), i, where, hist, req))
    legacy = msg.get("function_call")
    if legacy is not None:
        call = _function_call(legacy, f"{where}.function_call", f"call_fn_{i}")
        hist.call_names[call.id] = call.name
        hist.legacy_pending.append((call.name, call.id))
        parts.append(call)
    if msg.get("audio") is not None:
        drop(req, f"{where}.audio: earlier audio answers cannot be replayed")
    if parts:  # an empty assistant turn carries nothing
        req.messages.append(ir.Message("assistant", parts))


def _tool_calls(
    calls: object, i: int, where: str, hist: _History, req: ir.Request
) -> list[ir.ToolCallPart]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise ir.RequestError(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    out: list[ir.ToolCallPart] = []
    for j, call in enumerate(calls):
        w = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise ir.RequestError(f"{w} must be an object", w)
        kind = call.get("type", "function")
        if kind not in ("function", "custom"):
            raise ir.RequestError(f"{w}.type must be 'function' or 'custom'", f"{w}.type")
        call_id = call.get("id")
        if call_id is not None and (not isinstance(call_id, str) or not call_id):
            raise ir.RequestError(f"{w}.id must be a non-empty string", f"{w}.id")
        call_id = call_id or f"call_{i}_{j}"
        if kind == "custom":
            part = _custom_call(call.get("custom"), f"{w}.custom", call_id, req)
        else:
            part = _function_call(call.get("function"), f"{w}.function", call_id)
        part.signature = _thought_signature(call.get("extra_content"), f"{w}.extra_content")
        hist.call_names[part.id] = part.name
        out.append(part)
    return out


def _function_call(fn: object, where: str, call_id: str) -> ir.ToolCallPart:
    if not isinstance(fn, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ir.RequestError(f"{where}.name must be a non-empty string", f"{where}.name")
    return ir.ToolCallPart(call_id, name, _arguments(fn.get("arguments"), f"{where}.arguments"))


def _thought_signature(extra: object, where: str) -> str | None:
    """Gemini's OpenAI-compatible API hands a tool call's thought signature out as
    `extra_content.google.thought_signature`, and its clients send it back there; it is the
    call's signature toward Gemini (docs/upstreams.md "Thought signatures")."""
    if extra is None:
        return None
    google = extra.get("google") if isinstance(extra, dict) else None
    if not isinstance(google, dict):
        return None
    sig = google.get("thought_signature")
    if sig is not None and not isinstance(sig, str):
        w = f"{where}.google.thought_signature"
        raise ir.RequestError(f"{w} must be a string", w)
    return sig or None


def _extra_content(sig: str | None) -> dict[str, Any] | None:
    """A Gemini thought signature as Gemini's OpenAI-compatible API sends it on a tool call;
    another upstream's opaque state (Codex reasoning) is not a thought signature."""
    if not sig or sig.startswith(ir.CODEX_REASONING_PREFIX):
        return None
    return {"google": {"thought_signature": sig}}


def _custom_call(value: object, where: str, call_id: str, req: ir.Request) -> ir.ToolCallPart:
    """A freeform tool call `{"name", "input": <raw text>}`: its input rides as {"input": …}
    (ir.CUSTOM_TOOLS), and the name is marked custom so an upstream with custom tools gets a
    custom call back."""
    if not isinstance(value, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise ir.RequestError(f"{where}.name must be a non-empty string", f"{where}.name")
    text = value.get("input", "")
    if not isinstance(text, str):
        raise ir.RequestError(f"{where}.input must be a string", f"{where}.input")
    mark_custom(req, name)
    return ir.ToolCallPart(call_id, name, {"input": text})


def _arguments(raw: object, where: str) -> dict[str, Any]:
    """The JSON text of the arguments -> a dict; text that is not JSON is a 400."""
    args = arguments_object(raw, where)
    if args is None:
        raise ir.RequestError(f"{where} is not valid JSON", where)
    return args


def _add_tool_result(
    msg: dict[str, Any], role: str, i: int, hist: _History, req: ir.Request
) -> None:
    where = f"messages[{i}]"
    if role == "tool":
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ir.RequestError(
                f"{where}.tool_call_id must be a non-empty string", f"{where}.tool_call_id"
            )
        name = hist.call_names.get(call_id)
    else:  # legacy role "function": bound by name to the latest unanswered function_call
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise ir.RequestError(f"{where}.name must be a non-empty string", f"{where}.name")
        call_id = _pop_legacy(hist, name) or f"call_fn_{i}"
    content = _content_parts(msg.get("content"), f"{where}.content", req, required=False)
    part = ir.ToolResultPart(call_id, list(content), name)
    if hist.results_msg is None:
        hist.results_msg = ir.Message("user", [])
        req.messages.append(hist.results_msg)
    hist.results_msg.parts.append(part)


def _pop_legacy(hist: _History, name: str) -> str | None:
    for k in range(len(hist.legacy_pending) - 1, -1, -1):
        if hist.legacy_pending[k][0] == name:
            return hist.legacy_pending.pop(k)[1]
    return None


# ---------------------------------------------------------------- tools


def _parse_tools(body: dict[str, Any], req: ir.Request) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise ir.RequestError("tools must be an array", "tools")
        for i, tool in enumerate(tools):
            _add_tool(tool, f"tools[{i}]", req)
    functions = body.get("functions")  # legacy
    if functions is not None:
        if not isinstance(functions, list):
            raise ir.RequestError("functions must be an array", "functions")
        for i, fn in enumerate(functions):
            req.tools.append(_function_decl(fn, f"functions[{i}]", req))


def _add_tool(tool: object, where: str, req: ir.Request) -> None:
    if not isinstance(tool, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    kind = tool.get("type", "function")
    if kind == "custom":
        _custom_decl(tool.get("custom"), f"{where}.custom", req)
        return
    if kind != "function":
        label = kind if isinstance(kind, str) else repr(kind)
        drop(req, f"{where}: tool type {label!r} not supported")
        return
    req.tools.append(_function_decl(tool.get("function"), f"{where}.function", req))


def _named(value: object, where: str) -> tuple[dict[str, Any], str, str]:
    """A tool declaration's object, its non-empty `name` and its `description` ("" if absent)."""
    if not isinstance(value, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise ir.RequestError(f"{where}.name must be a non-empty string", f"{where}.name")
    desc = value.get("description")
    if desc is not None and not isinstance(desc, str):
        raise ir.RequestError(f"{where}.description must be a string", f"{where}.description")
    return value, name, desc or ""


def _function_decl(value: object, where: str, req: ir.Request) -> ir.Tool:
    fn, name, desc = _named(value, where)
    params = fn.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ir.RequestError(f"{where}.parameters must be an object", f"{where}.parameters")
    if fn.get("strict") is True:
        drop(req, f"{where}.strict: strict schema adherence is not enforced")
    return ir.Tool(name, desc, params or {})


def _custom_decl(value: object, where: str, req: ir.Request) -> None:
    """GPT-5's freeform tool `{"name", "description"?, "format"?}`: the model answers with raw
    text, optionally held to a grammar (docs/upstreams.md "OpenAI Chat Completions")."""
    decl, name, desc = _named(value, where)
    fmt = _custom_format(decl.get("format"), f"{where}.format")
    add_custom_tool(req, name, desc, fmt, f"{where}.format.grammar")


def _custom_format(fmt: object, where: str) -> dict[str, Any] | None:
    """Chat's `{"type":"text"}` / `{"type":"grammar","grammar":{"definition","syntax"}}` -> the
    Responses form (`{"type":"grammar","syntax","definition"}`) the IR keeps."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    kind = fmt.get("type")
    if kind == "text":
        return {"type": "text"}
    if kind != "grammar":
        raise ir.RequestError(f"{where}.type must be 'text' or 'grammar'", f"{where}.type")
    grammar = fmt.get("grammar")
    if not isinstance(grammar, dict):
        raise ir.RequestError(f"{where}.grammar must be an object", f"{where}.grammar")
    definition, syntax = grammar.get("definition"), grammar.get("syntax")
    if not isinstance(definition, str):
        w = f"{where}.grammar.definition"
        raise ir.RequestError(f"{w} must be a string", w)
    if syntax not in ("lark", "regex"):
        w = f"{where}.grammar.syntax"
        raise ir.RequestError(f"{w} must be 'lark' or 'regex'", w)
    return {"type": "grammar", "syntax": syntax, "definition": definition}


def _parse_tool_choice(body: dict[str, Any], req: ir.Request) -> None:
    choice = body.get("tool_choice")
    param = "tool_choice"
    if choice is None and body.get("function_call") is not None:
        choice, param = body["function_call"], "function_call"  # legacy
    if choice is not None:
        req.tool_choice = _tool_choice(choice, param, req)
    ptc = fields.boolean(body.get("parallel_tool_calls"), "parallel_tool_calls")
    if ptc is not None:
        req.parallel_tool_calls = ptc


def _tool_choice(choice: object, param: str, req: ir.Request) -> ir.ToolChoice:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES or (param == "function_call" and choice == "required"):
            raise ir.RequestError(f"{param} must be none, auto, required or a function", param)
        return ir.ToolChoice(choice)  # type: ignore[arg-type]
    if not isinstance(choice, dict):
        raise ir.RequestError(f"{param} must be a string or an object", param)
    if param == "function_call":  # legacy {"name": ...}
        return ir.ToolChoice("tool", _choice_name(choice, param))
    kind = choice.get("type")
    if kind == "function":
        return ir.ToolChoice("tool", _choice_name(choice.get("function"), f"{param}.function"))
    if kind == "custom":
        return ir.ToolChoice("tool", _choice_name(choice.get("custom"), f"{param}.custom"))
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools")
        mode = allowed.get("mode") if isinstance(allowed, dict) else None
        drop(req, f"{param}.allowed_tools: the tool subset is not enforced")
        return ir.ToolChoice("required" if mode == "required" else "auto")
    raise ir.RequestError(f"{param}.type must be 'function' or 'custom'", f"{param}.type")


def _choice_name(fn: object, where: str) -> str:
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str) or not name:
        raise ir.RequestError(f"{where}.name must be a non-empty string", f"{where}.name")
    return name


# ---------------------------------------------------------------- scalars


def _parse_sampling(body: dict[str, Any], req: ir.Request) -> None:
    max_completion = fields.integer(body.get("max_completion_tokens"), "max_completion_tokens", 1)
    max_tokens = fields.integer(body.get("max_tokens"), "max_tokens", 1)
    req.max_tokens = max_completion if max_completion is not None else max_tokens
    req.temperature = fields.number(body.get("temperature"), "temperature")
    req.top_p = fields.number(body.get("top_p"), "top_p")
    req.top_k = fields.integer(
        body.get("top_k"), "top_k", 1
    )  # not OpenAI, but sent via extra_body for Gemini
    req.seed = fields.integer(body.get("seed"), "seed")
    req.presence_penalty = fields.number(body.get("presence_penalty"), "presence_penalty")
    req.frequency_penalty = fields.number(body.get("frequency_penalty"), "frequency_penalty")
    n = fields.integer(body.get("n"), "n", 1)
    if n is not None and n > 1:
        raise ir.RequestError("n must be 1: only one choice is supported", "n")
    stop = body.get("stop")
    if isinstance(stop, str):
        req.stop = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        req.stop = list(stop)
    elif stop is not None:
        raise ir.RequestError("stop must be a string or an array of strings", "stop")
    if body.get("logprobs") is True:
        drop(req, "logprobs: log probabilities are not returned")


def _parse_output(body: dict[str, Any], req: ir.Request) -> None:
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict):
            raise ir.RequestError("response_format must be an object", "response_format")
        kind = fmt.get("type")
        if kind == "json_object":
            req.response_mime_type = "application/json"
        elif kind == "json_schema":
            req.response_mime_type = "application/json"
            req.response_schema = _json_schema(fmt.get("json_schema"))
        elif kind != "text":
            raise ir.RequestError(
                "response_format.type must be text, json_object or json_schema",
                "response_format.type",
            )
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in EFFORTS:
            raise ir.RequestError(
                "reasoning_effort must be one of " + ", ".join(sorted(EFFORTS)),
                "reasoning_effort",
            )
        req.thinking = ir.Thinking(effort=effort)  # type: ignore[arg-type]


def _json_schema(spec: object) -> dict[str, Any] | None:
    where = "response_format.json_schema"
    if not isinstance(spec, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise ir.RequestError(f"{where}.schema must be an object", f"{where}.schema")
    return schema


def _parse_stream(body: dict[str, Any], req: ir.Request) -> None:
    req.stream = bool(fields.boolean(body.get("stream"), "stream"))
    opts = body.get("stream_options")
    if opts is None:
        return
    if not isinstance(opts, dict):
        raise ir.RequestError("stream_options must be an object", "stream_options")
    req.include_usage = bool(
        fields.boolean(opts.get("include_usage"), "stream_options.include_usage")
    )


# ================================================================ response

_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",
}


def _completion_id(raw: str | None) -> str:
    if raw and raw.startswith("chatcmpl-"):
        return raw
    return "chatcmpl-" + (raw or uuid.uuid4().hex)


def _usage(usage: ir.Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def render_response(
    resp: ir.Response, custom_tools: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """ir.Response -> a `chat.completion` object (docs/upstreams.md "OpenAI Chat Completions").
    Calls to the client's freeform tools (`custom_tools`, ir.CUSTOM_TOOLS) go back as
    `{"type":"custom","custom":{"name","input"}}` with the raw input."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, ir.TextPart):
            texts.append(part.text)
        elif isinstance(part, ir.ThinkingPart):
            thoughts.append(part.text)
        elif isinstance(part, ir.ToolCallPart):
            calls.append(_tool_call(part, custom_tools))
        elif isinstance(part, ir.ImagePart) and part.data:
            url = {"url": data_url(part.mime_type, part.data)}
            images.append({"type": "image_url", "image_url": url, "index": len(images)})
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    reasoning = "".join(thoughts)
    if reasoning:
        message["reasoning_content"] = reasoning
    if images:  # OpenRouter-style `images`, as CLIProxyAPI returns Gemini image output
        message["images"] = images
    # a cut answer says so even with calls: the client must not run a call cut in the middle
    cut = resp.finish_reason == "length"
    finish = "tool_calls" if calls and not cut else _FINISH.get(resp.finish_reason, "stop")
    return {
        "id": _completion_id(resp.id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(resp.usage),
    }


def _tool_call(part: ir.ToolCallPart, custom_tools: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": part.id}
    if part.name in custom_tools:
        out.update(type="custom", custom={"name": part.name, "input": custom_input(part.arguments)})
    else:
        fn = {"name": part.name, "arguments": args_json(part.arguments)}
        out.update(type="function", function=fn)
    extra = _extra_content(part.signature)
    if extra is not None:
        out["extra_content"] = extra
    return out


# ================================================================ stream


class _Call:
    __slots__ = ("custom", "index", "sent_args")

    def __init__(self, index: int, custom: bool) -> None:
        self.index = index
        self.custom = custom  # a freeform tool: its raw input goes out whole at the end
        self.sent_args = False


class StreamEncoder(SafeStreamEncoder):
    """IR events -> `data: <chat.completion.chunk>` frames
    (docs/upstreams.md "OpenAI Chat Completions" rules 1-5).

    The finishing chunk is written by finish(), not on ir.Finish, so a usage update that arrives
    after the finish reason (Gemini sends it on the last chunk) still lands. Never raises.
    """

    def __init__(
        self, model: str, include_usage: bool = False, custom_tools: frozenset[str] = frozenset()
    ) -> None:
        super().__init__()
        self.model = model
        self.include_usage = include_usage
        self.custom_tools = custom_tools
        self.id = _completion_id(None)
        self.created = int(time.time())
        self._started = False  # the role chunk was sent
        self._calls: dict[str, _Call] = {}
        self._images = 0

    # ------------------------------------------------ end and errors

    def _final(self) -> list[bytes]:
        out = self._start()
        cut = self._finish == "length"  # never run a call cut short
        reason = (
            "tool_calls" if self._calls and not cut else _FINISH.get(self._finish or "stop", "stop")
        )
        out.append(self._chunk({}, reason))
        if self.include_usage:
            out.append(self._frame([], _usage(self._usage)))
        out.append(b"data: [DONE]\n\n")
        return out

    def _error_frames(self, message: str, status: int, code: str | None) -> list[bytes]:
        return [data_frame(error_body(status, message, code))]

    def _fault_frames(self) -> list[bytes]:
        return [data_frame(error_body(500, self.FAULT))]

    # ------------------------------------------------ events

    def _encode(self, event: ir.Event) -> list[bytes]:
        match event:
            case ir.StreamStart(id=sid):
                if not self._started and sid:
                    self.id = _completion_id(sid)
                return self._start()
            case ir.TextDelta(text=text) if text:
                return self._delta({"content": text})
            case ir.ThinkingDelta(text=text) if text:
                return self._delta({"reasoning_content": text})
            case ir.ToolCallStart():
                return self._tool_start(event)
            case ir.ToolCallDelta(id=cid, arguments=frag) if frag and cid in self._calls:
                call = self._calls[cid]
                if call.custom:
                    return []  # JSON fragments of {"input": …}: the raw text goes out at the end
                call.sent_args = True
                return self._delta({"tool_calls": [_args_delta(call.index, frag)]})
            case ir.ToolCallEnd(id=cid, arguments=args) if cid in self._calls:
                call = self._calls[cid]
                if call.sent_args:
                    return []
                call.sent_args = True  # no fragment streamed: send the whole JSON once
                if call.custom:
                    delta = {"index": call.index, "custom": {"input": custom_input(args)}}
                    return self._delta({"tool_calls": [delta]})
                return self._delta({"tool_calls": [_args_delta(call.index, args_json(args))]})
            case ir.ImageOut(mime_type=mime, data=data) if data:
                image = {"type": "image_url", "image_url": {"url": data_url(mime, data)}}
                image["index"] = self._images
                self._images += 1
                return self._delta({"images": [image]})
            case _:
                return self._track(event)

    def _tool_start(self, event: ir.ToolCallStart) -> list[bytes]:
        if event.id in self._calls:
            return []
        call = _Call(len(self._calls), event.name in self.custom_tools)
        self._calls[event.id] = call
        delta: dict[str, Any] = {"index": call.index, "id": event.id}
        if call.custom:  # the same shape as a function call's, under `custom`
            delta.update(type="custom", custom={"name": event.name, "input": ""})
        else:
            delta.update(type="function", function={"name": event.name, "arguments": ""})
        extra = _extra_content(event.signature)
        if extra is not None:
            delta["extra_content"] = extra
        return self._delta({"tool_calls": [delta]})

    # ------------------------------------------------ frames

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""}, None)]

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        out = self._start()
        out.append(self._chunk(delta, None))
        return out

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self._frame([choice], None)

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            obj["usage"] = usage
        return data_frame(obj)


def _args_delta(index: int, fragment: str) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": fragment}}


# ================================================================ errors and models

_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    408: ("timeout_error", "timeout"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    502: ("server_error", "bad_gateway"),
    503: ("api_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """`{"error":{"message","type","param","code"}}` (docs/configuration.md "Error shapes"); the
    type follows the status so the openai SDK raises the matching exception class."""
    kind = _ERROR_KINDS.get(status)
    if kind is None:
        kind = ("server_error", "server_error") if status >= 500 else _ERROR_KINDS[400]
    return {"error": {"message": message, "type": kind[0], "param": param, "code": code or kind[1]}}


def models_list(ids: list[str], owned_by: dict[str, str] | None = None) -> dict[str, Any]:
    """`GET /v1/models` in OpenAI's shape (docs/upstreams.md "Model lists")."""
    owners = owned_by or {}
    data = [
        {
            "id": mid,
            "object": "model",
            "created": _MODELS_CREATED,
            "owned_by": owners.get(mid) or _default_owner(mid),
        }
        for mid in ids
    ]
    return {"object": "list", "data": data}


def _default_owner(model_id: str) -> str:
    return "google" if model_id.startswith(("gemini", "gemma")) else "openai"
