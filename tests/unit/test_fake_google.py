"""FakeGoogle must be as strict as Code Assist and Google OAuth (docs/upstreams.md "Code Assist",
"Google OAuth"): every rejection fires with the real status and message, valid traffic shaped like
gemini-cli 0.61.0 and google-genai 3.4.0 passes, and the stream framing is exactly "Code Assist
responses and SSE"."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import ssl
import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.fakes.google import AUTH_INVALID
from tests.fakes.google import AUTH_MISSING
from tests.fakes.google import CLIENT_ID
from tests.fakes.google import CLIENT_SECRET
from tests.fakes.google import KEY_INVALID
from tests.fakes.google import KEY_MISSING
from tests.fakes.google import KNOWN_MODELS
from tests.fakes.google import MESSAGES
from tests.fakes.google import RESPONSE_COUNT
from tests.fakes.google import SCOPES
from tests.fakes.google import SENTINEL
from tests.fakes.google import Calls
from tests.fakes.google import CutStream
from tests.fakes.google import Error
from tests.fakes.google import FakeGoogle
from tests.fakes.google import GoogleError
from tests.fakes.google import Raw
from tests.fakes.google import Text
from tests.fakes.google import ai_studio_rate_limited
from tests.fakes.google import count_request_tokens
from tests.fakes.google import count_tokens
from tests.fakes.google import model_info
from tests.fakes.google import rate_limited
from tests.fakes.google import snake
from tests.fakes.google import split_text
from tests.fakes.google import validate_ai_studio_count
from tests.fakes.google import validate_ai_studio_generate
from tests.fakes.google import validate_generate

TOKEN, REFRESH, PROJECT = "ya29.good", "1//refresh-good", "helpful-fox-abc123"
USER = {"role": "user", "parts": [{"text": "List files in src"}]}
SSE = "?alt=sse"
TLS = ssl.create_default_context()  # built once: httpx builds one per client otherwise (~40 ms)


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as f:
        f.add_account(TOKEN, REFRESH, PROJECT, email="me@example.com")
        yield f


@pytest.fixture
def client(fake: FakeGoogle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=10, verify=TLS) as c:
        yield c


def envelope(model: str = "gemini-2.5-pro", **request: Any) -> dict:
    return {"model": model, "project": PROJECT, "user_prompt_id": "7c9e6679",
            "request": {"contents": [copy.deepcopy(USER)], **request}}  # fmt: skip


def post(client: httpx.Client, method: str, body: Any, token: str | None = TOKEN,
         query: str = "") -> httpx.Response:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"/v1internal:{method}{query}", json=body, headers=headers)


def error_of(resp: httpx.Response) -> dict:
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["code"] == resp.status_code
    return err


def tool(**decl: Any) -> list[dict]:
    return [{"functionDeclarations": [{"name": "list_directory", "description": "Lists", **decl}]}]


def call_turn(*names: str, sig: str | None = SENTINEL) -> dict:
    parts: list[dict] = [{"functionCall": {"name": n, "args": {"p": 1}}} for n in names]
    if sig is not None:
        parts[0]["thoughtSignature"] = sig
    return {"role": "model", "parts": parts}


def answer_turn(*names: str) -> dict:
    parts = [{"functionResponse": {"name": n, "response": {"output": n}}} for n in names]
    return {"role": "user", "parts": parts}


# ---------------------------------------------------------------- rejections (table-driven)

PARAMS_AT = "'request.tools[0].function_declarations[0].parameters'"
UNKNOWN_SCHEMA = (
    f'Invalid JSON payload received. Unknown name "$schema" at {PARAMS_AT}: Cannot find field.'
)


def mutate(path: str, value: Any = ..., drop: bool = False) -> Callable[[dict], None]:
    """Set (or delete) a dotted path in the envelope; integer segments index lists."""

    def apply(env: dict) -> None:
        *head, last = path.split(".")
        node: Any = env
        for key in head:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        key = int(last) if last.isdigit() else last
        if drop:
            del node[key]
        else:
            node[key] = value

    return apply


REJECTIONS: list[tuple[str, Callable[[dict], None], int, str, str]] = [
    ("unknown-top", mutate("foo", 1), 400, "INVALID_ARGUMENT",
     'Invalid JSON payload received. Unknown name "foo": Cannot find field.'),
    ("missing-project", mutate("project", drop=True), 400, "INVALID_ARGUMENT", "'project'"),
    ("wrong-project", mutate("project", "other-proj"), 403, "PERMISSION_DENIED",
     "projects/other-proj/locations/global"),
    ("missing-model", mutate("model", drop=True), 400, "INVALID_ARGUMENT", "'model' is required"),
    ("prefixed-model", mutate("model", "models/gemini-2.5-pro"), 400, "INVALID_ARGUMENT",
     "no 'models/' prefix"),
    ("unknown-model", mutate("model", "gemini-9-ultra"), 404, "NOT_FOUND",
     "Requested entity was not found."),
    ("unknown-request-key", mutate("request.system", "hi"), 400, "INVALID_ARGUMENT",
     'Unknown name "system" at \'request\': Cannot find field.'),
    ("tools-in-generation-config", mutate("request.generationConfig", {"tools": []}), 400,
     "INVALID_ARGUMENT", 'Unknown name "tools" at \'request.generation_config\''),
    ("empty-contents", mutate("request.contents", []), 400, "INVALID_ARGUMENT",
     "contents is not specified"),
    ("contents-string", mutate("request.contents", "hi"), 400, "INVALID_ARGUMENT",
     "Invalid value at 'request.contents'"),
    ("role-assistant", mutate("request.contents.0.role", "assistant"), 400, "INVALID_ARGUMENT",
     "Please use a valid role: user, model."),
    ("role-system", mutate("request.contents.0.role", "system"), 400, "INVALID_ARGUMENT",
     "Please use a valid role: user, model."),
    ("role-tool", mutate("request.contents.0.role", "tool"), 400, "INVALID_ARGUMENT",
     "Please use a valid role: user, model."),
    ("role-missing", mutate("request.contents.0.role", drop=True), 400, "INVALID_ARGUMENT",
     "Please use a valid role: user, model."),
    ("empty-parts", mutate("request.contents.0.parts", []), 400, "INVALID_ARGUMENT",
     "contents.parts must not be empty"),
    ("unknown-part-key", mutate("request.contents.0.parts.0", {"image": "x"}), 400,
     "INVALID_ARGUMENT", 'Unknown name "image" at \'request.contents[0].parts[0]\''),
    ("part-no-data", mutate("request.contents.0.parts.0", {"thought": True}), 400,
     "INVALID_ARGUMENT", "required oneof field 'data' must have one initialized field"),
    ("part-two-data", mutate("request.contents.0.parts.0", {"text": "a", "fileData": {}}), 400,
     "INVALID_ARGUMENT", "oneof field 'data' is already set. Cannot set 'fileData'"),
    ("response-not-object",
     mutate("request.contents", [USER, call_turn("f"),
                                 {"role": "user", "parts": [{"functionResponse": {
                                     "name": "f", "response": "plain text"}}]}]), 400,
     "INVALID_ARGUMENT",
     "Invalid value at 'request.contents[2].parts[0].function_response.response' "
     '(type.googleapis.com/google.protobuf.Struct), "plain text"'),
    ("call-without-name",
     mutate("request.contents", [USER, {"role": "model", "parts": [
         {"functionCall": {"args": {}}, "thoughtSignature": SENTINEL}]}]), 400,
     "INVALID_ARGUMENT", "function_call.name: Name cannot be empty."),
    ("signature-not-base64",
     mutate("request.contents.0.parts.0", {"text": "a", "thoughtSignature": "not base64!"}), 400,
     "INVALID_ARGUMENT", 'Base64 decoding failed for "not base64!"'),
    ("system-with-image",
     mutate("request.systemInstruction", {"parts": [{"inlineData": {"mimeType": "image/png",
                                                                    "data": "iVBO"}}]}), 400,
     "INVALID_ARGUMENT", "system instruction parts must be text"),
    ("generation-config-unknown", mutate("request.generationConfig", {"max_tokens": 5}), 400,
     "INVALID_ARGUMENT", 'Unknown name "max_tokens" at \'request.generation_config\''),
    ("generation-config-list", mutate("request.generationConfig", [{"temperature": 1}]), 400,
     "INVALID_ARGUMENT",
     'Unknown name "generationConfig" at \'request\': Proto field is not repeating'),
    ("temperature-string", mutate("request.generationConfig", {"temperature": "hot"}), 400,
     "INVALID_ARGUMENT", "Invalid value at 'request.generation_config.temperature' (TYPE_FLOAT)"),
    ("both-spellings", mutate("request.generationConfig", {"topK": 1, "top_k": 2}), 400,
     "INVALID_ARGUMENT", "'top_k' has already been set"),
    ("thinking-unknown", mutate("request.generationConfig", {"thinkingConfig": {"budget": 1}}),
     400, "INVALID_ARGUMENT",
     'Unknown name "budget" at \'request.generation_config.thinking_config\''),
    ("level-on-2.5",
     mutate("request.generationConfig", {"thinkingConfig": {"thinkingLevel": "HIGH"}}), 400,
     "INVALID_ARGUMENT", "Thinking level is not supported for this model."),
    ("level-invalid",
     mutate("request.generationConfig", {"thinkingConfig": {"thinking_level": "EXTREME"}}), 400,
     "INVALID_ARGUMENT", "Invalid value at 'request.generation_config.thinking_config."
                         "thinking_level'"),
    ("budget-on-3", lambda e: (mutate("model", "gemini-3-pro-preview")(e), mutate(
        "request.generationConfig", {"thinkingConfig": {"thinkingBudget": 8192}})(e)), 400,
     "INVALID_ARGUMENT", "Thinking budget is not supported for this model"),
    ("pro-budget-0", mutate("request.generationConfig", {"thinkingConfig": {"thinkingBudget": 0}}),
     400, "INVALID_ARGUMENT", "Budget 0 is invalid. This model only works in thinking mode."),
    ("pro-budget-64",
     mutate("request.generationConfig", {"thinkingConfig": {"thinkingBudget": 64}}), 400,
     "INVALID_ARGUMENT", "Please choose a value between 128 and 32768."),
    ("pro-budget-huge",
     mutate("request.generationConfig", {"thinkingConfig": {"thinkingBudget": 40000}}), 400,
     "INVALID_ARGUMENT", "The thinking budget 40000 is invalid."),
    ("schema-$schema", mutate("request.tools", tool(parameters={
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object"})), 400,
     "INVALID_ARGUMENT", UNKNOWN_SCHEMA),
    ("schema-nested-additional", mutate("request.tools", tool(parameters={
        "type": "object", "properties": {"a": {"type": "object", "additionalProperties": False}}})),
     400, "INVALID_ARGUMENT", 'Unknown name "additionalProperties" at \'request.tools[0].'
                              "function_declarations[0].parameters.properties[0].value'"),
    ("schema-type-array", mutate("request.tools", tool(parameters={
        "type": "object", "properties": {"a": {"type": ["string", "null"]}}})), 400,
     "INVALID_ARGUMENT", "Proto field is not repeating, cannot start list."),
    ("schema-const", mutate("request.tools", tool(parameters={"type": "string", "const": "x"})),
     400, "INVALID_ARGUMENT", 'Unknown name "const"'),
    ("schema-deprecated", mutate("request.tools", tool(parameters={
        "type": "object", "properties": {"a": {"type": "string", "deprecated": True}}})), 400,
     "INVALID_ARGUMENT", 'Unknown name "deprecated"'),
    ("schema-bad-type", mutate("request.tools", tool(parameters={"type": "thing"})), 400,
     "INVALID_ARGUMENT", "parameters.type"),
    ("schema-required-undefined", mutate("request.tools", tool(parameters={
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]})), 400,
     "INVALID_ARGUMENT", "parameters.required[0]: property is not defined"),
    ("schema-enum-on-integer", mutate("request.tools", tool(parameters={
        "type": "integer", "enum": ["1", "2"]})), 400, "INVALID_ARGUMENT",
     "enum: only allowed for STRING type"),
    ("both-parameter-fields", mutate("request.tools", tool(
        parameters={"type": "object"}, parametersJsonSchema={"type": "object"})), 400,
     "INVALID_ARGUMENT", "mutually exclusive"),
    ("json-schema-$schema", mutate("request.tools", tool(parametersJsonSchema={
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"})), 400,
     "INVALID_ARGUMENT", 'Unknown name "$schema"'),
    ("json-schema-deep-additional", mutate("request.tools", tool(parametersJsonSchema={
        "type": "object", "properties": {"l": {"type": "array", "items": {
            "type": "object", "additionalProperties": False}}}})), 400, "INVALID_ARGUMENT",
     "parameters_json_schema.properties.l.items[0]"),
    ("json-schema-type-array", mutate("request.tools", tool(parameters_json_schema={
        "type": "object", "properties": {"a": {"type": ["string", "null"]}}})), 400,
     "INVALID_ARGUMENT", "Proto field is not repeating"),
    ("name-with-space", mutate("request.tools", [{"functionDeclarations": [{"name": "my tool"}]}]),
     400, "INVALID_ARGUMENT", "Invalid function name. Must start with a letter or an underscore."),
    ("name-leading-digit", mutate("request.tools", [{"functionDeclarations": [{"name": "1x"}]}]),
     400, "INVALID_ARGUMENT", "Invalid function name"),
    ("name-65-chars", mutate("request.tools", [{"functionDeclarations": [{"name": "a" * 65}]}]),
     400, "INVALID_ARGUMENT", "with a maximum length of 64"),
    ("duplicate-functions", mutate("request.tools", [{"functionDeclarations": [
        {"name": "f"}]}, {"function_declarations": [{"name": "f"}]}]), 400, "INVALID_ARGUMENT",
     "Duplicate function declaration found: f"),
    ("tool-config-mode", mutate("request.toolConfig", {"functionCallingConfig": {
        "mode": "AUTOMATIC"}}), 400, "INVALID_ARGUMENT",
     "Invalid value at 'request.tool_config.function_calling_config.mode'"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "status", "code", "message"),
                         [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])  # fmt: skip
def test_envelope_rejections(
    fake: FakeGoogle, client: httpx.Client, change: Callable[[dict], None], status: int, code: str,
    message: str,
) -> None:  # fmt: skip
    body = envelope()
    change(body)
    for method, query in (("generateContent", ""), ("streamGenerateContent", SSE)):
        resp = post(client, method, body, query=query)
        assert resp.status_code == status, resp.text
        err = error_of(resp)  # a stream call's error is plain JSON too, never SSE
        assert err["status"] == code
        assert message in err["message"]
    assert [r.status for r in fake.requests] == [status, status]


def test_unknown_name_message_is_exact(client: httpx.Client) -> None:
    body = envelope(tools=tool(parameters={"$schema": "x", "type": "object"}))
    err = error_of(post(client, "generateContent", body))
    assert err["message"] == UNKNOWN_SCHEMA
    assert err["details"] == [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                               "fieldViolations": [{"field": PARAMS_AT.strip("'"),
                                                    "description": UNKNOWN_SCHEMA}]}]  # fmt: skip


TRANSPORT: list[tuple[str, dict[str, str], bytes, int, str, str]] = [
    ("no-auth", {"Content-Type": "application/json"}, b"{}", 401, "UNAUTHENTICATED", AUTH_MISSING),
    ("unknown-token", {"Authorization": "Bearer ya29.nope", "Content-Type": "application/json"},
     b"{}", 401, "UNAUTHENTICATED", AUTH_INVALID),
    ("basic-auth", {"Authorization": f"Basic {TOKEN}", "Content-Type": "application/json"},
     b"{}", 401, "UNAUTHENTICATED", AUTH_INVALID),
    ("text-plain", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
     json.dumps(envelope()).encode(), 400, "INVALID_ARGUMENT", "expected application/json"),
    ("bad-json", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
     b'{"model":', 400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
    ("root-array", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
     b"[]", 400, "INVALID_ARGUMENT", "Root element must be a message."),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "content", "status", "code", "message"),
                         [t[1:] for t in TRANSPORT], ids=[t[0] for t in TRANSPORT])  # fmt: skip
def test_transport_rejections(
    client: httpx.Client, headers: dict, content: bytes, status: int, code: str, message: str
) -> None:
    resp = client.post("/v1internal:generateContent", content=content, headers=headers)
    assert resp.status_code == status
    err = error_of(resp)
    assert (err["status"], message in err["message"]) == (code, True)
    if status == 401:
        assert resp.headers["www-authenticate"].startswith('Bearer realm="https://accounts.google')


@pytest.mark.parametrize(("verb", "path"), [
    ("POST", "/v1internal/generateContent"), ("POST", "/v1internal:fetchAdminControls"),
    ("GET", "/v1internal:generateContent"), ("POST", "/v1internal:generateContent/"),
    ("POST", "/v1/models/gemini-2.5-pro:generateContent"),  # AI Studio is served on /v1beta only
])  # fmt: skip
def test_unknown_paths_are_json_404(client: httpx.Client, verb: str, path: str) -> None:
    resp = client.request(verb, path, json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 404
    assert error_of(resp)["status"] == "NOT_FOUND"


def test_expired_token_is_401(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.add_account("ya29.old", "1//r2", PROJECT, expired=True)
    err = error_of(post(client, "generateContent", envelope(), token="ya29.old"))
    assert err["status"] == "UNAUTHENTICATED" and err["message"] == AUTH_INVALID
    assert err["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    assert post(client, "generateContent", envelope()).status_code == 200
    fake.expire(TOKEN)
    assert post(client, "generateContent", envelope()).status_code == 401


# ---------------------------------------------------------------- accepted traffic

GEMINI_CLI_TOOLS = [{"functionDeclarations": [
    {"name": "list_directory", "description": "Lists a directory", "parametersJsonSchema": {
        "type": "object", "properties": {"dir_path": {"type": "string"},
                                         "ignore": {"type": "array", "items": {"type": "string"}}},
        "required": ["dir_path"]}},
    {"name": "read_file", "description": "Reads", "parametersJsonSchema": {
        "type": "object", "properties": {"file_path": {"type": "string"}}}},
]}]  # fmt: skip


@pytest.mark.parametrize("body", [
    # gemini-cli 0.61.0 (docs/upstreams.md "Gemini CLI")
    envelope(systemInstruction={"role": "user", "parts": [{"text": "You are a CLI agent"}]},
             tools=GEMINI_CLI_TOOLS, session_id="7c9e6679",
             generationConfig={"temperature": 1, "topP": 0.95, "topK": 64, "thinkingConfig": {
                 "includeThoughts": True, "thinkingBudget": 8192}}),
    envelope("gemini-3-flash", generationConfig={"thinkingConfig": {"thinkingLevel": "HIGH"}}),
    envelope("gemini-3.1-pro-preview", generation_config={"thinking_config": {
        "include_thoughts": True, "thinking_level": "low"}}),
    # google-genai mixed case (docs/upstreams.md "Gemini API")
    envelope(contents=[{"role": "user", "parts": [
        {"text": "what is this"},
        {"inlineData": {"data": "iVBORw0KGgo=", "mime_type": "image/png"}}]}],
        tools=[{"functionDeclarations": [{"name": "get_weather", "parameters_json_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}}]}]),
    envelope(tools=tool(parameters={"type": "OBJECT", "properties": {
        "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
        "n": {"type": "integer", "minimum": 0, "maxItems": "5"},
        "u": {"anyOf": [{"type": "string"}, {"type": "number"}]}}, "required": ["mode"]}),
        toolConfig={"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["x"]}}),
    envelope(generationConfig={"thinkingConfig": {"thinkingBudget": -1}, "maxOutputTokens": None,
                               "stopSequences": ["\n\n"], "responseMimeType": "text/plain"},
             labels={"k": "v"}, cachedContent=None),
    envelope("gemini-2.5-flash", generationConfig={"thinkingConfig": {"thinkingBudget": 0}}),
    {**envelope(), "enabled_credit_types": ["GOOGLE_ONE_AI"], "user_prompt_id": None,
     "userPromptId": "u"},
])  # fmt: skip
def test_valid_envelopes_pass(client: httpx.Client, body: dict) -> None:
    for method, query in (("generateContent", ""), ("streamGenerateContent", SSE)):
        resp = post(client, method, body, query=query)
        assert resp.status_code == 200, resp.text


def test_added_model_is_known(fake: FakeGoogle, client: httpx.Client) -> None:
    assert post(client, "generateContent", envelope("gemma-4-31b-it")).status_code == 404
    fake.add_model("gemma-4-31b-it")
    assert post(client, "generateContent", envelope("gemma-4-31b-it")).status_code == 200


# ---------------------------------------------------------------- tool turns and signatures


@pytest.mark.parametrize(("contents", "status", "message"), [
    ([USER, call_turn("f", sig=None), answer_turn("f")], 400,
     "Function call is missing a thought_signature in functionCall parts."),
    ([USER, call_turn("f", sig=None), answer_turn("f")], 400, "`default_api:f` , position 2."),
    ([USER, call_turn("f"), answer_turn("f")], 200, ""),
    # a signature it never issued (another model's, another upstream's) is corrupted
    ([USER, call_turn("f", sig="c2lnLTE="), answer_turn("f")], 400,
     "Corrupted thought signature."),
    ([USER, {"role": "model", "parts": [{"text": "x", "thoughtSignature": "c2lnLTE="}]}, USER],
     400, "Corrupted thought signature."),
    # an old loop (closed by a later user text turn) needs no signature
    ([USER, call_turn("f", sig=None), answer_turn("f"),
      {"role": "model", "parts": [{"text": "ok"}]}, USER], 200, ""),
    # every model turn of the current loop is checked, not only the first
    ([USER, call_turn("f"), answer_turn("f"), call_turn("g", sig=None), answer_turn("g")], 400,
     "position 4"),
    # only the first functionCall part of a turn needs it
    ([USER, call_turn("f", "g"), answer_turn("f", "g")], 200, ""),
    ([USER, call_turn("f", "g"), answer_turn("f")], 400, RESPONSE_COUNT),
    ([USER, call_turn("f"), USER], 400, RESPONSE_COUNT),
    ([USER, call_turn("f"), {"role": "model", "parts": [{"text": "x"}]}], 400, RESPONSE_COUNT),
    ([USER, answer_turn("f")], 400,
     "function response turn comes immediately after a function call"),
    ([USER, {"role": "model", "parts": [{"text": "x"}]}, call_turn("f"), answer_turn("f")], 400,
     "function call turn comes immediately after a user turn"),
    # images from a tool result ride after the functionResponse parts
    # (docs/upstreams.md "Cross-dialect mappings")
    ([USER, call_turn("f"), {"role": "user", "parts": [
        {"functionResponse": {"name": "f", "response": {"output": "img"}}},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}], 200, ""),
])  # fmt: skip
def test_tool_turn_rules(client: httpx.Client, contents: list, status: int, message: str) -> None:
    resp = post(client, "generateContent", envelope(contents=contents))
    assert resp.status_code == status, resp.text
    if status != 200:
        assert message in error_of(resp)["message"]


def test_issued_signatures_are_taken_back(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.enqueue(Calls([("f", {})]))
    resp = post(client, "generateContent", envelope())
    (part,) = resp.json()["response"]["candidates"][0]["content"]["parts"]
    sig = part["thoughtSignature"]
    assert sig in fake.issued_signatures
    body = envelope(contents=[USER, call_turn("f", sig=sig), answer_turn("f")])
    assert post(client, "generateContent", body).status_code == 200
    fake.reset()  # forgotten: as from another model
    resp = post(client, "generateContent", body)
    assert resp.status_code == 400 and error_of(resp)["message"] == "Corrupted thought signature."


def test_signature_rule_can_be_switched_off(fake: FakeGoogle, client: httpx.Client) -> None:
    body = envelope(contents=[USER, call_turn("f", sig=None), answer_turn("f")])
    assert post(client, "generateContent", body).status_code == 400
    fake.enforce_signatures = False
    assert post(client, "generateContent", body).status_code == 200


def test_issued_signature_round_trip(fake: FakeGoogle, client: httpx.Client) -> None:
    calls = [("list_directory", {"dir_path": "src"}), ("read_file", {"file_path": "a"})]
    fake.enqueue(Calls(calls))
    resp = post(client, "generateContent", envelope(tools=GEMINI_CLI_TOOLS))
    parts = resp.json()["response"]["candidates"][0]["content"]["parts"]
    assert parts == [
        {"functionCall": {"name": "list_directory", "args": {"dir_path": "src"}},
         "thoughtSignature": fake.issued_signatures[0]},
        {"functionCall": {"name": "read_file", "args": {"file_path": "a"}}},
    ]  # fmt: skip
    history = [USER, {"role": "model", "parts": parts}, answer_turn("list_directory", "read_file")]
    resp = post(client, "generateContent", envelope(contents=history, tools=GEMINI_CLI_TOOLS))
    text = resp.json()["response"]["candidates"][0]["content"]["parts"][0]["text"]
    assert text == 'Tool said: [{"output":"list_directory"},{"output":"read_file"}]'


def test_json_schema_strictness_can_be_switched_off(fake: FakeGoogle, client: httpx.Client) -> None:
    schema = {"type": "object", "additionalProperties": False}
    body = envelope(tools=tool(parametersJsonSchema=schema))
    assert post(client, "generateContent", body).status_code == 400
    fake.strict_json_schema = False
    assert post(client, "generateContent", body).status_code == 200


# ---------------------------------------------------------------- replies and framing


def stream(client: httpx.Client, body: dict) -> tuple[httpx.Response, bytes, list[dict]]:
    resp = post(client, "streamGenerateContent", body, query=SSE)
    parser = SSEParser()
    events = parser.feed(resp.content) + parser.finish()
    assert all(ev.event is None for ev in events)
    return resp, resp.content, parse_json_events(events)


def parts_of(wrapper: dict) -> list[dict]:
    return wrapper["response"]["candidates"][0]["content"]["parts"]


def test_stream_framing(fake: FakeGoogle, client: httpx.Client) -> None:
    gen = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    body = envelope(generationConfig=gen)
    resp, raw, chunks = stream(client, body)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked"
    frames = raw.split(b"\n\n")
    assert frames[-1] == b"" and all(f.startswith(b"data: {") for f in frames[:-1])
    assert b"[DONE]" not in raw and b"\r" not in raw and b"event:" not in raw
    assert len(chunks) == len(frames) - 1 == 4  # thought + 3 text chunks
    assert parts_of(chunks[0]) == [{"thought": True, "text": "Thinking about the answer.",
                                    "thoughtSignature": fake.issued_signatures[0]}]  # fmt: skip
    texts = [parts_of(c)[0]["text"] for c in chunks[1:]]
    assert texts == ["Echo: List ", "files in ", "src"]
    prompt = count_tokens(body["request"]["contents"])
    thoughts = count_tokens([{"parts": [{"text": "Thinking about the answer."}]}])
    out = count_tokens([{"parts": [{"text": "Echo: List files in src"}]}])
    for c in chunks[:-1]:
        assert "finishReason" not in c["response"]["candidates"][0]
        assert c["response"]["usageMetadata"] == {"promptTokenCount": prompt,
                                                  "totalTokenCount": prompt + thoughts,
                                                  "thoughtsTokenCount": thoughts}  # fmt: skip
    last = chunks[-1]["response"]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {"promptTokenCount": prompt, "candidatesTokenCount": out,
                                     "totalTokenCount": prompt + out + thoughts,
                                     "thoughtsTokenCount": thoughts}  # fmt: skip
    assert {c["response"]["modelVersion"] for c in chunks} == {"gemini-2.5-pro"}
    assert len({c["traceId"] for c in chunks}) == 1


def test_stream_crlf_framing(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.crlf = True
    _, raw, chunks = stream(client, envelope())
    assert raw.endswith(b"}\r\n\r\n") and raw.count(b"\r\n\r\n") == len(chunks) == 3
    assert "".join(parts_of(c)[0]["text"] for c in chunks) == "Echo: List files in src"


def test_stream_calls_arrive_whole_in_one_event(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.enqueue(Calls([("a", {"x": 1}), ("b", {})], text_before="Let me look."))
    _, _, chunks = stream(client, envelope())
    assert [parts_of(c) for c in chunks[:-1]] == [[{"text": t}] for t in ("Let ", "me ", "look.")]
    assert parts_of(chunks[-1]) == [
        {"functionCall": {"name": "a", "args": {"x": 1}},
         "thoughtSignature": fake.issued_signatures[0]},
        {"functionCall": {"name": "b", "args": {}}},
    ]  # fmt: skip
    assert chunks[-1]["response"]["candidates"][0]["finishReason"] == "STOP"


def test_stream_is_flushed_per_event(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.event_delay = 0.3
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with client.stream("POST", "/v1internal:streamGenerateContent?alt=sse", json=envelope(),
                       headers=headers) as resp:  # fmt: skip
        chunks = resp.iter_raw()
        first = next(chunks)
        assert first.count(b"data: ") == 1 and first.endswith(b"\n\n")
        rest = b"".join(chunks)
    assert rest.count(b"data: ") == 2


def test_stream_without_alt_sse_is_a_json_array(client: httpx.Client) -> None:
    resp = post(client, "streamGenerateContent", envelope())
    assert resp.headers["content-type"].startswith("application/json")
    arr = resp.json()
    assert isinstance(arr, list) and len(arr) == 3
    assert "".join(parts_of(w)[0]["text"] for w in arr) == "Echo: List files in src"


def test_non_stream_wrapper_shape(client: httpx.Client) -> None:
    body = envelope()
    data = post(client, "generateContent", body).json()
    trace = data["traceId"]
    prompt, out = count_tokens(body["request"]["contents"]), count_tokens(
        [{"parts": [{"text": "Echo: List files in src"}]}])  # fmt: skip
    assert data == {"response": {
        "candidates": [{"content": {"role": "model",
                                    "parts": [{"text": "Echo: List files in src"}]},
                        "index": 0, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": out,
                          "totalTokenCount": prompt + out, "thoughtsTokenCount": 0},
        "modelVersion": "gemini-2.5-pro", "responseId": trace}, "traceId": trace}  # fmt: skip


def test_json_mime_type_default_reply(client: httpx.Client) -> None:
    body = envelope(generationConfig={"responseMimeType": "application/json"})
    text = parts_of(post(client, "generateContent", body).json())[0]["text"]
    assert json.loads(text) == {"echo": "List files in src"}


def test_scripted_replies_in_order(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.enqueue(Text("one", thought="hmm", finish="MAX_TOKENS"),
                 Raw([{"text": "a"}, {"text": "b", "thought": True}], finish="SAFETY"))  # fmt: skip
    bad = envelope()
    bad["foo"] = 1
    assert post(client, "generateContent", bad).status_code == 400  # rejected: queue untouched
    first = post(client, "generateContent", envelope()).json()["response"]["candidates"][0]
    assert first["finishReason"] == "MAX_TOKENS"
    assert [p["text"] for p in first["content"]["parts"]] == ["hmm", "one"]
    _, _, chunks = stream(client, envelope())
    assert [parts_of(c) for c in chunks] == [[{"text": "a"}], [{"text": "b", "thought": True}]]
    assert chunks[-1]["response"]["candidates"][0]["finishReason"] == "SAFETY"
    last = post(client, "generateContent", envelope()).json()
    assert parts_of(last)[0]["text"] == "Echo: List files in src"


def test_error_replies(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.enqueue(rate_limited("0.5s", "QUOTA_EXHAUSTED", "gemini-2.5-pro"),
                 Error(503, "<html>busy</html>", {"Retry-After": "3"}))  # fmt: skip
    resp = post(client, "streamGenerateContent", envelope(), query=SSE)
    err = error_of(resp)
    assert (resp.status_code, err["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert err["details"][1] == {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": "0.5s"}  # fmt: skip
    assert err["details"][0]["reason"] == "QUOTA_EXHAUSTED"
    resp = post(client, "generateContent", envelope())
    assert (resp.status_code, resp.text) == (503, "<html>busy</html>")
    assert resp.headers["retry-after"] == "3"
    assert resp.headers["content-type"].startswith("text/html")


def test_cut_stream_closes_without_final_chunk(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.enqueue(CutStream(1), CutStream(0, Text("never")))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", "/v1internal:streamGenerateContent?alt=sse", json=envelope(), headers=headers
        ) as resp,
    ):
        for chunk in resp.iter_raw():
            received += chunk
    assert received.count(b"data: ") == 1 and b"Echo: List " in received
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, "generateContent", envelope())
    assert fake.requests[-1].status == 0


def test_chunked_request_body_is_read(client: httpx.Client) -> None:
    payload = json.dumps(envelope()).encode()
    resp = client.post("/v1internal:generateContent", content=iter([payload[:10], payload[10:]]),
                       headers={"Authorization": f"Bearer {TOKEN}",
                                "Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 200


def test_keep_alive_for_non_stream(fake: FakeGoogle) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", int(fake.base_url.rsplit(":", 1)[1]))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn.request("POST", "/v1internal:generateContent", json.dumps(envelope()), headers)
    assert conn.getresponse().read() and conn.sock is not None
    sock = conn.sock
    conn.request("POST", "/v1internal:loadCodeAssist", "{}", headers)
    assert json.loads(conn.getresponse().read())["currentTier"] == {"id": "free-tier"}
    assert conn.sock is sock  # same TCP connection
    conn.close()


# ---------------------------------------------------------------- other Code Assist methods


def test_count_tokens(fake: FakeGoogle, client: httpx.Client) -> None:
    image = {"inlineData": {"mimeType": "image/png", "data": "AA=="}}
    contents = [{"role": "user", "parts": [{"text": "abcdefgh"}, image]}]
    assert count_tokens(contents) == 8 // 4 + 2 + 258
    body = {"request": {"model": "models/gemini-2.5-flash", "contents": contents}}
    assert post(client, "countTokens", body).json() == {"totalTokens": 262}
    assert fake.calls("countTokens")[0].body == body


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"project": PROJECT, "request": {"model": "models/gemini-2.5-pro", "contents": [USER]}}, 400,
     'Unknown name "project": Cannot find field.'),
    ({"request": {"model": "models/gemini-2.5-pro", "contents": [USER],
                  "systemInstruction": {"parts": [{"text": "s"}]}}}, 400,
     'Unknown name "systemInstruction" at \'request\''),
    ({"request": {"model": "models/gemini-2.5-pro", "contents": [USER], "tools": []}}, 400,
     'Unknown name "tools" at \'request\''),
    ({"model": "gemini-2.5-pro", "request": {"contents": [USER]}}, 400, 'Unknown name "model"'),
    ({"request": {"model": "gemini-2.5-pro", "contents": [USER]}}, 400, "models/<id>"),
    ({"request": {"model": "models/nope", "contents": [USER]}}, 404, "Requested entity"),
    ({"request": {"model": "models/gemini-2.5-pro", "contents": []}}, 400, "contents"),
])  # fmt: skip
def test_count_tokens_rejections(
    client: httpx.Client, body: dict, status: int, message: str
) -> None:
    resp = post(client, "countTokens", body)
    assert resp.status_code == status
    assert message in error_of(resp)["message"]


@pytest.mark.parametrize(("method", "body", "status", "answer"), [
    ("loadCodeAssist", {"metadata": {"ideType": "IDE_UNSPECIFIED", "pluginType": "GEMINI"}}, 200,
     {"currentTier": {"id": "free-tier"}, "cloudaicompanionProject": PROJECT}),
    ("onboardUser", {"tierId": "free-tier", "metadata": {}}, 200,
     {"name": "operations/x", "done": True,
      "response": {"cloudaicompanionProject": {"id": PROJECT, "name": PROJECT}}}),
    ("onboardUser", {"tierId": "free-tier", "cloudaicompanionProject": PROJECT}, 400, None),
    ("retrieveUserQuota", {"project": PROJECT}, 200, {"buckets": []}),
    ("retrieveUserQuota", {"project": "someone-else"}, 403, None),
    ("retrieveUserQuota", {}, 400, None),
    ("listExperiments", {"project": PROJECT, "metadata": {"duetProject": PROJECT}}, 200,
     {"experimentIds": [], "flags": []}),
    ("recordCodeAssistMetrics", {"metrics": []}, 200, {}),
])  # fmt: skip
def test_setup_methods(
    client: httpx.Client, method: str, body: dict, status: int, answer: dict | None
) -> None:
    resp = post(client, method, body)
    assert resp.status_code == status
    if answer is not None:
        assert resp.json() == answer


def test_operation_poll(client: httpx.Client) -> None:
    resp = client.get("/v1internal/operations/abc", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.json()["done"] is True
    assert resp.json()["response"]["cloudaicompanionProject"]["id"] == PROJECT
    assert client.get("/v1internal/operations/abc").status_code == 401


# ---------------------------------------------------------------- OAuth


def refresh_form(token: str = REFRESH, **over: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, **over}  # fmt: skip


def test_refresh_mints_a_working_token(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.add_account("ya29.dead", "1//r-dead", PROJECT, expired=True)
    resp = client.post(fake.token_url, data=refresh_form("1//r-dead"))
    data = resp.json()
    assert resp.status_code == 200 and set(data) == {"access_token", "expires_in", "scope",
                                                      "token_type"}  # fmt: skip
    assert data["access_token"].startswith("ya29.fake-") and data["expires_in"] == 3599
    assert (data["scope"], data["token_type"]) == (SCOPES, "Bearer")
    assert fake.token_requests == [refresh_form("1//r-dead")]
    assert post(client, "generateContent", envelope(), token="ya29.dead").status_code == 401
    fresh = post(client, "generateContent", envelope(), token=data["access_token"])
    assert fresh.status_code == 200
    again = client.post(fake.token_url, data=refresh_form("1//r-dead")).json()["access_token"]
    assert again != data["access_token"]


def test_rotating_refresh_tokens_are_single_use(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.add_account("ya29.rot", "1//r-rot", PROJECT)
    fake.rotate_refresh_tokens = True
    try:
        first = client.post(fake.token_url, data=refresh_form("1//r-rot"))
        reused = client.post(fake.token_url, data=refresh_form("1//r-rot"))
    finally:
        fake.rotate_refresh_tokens = False
    rotated = first.json()["refresh_token"]
    assert first.status_code == 200 and rotated.startswith("1//rotated-")
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert client.post(fake.token_url, data=refresh_form(rotated)).status_code == 200


@pytest.mark.parametrize(("form", "status", "body"), [
    (refresh_form(client_id="other.apps.googleusercontent.com"), 401,
     {"error": "invalid_client", "error_description": "The OAuth client was not found."}),
    (refresh_form(client_secret="nope"), 401,
     {"error": "invalid_client", "error_description": "Unauthorized"}),
    (refresh_form("1//unknown"), 400,
     {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
    ({k: v for k, v in refresh_form().items() if k != "refresh_token"}, 400,
     {"error": "invalid_request",
      "error_description": "Missing required parameter: refresh_token"}),
    (refresh_form(grant_type="password"), 400,
     {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: password"}),
])  # fmt: skip
def test_token_endpoint_rejections(
    fake: FakeGoogle, client: httpx.Client, form: dict, status: int, body: dict
) -> None:
    resp = client.post(fake.token_url, data=form)
    assert (resp.status_code, resp.json()) == (status, body)


def test_token_endpoint_wants_a_form(fake: FakeGoogle, client: httpx.Client) -> None:
    assert client.post(fake.token_url, json=refresh_form()).status_code == 400
    assert client.post(fake.token_url, data=refresh_form()).status_code == 200


def test_revoked_refresh_token(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.revoke(REFRESH)
    resp = client.post(fake.token_url, data=refresh_form())
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")


def test_token_delay_holds_the_answer(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.token_delay = 0.5
    result: list[httpx.Response] = []

    def refresh() -> None:
        result.append(httpx.post(fake.token_url, data=refresh_form(), timeout=10, verify=TLS))

    worker = threading.Thread(target=refresh)
    worker.start()
    while not fake.token_requests:
        worker.join(0.01)
    # the refresh is pending while other calls are served (threaded server)
    assert post(client, "loadCodeAssist", {}).status_code == 200
    assert worker.is_alive() and not result
    worker.join(5)
    assert result[0].status_code == 200


def test_authorization_code_exchange(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.add_auth_code("4/code", "ya29.new", "1//new", "p-new", email="n@example.com",
                       redirect_uri="http://localhost:8085/oauth2callback")  # fmt: skip
    form = {"grant_type": "authorization_code", "code": "4/code", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": "http://localhost:8085/oauth2callback"}  # fmt: skip
    data = client.post(fake.token_url, data=form).json()
    assert (data["access_token"], data["refresh_token"]) == ("ya29.new", "1//new")
    claims = data["id_token"].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(claims + "==")) == {"email": "n@example.com"}
    assert client.post(fake.token_url, data=form).json()["error"] == "invalid_grant"  # single use
    info = client.get("/oauth2/v1/userinfo", headers={"Authorization": "Bearer ya29.new"}).json()
    assert info["email"] == "n@example.com"
    fake.add_auth_code("4/c2", "ya29.x", "1//x", "p", redirect_uri="http://localhost:1/cb")
    resp = client.post(fake.token_url, data={**form, "code": "4/c2"})
    assert resp.json()["error"] == "redirect_uri_mismatch"


def test_userinfo_needs_a_token(client: httpx.Client) -> None:
    assert client.get("/oauth2/v2/userinfo", headers={"Authorization": f"Bearer {TOKEN}"}).json()[
        "email"] == "me@example.com"  # fmt: skip
    assert client.get("/oauth2/v1/userinfo").status_code == 401


# ---------------------------------------------------------------- bookkeeping


def test_requests_are_recorded_with_status(fake: FakeGoogle, client: httpx.Client) -> None:
    post(client, "generateContent", envelope(), token=None)
    post(client, "streamGenerateContent", envelope(), query=SSE)
    first, second = fake.requests
    assert (first.rpc, first.status, first.body) == ("generateContent", 401, envelope())
    assert "authorization" not in first.headers
    assert first.headers["content-type"] == "application/json"
    assert (second.method, second.path) == ("POST", "/v1internal:streamGenerateContent")
    assert second.query == {"alt": "sse"}
    assert second.headers["authorization"] == f"Bearer {TOKEN}" and second.status == 200


def test_reset_keeps_accounts(fake: FakeGoogle, client: httpx.Client) -> None:
    fake.enqueue(Text("queued"))
    client.post(fake.token_url, data=refresh_form())
    fake.reset()
    assert fake.requests == [] and fake.token_requests == [] and fake.issued_signatures == []
    resp = post(client, "generateContent", envelope())
    assert parts_of(resp.json())[0]["text"] == "Echo: List files in src"


def test_stop_closes_the_listener() -> None:
    fake = FakeGoogle().start()
    url = fake.base_url
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/token", timeout=2)


@pytest.mark.parametrize(("text", "chunks"), [
    ("one", ["one"]), ("a b", ["a ", "b"]), ("a b c d e", ["a b ", "c d ", "e"]), ("", [""]),
])  # fmt: skip
def test_split_text(text: str, chunks: list[str]) -> None:
    assert split_text(text) == chunks


def test_known_models_and_spec_tables() -> None:
    assert "gemini-3.1-flash-lite" in KNOWN_MODELS
    assert len(set(KNOWN_MODELS)) == len(KNOWN_MODELS) == 13
    assert "session_id" not in {snake(k) for k in MESSAGES["PublicRequest"]}
    assert set(MESSAGES["PublicCountRequest"]) == set(MESSAGES["PublicRequest"]) | {"model"}
    assert snake("thinkingConfig") == "thinking_config"
    assert "session_id" in {snake(k) for k in MESSAGES["Request"]}


# ---------------------------------------------------------------- AI Studio
# (docs/upstreams.md "AI Studio", "Gemini API")

KEY = "AIzaSy-fake-key-1"
STUDIO_BODY = {"contents": [USER]}


@pytest.fixture
def studio_fake(fake: FakeGoogle) -> FakeGoogle:
    fake.add_api_key(KEY)
    return fake


def studio(
    client: httpx.Client, method: str, body: Any, *, model: str = "gemini-2.5-pro",
    key: str | None = KEY, query: str = "", headers: dict[str, str] | None = None,
) -> httpx.Response:  # fmt: skip
    hdrs = {"x-goog-api-key": key} if key else {}
    hdrs.update(headers or {})
    return client.post(f"/v1beta/models/{model}:{method}{query}", json=body, headers=hdrs)


def test_ai_studio_url_is_the_same_server(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    assert studio_fake.ai_studio_url == studio_fake.base_url
    assert studio(client, "generateContent", STUDIO_BODY).status_code == 200


KEY_ERROR_DETAILS = [
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
     "message": KEY_INVALID},
]  # fmt: skip
KEY_CASES: list[tuple[str, dict[str, str], str, int, str | None]] = [
    ("header", {"x-goog-api-key": KEY}, "", 200, None),
    ("query", {}, f"?key={KEY}", 200, None),
    ("query-with-sse", {}, f"?alt=sse&key={KEY}", 200, None),
    ("missing", {}, "", 403, "PERMISSION_DENIED"),
    ("empty-header", {"x-goog-api-key": ""}, "", 403, "PERMISSION_DENIED"),
    ("bearer-is-no-key", {"Authorization": f"Bearer {TOKEN}"}, "", 403, "PERMISSION_DENIED"),
    ("unknown-header", {"x-goog-api-key": "AIza-nope"}, "", 400, "INVALID_ARGUMENT"),
    ("unknown-query", {}, "?key=AIza-nope", 400, "INVALID_ARGUMENT"),
    ("bearer-and-unknown", {"Authorization": f"Bearer {TOKEN}", "x-goog-api-key": "x"}, "", 400,
     "INVALID_ARGUMENT"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "query", "status", "code"),
                         [c[1:] for c in KEY_CASES], ids=[c[0] for c in KEY_CASES])  # fmt: skip
def test_ai_studio_key_checks(
    studio_fake: FakeGoogle, client: httpx.Client, headers: dict, query: str, status: int,
    code: str | None,
) -> None:  # fmt: skip
    resp = studio(client, "generateContent", STUDIO_BODY, key=None, query=query, headers=headers)
    assert resp.status_code == status, resp.text
    rec = studio_fake.requests[-1]
    assert (rec.rpc, rec.status) == ("ai_studio:generateContent", status)
    if code is None:
        assert rec.credential == KEY
        return
    err = error_of(resp)
    assert err["status"] == code and rec.credential is None
    if status == 403:
        assert err == {"code": 403, "status": "PERMISSION_DENIED", "message": KEY_MISSING}
    else:
        assert err["message"] == KEY_INVALID and err["details"] == KEY_ERROR_DETAILS


def test_ai_studio_key_is_checked_before_the_body(
    studio_fake: FakeGoogle, client: httpx.Client
) -> None:
    bad = {"model": "gemini-2.5-pro"}
    assert studio(client, "generateContent", bad, key=None).status_code == 403
    assert studio(client, "countTokens", bad, key="wrong").status_code == 400
    assert "API key" in error_of(studio(client, "countTokens", bad, key="wrong"))["message"]
    studio_fake.revoke_api_key(KEY)
    assert error_of(studio(client, "generateContent", STUDIO_BODY))["message"] == KEY_INVALID


@pytest.mark.parametrize(("verb", "path"), [
    ("POST", "/v1beta/models/gemini-2.5-pro:embedEverything"),
    ("GET", "/v1beta/models/gemini-2.5-pro:generateContent"),
    ("POST", "/v1beta/models"), ("POST", "/v1beta/models/gemini-2.5-pro"),
    ("POST", "/v1beta/models/:generateContent"),
    ("POST", "/v1beta/models/models/gemini-2.5-pro:generateContent"),
    ("POST", "/v1beta/modelsx/gemini-2.5-pro:generateContent"),
])  # fmt: skip
def test_ai_studio_unknown_paths_are_404_before_the_key(
    studio_fake: FakeGoogle, client: httpx.Client, verb: str, path: str
) -> None:
    resp = client.request(verb, path, json=STUDIO_BODY)  # no key at all
    assert resp.status_code == 404
    assert error_of(resp)["status"] == "NOT_FOUND"


ENVELOPE_KEYS = [
    ("model", "gemini-2.5-pro"), ("project", PROJECT), ("user_prompt_id", "7c9e6679"),
    ("userPromptId", "7c9e6679"), ("request", {"contents": [USER]}), ("session_id", "s-1"),
    ("sessionId", "s-1"), ("enabled_credit_types", ["GOOGLE_ONE_AI"]),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value"), ENVELOPE_KEYS, ids=[k for k, _ in ENVELOPE_KEYS])
def test_ai_studio_rejects_envelope_keys(
    studio_fake: FakeGoogle, client: httpx.Client, key: str, value: Any
) -> None:
    body = {**STUDIO_BODY, key: value}
    for method, query in (("generateContent", ""), ("streamGenerateContent", SSE)):
        resp = studio(client, method, body, query=query)
        assert resp.status_code == 400
        assert error_of(resp)["message"] == (
            f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
        )
    # a whole Code Assist envelope: every envelope key is named
    err = error_of(studio(client, "generateContent", envelope()))
    assert [v["description"].split('"')[1] for v in err["details"][0]["fieldViolations"]] == [
        "model", "project", "user_prompt_id", "request"]  # fmt: skip


NOT_ON_AI_STUDIO = {"unknown-top", "missing-project", "wrong-project", "missing-model",
                    "prefixed-model", "unknown-model"}  # fmt: skip
STUDIO_REJECTIONS = [r for r in REJECTIONS if r[0] not in NOT_ON_AI_STUDIO]


def unrooted(message: str) -> str:
    """A Code Assist message's field path as AI Studio names it (no `request.` root)."""
    return message.replace(" at 'request'", "").replace("'request.", "'")


@pytest.mark.parametrize(("change", "status", "code", "message"),
                         [r[1:] for r in STUDIO_REJECTIONS],
                         ids=[r[0] for r in STUDIO_REJECTIONS])  # fmt: skip
def test_ai_studio_reuses_the_request_rules(
    studio_fake: FakeGoogle, client: httpx.Client, change: Callable[[dict], None], status: int,
    code: str, message: str,
) -> None:  # fmt: skip
    env = envelope()
    change(env)
    body, model = env["request"], env["model"]  # the model travels in the path
    for method, query in (("generateContent", ""), ("streamGenerateContent", SSE)):
        resp = studio(client, method, body, model=model, query=query)
        assert resp.status_code == status, resp.text
        err = error_of(resp)
        assert err["status"] == code
        assert unrooted(message) in err["message"]
    assert studio_fake.requests[-1].status == status


def test_ai_studio_error_paths_have_no_request_root(
    studio_fake: FakeGoogle, client: httpx.Client
) -> None:
    schema = {"type": "object", "additionalProperties": False}
    resp = studio(client, "generateContent", {**STUDIO_BODY, "tools": tool(
        parametersJsonSchema=schema)})  # fmt: skip
    assert error_of(resp)["message"] == (
        'Invalid JSON payload received. Unknown name "additionalProperties" at '
        "'tools[0].function_declarations[0].parameters_json_schema': Cannot find field."
    )
    resp = studio(client, "generateContent", {"contents": [{"role": "user", "parts": [{"x": 1}]}]})
    assert error_of(resp)["details"][0]["fieldViolations"] == [{
        "field": "contents[0].parts[0]",
        "description": "Invalid JSON payload received. Unknown name \"x\" at "
                       "'contents[0].parts[0]': Cannot find field."}]  # fmt: skip


@pytest.mark.parametrize("body", [
    # google-genai 3.4.0: mixed case, snake_case system_instruction (docs/upstreams.md "Gemini API")
    {"contents": [{"role": "user", "parts": [
        {"text": "what is this"},
        {"inlineData": {"data": "iVBORw0KGgo=", "mime_type": "image/png"}}]}],
     "system_instruction": {"parts": [{"text": "Be brief"}]},
     "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters_json_schema": {
         "type": "object", "properties": {"city": {"type": "string"}}}}]}],
     "generation_config": {"thinking_config": {"include_thoughts": True, "thinking_budget": 1024},
                           "temperature": 0.2}},
    # CLIProxyAPI-style camelCase, a tool loop with the sentinel
    {"contents": [USER, call_turn("f"), answer_turn("f")], "systemInstruction": {
        "role": "user", "parts": [{"text": "sys"}]}, "tools": tool(parameters={"type": "OBJECT"}),
     "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}, "safetySettings": [
         {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]},
])  # fmt: skip
def test_ai_studio_valid_bodies_pass(
    studio_fake: FakeGoogle, client: httpx.Client, body: dict
) -> None:
    for method, query in (("generateContent", ""), ("streamGenerateContent", SSE)):
        assert studio(client, method, body, query=query).status_code == 200


def test_ai_studio_signature_rule(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    body = {"contents": [USER, call_turn("f", sig=None), answer_turn("f")]}
    err = error_of(studio(client, "generateContent", body))
    assert "missing a thought_signature" in err["message"]
    studio_fake.enforce_signatures = False
    assert studio(client, "generateContent", body).status_code == 200


def test_ai_studio_unknown_model(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    resp = studio(client, "streamGenerateContent", STUDIO_BODY, model="gemini-9-ultra", query=SSE)
    assert resp.status_code == 404
    assert error_of(resp) == {"code": 404, "status": "NOT_FOUND", "message": (
        "models/gemini-9-ultra is not found for API version v1beta, or is not supported for "
        "streamGenerateContent. Call ListModels to see the list of available models and their "
        "supported methods.")}  # fmt: skip
    studio_fake.add_model("gemini-9-ultra")
    assert studio(client, "generateContent", STUDIO_BODY, model="gemini-9-ultra").status_code == 200


def test_ai_studio_sse_is_bare_responses(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    body = {**STUDIO_BODY, "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    resp = studio(client, "streamGenerateContent", body, query=SSE)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    raw = resp.content
    frames = raw.split(b"\n\n")
    assert frames[-1] == b"" and all(f.startswith(b'data: {"candidates":') for f in frames[:-1])
    assert b"[DONE]" not in raw and b"event:" not in raw and b'"response"' not in raw
    parser = SSEParser()
    chunks = parse_json_events(parser.feed(raw) + parser.finish())
    assert len(chunks) == 4  # thought + 3 text chunks
    assert all(list(c) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
               for c in chunks)  # fmt: skip
    assert len({c["responseId"] for c in chunks}) == 1
    assert {c["modelVersion"] for c in chunks} == {"gemini-2.5-pro"}
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{
        "thought": True, "text": "Thinking about the answer.",
        "thoughtSignature": studio_fake.issued_signatures[0]}]  # fmt: skip
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks[1:]]
    assert texts == ["Echo: List ", "files in ", "src"]
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "candidatesTokenCount" not in chunks[0]["usageMetadata"]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == count_tokens(
        [{"parts": [{"text": "Echo: List files in src"}]}])  # fmt: skip


def test_ai_studio_non_stream_and_json_array(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    data = studio(client, "generateContent", STUDIO_BODY).json()
    prompt = count_tokens([USER])
    out = count_tokens([{"parts": [{"text": "Echo: List files in src"}]}])
    assert data == {
        "candidates": [{"content": {"role": "model",
                                    "parts": [{"text": "Echo: List files in src"}]},
                        "index": 0, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": out,
                          "totalTokenCount": prompt + out, "thoughtsTokenCount": 0},
        "modelVersion": "gemini-2.5-pro", "responseId": data["responseId"]}  # fmt: skip
    assert isinstance(data["responseId"], str) and data["responseId"]
    resp = studio(client, "streamGenerateContent", STUDIO_BODY)  # no alt=sse
    assert resp.headers["content-type"].startswith("application/json")
    arr = resp.json()
    assert isinstance(arr, list) and len(arr) == 3
    assert all("response" not in c and "traceId" not in c for c in arr)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in arr) == (
        "Echo: List files in src")  # fmt: skip


def test_ai_studio_calls_are_recorded_apart(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    studio(client, "generateContent", STUDIO_BODY)
    studio(client, "streamGenerateContent", STUDIO_BODY, query=SSE)
    studio(client, "countTokens", STUDIO_BODY)
    post(client, "generateContent", envelope())
    assert [r.rpc for r in studio_fake.requests] == [
        "ai_studio:generateContent", "ai_studio:streamGenerateContent", "ai_studio:countTokens",
        "generateContent"]  # fmt: skip
    assert studio_fake.calls("generateContent") == [studio_fake.requests[-1]]
    assert studio_fake.calls("ai_studio:generateContent")[0].body == STUDIO_BODY
    assert [r.credential for r in studio_fake.requests] == [KEY, KEY, KEY, PROJECT]


def test_ai_studio_transport_rejections(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    headers = {"x-goog-api-key": KEY}
    url = "/v1beta/models/gemini-2.5-pro:generateContent"
    for content, ctype, message in (
        (json.dumps(STUDIO_BODY), "text/plain", "expected application/json"),
        ('{"contents":', "application/json", "Invalid JSON payload received."),
        ("[]", "application/json", "Root element must be a message."),
    ):
        resp = client.post(url, content=content, headers={**headers, "Content-Type": ctype})
        assert resp.status_code == 400 and message in error_of(resp)["message"]


# ---- AI Studio countTokens


def test_ai_studio_count_tokens_both_forms(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    contents = [{"role": "user", "parts": [{"text": "abcdefgh"}]}]
    assert count_tokens(contents) == 8 // 4 + 1
    resp = studio(client, "countTokens", {"contents": contents}, model="gemini-2.5-flash")
    assert resp.json() == {"totalTokens": 3}
    system = {"parts": [{"text": "You are terse. " * 4}]}
    tools = tool(parametersJsonSchema={"type": "object"})
    gen = {"model": "models/gemini-2.5-flash", "contents": contents, "systemInstruction": system,
           "tools": tools, "generationConfig": {"temperature": 1}}  # fmt: skip
    full = studio(client, "countTokens", {"generateContentRequest": gen}, model="gemini-2.5-flash")
    tool_chars = len(json.dumps(tools, separators=(",", ":")))
    expected = count_tokens([*contents, system]) + tool_chars // 4
    assert full.json() == {"totalTokens": expected} and count_request_tokens(gen) == expected
    assert expected > 3 + count_tokens([system])  # system and tools both counted
    snake_form = {"generate_content_request": {**gen, "system_instruction": system}}
    del snake_form["generate_content_request"]["systemInstruction"]
    resp = studio(client, "countTokens", snake_form, model="gemini-2.5-flash")
    assert resp.json() == {"totalTokens": expected}
    assert studio_fake.calls("ai_studio:generateContent") == []  # counting is no generate call


GEN = {"model": "models/gemini-2.5-pro", "contents": [USER]}
COUNT_REJECTIONS: list[tuple[str, Any, int, str]] = [
    ("code-assist-form", {"request": {"model": "models/gemini-2.5-pro", "contents": [USER]}}, 400,
     'Unknown name "request": Cannot find field.'),
    ("both-forms", {"contents": [USER], "generateContentRequest": GEN}, 400,
     "mutually exclusive"),
    ("neither", {}, 400, "contents is not specified"),
    ("empty-contents", {"contents": []}, 400, "contents is not specified"),
    ("system-beside-contents",
     {"contents": [USER], "systemInstruction": {"parts": [{"text": "s"}]}}, 400,
     'Unknown name "systemInstruction": Cannot find field.'),
    ("tools-beside-contents", {"contents": [USER], "tools": []}, 400, 'Unknown name "tools"'),
    ("model-beside-contents", {"model": "models/gemini-2.5-pro", "contents": [USER]}, 400,
     'Unknown name "model"'),
    ("gen-without-model", {"generateContentRequest": {"contents": [USER]}}, 400,
     "GenerateContentRequest.model: unexpected model name format"),
    ("gen-bare-model", {"generateContentRequest": {**GEN, "model": "gemini-2.5-pro"}}, 400,
     "models/<id>"),
    ("gen-other-model", {"generateContentRequest": {**GEN, "model": "models/gemini-2.5-flash"}},
     400, "does not match the model in the URL"),
    ("gen-unknown-model", {"generateContentRequest": {**GEN, "model": "models/nope"}}, 404,
     "Requested entity"),
    ("gen-session-id", {"generateContentRequest": {**GEN, "session_id": "s"}}, 400,
     'Unknown name "session_id" at \'generate_content_request\''),
    ("gen-bad-role", {"generateContentRequest": {**GEN, "contents": [
        {"role": "assistant", "parts": [{"text": "x"}]}]}}, 400, "Please use a valid role"),
    ("gen-bad-schema", {"generateContentRequest": {**GEN, "tools": tool(parametersJsonSchema={
        "$schema": "x"})}}, 400,
     "'generate_content_request.tools[0].function_declarations[0].parameters_json_schema'"),
    ("gen-level-on-2.5", {"generateContentRequest": {**GEN, "generationConfig": {
        "thinkingConfig": {"thinkingLevel": "HIGH"}}}}, 400, "Thinking level is not supported"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "message"), [c[1:] for c in COUNT_REJECTIONS],
                         ids=[c[0] for c in COUNT_REJECTIONS])  # fmt: skip
def test_ai_studio_count_tokens_rejections(
    studio_fake: FakeGoogle, client: httpx.Client, body: Any, status: int, message: str
) -> None:
    resp = studio(client, "countTokens", body)
    assert resp.status_code == status, resp.text
    assert message in error_of(resp)["message"]


def test_ai_studio_count_tokens_skips_the_signature_rule(
    studio_fake: FakeGoogle, client: httpx.Client
) -> None:
    gen = {**GEN, "contents": [USER, call_turn("f", sig=None), answer_turn("f")]}
    assert studio(client, "countTokens", {"generateContentRequest": gen}).status_code == 200
    resp = studio(client, "countTokens", {"contents": gen["contents"]}, model="gemini-nope")
    assert resp.status_code == 404 and "not supported for countTokens" in resp.text


# ---- AI Studio model list


def test_ai_studio_model_list_and_get(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    headers = {"x-goog-api-key": KEY}
    names = [m["name"] for m in client.get("/v1beta/models", headers=headers).json()["models"]]
    assert names == sorted(f"models/{m}" for m in KNOWN_MODELS)
    one = client.get(f"/v1beta/models/gemini-2.5-pro?key={KEY}").json()
    assert one == model_info("gemini-2.5-pro")
    assert (one["inputTokenLimit"], one["outputTokenLimit"]) == (1048576, 65536)
    assert one["supportedGenerationMethods"] == ["generateContent", "countTokens"]
    assert one["displayName"] == "Gemini 2.5 Pro"
    missing = client.get("/v1beta/models/gemini-9", headers=headers)
    assert missing.status_code == 404 and error_of(missing)["status"] == "NOT_FOUND"
    assert client.get("/v1beta/models").status_code == 403
    assert client.get("/v1beta/models/gemini-2.5-pro?key=bad").status_code == 400
    assert [r.rpc for r in studio_fake.requests[:2]] == ["ai_studio:models.list",
                                                         "ai_studio:models.get"]  # fmt: skip


def test_ai_studio_model_list_pages(studio_fake: FakeGoogle, client: httpx.Client) -> None:
    headers = {"x-goog-api-key": KEY}
    seen: list[str] = []
    params: dict[str, str] = {"pageSize": "5"}
    for _ in range(10):
        page = client.get("/v1beta/models", params=params, headers=headers).json()
        assert len(page["models"]) <= 5
        seen += [m["name"] for m in page["models"]]
        if "nextPageToken" not in page:
            break
        params = {"pageSize": "5", "pageToken": page["nextPageToken"]}
    assert seen == sorted(f"models/{m}" for m in KNOWN_MODELS)
    for bad in ({"pageSize": "lots"}, {"pageToken": "garbage"}):
        resp = client.get("/v1beta/models", params=bad, headers=headers)
        assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"


# ---------------------------------------------------------------- shared and per-credential replies

TOKEN_B, PROJECT_B, KEY_B = "ya29.b", "project-b-456", "AIzaSy-fake-key-2"


@pytest.fixture
def pool(studio_fake: FakeGoogle) -> FakeGoogle:
    studio_fake.add_account(TOKEN_B, "1//refresh-b", PROJECT_B, email="b@example.com")
    studio_fake.add_api_key(KEY_B)
    return studio_fake


def envelope_for(project: str) -> dict:
    return {**envelope(), "project": project}


def text_of(resp: httpx.Response) -> str:
    data = resp.json()
    return (data.get("response") or data)["candidates"][0]["content"]["parts"][0]["text"]


def test_shared_queue_serves_whichever_api_is_called(
    pool: FakeGoogle, client: httpx.Client
) -> None:
    pool.enqueue(Text("first"), Text("second"), Text("third"))
    assert text_of(studio(client, "generateContent", STUDIO_BODY)) == "first"
    assert text_of(post(client, "generateContent", envelope())) == "second"
    assert studio(client, "countTokens", STUDIO_BODY).status_code == 200  # takes no reply
    assert studio(client, "generateContent", {"contents": []}).status_code == 400  # neither
    _, _, chunks = stream(client, envelope())
    assert "".join(parts_of(c)[0]["text"] for c in chunks) == "third"
    assert text_of(studio(client, "generateContent", STUDIO_BODY)) == "Echo: List files in src"


def test_enqueue_for_one_account(pool: FakeGoogle, client: httpx.Client) -> None:
    """Account A answers 429 with RetryInfo, B answers normally."""
    pool.enqueue_for(PROJECT, rate_limited("2s", model="gemini-2.5-pro"), Text("a-own"))
    pool.enqueue(Text("shared"))
    b = post(client, "generateContent", envelope_for(PROJECT_B), token=TOKEN_B)
    assert (b.status_code, text_of(b)) == (200, "shared")  # B has no queue: the shared one
    a = post(client, "generateContent", envelope())
    assert a.status_code == 429
    assert error_of(a)["details"][1] == {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                         "retryDelay": "2s"}  # fmt: skip
    assert text_of(post(client, "generateContent", envelope())) == "a-own"
    assert text_of(post(client, "generateContent", envelope())) == "Echo: List files in src"
    assert [r.credential for r in pool.calls("generateContent")] == [PROJECT_B] + [PROJECT] * 3


def test_enqueue_for_follows_the_project_across_refreshes(
    pool: FakeGoogle, client: httpx.Client
) -> None:
    fresh = client.post(pool.token_url, data=refresh_form()).json()["access_token"]
    pool.enqueue_for(PROJECT, Text("for A"))
    assert text_of(post(client, "generateContent", envelope(), token=fresh)) == "for A"


def test_enqueue_for_an_api_key(pool: FakeGoogle, client: httpx.Client) -> None:
    pool.enqueue_for(KEY, ai_studio_rate_limited())
    pool.enqueue_for(KEY_B, Text("b-key"))
    assert studio(client, "generateContent", STUDIO_BODY).status_code == 429
    assert text_of(studio(client, "generateContent", STUDIO_BODY, key=KEY_B)) == "b-key"
    assert studio(client, "generateContent", STUDIO_BODY).status_code == 200
    # a rejected request (bad body) consumes nothing
    pool.enqueue_for(KEY, Text("kept"))
    assert studio(client, "generateContent", {"contents": "x"}).status_code == 400
    assert text_of(studio(client, "generateContent", STUDIO_BODY)) == "kept"


def test_always_for_until_cleared(pool: FakeGoogle, client: httpx.Client) -> None:
    pool.always_for(PROJECT, rate_limited("30s", "QUOTA_EXHAUSTED", "gemini-2.5-pro"))
    pool.enqueue_for(PROJECT, Text("own first"))
    pool.enqueue(Text("shared"))
    assert text_of(post(client, "generateContent", envelope())) == "own first"
    for _ in range(3):  # the shared queue is not reached while `always` holds
        resp = post(client, "streamGenerateContent", envelope(), query=SSE)
        assert resp.status_code == 429 and error_of(resp)["details"][0]["reason"] == (
            "QUOTA_EXHAUSTED")  # fmt: skip
    b = post(client, "generateContent", envelope_for(PROJECT_B), token=TOKEN_B)
    assert text_of(b) == "shared"  # other accounts unaffected
    pool.clear_for(PROJECT)
    assert post(client, "generateContent", envelope()).status_code == 200


def test_every_account_answers_429(pool: FakeGoogle, client: httpx.Client) -> None:
    for project in (PROJECT, PROJECT_B):
        pool.always_for(project, rate_limited("1s"))
    for key in (KEY, KEY_B):
        pool.always_for(key, ai_studio_rate_limited("40s"))
    for _ in range(2):
        assert post(client, "generateContent", envelope()).status_code == 429
        b = post(client, "generateContent", envelope_for(PROJECT_B), token=TOKEN_B)
        assert b.status_code == 429
        for key in (KEY, KEY_B):
            err = error_of(studio(client, "generateContent", STUDIO_BODY, key=key))
            assert err["details"][0]["@type"].endswith("QuotaFailure")


def test_clear_for_drops_the_queue_and_reset_drops_all(
    pool: FakeGoogle, client: httpx.Client
) -> None:
    pool.enqueue_for(KEY, Text("never"))
    pool.clear_for(KEY)
    assert text_of(studio(client, "generateContent", STUDIO_BODY)) == "Echo: List files in src"
    pool.enqueue_for(PROJECT, Text("never"))
    pool.always_for(KEY, Error(500, {"error": {"code": 500}}))
    pool.reset()
    assert post(client, "generateContent", envelope()).status_code == 200
    assert studio(client, "generateContent", STUDIO_BODY).status_code == 200
    assert studio(client, "generateContent", STUDIO_BODY, key="AIza-unknown").status_code == 400
    assert studio(client, "generateContent", STUDIO_BODY, key=KEY_B).status_code == 200  # kept


def test_ai_studio_cut_stream(pool: FakeGoogle, client: httpx.Client) -> None:
    pool.enqueue_for(KEY, CutStream(1))
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                      params={"alt": "sse", "key": KEY}, json=STUDIO_BODY) as resp,
    ):  # fmt: skip
        for chunk in resp.iter_raw():
            received += chunk
    assert received.count(b"data: ") == 1 and received.startswith(b'data: {"candidates":')


def test_ai_studio_rate_limited_shape() -> None:
    err = ai_studio_rate_limited()
    assert err.status == 429 and err.headers is None
    body = err.body
    assert isinstance(body, dict)
    e = body["error"]
    assert (e["code"], e["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert e["message"].startswith("You exceeded your current quota, please check your plan")
    assert e["message"].endswith("Please retry in 40.025771073s.")
    assert "limit: 10000, model: gemini-2.5-pro" in e["message"]
    assert [d["@type"].rsplit(".", 1)[1] for d in e["details"]] == [
        "QuotaFailure", "Help", "RetryInfo"]  # fmt: skip
    metric = "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count"
    assert e["details"][0]["violations"] == [{
        "quotaMetric": metric,
        "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
        "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"},
        "quotaValue": "10000"}]  # fmt: skip
    assert e["details"][2] == {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                               "retryDelay": "40s"}  # fmt: skip
    none_left = ai_studio_rate_limited("7s", "gemini-2.5-flash", limit=0).body
    assert isinstance(none_left, dict)
    assert "limit: 0, model: gemini-2.5-flash" in none_left["error"]["message"]
    assert none_left["error"]["message"].endswith("Please retry in 7.025771073s.")
    odd = ai_studio_rate_limited("1.5s", retry_in="1.5s").body
    assert isinstance(odd, dict) and odd["error"]["message"].endswith("Please retry in 1.5s.")


# ---------------------------------------------------------------- preview models
# (docs/upstreams.md "Models and preview fallback")

PREVIEWS = ["gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05",
            "gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20",
            "gemini-2.5-flash-lite-preview-06-17"]  # fmt: skip


@pytest.mark.parametrize("model", PREVIEWS)
def test_preview_models_are_known(
    studio_fake: FakeGoogle, client: httpx.Client, model: str
) -> None:
    assert model in KNOWN_MODELS
    resp = post(client, "generateContent", envelope(model))
    assert resp.status_code == 200 and resp.json()["response"]["modelVersion"] == model
    assert studio(client, "generateContent", STUDIO_BODY, model=model).status_code == 200


@pytest.mark.parametrize(("model", "budget", "ok"), [
    ("gemini-2.5-pro-preview-05-06", 0, False), ("gemini-2.5-pro-preview-06-05", 128, True),
    ("gemini-2.5-flash-preview-04-17", 0, True), ("gemini-2.5-flash-preview-05-20", 30000, False),
    ("gemini-2.5-flash-lite-preview-06-17", 100, False),
])  # fmt: skip
def test_preview_models_follow_their_family_budgets(
    client: httpx.Client, model: str, budget: int, ok: bool
) -> None:
    body = envelope(model, generationConfig={"thinkingConfig": {"thinkingBudget": budget}})
    assert post(client, "generateContent", body).status_code == (200 if ok else 400)


# ---------------------------------------------------------------- property: never a crash

FIELD_NAMES = sorted({n for f in MESSAGES.values() for k in f for n in (k, snake(k))})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(request=json_values, model=st.sampled_from(["gemini-2.5-pro", "gemini-3-flash", "x"]))
def test_validation_only_raises_google_errors(request: Any, model: str) -> None:
    body = {"model": model, "project": PROJECT, "request": request}
    try:
        validate_generate(body, PROJECT, set(KNOWN_MODELS))
    except GoogleError as e:
        assert 400 <= e.code < 500 and e.message


@settings(max_examples=300, deadline=None)
@given(params=json_values, json_schema=json_values, parts=st.lists(json_values, max_size=3))
def test_tool_and_part_validation_only_raises_google_errors(
    params: Any, json_schema: Any, parts: list
) -> None:
    decls = [{"name": "f", "parameters": params},
             {"name": "g", "parametersJsonSchema": json_schema}]  # fmt: skip
    contents = [USER, {"role": "model", "parts": parts}, answer_turn("f")]
    body = envelope(contents=contents, tools=[{"functionDeclarations": decls}])
    try:
        validate_generate(body, PROJECT, set(KNOWN_MODELS))
    except GoogleError as e:
        assert 400 <= e.code < 500 and e.message


@settings(max_examples=300, deadline=None)
@given(body=json_values, model=st.sampled_from(["gemini-2.5-pro", "gemini-3-flash", "x"]))
def test_ai_studio_validation_only_raises_google_errors(body: Any, model: str) -> None:
    for check in (validate_ai_studio_generate, validate_ai_studio_count):
        for candidate in (body, {"contents": body}, {"generateContentRequest": body}):
            try:
                check(candidate, model, set(KNOWN_MODELS))
            except GoogleError as e:
                assert 400 <= e.code < 500 and e.message
