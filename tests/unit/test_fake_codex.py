"""FakeCodex must be as strict as the Codex backend and OpenAI OAuth (docs/upstreams.md "Codex",
"OpenAI OAuth"): every rejection fires with the real status and body, traffic shaped like Codex CLI
and CLIProxyAPI passes, streams follow "Codex SSE events" event by event, and refresh tokens rotate
with reuse detection."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import zstandard
from cliproxy.addons.accounts import jwt as account_jwt
from cliproxy.translators.sse import SSEParser
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.fakes.codex import AUTH_CLAIM
from tests.fakes.codex import CLIENT_ID
from tests.fakes.codex import ITEM_NOT_FOUND
from tests.fakes.codex import JWT_KEY
from tests.fakes.codex import KNOWN_MODELS
from tests.fakes.codex import REFRESH_INVALIDATED
from tests.fakes.codex import REFRESH_REUSED
from tests.fakes.codex import RESPONSES_PATH
from tests.fakes.codex import TOKEN_INVALIDATED
from tests.fakes.codex import Calls
from tests.fakes.codex import CodexError
from tests.fakes.codex import CustomCall
from tests.fakes.codex import Cut
from tests.fakes.codex import Failed
from tests.fakes.codex import FakeCodex
from tests.fakes.codex import HttpError
from tests.fakes.codex import Text
from tests.fakes.codex import Tokens
from tests.fakes.codex import UsageLimit
from tests.fakes.codex import jwt_claims
from tests.fakes.codex import make_jwt
from tests.fakes.codex import pkce_challenge
from tests.fakes.codex import split_json
from tests.fakes.codex import split_text
from tests.fakes.codex import validate_request

ACCOUNT = "6b1d2c3e-1111-2222-3333-444455556666"
USER = {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "list files"}]}  # fmt: skip
SHELL = {"type": "function", "name": "shell", "description": "Runs a shell command",
         "strict": False, "parameters": {"type": "object",
                        "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                        "required": ["command"]}}  # fmt: skip
PNG = "data:image/png;base64,iVBORw0KGgo="
TLS = ssl.create_default_context()  # built once: httpx builds one per client otherwise (~40 ms)


@pytest.fixture
def fake() -> Iterator[FakeCodex]:
    with FakeCodex() as f:
        yield f


@pytest.fixture
def tokens(fake: FakeCodex) -> Tokens:
    return fake.add_account(ACCOUNT, email="me@example.com", plan="pro")


@pytest.fixture
def client(fake: FakeCodex) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.origin, timeout=10, verify=TLS) as c:
        yield c


def codex_body(**changes: Any) -> dict:
    """A request as Codex CLI sends it (docs/upstreams.md "Codex request body")."""
    body = {"model": "gpt-5-codex", "instructions": "You are Codex.",
            "input": [copy.deepcopy(USER)], "tools": [copy.deepcopy(SHELL)],
            "tool_choice": "auto", "parallel_tool_calls": False,
            "reasoning": {"effort": "medium", "summary": "auto"}, "store": False, "stream": True,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}  # fmt: skip
    body.update(changes)
    return body


def auth(tokens: Tokens, account: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.access_token}",
            "chatgpt-account-id": account or tokens.account_id, "originator": "codex_cli_rs",
            "Accept": "text/event-stream", "OpenAI-Beta": "responses=experimental"}  # fmt: skip


def post(client: httpx.Client, tokens: Tokens, body: Any, **headers: str) -> httpx.Response:
    return client.post(RESPONSES_PATH, json=body, headers={**auth(tokens), **headers})


def events_of(resp: httpx.Response) -> list[tuple[str | None, dict]]:
    """(SSE event name, parsed data) pairs; the name always equals data.type."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    parser = SSEParser()
    events = parser.feed(resp.content) + parser.finish()
    out = [(ev.event, json.loads(ev.data)) for ev in events]
    assert all(name == data["type"] for name, data in out)
    return out


def stream(client: httpx.Client, tokens: Tokens, body: dict) -> list[dict]:
    return [data for _, data in events_of(post(client, tokens, body))]


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def completed(events: list[dict]) -> dict:
    assert events[-1]["type"] == "response.completed"
    return events[-1]["response"]


def strip_ids(items: list[dict]) -> list[dict]:
    """Output items as Codex replays them: no `id` (store:false), no `status`."""
    return [{k: v for k, v in item.items() if k not in ("id", "status")} for item in items]


# ---------------------------------------------------------------- rejections (table-driven)


def change(path: str, value: Any = ..., drop: bool = False) -> Callable[[dict], None]:
    """Set (or delete) a dotted path in the body; integer segments index lists."""

    def apply(body: dict) -> None:
        *head, last = path.split(".")
        node: Any = body
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        key = int(last) if last.isdigit() else last
        if drop:
            del node[key]
        else:
            node[key] = value

    return apply


def call(
    call_id: str = "call_a", name: str = "shell", arguments: str = '{"command":["ls"]}'
) -> dict:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def result(call_id: str = "call_a", output: Any = "file.txt") -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def said(text: str) -> dict:
    return {"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}  # fmt: skip


INPUT_PARTS = "'input_text', 'input_image', and 'input_file'"
EFFORTS = "'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'"
REJECTIONS: list[tuple[str, Callable[[dict], None], str]] = [
    ("stream-false", change("stream", False), "Stream must be set to true"),
    ("stream-missing", change("stream", drop=True), "Stream must be set to true"),
    ("stream-string", change("stream", "true"), "Stream must be set to true"),
    ("store-true", change("store", True), "Store must be set to false"),
    ("store-missing", change("store", drop=True), "Store must be set to false"),
    ("instructions-missing", change("instructions", drop=True), "Instructions are required"),
    ("instructions-null", change("instructions", None), "Instructions are required"),
    ("instructions-int", change("instructions", 3),
     "Invalid type for 'instructions': expected a string, but got an integer instead."),
    ("model-missing", change("model", drop=True), "Missing required parameter: 'model'."),
    ("model-unknown", change("model", "gpt-4o"),
     "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."),
    ("effort-bad", change("reasoning.effort", "max"),
     f"Invalid value: 'max'. Supported values are: {EFFORTS}."),
    ("summary-bad", change("reasoning.summary", "short"),
     "Invalid value: 'short'. Supported values are: 'auto', 'concise', 'detailed', and 'none'."),
    ("reasoning-budget", change("reasoning.budget_tokens", 1024),
     "Unsupported parameter: reasoning.budget_tokens"),
    ("reasoning-string", change("reasoning", "high"),
     "Invalid type for 'reasoning': expected an object, but got a string instead."),
    ("include-unknown", change("include", ["reasoning.text"]),
     "Invalid value: 'reasoning.text'. Supported values are: …"),
    ("text-verbosity", change("text", {"verbosity": "loud"}),
     "Invalid value: 'loud'. Supported values are: 'low', 'medium', and 'high'."),
    ("text-schema-unnamed", change("text", {"format": {"type": "json_schema", "schema": {}}}),
     "Missing required parameter: 'text.format.name'."),
    ("text-unknown-key", change("text", {"format": {"type": "text"}, "style": 1}),
     "Unknown parameter: 'text.style'."),
    ("service-tier", change("service_tier", "turbo"), "Unsupported service_tier: turbo"),
    ("service-tier-flex", change("service_tier", "flex"), "Unsupported service_tier: flex"),
    ("service-tier-auto", change("service_tier", "auto"), "Unsupported service_tier: auto"),
    ("context-management", change("context_management", [{"type": "compaction"}]),
     "Unsupported parameter: context_management"),
    ("tool-web-search-preview", change("tools", [{"type": "web_search_preview"}]),
     "Invalid value: 'web_search_preview'. …"),
    ("parallel-string", change("parallel_tool_calls", "no"),
     "Invalid type for 'parallel_tool_calls': expected a boolean, but got a string instead."),
    ("metadata-int", change("client_metadata", {"x": 1}),
     "Invalid type for 'client_metadata.x': expected a string, but got an integer instead."),
    # input
    ("input-missing", change("input", drop=True), "Missing required parameter: 'input'."),
    ("input-string", change("input", "hi"),
     "Invalid type for 'input': expected an array, but got a string instead."),
    ("role-system", change("input.0.role", "system"), "System messages are not allowed"),
    ("role-tool", change("input.0.role", "tool"),
     "Invalid value: 'tool'. Supported values are: 'user', 'assistant', 'system', and "
     "'developer'."),
    ("content-missing", change("input.0.content", drop=True),
     "Missing required parameter: 'input[0].content'."),
    ("user-output-text", change("input.0.content.0.type", "output_text"),
     f"Invalid value: 'output_text'. Supported values are: {INPUT_PARTS}."),
    ("assistant-input-text", change("input", [USER, {"type": "message", "role": "assistant",
                                                     "content": [{"type": "input_text",
                                                                  "text": "x"}]}]),
     "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."),
    ("chat-text-part", change("input.0.content.0.type", "text"),
     f"Invalid value: 'text'. Supported values are: {INPUT_PARTS}."),
    ("text-not-string", change("input.0.content.0.text", ["a"]),
     "Invalid type for 'input[0].content[0].text': expected a string, but got an array instead."),
    ("message-name", change("input.0.name", "bob"), "Unknown parameter: 'input[0].name'."),
    ("image-url-object", change("input.0.content", [{"type": "input_image",
                                                     "image_url": {"url": PNG}}]),
     "Invalid type for 'input[0].content[0].image_url': expected a string, but got an object "
     "instead."),
    ("image-url-not-data", change("input.0.content", [{"type": "input_image",
                                                       "image_url": "iVBORw0KGgo="}]),
     "Invalid 'input[0].content[0].image_url'. Expected a base64-encoded data URL…"),
    ("image-url-bad-base64", change("input.0.content", [{"type": "input_image",
                                                         "image_url": "data:image/png;base64,a"}]),
     "Invalid 'input[0].content[0].image_url'. …"),
    ("image-detail", change("input.0.content", [{"type": "input_image", "image_url": PNG,
                                                 "detail": "max"}]),
     "Invalid value: 'max'. Supported values are: 'auto', 'low', and 'high'."),
    ("item-id", change("input.0.id", "msg_abc"),
     ITEM_NOT_FOUND.format(id="msg_abc")),
    ("item-unknown-type", change("input", [{"type": "item_reference", "ref": "x"}]),
     "Invalid value: 'item_reference'. Supported values are: 'message', 'function_call', …"),
    ("item-no-type", change("input", [{"content": "hi"}]),
     "Missing required parameter: 'input[0].type'."),
    ("orphan-output", change("input", [USER, result("call_x")]),
     "No tool call found for function call output with call_id call_x."),
    ("output-before-call", change("input", [USER, result(), call()]),
     "No tool call found for function call output with call_id call_a."),
    ("call-unanswered", change("input", [USER, call()]),
     "No tool output found for function call call_a."),
    ("call-answered-wrong-id", change("input", [USER, call("call_a"), call("call_b"),
                                                result("call_a")]),
     "No tool output found for function call call_b."),
    ("arguments-object", change("input", [USER, {**call(), "arguments": {"command": ["ls"]}},
                                          result()]),
     "Invalid type for 'input[1].arguments': expected a string, but got an object instead."),
    ("call-no-call-id", change("input", [USER, {"type": "function_call", "name": "shell",
                                                "arguments": "{}"}]),
     "Missing required parameter: 'input[1].call_id'."),
    ("output-object", change("input", [USER, call(), result(output={"ok": True})]),
     "Invalid type for 'input[2].output': expected an array, but got an object instead."),
    ("output-part-bad", change("input", [USER, call(), result(output=[{"type": "text",
                                                                      "text": "x"}])]),
     f"Invalid value: 'text'. Supported values are: {INPUT_PARTS}."),
    ("custom-orphan", change("input", [USER, {"type": "custom_tool_call_output",
                                              "call_id": "call_c", "output": "ok"}]),
     "No tool call found for custom tool call output with call_id call_c."),
    ("custom-answered-as-function", change("input", [USER, {"type": "custom_tool_call",
                                                            "call_id": "call_c", "name": "p",
                                                            "input": "x"}, result("call_c")]),
     "No tool call found for function call output with call_id call_c."),
    ("function-answered-as-custom", change("input", [USER, call(), {
        "type": "custom_tool_call_output", "call_id": "call_a", "output": "ok"}]),
     "No tool call found for custom tool call output with call_id call_a."),
    ("custom-unanswered", change("input", [USER, {"type": "custom_tool_call", "call_id": "call_c",
                                                  "name": "apply_patch", "input": "x"}]),
     "No tool output found for custom tool call call_c."),
    ("reasoning-forged", change("input", [USER, {"type": "reasoning", "summary": [],
                                                 "encrypted_content": "gAAAAAforged"}]),
     "The encrypted content gAAAAAforged could not be verified."),
    ("reasoning-no-content", change("input", [USER, {"type": "reasoning", "summary": []}]),
     "Missing required parameter: 'input[1].encrypted_content'."),
    ("reasoning-summary-type", change("input", [USER, {
        "type": "reasoning", "summary": [{"type": "text", "text": "x"}],
        "encrypted_content": "e"}]),
     "Invalid value: 'text'. Supported values are: 'summary_text'."),
    # tools
    ("tool-chat-style", change("tools", [{"type": "function", "function": SHELL}]),
     "Missing required parameter: 'tools[0].name'."),
    ("tool-chat-style-named", change("tools", [{"type": "function", "name": "shell",
                                                "function": SHELL}]),
     "Unknown parameter: 'tools[0].function'."),
    ("tool-bad-name", change("tools.0.name", "my tool"),
     "Invalid 'tools[0].name': string does not match pattern. Expected a string that matches the "
     "pattern '^[a-zA-Z0-9_-]+$'."),
    ("tool-long-name", change("tools.0.name", "a" * 65),
     "Invalid 'tools[0].name': string too long. Expected a string with maximum length 64, but got "
     "a string with length 65 instead."),
    ("call-id-too-long", change("input", [USER, call("c" * 65), result("c" * 65)]),
     "Invalid 'input[1].call_id': string too long. Expected a string with maximum length 64, but "
     "got a string with length 65 instead."),
    ("output-call-id-too-long", change("input", [USER, result("c" * 70)]),
     "Invalid 'input[1].call_id': string too long. Expected a string with maximum length 64, but "
     "got a string with length 70 instead."),
    ("tool-no-type", change("tools", [{"name": "shell"}]),
     "Missing required parameter: 'tools[0].type'."),
    ("tool-unknown-type", change("tools", [{"type": "file_search"}]),
     "Invalid value: 'file_search'. Supported values are: 'function', 'custom', …"),
    ("tool-params-array", change("tools.0.parameters", {"type": "array"}),
     "Invalid schema for function 'shell': schema must be a JSON Schema of 'type: \"object\"', "
     "got 'type: \"array\"'."),
    ("tool-params-string", change("tools.0.parameters", "{}"),
     "Invalid type for 'tools[0].parameters': expected an object, but got a string instead."),
    ("local-shell-extra", change("tools", [{"type": "local_shell", "name": "x"}]),
     "Unknown parameter: 'tools[0].name'."),
    ("tool-choice-unknown-fn", change("tool_choice", {"type": "function", "name": "nope"}),
     "Tool choice 'nope' not found in 'tools' parameter."),
    ("tool-choice-unhashable", change("tool_choice", {"type": "function", "name": ["shell"]}),
     "Tool choice '['shell']' not found in 'tools' parameter."),
    ("tool-choice-any", change("tool_choice", "any"),
     "Invalid value: 'any'. Supported values are: 'auto', 'none', and 'required'."),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "message"), [r[1:] for r in REJECTIONS],
                         ids=[r[0] for r in REJECTIONS])  # fmt: skip
def test_body_rejections(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens, mutate: Callable[[dict], None],
    message: str,
) -> None:  # fmt: skip
    body = codex_body()
    mutate(body)
    fake.enqueue(Text("queued"))
    resp = post(client, tokens, body)
    if message.startswith("Item with id"):
        assert resp.status_code == 404
        assert resp.json() == {"error": {"message": message, "type": "invalid_request_error",
                                         "param": "input", "code": None}}  # fmt: skip
    elif "string too long" in message:  # the backend's own shape for length limits
        assert resp.status_code == 400, resp.text
        param = message.split("'")[1]
        error = {"message": message, "type": "invalid_request_error", "param": param,
                 "code": "string_above_max_length"}  # fmt: skip
        assert resp.json() == {"error": error}
    else:
        assert resp.status_code == 400, resp.text
        assert list(resp.json()) == ["detail"]
        got = resp.json()["detail"]  # a message ending in "…" is a prefix
        assert got.startswith(message[:-1]) if message.endswith("…") else got == message
    assert resp.headers["content-type"] == "application/json"
    assert fake.requests[-1].status == resp.status_code
    assert fake.requests[-1].body == body  # recorded even when rejected
    assert types(stream(client, tokens, codex_body()))[-1] == "response.completed"
    assert fake.requests[-1].status == 200  # the queued reply survived the rejection


UNSUPPORTED = ["max_output_tokens", "max_tokens", "temperature", "top_p", "top_k",
               "presence_penalty", "frequency_penalty", "seed", "stop", "logprobs", "top_logprobs",
               "metadata", "truncation", "background", "previous_response_id", "user",
               "stream_options", "max_tool_calls", "prompt", "conversation",
               "messages"]  # fmt: skip


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_parameters(client: httpx.Client, tokens: Tokens, name: str) -> None:
    resp = post(client, tokens, codex_body(**{name: None}))
    assert (resp.status_code, resp.json()) == (400, {"detail": f"Unsupported parameter: {name}"})


def test_root_must_be_object(client: httpx.Client, tokens: Tokens) -> None:
    resp = post(client, tokens, [codex_body()])
    assert (resp.status_code, resp.json()) == (
        400,
        {"detail": "Request body must be a JSON object."},
    )


# ---------------------------------------------------------------- auth and transport

UNAUTHORIZED = {"error": {"message": TOKEN_INVALIDATED, "type": "invalid_request_error",
                          "code": "token_invalidated"}}  # fmt: skip


@pytest.mark.parametrize(("headers", "status", "body"), [
    ({"Authorization": None}, 401, UNAUTHORIZED),
    ({"Authorization": "Bearer eyJ.unknown.sig"}, 401, UNAUTHORIZED),
    ({"Authorization": "Basic {access}"}, 401, UNAUTHORIZED),
    ({"Authorization": "{access}"}, 401, UNAUTHORIZED),
    ({"chatgpt-account-id": None}, 403, {"detail": "Missing chatgpt-account-id header"}),
    ({"chatgpt-account-id": "other-account"}, 403,
     {"detail": "chatgpt-account-id does not match the authenticated account"}),
])  # fmt: skip
def test_auth_rejections(
    client: httpx.Client, tokens: Tokens, headers: dict, status: int, body: dict
) -> None:
    """`headers` override the good ones: None drops one, {access} is the valid access token."""
    sent = {**auth(tokens), **headers}
    sent = {k: v.format(access=tokens.access_token) for k, v in sent.items() if v is not None}
    resp = client.post(RESPONSES_PATH, json=codex_body(), headers=sent)
    assert (resp.status_code, resp.json()) == (status, body)


def test_expired_access_tokens_are_401(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens
) -> None:
    stale = fake.add_account(ACCOUNT, expires_in=-5)  # its JWT exp is already past
    assert post(client, stale, codex_body()).status_code == 401
    assert post(client, tokens, codex_body()).status_code == 200
    fake.expire(tokens.access_token)
    resp = post(client, tokens, codex_body())
    assert (resp.status_code, resp.json()) == (401, UNAUTHORIZED)


def test_account_header_is_case_insensitive(client: httpx.Client, tokens: Tokens) -> None:
    headers = {"Authorization": f"Bearer {tokens.access_token}", "ChatGPT-Account-ID": ACCOUNT}
    assert client.post(RESPONSES_PATH, json=codex_body(), headers=headers).status_code == 200


@pytest.mark.parametrize(("content_type", "content", "message"), [
    ("text/plain", json.dumps(codex_body()).encode(),
     "Unsupported Content-Type 'text/plain': expected application/json."),
    ("", json.dumps(codex_body()).encode(),
     "Unsupported Content-Type '': expected application/json."),
    ("application/json", b'{"model":', "We could not parse the JSON body of your request."),
])  # fmt: skip
def test_transport_rejections(
    client: httpx.Client, tokens: Tokens, content_type: str, content: bytes, message: str
) -> None:
    headers = {**auth(tokens), "Content-Type": content_type}
    resp = client.post(RESPONSES_PATH, content=content, headers=headers)
    assert (resp.status_code, resp.json()) == (400, {"detail": message})


@pytest.mark.parametrize(("verb", "path", "status"), [
    ("POST", "/backend-api//codex/responses", 404),  # CLIProxyAPI v3.0.5's double slash
    ("POST", "/backend-api/codex/responses/", 404),
    ("POST", "/v1/responses", 404),
    ("GET", RESPONSES_PATH, 405),
    ("GET", "/oauth/token", 405),
])  # fmt: skip
def test_unknown_paths(client: httpx.Client, tokens: Tokens, verb: str, path: str,
                       status: int) -> None:  # fmt: skip
    resp = client.request(verb, path, json=codex_body(), headers=auth(tokens))
    assert resp.status_code == status
    assert resp.json() == {"detail": "Not Found" if status == 404 else "Method Not Allowed"}


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compressed_request_bodies(client: httpx.Client, tokens: Tokens, encoding: str) -> None:
    raw = json.dumps(codex_body()).encode()
    packed = gzip.compress(raw) if encoding == "gzip" else zstandard.ZstdCompressor().compress(raw)
    headers = {**auth(tokens), "Content-Type": "application/json", "Content-Encoding": encoding}
    resp = client.post(RESPONSES_PATH, content=packed, headers=headers)
    assert completed([d for _, d in events_of(resp)])["status"] == "completed"
    headers["Content-Encoding"] = "br"
    resp = client.post(RESPONSES_PATH, content=packed, headers=headers)
    assert (resp.status_code, resp.json()) == (400, {"detail": "Unsupported Content-Encoding: br"})


def test_chunked_request_body_is_read(client: httpx.Client, tokens: Tokens) -> None:
    payload = json.dumps(codex_body()).encode()
    headers = {**auth(tokens), "Content-Type": "application/json"}
    resp = client.post(RESPONSES_PATH, content=iter([payload[:10], payload[10:]]), headers=headers)
    assert resp.status_code == 200


# ---------------------------------------------------------------- accepted traffic


@pytest.fixture
def issued(client: httpx.Client, tokens: Tokens, fake: FakeCodex) -> str:
    """An encrypted_content the fake handed out."""
    fake.enqueue(Text("ok", reasoning="thinking"))
    stream(client, tokens, codex_body())
    return fake.issued_reasoning[-1]


CODEX_169 = codex_body(  # Codex 0.169 to a custom provider (docs/upstreams.md "Codex request body")
    model="gpt-5.5", instructions="",
    input=[{"type": "message", "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions instructions>"}]},
           {"type": "message", "role": "developer",
            "content": [{"type": "input_text", "text": "<collaboration mode>"}]},
           {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "<environment_context>…"}]},
           copy.deepcopy(USER)],
    tools=[copy.deepcopy(SHELL), {"type": "local_shell"}, {"type": "web_search"},
           {"type": "tool_search", "execution": "client", "description": "Finds tools",
            "parameters": {"type": "object"}},
           {"type": "namespace", "name": "mcp__docs", "description": "Docs",
            "tools": [{"type": "function", "name": "search", "parameters": {"type": "object"}}]},
           {"type": "custom", "name": "apply_patch", "description": "Patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}],
    reasoning={"effort": "xhigh", "summary": "detailed"}, text={"verbosity": "low"},
    client_metadata={"x-codex-installation-id": "abc"}, service_tier="priority",
)  # fmt: skip


@pytest.mark.parametrize("body", [
    codex_body(),
    CODEX_169,
    codex_body(reasoning=None, include=[], tools=[], parallel_tool_calls=True),
    codex_body(model="codex-mini-latest", reasoning={"effort": "none"}),
    codex_body(model="gpt-5", reasoning={"effort": "minimal", "summary": "none"}),
    codex_body(model="gpt-5.4-mini", tool_choice={"type": "function", "name": "shell"}),
    codex_body(text={"format": {"type": "json_schema", "name": "out", "strict": True,
                                "schema": {"type": "object"}}, "verbosity": "high"}),
    codex_body(tools=[{**SHELL, "parameters": {}}], tool_choice="required"),
    # tool loop: call + string output, call + array output, custom tool, local shell
    codex_body(input=[USER, said("Running ls."), call("call_a"), result("call_a"),
                      call("call_b"), result("call_b", [{"type": "input_text", "text": "a"},
                                                        {"type": "input_image",
                                                         "image_url": PNG}]),
                      {"type": "custom_tool_call", "call_id": "call_c", "name": "apply_patch",
                       "input": "*** Begin Patch"},
                      {"type": "custom_tool_call_output", "call_id": "call_c", "output": "done"},
                      {"type": "local_shell_call", "call_id": "call_d", "status": "completed",
                       "action": {"type": "exec", "command": ["ls"]}},
                      result("call_d", "ok"),
                      {"type": "web_search_call", "status": "completed",
                       "action": {"type": "search", "query": "x"}}]),
    # images and files, https and data URLs; Easy-style message without type; string content
    codex_body(input=[{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": PNG, "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_file", "filename": "a.pdf",
         "file_data": "data:application/pdf;base64,JVBERi0="}]},
        {"role": "assistant", "content": "plain history"},
        {"role": "user", "content": "plain question"}]),
    # Codex 0.169 puts status on replayed items (ids it must not send)
    codex_body(input=[USER, {**call(), "status": "completed"}, result()]),
])  # fmt: skip
def test_valid_bodies_pass(client: httpx.Client, tokens: Tokens, body: dict) -> None:
    assert completed(stream(client, tokens, body))["status"] == "completed"


def test_issued_reasoning_round_trips(client: httpx.Client, tokens: Tokens, issued: str) -> None:
    item = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}],
            "content": None, "encrypted_content": issued}  # fmt: skip
    assert stream(client, tokens, codex_body(input=[USER, item, said("ok"), USER]))
    forged = {**item, "encrypted_content": issued[:-2] + "xx"}
    resp = post(client, tokens, codex_body(input=[USER, forged]))
    assert resp.status_code == 400 and "could not be verified" in resp.json()["detail"]


def test_added_model_is_known(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    assert set(KNOWN_MODELS) == {"gpt-5", "gpt-5-codex", "gpt-5.5", "codex-mini-latest",
                                 "gpt-5.4-mini"}  # fmt: skip
    assert post(client, tokens, codex_body(model="gpt-6")).status_code == 400
    fake.add_model("gpt-6")
    assert post(client, tokens, codex_body(model="gpt-6")).status_code == 200


# ---------------------------------------------------------------- streams

TEXT_ORDER = ["response.output_item.added", "response.content_part.added",
              "response.output_text.delta", "response.output_text.done",
              "response.content_part.done", "response.output_item.done"]  # fmt: skip
REASONING_ORDER = ["response.output_item.added", "response.reasoning_summary_part.added",
                   "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
                   "response.reasoning_summary_part.done", "response.output_item.done"]  # fmt: skip


def squash(names: list[str]) -> list[str]:
    """Collapse runs of one delta kind to a single entry."""
    return [n for i, n in enumerate(names) if not (n.endswith(".delta") and names[i - 1] == n)]


def test_text_stream_follows_4_6(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    fake.enqueue(Text("Here are the files you asked for.", reasoning="The user wants a listing."))
    resp = post(client, tokens, codex_body())
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.headers["x-codex-primary-used-percent"] == "12"
    assert resp.headers["x-codex-secondary-window-minutes"] == "10080"
    pairs = events_of(resp)
    events = [d for _, d in pairs]
    limits, rest = events[0], events[1:]
    assert limits["type"] == "codex.rate_limits" and "sequence_number" not in limits
    assert limits["plan_type"] == "pro" and limits["rate_limits"]["primary"]["used_percent"] == 12
    assert [e["sequence_number"] for e in rest] == list(range(len(rest)))
    assert squash(types(rest)) == ["response.created", "response.in_progress", *REASONING_ORDER,
                                   *TEXT_ORDER, "response.completed"]  # fmt: skip
    text_deltas = [e["delta"] for e in rest if e["type"] == "response.output_text.delta"]
    assert (
        2 <= len(text_deltas) <= 3 and "".join(text_deltas) == "Here are the files you asked for."
    )
    summary = [e["delta"] for e in rest if e["type"] == "response.reasoning_summary_text.delta"]
    assert "".join(summary) == "The user wants a listing."
    created = rest[0]["response"]
    assert (created["status"], created["output"], created["usage"]) == ("in_progress", [], None)
    assert created["model"] == "gpt-5-codex" and created["store"] is False
    done_items = [e["item"] for e in rest if e["type"] == "response.output_item.done"]
    final = completed(rest)
    assert final["output"] == done_items and final["id"] == created["id"]
    reasoning, message = done_items
    assert reasoning["summary"] == [{"type": "summary_text", "text": "The user wants a listing."}]
    assert reasoning["encrypted_content"] == fake.issued_reasoning[-1]
    assert message["content"] == [{"type": "output_text", "annotations": [], "logprobs": [],
                                   "text": "Here are the files you asked for."}]  # fmt: skip
    assert message["id"].startswith("msg_") and reasoning["id"].startswith("rs_")
    usage = final["usage"]
    assert set(usage) == {"input_tokens", "input_tokens_details", "output_tokens",
                          "output_tokens_details", "total_tokens"}  # fmt: skip
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens"] > usage["output_tokens_details"]["reasoning_tokens"]


def test_stream_field_sets(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    """Field sets from openai-python types/responses (docs/upstreams.md "Codex SSE events")."""
    fake.enqueue(Calls([("shell", {"command": ["ls"]})], text_before="Running ls."))
    expected = {
        "response.output_item.added": {"output_index", "item"},
        "response.output_item.done": {"output_index", "item"},
        "response.content_part.added": {"item_id", "output_index", "content_index", "part"},
        "response.content_part.done": {"item_id", "output_index", "content_index", "part"},
        "response.output_text.delta": {"item_id", "output_index", "content_index", "delta",
                                       "logprobs"},
        "response.output_text.done": {"item_id", "output_index", "content_index", "text",
                                      "logprobs"},
        "response.function_call_arguments.delta": {"item_id", "output_index", "delta"},
        "response.function_call_arguments.done": {"item_id", "output_index", "name", "arguments"},
        "response.created": {"response"}, "response.in_progress": {"response"},
        "response.completed": {"response"},
    }  # fmt: skip
    for event in stream(client, tokens, codex_body())[1:]:
        assert set(event) - {"type", "sequence_number"} == expected[event["type"]], event


def test_default_replies(client: httpx.Client, tokens: Tokens) -> None:
    final = completed(stream(client, tokens, codex_body()))
    assert final["output"][-1]["content"][0]["text"] == "Echo: list files"
    body = codex_body(input=[USER, call(), result(output="a.txt b.txt")])
    final = completed(stream(client, tokens, body))
    assert final["output"][-1]["content"][0]["text"] == "Tool said: a.txt b.txt"
    parts = [{"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": PNG}]
    body = codex_body(input=[USER, call(), result(output=parts)])
    assert completed(stream(client, tokens, body))["output"][-1]["content"][0]["text"] == (
        "Tool said: x"
    )


def test_reasoning_without_include_or_summary(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens
) -> None:
    fake.enqueue(Text("hi there", reasoning="hmm"))
    events = stream(client, tokens, codex_body(include=[], reasoning={"effort": "low"}))
    assert not any("reasoning_summary" in t for t in types(events))
    reasoning = completed(events)["output"][0]
    assert reasoning == {"id": reasoning["id"], "type": "reasoning", "summary": []}
    assert fake.issued_reasoning == []
    assert completed(events)["usage"]["output_tokens_details"]["reasoning_tokens"] == 1


def test_tool_call_fragments_and_round_trip(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens
) -> None:
    args = {"command": ["ls", "-la", "src/with spaces"], "workdir": "/tmp", "n": 3}
    fake.enqueue(Calls([("shell", args), ("shell", {})], reasoning="Need a listing."))
    events = stream(client, tokens, codex_body())
    names = squash(types(events[1:]))
    call_order = ["response.output_item.added", "response.function_call_arguments.delta",
                  "response.function_call_arguments.done", "response.output_item.done"]  # fmt: skip
    assert names == ["response.created", "response.in_progress", *REASONING_ORDER, *call_order,
                     *call_order, "response.completed"]  # fmt: skip
    output = completed(events)["output"]
    for index, want in ((1, args), (2, {})):
        fragments = [e["delta"] for e in events if e.get("output_index") == index
                     and e["type"] == "response.function_call_arguments.delta"]  # fmt: skip
        assert len(fragments) >= 2
        assert json.loads("".join(fragments)) == want
        done = next(e for e in events if e.get("output_index") == index
                    and e["type"] == "response.function_call_arguments.done")  # fmt: skip
        assert done["arguments"] == "".join(fragments) == output[index]["arguments"]
        assert done["name"] == "shell"
        assert output[index]["call_id"].startswith("call_")
        assert output[index]["id"].startswith("fc_")
        added = next(e for e in events if e.get("output_index") == index
                     and e["type"] == "response.output_item.added")  # fmt: skip
        assert added["item"]["arguments"] == "" and added["item"]["status"] == "in_progress"
    # Codex replays the output without ids, answers both calls, and the fake accepts it
    replay = strip_ids(output)
    answers = [result(item["call_id"], "ok") for item in replay[1:]]
    body = codex_body(input=[USER, *replay, *answers])
    assert completed(stream(client, tokens, body))["output"][-1]["content"][0]["text"] == (
        "Tool said: ok"
    )
    # replaying the ids is the 404 of a store:false conversation
    resp = post(client, tokens, codex_body(input=[USER, *output, *answers]))
    assert resp.status_code == 404 and output[0]["id"] in resp.json()["error"]["message"]


def test_custom_tool_call(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    fake.enqueue(CustomCall("apply_patch", patch))
    events = stream(client, tokens, codex_body())
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == patch and len(deltas) >= 2
    item = completed(events)["output"][0]
    assert (item["type"], item["name"], item["input"]) == ("custom_tool_call", "apply_patch", patch)
    assert item["call_id"].startswith("call_")


def test_failed_stream(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    message = "Your input exceeds the context window of this model."
    fake.enqueue(Failed("context_length_exceeded", message))
    events = stream(client, tokens, codex_body())
    assert types(events) == ["codex.rate_limits", "response.created", "response.failed"]
    failed = events[-1]
    assert failed["sequence_number"] == 1
    assert failed["response"]["status"] == "failed" and failed["response"]["usage"] is None
    assert failed["response"]["error"] == {"code": "context_length_exceeded", "message": message}


@pytest.mark.parametrize("use_resets_at", [False, True])
def test_usage_limit(fake: FakeCodex, client: httpx.Client, tokens: Tokens,
                     use_resets_at: bool) -> None:  # fmt: skip
    fake.enqueue(UsageLimit(17778, plan="pro", use_resets_at=use_resets_at))
    resp = post(client, tokens, codex_body())
    assert resp.status_code == 429 and resp.headers["content-type"] == "application/json"
    err = resp.json()["error"]
    reset = {"resets_at": err.get("resets_at")} if use_resets_at else {"resets_in_seconds": 17778}
    assert err == {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                   "plan_type": "pro", **reset}  # fmt: skip
    if use_resets_at:
        assert abs(err["resets_at"] - (time.time() + 17778)) < 5
    assert "x-codex-primary-used-percent" in resp.headers


def test_http_error_reply(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    fake.enqueue(HttpError(429, {"error": {"type": "rate_limit_exceeded"}}, {"Retry-After": "7"}),
                 HttpError(502, "<html>bad gateway</html>"))  # fmt: skip
    resp = post(client, tokens, codex_body())
    assert (resp.status_code, resp.headers["retry-after"]) == (429, "7")
    assert resp.json() == {"error": {"type": "rate_limit_exceeded"}}
    resp = post(client, tokens, codex_body())
    assert (resp.status_code, resp.text) == (502, "<html>bad gateway</html>")


def test_cut_drops_the_connection(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    fake.enqueue(Cut(3), Cut(0, Text("never")))
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", RESPONSES_PATH, json=codex_body(), headers=auth(tokens)) as resp,
    ):
        assert resp.status_code == 200
        for chunk in resp.iter_raw():
            received += chunk
    parser = SSEParser()
    names = [ev.event for ev in parser.feed(received)]
    assert names == ["codex.rate_limits", "response.created", "response.in_progress"]
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, tokens, codex_body()).read()
    assert completed(stream(client, tokens, codex_body()))["status"] == "completed"


def test_events_are_flushed_one_by_one(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens
) -> None:
    fake.event_delay = 0.02
    with client.stream("POST", RESPONSES_PATH, json=codex_body(), headers=auth(tokens)) as resp:
        chunks = [c for c in resp.iter_raw() if c]
    assert len(chunks) == b"".join(chunks).count(b"\n\n")  # one read per event


def test_requests_are_recorded(fake: FakeCodex, client: httpx.Client, tokens: Tokens) -> None:
    body = codex_body()
    stream(client, tokens, body)
    rec = fake.responses_requests[-1]
    assert (rec.method, rec.path, rec.status, rec.body) == ("POST", RESPONSES_PATH, 200, body)
    assert rec.headers["chatgpt-account-id"] == ACCOUNT
    assert rec.headers["originator"] == "codex_cli_rs"
    assert rec.headers["authorization"] == f"Bearer {tokens.access_token}"


def test_concurrent_streams(fake: FakeCodex, tokens: Tokens) -> None:
    fake.event_delay = 0.005
    texts: list[str] = []

    def run(i: int) -> None:
        with httpx.Client(base_url=fake.origin, timeout=10, verify=TLS) as c:
            body = codex_body(input=[{**USER, "content": [{"type": "input_text",
                                                           "text": f"n{i}"}]}])  # fmt: skip
            texts.append(completed(stream(c, tokens, body))["output"][0]["content"][0]["text"])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(texts) == sorted(f"Echo: n{i}" for i in range(8))


@pytest.mark.parametrize(("text", "chunks"), [
    ("one two three four five", ["one two ", "three four ", "five"]),
    ("one two three four", ["one two ", "three four"]),
    ("one two", ["one ", "two"]),
    ("single", ["sin", "gle"]),
    ("x", ["x"]),
    ("", []),
])  # fmt: skip
def test_split_text(text: str, chunks: list[str]) -> None:
    assert split_text(text) == chunks


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=5))
def test_split_json_always_fragments(args: dict) -> None:
    arguments = json.dumps(args, separators=(",", ":"))
    parts = split_json(arguments)
    assert len(parts) >= 2 and "".join(parts) == arguments


# ---------------------------------------------------------------- tokens and JWTs


def token_post(client: httpx.Client, fields: dict[str, str], form: bool = False) -> httpx.Response:
    if form:
        return client.post("/oauth/token", data=fields)
    return client.post("/oauth/token", json=fields)


def refresh_fields(refresh_token: str, client_id: str = CLIENT_ID) -> dict[str, str]:
    return {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}


def test_make_jwt_and_claims() -> None:
    token = make_jwt({"exp": 1767225600, "email": "a@example.com"})
    head, body, sig = token.split(".")
    assert "=" not in token
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    want = hmac.new(JWT_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=") == want
    assert jwt_claims(token) == {"exp": 1767225600, "email": "a@example.com"}
    assert jwt_claims("not-a-jwt") == {}


def test_account_token_claims(fake: FakeCodex) -> None:
    tokens = fake.add_account("acct-9", email="x@example.com", plan="team", expires_in=600,
                              refresh_token="rt_fixed")  # fmt: skip
    assert (tokens.account_id, tokens.email, tokens.refresh_token) == ("acct-9", "x@example.com",
                                                                       "rt_fixed")  # fmt: skip
    access, id_claims = jwt_claims(tokens.access_token), jwt_claims(tokens.id_token)
    assert abs(access["exp"] - (time.time() + 600)) < 5
    assert access[AUTH_CLAIM]["chatgpt_account_id"] == "acct-9"
    assert access[AUTH_CLAIM]["chatgpt_plan_type"] == "team"
    assert access[AUTH_CLAIM]["chatgpt_user_id"].startswith("user-")
    assert id_claims["email"] == "x@example.com"
    assert id_claims[AUTH_CLAIM] == {"chatgpt_account_id": "acct-9", "chatgpt_plan_type": "team"}
    # the proxy's own JWT reader understands them
    assert account_jwt.openai_auth(tokens.id_token)["chatgpt_account_id"] == "acct-9"
    assert account_jwt.openai_email(tokens.id_token) == "x@example.com"
    assert account_jwt.openai_email(tokens.access_token) == "x@example.com"
    file = tokens.auth_file()
    assert file["type"] == "codex" and file["account_id"] == "acct-9"
    assert file["expired"].endswith("Z") and file["refresh_token"] == "rt_fixed"
    # two accounts issued in the same second still get distinct tokens
    assert fake.add_account("acct-9").access_token != fake.add_account("acct-9").access_token


def test_refresh_rotates_and_detects_reuse(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens
) -> None:
    resp = token_post(client, refresh_fields(tokens.refresh_token))
    assert resp.status_code == 200
    reply = resp.json()
    assert set(reply) == {"access_token", "refresh_token", "id_token", "expires_in", "token_type",
                          "scope"}  # fmt: skip
    assert reply["token_type"] == "Bearer" and reply["expires_in"] == 3600
    assert reply["refresh_token"] != tokens.refresh_token
    assert reply["access_token"] != tokens.access_token
    assert jwt_claims(reply["access_token"])[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    assert jwt_claims(reply["id_token"])["email"] == "me@example.com"
    fresh = Tokens(reply["access_token"], reply["refresh_token"], reply["id_token"], ACCOUNT,
                   "me@example.com")  # fmt: skip
    assert post(client, fresh, codex_body()).status_code == 200
    # the spent refresh token is "used": reuse is permanent and named
    resp = token_post(client, refresh_fields(tokens.refresh_token))
    assert (resp.status_code, resp.json()) == (401, {"error": {
        "message": REFRESH_REUSED, "type": "invalid_request_error",
        "code": "refresh_token_reused"}})  # fmt: skip
    # the rotated one works, once
    assert token_post(client, refresh_fields(fresh.refresh_token)).status_code == 200
    assert token_post(client, refresh_fields(fresh.refresh_token)).status_code == 401
    assert fake.token_requests[0] == refresh_fields(tokens.refresh_token)
    assert len(fake.token_requests) == 4


def test_refresh_form_encoded_like_cliproxyapi(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens
) -> None:
    fields = {**refresh_fields(tokens.refresh_token), "scope": "openid profile email"}
    resp = token_post(client, fields, form=True)
    assert resp.status_code == 200 and resp.json()["refresh_token"]
    assert fake.token_requests[-1] == fields
    assert fake.requests[-1].headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(("setup", "fields", "status", "body"), [
    (None, refresh_fields("rt_unknown"), 401,
     {"error": {"message": REFRESH_INVALIDATED, "type": "invalid_request_error",
                "code": "refresh_token_invalidated"}}),
    ("revoke", None, 401, {"error": {"message": REFRESH_INVALIDATED,
                                     "type": "invalid_request_error",
                                     "code": "refresh_token_invalidated"}}),
    ("expire_refresh", None, 401, {"error": {
        "message": "Your refresh token has expired. Please try signing in again.",
        "type": "invalid_request_error", "code": "refresh_token_expired"}}),
    (None, refresh_fields("REFRESH", client_id="app_other"), 401,
     {"error": {"message": "Client authentication failed.", "type": "invalid_request_error",
                "code": "invalid_client"}}),
    (None, {"client_id": CLIENT_ID, "grant_type": "refresh_token"}, 400,
     {"error": {"message": "Missing required parameter: refresh_token",
                "type": "invalid_request_error", "code": "invalid_request"}}),
    (None, {"client_id": CLIENT_ID, "grant_type": "password"}, 400,
     {"error": "unsupported_grant_type", "error_description": "Unsupported grant type: password"}),
])  # fmt: skip
def test_refresh_failures(
    fake: FakeCodex, client: httpx.Client, tokens: Tokens, setup: str | None,
    fields: dict | None, status: int, body: dict,
) -> None:  # fmt: skip
    if setup:
        getattr(fake, setup)(tokens.refresh_token)
    fields = fields or refresh_fields(tokens.refresh_token)
    fields = {k: (tokens.refresh_token if v == "REFRESH" else v) for k, v in fields.items()}
    resp = token_post(client, fields)
    assert (resp.status_code, resp.json()) == (status, body)


def test_token_body_must_be_json_or_form(client: httpx.Client, tokens: Tokens) -> None:
    for content, ctype in ((json.dumps(refresh_fields(tokens.refresh_token)), "text/plain"),
                           ('{"grant_type": 1}', "application/json"),
                           ("[]", "application/json")):  # fmt: skip
        resp = client.post("/oauth/token", content=content, headers={"Content-Type": ctype})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_request"


def test_concurrent_refreshes_one_wins(fake: FakeCodex, tokens: Tokens) -> None:
    fake.token_delay = 0.05
    statuses: list[int] = []

    def run() -> None:
        with httpx.Client(base_url=fake.origin, timeout=10, verify=TLS) as c:
            statuses.append(token_post(c, refresh_fields(tokens.refresh_token)).status_code)

    threads = [threading.Thread(target=run) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 401, 401, 401]
    assert time.monotonic() - started >= 0.05


def code_fields(code: str, verifier: str, redirect: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": CLIENT_ID, "code_verifier": verifier}  # fmt: skip


REDIRECT = "http://localhost:1455/auth/callback"


def test_authorization_code_with_pkce(fake: FakeCodex, client: httpx.Client) -> None:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
    assert pkce_challenge(verifier) == base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()  # fmt: skip
    fake.add_auth_code("code-1", code_challenge=pkce_challenge(verifier), redirect_uri=REDIRECT,
                       account_id="acct-new", email="new@example.com", plan="team")  # fmt: skip
    resp = token_post(client, code_fields("code-1", verifier, REDIRECT), form=True)
    assert resp.status_code == 200
    reply = resp.json()
    assert {"id_token", "access_token", "refresh_token"} <= set(reply)
    assert jwt_claims(reply["id_token"])["email"] == "new@example.com"
    assert jwt_claims(reply["id_token"])[AUTH_CLAIM]["chatgpt_plan_type"] == "team"
    tokens = Tokens(reply["access_token"], reply["refresh_token"], reply["id_token"], "acct-new",
                    "new@example.com")  # fmt: skip
    assert post(client, tokens, codex_body()).status_code == 200
    assert token_post(client, refresh_fields(reply["refresh_token"])).status_code == 200
    # single use
    resp = token_post(client, code_fields("code-1", verifier, REDIRECT), form=True)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")


CODE_VERIFIER = "v" * 86  # what Codex's 64 random bytes encode to in length


@pytest.mark.parametrize(("verifier", "redirect", "description"), [
    ("w" * 86, REDIRECT, "Invalid code_verifier."),
    ("v" * 42, REDIRECT, "Invalid code_verifier."),  # RFC 7636: 43..128 characters
    ("", REDIRECT, "Invalid code_verifier."),
    (CODE_VERIFIER, "http://127.0.0.1:1455/auth/callback", "redirect_uri does not match the "
                                                           "authorization request."),
])  # fmt: skip
def test_authorization_code_rejections(
    fake: FakeCodex, client: httpx.Client, verifier: str, redirect: str, description: str
) -> None:
    fake.add_auth_code("code-2", code_challenge=pkce_challenge(CODE_VERIFIER),
                       redirect_uri=REDIRECT, account_id="a", email="e@example.com")  # fmt: skip
    resp = token_post(client, code_fields("code-2", verifier, redirect), form=True)
    assert (resp.status_code, resp.json()) == (400, {"error": "invalid_grant",
                                                     "error_description": description})  # fmt: skip
    # a failed attempt spends the code too
    resp = token_post(client, code_fields("code-2", CODE_VERIFIER, REDIRECT), form=True)
    assert resp.json()["error_description"] == "Invalid authorization code."


# ---------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12,
)  # fmt: skip
KEYS = [
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "reasoning",
    "text",
    "include",
    "input.0",
    "input.0.content",
    "input.0.content.0",
    "input.0.role",
    "input.0.type",
    "input.0.content.0.type",
    "input.0.content.0.text",
    "tools.0",
    "tools.0.parameters",
    "tools.0.name",
    "tools.0.type",
    "reasoning.effort",
    "reasoning.summary",
    "client_metadata",
    "service_tier",
    "parallel_tool_calls",
    "prompt_cache_key",
]


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(KEYS), value=json_values, body=json_values)
def test_validator_only_raises_codex_error(where: str, value: Any, body: Any) -> None:
    """Any body, or a valid body with any value anywhere, gives a verdict, never a fake bug."""
    candidate = codex_body()
    change(where, value)(candidate)
    for sent in (candidate, body):
        try:
            validate_request(sent, set(KNOWN_MODELS), set())
        except CodexError as e:
            assert e.status in (400, 404)
