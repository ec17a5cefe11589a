"""The Gemini dialect: client side (google-genai, Gemini CLI) and upstream side (Code Assist,
AI Studio), which share one body format (docs/upstreams.md "Code Assist", §3, §7.4).

- render_request / StreamDecoder: the upstream direction (IR -> GenerateContentRequest,
  GenerateContentResponse -> IR events). The Code Assist envelope around these bodies, and its
  countTokens body, are code_assist.py's.
- parse_request / render_response / StreamEncoder: a Gemini client served by a non-Gemini
  upstream (IR <-> Gemini client wire format).
- prepare_passthrough: Gemini client -> Gemini upstream keeping every field (the answer's way
  back is pipeline.GeminiPassthrough).

Clients send proto-JSON in mixed case (google-genai 3.4.0: `inlineData{data,mime_type}`,
`functionDeclarations[{parameters_json_schema}]`), so every key is read in both spellings; what
we write is camelCase.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterator
from typing import Any

from cliproxy.translators import code_assist
from cliproxy.translators import fields
from cliproxy.translators import ir
from cliproxy.translators.schema import clean_for_gemini
from cliproxy.translators.schema import sanitize_function_name
from cliproxy.translators.sse import data_frame
from cliproxy.translators.stream import SafeStreamEncoder
from cliproxy.translators.thinking import gemini_thinking_config

SENTINEL_SIGNATURE = "skip_thought_signature_validator"

_STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_FILTER_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    }
)

_FINISH_OUT: dict[str, str] = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}

# Part kinds a Gemini client may send that the IR has no place for (dropped with a note).
_UNMODELLED_PARTS = (
    ("executableCode", "executable_code"),
    ("codeExecutionResult", "code_execution_result"),
    ("videoMetadata", "video_metadata"),
)

# snake_case -> camelCase for the keys the pass-through normalises (docs/upstreams.md "Code Assist
# envelope" Do).
_TOP_KEYS = {
    "system_instruction": "systemInstruction",
    "generation_config": "generationConfig",
    "tool_config": "toolConfig",
    "safety_settings": "safetySettings",
    "cached_content": "cachedContent",
}
_PART_KEYS = {
    "inline_data": "inlineData",
    "file_data": "fileData",
    "function_call": "functionCall",
    "function_response": "functionResponse",
    "thought_signature": "thoughtSignature",
    "executable_code": "executableCode",
    "code_execution_result": "codeExecutionResult",
    "video_metadata": "videoMetadata",
}
_BLOB_KEYS = {"mime_type": "mimeType", "file_uri": "fileUri", "display_name": "displayName"}


# ---------------------------------------------------------------- small helpers


def _get(d: dict[str, Any], camel: str, snake: str | None = None) -> Any:
    """d[camel], else d[snake] (snake derived from camel when not given)."""
    if camel in d:
        return d[camel]
    return d.get(snake or _snake(camel))


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _camel(name: str) -> str:
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _note(req: ir.Request, message: str) -> None:
    req.dropped.append(message)


def _new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def canonical_status(status: int) -> str:
    """The google.rpc canonical status name for an HTTP status."""
    if status in _STATUS_NAMES:
        return _STATUS_NAMES[status]
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def error_body(status: int, message: str, status_name: str | None = None) -> dict[str, Any]:
    """docs/configuration.md "Error shapes" Gemini error body."""
    return {
        "error": {
            "code": status,
            "message": message,
            "status": status_name or canonical_status(status),
        }
    }


# ================================================================ IR -> upstream request


class _Names:
    """Client tool names <-> valid Gemini names; distinct names stay distinct after sanitising."""

    def __init__(self) -> None:
        self.to_gemini: dict[str, str] = {}
        self.back: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name in self.to_gemini:
            return self.to_gemini[name]
        base = sanitize_function_name(name)
        out, n = base, 2
        while out in self.back and self.back[out] != name:
            suffix = f"_{n}"
            out = base[: 64 - len(suffix)] + suffix
            n += 1
        self.to_gemini[name] = out
        self.back[out] = name
        return out


def _image_part(p: ir.ImagePart) -> dict[str, Any]:
    if p.data is not None:
        return {"inlineData": {"mimeType": p.mime_type, "data": p.data}}
    url = p.url or ""
    if url.startswith("data:") and "," in url:
        head, _, data = url[5:].partition(",")
        mime = head.split(";")[0] or p.mime_type
        return {"inlineData": {"mimeType": mime, "data": data}}
    return {"fileData": {"mimeType": p.mime_type, "fileUri": url}}


def _search_text(p: ir.WebSearchPart) -> str:
    lines = [f"Web search: {p.query}"] + [f"- {r.get('title', '')} {r['url']}" for r in p.results]
    return "\n".join(lines)


def _tool_result_text(p: ir.ToolResultPart) -> str:
    return "\n".join(c.text for c in p.content if isinstance(c, ir.TextPart))


# A rendered part tagged for the re-ordering pass: (kind, call id, gemini part).
_Tagged = tuple[str, str | None, dict[str, Any]]


def _render_parts(msg: ir.Message, names: _Names, call_names: dict[str, str]) -> list[_Tagged]:
    out: list[_Tagged] = []
    pending_sig: str | None = None  # a thinking signature waiting for the next functionCall
    for p in msg.parts:
        if isinstance(p, ir.ThinkingPart):
            # thought text is not replayed (docs/upstreams.md "Thought signatures"); only its
            # signature may travel on.
            # Gemini's signatures are base64: another upstream's opaque token (e.g. Codex's
            # encrypted reasoning) would be refused, so it is not forwarded.
            pending_sig = None if p.redacted else _client_sig(p.signature)
            continue
        if isinstance(p, ir.ToolCallPart):
            part: dict[str, Any] = {
                "functionCall": {"name": names.get(p.name), "args": p.arguments}
            }
            sig = _client_sig(p.signature) or pending_sig
            if sig:
                part["thoughtSignature"] = sig
            out.append(("call", p.id, part))
        elif isinstance(p, ir.TextPart):
            if p.text:  # Gemini rejects empty text parts
                out.append(("other", None, {"text": p.text}))
        elif isinstance(p, ir.ImagePart):
            out.append(("other", None, _image_part(p)))
        elif isinstance(p, ir.WebSearchPart):
            # a search another upstream ran (Codex web_search): what it found, as text
            out.append(("other", None, {"text": _search_text(p)}))
        elif isinstance(p, ir.ToolResultPart):
            name = p.name or call_names.get(p.call_id) or "unknown"
            text = _tool_result_text(p)
            response = {"error": text} if p.is_error else {"output": text}
            out.append(
                (
                    "result",
                    p.call_id,
                    {"functionResponse": {"name": names.get(name), "response": response}},
                )
            )
            for c in p.content:
                if isinstance(c, ir.ImagePart):
                    out.append(("result_image", p.call_id, _image_part(c)))
        pending_sig = None
    return out


def _order_results(parts: list[_Tagged], call_order: list[str]) -> list[_Tagged]:
    """functionResponse parts first, in the order of the calls they answer; then the images
    from tool results; then everything else (docs/upstreams.md "Cross-dialect mappings", §8.2)."""
    if not any(kind == "result" for kind, _, _ in parts):
        return parts
    rank = {cid: i for i, cid in enumerate(call_order)}
    results = [t for t in parts if t[0] == "result"]
    results.sort(key=lambda t: rank.get(t[1] or "", len(rank)))  # stable for unknown ids
    images = [t for t in parts if t[0] == "result_image"]
    images.sort(key=lambda t: rank.get(t[1] or "", len(rank)))
    rest = [t for t in parts if t[0] not in ("result", "result_image")]
    return results + images + rest


def _render_contents(req: ir.Request, names: _Names) -> list[dict[str, Any]]:
    call_names = {
        p.id: p.name for m in req.messages for p in m.parts if isinstance(p, ir.ToolCallPart)
    }
    merged: list[tuple[str, list[_Tagged]]] = []
    for msg in req.messages:
        role = "model" if msg.role == "assistant" else "user"  # mid-conversation system -> user
        parts = _render_parts(msg, names, call_names)
        if not parts:
            continue
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(parts)
        else:
            merged.append((role, parts))
    contents: list[dict[str, Any]] = []
    call_order: list[str] = []
    for role, parts in merged:
        if role == "model":
            call_order = [cid for kind, cid, _ in parts if kind == "call" and cid is not None]
            for kind, _, part in parts:
                if kind == "call":
                    part.setdefault("thoughtSignature", SENTINEL_SIGNATURE)
                    break
        else:
            parts = _order_results(parts, call_order)
        contents.append({"role": role, "parts": [part for _, _, part in parts]})
    return contents


def _render_tools(req: ir.Request, names: _Names) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    decls: list[dict[str, Any]] = []
    for tool in req.tools:
        decl: dict[str, Any] = {"name": names.get(tool.name)}
        if tool.description:
            decl["description"] = tool.description
        if tool.parameters:
            decl["parametersJsonSchema"] = clean_for_gemini(tool.parameters)
        else:
            decl["parametersJsonSchema"] = {"type": "object", "properties": {}}
        decls.append(decl)
    if decls:
        tools.append({"functionDeclarations": decls})
    extra = req.extras.get("gemini_tools")
    if isinstance(extra, list):  # googleSearch & co. from a Gemini client (parse_request)
        tools.extend(t for t in extra if isinstance(t, dict))
    return tools


def _render_tool_config(req: ir.Request, names: _Names) -> dict[str, Any] | None:
    choice = req.tool_choice
    if choice is None or not req.tools:
        return None
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[choice.mode]
    config: dict[str, Any] = {"mode": mode}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [names.get(choice.name)]
    return {"functionCallingConfig": config}


def _strip_schema_key(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "$schema"}


def _render_generation_config(req: ir.Request) -> dict[str, Any]:
    gc: dict[str, Any] = {}
    for key, value in (
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
        ("maxOutputTokens", req.max_tokens),
        ("seed", req.seed),
        ("presencePenalty", req.presence_penalty),
        ("frequencyPenalty", req.frequency_penalty),
        ("responseMimeType", req.response_mime_type),
    ):
        if value is not None:
            gc[key] = value
    if req.stop:
        gc["stopSequences"] = list(req.stop)
    if req.response_schema is not None:
        gc["responseJsonSchema"] = _strip_schema_key(req.response_schema)
        gc.setdefault("responseMimeType", "application/json")  # required with a schema
    thinking = gemini_thinking_config(req.thinking, req.model)
    if thinking is not None:
        gc["thinkingConfig"] = thinking
    extra = req.extras.get("gemini")
    if isinstance(extra, dict) and isinstance(extra.get("generationConfig"), dict):
        for key, value in extra["generationConfig"].items():
            gc.setdefault(key, value)
    return gc


def render_request(req: ir.Request) -> tuple[dict[str, Any], dict[str, str]]:
    """IR -> GenerateContentRequest body (camelCase, no Code Assist envelope) and the tool-name
    map {gemini name: client name} the StreamDecoder needs to give names back."""
    names = _Names()
    for tool in req.tools:  # declared tools claim their sanitised names first
        names.get(tool.name)
    body: dict[str, Any] = {"contents": _render_contents(req, names)}
    system = [s for s in req.system if s]
    if system:
        body["systemInstruction"] = {"role": "user", "parts": [{"text": "\n\n".join(system)}]}
    tools = _render_tools(req, names)
    if tools:
        body["tools"] = tools
    tool_config = _render_tool_config(req, names)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    gc = _render_generation_config(req)
    if gc:
        body["generationConfig"] = gc
    extra = req.extras.get("gemini")
    if isinstance(extra, dict):
        for key in ("safetySettings", "cachedContent", "labels"):
            if key in extra:
                body[key] = extra[key]
    if req.parallel_tool_calls is False:
        _note(req, "parallel_tool_calls=false: Gemini has no such switch; ignored")
    if req.web_search:
        # googleSearch cannot be combined with the function tools every such client declares
        _note(req, "web_search: not offered to Gemini (not combinable with function tools)")
    return body, dict(names.back)


# ================================================================ Gemini client -> IR


def _as_list(value: Any, param: str, *, text_ok: bool = True) -> list[Any]:
    """google-genai may send one Content/Part dict or a bare string where a list is expected."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    if text_ok and isinstance(value, str):
        return [value]
    raise ir.RequestError(f"{param} must be a list", param)


class _CallBinder:
    """Ids for functionCall parts and the binding of functionResponse parts to them: by id when
    the client sends ids (gemini-cli, google-genai AFC), else by name in call order."""

    def __init__(self) -> None:
        self.count = 0
        self.pending: dict[str, list[str]] = {}  # name -> unanswered call ids, oldest first

    def call(self, call_id: Any, name: str) -> str:
        cid = call_id if isinstance(call_id, str) and call_id else f"call_{self.count}"
        self.count += 1
        self.pending.setdefault(name, []).append(cid)
        return cid

    def name_for(self, call_id: Any) -> str:
        """The name of the unanswered call a nameless functionResponse answers: the call with
        its id, else the oldest unanswered one ("" when there is none)."""
        for name, ids in self.pending.items():
            if call_id in ids:
                return name
        for name, ids in self.pending.items():
            if ids:
                return name
        return ""

    def response(self, call_id: Any, name: str) -> str:
        if isinstance(call_id, str) and call_id:
            for ids in self.pending.values():
                if call_id in ids:
                    ids.remove(call_id)
                    break
            return call_id
        ids = self.pending.get(name)
        if ids:
            return ids.pop(0)
        cid = f"call_{self.count}"
        self.count += 1
        return cid


def _blob_mime(value: Any, param: str) -> str:
    """The mime type of an inlineData / fileData object (validated)."""
    if not isinstance(value, dict):
        raise ir.RequestError(f"{param} must be an object", param)
    mime = _get(value, "mimeType")
    if mime is not None and not isinstance(mime, str):
        raise ir.RequestError(f"{param}.mimeType must be a string", param + ".mimeType")
    return mime or "application/octet-stream"


def _response_to_result(
    fr: dict[str, Any], call_id: str, name: str, param: str, req: ir.Request
) -> ir.ToolResultPart:
    response = fr.get("response")
    is_error = False
    if (
        isinstance(response, dict)
        and set(response) == {"output"}
        and isinstance(response["output"], str)
    ):
        text = response["output"]
    elif isinstance(response, dict) and set(response) == {"error"}:
        is_error = True
        err = response["error"]
        text = err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)
    elif isinstance(response, str):
        text = response
    elif response is None:
        text = ""
    else:
        text = json.dumps(response, ensure_ascii=False)
    content: list[ir.TextPart | ir.ImagePart] = [ir.TextPart(text)]
    # newer multimodal function responses carry media in functionResponse.parts
    extra_parts = fr.get("parts")
    if isinstance(extra_parts, list):
        for k, sub in enumerate(extra_parts):
            if not isinstance(sub, dict):
                continue
            inline = _get(sub, "inlineData")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                mime = _blob_mime(inline, f"{param}.parts[{k}].inlineData")
                content.append(ir.ImagePart(mime, data=inline["data"]))
            else:
                _note(req, f"{param}.parts[{k}]: unsupported function response part dropped")
    return ir.ToolResultPart(call_id=call_id, content=content, name=name, is_error=is_error)


def _parse_part(part: Any, param: str, binder: _CallBinder, req: ir.Request) -> list[ir.Part]:
    if isinstance(part, str):
        return [ir.TextPart(part)]
    if not isinstance(part, dict):
        raise ir.RequestError(f"{param} must be an object", param)
    sig = _get(part, "thoughtSignature")
    sig = sig if isinstance(sig, str) and sig else None
    if "text" in part:
        text = part["text"]
        if not isinstance(text, str):
            raise ir.RequestError(f"{param}.text must be a string", param + ".text")
        if part.get("thought") is True:
            return [ir.ThinkingPart(text, sig)]
        out: list[ir.Part] = [ir.ThinkingPart("", sig)] if sig else []
        if text:
            out.append(ir.TextPart(text))
        return out
    fc = _get(part, "functionCall")
    if fc is not None:
        if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
            raise ir.RequestError(
                f"{param}.functionCall needs a string name", param + ".functionCall"
            )
        args = fc.get("args")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ir.RequestError(
                f"{param}.functionCall.args must be an object", param + ".functionCall.args"
            )
        cid = binder.call(fc.get("id"), fc["name"])
        return [ir.ToolCallPart(id=cid, name=fc["name"], arguments=args, signature=sig)]
    fr = _get(part, "functionResponse")
    if fr is not None:
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str):
            raise ir.RequestError(
                f"{param}.functionResponse needs a string name", param + ".functionResponse"
            )
        # an empty name (some clients send one) is the answered call's (as gemini-cli does)
        name = fr["name"] or binder.name_for(fr.get("id"))
        cid = binder.response(fr.get("id"), name)
        return [_response_to_result(fr, cid, name, param + ".functionResponse", req)]
    inline = _get(part, "inlineData")
    if inline is not None:
        mime = _blob_mime(inline, param + ".inlineData")
        data = inline.get("data")
        if not isinstance(data, str):
            raise ir.RequestError(
                f"{param}.inlineData.data must be a base64 string", param + ".inlineData.data"
            )
        return [ir.ImagePart(mime, data=data)]
    file_data = _get(part, "fileData")
    if file_data is not None:
        mime = _blob_mime(file_data, param + ".fileData")
        uri = _get(file_data, "fileUri")
        if not isinstance(uri, str):
            raise ir.RequestError(
                f"{param}.fileData.fileUri must be a string", param + ".fileData.fileUri"
            )
        return [ir.ImagePart(mime, url=uri)]
    for camel, snake in _UNMODELLED_PARTS:
        if camel in part or snake in part:
            _note(req, f"{param}: {camel} part dropped (not supported by this upstream)")
            return []
    if sig:  # a part that only carries a signature
        return [ir.ThinkingPart("", sig)]
    _note(req, f"{param}: unrecognised part dropped")
    return []


def _contents(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """`contents` as (param, Content object) pairs. google-genai may send one Content or a bare
    string (a user turn) instead of a list, and strings among the Contents. Lazy, so each
    Content is checked when the caller reaches it."""
    if value is None:
        raise ir.RequestError("contents is required", "contents")
    items = _as_list(value, "contents")
    if not items:
        raise ir.RequestError("contents must not be empty", "contents")
    for i, content in enumerate(items):
        param = f"contents[{i}]"
        if isinstance(content, str):
            content = {"role": "user", "parts": [{"text": content}]}
        if not isinstance(content, dict):
            raise ir.RequestError(f"{param} must be an object", param)
        yield param, content


def _parse_contents(body: dict[str, Any], req: ir.Request) -> list[ir.Message]:
    binder = _CallBinder()
    messages: list[ir.Message] = []
    for param, content in _contents(body.get("contents")):
        role = content.get("role") or "user"
        if role == "function":  # the old API's role for function responses
            role = "user"
        if role not in ("user", "model", "system"):
            raise ir.RequestError(f"{param}.role must be 'user' or 'model'", param + ".role")
        parts_raw = content.get("parts")
        parts_list = [] if parts_raw is None else _as_list(parts_raw, param + ".parts")
        parts: list[ir.Part] = []
        for j, part in enumerate(parts_list):
            parts.extend(_parse_part(part, f"{param}.parts[{j}]", binder, req))
        ir_role: ir.Role = "assistant" if role == "model" else role  # type: ignore[assignment]
        messages.append(ir.Message(ir_role, parts))
    return messages


def _parse_system(value: Any, req: ir.Request) -> list[str]:
    param = "systemInstruction"
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        parts = value
    elif isinstance(value, dict):
        parts = value.get("parts", [])
        if isinstance(parts, dict | str):
            parts = [parts]
        if not isinstance(parts, list):
            raise ir.RequestError(f"{param}.parts must be a list", param + ".parts")
    else:
        raise ir.RequestError(f"{param} must be a Content object", param)
    out: list[str] = []
    for j, part in enumerate(parts):
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append(part["text"])
        elif isinstance(part, dict):
            _note(req, f"{param}.parts[{j}]: non-text system part dropped")
        else:
            raise ir.RequestError(f"{param}.parts[{j}] must be an object", f"{param}.parts[{j}]")
    return [t for t in out if t]


def _schema_from_openapi(schema: Any) -> dict[str, Any]:
    """A `parameters`/`responseSchema` (OpenAPI subset, maybe uppercase types) as JSON Schema."""
    return clean_for_gemini(schema)


def _parse_tools(value: Any, req: ir.Request) -> None:
    if value is None:
        return
    tools = _as_list(value, "tools", text_ok=False)
    extra: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise ir.RequestError(f"{param} must be an object", param)
        for key, val in tool.items():
            if key not in ("functionDeclarations", "function_declarations"):
                extra.append({_camel(key): val})
                _note(
                    req,
                    f"{param}.{_camel(key)}: Gemini built-in tool, kept for Gemini upstreams only",
                )
        decls = _get(tool, "functionDeclarations")
        if decls is None:
            continue
        if not isinstance(decls, list):
            raise ir.RequestError(
                f"{param}.functionDeclarations must be a list", param + ".functionDeclarations"
            )
        for j, decl in enumerate(decls):
            dparam = f"{param}.functionDeclarations[{j}]"
            if (
                not isinstance(decl, dict)
                or not isinstance(decl.get("name"), str)
                or not decl["name"]
            ):
                raise ir.RequestError(f"{dparam} needs a string name", dparam + ".name")
            desc = decl.get("description")
            schema = _get(decl, "parametersJsonSchema")
            if isinstance(schema, dict):
                params: dict[str, Any] = schema
            elif isinstance(decl.get("parameters"), dict):
                params = _schema_from_openapi(decl["parameters"])
            else:
                params = {}
            req.tools.append(
                ir.Tool(
                    name=decl["name"],
                    description=desc if isinstance(desc, str) else "",
                    parameters=params,
                )
            )
    if extra:
        req.extras["gemini_tools"] = extra


def _parse_tool_config(value: Any, req: ir.Request) -> None:
    if not isinstance(value, dict):
        return
    fcc = _get(value, "functionCallingConfig")
    if not isinstance(fcc, dict):
        return
    mode = fcc.get("mode")
    allowed = _get(fcc, "allowedFunctionNames")
    allowed = [a for a in allowed if isinstance(a, str)] if isinstance(allowed, list) else []
    mode = mode.upper() if isinstance(mode, str) else ""
    if mode in ("AUTO", "VALIDATED"):
        req.tool_choice = ir.ToolChoice("auto")
    elif mode == "NONE":
        req.tool_choice = ir.ToolChoice("none")
    elif mode == "ANY":
        if len(allowed) == 1:
            req.tool_choice = ir.ToolChoice("tool", allowed[0])
        else:
            req.tool_choice = ir.ToolChoice("required")
            if allowed:
                _note(
                    req, "toolConfig.allowedFunctionNames with several names: restriction dropped"
                )


_EFFORT_FROM_LEVEL = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}

# generationConfig keys the IR models (camelCase); the rest goes to extras["gemini"].
_GC_MODELLED = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseMimeType",
        "responseJsonSchema",
        "responseSchema",
        "thinkingConfig",
    }
)


def _parse_thinking(value: Any) -> ir.Thinking | None:
    if not isinstance(value, dict):
        return None
    thinking = ir.Thinking()
    budget = _get(value, "thinkingBudget")
    if fields.is_number(budget):
        thinking.budget = int(budget)
    level = _get(value, "thinkingLevel")
    if isinstance(level, str):
        thinking.effort = _EFFORT_FROM_LEVEL.get(level.upper())  # type: ignore[assignment]
    include = _get(value, "includeThoughts")
    if isinstance(include, bool):
        thinking.include_thoughts = include
    if thinking.budget is None and thinking.effort is None and thinking.include_thoughts is None:
        return None
    return thinking


def _parse_generation_config(value: Any, req: ir.Request) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ir.RequestError("generationConfig must be an object", "generationConfig")
    gc = value
    req.temperature = fields.number(_get(gc, "temperature"), "generationConfig.temperature")
    req.top_p = fields.number(_get(gc, "topP"), "generationConfig.topP")
    req.top_k = fields.integer(_get(gc, "topK"), "generationConfig.topK", whole_floats=True)
    req.max_tokens = fields.integer(
        _get(gc, "maxOutputTokens"), "generationConfig.maxOutputTokens", whole_floats=True
    )
    req.seed = fields.integer(_get(gc, "seed"), "generationConfig.seed", whole_floats=True)
    req.presence_penalty = fields.number(
        _get(gc, "presencePenalty"), "generationConfig.presencePenalty"
    )
    req.frequency_penalty = fields.number(
        _get(gc, "frequencyPenalty"), "generationConfig.frequencyPenalty"
    )
    stop = _get(gc, "stopSequences")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ir.RequestError(
                "generationConfig.stopSequences must be a list of strings",
                "generationConfig.stopSequences",
            )
        req.stop = list(stop)
    mime = _get(gc, "responseMimeType")
    if mime is not None:
        if not isinstance(mime, str):
            raise ir.RequestError(
                "generationConfig.responseMimeType must be a string",
                "generationConfig.responseMimeType",
            )
        req.response_mime_type = mime
    schema = _get(gc, "responseJsonSchema")
    if isinstance(schema, dict):
        req.response_schema = schema
    elif isinstance(_get(gc, "responseSchema"), dict):
        req.response_schema = _schema_from_openapi(_get(gc, "responseSchema"))
    req.thinking = _parse_thinking(_get(gc, "thinkingConfig"))
    rest = {_camel(k): v for k, v in gc.items() if _camel(k) not in _GC_MODELLED}
    if rest:
        req.extras.setdefault("gemini", {})["generationConfig"] = rest
        _note(
            req, "generationConfig." + ", ".join(sorted(rest)) + ": kept for Gemini upstreams only"
        )


_KNOWN_TOP = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
        "labels",
        "model",
        "sessionId",
        "session_id",
    }
)


def parse_request(body: object, model: str) -> ir.Request:
    """A Gemini client's GenerateContentRequest (any mix of camelCase and snake_case keys) -> IR.
    `stream` is not in the body (it is the method name): the caller sets req.stream."""
    if not isinstance(body, dict):
        raise ir.RequestError("request body must be a JSON object")
    req = ir.Request(model=model, messages=[])
    req.messages = _parse_contents(body, req)
    req.system = _parse_system(_get(body, "systemInstruction"), req)
    _parse_tools(body.get("tools"), req)
    _parse_tool_config(_get(body, "toolConfig"), req)
    _parse_generation_config(_get(body, "generationConfig"), req)
    gemini_extra: dict[str, Any] = req.extras.get("gemini", {})
    for key in ("safetySettings", "cachedContent", "labels"):
        value = _get(body, key)
        if value is not None:
            gemini_extra[key] = value
            _note(req, f"{key}: kept for Gemini upstreams only")
    if gemini_extra:
        req.extras["gemini"] = gemini_extra
    for key in body:
        if _camel(key) not in _KNOWN_TOP and key not in _KNOWN_TOP:
            _note(req, f"{key}: unknown request field ignored")
    return req


# ================================================================ Gemini client -> Gemini upstream


def _renamed(obj: dict[Any, Any], table: dict[str, str] | None = None) -> dict[Any, Any]:
    """`obj` (not mutated) with its keys in camelCase: the keys `table` lists, or without a table
    every string key. Where a client sent both spellings of a key, the camelCase one wins."""
    out: dict[Any, Any] = {}
    for key, val in obj.items():
        if table is not None:
            new = table.get(key, key)
        else:
            new = _camel(key) if isinstance(key, str) else key
        if new != key and new in obj:
            continue  # both spellings: camelCase wins
        out[new] = val
    return out


def _normalise_blob(value: Any) -> Any:
    return _renamed(value, _BLOB_KEYS) if isinstance(value, dict) else value


def _normalise_part(part: dict[str, Any]) -> dict[str, Any]:
    out = _renamed(part, _PART_KEYS)
    for key in ("inlineData", "fileData"):
        if key in out:
            out[key] = _normalise_blob(out[key])
    return out


def _passthrough_contents(value: Any) -> list[Any]:
    out: list[Any] = []
    for param, content in _contents(value):
        parts = content.get("parts")
        if parts is None:
            out.append(content)
            continue
        if isinstance(parts, dict | str):
            parts = [parts]
        if not isinstance(parts, list):
            raise ir.RequestError(f"{param}.parts must be a list", param + ".parts")
        new_parts: list[dict[str, Any]] = []
        for j, part in enumerate(parts):
            if isinstance(part, str):
                part = {"text": part}
            if not isinstance(part, dict):
                raise ir.RequestError(
                    f"{param}.parts[{j}] must be an object", f"{param}.parts[{j}]"
                )
            new_parts.append(_normalise_part(part))
        if content.get("role") == "model":
            for part in new_parts:
                if "functionCall" in part:
                    if not part.get("thoughtSignature"):
                        part["thoughtSignature"] = SENTINEL_SIGNATURE
                    break
        out.append({**content, "parts": new_parts})
    _fill_response_names(out)
    return out


def _fill_response_names(contents: list[Any]) -> None:
    """Gemini refuses a functionResponse without a name ("Name cannot be empty"); some clients
    send one. Fill it from the functionCall it answers, as gemini-cli does: by id, else by
    position among the calls of the model turn before it. `contents` holds fresh part dicts."""
    by_id: dict[str, str] = {}
    turn: list[str] = []  # names of the last model turn's calls, in order
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            continue
        if content.get("role") == "model":
            turn = []
            for part in parts:
                fc = part.get("functionCall") if isinstance(part, dict) else None
                if isinstance(fc, dict) and isinstance(fc.get("name"), str):
                    turn.append(fc["name"])
                    if isinstance(fc.get("id"), str):
                        by_id[fc["id"]] = fc["name"]
            continue
        k = 0
        for part in parts:
            fr = part.get("functionResponse") if isinstance(part, dict) else None
            if not isinstance(fr, dict):
                continue
            if not fr.get("name"):
                name = by_id.get(fr.get("id")) if isinstance(fr.get("id"), str) else None
                name = name or (turn[k] if k < len(turn) else None)
                if name:
                    part["functionResponse"] = {**fr, "name": name}
            k += 1


def _camel_keys(value: Any, depth: int = 0) -> Any:
    """camelCase every key of a config object, recursively (no user-named keys inside)."""
    if depth > 16:
        return value
    if isinstance(value, dict):
        return {key: _camel_keys(val, depth + 1) for key, val in _renamed(value).items()}
    if isinstance(value, list):
        return [_camel_keys(v, depth + 1) for v in value]
    return value


def _passthrough_generation_config(gc: Any) -> Any:
    if gc is None:
        return None
    if not isinstance(gc, dict):
        raise ir.RequestError("generationConfig must be an object", "generationConfig")
    out = _renamed(gc)
    if "thinkingConfig" in out:
        out["thinkingConfig"] = _camel_keys(out["thinkingConfig"])
    if isinstance(out.get("responseJsonSchema"), dict):
        out["responseJsonSchema"] = _strip_schema_key(out["responseJsonSchema"])
    return out


def _passthrough_tools(tools: Any) -> Any:
    if tools is None:
        return None
    items = _as_list(tools, "tools", text_ok=False)
    out: list[Any] = []
    for i, tool in enumerate(items):
        if not isinstance(tool, dict):
            raise ir.RequestError(f"tools[{i}] must be an object", f"tools[{i}]")
        new_tool = _renamed(tool)
        if "functionDeclarations" in new_tool:
            new_tool["functionDeclarations"] = _passthrough_declarations(
                new_tool["functionDeclarations"], f"tools[{i}].functionDeclarations"
            )
        out.append(new_tool)
    return out


def _passthrough_declarations(decls: Any, param: str) -> list[Any]:
    if not isinstance(decls, list):
        raise ir.RequestError(f"{param} must be a list", param)
    out: list[Any] = []
    for j, decl in enumerate(decls):
        if not isinstance(decl, dict):
            raise ir.RequestError(f"{param}[{j}] must be an object", f"{param}[{j}]")
        new: dict[str, Any] = {}
        json_schema: Any = None
        for key, val in decl.items():
            if key in ("parametersJsonSchema", "parameters_json_schema"):
                if json_schema is None or key == "parametersJsonSchema":
                    json_schema = val
            elif key == "parameters":
                new["parameters"] = clean_for_gemini(val)
            else:
                new[_camel(key)] = val
        if json_schema is not None:
            new["parametersJsonSchema"] = clean_for_gemini(json_schema)
        out.append(new)
    return out


def prepare_passthrough(body: object) -> dict[str, Any]:
    """A Gemini client body made safe for Code Assist / AI Studio, every field kept: camelCase
    config keys, cleaned tool schemas, the thought-signature sentinel on replayed calls. The
    input is not mutated."""
    if not isinstance(body, dict):
        raise ir.RequestError("request body must be a JSON object")
    out: dict[str, Any] = _renamed(body, _TOP_KEYS)
    out["contents"] = _passthrough_contents(out.get("contents"))
    if "generationConfig" in out:
        out["generationConfig"] = _passthrough_generation_config(out["generationConfig"])
    if "tools" in out:
        out["tools"] = _passthrough_tools(out["tools"])
    if isinstance(out.get("toolConfig"), dict):
        out["toolConfig"] = _camel_keys(out["toolConfig"])
    if isinstance(out.get("systemInstruction"), dict):
        si = out["systemInstruction"]
        parts = si.get("parts")
        if isinstance(parts, list):
            si = {**si, "parts": [_normalise_part(p) if isinstance(p, dict) else p for p in parts]}
        out["systemInstruction"] = si
    if isinstance(out.get("safetySettings"), list):
        out["safetySettings"] = _camel_keys(out["safetySettings"])
    return out


# ================================================================ upstream stream -> IR


def map_finish_reason(reason: str, saw_tool_call: bool) -> ir.FinishReason:
    if saw_tool_call:
        # never let a late STOP hide tool calls (docs/upstreams.md "Cross-dialect mappings")
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTER_REASONS:
        return "content_filter"
    return "stop"


def _usage(meta: dict[str, Any]) -> ir.Usage:
    def n(key: str) -> int:
        v = meta.get(key)
        return v if fields.is_int(v) and v >= 0 else 0

    thoughts = n("thoughtsTokenCount")
    return ir.Usage(
        input_tokens=n("promptTokenCount"),
        output_tokens=n("candidatesTokenCount") + thoughts,
        cached_tokens=n("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


class StreamDecoder:
    """GenerateContentResponse chunks (already unwrapped) -> IR events. Never raises."""

    def __init__(self, model: str, tool_names: dict[str, str] | None = None) -> None:
        self.model = model
        self.tool_names = tool_names or {}
        self.started = False
        self.finished = False
        self.saw_tool_call = False
        self._last_usage: dict[str, Any] | None = None

    def feed(self, obj: dict[str, Any]) -> list[ir.Event]:
        try:
            return self._feed(obj)
        except Exception:  # a decoder never raises; a malformed chunk is skipped
            return []

    def finish(self) -> list[ir.Event]:
        return []

    def _feed(self, obj: Any) -> list[ir.Event]:
        if not isinstance(obj, dict):
            return []
        if "candidates" not in obj and isinstance(obj.get("response"), dict):
            obj = code_assist.unwrap_response(obj)  # tolerate a Code Assist wrapper
        events: list[ir.Event] = []
        if not self.started:
            self.started = True
            rid = obj.get("responseId")
            version = obj.get("modelVersion")
            events.append(
                ir.StreamStart(
                    id=rid if isinstance(rid, str) and rid else "gen-" + secrets.token_hex(12),
                    model=version if isinstance(version, str) and version else self.model,
                )
            )
        err = obj.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            message = err.get("message")
            status = err.get("status")
            events.append(
                ir.StreamError(
                    message=message if isinstance(message, str) else "upstream error",
                    status=code if fields.is_int(code) else 500,
                    code=status if isinstance(status, str) else None,
                )
            )
            return events
        meta = obj.get("usageMetadata")
        if isinstance(meta, dict) and meta != self._last_usage:
            # Gemini repeats the (cumulative) usage on every chunk: convert it only on change
            self._last_usage = meta
            events.append(ir.UsageUpdate(_usage(meta)))
        candidates = obj.get("candidates")
        cand = candidates[0] if isinstance(candidates, list) and candidates else None
        reason: str | None = None
        if isinstance(cand, dict):
            content = cand.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list):
                for part in parts:
                    if isinstance(part, dict):
                        self._part(part, events)
            fr = cand.get("finishReason")
            if isinstance(fr, str) and fr:
                reason = fr
        elif not candidates:
            feedback = obj.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                reason = "SAFETY"
        if reason is not None and not self.finished:
            self.finished = True
            events.append(ir.Finish(map_finish_reason(reason, self.saw_tool_call)))
        return events

    def _part(self, part: dict[str, Any], events: list[ir.Event]) -> None:
        sig = part.get("thoughtSignature")
        sig = sig if isinstance(sig, str) and sig else None
        text = part.get("text")
        text = text if isinstance(text, str) else None
        if part.get("thought") is True:
            if text or sig:
                events.append(ir.ThinkingDelta(text or "", sig))
            return
        fc = part.get("functionCall")
        if isinstance(fc, dict):
            self._call(fc, sig, events)
            return
        inline = part.get("inlineData")
        if isinstance(inline, dict) and isinstance(inline.get("data"), str):
            mime = inline.get("mimeType")
            events.append(
                ir.ImageOut(mime if isinstance(mime, str) else "image/png", inline["data"])
            )
            return
        if sig:
            events.append(ir.ThinkingDelta("", sig))
        if text:
            events.append(ir.TextDelta(text))

    def _call(self, fc: dict[str, Any], sig: str | None, events: list[ir.Event]) -> None:
        self.saw_tool_call = True
        cid = fc.get("id")
        cid = cid if isinstance(cid, str) and cid else _new_call_id()
        name = fc.get("name")
        name = name if isinstance(name, str) else ""
        name = self.tool_names.get(name, name)
        args = fc.get("args")
        args = args if isinstance(args, dict) else {}
        events.append(ir.ToolCallStart(cid, name, sig))
        events.append(ir.ToolCallDelta(cid, json.dumps(args, ensure_ascii=False)))
        events.append(ir.ToolCallEnd(cid, args))


# ================================================================ IR -> Gemini client


def _usage_metadata(usage: ir.Usage) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    return meta


def _client_sig(sig: str | None) -> str | None:
    """`sig` if a Gemini client can read it back, else None. google-genai types thoughtSignature
    as base64 bytes and rejects the whole response on anything else (non-canonical trailing
    bits included), so a signature that is not base64 (e.g. another upstream's opaque token) is
    not sent to Gemini clients."""
    if not sig:
        return None
    norm = sig.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        raw = base64.b64decode(norm + "=" * (-len(norm) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return sig if base64.b64encode(raw).decode().rstrip("=") == norm else None


def _call_part(call_id: str, name: str, args: dict[str, Any], sig: str | None) -> dict[str, Any]:
    # the id is kept: google-genai / gemini-cli send it back on functionResponse, which is how a
    # Codex call_id survives the round trip
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args, "id": call_id}}
    sig = _client_sig(sig)
    if sig:
        part["thoughtSignature"] = sig
    return part


def _response_parts(
    parts: list[ir.TextPart | ir.ImagePart | ir.ThinkingPart | ir.ToolCallPart | ir.WebSearchPart],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending: str | None = None  # a lone signature rides on the next part
    for p in parts:
        if isinstance(p, ir.ThinkingPart):
            if p.redacted:
                continue
            sig = _client_sig(p.signature)
            if p.text:
                part: dict[str, Any] = {"thought": True, "text": p.text}
                if sig:
                    part["thoughtSignature"] = sig
                out.append(part)
            elif sig:
                pending = sig
            continue
        if isinstance(p, ir.TextPart):
            part = {"text": p.text}
        elif isinstance(p, ir.ImagePart):
            part = _image_part(p)
        elif isinstance(p, ir.ToolCallPart):
            part = _call_part(p.id, p.name, p.arguments, p.signature)
        else:  # another upstream's own web search: a Gemini answer has no such part
            continue
        if pending and "thoughtSignature" not in part:
            part["thoughtSignature"] = pending
        pending = None
        out.append(part)
    if pending:
        out.append({"text": "", "thoughtSignature": pending})
    return out


def render_response(resp: ir.Response, *, envelope: bool = False) -> dict[str, Any]:
    """An IR answer as a non-stream GenerateContentResponse; with `envelope`, as Code Assist
    answers (`{"response": …}`, for Gemini CLI through the relay)."""
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": _response_parts(resp.parts)},
                "finishReason": _FINISH_OUT.get(resp.finish_reason, "STOP"),
                "index": 0,
            }
        ],
        "usageMetadata": _usage_metadata(resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    }
    return code_assist.wrap_response(body) if envelope else body


class StreamEncoder(SafeStreamEncoder):
    """IR events -> `data: <GenerateContentResponse>` frames for a Gemini client. Text and
    thoughts go out as they come; a tool call goes out whole at ToolCallEnd; finishReason and
    usage ride on the last chunk written by finish(). Never raises (stream.SafeStreamEncoder).

    `envelope`: every chunk goes out as a Code Assist frame (`{"response": …}`), for Gemini CLI
    through the relay when another upstream serves the model. The chunk is wrapped before it is
    serialised, so no frame is parsed again; error frames stay bare, as Code Assist sends them."""

    def __init__(self, model: str, *, envelope: bool = False) -> None:
        super().__init__()
        self.model = model
        self.envelope = envelope
        self.id = "gen-" + secrets.token_hex(12)
        self._usage_seen = False  # usageMetadata goes out only when the upstream reported usage
        self.pending_sig: str | None = None
        self.calls: dict[str, tuple[str, str | None, list[str]]] = {}  # id -> name, sig, fragments

    def _chunk(self, parts: list[dict[str, Any]]) -> list[bytes]:
        if self.pending_sig and parts and "thoughtSignature" not in parts[0]:
            parts[0]["thoughtSignature"] = self.pending_sig
            self.pending_sig = None
        body = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": self.model,
            "responseId": self.id,
        }
        return [self._frame(body)]

    def _frame(self, body: dict[str, Any]) -> bytes:
        return data_frame(code_assist.wrap_response(body) if self.envelope else body)

    def _encode(self, event: ir.Event) -> list[bytes]:
        match event:
            case ir.StreamStart(id=rid, model=model):
                self.id = rid or self.id
                self.model = model or self.model
            case ir.TextDelta(text=text):
                if text:
                    return self._chunk([{"text": text}])
            case ir.ThinkingDelta(text=text, signature=sig):
                sig = _client_sig(sig)
                if text:
                    part: dict[str, Any] = {"thought": True, "text": text}
                    if sig:
                        part["thoughtSignature"] = sig
                    return self._chunk([part])
                if sig:
                    self.pending_sig = sig
            case ir.ToolCallStart(id=cid, name=name, signature=sig):
                self.calls[cid] = (name, sig, [])
            case ir.ToolCallDelta(id=cid, arguments=frag):
                if cid in self.calls:
                    self.calls[cid][2].append(frag)
            case ir.ToolCallEnd(id=cid, arguments=args):
                name, sig, _ = self.calls.pop(cid, ("unknown", None, []))
                return self._chunk(
                    [_call_part(cid, name, args if isinstance(args, dict) else {}, sig)]
                )
            case ir.ImageOut(mime_type=mime, data=data):
                return self._chunk([{"inlineData": {"mimeType": mime, "data": data}}])
            case ir.UsageUpdate():
                self._usage_seen = True
                return self._track(event)
            case _:
                return self._track(event)  # finish reason, upstream error
        return []

    def _final(self) -> list[bytes]:
        parts: list[dict[str, Any]] = []
        for cid, (name, sig, frags) in self.calls.items():  # calls that never got their End
            parts.append(_call_part(cid, name, _parse_args("".join(frags)), sig))
        self.calls.clear()
        if self.pending_sig:
            parts.append({"text": "", "thoughtSignature": self.pending_sig})
            self.pending_sig = None
        candidate: dict[str, Any] = {
            "finishReason": _FINISH_OUT.get(self._finish or "stop", "STOP"),
            "index": 0,
        }
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        body: dict[str, Any] = {"candidates": [candidate]}
        if self._usage_seen:
            body["usageMetadata"] = _usage_metadata(self._usage)
        body["modelVersion"] = self.model
        body["responseId"] = self.id
        return [self._frame(body)]

    def _error_frames(self, message: str, status: int, code: str | None) -> list[bytes]:
        # Gemini error frames are never enveloped: Code Assist sends them bare too
        if not fields.is_int(status):
            status = 500
        return [data_frame(error_body(status, str(message), code))]

    def _fault_frames(self) -> list[bytes]:
        return [data_frame(error_body(500, self.FAULT))]


def _parse_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ================================================================ model lists


def _bare(model: str) -> str:
    return model.strip().removeprefix("models/")


def _display_name(model_id: str) -> str:
    words = model_id.replace("_", "-").split("-")
    return " ".join(w[:1].upper() + w[1:] if w else w for w in words)


def model_object(id: str) -> dict[str, Any]:
    """One model in the Gemini `models.list` / `models.get` shape (docs/upstreams.md "Model
    lists")."""
    bare = _bare(id)
    lower = bare.lower()
    if lower.startswith(("gpt-", "codex-", "o1", "o3", "o4")):
        limits = (400000, 128000)
    else:
        limits = (1048576, 65536)
    obj: dict[str, Any] = {
        "name": "models/" + bare,
        "version": "001",
        "displayName": _display_name(bare),
        "description": f"{bare} served by cliproxy",
        "inputTokenLimit": limits[0],
        "outputTokenLimit": limits[1],
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }
    if lower.startswith(("gemini-2.5", "gemini-3")):
        obj["thinking"] = True
    return obj


def models_list(ids: list[str]) -> dict[str, Any]:
    return {"models": [model_object(i) for i in ids]}
