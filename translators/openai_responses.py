"""OpenAI Responses client dialect (`POST /v1/responses`) for upstreams that are NOT Codex.

Served to Codex CLI and the openai SDK (`responses.create` / `responses.stream`) when the model
lives on Gemini: the request goes through the IR. (Responses -> Codex is a pass-through path and
does not use this module.) Wire facts: docs/upstreams.md "Codex request body", "Codex SSE events"
(items, tools, SSE events), "OpenAI Responses" (what the clients need), "Cross-dialect mappings";
docs/upstreams.md "Codex CLI" (Codex CLI 0.169) and "Python SDKs" (openai SDK).

What is dropped, and where:
- `store`, `include`, `prompt_cache_key`, `client_metadata`, `metadata`, `user`, `service_tier`,
  `truncation`, `text.verbosity` and item `id`/`status` keys are ignored without a note: Codex CLI
  sends them on every request and they have no meaning without server-side state.
- Everything else that cannot be translated (hosted tools such as web_search / tool_search /
  namespace, item types such as local_shell_call / web_search_call / item_reference, file_id
  references, unknown fields) goes through `openai_common.drop()`, which appends one
  human-readable line to `req.dropped`.
- `previous_response_id` and `conversation` are rejected (400): this proxy keeps no state, and
  silently answering without the referenced history would be wrong.

Codex `custom` tools (apply_patch, grammar-based) become functions with one string parameter
`input`; `req.extras[ir.CUSTOM_TOOLS]` lists their names so that `render_response` and
`StreamEncoder` turn calls to them back into `custom_tool_call` items.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from cliproxy.translators import fields
from cliproxy.translators import ir
from cliproxy.translators.media import mime_from_name
from cliproxy.translators.media import parse_data_url
from cliproxy.translators.openai_chat import error_body
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
from cliproxy.translators.openai_common import request_object
from cliproxy.translators.openai_common import system_text
from cliproxy.translators.sse import event_frame
from cliproxy.translators.stream import SafeStreamEncoder

__all__ = [
    "StreamEncoder",
    "error_body",
    "parse_request",
    "render_response",
]


ROLES = frozenset({"user", "assistant", "system", "developer"})
SUMMARIES = frozenset({"auto", "concise", "detailed", "none"})

_NO_STATE = (
    "is not supported: this proxy keeps no server-side state; send the full conversation in input"
)

# Top-level keys with no effect on the answer (sent by Codex CLI on every request): no note.
_IGNORED_KEYS = frozenset(
    {
        "store",
        "include",
        "prompt_cache_key",
        "prompt_cache_retention",
        "client_metadata",
        "metadata",
        "user",
        "safety_identifier",
        "service_tier",
        "truncation",
        "stream_options",
    }
)
# Keys translated (or rejected) by parse_request; anything else gets a "dropped" note.
_KNOWN_KEYS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "stream",
        "previous_response_id",
        "conversation",
    }
)
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})

# ================================================================ request


def parse_request(body: object) -> ir.Request:
    """Validate a Responses API request and translate it to the IR.

    Raises only ir.RequestError, whose `param` names the offending field.
    """
    body, model = request_object(body)
    for key in ("previous_response_id", "conversation"):
        if body.get(key) not in (None, ""):
            raise ir.RequestError(f"{key} {_NO_STATE}", key)
    req = ir.Request(model=model, messages=[])
    _parse_instructions(body.get("instructions"), req)
    _parse_input(body.get("input"), req)
    _parse_tools(body.get("tools"), req)
    _parse_tool_choice(body, req)
    _parse_reasoning(body.get("reasoning"), req)
    _parse_sampling(body, req)
    _parse_text(body.get("text"), req)
    _parse_stream(body, req)
    drop_unknown_keys(body, req, _KNOWN_KEYS, _IGNORED_KEYS)
    return req


def _parse_instructions(value: object, req: ir.Request) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ir.RequestError("instructions must be a string", "instructions")
    if value:
        req.system.append(value)  # first: before any leading developer message


# ---------------------------------------------------------------- input items


class _Turns:
    """State carried across input items: whether we are still in the leading system block, the
    open assistant message (reasoning, text and calls of one model turn merge into it), the open
    tool-results message (consecutive outputs merge into it) and call id -> tool name."""

    def __init__(self, req: ir.Request) -> None:
        self.req = req
        self.leading = True
        self.assistant: ir.Message | None = None
        self.results: ir.Message | None = None
        self.call_names: dict[str, str] = {}

    def add(self, msg: ir.Message | None) -> None:
        """A standalone message (user or mid-conversation system): ends both open messages."""
        self.leading = False
        self.assistant = self.results = None
        if msg is not None:
            self.req.messages.append(msg)

    def assistant_part(self, part: ir.Part) -> None:
        self.leading = False
        self.results = None
        if self.assistant is None:
            self.assistant = ir.Message("assistant", [])
            self.req.messages.append(self.assistant)
        self.assistant.parts.append(part)

    def result_part(self, part: ir.ToolResultPart) -> None:
        self.leading = False
        self.assistant = None
        if self.results is None:
            self.results = ir.Message("user", [])
            self.req.messages.append(self.results)
        self.results.parts.append(part)


def _parse_input(value: object, req: ir.Request) -> None:
    if isinstance(value, str):
        if not value:
            raise ir.RequestError("input must not be empty", "input")
        req.messages.append(ir.Message("user", [ir.TextPart(value)]))
        return
    if not isinstance(value, list) or not value:
        raise ir.RequestError("input is required: a string or a non-empty array of items", "input")
    turns = _Turns(req)
    for i, item in enumerate(value):
        _parse_item(item, f"input[{i}]", turns)


def _parse_item(item: object, where: str, turns: _Turns) -> None:
    if not isinstance(item, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"  # EasyInputMessage: {"role", "content"} without a type
    if not isinstance(kind, str) or not kind:
        raise ir.RequestError(f"{where}.type must be a non-empty string", f"{where}.type")
    handler = _ITEM_HANDLERS.get(kind)
    if handler is None:
        drop(turns.req, f"{where}: item type {kind!r} not supported by this upstream")
        return
    handler(item, where, turns)


def _message_item(item: dict[str, Any], where: str, turns: _Turns) -> None:
    role = item.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise ir.RequestError(
            f"{where}.role must be one of user, assistant, system, developer", f"{where}.role"
        )
    parts = _content(item.get("content"), f"{where}.content", turns.req)
    if role in ("system", "developer"):
        text = system_text(parts, f"{where}.content", turns.req)
        if turns.leading:
            if text:
                turns.req.system.append(text)
        else:
            turns.add(ir.Message("system", [ir.TextPart(text)]) if text else None)
    elif role == "user":
        turns.add(ir.Message("user", list(parts)) if parts else None)
    elif parts:
        for part in parts:
            turns.assistant_part(part)
    else:
        turns.leading = False


def _content(value: object, where: str, req: ir.Request) -> list[ir.TextPart | ir.ImagePart]:
    return content_parts(value, where, req, _content_part)


def _content_part(part: object, where: str, req: ir.Request) -> ir.TextPart | ir.ImagePart | None:
    if not isinstance(part, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    kind = part.get("type")
    if kind in _TEXT_PARTS or kind == "refusal":
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise ir.RequestError(f"{where}.{key} must be a string", f"{where}.{key}")
        return ir.TextPart(text) if text else None
    if kind == "input_image":
        return _input_image(part, where, req)
    if kind == "input_file":
        return _input_file(part, where, req)
    if not isinstance(kind, str):
        raise ir.RequestError(f"{where}.type must be a string", f"{where}.type")
    drop(req, f"{where}: content part type {kind!r} not supported")
    return None


def _input_image(part: dict[str, Any], where: str, req: ir.Request) -> ir.ImagePart | None:
    url = part.get("image_url")
    if url is None:
        if part.get("file_id") is not None:
            # file_id references the OpenAI Files API, which no upstream here can resolve
            drop(req, f"{where}: image by file_id is not supported (send a data URL)")
            return None
        raise ir.RequestError(f"{where}.image_url is required", f"{where}.image_url")
    return image_url_part(url, f"{where}.image_url")


def _input_file(part: dict[str, Any], where: str, req: ir.Request) -> ir.ImagePart | None:
    data, url, name = part.get("file_data"), part.get("file_url"), part.get("filename")
    if name is not None and not isinstance(name, str):
        raise ir.RequestError(f"{where}.filename must be a string", f"{where}.filename")
    fallback = mime_from_name(name or "", "application/octet-stream")
    if data is not None:
        if not isinstance(data, str) or not data:
            raise ir.RequestError(
                f"{where}.file_data must be a non-empty string", f"{where}.file_data"
            )
        if data.startswith("data:"):
            mime, payload = parse_data_url(data, f"{where}.file_data")
            return ir.ImagePart(mime or fallback, payload)
        return ir.ImagePart(fallback, data)  # plain base64
    if url is not None:
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ir.RequestError(f"{where}.file_url must be an http(s) URL", f"{where}.file_url")
        return ir.ImagePart(mime_from_name(url.split("?", 1)[0], fallback), url=url)
    drop(req, f"{where}: file without inline file_data (file_id is not supported)")
    return None


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise ir.RequestError(f"{where}.{key} must be a non-empty string", f"{where}.{key}")
    return value


def _function_call_item(item: dict[str, Any], where: str, turns: _Turns) -> None:
    call_id, name = _string(item, "call_id", where), _string(item, "name", where)
    args = _call_arguments(item.get("arguments"), f"{where}.arguments", turns.req)
    turns.call_names[call_id] = name
    turns.assistant_part(ir.ToolCallPart(call_id, name, args))


def _call_arguments(raw: object, where: str, req: ir.Request) -> dict[str, Any]:
    """The JSON text of the arguments -> a dict. A non-object value is wrapped as {"value": v};
    text that is not JSON is kept as {"value": text} with a note rather than rejected: it came
    from the model, and a 400 would wedge the client's conversation for good."""
    args = arguments_object(raw, where)
    if args is None:
        drop(req, f"{where}: not valid JSON; passed on as a string")
        return {"value": raw}
    return args


def _custom_call_item(item: dict[str, Any], where: str, turns: _Turns) -> None:
    call_id, name = _string(item, "call_id", where), _string(item, "name", where)
    text = item.get("input", "")
    if not isinstance(text, str):
        raise ir.RequestError(f"{where}.input must be a string", f"{where}.input")
    turns.call_names[call_id] = name
    turns.assistant_part(ir.ToolCallPart(call_id, name, {"input": text}))


def _output_item(item: dict[str, Any], where: str, turns: _Turns) -> None:
    """function_call_output / custom_tool_call_output: a string or an array of content parts."""
    call_id = _string(item, "call_id", where)
    output = item.get("output")
    if output is None:
        raise ir.RequestError(f"{where}.output is required", f"{where}.output")
    content = _content(output, f"{where}.output", turns.req)
    turns.result_part(ir.ToolResultPart(call_id, list(content), turns.call_names.get(call_id)))


def _reasoning_item(item: dict[str, Any], where: str, turns: _Turns) -> None:
    texts = _reasoning_texts(item.get("summary"), f"{where}.summary")
    if not texts:  # open-weight models send the raw reasoning as `content` instead
        texts = _reasoning_texts(item.get("content"), f"{where}.content")
    enc = item.get("encrypted_content")
    if enc is not None and not isinstance(enc, str):
        raise ir.RequestError(
            f"{where}.encrypted_content must be a string", f"{where}.encrypted_content"
        )
    text = "\n\n".join(texts)
    if text or enc:
        sig = ir.CODEX_REASONING_PREFIX + enc if enc else None
        turns.assistant_part(ir.ThinkingPart(text, sig))
    else:
        turns.leading = False


def _reasoning_texts(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ir.RequestError(f"{where} must be an array", where)
    texts: list[str] = []
    for j, entry in enumerate(value):
        text = entry.get("text") if isinstance(entry, dict) else None
        if not isinstance(text, str):
            raise ir.RequestError(f"{where}[{j}].text must be a string", f"{where}[{j}].text")
        if text:
            texts.append(text)
    return texts


_ITEM_HANDLERS = {
    "message": _message_item,
    "function_call": _function_call_item,
    "function_call_output": _output_item,
    "custom_tool_call": _custom_call_item,
    "custom_tool_call_output": _output_item,
    "reasoning": _reasoning_item,
}

# ---------------------------------------------------------------- tools


def _parse_tools(tools: object, req: ir.Request) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise ir.RequestError("tools must be an array", "tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise ir.RequestError(f"{where} must be an object", where)
        kind = tool.get("type", "function")
        if kind == "function":
            req.tools.append(_function_tool(tool, where, req))
        elif kind == "custom":
            name, desc = _tool_header(tool, where)
            fmt = _custom_format(tool.get("format"), f"{where}.format")
            add_custom_tool(req, name, desc, fmt, f"{where}.format")
            drop(req, f"custom tool {name}: exposed as a function with one string 'input'")
        elif isinstance(kind, str):
            # hosted tools (web_search, tool_search, namespace, local_shell, file_search, mcp,
            # code_interpreter, image_generation, computer_use, ...) cannot run on this upstream
            name = tool.get("name")
            label = f"{kind} {name}" if isinstance(name, str) and name else kind
            drop(req, f"dropped tool {label}: not supported by this upstream")
        else:
            raise ir.RequestError(f"{where}.type must be a string", f"{where}.type")


def _tool_header(tool: dict[str, Any], where: str) -> tuple[str, str]:
    name = _string(tool, "name", where)
    desc = tool.get("description")
    if desc is not None and not isinstance(desc, str):
        raise ir.RequestError(f"{where}.description must be a string", f"{where}.description")
    return name, desc or ""


def _function_tool(tool: dict[str, Any], where: str, req: ir.Request) -> ir.Tool:
    name, desc = _tool_header(tool, where)
    params = tool.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ir.RequestError(f"{where}.parameters must be an object", f"{where}.parameters")
    if tool.get("strict") is True:
        drop(req, f"{where}.strict: strict schema adherence is not enforced")
    return ir.Tool(name, desc, params or {})


def _custom_format(fmt: object, where: str) -> dict[str, Any] | None:
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise ir.RequestError(f"{where} must be an object", where)
    return fmt


def _parse_tool_choice(body: dict[str, Any], req: ir.Request) -> None:
    choice = body.get("tool_choice")
    if choice is not None:
        req.tool_choice = _tool_choice(choice, req)
    ptc = fields.boolean(body.get("parallel_tool_calls"), "parallel_tool_calls")
    if ptc is not None:
        req.parallel_tool_calls = ptc


def _tool_choice(choice: object, req: ir.Request) -> ir.ToolChoice:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise ir.RequestError(
                "tool_choice must be none, auto, required or an object", "tool_choice"
            )
        return ir.ToolChoice(choice)  # type: ignore[arg-type]
    if not isinstance(choice, dict):
        raise ir.RequestError("tool_choice must be a string or an object", "tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        return ir.ToolChoice("tool", _string(choice, "name", "tool_choice"))
    if kind == "allowed_tools":
        drop(req, "tool_choice.allowed_tools: the tool subset is not enforced")
        return ir.ToolChoice("required" if choice.get("mode") == "required" else "auto")
    if isinstance(kind, str) and kind:
        drop(req, f"tool_choice {kind}: not supported by this upstream; using auto")
        return ir.ToolChoice("auto")
    raise ir.RequestError("tool_choice.type must be a non-empty string", "tool_choice.type")


# ---------------------------------------------------------------- scalars


def _parse_reasoning(value: object, req: ir.Request) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ir.RequestError("reasoning must be an object", "reasoning")
    effort = value.get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise ir.RequestError(
            "reasoning.effort must be one of " + ", ".join(sorted(EFFORTS)), "reasoning.effort"
        )
    key = "summary" if value.get("summary") is not None else "generate_summary"  # old alias
    summary = value.get(key)
    if summary is not None and (not isinstance(summary, str) or summary not in SUMMARIES):
        raise ir.RequestError(
            f"reasoning.{key} must be one of " + ", ".join(sorted(SUMMARIES)), f"reasoning.{key}"
        )
    include = True if summary not in (None, "none") else None
    if effort is not None or include is not None:
        req.thinking = ir.Thinking(effort=effort, include_thoughts=include)  # type: ignore[arg-type]


def _parse_sampling(body: dict[str, Any], req: ir.Request) -> None:
    req.max_tokens = fields.integer(body.get("max_output_tokens"), "max_output_tokens", 1)
    req.temperature = fields.number(body.get("temperature"), "temperature")
    req.top_p = fields.number(body.get("top_p"), "top_p")


def _parse_text(value: object, req: ir.Request) -> None:
    """`text.format` -> JSON mode / schema; `text.verbosity` has no upstream meaning (ignored)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ir.RequestError("text must be an object", "text")
    fmt = value.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise ir.RequestError("text.format must be an object", "text.format")
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise ir.RequestError("text.format.schema must be an object", "text.format.schema")
        req.response_mime_type = "application/json"
        req.response_schema = schema
    elif kind == "json_object":
        req.response_mime_type = "application/json"
    elif kind != "text":
        raise ir.RequestError(
            "text.format.type must be text, json_object or json_schema", "text.format.type"
        )


def _parse_stream(body: dict[str, Any], req: ir.Request) -> None:
    req.stream = bool(fields.boolean(body.get("stream"), "stream"))


# ================================================================ response

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/webp": "webp",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/svg+xml": "svg",
}


def _response_id(raw: str | None) -> str:
    if raw and raw.startswith("resp_"):
        return raw
    return "resp_" + (raw or uuid.uuid4().hex)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _usage(u: ir.Usage) -> dict[str, Any]:
    # cache_write_tokens: the openai SDK's InputTokensDetails requires it; we never write caches
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _status(reason: ir.FinishReason) -> tuple[str, str | None]:
    """(response status, incomplete_details.reason) for an IR finish reason
    (docs/upstreams.md "Cross-dialect mappings")."""
    incomplete = _INCOMPLETE.get(reason)
    return ("incomplete", incomplete) if incomplete else ("completed", None)


def _response_object(
    rid: str,
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: ir.Usage | None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `response` object with every field the openai SDK's `Response` model requires."""
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": _usage(usage) if usage is not None else None,
        "metadata": {},
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _message(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [_output_text(text)]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _encrypted(signature: str | None) -> str | None:
    if signature and signature.startswith(ir.CODEX_REASONING_PREFIX):
        return signature[len(ir.CODEX_REASONING_PREFIX) :] or None
    return None


def _reasoning(item_id: str, text: str, signature: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
    if text:
        item["summary"].append({"type": "summary_text", "text": text})
    enc = _encrypted(signature)
    if enc:
        item["encrypted_content"] = enc
    return item


def _function_call(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def _custom_call(item_id: str, call_id: str, name: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "custom_tool_call",
        "call_id": call_id,
        "name": name,
        "input": text,
    }


def _image(item_id: str, mime: str, data: str, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "image_generation_call",
        "status": status,
        "result": data,
    }
    fmt = _IMAGE_FORMATS.get(mime.lower())
    if fmt:
        item["output_format"] = fmt
    return item


def render_response(
    resp: ir.Response, custom_tools: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """ir.Response -> a `response` object (docs/upstreams.md "OpenAI Responses" non-stream
    sample)."""
    output: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, ir.TextPart):
            if part.text:
                output.append(_message(_new_id("msg"), part.text, "completed"))
        elif isinstance(part, ir.ThinkingPart):
            if part.text or _encrypted(part.signature):
                output.append(_reasoning(_new_id("rs"), part.text, part.signature))
        elif isinstance(part, ir.ToolCallPart):
            if part.name in custom_tools:
                text = custom_input(part.arguments)
                output.append(_custom_call(_new_id("ctc"), part.id, part.name, text))
            else:
                args = args_json(part.arguments)
                output.append(_function_call(_new_id("fc"), part.id, part.name, args, "completed"))
        elif isinstance(part, ir.ImagePart) and part.data:
            output.append(_image(_new_id("ig"), part.mime_type, part.data, "completed"))
    status, incomplete = _status(resp.finish_reason)
    return _response_object(
        _response_id(resp.id),
        resp.model,
        int(time.time()),
        status,
        output,
        resp.usage,
        incomplete,
    )


# ================================================================ stream


def _failure_code(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    if status == 400:
        return "invalid_prompt"
    return "server_error"


class _Item:
    """The output item being streamed. `kind`: message, reasoning, function_call, custom."""

    __slots__ = (
        "args",
        "call_id",
        "fragments",
        "id",
        "index",
        "kind",
        "name",
        "sent",
        "signature",
        "summary_open",
        "text",
    )

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind
        self.index = index
        self.id = item_id
        self.text: list[str] = []  # message text / reasoning summary
        self.signature: str | None = None
        self.summary_open = False
        self.call_id = ""
        self.name = ""
        self.fragments: list[str] = []  # argument JSON fragments
        self.sent = False  # an arguments delta went out
        self.args: dict[str, Any] | None = None  # from ToolCallEnd


class StreamEncoder(SafeStreamEncoder):
    """IR events -> Responses SSE (`event: <type>` + `data: <json>` with `sequence_number`).

    Grammar (docs/upstreams.md "Codex SSE events", "OpenAI Responses"): response.created first (the
    openai SDK's stream wrapper requires it), response.in_progress, then one output item at a time
    (added, its deltas, done), then exactly one of response.completed / response.incomplete /
    response.failed. Codex CLI reads items from output_item.done and usage from response.completed.
    Never raises.
    """

    def __init__(self, model: str, custom_tools: set[str] | frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.model = model
        self.custom_tools = frozenset(custom_tools)
        self.id = _response_id(None)
        self.created_at = int(time.time())
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # finished items, in output_index order
        self._open: _Item | None = None
        self._calls: dict[str, _Item] = {}

    # ------------------------------------------------ end and errors

    def _final(self) -> list[bytes]:
        out = self._start()
        out += self._close()
        status, incomplete = _status(self._finish)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        resp = self._response(status, self._usage, incomplete)
        out.append(self._emit(kind, response=resp))
        return out

    def _error_frames(self, message: str, status: int, code: str | None) -> list[bytes]:
        """`response.failed` with `response.error{code,message}`: the openai SDK yields it and
        Codex CLI reports it (it ignores a plain `error` event). Nothing follows it."""
        err = {"code": code or _failure_code(status), "message": message}
        out = self._start()
        out.append(
            self._emit("response.failed", response=self._response("failed", None, error=err))
        )
        return out

    def _fault_frames(self) -> list[bytes]:
        # no output items and no response.created: either may be what failed to encode
        err = {"code": "server_error", "message": self.FAULT}
        resp = _response_object(self.id, self.model, self.created_at, "failed", [], None, error=err)
        return [self._emit("response.failed", response=resp)]

    # ------------------------------------------------ events

    def _encode(self, event: ir.Event) -> list[bytes]:
        match event:
            case ir.StreamStart(id=sid):
                if not self._started and sid:
                    self.id = _response_id(sid)
                return self._start()
            case ir.TextDelta(text=text) if text:
                return self._text(text)
            case ir.ThinkingDelta(text=text, signature=sig) if text or sig:
                return self._thinking(text, sig)
            case ir.ToolCallStart():
                return self._tool_start(event)
            case ir.ToolCallDelta(id=cid, arguments=frag) if frag:
                return self._tool_delta(cid, frag)
            case ir.ToolCallEnd(id=cid, arguments=args):
                call = self._calls.get(cid)
                if call is None or call is not self._open:
                    return []  # unknown, or already closed by a later item
                call.args = args if isinstance(args, dict) else {}
                return self._close()
            case ir.ImageOut(mime_type=mime, data=data) if data:
                return self._image(mime, data)
            case _:
                return self._track(event)

    def _text(self, text: str) -> list[bytes]:
        out = self._start()
        item = self._open
        if item is None or item.kind != "message":
            out += self._close()
            item = self._new_item("message", "msg")
            out.append(self._added(item, _message(item.id, None, "in_progress")))
            part = _output_text("")
            out.append(self._emit("response.content_part.added", **self._at(item), part=part))
        item.text.append(text)
        out.append(
            self._emit("response.output_text.delta", **self._at(item), delta=text, logprobs=[])
        )
        return out

    def _thinking(self, text: str, sig: str | None) -> list[bytes]:
        out = self._start()
        item = self._open
        # a signature ends a thinking part (as in the IR): later text opens a new reasoning item
        if item is None or item.kind != "reasoning" or item.signature is not None:
            if not text and not _encrypted(sig):
                return out  # a lone non-Codex signature: a Responses item cannot carry it
            out += self._close()
            item = self._new_item("reasoning", "rs")
            out.append(self._added(item, _reasoning(item.id, "", None)))
        if text:
            if not item.summary_open:
                item.summary_open = True
                part = {"type": "summary_text", "text": ""}
                out.append(
                    self._emit(
                        "response.reasoning_summary_part.added",
                        **self._ids(item),
                        summary_index=0,
                        part=part,
                    )
                )
            item.text.append(text)
            out.append(
                self._emit(
                    "response.reasoning_summary_text.delta",
                    item_id=item.id,
                    output_index=item.index,
                    summary_index=0,
                    delta=text,
                )
            )
        if sig:
            item.signature = sig
        return out

    def _tool_start(self, event: ir.ToolCallStart) -> list[bytes]:
        if event.id in self._calls:
            return []
        out = self._start()
        out += self._close()
        custom = event.name in self.custom_tools
        item = self._new_item("custom" if custom else "function_call", "ctc" if custom else "fc")
        item.call_id, item.name = event.id, event.name
        self._calls[event.id] = item
        if custom:
            out.append(self._added(item, _custom_call(item.id, item.call_id, item.name, "")))
        else:
            fc = _function_call(item.id, item.call_id, item.name, "", "in_progress")
            out.append(self._added(item, fc))
        return out

    def _tool_delta(self, cid: str, frag: str) -> list[bytes]:
        item = self._calls.get(cid)
        if item is None or item is not self._open:
            return []
        item.fragments.append(frag)
        if item.kind == "custom":
            return []  # JSON fragments of {"input": ...}: the raw text is sent whole at the end
        item.sent = True
        return [self._emit("response.function_call_arguments.delta", **self._ids(item), delta=frag)]

    def _image(self, mime: str, data: str) -> list[bytes]:
        out = self._start()
        out += self._close()
        item = self._new_item("image", "ig")
        # result "" rather than null: Codex CLI types `result` as a string
        out.append(self._added(item, _image(item.id, mime, "", "in_progress")))
        done = _image(item.id, mime, data, "completed")
        out.append(self._emit("response.output_item.done", output_index=item.index, item=done))
        self._output.append(done)
        self._open = None
        return out

    # ------------------------------------------------ items

    def _new_item(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind, len(self._output), _new_id(prefix))
        self._open = item
        return item

    def _added(self, item: _Item, body: dict[str, Any]) -> bytes:
        return self._emit("response.output_item.added", output_index=item.index, item=body)

    def _close(self) -> list[bytes]:
        """Finish the open item: its closing events, then output_item.done with the full item."""
        item = self._open
        if item is None:
            return []
        self._open = None
        out: list[bytes] = []
        if item.kind == "message":
            text = "".join(item.text)
            at = self._at(item)
            out.append(self._emit("response.output_text.done", **at, text=text, logprobs=[]))
            out.append(self._emit("response.content_part.done", **at, part=_output_text(text)))
            body = _message(item.id, text, "completed")
        elif item.kind == "reasoning":
            text = "".join(item.text)
            if item.summary_open:
                ids = dict(self._ids(item), summary_index=0)
                part = {"type": "summary_text", "text": text}
                out.append(self._emit("response.reasoning_summary_text.done", **ids, text=text))
                out.append(self._emit("response.reasoning_summary_part.done", **ids, part=part))
            body = _reasoning(item.id, text, item.signature)
        elif item.kind == "custom":
            text = custom_input(self._final_args(item))
            if text:
                out.append(
                    self._emit(
                        "response.custom_tool_call_input.delta", **self._ids(item), delta=text
                    )
                )
            out.append(
                self._emit("response.custom_tool_call_input.done", **self._ids(item), input=text)
            )
            body = _custom_call(item.id, item.call_id, item.name, text)
        else:
            args = self._arguments_text(item)
            # no fragment streamed: the whole JSON in one delta (docs/upstreams.md "Pitfalls")
            if not item.sent:
                out.append(
                    self._emit(
                        "response.function_call_arguments.delta", **self._ids(item), delta=args
                    )
                )
            out.append(
                self._emit(
                    "response.function_call_arguments.done",
                    **self._ids(item),
                    name=item.name,
                    arguments=args,
                )
            )
            body = _function_call(item.id, item.call_id, item.name, args, "completed")
        out.append(self._emit("response.output_item.done", output_index=item.index, item=body))
        self._output.append(body)
        return out

    @staticmethod
    def _joined(item: _Item) -> tuple[str, Any]:
        """The streamed fragments and their parsed value (None when they are not JSON)."""
        joined = "".join(item.fragments)
        try:
            return joined, json.loads(joined) if joined.strip() else None
        except (ValueError, RecursionError):
            return joined, None

    def _final_args(self, item: _Item) -> dict[str, Any]:
        if item.args is not None:
            return item.args
        _, value = self._joined(item)
        return value if isinstance(value, dict) else {}

    def _arguments_text(self, item: _Item) -> str:
        """What the client accumulated from the deltas when that is valid JSON (so deltas and
        the done item agree), else the arguments from ToolCallEnd."""
        joined, value = self._joined(item)
        if item.sent and isinstance(value, dict):
            return joined
        return args_json(self._final_args(item))

    # ------------------------------------------------ frames

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        resp = _response_object(self.id, self.model, self.created_at, "in_progress", [], None)
        return [
            self._emit("response.created", response=resp),
            self._emit("response.in_progress", response=resp),
        ]

    def _response(
        self,
        status: str,
        usage: ir.Usage | None,
        incomplete: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return _response_object(
            self.id,
            self.model,
            self.created_at,
            status,
            list(self._output),
            usage,
            incomplete,
            error,
        )

    @staticmethod
    def _ids(item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    @staticmethod
    def _at(item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index, "content_index": 0}

    def _emit(self, kind: str, **fields: Any) -> bytes:
        obj = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event_frame(kind, obj)
