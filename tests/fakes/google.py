"""FakeGoogle: Code Assist (`/v1internal:*`) and Google OAuth (`/token`, userinfo) on one loopback
HTTP/1.1 server, as strict as the real services (UPSTREAMS.md §2, §5; DESIGN.md §6).

Layout: spec tables + proto-JSON checker (`check_message`), semantic checks (`validate_generate`,
`validate_count`), scripted replies (`Text`, `Calls`, `Error`, `Raw`, `CutStream`) and their wire
shapes, then the `FakeGoogle` state and the thin HTTP handler. Decisions beyond UPSTREAMS.md:
- `streamGenerateContent` without `?alt=sse` answers one JSON array of wrappers (what the public API
  does, §3); a stream cut (`CutStream`) on such a call or on `generateContent` drops the connection.
- Sending both spellings of one field (`topK` and `top_k`) is a 400, like protobuf's JSON parser.
- A content without `role` is a 400 (the real API defaults it; the proxy must always set one).
- `parametersJsonSchema` rejects `$schema`, `additionalProperties` and type arrays at any depth
  (`strict_json_schema`), stricter than the API reference, as the issue tracker demands.
- The thoughtSignature rule applies to every model (`enforce_signatures`), not only Gemini 3.
- Onboarding (`onboarding`): "onboarded" (default: loadCodeAssist answers a current free tier and
  the account's project), "new-user" (no current tier; free tier is the default; onboardUser
  returns the account's project), "project-required" (no current tier; the default standard tier
  needs `cloudaicompanionProject`, which must be the account's project; without one the operation
  ends with no project), "standard-onboarded" (current standard tier; the project is returned only
  when the request names the account's). `onboard_pending` operations answers say `done: false`
  before the one that finishes (onboardUser's own answer counts). Once onboarded, an account gets
  a current tier from loadCodeAssist whatever the mode.
- An authorization code registered with a PKCE challenge needs the matching S256 `code_verifier`.
- `GET /v1/projects` is the Resource Manager project list (`cloud_projects`), same origin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform "
    "https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"
)
SENTINEL = "skip_thought_signature_validator"
KNOWN_MODELS = (
    "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
    "gemini-3-flash-preview", "gemini-3.1-pro-preview", "gemini-3-flash", "gemini-3.1-flash-lite",
)  # fmt: skip
# 2.5 thinkingBudget ranges: (min, max, 0 allowed); -1 (dynamic) is always allowed.
BUDGETS = {
    "gemini-2.5-pro": (128, 32768, False),
    "gemini-2.5-flash": (0, 24576, True),
    "gemini-2.5-flash-lite": (512, 24576, True),
}
AUTH_INVALID = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
AUTH_MISSING = AUTH_INVALID.replace(
    "Request had invalid authentication credentials.",
    "Request is missing required authentication credential.",
)
SIGNATURE_MISSING = (
    "Function call is missing a thought_signature in functionCall parts. This is required for "
    "tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}` , position {pos}. Please "
    "refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
RESPONSE_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of "
    "function call parts of the function call turn."
)
BAD_NAME = (
    "Invalid function name. Must start with a letter or an underscore. Must be alphameric "
    "(a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length "
    "of 64."
)
WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
B64_RE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
TYPE_PREFIX = "type.googleapis.com/google.internal.cloud.code.v1internal."


class GoogleError(Exception):
    """A google.rpc.Status error reply: `{"error":{"code","message","status","details"?}}`."""

    def __init__(
        self, code: int, status: str, message: str, details: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.code, self.status, self.message = code, status, message
        self.details, self.headers = details or [], headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


# ---------------------------------------------------------------- proto-JSON spec tables
# Field types: scalar names below, a message name, "E:<enum>", "[T]" repeated, "{T}" map<string,T>.
# Keys are the camelCase json names; the snake_case proto names are accepted too.
MESSAGES: dict[str, dict[str, str]] = {
    "Envelope": {"model": "string", "project": "string", "userPromptId": "string",
                 "request": "Request", "enabledCreditTypes": "[string]"},
    "Request": {"contents": "[Content]", "systemInstruction": "Content", "cachedContent": "string",
                "tools": "[Tool]", "toolConfig": "ToolConfig", "labels": "{string}",
                "safetySettings": "[SafetySetting]", "generationConfig": "GenerationConfig",
                "sessionId": "string"},
    "CountEnvelope": {"request": "CountRequest"},
    "CountRequest": {"model": "string", "contents": "[Content]"},
    "Content": {"role": "string", "parts": "[Part]"},
    "Part": {"text": "string", "inlineData": "Blob", "fileData": "FileData",
             "functionCall": "FunctionCall", "functionResponse": "FunctionResponse",
             "thought": "bool", "thoughtSignature": "bytes", "executableCode": "ExecutableCode",
             "codeExecutionResult": "CodeExecutionResult", "videoMetadata": "struct",
             "partMetadata": "struct"},
    "Blob": {"mimeType": "string", "data": "bytes"},
    "FileData": {"mimeType": "string", "fileUri": "string"},
    "FunctionCall": {"id": "string", "name": "string", "args": "struct"},
    "FunctionResponse": {"id": "string", "name": "string", "response": "struct",
                         "parts": "[FunctionResponsePart]", "willContinue": "bool",
                         "scheduling": "string"},
    "FunctionResponsePart": {"inlineData": "Blob", "fileData": "FileData"},
    "ExecutableCode": {"language": "string", "code": "string"},
    "CodeExecutionResult": {"outcome": "string", "output": "string"},
    "Tool": {"functionDeclarations": "[FunctionDeclaration]", "googleSearch": "struct",
             "codeExecution": "struct", "urlContext": "struct", "googleSearchRetrieval": "struct"},
    "FunctionDeclaration": {"name": "string", "description": "string", "parameters": "Schema",
                            "parametersJsonSchema": "value", "response": "Schema",
                            "responseJsonSchema": "value", "behavior": "string"},
    "Schema": {"type": "E:Type", "format": "string", "title": "string", "description": "string",
               "nullable": "bool", "enum": "[string]", "items": "Schema",
               "properties": "{Schema}", "required": "[string]", "minItems": "int",
               "maxItems": "int", "minProperties": "int", "maxProperties": "int",
               "minLength": "int", "maxLength": "int", "pattern": "string", "minimum": "float",
               "maximum": "float", "default": "value", "example": "value", "anyOf": "[Schema]",
               "propertyOrdering": "[string]"},
    "ToolConfig": {"functionCallingConfig": "FunctionCallingConfig", "retrievalConfig": "struct"},
    "FunctionCallingConfig": {"mode": "E:Mode", "allowedFunctionNames": "[string]"},
    "SafetySetting": {"category": "string", "threshold": "string", "method": "string"},
    "GenerationConfig": {"temperature": "float", "topP": "float", "topK": "float",
                         "candidateCount": "int", "maxOutputTokens": "int",
                         "stopSequences": "[string]", "responseLogprobs": "bool", "logprobs": "int",
                         "presencePenalty": "float", "frequencyPenalty": "float", "seed": "int",
                         "responseMimeType": "string", "responseSchema": "Schema",
                         "responseJsonSchema": "value", "routingConfig": "struct",
                         "modelSelectionConfig": "struct", "responseModalities": "[string]",
                         "mediaResolution": "string", "speechConfig": "struct",
                         "audioTimestamp": "bool", "thinkingConfig": "ThinkingConfig"},
    "ThinkingConfig": {"includeThoughts": "bool", "thinkingBudget": "int",
                       "thinkingLevel": "E:ThinkingLevel"},
}  # fmt: skip
ENUMS = {
    "Type": {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT",
             "NULL"},
    "Mode": {"MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"},
    "ThinkingLevel": {"THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"},
}  # fmt: skip
SCALAR_TYPES = {"string": "TYPE_STRING", "bool": "TYPE_BOOL", "float": "TYPE_FLOAT",
                "int": "TYPE_INT32", "bytes": "TYPE_BYTES",
                "struct": "type.googleapis.com/google.protobuf.Struct"}  # fmt: skip
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
             "executableCode", "codeExecutionResult")  # fmt: skip


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


_INDEX = {m: {**{snake(k): k for k in f}, **{k: k for k in f}} for m, f in MESSAGES.items()}


def _at(path: str) -> str:
    return f" at '{path}'" if path else ""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_message(value: Any, msg: str, path: str, errs: list[tuple[str, str]]) -> dict:
    """Parse `value` as message `msg` like proto-JSON: collect every error into `errs` as
    (field path, description) and return a copy with camelCase keys and nulls dropped."""
    if not isinstance(value, dict):
        errs.append((path, _bad_value(path, msg, value)))
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        camel = _INDEX[msg].get(key)
        if camel is None:
            errs.append((path, f'Invalid JSON payload received. Unknown name "{key}"{_at(path)}: '
                               "Cannot find field."))  # fmt: skip
            continue
        if camel in out:
            errs.append((path, f"Invalid JSON payload received. '{snake(camel)}' has already "
                               f"been set{_at(path)}."))  # fmt: skip
            continue
        typ = MESSAGES[msg][camel]
        if item is None:
            continue  # proto-JSON: null means "unset"
        if isinstance(item, list) and not typ.startswith("[") and typ != "value":
            errs.append((path, f'Invalid JSON payload received. Unknown name "{key}"{_at(path)}: '
                               "Proto field is not repeating, cannot start list."))  # fmt: skip
            continue
        out[camel] = _check_value(item, typ, _join(path, snake(camel)), errs)
    return out


def _check_value(v: Any, typ: str, path: str, errs: list[tuple[str, str]]) -> Any:
    if typ.startswith("["):
        if not isinstance(v, list):
            errs.append((path, _bad_value(path, typ[1:-1], v)))
            return []
        return [_check_value(x, typ[1:-1], f"{path}[{i}]", errs) for i, x in enumerate(v)]
    if typ.startswith("{"):
        if not isinstance(v, dict):
            errs.append((path, _bad_value(path, typ, v)))
            return {}
        return {
            k: _check_value(x, typ[1:-1], f"{path}[{i}].value", errs)
            for i, (k, x) in enumerate(v.items())
        }
    if typ in MESSAGES:
        return check_message(v, typ, path, errs)
    if _scalar_ok(v, typ):
        return int(v) if typ == "int" else v
    errs.append((path, _bad_value(path, typ, v)))
    return v


def _scalar_ok(v: Any, typ: str) -> bool:
    if typ == "value":
        return True
    if typ.startswith("E:"):
        return isinstance(v, str) and v.upper() in ENUMS[typ[2:]]
    if typ == "struct":
        return isinstance(v, dict)
    if typ == "bool" or isinstance(v, bool):
        return typ == "bool" and isinstance(v, bool)
    if typ == "string":
        return isinstance(v, str)
    if typ == "bytes":
        return isinstance(v, str) and bool(B64_RE.fullmatch(v)) and len(v.rstrip("=")) % 4 != 1
    if typ == "int":  # proto-JSON takes integral numbers and numeric strings
        if isinstance(v, str):
            return bool(re.fullmatch(r"-?\d+", v))
        return isinstance(v, int) or (isinstance(v, float) and v.is_integer())
    return isinstance(v, int | float) or (isinstance(v, str) and _is_float(v))


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _bad_value(path: str, typ: str, v: Any) -> str:
    if typ == "bytes" and isinstance(v, str):
        return f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{v}\""
    name = SCALAR_TYPES.get(typ) or TYPE_PREFIX + typ.removeprefix("E:").strip("[]{}")
    return f"Invalid JSON payload received. Invalid value at '{path}' ({name}), {json.dumps(v)}"


def parse_or_raise(body: Any, msg: str) -> dict:
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received. Root element must be a message.")
    errs: list[tuple[str, str]] = []
    out = check_message(body, msg, "", errs)
    if errs:
        violations = [{"field": p, "description": d} for p, d in errs]
        bad_request = {"@type": "type.googleapis.com/google.rpc.BadRequest",
                       "fieldViolations": violations}  # fmt: skip
        raise GoogleError(400, "INVALID_ARGUMENT", "\n".join(d for _, d in errs), [bad_request])
    return out


# ---------------------------------------------------------------- semantic checks


def validate_generate(
    body: Any, project: str, models: set[str], *, enforce_signatures: bool = True,
    strict_json_schema: bool = True,
) -> dict:  # fmt: skip
    """Check a generate envelope like Code Assist; return it normalised (camelCase) or raise."""
    env = parse_or_raise(body, "Envelope")
    if not env.get("project"):
        raise invalid("Invalid project: the request must name the Code Assist project ('project').")
    if env["project"] != project:
        raise GoogleError(403, "PERMISSION_DENIED",
                          "Permission 'cloudaicompanion.companions.generateChat' denied on "
                          f"resource '//cloudaicompanion.googleapis.com/projects/{env['project']}/"
                          "locations/global' (or it may not exist).")  # fmt: skip
    model = check_model(env.get("model"), models, prefixed=False)
    req = env.get("request") or {}
    contents = req.get("contents") or []
    check_contents(contents)
    if "systemInstruction" in req:
        check_system(req["systemInstruction"])
    check_tools(req.get("tools") or [], strict_json_schema)
    check_thinking(model, (req.get("generationConfig") or {}).get("thinkingConfig") or {})
    check_turns(contents)
    if enforce_signatures:
        check_signatures(contents)
    return env


def validate_count(body: Any, models: set[str]) -> dict:
    """countTokens takes exactly {"request":{"model":"models/<m>","contents":[…]}} (§2.5)."""
    req = parse_or_raise(body, "CountEnvelope").get("request") or {}
    check_model(req.get("model"), models, prefixed=True)
    check_contents(req.get("contents") or [])
    return req


def check_model(model: str | None, models: set[str], *, prefixed: bool) -> str:
    if not model:
        raise invalid("Request contains an invalid argument: 'model' is required.")
    if prefixed != model.startswith("models/"):
        want = "models/<id>" if prefixed else "a bare model id (no 'models/' prefix)"
        raise invalid(f'Invalid model name "{model}": expected {want}.')
    name = model.removeprefix("models/")
    if name not in models:
        raise GoogleError(404, "NOT_FOUND", "Requested entity was not found.")
    return name


def check_contents(contents: list[dict]) -> None:
    if not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    for ci, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            raise invalid("Please use a valid role: user, model.")
        check_parts(content.get("parts") or [], f"GenerateContentRequest.contents[{ci}]")


def check_parts(parts: list[dict], path: str) -> None:
    if not parts:
        raise invalid(f"* {path}.parts: contents.parts must not be empty.\n")
    for pi, part in enumerate(parts):
        data = [k for k in PART_DATA if k in part]
        if not data:
            raise invalid(f"* {path}.parts[{pi}].data: required oneof field 'data' must have "
                          "one initialized field\n")  # fmt: skip
        if len(data) > 1:
            raise invalid(f"Invalid JSON payload received. Invalid value at "
                          f"'{path}.parts[{pi}]' (oneof), oneof field 'data' is already set. "
                          f"Cannot set '{data[1]}'")  # fmt: skip
        for kind in ("functionCall", "functionResponse"):
            if kind in part and not part[kind].get("name"):
                raise invalid(f"* {path}.parts[{pi}].{snake(kind)}.name: Name cannot be empty.\n")


def check_system(system: dict) -> None:
    path = "GenerateContentRequest.system_instruction"
    check_parts(system.get("parts") or [], path)
    if any("text" not in p for p in system["parts"]):
        raise invalid(f"* {path}.parts: system instruction parts must be text.\n")


def check_tools(tools: list[dict], strict_json_schema: bool) -> None:
    seen: set[str] = set()
    for ti, tool in enumerate(tools):
        for di, decl in enumerate(tool.get("functionDeclarations") or []):
            path = f"GenerateContentRequest.tools[{ti}].function_declarations[{di}]"
            name = decl.get("name", "")
            if not NAME_RE.fullmatch(name):
                raise invalid(f"* {path}.name: {BAD_NAME}\n")
            if name in seen:
                raise invalid(f"Duplicate function declaration found: {name}")
            seen.add(name)
            if "parameters" in decl and "parametersJsonSchema" in decl:
                raise invalid(f"* {path}: parameters and parameters_json_schema are mutually "
                              "exclusive; set only one of them.\n")  # fmt: skip
            if "parameters" in decl:
                check_schema(decl["parameters"], f"{path}.parameters")
            if strict_json_schema and "parametersJsonSchema" in decl:
                bad = json_schema_errors(decl["parametersJsonSchema"],
                                         f"request.tools[{ti}].function_declarations[{di}]"
                                         ".parameters_json_schema")  # fmt: skip
                if bad:
                    raise invalid("\n".join(bad))


def check_schema(schema: dict, path: str) -> None:
    """What the Schema proto parse cannot see: `required` names and `enum` on non-strings."""
    props = schema.get("properties") or {}
    for i, name in enumerate(schema.get("required") or []):
        if name not in props:
            raise invalid(f"* {path}.required[{i}]: property is not defined\n")
    if "enum" in schema and str(schema.get("type", "")).upper() != "STRING":
        raise invalid(f"* {path}.enum: only allowed for STRING type\n")
    for key, sub in props.items():
        check_schema(sub, f"{path}.properties[{key}]")
    for sub_path, sub in [(f"{path}.items", schema.get("items"))] + [
        (f"{path}.any_of[{i}]", s) for i, s in enumerate(schema.get("anyOf") or [])
    ]:
        if sub:
            check_schema(sub, sub_path)


def json_schema_errors(schema: Any, path: str) -> list[str]:
    """`$schema`, `additionalProperties` and type arrays anywhere in a parametersJsonSchema."""
    if not isinstance(schema, dict):
        return []
    errs = [f'Invalid JSON payload received. Unknown name "{k}" at \'{path}\': Cannot find field.'
            for k in ("$schema", "additionalProperties") if k in schema]  # fmt: skip
    if isinstance(schema.get("type"), list):
        errs.append(f'Invalid JSON payload received. Unknown name "type" at \'{path}\': '
                    "Proto field is not repeating, cannot start list.")  # fmt: skip
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        subs = schema.get(key)
        for name, sub in subs.items() if isinstance(subs, dict) else ():
            errs += json_schema_errors(sub, f"{path}.{key}.{name}")
    for key in ("items", "not", "contains", "additionalItems", "anyOf", "oneOf", "allOf",
                "prefixItems"):  # fmt: skip
        subs = schema.get(key)
        for i, sub in enumerate(subs if isinstance(subs, list) else [subs]):
            errs += json_schema_errors(sub, f"{path}.{key}[{i}]")
    return errs


def check_thinking(model: str, tc: dict) -> None:
    family = "3" if model.startswith("gemini-3") else ""
    family = "2.5" if model.startswith("gemini-2.5") else family
    if "thinkingLevel" in tc and family == "2.5":
        raise invalid("Thinking level is not supported for this model.")
    if "thinkingBudget" in tc and family == "3":
        raise invalid("Thinking budget is not supported for this model; use thinking_level.")
    budget, limits = tc.get("thinkingBudget"), BUDGETS.get(model)
    if budget is None or limits is None or budget == -1:
        return
    low, high, zero_ok = limits
    if budget == 0 and not zero_ok:
        raise invalid("Budget 0 is invalid. This model only works in thinking mode.")
    if not (low <= budget <= high or (budget == 0 and zero_ok)):
        raise invalid(f"The thinking budget {budget} is invalid. Please choose a value between "
                      f"{low} and {high}.")  # fmt: skip


def _count(content: dict | None, kind: str) -> int:
    return sum(kind in p for p in (content or {}).get("parts", []))


def check_turns(contents: list[dict]) -> None:
    """A function call turn follows a user turn; the next turn answers every call."""
    for i, content in enumerate(contents):
        prev = contents[i - 1] if i else None
        nxt = contents[i + 1] if i + 1 < len(contents) else None
        calls = _count(content, "functionCall")
        if calls and prev is not None and prev["role"] == "model":
            raise invalid("Please ensure that function call turn comes immediately after a user "
                          "turn or after a function response turn.")  # fmt: skip
        if (
            calls
            and nxt is not None
            and (nxt["role"] != "user" or _count(nxt, "functionResponse") != calls)
        ):
            raise invalid(RESPONSE_COUNT)
        if _count(content, "functionResponse") and not _count(prev, "functionCall"):
            raise invalid("Please ensure that function response turn comes immediately after a "
                          "function call turn.")  # fmt: skip


def check_signatures(contents: list[dict]) -> None:
    """§2.8: in the current tool loop the first functionCall of each model turn is signed."""
    start = -1
    for i, c in enumerate(contents):
        if c["role"] == "user" and _count(c, "text") and not _count(c, "functionResponse"):
            start = i
    for i in range(start + 1, len(contents)):
        calls = [p for p in contents[i]["parts"] if "functionCall" in p]
        if contents[i]["role"] == "model" and calls and not calls[0].get("thoughtSignature"):
            name = calls[0]["functionCall"]["name"]
            raise invalid(SIGNATURE_MISSING.format(name=name, pos=i + 1))


def count_tokens(contents: list[dict]) -> int:
    """The fake's deterministic token count: (characters of text, and of JSON-dumped function
    calls/responses) // 4, + 1 per part, + 258 per inlineData. Both spellings are read."""
    chars = parts = images = 0
    for content in contents:
        for part in content.get("parts") or []:
            parts += 1
            images += "inlineData" in part or "inline_data" in part
            if isinstance(part.get("text"), str):
                chars += len(part["text"])
            for key in ("functionCall", "function_call", "functionResponse", "function_response"):
                if key in part:
                    chars += len(_dumps(part[key]))
    return chars // 4 + parts + 258 * images


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- scripted replies


@dataclass(frozen=True)
class Text:
    text: str
    thought: str | None = None
    finish: str = "STOP"


@dataclass(frozen=True)
class Calls:
    """functionCall parts (whole, in one event); the first carries a fresh thoughtSignature."""

    calls: list[tuple[str, dict]]
    text_before: str | None = None


@dataclass(frozen=True)
class Error:
    status: int
    body: dict | str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Raw:
    """Exact parts: one stream event per part, all of them in a non-stream reply."""

    parts: list[dict]
    finish: str = "STOP"


@dataclass(frozen=True)
class CutStream:
    """Send `after_events` events of `reply` (default: the default reply), then drop the socket."""

    after_events: int
    reply: Text | Calls | Raw | None = None


Reply = Text | Calls | Error | Raw | CutStream


def rate_limited(delay: str = "1s", reason: str = "RATE_LIMIT_EXCEEDED", model: str = "") -> Error:
    """A 429 RESOURCE_EXHAUSTED shaped like §2.7."""
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "cloudcode-pa.googleapis.com",
            "metadata": {"model": model, "quotaResetDelay": delay}}  # fmt: skip
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
    msg = f"You have exhausted your capacity on this model. Your quota will reset after {delay}."
    return Error(429, GoogleError(429, "RESOURCE_EXHAUSTED", msg, [info, retry]).body())


def split_text(text: str) -> list[str]:
    """2 or 3 chunks cut after spaces (one chunk for a single word)."""
    words = re.findall(r"\S*\s*", text)[:-1] or [text]
    n = min(3, len(words))
    size = -(-len(words) // n)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def default_reply(req: dict) -> Text:
    contents = req.get("contents") or []
    last = next((c for c in reversed(contents) if c["role"] == "user"), {"parts": []})
    answers = [p["functionResponse"].get("response", {}) for p in last["parts"]
               if "functionResponse" in p]  # fmt: skip
    user_text = "\n".join(p["text"] for p in last["parts"] if "text" in p and not p.get("thought"))
    text = "Tool said: " + _dumps(answers) if answers else "Echo: " + user_text
    config = req.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        text = _dumps({"echo": user_text})
    thinking = (config.get("thinkingConfig") or {}).get("includeThoughts")
    return Text(text, "Thinking about the answer." if thinking else None)


def plan(reply: Text | Calls | Raw, sign: Any) -> tuple[list[list[dict]], list[dict], str]:
    """(stream events as part lists, the whole parts for a non-stream reply, finishReason)."""
    if isinstance(reply, Raw):
        return [[p] for p in reply.parts] or [[]], list(reply.parts), reply.finish
    events: list[list[dict]] = []
    whole: list[dict] = []
    if isinstance(reply, Text) and reply.thought is not None:
        thought = {"thought": True, "text": reply.thought, "thoughtSignature": sign()}
        events.append([thought])
        whole.append(thought)
    text = reply.text if isinstance(reply, Text) else reply.text_before
    if text is not None:
        events += [[{"text": chunk}] for chunk in split_text(text)]
        whole.append({"text": text})
    if isinstance(reply, Calls):
        calls = [{"functionCall": {"name": n, "args": a}} for n, a in reply.calls]
        if calls:
            calls[0]["thoughtSignature"] = sign()
            events.append(calls)
            whole += calls
    return events or [[]], whole, reply.finish if isinstance(reply, Text) else "STOP"


def wrapper(parts: list[dict], model: str, usage: dict, finish: str | None, trace: str) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    resp = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
    return {"response": resp, "traceId": trace}


def usage_for(req: dict, whole: list[dict]) -> dict[str, int]:
    system = req.get("systemInstruction")
    prompt = count_tokens((req.get("contents") or []) + ([system] if system else []))
    thoughts = count_tokens([{"parts": [p for p in whole if p.get("thought")]}])
    out = count_tokens([{"parts": [p for p in whole if not p.get("thought")]}])
    return {"promptTokenCount": prompt, "candidatesTokenCount": out,
            "totalTokenCount": prompt + out + thoughts, "thoughtsTokenCount": thoughts}  # fmt: skip


# ---------------------------------------------------------------- state and routing


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None  # parsed JSON (form fields for /token), None when not parseable
    rpc: str | None = None  # Code Assist method name, e.g. "streamGenerateContent"
    status: int = 0  # what the fake answered (0 = connection dropped before a status line)


@dataclass
class _Account:
    project: str
    email: str


@dataclass
class _Out:
    status: int = 200
    body: Any = None  # JSON-able, or bytes/str sent verbatim
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict] | None = None  # SSE stream when set
    cut_after: int | None = None
    drop: bool = False  # close the connection without answering


FREE = {
    "id": "free-tier",
    "name": "Gemini Code Assist for individuals",
    "userDefinedCloudaicompanionProject": False,
}
STANDARD = {
    "id": "standard-tier",
    "name": "Gemini Code Assist",
    "userDefinedCloudaicompanionProject": True,
}
ONBOARD_TIERS = {  # allowedTiers of loadCodeAssist for an account not yet onboarded
    "new-user": [{**FREE, "isDefault": True}, STANDARD],
    "project-required": [{**STANDARD, "isDefault": True}],
}  # fmt: skip
RPCS = ("generateContent", "streamGenerateContent", "countTokens", "loadCodeAssist", "onboardUser",
        "retrieveUserQuota", "listExperiments", "recordCodeAssistMetrics")  # fmt: skip


class FakeGoogle:
    """Code Assist + Google OAuth on 127.0.0.1:<ephemeral>. Use as a context manager or
    start()/stop(). Attributes tests may set: token_delay, event_delay, crlf,
    enforce_signatures, strict_json_schema."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[_Account, bool]] = {}  # access token -> (account, expired)
        self._refresh: dict[str, _Account] = {}
        self._codes: dict[str, tuple[str, str, _Account, str | None, str | None]] = {}
        self.onboarding = "onboarded"
        self.onboard_pending = 0
        self.cloud_projects: list[str] = []
        self._onboarded: dict[str, str] = {}  # email -> tier, onboarded while the fake runs
        self._operations: dict[str, list[Any]] = {}  # name -> [answers left undone, final LRO]
        self._models = set(KNOWN_MODELS)
        self._queue: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.token_requests: list[dict[str, str]] = []
        self.issued_signatures: list[str] = []
        self.token_delay = 0.0
        self.event_delay = 0.0
        self.crlf = False
        self.enforce_signatures = True
        self.strict_json_schema = True
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def start(self) -> FakeGoogle:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeGoogle not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    # ---- scripting
    def add_account(
        self, access_token: str, refresh_token: str, project: str, *, email: str = "a@example.com",
        expired: bool = False,
    ) -> None:  # fmt: skip
        account = _Account(project, email)
        with self._lock:
            self._tokens[access_token] = (account, expired)
            self._refresh[refresh_token] = account

    def add_auth_code(
        self, code: str, access_token: str, refresh_token: str, project: str, *,
        email: str = "a@example.com", redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> None:  # fmt: skip
        """A one-time authorization code for grant_type=authorization_code; with
        `code_challenge` (S256) the exchange must send the matching `code_verifier`."""
        account = _Account(project, email)
        with self._lock:
            self._codes[code] = (access_token, refresh_token, account, redirect_uri,
                                 code_challenge)  # fmt: skip

    def add_model(self, name: str) -> None:
        with self._lock:
            self._models.add(name)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh.pop(refresh_token, None)

    def expire(self, access_token: str) -> None:
        with self._lock:
            self._tokens[access_token] = (self._tokens[access_token][0], True)

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def calls(self, rpc: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.rpc == rpc]

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.token_requests.clear()
            self.issued_signatures.clear()

    def _sign(self) -> str:
        sig = "sig-" + secrets.token_hex(8)
        with self._lock:
            self.issued_signatures.append(sig)
        return sig

    # ---- request handling (called from handler threads)
    def serve(self, rec: Recorded, raw: bytes, content_type: str) -> _Out:
        with self._lock:
            self.requests.append(rec)
        try:
            out = self._route(rec, raw, content_type)
        except GoogleError as e:
            out = _Out(e.code, e.body(), e.headers)
        except Exception as e:  # a fake bug must show up as such, not as a dropped connection
            out = _Out(500, GoogleError(500, "INTERNAL", f"FakeGoogle bug: {e!r}").body())
        rec.status = 0 if out.drop else out.status
        return out

    def _route(self, rec: Recorded, raw: bytes, content_type: str) -> _Out:
        path = rec.path
        if path == "/token" and rec.method == "POST":
            return self._token(rec, raw, content_type)
        rec.body = _loads(raw)  # recorded even when the request is rejected below
        if path in ("/oauth2/v1/userinfo", "/oauth2/v2/userinfo") and rec.method == "GET":
            account = self._account(rec, "userinfo")
            return _Out(body={"id": "1" + str(abs(hash(account.email)))[:20],
                              "email": account.email, "verified_email": True})  # fmt: skip
        if path.startswith("/v1internal/operations/") and rec.method == "GET":
            account = self._account(rec, "GetOperation")
            return _Out(body=self._poll(path.removeprefix("/v1internal/"), account))
        if path == "/v1/projects" and rec.method == "GET":
            self._account(rec, "ListProjects")
            with self._lock:
                projects = [{"projectId": p, "name": p, "projectNumber": str(100000 + i),
                             "lifecycleState": "ACTIVE"}
                            for i, p in enumerate(self.cloud_projects)]  # fmt: skip
            return _Out(body={"projects": projects} if projects else {})
        rpc = path.removeprefix("/v1internal:")
        if rpc == path or rpc not in RPCS or rec.method != "POST":
            raise GoogleError(404, "NOT_FOUND", f"Method not found: {rec.method} {path}")
        rec.rpc = rpc
        account = self._account(rec, rpc)
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise invalid(f"Invalid Content-Type {content_type!r}: expected application/json.")
        if rec.body is None:
            raise invalid("Invalid JSON payload received. Unexpected token.")
        return self._rpc(rpc, rec, account)

    def _account(self, rec: Recorded, method: str) -> _Account:
        auth = rec.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        with self._lock:
            found = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found and not found[1]:
            return found[0]
        reason = "ACCESS_TOKEN_EXPIRED" if found else (
            "ACCESS_TOKEN_TYPE_UNSUPPORTED" if auth else "CREDENTIALS_MISSING")  # fmt: skip
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "cloudcode-pa.googleapis.com",
                             "method": method}}  # fmt: skip
        hdr = {"WWW-Authenticate": WWW_AUTHENTICATE}
        msg = AUTH_INVALID if auth else AUTH_MISSING
        raise GoogleError(401, "UNAUTHENTICATED", msg, [info], hdr)

    def _rpc(self, rpc: str, rec: Recorded, account: _Account) -> _Out:
        body = rec.body
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received. Root element must be a message.")
        if rpc in ("generateContent", "streamGenerateContent"):
            return self._generate(rec, account)
        with self._lock:
            models = set(self._models)
        if rpc == "countTokens":
            contents = validate_count(body, models)["contents"]
            return _Out(body={"totalTokens": count_tokens(contents)})
        if rpc in ("retrieveUserQuota", "listExperiments"):
            if not body.get("project"):
                raise invalid("Request contains an invalid argument: 'project' is required.")
            if body["project"] != account.project:
                raise GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission")
        if rpc == "loadCodeAssist":
            return _Out(body=self._load_code_assist(body, account))
        if rpc == "onboardUser":
            return _Out(body=self._onboard(body, account))
        answers = {"retrieveUserQuota": {"buckets": []},
                   "listExperiments": {"experimentIds": [], "flags": []}}  # fmt: skip
        return _Out(body=answers.get(rpc, {}))

    def _mode(self, account: _Account) -> tuple[str, str | None]:
        with self._lock:
            return self.onboarding, self._onboarded.get(account.email)

    def _load_code_assist(self, body: dict, account: _Account) -> dict:
        mode, tier = self._mode(account)
        if mode == "onboarded" or tier:
            return {"currentTier": {"id": tier or "free-tier"},
                    "cloudaicompanionProject": account.project}  # fmt: skip
        if mode == "standard-onboarded":
            out: dict[str, Any] = {"currentTier": {"id": "standard-tier"}}
            if body.get("cloudaicompanionProject") == account.project:
                out["cloudaicompanionProject"] = account.project
            return out
        return {"allowedTiers": ONBOARD_TIERS[mode]}

    def _onboard(self, body: dict, account: _Account) -> dict:
        tier = body.get("tierId")
        if tier == "free-tier" and "cloudaicompanionProject" in body:
            raise GoogleError(400, "FAILED_PRECONDITION", "Precondition Failed")
        mode, onboarded = self._mode(account)
        if mode in ("onboarded", "standard-onboarded") or onboarded:
            return _lro("operations/x", account.project)
        tiers = {t["id"]: t for t in ONBOARD_TIERS[mode]}
        if tier not in tiers:
            raise invalid(f"Invalid tier id: {tier!r}.")
        response: dict[str, Any] = {}
        if tiers[tier]["userDefinedCloudaicompanionProject"]:
            project = body.get("cloudaicompanionProject")
            if project is not None and project != account.project:
                raise GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission")
            if project is not None:
                response = {"cloudaicompanionProject": {"id": project, "name": project}}
        else:
            response = {"cloudaicompanionProject": {"id": account.project,
                                                    "name": account.project}}  # fmt: skip
        name = "operations/onboard-" + secrets.token_hex(4)
        final = {"name": name, "done": True, "response": response}
        with self._lock:
            self._operations[name] = [self.onboard_pending, final, account.email, tier]
        return self._poll(name, account)

    def _poll(self, name: str, account: _Account) -> dict:
        with self._lock:
            op = self._operations.get(name)
            if op is None:
                return _lro(name, account.project)
            if op[0] > 0:
                op[0] -= 1
                return {"name": name, "done": False}
            del self._operations[name]
            if op[1]["response"]:
                self._onboarded[op[2]] = op[3]
            return op[1]

    def _generate(self, rec: Recorded, account: _Account) -> _Out:
        with self._lock:
            models = set(self._models)
        env = validate_generate(rec.body, account.project, models,
                                enforce_signatures=self.enforce_signatures,
                                strict_json_schema=self.strict_json_schema)  # fmt: skip
        req, model = env.get("request") or {}, env["model"]
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if isinstance(reply, Error):
            body = reply.body if isinstance(reply.body, dict) else reply.body.encode()
            return _Out(reply.status, body, dict(reply.headers or {}))
        cut = reply.after_events if isinstance(reply, CutStream) else None
        if isinstance(reply, CutStream):
            reply = reply.reply
        events, whole, finish = plan(reply or default_reply(req), self._sign)
        usage, trace = usage_for(req, whole), secrets.token_hex(8)
        early = {k: v for k, v in usage.items() if k != "candidatesTokenCount"}
        early["totalTokenCount"] = usage["promptTokenCount"] + usage["thoughtsTokenCount"]
        wrappers = [
            wrapper(parts, model, usage if i == len(events) - 1 else early,
                    finish if i == len(events) - 1 else None, trace)
            for i, parts in enumerate(events)
        ]  # fmt: skip
        if rec.rpc == "streamGenerateContent" and rec.query.get("alt") == "sse":
            return _Out(events=wrappers, cut_after=cut)
        if cut is not None:
            return _Out(drop=True)
        if rec.rpc == "streamGenerateContent":
            return _Out(body=wrappers)
        single = wrapper(whole, model, usage, finish, trace)
        single["response"]["responseId"] = trace
        return _Out(body=single)

    def _token(self, rec: Recorded, raw: bytes, content_type: str) -> _Out:
        form: dict[str, str] = {}
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        rec.body = form
        with self._lock:
            self.token_requests.append(form)
        if self.token_delay:
            time.sleep(self.token_delay)
        grant = form.get("grant_type", "")
        if grant not in ("refresh_token", "authorization_code"):
            return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        if form.get("client_id") != CLIENT_ID:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if form.get("client_secret") != CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", "Unauthorized")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if "refresh_token" not in form:
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        with self._lock:
            account = self._refresh.get(form["refresh_token"])
        if account is None:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        access = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access] = (account, False)
        return _Out(body={"access_token": access, "expires_in": 3599, "scope": SCOPES,
                          "token_type": "Bearer"})  # fmt: skip

    def _exchange_code(self, form: dict[str, str]) -> _Out:
        with self._lock:
            entry = self._codes.pop(form.get("code", ""), None)
        if entry is None:
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        access, refresh, account, redirect, challenge = entry
        if redirect is not None and form.get("redirect_uri") != redirect:
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier:
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        with self._lock:
            self._tokens[access] = (account, False)
            self._refresh[refresh] = account
        claims = base64.urlsafe_b64encode(_dumps({"email": account.email}).encode()).rstrip(b"=")
        return _Out(body={"access_token": access, "expires_in": 3599, "refresh_token": refresh,
                          "scope": SCOPES, "token_type": "Bearer",
                          "id_token": f"eyJhbGciOiJub25lIn0.{claims.decode()}."})  # fmt: skip


def _lro(name: str, project: str) -> dict:
    return {"name": name, "done": True,
            "response": {"cloudaicompanionProject": {"id": project, "name": project}}}  # fmt: skip


def _oauth_error(status: int, error: str, description: str) -> _Out:
    return _Out(status, {"error": error, "error_description": description})


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# ---------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end on their own

    def setup(self) -> None:
        super().setup()
        # headers and body go out as separate writes: without NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive exchange
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = Recorded(self.command, url.path, query, headers)
        out = self.server.fake.serve(rec, self._read_body(), self.headers.get("Content-Type", ""))  # type: ignore[attr-defined]
        try:
            if out.drop:
                self.close_connection = True
            elif out.events is not None:
                self._stream(out)
            else:
                self._reply(out)
        except OSError:  # the client went away
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return body
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, out: _Out) -> None:
        body, ctype = out.body, "application/json; charset=UTF-8"
        if isinstance(body, str):
            body = body.encode()
        if isinstance(body, bytes):
            ctype = "text/html; charset=UTF-8" if body.lstrip().startswith(b"<") else "text/plain"
        else:
            body = _dumps(body).encode()
        self.send_response(out.status)
        headers = {"Content-Type": ctype, **out.headers, "Content-Length": str(len(body))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, out: _Out) -> None:
        fake: FakeGoogle = self.server.fake  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        end = b"\r\n\r\n" if fake.crlf else b"\n\n"
        for i, event in enumerate(out.events or []):
            if out.cut_after is not None and i >= out.cut_after:
                break
            if i and fake.event_delay:
                time.sleep(fake.event_delay)
            data = b"data: " + _dumps(event).encode() + end
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if out.cut_after is not None:
            self.close_connection = True  # no terminating chunk: the client sees a cut body
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
