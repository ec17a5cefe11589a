"""The Codex upstream dialect (ChatGPT backend, `POST {endpoints.codex}/responses`).

Codex speaks the OpenAI Responses API with extra rules (docs/upstreams.md "Codex"): `instructions`
must be
present, `stream:true` and `store:false` always, no sampling / token-limit parameters, no
`role:"system"` input items, no item ids it never stored.

- render_request: IR -> Codex body (a client of another dialect served by Codex).
- prepare_passthrough: a Responses-API client body (Codex CLI, openai SDK) -> Codex body, every
  accepted field kept.
- StreamDecoder: Codex SSE events -> IR events (also used, fed the whole SSE, for non-stream
  clients through accumulate.ResponseAccumulator).
- completed_response: the final `response` object for a non-stream Responses client on the
  pass-through path.
- parse_error: the backend's error bodies (`{"detail"}`, usage limits, OpenAI style, HTML).

Codex's own reasoning (`encrypted_content`) rides through other dialects as a thinking signature
prefixed with ir.CODEX_REASONING_PREFIX, so it can be replayed as a `reasoning` input item.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

from cliproxy.translators import fields
from cliproxy.translators import ir
from cliproxy.translators.sse import event_frame
from cliproxy.translators.thinking import budget_to_effort

# THE documented place for body keys the Codex backend refuses (docs/upstreams.md "Codex request
# body", §10:
# `400 {"detail":"Unsupported parameter: max_output_tokens"}`; CLIProxyAPI drops the sampling
# knobs). Every drop is noted. `service_tier` is accepted and kept; `previous_response_id` is
# not here: it is rejected, because dropping it would silently lose the conversation.
# The last three are Responses-API keys no Codex client sends; unverified against the backend,
# dropped rather than risking a 400 (they change nothing in the answer's content).
UNSUPPORTED_PARAMETERS: frozenset[str] = frozenset(
    {
        "max_output_tokens",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "logprobs",
        "top_logprobs",
        "user",
        "metadata",
        "truncation",
        "background",
        "safety_identifier",
        "stream_options",
        "prompt_cache_retention",
        "max_tool_calls",
        # Responses-API / client-side context and cache controls (Claude-style clients, the
        # openai SDK): the backend refuses them ("Unsupported parameter: context_management")
        "context_management",
        "prompt_cache_options",
        "prompt_cache_breakpoint",
    }
)

# service_tier values the backend takes; "fast" is Codex CLI's word for priority. Any other
# ("auto", "flex", "scale"…) is `400 Unsupported service_tier` and is dropped with a note.
_SERVICE_TIERS = {"priority": "priority", "fast": "priority", "default": "default"}

# The public API's web search tool names; the backend knows only `web_search`.
_WEB_SEARCH_PREVIEW = ("web_search_preview", "web_search_preview_2025_03_11")

# Body keys that point at server-side state (earlier responses, conversations, stored prompt
# templates); with store:false there is none (docs/upstreams.md "OpenAI Responses"). Rejected, never
# dropped.
_STATEFUL_KEYS = ("previous_response_id", "conversation", "prompt")

_ENCRYPTED_INCLUDE = "reasoning.encrypted_content"

# IR effort -> Codex reasoning.effort (Codex has no "auto" or "max").
_EFFORTS: dict[str, str] = {
    "none": "none",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "xhigh",
    "auto": "medium",
}

# response.failed / error codes -> the HTTP status a client should see.
_RATE_CODES = frozenset(
    {"rate_limit_exceeded", "insufficient_quota", "usage_limit_reached", "usage_not_included"}
)

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

# The backend refuses a tool name or a `call_id` longer than 64 characters
# (`string_above_max_length`), and tool names outside ^[a-zA-Z0-9_-]+$. Claude Code's MCP tools
# (`mcp__<server>__<tool>`) pass the limit easily, and Codex itself hands out call ids longer than
# it accepts back; both are rewritten on the way up (docs/upstreams.md "Codex request body").
MAX_NAME = 64
_TOOL_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME_CHAR_RE = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LEN = 8  # hex digits of the name's SHA-256: what makes a shortened name unique


def _note(req: ir.Request, message: str) -> None:
    req.dropped.append(message)


def _unsupported_note(key: str) -> str:
    return f"{key}: not supported by the Codex backend; dropped"


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


# ================================================================ names and ids Codex takes


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _short_name(name: str, salt: int) -> str:
    """A valid Codex tool name for `name`, a function of the name alone (so every turn of a
    session maps it the same way, with no state). The readable part is the MCP tool's own name
    (`mcp__server__tool` -> `mcp__tool`), what the model reads; the hash keeps it unique."""
    head = name
    if name.startswith("mcp__") and "__" in name[5:]:
        head = "mcp__" + name.rsplit("__", 1)[1]
    head = _NAME_CHAR_RE.sub("_", head)[: MAX_NAME - _HASH_LEN - 1]
    return f"{head}_{_digest(name if salt == 0 else f'{name}#{salt}', _HASH_LEN)}"


def _client_names(req: ir.Request) -> list[str]:
    """Every tool name the request can send: declared tools, tool_choice, calls in history."""
    names = [t.name for t in req.tools]
    if req.tool_choice is not None and req.tool_choice.name:
        names.append(req.tool_choice.name)
    for msg in req.messages:
        names += [p.name for p in msg.parts if isinstance(p, ir.ToolCallPart)]
    return names


def upstream_tool_names(req: ir.Request) -> dict[str, str]:
    """{Codex name: client name} for the tool names Codex would refuse (longer than 64
    characters, or characters outside [A-Za-z0-9_-]). render_request sends the Codex names; the
    StreamDecoder takes this map to give the client its own names back. Unique within the
    request: a clash with another name (a valid one, or another alias) takes the next salt."""
    names = list(dict.fromkeys(_client_names(req)))
    taken = {n for n in names if _TOOL_NAME_RE.fullmatch(n)}
    aliases: dict[str, str] = {}
    for name in names:
        if name in taken:
            continue
        salt, short = 0, _short_name(name, 0)
        while short in taken:
            salt += 1
            short = _short_name(name, salt)
        taken.add(short)
        aliases[short] = name
    return aliases


def upstream_call_id(call_id: str) -> str:
    """A call id Codex accepts: ids over 64 characters keep a readable head and end in a hash
    of the whole id, so a call and its result (and every later turn) get the same id."""
    if len(call_id) <= MAX_NAME:
        return call_id
    return f"{call_id[: MAX_NAME - 17]}_{_digest(call_id, 16)}"


# ================================================================ IR -> Codex request


def _data_url(p: ir.ImagePart) -> str | None:
    if p.data is not None:
        return f"data:{p.mime_type};base64,{p.data}"
    return p.url or None


def _is_image(p: ir.ImagePart) -> bool:
    # a remote URL without a known type is passed on as an image; inline data must say image/*
    return p.mime_type.startswith("image/") or (p.data is None and bool(p.url))


# Files Codex reads as `input_file` (the Responses API's documents: PDFs and text). Audio and
# video have no Codex input: a request carrying them is refused naming the part, never sent
# with the part silently gone (a request of such parts only would reach Codex empty).
_FILE_EXT = {"application/pdf": "pdf", "text/plain": "txt", "text/markdown": "md",
             "text/csv": "csv", "text/html": "html", "application/json": "json"}  # fmt: skip


def _is_file(mime: str) -> bool:
    return mime in _FILE_EXT or mime.startswith("text/")


def _input_image(p: ir.ImagePart, req: ir.Request, where: str) -> dict[str, Any] | None:
    url = _data_url(p)
    if url is None:
        _note(req, f"{where}: image without data or url; dropped")
        return None
    if _is_file(p.mime_type):  # before _is_image: a PDF URL is a file, not an image
        ext = _FILE_EXT.get(p.mime_type, "txt")
        if p.data is not None:
            return {"type": "input_file", "filename": f"document.{ext}", "file_data": url}
        return {"type": "input_file", "file_url": url}
    if _is_image(p):
        return {"type": "input_image", "image_url": url}
    raise ir.RequestError(
        f"{where}: a {p.mime_type} part cannot be sent to a Codex model (it reads text, images, "
        "PDFs and text files only)",
        where.split(" ", 1)[0],  # messages[i]
    )


def _tool_output(p: ir.ToolResultPart, req: ir.Request, where: str) -> str | list[dict[str, Any]]:
    """Text alone -> a string; with images -> an input_text/input_image array (§8.1).
    `is_error` has no Codex field: the result text itself says what went wrong."""
    texts = [c.text for c in p.content if isinstance(c, ir.TextPart)]
    if not any(isinstance(c, ir.ImagePart) for c in p.content):
        return "\n".join(texts)
    out: list[dict[str, Any]] = []
    for c in p.content:
        if isinstance(c, ir.TextPart):
            out.append({"type": "input_text", "text": c.text})
        else:
            image = _input_image(c, req, f"{where} tool result {p.call_id}")
            if image is not None:
                out.append(image)
    return out


def _reasoning_item(p: ir.ThinkingPart) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": p.text}] if p.text else []
    encrypted = (p.signature or "").removeprefix(ir.CODEX_REASONING_PREFIX)
    return {"type": "reasoning", "summary": summary, "encrypted_content": encrypted}


class _Items:
    """Builds the `input` list: content parts gather into a message item of the turn's role;
    a tool call, tool result or reasoning item closes it, so part order is kept."""

    def __init__(self, req: ir.Request, names: dict[str, str]) -> None:
        self.req = req
        self.names = names  # client tool name -> Codex tool name, for the names Codex refuses
        self.custom = _custom_names(req)  # freeform tools: custom_tool_call(_output) items
        self.custom_calls: set[str] = set()  # call ids of custom calls, for their outputs
        self.items: list[dict[str, Any]] = []
        self.content: list[dict[str, Any]] = []
        self.role = "user"
        self.index = -1  # of the message being rendered, to name a part Codex cannot take
        self.noted_thinking = False

    def message(self, msg: ir.Message) -> None:
        # role "system" is refused inside input (CLIProxyAPI #3510): developer instead
        self.role = {"system": "developer"}.get(msg.role, msg.role)
        self.index += 1
        for part in msg.parts:
            self.part(part)
        self.flush()

    def flush(self) -> None:
        if self.content:
            self.items.append({"type": "message", "role": self.role, "content": self.content})
            self.content = []

    def item(self, item: dict[str, Any]) -> None:
        self.flush()
        self.items.append(item)

    def part(self, p: ir.Part) -> None:
        if isinstance(p, ir.TextPart):
            if p.text:  # an empty text part carries nothing
                kind = "output_text" if self.role == "assistant" else "input_text"
                self.content.append({"type": kind, "text": p.text})
        elif isinstance(p, ir.ImagePart):
            if self.role == "assistant":
                _note(self.req, "assistant image: Codex history has no place for it; dropped")
                return
            image = _input_image(p, self.req, f"messages[{self.index}]")
            if image is not None:
                self.content.append(image)
        elif isinstance(p, ir.ThinkingPart):
            if p.signature and p.signature.startswith(ir.CODEX_REASONING_PREFIX):
                self.item(_reasoning_item(p))
            elif p.text or p.signature:
                self.thinking_dropped()
        elif isinstance(p, ir.ToolCallPart):
            if p.signature:  # a Gemini thoughtSignature: meaningless to Codex
                self.thinking_dropped()
            call = {"call_id": upstream_call_id(p.id), "name": self.names.get(p.name, p.name)}
            if p.name in self.custom:
                self.custom_calls.add(p.id)
                self.item(
                    {"type": "custom_tool_call", **call, "input": ir.custom_input(p.arguments)}
                )
            else:
                arguments = json.dumps(p.arguments, ensure_ascii=False)
                self.item({"type": "function_call", **call, "arguments": arguments})
        elif isinstance(p, ir.WebSearchPart):
            # Codex's own search, replayed as it gave it (without the item id: store is false)
            action = {"type": "search", "query": p.query}
            self.item({"type": "web_search_call", "status": "completed", "action": action})
        elif isinstance(p, ir.ToolResultPart):
            custom = p.call_id in self.custom_calls
            self.item(
                {
                    "type": "custom_tool_call_output" if custom else "function_call_output",
                    "call_id": upstream_call_id(p.call_id),
                    "output": _tool_output(p, self.req, f"messages[{self.index}]"),
                }
            )

    def thinking_dropped(self) -> None:
        # thinking from another upstream has no encrypted_content Codex could verify
        if not self.noted_thinking:
            self.noted_thinking = True
            _note(self.req, "thinking from another upstream cannot be replayed to Codex; dropped")


def _tool_schema(parameters: Any) -> dict[str, Any]:
    """A function tool's JSON Schema as Codex takes it: no top-level `$schema`, an object."""
    if not isinstance(parameters, dict):
        return dict(_EMPTY_SCHEMA)
    schema = {k: v for k, v in parameters.items() if k != "$schema"}
    if not schema:
        return dict(_EMPTY_SCHEMA)
    schema.setdefault("type", "object")  # function parameters must be an object schema
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def _custom_names(req: ir.Request) -> set[str]:
    names = req.extras.get(ir.CUSTOM_TOOLS)
    return set(names) if isinstance(names, list) else set()


def _render_tool(tool: ir.Tool, name: str, custom: set[str], formats: Any) -> dict[str, Any]:
    if tool.name in custom:
        # a freeform tool goes as Codex's own `custom` tool, its grammar kept (ir.CUSTOM_TOOLS)
        out: dict[str, Any] = {"type": "custom", "name": name, "description": tool.description}
        fmt = formats.get(tool.name) if isinstance(formats, dict) else None
        if isinstance(fmt, dict):
            out["format"] = fmt
        return out
    return {
        "type": "function",
        "name": name,
        "description": tool.description or "",
        "strict": False,
        "parameters": _tool_schema(tool.parameters),
    }


def _render_tools(req: ir.Request, names: dict[str, str]) -> list[dict[str, Any]]:
    custom, formats = _custom_names(req), req.extras.get(ir.CUSTOM_TOOL_FORMATS)
    tools = [_render_tool(t, names.get(t.name, t.name), custom, formats) for t in req.tools]
    if req.web_search:
        tools.append({"type": "web_search"})  # the backend's own search (web_search_call items)
    return tools


def _render_tool_choice(req: ir.Request, names: dict[str, str]) -> str | dict[str, Any]:
    choice = req.tool_choice
    if choice is None or choice.mode == "auto":
        return "auto"
    if not req.tools and choice.mode in ("required", "tool"):
        _note(req, f"tool_choice={choice.mode}: no tools declared; sent auto")
        return "auto"
    if choice.mode == "tool":
        if choice.name and any(t.name == choice.name for t in req.tools):
            kind = "custom" if choice.name in _custom_names(req) else "function"
            return {"type": kind, "name": names.get(choice.name, choice.name)}
        if choice.name:  # the backend 400s on a tool_choice naming no declared tool
            _note(req, f"tool_choice={choice.name}: no such tool declared; sent required")
        return "required"
    return choice.mode


def _render_reasoning(thinking: ir.Thinking | None) -> dict[str, str]:
    effort = "medium"
    if thinking is not None:
        # an explicit effort wins over a budget (the same precedence as thinking.py)
        if thinking.effort is not None:
            effort = _EFFORTS.get(thinking.effort, "medium")
        elif thinking.budget is not None:
            effort = _EFFORTS.get(budget_to_effort(thinking.budget), "medium")
    return {"effort": effort, "summary": "auto"}


def _render_text(req: ir.Request) -> dict[str, Any] | None:
    if req.response_schema is not None:
        schema = {k: v for k, v in req.response_schema.items() if k != "$schema"}
        fmt = {"type": "json_schema", "name": "response", "strict": False, "schema": schema}
        return {"format": fmt}
    mime = req.response_mime_type
    if mime == "application/json":
        return {"format": {"type": "json_object"}}
    if mime is not None and mime != "text/plain":
        _note(req, f"response_mime_type={mime}: Codex has no such format; dropped")
    return None


def _note_unsupported(req: ir.Request) -> None:
    for key, value in (
        ("max_output_tokens", req.max_tokens),
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("top_k", req.top_k),
        ("seed", req.seed),
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ):
        if value is not None:
            _note(req, _unsupported_note(key))
    if req.stop:
        _note(req, _unsupported_note("stop"))


def render_request(req: ir.Request) -> dict[str, Any]:
    """IR -> Codex `/responses` body (docs/upstreams.md "Codex request body"). What Codex cannot
    take is noted in `req.dropped`."""
    names = {client: short for short, client in upstream_tool_names(req).items()}
    items = _Items(req, names)
    for msg in req.messages:
        items.message(msg)
    body: dict[str, Any] = {
        "model": req.model,
        # the backend 400s without `instructions` ("Instructions are required")
        "instructions": "\n\n".join(s for s in req.system if s),
        "input": items.items,
        "tools": _render_tools(req, names),
        "tool_choice": _render_tool_choice(req, names),
        "parallel_tool_calls": (
            req.parallel_tool_calls if req.parallel_tool_calls is not None else True
        ),
        "reasoning": _render_reasoning(req.thinking),
        "store": False,
        "stream": True,
        "include": [_ENCRYPTED_INCLUDE],
    }
    if req.web_search:
        body["include"].append("web_search_call.action.sources")  # the pages, for the client
    text = _render_text(req)
    if text is not None:
        body["text"] = text
    if req.fast:
        body["service_tier"] = "priority"  # the backend's fast lane (Codex CLI's "fast")
    _note_unsupported(req)
    return body


# ================================================================ Responses client -> Codex


def _passthrough_item(item: Any, i: int) -> Any:
    if not isinstance(item, dict):
        raise ir.RequestError(f"input[{i}] must be an object", f"input[{i}]")
    if item.get("type") == "item_reference":
        raise ir.RequestError(
            "item_reference is not supported: this proxy keeps no server-side state; "
            "send the full item",
            f"input[{i}]",
        )
    # store:false: the backend 404s on ids of items it never stored (docs/upstreams.md "Codex
    # request body"); call_id
    # is what binds calls to outputs and stays
    out = {k: v for k, v in item.items() if k not in ("id", "prompt_cache_breakpoint")}
    if isinstance(out.get("content"), list):
        # a cache marker on a content part is as unknown to the backend as on the body
        out["content"] = [
            {k: v for k, v in part.items() if k != "prompt_cache_breakpoint"}
            if isinstance(part, dict)
            else part
            for part in out["content"]
        ]
    if out.get("role") == "system":
        out["role"] = "developer"  # "System messages are not allowed" (CLIProxyAPI #3510)
    if isinstance(out.get("call_id"), str):
        # Codex hands out call ids longer than it takes back; a call and its output both map
        # to the same id, so their pairing holds
        out["call_id"] = upstream_call_id(out["call_id"])
    return out


def _passthrough_input(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}
        ]
    if not isinstance(value, list):
        raise ir.RequestError("input must be a string or a list of items", "input")
    return [_passthrough_item(item, i) for i, item in enumerate(value)]


def _normalise_service_tier(out: dict[str, Any], notes: list[str]) -> None:
    tier = out.get("service_tier")
    if tier is None:
        out.pop("service_tier", None)
    elif isinstance(tier, str) and tier in _SERVICE_TIERS:
        out["service_tier"] = _SERVICE_TIERS[tier]
    else:
        del out["service_tier"]
        notes.append(f"service_tier={tier}: not taken by the Codex backend; dropped")


def _web_search(tool: Any) -> Any:
    """`web_search_preview*` (tool or tool_choice) -> `web_search`, its options kept."""
    if isinstance(tool, dict) and tool.get("type") in _WEB_SEARCH_PREVIEW:
        return {**tool, "type": "web_search"}
    return tool


def _reasoning_on(reasoning: Any) -> bool:
    """A `reasoning` object asks for reasoning unless it says `effort: none` (then there is no
    reasoning item to carry, and nothing to include)."""
    return reasoning is not None and not (
        isinstance(reasoning, dict) and reasoning.get("effort") == "none"
    )


def prepare_passthrough(body: object) -> tuple[dict[str, Any], list[str]]:
    """A Responses-API client body -> the Codex body and the notes on what was dropped. Every
    field the backend accepts is kept (custom / namespace / tool_search / web_search tools,
    text.verbosity, prompt_cache_key, client_metadata…); developer messages stay in `input`.
    The input is not mutated. Raises ir.RequestError on a body that cannot be sent."""
    if not isinstance(body, dict):
        raise ir.RequestError("request body must be a JSON object")
    if not isinstance(body.get("model"), str):
        raise ir.RequestError("model is required and must be a string", "model")
    for key in _STATEFUL_KEYS:
        if body.get(key) is not None:
            raise ir.RequestError(
                f"{key} is not supported: this proxy keeps no server-side state; "
                "send the full input",
                param=key,
            )
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ir.RequestError("instructions must be a string", "instructions")
    notes: list[str] = []
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in UNSUPPORTED_PARAMETERS:
            notes.append(_unsupported_note(key))
        elif key not in _STATEFUL_KEYS:  # null ones (non-null raised above)
            out[key] = value
    out["input"] = _passthrough_input(body.get("input"))
    out["instructions"] = instructions or ""
    if body.get("store"):
        notes.append("store=true: Codex is used with store=false; nothing is stored")
    out["store"] = False
    out["stream"] = True  # a non-stream client is served from the stream (completed_response)
    _normalise_service_tier(out, notes)
    if isinstance(out.get("tools"), list):
        out["tools"] = [_web_search(t) for t in out["tools"]]
    if isinstance(out.get("tool_choice"), dict):
        out["tool_choice"] = _web_search(out["tool_choice"])
    if _reasoning_on(out.get("reasoning")):
        # with store:false the reasoning of one turn survives to the next only as
        # encrypted_content, which the backend sends only when asked
        include = out.get("include")
        include = list(include) if isinstance(include, list) else []
        if _ENCRYPTED_INCLUDE not in include:
            include.append(_ENCRYPTED_INCLUDE)
        out["include"] = include
    return out, notes


# ================================================================ Codex SSE -> IR events


def _parse_args(text: str) -> dict[str, Any]:
    """Final function arguments; unparseable text is kept under `_raw` rather than lost."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def _usage(u: dict[str, Any]) -> ir.Usage:
    def num(d: Any, key: str) -> int:
        v = d.get(key) if isinstance(d, dict) else None
        return v if fields.is_int(v) and v >= 0 else 0

    return ir.Usage(
        input_tokens=num(u, "input_tokens"),
        output_tokens=num(u, "output_tokens"),
        cached_tokens=num(u.get("input_tokens_details"), "cached_tokens"),
        reasoning_tokens=num(u.get("output_tokens_details"), "reasoning_tokens"),
    )


# Failures the request itself causes: retrying it, or on another account, gives the same answer,
# so the client sees a 400 (invalid_request_error), not a 502 (api_error) it would retry. Codex
# sends `cyber_policy` as `{"type":"error","error":{"type":"invalid_request","code":…}}` in an
# HTTP 200 stream (as CLIProxyAPI users reported).
_REQUEST_CODES = frozenset(
    {
        "context_length_exceeded",
        "cyber_policy",
        "invalid_prompt",
        "content_policy_violation",
        "string_above_max_length",
        "invalid_request_error",
        "invalid_request",
        "invalid_value",
        "unsupported_parameter",
    }
)


def error_status(code: str | None, kind: str | None = None) -> int:
    """HTTP status for an in-stream failure (docs/upstreams.md "Codex SSE events"): its `code`,
    else its `type`."""
    if code in _RATE_CODES or kind in _RATE_CODES:
        return 429
    if code in _REQUEST_CODES or kind in _REQUEST_CODES:
        return 400
    if code == INTERRUPTED_CODE:
        return 503
    return 502


# The upstream went away after the first byte (the proxy's loopback streamer writes this, see
# interrupted_frame): 503, which Anthropic clients read as overloaded_error and retry.
INTERRUPTED_CODE = "upstream_interrupted"


def interrupted_frame(message: str) -> bytes:
    """A `response.failed` event, as Codex itself ends a failed stream: what a stream gets when
    its upstream fails after the first byte, so the client sees an error and never a clean end."""
    response = {"status": "failed", "error": {"code": INTERRUPTED_CODE, "message": message}}
    return event_frame("response.failed", {"type": "response.failed", "response": response})


class _Call:
    """One tool call being streamed. `custom` = a Codex `custom_tool_call` (apply_patch & co.)."""

    __slots__ = ("call_id", "custom", "ended", "raw", "sent")

    def __init__(self, call_id: str, custom: bool) -> None:
        self.call_id = call_id
        self.custom = custom
        self.sent = ""  # argument text already emitted as ToolCallDelta
        self.raw: list[str] = []  # custom input fragments (emitted at the end)
        self.ended = False


class StreamDecoder:
    """Codex SSE JSON events (`obj["type"]` is the kind) -> IR events. Never raises.

    Text and reasoning come from deltas; an item whose deltas never came is taken from its
    `output_item.done` (the full item) instead. Tool calls are keyed by the item id in the
    stream and by `call_id` in the IR (the id follow-ups refer to, docs/upstreams.md "Cross-dialect
    mappings").
    """

    def __init__(self, model: str, tool_names: dict[str, str] | None = None) -> None:
        self.model = model
        self.tool_names = tool_names or {}  # Codex name -> client name (upstream_tool_names)
        self.started = False
        self.done = False  # a terminal event or an error was emitted: ignore the rest
        self.saw_tool_call = False
        self._calls: dict[str, _Call] = {}  # item id -> call
        self._early_args: dict[str, list[str]] = {}  # item id -> fragments before its `added`
        self._text_items: set[str] = set()  # item ids whose text came as deltas
        self._thought_items: set[str] = set()
        self._summary_parts: dict[str, int] = {}
        self._finished: set[str] = set()  # item ids whose output_item.done was handled
        self._active: str | None = None  # the call whose events go out now (see _order)
        self._held: list[ir.Event] = []  # other items' events, waiting for it to end
        self._handlers = {
            "response.output_text.delta": self._text_delta,
            "response.refusal.delta": self._text_delta,
            "response.reasoning_summary_text.delta": self._thought_delta,
            "response.reasoning_text.delta": self._thought_delta,
            "response.reasoning_summary_part.added": self._summary_part,
            "response.output_item.added": self._item_added,
            "response.function_call_arguments.delta": self._args_delta,
            "response.custom_tool_call_input.delta": self._custom_delta,
            "response.output_item.done": self._item_done,
            "response.completed": self._completed,
            "response.incomplete": self._completed,
            "response.failed": self._failed,
            "error": self._error,
        }

    def feed(self, obj: dict[str, Any]) -> list[ir.Event]:
        try:
            return self._order(self._feed(obj))
        except Exception:  # a decoder never raises; a malformed event is skipped
            return []

    # ---------------------------------------------------------------- one call at a time

    def _order(self, events: list[ir.Event]) -> list[ir.Event]:
        """Codex may interleave output items (a second call starts before the first is done).
        The IR stream is kept sequential, as every client encoder needs (Anthropic has one open
        block at a time): while a call is open, the other items' events wait, and go out when
        it ends. A waiting call that has ended by then goes out without its fragments: its
        ToolCallEnd carries the final arguments, which encoders send whole."""
        out: list[ir.Event] = []
        for event in events:
            self._place(event, out)
        return out

    def _place(self, event: ir.Event, out: list[ir.Event]) -> None:
        if self._active is None:
            out.append(event)
            if isinstance(event, ir.ToolCallStart):
                self._active = event.id
            return
        mine = isinstance(event, ir.ToolCallDelta | ir.ToolCallEnd) and event.id == self._active
        if mine:
            out.append(event)
            if isinstance(event, ir.ToolCallEnd):
                self._active = None
                held, self._held = self._held, []
                ended = {e.id for e in held if isinstance(e, ir.ToolCallEnd)}
                for e in held:
                    if not (isinstance(e, ir.ToolCallDelta) and e.id in ended):
                        self._place(e, out)
        elif isinstance(event, ir.UsageUpdate):
            out.append(event)  # opens no block
        elif isinstance(event, ir.Finish | ir.StreamError):
            # the end: the open call never ended (an error); what waited goes out before it
            self._active = None
            held, self._held = self._held, []
            out.extend(held)
            out.append(event)
        else:
            self._held.append(event)

    def finish(self) -> list[ir.Event]:
        """End of the upstream stream. Without a terminal event the answer is incomplete: say
        so (Codex CLI: "stream closed before response.completed"), never end cleanly."""
        if self.done:
            return []
        self.done = True
        return self._order([
            ir.StreamError(
                "Codex stream closed before response.completed",
                502,
                "stream_incomplete",
            )
        ])  # fmt: skip

    def _feed(self, obj: Any) -> list[ir.Event]:
        if not isinstance(obj, dict) or self.done:
            return []
        kind = obj.get("type")
        response = obj.get("response")
        if kind in ("response.created", "response.in_progress"):
            return self._start(response)
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return []  # codex.rate_limits, content_part.*, *.done duplicates…
        events = handler(obj)
        if events and not self.started:
            events = self._start(response) + events  # a stream without response.created
        return events

    def _start(self, response: Any) -> list[ir.Event]:
        if self.started:
            return []
        self.started = True
        rid = model = None
        if isinstance(response, dict):
            rid, model = _str(response.get("id")), _str(response.get("model"))
        return [
            ir.StreamStart(
                id=rid or "resp_" + secrets.token_hex(12),
                model=model or self.model,
            )
        ]

    # ---------------------------------------------------------------- text and reasoning

    def _text_delta(self, obj: dict[str, Any]) -> list[ir.Event]:
        delta = _str(obj.get("delta"))
        if not delta:
            return []
        self._text_items.add(str(obj.get("item_id")))
        return [ir.TextDelta(delta)]

    def _thought_delta(self, obj: dict[str, Any]) -> list[ir.Event]:
        delta = _str(obj.get("delta"))
        if not delta:
            return []
        self._thought_items.add(str(obj.get("item_id")))
        return [ir.ThinkingDelta(delta)]

    def _summary_part(self, obj: dict[str, Any]) -> list[ir.Event]:
        item_id = str(obj.get("item_id"))
        seen = self._summary_parts.get(item_id, 0)
        self._summary_parts[item_id] = seen + 1
        # summary parts are separate paragraphs; without a separator they would run together
        return [ir.ThinkingDelta("\n\n")] if seen else []

    def _message_done(self, item: dict[str, Any]) -> list[ir.Event]:
        if str(item.get("id")) in self._text_items:
            return []
        content = item.get("content")
        out: list[ir.Event] = []
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                text = _str(part.get("text")) or _str(part.get("refusal"))
                if text:
                    out.append(ir.TextDelta(text))
        return out

    def _reasoning_done(self, item: dict[str, Any]) -> list[ir.Event]:
        out: list[ir.Event] = []
        if str(item.get("id")) not in self._thought_items:
            summary = item.get("summary")
            texts = [
                s["text"]
                for s in (summary if isinstance(summary, list) else [])
                if isinstance(s, dict) and isinstance(s.get("text"), str) and s["text"]
            ]
            if texts:
                out.append(ir.ThinkingDelta("\n\n".join(texts)))
        encrypted = _str(item.get("encrypted_content"))
        if encrypted:
            out.append(ir.ThinkingDelta("", signature=ir.CODEX_REASONING_PREFIX + encrypted))
        return out

    # ---------------------------------------------------------------- tool calls

    def _item_added(self, obj: dict[str, Any]) -> list[ir.Event]:
        item = obj.get("item")
        if not isinstance(item, dict) or item.get("type") not in (
            "function_call",
            "custom_tool_call",
        ):
            return []
        key = self._key(item)
        if key in self._calls:
            return []
        return self._open(item, key)[1]

    @staticmethod
    def _key(item: dict[str, Any]) -> str:
        return _str(item.get("id")) or _str(item.get("call_id")) or ""

    def _open(self, item: dict[str, Any], key: str) -> tuple[_Call, list[ir.Event]]:
        self.saw_tool_call = True
        custom = item.get("type") == "custom_tool_call"
        call_id = _str(item.get("call_id")) or key or "call_" + secrets.token_hex(12)
        call = _Call(call_id, custom)
        self._calls[key] = call
        name = _str(item.get("name")) or ""
        events: list[ir.Event] = [ir.ToolCallStart(call_id, self.tool_names.get(name, name))]
        early = self._early_args.pop(key, [])
        if custom:
            call.raw.extend(early)
        else:
            initial = _str(item.get("arguments")) or ""
            text = "".join(early) or initial
            if text:
                call.sent = text
                events.append(ir.ToolCallDelta(call_id, text))
        return call, events

    def _args_delta(self, obj: dict[str, Any]) -> list[ir.Event]:
        delta = _str(obj.get("delta"))
        key = str(obj.get("item_id"))
        if not delta:
            return []
        call = self._calls.get(key)
        if call is None:  # arguments before the item was announced: hold them
            self._early_args.setdefault(key, []).append(delta)
            return []
        if call.custom or call.ended:
            return []
        call.sent += delta
        return [ir.ToolCallDelta(call.call_id, delta)]

    def _custom_delta(self, obj: dict[str, Any]) -> list[ir.Event]:
        # Custom tools (apply_patch with a lark grammar) take a raw string, not JSON. The IR call
        # carries it as {"input": …}; its JSON text is emitted whole at the end (escaping
        # fragments is possible but not worth it for one patch).
        delta = _str(obj.get("delta"))
        key = str(obj.get("item_id"))
        if not delta:
            return []
        call = self._calls.get(key)
        if call is None:
            self._early_args.setdefault(key, []).append(delta)
        elif not call.ended:
            call.raw.append(delta)
        return []

    def _call_done(self, item: dict[str, Any]) -> list[ir.Event]:
        key = self._key(item)
        call = self._calls.get(key)
        events: list[ir.Event] = []
        if call is None:  # no `added` was seen for it
            call, events = self._open(item, key)
        if call.ended:
            return []
        if call.custom:
            text = _str(item.get("input"))
            events += self._close(call, "".join(call.raw) if text is None else text)
        else:
            final = _str(item.get("arguments"))
            events += self._close(call, call.sent if final is None else final)
        return events

    def _close(self, call: _Call, text: str) -> list[ir.Event]:
        call.ended = True
        if call.custom:
            args: dict[str, Any] = {"input": text}
            return [
                ir.ToolCallDelta(call.call_id, json.dumps(args, ensure_ascii=False)),
                ir.ToolCallEnd(call.call_id, args),
            ]
        events: list[ir.Event] = []
        if text.startswith(call.sent) and len(text) > len(call.sent):
            events.append(ir.ToolCallDelta(call.call_id, text[len(call.sent) :]))
        events.append(ir.ToolCallEnd(call.call_id, _parse_args(text)))
        return events

    def _close_open_calls(self) -> list[ir.Event]:
        events: list[ir.Event] = []
        for call in self._calls.values():
            if not call.ended:
                events += self._close(call, "".join(call.raw) if call.custom else call.sent)
        return events

    def _item_done(self, obj: dict[str, Any]) -> list[ir.Event]:
        item = obj.get("item")
        if not isinstance(item, dict):
            return []
        return self._final_item(item)

    def _final_item(self, item: dict[str, Any]) -> list[ir.Event]:
        """A finished output item (output_item.done, or response.completed's output): what its
        deltas did not already give. The same item twice gives nothing the second time."""
        item_id = _str(item.get("id"))
        if item_id is not None:
            if item_id in self._finished:
                return []
            self._finished.add(item_id)
        kind = item.get("type")
        if kind == "message":
            return self._message_done(item)
        if kind == "reasoning":
            return self._reasoning_done(item)
        if kind in ("function_call", "custom_tool_call"):
            return self._call_done(item)
        if kind == "web_search_call":
            return self._search_done(item)
        return []

    def _search_done(self, item: dict[str, Any]) -> list[ir.Event]:
        """A search the backend ran: its query and the pages it found (`action.sources`, sent
        when `include` asks for them) as one WebSearchPart."""
        action = item.get("action")
        action = action if isinstance(action, dict) else {}
        query = _str(action.get("query"))
        if query is None:
            queries = action.get("queries")
            query = queries[0] if isinstance(queries, list) and queries else ""
        results: list[dict[str, str]] = []
        sources = action.get("sources")
        for src in sources if isinstance(sources, list) else []:
            url = _str(src.get("url")) if isinstance(src, dict) else None
            if url:
                results.append({"url": url, "title": _str(src.get("title")) or ""})
        search_id = _str(item.get("id")) or "ws_" + secrets.token_hex(12)
        return [ir.WebSearchPart(search_id, str(query), results)]

    # ---------------------------------------------------------------- the end

    def _completed(self, obj: dict[str, Any]) -> list[ir.Event]:
        self.done = True
        response = obj.get("response")
        response = response if isinstance(response, dict) else {}
        events: list[ir.Event] = []
        # the real backend repeats every item in `output`: an item whose done event never came
        # (arguments only here) is taken from it
        output = response.get("output")
        for item in output if isinstance(output, list) else []:
            if isinstance(item, dict):
                events += self._final_item(item)
        usage = response.get("usage")
        if isinstance(usage, dict):
            events.append(ir.UsageUpdate(_usage(usage)))
        events += self._close_open_calls()
        reason: ir.FinishReason = "tool_calls" if self.saw_tool_call else "stop"
        if obj.get("type") == "response.incomplete":
            details = response.get("incomplete_details")
            why = details.get("reason") if isinstance(details, dict) else None
            if why == "max_output_tokens":
                reason = "length"
            elif why == "content_filter":
                reason = "content_filter"
        events.append(ir.Finish(reason))
        return events

    def _failed(self, obj: dict[str, Any]) -> list[ir.Event]:
        response = obj.get("response")
        err = response.get("error") if isinstance(response, dict) else None
        err = err if isinstance(err, dict) else {}
        code = _str(err.get("code")) or _str(err.get("type"))
        message = _str(err.get("message")) or "Codex response failed"
        return self._stream_error(message, code, _str(err.get("type")))

    def _error(self, obj: dict[str, Any]) -> list[ir.Event]:
        # `{"type":"error","code","message","param"}`; tolerate a nested `error` object too
        nested = obj.get("error")
        if isinstance(nested, dict):
            code = _str(nested.get("code")) or _str(nested.get("type"))
            message = _str(nested.get("message")) or "Codex stream error"
            return self._stream_error(message, code, _str(nested.get("type")))
        return self._stream_error(
            _str(obj.get("message")) or "Codex stream error", _str(obj.get("code"))
        )

    def _stream_error(
        self, message: str, code: str | None, kind: str | None = None
    ) -> list[ir.Event]:
        self.done = True
        return [ir.StreamError(message=message, status=error_status(code, kind), code=code)]


# ================================================================ non-stream pass-through


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def completed_response(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The final `response` object of a Codex stream, for a non-stream Responses client.

    The backend may send `output: []` in response.completed (CLIProxyAPI rebuilds it); then the
    output is the `output_item.done` items in `output_index` order. None when the stream had no
    terminal event (completed / incomplete / failed)."""
    final: dict[str, Any] | None = None
    done: list[tuple[int, int, Any]] = []
    for seq, obj in enumerate(events):
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if kind in _TERMINAL and isinstance(obj.get("response"), dict):
            final = obj["response"]
        elif kind == "response.output_item.done" and isinstance(obj.get("item"), dict):
            index = obj.get("output_index")
            done.append((index if fields.is_int(index) else 1 << 62, seq, obj["item"]))
    if final is None:
        return None
    out = dict(final)
    output = out.get("output")
    if not isinstance(output, list) or not output:
        done.sort(key=lambda t: (t[0], t[1]))
        out["output"] = [item for _, _, item in done]
    return out
