"""What the two OpenAI client dialects (Chat Completions in openai_chat.py, Responses in
openai_responses.py) share: request checks worded as OpenAI words them, image URLs, tool-call
argument JSON. Only the IR and these shared wire rules are known here (the stream encoders'
contract is stream.py's, shared with every dialect).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cliproxy.translators import ir
from cliproxy.translators.media import mime_from_name
from cliproxy.translators.media import parse_data_url
from cliproxy.translators.sse import dumps

# `reasoning_effort` (Chat) and `reasoning.effort` (Responses) values.
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})

# A dialect's reader of one content part: a part, or None when it yields nothing (empty text, or
# dropped with a note).
PartReader = Callable[[object, str, ir.Request], ir.TextPart | ir.ImagePart | None]

# ================================================================ request


def drop(req: ir.Request, note: str) -> None:
    """The one documented place where the OpenAI dialects knowingly drop untranslatable input:
    one human-readable line in `req.dropped`, which the addon logs."""
    req.dropped.append(note)


def request_object(body: object) -> tuple[dict[str, Any], str]:
    """The request body as a JSON object, and its model."""
    if not isinstance(body, dict):
        raise ir.RequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ir.RequestError("model is required and must be a non-empty string", "model")
    return body, model


def drop_unknown_keys(
    body: dict[str, Any], req: ir.Request, known: frozenset[str], ignored: frozenset[str]
) -> None:
    """A note for each top-level key that is neither translated (`known`) nor meaningless
    (`ignored`, no note)."""
    for key in body:
        if key not in known and key not in ignored:
            drop(req, f"{key}: unsupported field ignored")


def content_parts(
    content: object, where: str, req: ir.Request, read_part: PartReader, *, required: bool = True
) -> list[ir.TextPart | ir.ImagePart]:
    """String content or an array of content parts, each read by the dialect's `read_part`.
    Empty strings yield no part; absent content is an error when `required`, else no part."""
    if content is None:
        if required:
            raise ir.RequestError(f"{where} is required", where)
        return []
    if isinstance(content, str):
        return [ir.TextPart(content)] if content else []
    if not isinstance(content, list):
        raise ir.RequestError(f"{where} must be a string or an array of content parts", where)
    out: list[ir.TextPart | ir.ImagePart] = []
    for j, part in enumerate(content):
        parsed = read_part(part, f"{where}[{j}]", req)
        if parsed is not None:
            out.append(parsed)
    return out


def system_text(parts: list[ir.TextPart | ir.ImagePart], where: str, req: ir.Request) -> str:
    """The text of a system / developer message; other parts are dropped with a note."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            texts.append(part.text)
        else:
            drop(req, f"{where}: non-text part in a system message")
    return "\n".join(t for t in texts if t)


def image_url_part(value: object, where: str) -> ir.ImagePart:
    """An `image_url` (a URL string, or Chat's `{"url": ...}`): a data URL or an http(s) URL."""
    url = value.get("url") if isinstance(value, dict) else value
    if isinstance(value, dict):
        where = f"{where}.url"
    if not isinstance(url, str) or not url:
        raise ir.RequestError(f"{where} must be a non-empty string", where)
    if url.startswith("data:"):
        mime, data = parse_data_url(url, where)
        return ir.ImagePart(mime or "image/jpeg", data)
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ir.RequestError(f"{where} must be an http(s) URL or a base64 data URL", where)
    return ir.ImagePart(mime_from_name(urlsplit(url).path, "image/jpeg"), url=url)


def arguments_object(raw: object, where: str) -> dict[str, Any] | None:
    """Tool-call arguments as sent (JSON text, or the object itself) -> a dict; a non-object
    value is wrapped as {"value": v}. None when the text is not JSON: what that means is the
    dialect's decision."""
    if raw is None:
        return {}
    if isinstance(raw, dict):  # some clients send the object itself
        return raw
    if not isinstance(raw, str):
        raise ir.RequestError(f"{where} must be a JSON string", where)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else {"value": value}


# ---------------------------------------------------------------- freeform ("custom") tools


def add_custom_tool(
    req: ir.Request, name: str, description: str, fmt: dict[str, Any] | None, where: str
) -> None:
    """A custom tool -> an IR function tool with one string parameter `input` (its grammar in the
    parameter's description, for upstreams that cannot enforce it), marked custom in req.extras
    (ir.CUSTOM_TOOLS, ir.CUSTOM_TOOL_FORMATS). `fmt` is in the Responses form."""
    params = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": _input_hint(fmt, where)}},
        "required": ["input"],
    }
    req.tools.append(ir.Tool(name, description, params))
    mark_custom(req, name)
    if fmt is not None:
        req.extras.setdefault(ir.CUSTOM_TOOL_FORMATS, {})[name] = fmt


def mark_custom(req: ir.Request, name: str) -> None:
    """`name` is a custom tool: calls to it carry {"input": <raw text>}."""
    names: list[str] = req.extras.setdefault(ir.CUSTOM_TOOLS, [])
    if name not in names:
        names.append(name)


def _input_hint(fmt: dict[str, Any] | None, where: str) -> str:
    """What the single `input` string must hold: the custom tool's grammar travels here, since
    a function-calling upstream cannot enforce it."""
    plain = "The raw input text for this tool, as plain text (not JSON)."
    if fmt is None or fmt.get("type") != "grammar":
        return plain
    syntax, definition = fmt.get("syntax"), fmt.get("definition")
    if not isinstance(definition, str):
        raise ir.RequestError(f"{where}.definition must be a string", f"{where}.definition")
    label = syntax if isinstance(syntax, str) and syntax else "formal"
    return (
        "The raw input text for this tool, as plain text (not JSON). "
        f"It must match this {label} grammar:\n{definition}"
    )


# ================================================================ response


custom_input = ir.custom_input  # the raw text of a custom tool call (shared with upstreams)


def args_json(args: object) -> str:
    """Arguments as JSON text; never empty, so clients can always json.loads it."""
    if not args:
        return "{}"
    try:
        return dumps(args)
    except (TypeError, ValueError):
        return "{}"
