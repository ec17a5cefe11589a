"""FakeCodex: the ChatGPT Codex backend (`POST /backend-api/codex/responses`) and the OpenAI OAuth
token endpoint (`POST /oauth/token`) on one loopback HTTP/1.1 server, as strict as the real services
(docs/upstreams.md "Codex", "OpenAI OAuth"; docs/architecture.md "Tests").

Layout: constants, JWT/PKCE helpers, request checks (`validate_request`), scripted replies (`Text`,
`Calls`, `CustomCall`, `WebSearch`, `UsageLimit`, `HttpError`, `Failed`, `Cut`) and their SSE
shapes, then the `FakeCodex` state and the thin HTTP handler. Decisions beyond docs/upstreams.md:
- 400s carry `{"detail": …}` (what the backend sends for its own checks); the messages for
  nested type/value errors copy the public Responses API's wording. Only the unknown-item-id 404
  and the 401 use the `{"error": {…}}` shape.
- Unknown keys inside tools, input items and content parts are rejected
  (`Unknown parameter: 'p'.`), like the public Responses API.
- Tool names and `call_id`s longer than 64 characters are refused with the backend's own
  `string_above_max_length` error (`{"error": {…}}` shape, as captured from the real backend:
  "Invalid 'input[95].call_id': string too long. Expected a string with maximum length 64, …").
- Every function_call / custom_tool_call / local_shell_call in `input` needs a matching output item
  (`No tool output found for function call call_….`, a real Responses API rule), and every output
  needs an earlier call of its kind (a function_call_output does not answer a custom_tool_call).
- A reasoning input item needs an `encrypted_content` this fake issued; `encrypted_content` is only
  issued when `include` has `reasoning.encrypted_content`, and summary text only streams when
  `reasoning.summary` asks for it (both as the real backend does).
- The codex.rate_limits event comes first, before response.created, and like the real one carries
  no `sequence_number`; the `response.*` events are numbered from 0.
- An authorization code is spent by any exchange attempt, failed ones included (RFC 6749 §4.1.2).
- Scripted replies are only consumed by requests that pass every check.
- Request bodies may be gzip/deflate/zstd encoded (Codex compresses); other encodings are a 400.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.http import Answer
from tests.fakes.http import FakeHandler
from tests.fakes.http import LoopbackServer
from tests.fakes.http import loads

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
RESPONSES_PATH = "/backend-api/codex/responses"
TOKEN_PATH = "/oauth/token"
SCOPE = "openid profile email offline_access"
JWT_KEY = b"fake-codex-hs256-key"  # HS256 with a fixed key: clients never verify, tests may
KNOWN_MODELS = ("gpt-5", "gpt-5-codex", "gpt-5.5", "codex-mini-latest", "gpt-5.4-mini")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed", "none")
VERBOSITIES = ("low", "medium", "high")
# The ChatGPT backend takes these two only: "flex", "fast", "turbo", "scale" and "auto" are
# `400 {"detail": "Unsupported service_tier: …"}` (verified against it by other proxies:
# azerozero/grob#382, openai/codex#15099, can1357/oh-my-pi#6451).
SERVICE_TIERS = ("default", "priority")
ALLOWED_KEYS = frozenset({
    "model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
    "store", "stream", "include", "prompt_cache_key", "text", "service_tier", "client_metadata",
})  # fmt: skip
INCLUDABLE = frozenset({
    "reasoning.encrypted_content", "message.output_text.logprobs", "web_search_call.action.sources",
    "web_search_call.results", "message.input_image.image_url",
})  # fmt: skip
TOOL_TYPES = ("function", "custom", "web_search", "tool_search", "namespace", "local_shell")
ITEM_TYPES = (
    "message", "function_call", "function_call_output", "custom_tool_call",
    "custom_tool_call_output", "reasoning", "local_shell_call", "web_search_call",
)  # fmt: skip
ROLES = ("user", "assistant", "developer")
INPUT_PARTS = ("input_text", "input_image", "input_file")
OUTPUT_PARTS = ("output_text", "refusal")
IMAGE_DETAILS = ("auto", "low", "high")
TOOL_NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")
MAX_NAME = 64  # tools[].name and input[].call_id: longer is `string_above_max_length`
VERIFIER_RE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
DATA_URL_RE = re.compile(r"data:(image/[a-z0-9.+-]+);base64,([A-Za-z0-9+/]*={0,2})", re.I)

TOKEN_INVALIDATED = "Your authentication token has been invalidated. Please try signing in again."
REFRESH_INVALIDATED = "Your refresh token is invalid. Please try signing in again."
REFRESH_REUSED = (
    "Your refresh token has already been used to generate a new access token. "
    "Please try signing in again."
)
REFRESH_EXPIRED = "Your refresh token has expired. Please try signing in again."
ITEM_NOT_FOUND = (
    "Item with id '{id}' not found. Items are not persisted when `store` is set to false. Try "
    "again with `store` set to true, or remove this item from your input."
)
USAGE_LIMIT = "The usage limit has been reached"

# ---------------------------------------------------------------- errors


class CodexError(Exception):
    """A non-200 reply: status, JSON body, extra headers."""

    def __init__(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        super().__init__(json.dumps(body))
        self.status, self.body, self.headers = status, body, headers or {}


def detail(message: str, status: int = 400) -> CodexError:
    return CodexError(status, {"detail": message})


def _kind(value: Any) -> str:
    """How the Responses API names a JSON value's type in 'Invalid type' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _type(path: str, want: str, value: Any) -> CodexError:
    return detail(f"Invalid type for '{path}': expected {want}, but got {_kind(value)} instead.")


def _one_of(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _bad_value(value: Any, allowed: tuple[str, ...]) -> CodexError:
    return detail(f"Invalid value: '{value}'. Supported values are: {_one_of(allowed)}.")


def _too_long(path: str, value: str) -> CodexError:
    message = (
        f"Invalid '{path}': string too long. Expected a string with maximum length {MAX_NAME}, "
        f"but got a string with length {len(value)} instead."
    )
    error = {"message": message, "type": "invalid_request_error", "param": path,
             "code": "string_above_max_length"}  # fmt: skip
    return CodexError(400, {"error": error})


def _check_length(value: str, path: str) -> str:
    if len(value) > MAX_NAME:
        raise _too_long(path, value)
    return value


def _missing(path: str) -> CodexError:
    return detail(f"Missing required parameter: '{path}'.")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- JWT and PKCE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    """An HS256 JWT (fixed key, base64url without padding) carrying `claims`."""
    head = _b64(_dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(_dumps(claims).encode())
    sig = hmac.new(JWT_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def jwt_claims(token: str) -> dict:
    """The payload of a JWT (no signature check), {} when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def pkce_challenge(verifier: str) -> str:
    """S256: base64url-no-pad(SHA-256(verifier))."""
    return _b64(hashlib.sha256(verifier.encode()).digest())


# ---------------------------------------------------------------- request checks


def validate_request(body: Any, models: set[str], issued_reasoning: set[str]) -> dict:
    """Check a Responses body like the Codex backend; return it unchanged or raise CodexError."""
    if not isinstance(body, dict):
        raise detail("Request body must be a JSON object.")
    for key in body:
        if key not in ALLOWED_KEYS:
            raise detail(f"Unsupported parameter: {key}")
    if body.get("stream") is not True:
        raise detail("Stream must be set to true")
    if body.get("store") is not False:
        raise detail("Store must be set to false")
    if body.get("instructions") is None:
        raise detail("Instructions are required")
    _expect_str(body["instructions"], "instructions")
    check_model(body.get("model"), models)
    check_reasoning(body.get("reasoning"))
    check_text(body.get("text"))
    check_include(body.get("include"))
    check_scalars(body)
    names = check_tools(body.get("tools"))
    check_tool_choice(body.get("tool_choice"), names)
    check_input(body.get("input"), issued_reasoning)
    return body


def _expect_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _type(path, "a string", value)
    return value


def _expect_dict(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _type(path, "an object", value)
    return value


def _expect_list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise _type(path, "an array", value)
    return value


def _only_keys(obj: dict, allowed: set[str] | frozenset[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise detail(f"Unknown parameter: '{path}.{key}'.")


def check_model(model: Any, models: set[str]) -> None:
    if model is None:
        raise _missing("model")
    if _expect_str(model, "model") not in models:
        raise detail(
            f"The '{model}' model is not supported when using Codex with a ChatGPT account."
        )


def check_reasoning(reasoning: Any) -> None:
    if reasoning is None:
        return
    _expect_dict(reasoning, "reasoning")
    for key in reasoning:
        if key not in ("effort", "summary"):
            raise detail(f"Unsupported parameter: reasoning.{key}")
    for key, allowed in (("effort", EFFORTS), ("summary", SUMMARIES)):
        value = reasoning.get(key)
        if value is not None and value not in allowed:
            raise _bad_value(value, allowed)


def check_text(text: Any) -> None:
    if text is None:
        return
    _only_keys(_expect_dict(text, "text"), {"verbosity", "format"}, "text")
    verbosity = text.get("verbosity")
    if verbosity is not None and verbosity not in VERBOSITIES:
        raise _bad_value(verbosity, VERBOSITIES)
    fmt = text.get("format")
    if fmt is None:
        return
    _expect_dict(fmt, "text.format")
    kind = fmt.get("type")
    if kind not in ("text", "json_schema", "json_object"):
        raise _bad_value(kind, ("text", "json_schema", "json_object"))
    if kind != "json_schema":
        _only_keys(fmt, {"type"}, "text.format")
        return
    _only_keys(fmt, {"type", "name", "schema", "strict", "description"}, "text.format")
    for key in ("name", "schema"):
        if key not in fmt:
            raise _missing(f"text.format.{key}")
    _expect_str(fmt["name"], "text.format.name")
    _expect_dict(fmt["schema"], "text.format.schema")


def check_include(include: Any) -> None:
    if include is None:
        return
    for i, value in enumerate(_expect_list(include, "include")):
        if _expect_str(value, f"include[{i}]") not in INCLUDABLE:
            raise _bad_value(value, tuple(sorted(INCLUDABLE)))


def check_scalars(body: dict) -> None:
    if body.get("parallel_tool_calls") is not None and not isinstance(
        body["parallel_tool_calls"], bool
    ):
        raise _type("parallel_tool_calls", "a boolean", body["parallel_tool_calls"])
    if body.get("prompt_cache_key") is not None:
        _expect_str(body["prompt_cache_key"], "prompt_cache_key")
    tier = body.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        raise detail(f"Unsupported service_tier: {tier}")
    meta = body.get("client_metadata")
    if meta is not None:
        for key, value in _expect_dict(meta, "client_metadata").items():
            _expect_str(value, f"client_metadata.{key}")


def check_tools(tools: Any) -> dict[str, str]:
    """Return {tool name: tool type} for tool_choice."""
    names: dict[str, str] = {}
    if tools is None:
        return names
    for i, tool in enumerate(_expect_list(tools, "tools")):
        path = f"tools[{i}]"
        _expect_dict(tool, path)
        kind = tool.get("type")
        if kind is None:
            raise _missing(f"{path}.type")
        if kind not in TOOL_TYPES:
            raise _bad_value(kind, TOOL_TYPES)
        if kind in ("function", "custom"):
            names[_check_named_tool(tool, kind, path)] = kind
        elif kind == "local_shell":
            _only_keys(tool, {"type"}, path)
    return names


def _check_named_tool(tool: dict, kind: str, path: str) -> str:
    if "name" not in tool:  # a Chat-style {"type":"function","function":{…}} lands here
        raise _missing(f"{path}.name")
    name = _check_length(_expect_str(tool["name"], f"{path}.name"), f"{path}.name")
    if not TOOL_NAME_RE.fullmatch(name):
        raise detail(f"Invalid '{path}.name': string does not match pattern. Expected a string "
                     "that matches the pattern '^[a-zA-Z0-9_-]+$'.")  # fmt: skip
    if tool.get("description") is not None:
        _expect_str(tool["description"], f"{path}.description")
    if kind == "custom":
        _only_keys(tool, {"type", "name", "description", "format"}, path)
        if tool.get("format") is not None:
            _expect_dict(tool["format"], f"{path}.format")
        return name
    _only_keys(tool, {"type", "name", "description", "parameters", "strict"}, path)
    if tool.get("strict") is not None and not isinstance(tool["strict"], bool):
        raise _type(f"{path}.strict", "a boolean", tool["strict"])
    params = tool.get("parameters")
    # an empty schema means "no parameters"; any other must describe an object
    if params is not None and _expect_dict(params, f"{path}.parameters"):  # noqa: SIM102
        if params.get("type") != "object":
            raise detail(f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                         f"'type: \"object\"', got 'type: \"{params.get('type')}\"'.")  # fmt: skip
    return name


def check_tool_choice(choice: Any, names: dict[str, str]) -> None:
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise _bad_value(choice, ("auto", "none", "required"))
        return
    _expect_dict(choice, "tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        if not isinstance(name, str) or names.get(name) != kind:
            raise detail(f"Tool choice '{name}' not found in 'tools' parameter.")
    elif kind not in ("web_search", "local_shell", "allowed_tools"):
        raise _bad_value(kind, ("function", "custom", "web_search", "local_shell", "allowed_tools"))


CALL_KINDS = {"function_call": "function call", "custom_tool_call": "custom tool call",
              "local_shell_call": "local shell call"}  # fmt: skip


def check_input(items: Any, issued_reasoning: set[str]) -> None:
    if items is None:
        raise _missing("input")
    calls: dict[str, str] = {}  # call_id -> item type, in input order
    answered: set[str] = set()
    for i, item in enumerate(_expect_list(items, "input")):
        path = f"input[{i}]"
        _expect_dict(item, path)
        if item.get("id") is not None:  # store:false persists nothing an id could name
            msg = ITEM_NOT_FOUND.format(id=item["id"])
            raise CodexError(404, {"error": {"message": msg, "type": "invalid_request_error",
                                             "param": "input", "code": None}})  # fmt: skip
        kind = item.get("type", "message" if "role" in item else None)
        if kind is None:
            raise _missing(f"{path}.type")
        if kind not in ITEM_TYPES:
            raise _bad_value(kind, ITEM_TYPES)
        if kind == "message":
            _check_message(item, path)
        elif kind in CALL_KINDS:
            call_id = _check_call(item, kind, path)
            calls[call_id] = kind
        elif kind in ("function_call_output", "custom_tool_call_output"):
            answered.add(_check_output(item, kind, path, calls))
        elif kind == "reasoning":
            _check_reasoning_item(item, path, issued_reasoning)
        else:  # web_search_call: the backend's own item, replayed as is
            _only_keys(item, {"type", "id", "status", "action"}, path)
    for call_id, kind in calls.items():
        if call_id not in answered:
            raise detail(f"No tool output found for {CALL_KINDS[kind]} {call_id}.")


def _check_message(item: dict, path: str) -> None:
    _only_keys(item, {"type", "role", "content", "status", "id"}, path)
    role = item.get("role")
    if role == "system":
        raise detail("System messages are not allowed")
    if role not in ROLES:
        raise _bad_value(role, ("user", "assistant", "system", "developer"))
    content = item.get("content")
    if content is None:
        raise _missing(f"{path}.content")
    if isinstance(content, str):
        return
    allowed = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
    for j, part in enumerate(_expect_list(content, f"{path}.content")):
        _check_part(part, allowed, f"{path}.content[{j}]")


def _check_part(part: Any, allowed: tuple[str, ...], path: str) -> None:
    _expect_dict(part, path)
    kind = part.get("type")
    if kind not in allowed:
        raise _bad_value(kind, allowed)
    if kind in ("input_text", "output_text"):
        keys = {"type", "text"} | ({"annotations", "logprobs"} if kind == "output_text" else set())
        _only_keys(part, keys, path)
        if "text" not in part:
            raise _missing(f"{path}.text")
        _expect_str(part["text"], f"{path}.text")
    elif kind == "refusal":
        _only_keys(part, {"type", "refusal"}, path)
        _expect_str(part.get("refusal"), f"{path}.refusal")
    elif kind == "input_image":
        _check_image(part, path)
    else:
        _only_keys(part, {"type", "file_data", "file_id", "filename", "file_url"}, path)
        if not any(part.get(k) is not None for k in ("file_data", "file_id", "file_url")):
            raise _missing(f"{path}.file_data")


def _check_image(part: dict, path: str) -> None:
    _only_keys(part, {"type", "image_url", "detail", "file_id"}, path)
    if part.get("detail") is not None and part["detail"] not in IMAGE_DETAILS:
        raise _bad_value(part["detail"], IMAGE_DETAILS)
    url = part.get("image_url")
    if url is None:
        if part.get("file_id") is None:
            raise _missing(f"{path}.image_url")
        return
    _expect_str(url, f"{path}.image_url")  # a Chat-style {"url": …} object fails here
    if url.startswith(("https://", "http://")):
        return
    match = DATA_URL_RE.fullmatch(url)
    if match is None or len(match.group(2).rstrip("=")) % 4 == 1:
        raise detail(f"Invalid '{path}.image_url'. Expected a base64-encoded data URL with an "
                     "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), or "
                     "a URL.")  # fmt: skip


def _check_call(item: dict, kind: str, path: str) -> str:
    if kind == "local_shell_call":
        _only_keys(item, {"type", "id", "call_id", "status", "action"}, path)
        fields: tuple[str, ...] = ("call_id",)
        _expect_dict(item.get("action"), f"{path}.action")
    else:
        payload = "arguments" if kind == "function_call" else "input"
        _only_keys(item, {"type", "id", "call_id", "name", "status", payload}, path)
        fields = ("call_id", "name", payload)
    for key in fields:
        if key not in item:
            raise _missing(f"{path}.{key}")
        _expect_str(item[key], f"{path}.{key}")
    return _check_length(item["call_id"], f"{path}.call_id")


def _check_output(item: dict, kind: str, path: str, calls: dict[str, str]) -> str:
    _only_keys(item, {"type", "id", "call_id", "output", "status"}, path)
    for key in ("call_id", "output"):
        if key not in item:
            raise _missing(f"{path}.{key}")
    call_id = _check_length(_expect_str(item["call_id"], f"{path}.call_id"), f"{path}.call_id")
    # an output answers a call of its own kind: a function_call_output does not answer a
    # custom_tool_call (nor the reverse); local_shell_call is answered by function_call_output
    want = ("function_call", "local_shell_call") if kind == "function_call_output" else (
        "custom_tool_call",)  # fmt: skip
    if calls.get(call_id) not in want:
        what = "function call" if kind == "function_call_output" else "custom tool call"
        raise detail(f"No tool call found for {what} output with call_id {call_id}.")
    output = item["output"]
    if not isinstance(output, str):
        for j, part in enumerate(_expect_list(output, f"{path}.output")):
            _check_part(part, INPUT_PARTS, f"{path}.output[{j}]")
    return call_id


def _check_reasoning_item(item: dict, path: str, issued: set[str]) -> None:
    _only_keys(item, {"type", "id", "summary", "content", "encrypted_content", "status"}, path)
    if "summary" not in item:
        raise _missing(f"{path}.summary")
    for j, part in enumerate(_expect_list(item["summary"], f"{path}.summary")):
        _expect_dict(part, f"{path}.summary[{j}]")
        _only_keys(part, {"type", "text"}, f"{path}.summary[{j}]")
        if part.get("type") != "summary_text":
            raise _bad_value(part.get("type"), ("summary_text",))
        _expect_str(part.get("text"), f"{path}.summary[{j}].text")
    if item.get("content") is not None:
        _expect_list(item["content"], f"{path}.content")
    enc = item.get("encrypted_content")
    if enc is None:
        raise _missing(f"{path}.encrypted_content")
    if _expect_str(enc, f"{path}.encrypted_content") not in issued:
        shown = enc if len(enc) <= 24 else enc[:12] + "…" + enc[-8:]
        raise detail(f"The encrypted content {shown} could not be verified.")


# ---------------------------------------------------------------- scripted replies


@dataclass(frozen=True)
class Text:
    """A message; with `reasoning`, a reasoning item first (summary deltas when asked for)."""

    text: str
    reasoning: str | None = None


@dataclass(frozen=True)
class Calls:
    """function_call items, after an optional reasoning item and message."""

    calls: list[tuple[str, dict]]
    text_before: str | None = None
    reasoning: str | None = None
    # the real backend may interleave output items: every call announced first, argument
    # fragments round-robin, then the done events
    interleave: bool = False
    # response.incomplete (max_output_tokens) after this many argument fragments of the calls
    # (the last call is cut in the middle; no done event for it)
    cut_after_fragments: int | None = None


@dataclass(frozen=True)
class CustomCall:
    name: str
    input_text: str


@dataclass(frozen=True)
class WebSearch:
    """The backend searches the web (a `web_search_call` item), then answers `text`. Only when
    the request offers the `web_search` tool: without it the model cannot search and just
    answers. The pages go in `action.sources` only when `include` asks for
    `web_search_call.action.sources` (as the real backend does)."""

    query: str
    sources: list[tuple[str, str]]  # (url, title)
    text: str


@dataclass(frozen=True)
class UsageLimit:
    """429 usage_limit_reached with `resets_in_seconds` (older) or `resets_at` (newer)."""

    resets_in_seconds: int
    plan: str = "plus"
    use_resets_at: bool = False


@dataclass(frozen=True)
class HttpError:
    status: int
    body: dict | str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Failed:
    """A 200 stream: response.created, then response.failed with this error."""

    code: str
    message: str
    # as an `error` event instead (`{"type":"error","error":{"type","code","message"}}`), the
    # shape the backend uses for policy refusals such as cyber_policy
    error_event_type: str | None = None


@dataclass(frozen=True)
class Cut:
    """Send `after_events` SSE events of `reply` (default: the default reply; the leading
    codex.rate_limits event counts), then drop the connection without the terminating chunk."""

    after_events: int
    reply: Text | Calls | CustomCall | WebSearch | Failed | None = None


@dataclass(frozen=True)
class Stall:
    """Accept the call, then send nothing for `seconds` and drop the socket: before the status
    line, or after `after_events` SSE events of `reply` (counted as for `Cut`)."""

    seconds: float
    after_events: int | None = None
    reply: Text | Calls | CustomCall | Failed | None = None


Reply = Text | Calls | CustomCall | WebSearch | UsageLimit | HttpError | Failed | Cut | Stall


def split_text(text: str) -> list[str]:
    """2 or 3 chunks, cut after spaces; a single word is cut in half; "" gives no chunk."""
    if not text:
        return []
    words = re.findall(r"\S*\s*", text)[:-1] or [text]
    if len(words) == 1:
        mid = max(1, len(text) // 2)
        return [text[:mid], text[mid:]] if len(text) > 1 else [text]
    n = min(3, len(words))
    size = -(-len(words) // n)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def split_json(arguments: str) -> list[str]:
    """At least two fragments (a compact JSON object is never shorter than `{}`)."""
    n = 3 if len(arguments) >= 3 else 2
    size = -(-len(arguments) // n)
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def output_text(output: Any) -> str:
    """A tool output's string form: the string itself, or its text parts joined."""
    if isinstance(output, str):
        return output
    parts = output if isinstance(output, list) else []
    return "\n".join(p.get("text", "") for p in parts if isinstance(p, dict)
                     and p.get("type") == "input_text")  # fmt: skip


def default_reply(body: dict) -> Text:
    items = body.get("input") or []
    last = items[-1] if items else {}
    if last.get("type") in ("function_call_output", "custom_tool_call_output"):
        return Text("Tool said: " + output_text(last.get("output")))
    for item in reversed(items):
        if item.get("role") == "user" and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                return Text("Echo: " + content)
            texts = [p["text"] for p in content if p.get("type") == "input_text"]
            return Text("Echo: " + "\n".join(texts))
    return Text("Echo: ")


def count_tokens(text: str) -> int:
    """The fake's deterministic token count."""
    return len(text) // 4 + 1 if text else 0


class _Stream:
    """Builds one response's SSE events (numbered) and its final output list."""

    def __init__(self, body: dict, issue: Any) -> None:
        self.body, self.issue = body, issue
        self.events: list[dict] = []
        self.output: list[dict] = []
        self.reasoning_tokens = self.visible_tokens = 0
        self.id = "resp_" + secrets.token_hex(16)
        self.created_at = int(time.time())
        reasoning = body.get("reasoning") or {}
        self.summarize = reasoning.get("summary") in ("auto", "concise", "detailed")
        self.encrypt = "reasoning.encrypted_content" in (body.get("include") or [])

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def response(self, status: str, usage: dict | None = None, error: dict | None = None) -> dict:
        body, reasoning = self.body, self.body.get("reasoning") or {}
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "background": False, "error": error, "incomplete_details": None,
            "instructions": body["instructions"], "max_output_tokens": None,
            "model": body["model"], "output": list(self.output) if status != "in_progress" else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None, "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": body.get("service_tier") or "auto", "store": False,
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
            "truncation": "disabled", "usage": usage, "metadata": {},
        }  # fmt: skip

    def start(self) -> None:
        self.emit("response.created", response=self.response("in_progress"))
        self.emit("response.in_progress", response=self.response("in_progress"))

    def _added(self, item: dict) -> int:
        index = len(self.output)
        self.emit("response.output_item.added", output_index=index, item=item)
        return index

    def _done(self, index: int, item: dict) -> None:
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)

    def reasoning(self, text: str) -> None:
        item_id = "rs_" + secrets.token_hex(16)
        head: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
        enc = self.issue() if self.encrypt else None
        if enc is not None:
            head["encrypted_content"] = enc
        index = self._added(head)
        summary = []
        if self.summarize:
            ids = {"item_id": item_id, "output_index": index, "summary_index": 0}
            empty = {"type": "summary_text", "text": ""}
            self.emit("response.reasoning_summary_part.added", **ids, part=empty)
            for chunk in split_text(text):
                self.emit("response.reasoning_summary_text.delta", **ids, delta=chunk)
            self.emit("response.reasoning_summary_text.done", **ids, text=text)
            summary = [{"type": "summary_text", "text": text}]
            self.emit("response.reasoning_summary_part.done", **ids, part=summary[0])
        self._done(index, {**head, "summary": summary})
        self.reasoning_tokens += count_tokens(text)

    def message(self, text: str) -> None:
        item_id = "msg_" + secrets.token_hex(16)
        head = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant"}
        index = self._added({**head, "content": []})
        ids = {"item_id": item_id, "output_index": index, "content_index": 0}
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        self.emit("response.content_part.added", **ids, part=part)
        for chunk in split_text(text):
            self.emit("response.output_text.delta", **ids, delta=chunk, logprobs=[])
        self.emit("response.output_text.done", **ids, text=text, logprobs=[])
        part = {**part, "text": text}
        self.emit("response.content_part.done", **ids, part=part)
        self._done(index, {**head, "status": "completed", "content": [part]})
        self.visible_tokens += count_tokens(text)

    def call(self, name: str, args: dict) -> None:
        item_id, arguments = "fc_" + secrets.token_hex(16), _dumps(args)
        head = {"id": item_id, "type": "function_call", "status": "in_progress",
                "call_id": "call_" + secrets.token_hex(12), "name": name}  # fmt: skip
        index = self._added({**head, "arguments": ""})
        for chunk in split_json(arguments):
            self.emit("response.function_call_arguments.delta", item_id=item_id,
                      output_index=index, delta=chunk)  # fmt: skip
        self.emit("response.function_call_arguments.done", item_id=item_id, output_index=index,
                  name=name, arguments=arguments)  # fmt: skip
        self._done(index, {**head, "status": "completed", "arguments": arguments})
        self.visible_tokens += count_tokens(arguments)

    def interleaved_calls(self, calls: list[tuple[str, dict]], cut: int | None) -> bool:
        """Calls announced together, fragments round-robin, then done in order. With `cut`,
        the response ends `incomplete` after that many fragments; True when it did."""
        heads, pending = [], []
        for name, args in calls:
            item_id, arguments = "fc_" + secrets.token_hex(16), _dumps(args)
            head = {"id": item_id, "type": "function_call", "status": "in_progress",
                    "call_id": "call_" + secrets.token_hex(12), "name": name}  # fmt: skip
            index = len(self.output) + len(heads)
            self.emit("response.output_item.added", output_index=index,
                      item={**head, "arguments": ""})  # fmt: skip
            heads.append((index, head, arguments))
            pending.append(split_json(arguments))
        sent = 0
        while any(pending):
            for (index, head, _), fragments in zip(heads, pending, strict=True):
                if not fragments:
                    continue
                if cut is not None and sent == cut:
                    self.incomplete("max_output_tokens")
                    return True
                self.emit("response.function_call_arguments.delta", item_id=head["id"],
                          output_index=index, delta=fragments.pop(0))  # fmt: skip
                sent += 1
        for index, head, arguments in heads:
            self._done(index, {**head, "status": "completed", "arguments": arguments})
            self.visible_tokens += count_tokens(arguments)
        return False

    def incomplete(self, reason: str) -> None:
        usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 2}  # fmt: skip
        response = {**self.response("incomplete", usage), "incomplete_details": {"reason": reason}}
        self.emit("response.incomplete", response=response)

    def custom_call(self, name: str, text: str) -> None:
        item_id = "ctc_" + secrets.token_hex(16)
        head = {"id": item_id, "type": "custom_tool_call", "status": "in_progress",
                "call_id": "call_" + secrets.token_hex(12), "name": name}  # fmt: skip
        index = self._added({**head, "input": ""})
        for chunk in split_text(text):
            self.emit("response.custom_tool_call_input.delta", item_id=item_id,
                      output_index=index, delta=chunk)  # fmt: skip
        self.emit("response.custom_tool_call_input.done", item_id=item_id, output_index=index,
                  input=text)  # fmt: skip
        self._done(index, {**head, "status": "completed", "input": text})
        self.visible_tokens += count_tokens(text)

    def web_search(self, query: str, sources: list[tuple[str, str]]) -> None:
        item_id = "ws_" + secrets.token_hex(16)
        index = self._added({"id": item_id, "type": "web_search_call", "status": "in_progress"})
        for stage in ("in_progress", "searching", "completed"):
            self.emit(f"response.web_search_call.{stage}", item_id=item_id, output_index=index)
        action: dict[str, Any] = {"type": "search", "query": query}
        if "web_search_call.action.sources" in (self.body.get("include") or []):
            action["sources"] = [{"type": "url", "url": u, "title": t} for u, t in sources]
        self._done(index, {"id": item_id, "type": "web_search_call", "status": "completed",
                           "action": action})  # fmt: skip

    def complete(self) -> None:
        prompt = count_tokens(self.body["instructions"]) + count_tokens(_dumps(self.body["input"]))
        out = self.visible_tokens + self.reasoning_tokens
        usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": out,
                 "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                 "total_tokens": prompt + out}  # fmt: skip
        self.emit("response.completed", response=self.response("completed", usage))

    def fail(self, code: str, message: str) -> None:
        error = {"code": code, "message": message}
        self.emit("response.failed", response=self.response("failed", error=error))


def plan_stream(
    reply: Text | Calls | CustomCall | WebSearch | Failed, body: dict, issue: Any
) -> list[dict]:
    """The `response.*` events of one scripted reply, numbered from 0."""
    s = _Stream(body, issue)
    if isinstance(reply, Failed):
        s.emit("response.created", response=s.response("in_progress"))
        if reply.error_event_type is not None:
            error = {"type": reply.error_event_type, "code": reply.code,
                     "message": reply.message, "param": None}  # fmt: skip
            s.emit("error", error=error)
        else:
            s.fail(reply.code, reply.message)
        return s.events
    s.start()
    if isinstance(reply, Text | Calls) and reply.reasoning is not None:
        s.reasoning(reply.reasoning)
    if isinstance(reply, Text):
        s.message(reply.text)
    elif isinstance(reply, Calls):
        if reply.text_before is not None:
            s.message(reply.text_before)
        if reply.interleave or reply.cut_after_fragments is not None:
            if s.interleaved_calls(reply.calls, reply.cut_after_fragments):
                return s.events
        else:
            for name, args in reply.calls:
                s.call(name, args)
    elif isinstance(reply, WebSearch):
        tools = body.get("tools") or []
        if any(isinstance(t, dict) and t.get("type") == "web_search" for t in tools):
            s.web_search(reply.query, reply.sources)
        s.message(reply.text)
    else:
        s.custom_call(reply.name, reply.input_text)
    s.complete()
    return s.events


def rate_limits_event(plan: str, primary: float, secondary: float) -> dict:
    """The unknown-kind event the real backend sends before response.created."""
    now = int(time.time())
    return {"type": "codex.rate_limits", "plan_type": plan,
            "rate_limits": {"allowed": True, "limit_reached": False,
                            "primary": {"used_percent": primary, "window_minutes": 300,
                                        "reset_after_seconds": 9000, "reset_at": now + 9000},
                            "secondary": {"used_percent": secondary, "window_minutes": 10080,
                                          "reset_after_seconds": 400000,
                                          "reset_at": now + 400000}},
            "code_review_rate_limits": None}  # fmt: skip


def usage_limit_body(reply: UsageLimit) -> dict:
    err: dict[str, Any] = {"type": "usage_limit_reached", "message": USAGE_LIMIT,
                           "plan_type": reply.plan}  # fmt: skip
    if reply.use_resets_at:
        err["resets_at"] = int(time.time()) + reply.resets_in_seconds
    else:
        err["resets_in_seconds"] = reply.resets_in_seconds
    return {"error": err}


# ---------------------------------------------------------------- state and routing


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any = None  # parsed JSON (token endpoint: the fields), None when not parseable
    status: int = 0  # what the fake answered (0 = connection dropped before a status line)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    id_token: str
    account_id: str
    email: str

    def auth_file(self) -> dict[str, str]:
        """A Codex auth file (docs/configuration.md "Auth files") for these tokens."""
        exp = jwt_claims(self.access_token).get("exp", 0)
        return {"type": "codex", "email": self.email, "account_id": self.account_id,
                "id_token": self.id_token, "access_token": self.access_token,
                "refresh_token": self.refresh_token, "last_refresh": _rfc3339(time.time()),
                "expired": _rfc3339(exp)}  # fmt: skip


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Account:
    account_id: str
    email: str
    plan: str
    user_id: str
    expires_in: int


@dataclass
class _Access:
    account: _Account
    exp: float
    expired: bool = False


@dataclass
class _Refresh:
    account: _Account
    state: str = "valid"  # valid | used | revoked | expired


@dataclass
class _Code:
    account: _Account
    challenge: str
    redirect_uri: str


class FakeCodex(LoopbackServer):
    """Codex backend + OpenAI OAuth token endpoint on 127.0.0.1:<ephemeral>. Use as a context
    manager or start()/stop(). Attributes tests may set: token_delay, event_delay,
    primary_used_percent, secondary_used_percent."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self._lock = threading.Lock()
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._codes: dict[str, _Code] = {}
        self._models = set(KNOWN_MODELS)
        self._queue: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.token_requests: list[dict[str, Any]] = []
        self.issued_reasoning: list[str] = []
        self.token_delay = 0.0
        self.event_delay = 0.0
        self.primary_used_percent = 12.0
        self.secondary_used_percent = 3.0

    # ---- addresses (start()/stop() and `origin`: LoopbackServer)
    @property
    def base_url(self) -> str:
        """endpoints.codex: the proxy posts to base_url + "/responses"."""
        return self.origin + "/backend-api/codex"

    @property
    def token_url(self) -> str:
        return self.origin + TOKEN_PATH

    # ---- scripting
    def add_account(
        self, account_id: str, *, email: str = "c@example.com", plan: str = "plus",
        expires_in: int = 3600, refresh_token: str | None = None,
    ) -> Tokens:  # fmt: skip
        """A signed-in account: a valid access token (exp = now + expires_in) and refresh token."""
        account = _Account(account_id, email, plan, "user-" + secrets.token_hex(8), expires_in)
        return self._issue(account, refresh_token)

    def add_auth_code(
        self, code: str, *, code_challenge: str, redirect_uri: str, account_id: str, email: str,
        plan: str = "plus",
    ) -> None:  # fmt: skip
        """A single-use code for grant_type=authorization_code (PKCE S256)."""
        account = _Account(account_id, email, plan, "user-" + secrets.token_hex(8), 3600)
        with self._lock:
            self._codes[code] = _Code(account, code_challenge, redirect_uri)

    def add_model(self, name: str) -> None:
        with self._lock:
            self._models.add(name)

    def expire(self, access_token: str) -> None:
        with self._lock:
            self._access[access_token].expired = True

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh[refresh_token].state = "revoked"

    def expire_refresh(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh[refresh_token].state = "expired"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def responses_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == RESPONSES_PATH]

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.token_requests.clear()
            self.peer_closed.clear()
            self.connections.clear()

    def _issue(self, account: _Account, refresh_token: str | None = None) -> Tokens:
        now = int(time.time())
        exp = now + account.expires_in
        auth = {"chatgpt_account_id": account.account_id, "chatgpt_plan_type": account.plan,
                "chatgpt_user_id": account.user_id, "user_id": account.user_id}  # fmt: skip
        access = make_jwt({"iat": now, "exp": exp, "jti": secrets.token_hex(8), AUTH_CLAIM: auth,
                           PROFILE_CLAIM: {"email": account.email}})  # fmt: skip
        id_token = make_jwt({"iat": now, "exp": exp, "email": account.email,
                             AUTH_CLAIM: {"chatgpt_account_id": account.account_id,
                                          "chatgpt_plan_type": account.plan}})  # fmt: skip
        refresh = refresh_token or "rt_" + secrets.token_urlsafe(32)
        with self._lock:
            self._access[access] = _Access(account, exp)
            self._refresh[refresh] = _Refresh(account)
        return Tokens(access, refresh, id_token, account.account_id, account.email)

    def _issue_reasoning(self) -> str:
        enc = "gAAAAB" + _b64(secrets.token_bytes(48))
        with self._lock:
            self.issued_reasoning.append(enc)
        return enc

    # ---- request handling (called from handler threads)
    def serve(self, rec: Recorded, raw: bytes) -> Answer:
        with self._lock:
            self.requests.append(rec)
        try:
            out = self._route(rec, raw)
        except CodexError as e:
            out = Answer(e.status, e.body, e.headers)
        except Exception as e:  # a fake bug must show up as such, not as a dropped connection
            out = Answer(500, {"detail": f"FakeCodex bug: {e!r}"})
        rec.status = out.status
        return out

    def _route(self, rec: Recorded, raw: bytes) -> Answer:
        if rec.path == TOKEN_PATH:
            if rec.method != "POST":
                raise detail("Method Not Allowed", 405)
            return self._token(rec, raw)
        if rec.path != RESPONSES_PATH:
            raise detail("Not Found", 404)
        if rec.method != "POST":
            raise detail("Method Not Allowed", 405)
        raw = _decode(raw, rec.headers.get("content-encoding", ""))
        rec.body = loads(raw)  # recorded even when the request is rejected below
        account = self._authorize(rec.headers)
        media = rec.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise detail(f"Unsupported Content-Type {media!r}: expected application/json.")
        if rec.body is None:
            raise detail("We could not parse the JSON body of your request.")
        with self._lock:
            models, issued = set(self._models), set(self.issued_reasoning)
        body = validate_request(rec.body, models, issued)
        return self._respond(body, account)

    def _authorize(self, headers: dict[str, str]) -> _Account:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            grant = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.expired or grant.exp <= time.time():
            raise CodexError(401, {"error": {"message": TOKEN_INVALIDATED,
                                             "type": "invalid_request_error",
                                             "code": "token_invalidated"}})  # fmt: skip
        account_id = headers.get("chatgpt-account-id")
        if not account_id:
            raise detail("Missing chatgpt-account-id header", 403)
        if account_id != grant.account.account_id:
            raise detail("chatgpt-account-id does not match the authenticated account", 403)
        return grant.account

    def _respond(self, body: dict, account: _Account) -> Answer:
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        headers = self._rate_headers()
        if isinstance(reply, HttpError):
            payload = reply.body if isinstance(reply.body, dict) else str(reply.body)
            return Answer(reply.status, payload, dict(reply.headers or {}))
        if isinstance(reply, UsageLimit):
            return Answer(429, usage_limit_body(reply), headers)
        if isinstance(reply, Stall) and reply.after_events is None:
            return Answer(stall=reply.seconds)
        stall = reply.seconds if isinstance(reply, Stall) else 0.0
        cut = reply.after_events if isinstance(reply, Cut | Stall) else None
        if isinstance(reply, Cut | Stall):
            reply = reply.reply
        events = plan_stream(reply or default_reply(body), body, self._issue_reasoning)
        limits = rate_limits_event(account.plan, self.primary_used_percent,
                                   self.secondary_used_percent)  # fmt: skip
        return Answer(headers=headers, events=[limits, *events], cut_after=cut, stall=stall)

    def _rate_headers(self) -> dict[str, str]:
        now = int(time.time())
        return {"x-codex-primary-used-percent": f"{self.primary_used_percent:g}",
                "x-codex-primary-window-minutes": "300",
                "x-codex-primary-reset-after-seconds": "9000",
                "x-codex-primary-reset-at": str(now + 9000),
                "x-codex-secondary-used-percent": f"{self.secondary_used_percent:g}",
                "x-codex-secondary-window-minutes": "10080",
                "x-request-id": secrets.token_hex(16)}  # fmt: skip

    # ---- token endpoint
    def _token(self, rec: Recorded, raw: bytes) -> Answer:
        media = rec.headers.get("content-type", "").split(";")[0].strip().lower()
        fields = _token_fields(media, raw)
        rec.body = fields
        with self._lock:
            self.token_requests.append(dict(fields or {}))
        if self.token_delay:
            time.sleep(self.token_delay)
        if fields is None:
            message = "The request body must be JSON or form-encoded fields."
            return _oauth_error(400, "invalid_request", message)
        grant = fields.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return Answer(400, {"error": "unsupported_grant_type",
                              "error_description": f"Unsupported grant type: {grant}"})  # fmt: skip
        if fields.get("client_id") != CLIENT_ID:
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        if grant == "authorization_code":
            return self._exchange_code(fields)
        return self._refresh_grant(fields)

    def _refresh_grant(self, fields: dict[str, str]) -> Answer:
        token = fields.get("refresh_token")
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        with self._lock:  # check and spend atomically: of two racing refreshes one wins
            entry = self._refresh.get(token)
            state = entry.state if entry is not None else "unknown"
            if entry is not None and state == "valid":
                entry.state = "used"
        if entry is None or state != "valid":
            code, message = {
                "used": ("refresh_token_reused", REFRESH_REUSED),
                "expired": ("refresh_token_expired", REFRESH_EXPIRED),
            }.get(state, ("refresh_token_invalidated", REFRESH_INVALIDATED))
            return _oauth_error(401, code, message)
        return self._token_reply(self._issue(entry.account))

    def _exchange_code(self, fields: dict[str, str]) -> Answer:
        with self._lock:  # single use: any attempt spends the code
            entry = self._codes.pop(fields.get("code", ""), None)
        if entry is None:
            return _grant_error("Invalid authorization code.")
        if fields.get("redirect_uri") != entry.redirect_uri:
            return _grant_error("redirect_uri does not match the authorization request.")
        verifier = fields.get("code_verifier", "")
        if not VERIFIER_RE.fullmatch(verifier) or pkce_challenge(verifier) != entry.challenge:
            return _grant_error("Invalid code_verifier.")
        return self._token_reply(self._issue(entry.account))

    def _token_reply(self, tokens: Tokens) -> Answer:
        with self._lock:
            expires_in = self._access[tokens.access_token].account.expires_in
        return Answer(body={"access_token": tokens.access_token,
                          "refresh_token": tokens.refresh_token, "id_token": tokens.id_token,
                          "expires_in": expires_in, "token_type": "Bearer",
                          "scope": SCOPE})  # fmt: skip


def _token_fields(media: str, raw: bytes) -> dict[str, str] | None:
    """The token request's fields from a JSON object (Codex) or a form (CLIProxyAPI)."""
    if media == "application/x-www-form-urlencoded":
        pairs = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in pairs.items()}
    if media == "application/json":
        data = loads(raw)
        if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
            return data
    return None


def _oauth_error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"message": message, "type": "invalid_request_error",
                                   "code": code}})  # fmt: skip


def _grant_error(description: str) -> Answer:
    return Answer(400, {"error": "invalid_grant", "error_description": description})


def _decode(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return raw
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
        if encoding == "zstd":
            import zstandard  # mitmproxy's dependency; only needed when a client compresses

            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    except Exception as e:
        raise detail(f"Could not decode the {encoding} request body: {e}") from e
    raise detail(f"Unsupported Content-Encoding: {encoding}")


# ---------------------------------------------------------------- HTTP


class _Handler(FakeHandler):
    stream_type = "text/event-stream; charset=utf-8"

    def serve(
        self, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        return self.fake.serve(Recorded(self.command, path, query, headers), body)

    def encode_body(self, body: Any) -> tuple[bytes, str]:
        if isinstance(body, str):
            return body.encode(), "text/plain; charset=utf-8"
        return _dumps(body).encode(), "application/json"

    def encode_event(self, event: dict) -> bytes:
        return f"event: {event['type']}\ndata: {_dumps(event)}\n\n".encode()
