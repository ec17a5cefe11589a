"""Request rules shared by FakeGoogle's Code Assist and AI Studio endpoints: the proto-JSON spec
tables and checker (`check_message`, `parse_or_raise`), the semantic checks (`validate_generate`,
`validate_count`, `validate_ai_studio_generate`, `validate_ai_studio_count`) and the fake's token
count. Everything here is importable from `tests.fakes.google` too. See that module's docstring
for the decisions beyond docs/upstreams.md.
"""

from __future__ import annotations

import json
import re
from typing import Any

SENTINEL = "skip_thought_signature_validator"
CORRUPTED_SIGNATURE = "Corrupted thought signature."
KNOWN_MODELS = (
    "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
    "gemini-3-flash-preview", "gemini-3.1-pro-preview", "gemini-3-flash", "gemini-3.1-flash-lite",
    # old 2.5 previews, the targets of `switch-preview-model`
    # (docs/upstreams.md "Models and preview fallback")
    "gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05",
    "gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20",
    "gemini-2.5-flash-lite-preview-06-17",
)  # fmt: skip
# 2.5 thinkingBudget ranges: (min, max, 0 allowed); -1 (dynamic) is always allowed. A dated
# preview (`gemini-2.5-pro-preview-05-06`) follows its family's range (`budget_limits`).
BUDGETS = {
    "gemini-2.5-pro": (128, 32768, False),
    "gemini-2.5-flash": (0, 24576, True),
    "gemini-2.5-flash-lite": (512, 24576, True),
}
PREVIEW_RE = re.compile(r"-preview-\d\d-\d\d$")
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
AI_STUDIO_MODEL_MISSING = (
    "models/{model} is not found for API version v1beta, or is not supported for {method}. Call "
    "ListModels to see the list of available models and their supported methods."
)
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
    # AI Studio (docs/upstreams.md "AI Studio"): the `request` object without `sessionId`;
    # countTokens' two forms
    "PublicRequest": {},  # filled in below from "Request"
    "PublicCount": {"contents": "[Content]", "generateContentRequest": "PublicCountRequest"},
    "PublicCountRequest": {},  # "PublicRequest" + model
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
MESSAGES["PublicRequest"] = {k: v for k, v in MESSAGES["Request"].items() if k != "sessionId"}
MESSAGES["PublicCountRequest"] = {"model": "string", **MESSAGES["PublicRequest"]}
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
    strict_json_schema: bool = True, issued: set[str] | None = None,
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
    check_request(env.get("request") or {}, model, "request.",
                  enforce_signatures=enforce_signatures,
                  strict_json_schema=strict_json_schema, issued=issued)  # fmt: skip
    return env


def validate_ai_studio_generate(
    body: Any, model: str, models: set[str], *, method: str = "generateContent",
    enforce_signatures: bool = True, strict_json_schema: bool = True,
    issued: set[str] | None = None,
) -> dict:  # fmt: skip
    """Check an AI Studio generate body (docs/upstreams.md "AI Studio": the `request` object alone;
    the model is the one in the URL path, so `model`, `project`, `request`, `session_id`… are
    unknown names); return it normalised (camelCase) or raise."""
    req = parse_or_raise(body, "PublicRequest")
    check_ai_studio_model(model, models, method)
    check_request(req, model, "", enforce_signatures=enforce_signatures,
                  strict_json_schema=strict_json_schema, issued=issued)  # fmt: skip
    return req


def validate_ai_studio_count(
    body: Any, model: str, models: set[str], *, strict_json_schema: bool = True
) -> dict:
    """AI Studio countTokens takes `{"contents":[…]}` or `{"generateContentRequest":{"model":
    "models/<m>", …a full request…}}`, exactly one of them (docs/upstreams.md "AI Studio"). Returns
    the parsed body."""
    parsed = parse_or_raise(body, "PublicCount")
    check_ai_studio_model(model, models, "countTokens")
    if "contents" in parsed and "generateContentRequest" in parsed:
        raise invalid("contents and generate_content_request are mutually exclusive; set only "
                      "one of them.")  # fmt: skip
    gen = parsed.get("generateContentRequest")
    if gen is None:
        check_contents(parsed.get("contents") or [])
        return parsed
    if not gen.get("model"):
        raise invalid("* GenerateContentRequest.model: unexpected model name format\n")
    if check_model(gen["model"], models, prefixed=True) != model:
        raise invalid(f"generate_content_request.model ({gen['model']}) does not match the "
                      f"model in the URL (models/{model}).")  # fmt: skip
    # the signature rule belongs to generation; counting a history does not enforce it
    check_request(gen, model, "generate_content_request.", enforce_signatures=False,
                  strict_json_schema=strict_json_schema)  # fmt: skip
    return parsed


def check_ai_studio_model(model: str, models: set[str], method: str) -> None:
    if model not in models:
        raise GoogleError(404, "NOT_FOUND",
                          AI_STUDIO_MODEL_MISSING.format(model=model, method=method))  # fmt: skip


def check_request(
    req: dict, model: str, root: str, *, enforce_signatures: bool, strict_json_schema: bool,
    issued: set[str] | None = None,
) -> None:  # fmt: skip
    """The semantic rules of a (camelCase) GenerateContentRequest, for both APIs; `root` prefixes
    field paths in messages ("request." inside a Code Assist envelope)."""
    contents = req.get("contents") or []
    check_contents(contents)
    if "systemInstruction" in req:
        check_system(req["systemInstruction"])
    check_tools(req.get("tools") or [], strict_json_schema, root)
    check_thinking(model, (req.get("generationConfig") or {}).get("thinkingConfig") or {})
    check_turns(contents)
    if enforce_signatures:
        check_signatures(contents)
        if issued is not None:
            check_signature_values(contents, issued)


def validate_count(body: Any, models: set[str]) -> dict:
    """countTokens takes exactly {"request":{"model":"models/<m>","contents":[…]}}
    (docs/upstreams.md "Code Assist countTokens")."""
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


def check_tools(tools: list[dict], strict_json_schema: bool, root: str = "request.") -> None:
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
                                         f"{root}tools[{ti}].function_declarations[{di}]"
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
    budget, limits = tc.get("thinkingBudget"), budget_limits(model)
    if budget is None or limits is None or budget == -1:
        return
    low, high, zero_ok = limits
    if budget == 0 and not zero_ok:
        raise invalid("Budget 0 is invalid. This model only works in thinking mode.")
    if not (low <= budget <= high or (budget == 0 and zero_ok)):
        raise invalid(f"The thinking budget {budget} is invalid. Please choose a value between "
                      f"{low} and {high}.")  # fmt: skip


def budget_limits(model: str) -> tuple[int, int, bool] | None:
    return BUDGETS.get(model) or BUDGETS.get(PREVIEW_RE.sub("", model))


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
    """docs/upstreams.md "Thought signatures": in the current tool loop the first functionCall of
    each model turn is signed."""
    start = -1
    for i, c in enumerate(contents):
        if c["role"] == "user" and _count(c, "text") and not _count(c, "functionResponse"):
            start = i
    for i in range(start + 1, len(contents)):
        calls = [p for p in contents[i]["parts"] if "functionCall" in p]
        if contents[i]["role"] == "model" and calls and not calls[0].get("thoughtSignature"):
            name = calls[0]["functionCall"]["name"]
            raise invalid(SIGNATURE_MISSING.format(name=name, pos=i + 1))


def check_signature_values(contents: list[dict], issued: set[str]) -> None:
    """A thoughtSignature must be one this service issued (or the documented sentinel): another
    upstream's reasoning token, an Anthropic signature or a forged one is refused with
    "Corrupted thought signature." (what Gemini answers a client that switched to it mid-session
    with the other model's signatures in history; gemini-cli #13467)."""
    for content in contents:
        for part in content.get("parts") or []:
            sig = part.get("thoughtSignature")
            if sig is not None and sig != SENTINEL and sig not in issued:
                raise invalid(CORRUPTED_SIGNATURE)


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
                    chars += len(dumps(part[key]))
    return chars // 4 + parts + 258 * images


def count_request_tokens(req: dict) -> int:
    """A whole request's count (AI Studio countTokens with `generateContentRequest`): contents and
    systemInstruction as in `count_tokens`, plus the JSON-dumped `tools` // 4."""
    system = req.get("systemInstruction")
    tools = req.get("tools")
    tool_tokens = len(dumps(tools)) // 4 if tools else 0
    return count_tokens((req.get("contents") or []) + ([system] if system else [])) + tool_tokens


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
