"""Anthropic Messages client dialect (`POST /v1/messages`, `/v1/messages/count_tokens`, model list).

Wire facts: docs/upstreams.md "Anthropic Messages" (request, response, stream grammar, errors), §7.5
(model list), §8
(mappings) and docs/upstreams.md "Claude Code" (what Claude Code sends and needs). Only this
dialect's JSON and
the IR are known here (docs/architecture.md "Rules of the house").

What is dropped, and where:
- `cache_control` anywhere, `metadata`, `context_management` and the Claude Code billing-header
  system block are ignored without a note: Claude Code sends them on every request and they have
  no upstream meaning (docs/upstreams.md "Cross-dialect mappings"). Their values are kept in
  `req.extras["anthropic"]`.
- Everything else that cannot be translated (server tools, server-tool blocks, `file` sources,
  `service_tier`, `container`, `mcp_servers`, unknown top-level fields) goes through
  `_Parser.drop()`, which appends one human-readable line to `req.dropped`.
"""

from __future__ import annotations

import secrets
from typing import Any

from cliproxy.translators import fields
from cliproxy.translators import ir
from cliproxy.translators.media import EXT_MIME
from cliproxy.translators.media import IMAGE_EXT_MIME
from cliproxy.translators.media import mime_from_name
from cliproxy.translators.sse import dumps
from cliproxy.translators.sse import event_frame
from cliproxy.translators.stream import SafeStreamEncoder

BILLING_PREFIX = "x-anthropic-billing-header:"

ROLES = frozenset({"user", "assistant", "system"})
EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})

# Ignored without a note (sent by Claude Code on every request; no upstream meaning).
_SILENT_KEYS = frozenset({"metadata", "context_management", "cache_control"})
# Known but untranslatable: ignored with a note.
_NOTED_KEYS = frozenset(
    {"service_tier", "container", "mcp_servers", "inference_geo", "speed", "diagnostics"}
)
# Claude Code's fast mode, carried as ir.Request.fast rather than noted as ignored.
_FAST_LANE = frozenset({("speed", "fast"), ("service_tier", "fast"), ("service_tier", "priority")})
# Translated by parse_request.
_KNOWN_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "output_format",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
    }
)

# Extension -> MIME for image and document URLs: Claude's URL sources are images or PDFs, so any
# other extension keeps the block's default. The real type is only known once fetched; the
# upstream renderer that fetches uses the response's content type.
_URL_MIME = {**IMAGE_EXT_MIME, "pdf": EXT_MIME["pdf"]}

# IR finish reason -> stop_reason (docs/upstreams.md "Cross-dialect mappings").
STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}

# HTTP status -> Anthropic error type (docs/upstreams.md "Anthropic Messages"; Anthropic's
# documented error codes).
# How a Gemini thought signature reaches Anthropic clients (client_signature).
GEMINI_SIGNATURE_PREFIX = "gemini:"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Any constant RFC 3339 date works: the SDK only parses it (docs/upstreams.md "Model lists").
MODEL_CREATED_AT = "2025-06-17T00:00:00Z"


# ================================================================ request


def parse_request(body: object, *, count_tokens: bool = False) -> ir.Request:
    """A /v1/messages body -> IR. With `count_tokens` (the count_tokens endpoint) `max_tokens` is
    optional and `stream` is ignored. Raises only ir.RequestError."""
    if not isinstance(body, dict):
        raise ir.RequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ir.RequestError("model is required and must be a non-empty string", "model")
    p = _Parser()
    req = ir.Request(model=model, messages=[])
    req.max_tokens = _max_tokens(body.get("max_tokens"), required=not count_tokens)
    req.system = p.system(body.get("system"))
    req.messages = p.messages(body.get("messages"))
    req.tools = p.tools(body.get("tools"))
    req.web_search = p.web_search
    req.tool_choice, req.parallel_tool_calls = _tool_choice(body.get("tool_choice"))
    output_config = _object_or_none(body.get("output_config"), "output_config")
    req.thinking = p.thinking(body.get("thinking"), _effort(output_config))
    req.response_schema = _output_schema(output_config, body.get("output_format"))
    if req.response_schema is not None:
        req.response_mime_type = "application/json"
    req.temperature = fields.number(body.get("temperature"), "temperature")
    req.top_p = fields.number(body.get("top_p"), "top_p")
    req.top_k = fields.integer(body.get("top_k"), "top_k")
    req.stop = _stop_sequences(body.get("stop_sequences"))
    req.stream = False if count_tokens else bool(fields.boolean(body.get("stream"), "stream"))
    # Claude Code's fast mode; an upstream with a priority lane (Codex) honours it
    req.fast = body.get("speed") == "fast" or body.get("service_tier") in ("fast", "priority")
    p.leftovers(body, output_config)
    req.extras.update(p.extras())
    req.dropped = p.dropped
    return req


def parse_count_tokens(body: object) -> ir.Request:
    """A /v1/messages/count_tokens body -> IR (no max_tokens, no stream)."""
    return parse_request(body, count_tokens=True)


class _Parser:
    """Per-request parsing state: dropped-feature notes, values kept aside, and the tool names seen
    so far (a tool_result carries only the id; Gemini needs the name, docs/upstreams.md
    "Cross-dialect mappings")."""

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.kept: dict[str, Any] = {}
        self.tool_names: dict[str, str] = {}
        self.web_search = False  # a web_search_… server tool was offered
        self.searches: dict[str, ir.WebSearchPart] = {}  # server_tool_use id -> its search

    def drop(self, note: str) -> None:
        """The one place where untranslatable input is recorded (see the module docstring)."""
        self.dropped.append(note)

    def signature(self, sig: str | None, param: str) -> str | None:
        """A thinking block's signature as the IR carries it (client_signature, reversed). One
        this proxy never handed out (Anthropic's own, from a session begun elsewhere) means
        nothing to Gemini or Codex: it is dropped, and Gemini gets its bypass value instead."""
        if not sig:
            return None
        if sig.startswith(GEMINI_SIGNATURE_PREFIX):
            return sig[len(GEMINI_SIGNATURE_PREFIX) :] or None
        if sig.startswith(ir.CODEX_REASONING_PREFIX):
            return sig
        self.drop(f"{param}.signature: not from an upstream this proxy serves; dropped")
        return None

    def extras(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.kept:
            out["anthropic"] = self.kept
        return out

    def leftovers(self, body: dict, output_config: dict | None) -> None:
        for key, value in body.items():
            if key in _KNOWN_KEYS:
                continue
            self.kept[key] = value
            if isinstance(value, str) and (key, value) in _FAST_LANE:
                continue  # carried as req.fast (Codex's priority lane)
            if key in _NOTED_KEYS:
                self.drop(f"{key}: not supported by this proxy, ignored")
            elif key not in _SILENT_KEYS:
                self.drop(f"{key}: unknown field, ignored")
        for key in output_config or {}:
            if key not in ("effort", "format"):
                self.drop(f"output_config.{key}: not supported by this proxy, ignored")

    # ------------------------------------------------------------ system

    def system(self, value: object) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, list):
            raise ir.RequestError("system must be a string or a list of text blocks", "system")
        out: list[str] = []
        for i, block in enumerate(value):
            param = f"system[{i}]"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise ir.RequestError("system blocks must be text blocks", f"{param}.type")
            text = fields.string(block.get("text"), f"{param}.text")
            if text.startswith(BILLING_PREFIX):
                # Claude Code's per-run billing marker: meaningless upstream (docs/upstreams.md
                # "Claude Code")
                self.kept["billing_header"] = text
                continue
            out.append(text)
        return out

    # ------------------------------------------------------------ messages

    def messages(self, value: object) -> list[ir.Message]:
        if not isinstance(value, list) or not value:
            raise ir.RequestError("messages must be a non-empty list", "messages")
        out: list[ir.Message] = []
        for i, msg in enumerate(value):
            param = f"messages[{i}]"
            if not isinstance(msg, dict):
                raise ir.RequestError("each message must be an object", param)
            role = msg.get("role")
            if not isinstance(role, str) or role not in ROLES:
                raise ir.RequestError(
                    "role must be one of user, assistant, system", f"{param}.role"
                )
            if "content" not in msg:
                raise ir.RequestError("content is required", f"{param}.content")
            out.append(ir.Message(role=role, parts=self.content(msg["content"], param)))
        return out

    def content(self, value: object, param: str) -> list[ir.Part]:
        param = f"{param}.content"
        if isinstance(value, str):
            return [ir.TextPart(value)]
        if not isinstance(value, list):
            raise ir.RequestError("content must be a string or a list of content blocks", param)
        parts: list[ir.Part] = []
        for j, block in enumerate(value):
            parts.extend(self.block(block, f"{param}[{j}]"))
        return parts

    def block(self, block: object, param: str) -> list[ir.Part]:
        block, kind = _block_type(block, param)
        match kind:
            case "text":
                return [ir.TextPart(fields.string(block.get("text"), f"{param}.text"))]
            case "image":
                return self.image(block, param)
            case "document":
                return self.document(block, param)
            case "tool_use":
                return [self.tool_use(block, param)]
            case "tool_result":
                return [self.tool_result(block, param)]
            case "thinking":
                text = fields.string(block.get("thinking"), f"{param}.thinking")
                sig = fields.optional_string(block.get("signature"), f"{param}.signature")
                return [ir.ThinkingPart(text, self.signature(sig, param))]
            case "redacted_thinking":
                data = fields.string(block.get("data"), f"{param}.data")
                return [ir.ThinkingPart("", signature=data, redacted=True)]
            case "server_tool_use" if block.get("name") == "web_search":
                return self.server_search(block, param)
            case "web_search_tool_result":
                return self.search_result(block, param)
        # other server tools' blocks, container_upload, search_result, …
        self.drop(f"{param}: {kind} block dropped (no equivalent upstream)")
        return []

    def server_search(self, block: dict, param: str) -> list[ir.Part]:
        """A web search the upstream ran (`server_tool_use` name web_search); its results come
        in the `web_search_tool_result` that follows and are added to the same part."""
        search_id = fields.string(block.get("id"), f"{param}.id")
        args = block.get("input")
        query = args.get("query") if isinstance(args, dict) else None
        part = ir.WebSearchPart(search_id, query if isinstance(query, str) else "")
        self.searches[search_id] = part
        return [part]

    def search_result(self, block: dict, param: str) -> list[ir.Part]:
        search_id = fields.string(block.get("tool_use_id"), f"{param}.tool_use_id")
        part = self.searches.get(search_id)
        if part is None:
            self.drop(f"{param}: web_search_tool_result without its server_tool_use dropped")
            return []
        content = block.get("content")
        for entry in content if isinstance(content, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                title = entry.get("title")
                part.results.append(
                    {"url": entry["url"], "title": title if isinstance(title, str) else ""}
                )
        return []

    def image(self, block: dict, param: str) -> list[ir.Part]:
        param = f"{param}.source"
        src = block.get("source")
        if not isinstance(src, dict):
            raise ir.RequestError("source must be an object", param)
        match src.get("type"):
            case "base64":
                mime = fields.string(src.get("media_type"), f"{param}.media_type")
                return [ir.ImagePart(mime, data=fields.string(src.get("data"), f"{param}.data"))]
            case "url":
                url = fields.string(src.get("url"), f"{param}.url")
                return [ir.ImagePart(_url_mime(url, "image/jpeg"), url=url)]
            case "file":
                self.drop(f"{param}: file source dropped (the Files API is not proxied)")
                return []
        raise ir.RequestError("image source.type must be base64 or url", f"{param}.type")

    def document(self, block: dict, param: str) -> list[ir.Part]:
        param = f"{param}.source"
        src = block.get("source")
        if not isinstance(src, dict):
            raise ir.RequestError("source must be an object", param)
        match src.get("type"):
            case "base64":  # a PDF (or other binary document) rides as inline media
                mime = fields.string(src.get("media_type"), f"{param}.media_type")
                return [ir.ImagePart(mime, data=fields.string(src.get("data"), f"{param}.data"))]
            case "text":
                return [ir.TextPart(fields.string(src.get("data"), f"{param}.data"))]
            case "url":
                url = fields.string(src.get("url"), f"{param}.url")
                return [ir.ImagePart(_url_mime(url, "application/pdf"), url=url)]
            case "content":
                return self.media_blocks(src.get("content"), f"{param}.content")
            case "file":
                self.drop(f"{param}: file source dropped (the Files API is not proxied)")
                return []
        raise ir.RequestError(
            "document source.type must be base64, text, url or content", f"{param}.type"
        )

    def media_blocks(self, value: object, param: str) -> list[ir.TextPart | ir.ImagePart]:
        """Content made of text / image / document blocks only (tool_result, document content)."""
        if value is None:
            return []
        if isinstance(value, str):
            return [ir.TextPart(value)]
        if not isinstance(value, list):
            raise ir.RequestError("content must be a string or a list of content blocks", param)
        out: list[ir.TextPart | ir.ImagePart] = []
        for j, block in enumerate(value):
            bparam = f"{param}[{j}]"
            block, kind = _block_type(block, bparam)
            if kind in ("text", "image", "document"):
                out.extend(p for p in self.block(block, bparam) if _is_media(p))
            else:  # tool_reference, search_result, …
                self.drop(f"{bparam}: {kind} block dropped (no equivalent upstream)")
        return out

    def tool_use(self, block: dict, param: str) -> ir.ToolCallPart:
        call_id = fields.string(block.get("id"), f"{param}.id")
        name = fields.string(block.get("name"), f"{param}.name")
        args = block.get("input")
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            raise ir.RequestError("tool_use input must be an object", f"{param}.input")
        self.tool_names[call_id] = name
        return ir.ToolCallPart(call_id, name, args)

    def tool_result(self, block: dict, param: str) -> ir.ToolResultPart:
        call_id = fields.string(block.get("tool_use_id"), f"{param}.tool_use_id")
        content = self.media_blocks(block.get("content"), f"{param}.content")
        is_error = bool(fields.boolean(block.get("is_error"), f"{param}.is_error"))
        return ir.ToolResultPart(call_id, content, self.tool_names.get(call_id), is_error)

    # ------------------------------------------------------------ tools and thinking

    def tools(self, value: object) -> list[ir.Tool]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ir.RequestError("tools must be a list", "tools")
        out: list[ir.Tool] = []
        for i, tool in enumerate(value):
            param = f"tools[{i}]"
            if not isinstance(tool, dict):
                raise ir.RequestError("each tool must be an object", param)
            kind = tool.get("type")
            if isinstance(kind, str) and kind.startswith("web_search_"):
                # Anthropic's web search server tool: an upstream with its own search runs it
                # (Codex `web_search`); the answer brings server_tool_use + web_search_tool_result
                self.web_search = True
                continue
            if kind not in (None, "custom") and "input_schema" not in tool:
                # server tools (web_search_…, bash_…, text_editor_…) run on Anthropic's side
                self.drop(f"{param}: Anthropic server tool {kind!r} dropped")
                continue
            name = fields.string(tool.get("name"), f"{param}.name")
            if not name:
                raise ir.RequestError("tool name must not be empty", f"{param}.name")
            desc = fields.optional_string(tool.get("description"), f"{param}.description") or ""
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise ir.RequestError(
                    "tool input_schema must be an object", f"{param}.input_schema"
                )
            out.append(ir.Tool(name, desc, schema))
        return out

    def thinking(self, value: object, effort: ir.Effort | None) -> ir.Thinking | None:
        """`thinking` (+ `output_config.effort`) -> ir.Thinking (docs/upstreams.md "Cross-dialect
        mappings")."""
        if value is None:
            # effort alone still says how hard the model should think
            return ir.Thinking(effort=effort) if effort else None
        if not isinstance(value, dict):
            raise ir.RequestError("thinking must be an object", "thinking")
        shown = value.get("display") != "omitted"
        match value.get("type"):
            case "enabled":
                budget = fields.integer(value.get("budget_tokens"), "thinking.budget_tokens")
                if budget is None or budget < 0:
                    raise ir.RequestError(
                        "budget_tokens must be a non-negative integer", "thinking.budget_tokens"
                    )
                return ir.Thinking(budget=budget, include_thoughts=shown)
            case "disabled":
                return ir.Thinking(effort="none", include_thoughts=False)
            case "adaptive":
                return ir.Thinking(effort=effort or "auto", include_thoughts=shown)
            case "between_tools":
                self.drop("thinking.type between_tools: treated as adaptive")
                return ir.Thinking(effort=effort or "auto", include_thoughts=shown)
        raise ir.RequestError(
            "thinking.type must be enabled, disabled or adaptive", "thinking.type"
        )


# ---------------------------------------------------------------- request helpers


def _block_type(block: object, param: str) -> tuple[dict[str, Any], str]:
    """The block as a dict and its `type` (validated)."""
    if not isinstance(block, dict):
        raise ir.RequestError("each content block must be an object", param)
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        raise ir.RequestError("content block type must be a string", f"{param}.type")
    return block, kind


def _is_media(part: ir.Part) -> bool:
    return isinstance(part, ir.TextPart | ir.ImagePart)


def _url_mime(url: str, default: str) -> str:
    return mime_from_name(url.split("?", 1)[0].split("#", 1)[0], default, _URL_MIME)


def _max_tokens(value: object, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    n = fields.integer(value, "max_tokens")
    if n is None or n <= 0:
        raise ir.RequestError("max_tokens is required and must be a positive integer", "max_tokens")
    return n


def _stop_sequences(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ir.RequestError("stop_sequences must be a list of strings", "stop_sequences")
    return [fields.string(s, f"stop_sequences[{i}]") for i, s in enumerate(value)]


def _object_or_none(value: object, param: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ir.RequestError(f"{param} must be an object", param)
    return value


def _tool_choice(value: object) -> tuple[ir.ToolChoice | None, bool | None]:
    """-> (choice, parallel_tool_calls); `any` means "some tool" (required)."""
    choice = _object_or_none(value, "tool_choice")
    if choice is None:
        return None, None
    parallel = False if fields.boolean(choice.get("disable_parallel_tool_use"), _DPTU) else None
    match choice.get("type"):
        case "auto":
            return ir.ToolChoice("auto"), parallel
        case "any":
            return ir.ToolChoice("required"), parallel
        case "none":
            return ir.ToolChoice("none"), parallel
        case "tool":
            name = fields.string(choice.get("name"), "tool_choice.name")
            if not name:
                raise ir.RequestError("tool_choice.name must not be empty", "tool_choice.name")
            return ir.ToolChoice("tool", name), parallel
    raise ir.RequestError("tool_choice.type must be auto, any, tool or none", "tool_choice.type")


_DPTU = "tool_choice.disable_parallel_tool_use"


def _effort(output_config: dict | None) -> ir.Effort | None:
    effort = (output_config or {}).get("effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in EFFORTS:
        raise ir.RequestError(
            "output_config.effort must be one of low, medium, high, xhigh, max",
            "output_config.effort",
        )
    return effort


def _output_schema(output_config: dict | None, output_format: object) -> dict | None:
    """Structured outputs: `output_config.format` (GA) or the older top-level `output_format`."""
    if output_config is not None and output_config.get("format") is not None:
        return _json_schema_format(output_config["format"], "output_config.format")
    if output_format is not None:
        return _json_schema_format(output_format, "output_format")
    return None


def _json_schema_format(value: object, param: str) -> dict:
    fmt = _object_or_none(value, param) or {}
    if fmt.get("type") != "json_schema":
        raise ir.RequestError(f"{param}.type must be json_schema", f"{param}.type")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise ir.RequestError(f"{param}.schema must be an object", f"{param}.schema")
    return schema


# ================================================================ non-stream response


def render_response(resp: ir.Response) -> dict[str, Any]:
    """IR answer -> the /v1/messages JSON body."""
    calls = any(isinstance(p, ir.ToolCallPart) for p in resp.parts)
    return {
        "id": _message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": _render_parts(resp.parts),
        "stop_reason": (
            # a cut answer says so even with calls: the client must not run a call cut short
            "tool_use"
            if calls and resp.finish_reason != "length"
            else STOP_REASONS.get(resp.finish_reason, "end_turn")
        ),
        "stop_sequence": None,
        "usage": _usage(resp.usage),
    }


def _render_parts(
    parts: list[ir.TextPart | ir.ImagePart | ir.ThinkingPart | ir.ToolCallPart | ir.WebSearchPart],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    prev: object = None
    for part in parts:
        match part:
            case ir.ThinkingPart():
                out.append(_thinking_block(part))
            case ir.TextPart(text=text):
                out.append({"type": "text", "text": text})
            case ir.ToolCallPart(signature=sig) if sig and not _carries(prev, sig):
                # thought-signature rule (brief): a Gemini functionCall signature rides on an empty
                # thinking block right before the tool_use, which Claude clients send back verbatim
                out.append(_thinking_block(ir.ThinkingPart("", sig)))
                out.append(_tool_use_block(part))
            case ir.ToolCallPart():
                out.append(_tool_use_block(part))
            case ir.WebSearchPart():
                out += [_server_tool_use(part, part.query), _search_result(part)]
            case _:
                # ImagePart: Anthropic assistant content has no image block; nothing to emit
                pass
        prev = part
    return out


def client_signature(sig: str | None) -> str | None:
    """A signature as Anthropic clients get it. Every one this proxy hands out is an upstream's:
    Codex reasoning already carries ir.CODEX_REASONING_PREFIX, a Gemini thought signature gets
    GEMINI_SIGNATURE_PREFIX, so that one a client got from Anthropic itself (base64 too, and
    refused by Gemini as "corrupted") is told apart when history comes back
    (docs/upstreams.md "Thought signatures")."""
    if not sig or sig.startswith(ir.CODEX_REASONING_PREFIX):
        return sig
    return GEMINI_SIGNATURE_PREFIX + sig


def _carries(prev: object, sig: str) -> bool:
    """Whether the previous part already is a thinking block carrying this signature. A preceding
    thinking part with another (or no) signature does not, so the tool's signature still gets its
    own block instead of being lost."""
    return isinstance(prev, ir.ThinkingPart) and not prev.redacted and prev.signature == sig


def _thinking_block(part: ir.ThinkingPart) -> dict[str, Any]:
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.signature or ""}
    sig = client_signature(part.signature)
    return {"type": "thinking", "thinking": part.text, "signature": sig or ""}


def _search_id(part: ir.WebSearchPart) -> str:
    return part.id if part.id.startswith("srvtoolu_") else "srvtoolu_" + part.id


def _server_tool_use(part: ir.WebSearchPart, query: str | None) -> dict[str, Any]:
    """A web search the upstream ran, as Anthropic's own web_search server tool reports it."""
    args = {} if query is None else {"query": query}
    return {"type": "server_tool_use", "id": _search_id(part), "name": "web_search", "input": args}


def _search_result(part: ir.WebSearchPart) -> dict[str, Any]:
    content = [
        {
            "type": "web_search_result",
            "url": r["url"],
            "title": r.get("title", ""),
            "encrypted_content": "",
            "page_age": None,
        }
        for r in part.results
    ]
    return {"type": "web_search_tool_result", "tool_use_id": _search_id(part), "content": content}


def _tool_use_block(part: ir.ToolCallPart) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": part.id or _new_id("toolu_"),
        "name": part.name,
        "input": part.arguments,
    }


def _usage(u: ir.Usage) -> dict[str, int]:
    """Anthropic counts cached input apart from input_tokens (docs/upstreams.md "Cross-dialect
    mappings")."""
    return {
        "input_tokens": max(u.input_tokens - u.cached_tokens, 0),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
    }


def _message_id(raw: str) -> str:
    if raw.startswith("msg_"):
        return raw
    return f"msg_{raw}" if raw else _new_id("msg_")


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


# ================================================================ stream


class StreamEncoder(SafeStreamEncoder):
    """IR events -> Anthropic SSE bytes (docs/upstreams.md "Anthropic Messages" grammar, every frame
    with `event:`).

    message_start is sent lazily on the first content event, so a UsageUpdate that arrives before
    any content still gives it input_tokens. One block is open at a time; indexes count from 0.
    Never raises (stream.SafeStreamEncoder).
    """

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self._id = ""
        self._started = False
        self._index = -1  # index of the most recently opened block
        self._open: str | None = None  # "text" | "thinking" | "tool_use"
        self._signed = False  # the open thinking block already got its signature_delta
        self._sig: str | None = None  # that signature
        self._prev_sig: str | None = None  # signature of the block just closed, if thinking
        self._tool_id: str | None = None  # IR id of the open tool_use block
        self._args_sent = False  # the open tool_use block got a non-empty input_json_delta
        self._tool_used = False

    # ------------------------------------------------------------ end and errors

    def _final(self) -> list[bytes]:
        out = self._start() + self._close()
        cut = self._finish == "length"  # never run a call cut short
        tool_use = self._tool_used and not cut
        stop = "tool_use" if tool_use else STOP_REASONS.get(self._finish or "", "end_turn")
        delta = {"stop_reason": stop, "stop_sequence": None}
        out.append(_frame({"type": "message_delta", "delta": delta, "usage": self._delta_usage()}))
        out.append(_frame({"type": "message_stop"}))
        return out

    def _error_frames(self, message: str, status: int, code: str | None) -> list[bytes]:
        return [event_frame("error", error_body(status, message))]

    def _fault_frames(self) -> list[bytes]:
        return [event_frame("error", error_body(500, self.FAULT))]

    # ------------------------------------------------------------ events

    def _encode(self, event: ir.Event) -> list[bytes]:
        match event:
            case ir.StreamStart(id=id):
                if not self._started:
                    self._id = id
                return []
            case ir.TextDelta(text=text):
                return self._text(text) if text else []
            case ir.ThinkingDelta(text=text, signature=sig):
                return self._thinking(text, sig) if text or sig else []
            case ir.ToolCallStart():
                return self._tool_start(event)
            case ir.ToolCallDelta(id=id, arguments=fragment):
                if self._open != "tool_use" or id != self._tool_id or not fragment:
                    return []  # a fragment for a block no longer open cannot be placed
                self._args_sent = True
                return [self._delta({"type": "input_json_delta", "partial_json": fragment})]
            case ir.ToolCallEnd():
                return self._tool_end(event)
            case ir.WebSearchPart():
                return self._web_search(event)
            case ir.ImageOut():
                # Anthropic assistant content has no image block; the image is skipped but still
                # ends the open block, as render_response's text / image / text gives two blocks
                out = self._close()
                self._prev_sig = None
                return out
        return self._track(event)  # usage, finish reason, upstream error

    def _text(self, text: str) -> list[bytes]:
        out = self._start()
        if self._open != "text":
            out += self._close()
            out.append(self._open_block({"type": "text", "text": ""}, "text"))
        out.append(self._delta({"type": "text_delta", "text": text}))
        return out

    def _thinking(self, text: str, sig: str | None) -> list[bytes]:
        out = self._start()
        # after its signature a thinking block is complete: more thinking opens a new one
        if self._open != "thinking" or self._signed:
            out += self._close()
            out.append(self._open_block(_EMPTY_THINKING, "thinking"))
        if text:
            out.append(self._delta({"type": "thinking_delta", "thinking": text}))
        if sig:
            shown = client_signature(sig)
            out.append(self._delta({"type": "signature_delta", "signature": shown}))
            self._signed, self._sig = True, sig
        return out

    def _tool_start(self, event: ir.ToolCallStart) -> list[bytes]:
        out = self._start() + self._close()
        if event.signature and event.signature != self._prev_sig:
            # thought-signature rule (brief): carried by an empty thinking block before the call,
            # unless the thinking block just closed carries it already (as in render_response)
            out.append(self._open_block(_EMPTY_THINKING, "thinking"))
            shown = client_signature(event.signature)
            out.append(self._delta({"type": "signature_delta", "signature": shown}))
            out += self._close()
        block = {"type": "tool_use", "id": event.id or _new_id("toolu_"), "name": event.name}
        out.append(self._open_block({**block, "input": {}}, "tool_use"))
        self._tool_id = event.id
        self._args_sent = False
        self._tool_used = True
        return out

    def _web_search(self, part: ir.WebSearchPart) -> list[bytes]:
        """server_tool_use (its input as one input_json_delta, as Anthropic streams it), then the
        web_search_tool_result block whole."""
        out = self._start() + self._close()
        out.append(self._open_block(_server_tool_use(part, None), "server_tool_use"))
        query = dumps({"query": part.query})
        out.append(self._delta({"type": "input_json_delta", "partial_json": query}))
        out += self._close()
        out.append(self._open_block(_search_result(part), "web_search_tool_result"))
        return out + self._close()

    def _tool_end(self, event: ir.ToolCallEnd) -> list[bytes]:
        if self._open != "tool_use" or event.id != self._tool_id:
            return []
        out: list[bytes] = []
        if not self._args_sent and event.arguments:
            # never leave the streamed input as {} when the call has arguments (LiteLLM #25561)
            delta = {"type": "input_json_delta", "partial_json": dumps(event.arguments)}
            out.append(self._delta(delta))
        return out + self._close()

    # ------------------------------------------------------------ frames

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message = {
            "id": _message_id(self._id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**_usage(self._usage), "output_tokens": 0},
        }
        return [_frame({"type": "message_start", "message": message})]

    def _open_block(self, block: dict[str, Any], kind: str) -> bytes:
        self._index += 1
        self._open = kind
        self._signed, self._sig = False, None
        return _frame({"type": "content_block_start", "index": self._index, "content_block": block})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _frame({"type": "content_block_delta", "index": self._index, "delta": delta})

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._prev_sig = self._sig if self._open == "thinking" else None
        self._open = None
        self._tool_id = None
        return [_frame({"type": "content_block_stop", "index": self._index})]

    def _delta_usage(self) -> dict[str, int]:
        # Cumulative totals: the SDK overwrites message_start's values with these (Codex reports
        # usage only at the very end, after message_start went out with zeros).
        return _usage(self._usage)


_EMPTY_THINKING: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}


def _frame(obj: dict[str, Any]) -> bytes:
    """Every Anthropic SSE frame names its type in `event:` (the SDK ignores frames without)."""
    return event_frame(obj["type"], obj)


# ================================================================ errors, models, count_tokens


def error_type(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str) -> dict[str, Any]:
    """docs/configuration.md "Error shapes" Anthropic error shape (also the `event: error`
    payload)."""
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def models_list(ids: list[str]) -> dict[str, Any]:
    """GET /v1/models in the Anthropic shape (docs/upstreams.md "Model lists")."""
    data = [
        {
            "type": "model",
            "id": model_id,
            "display_name": model_id,
            "created_at": MODEL_CREATED_AT,
            "lifecycle": "active",  # required by anthropic 2.12's ModelInfo
        }
        for model_id in ids
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }


def count_tokens_body(n: int) -> dict[str, int]:
    return {"input_tokens": n}
