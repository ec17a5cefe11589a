"""addons/upstreams/outbound.py: the upstream request an exchange becomes for one account.

The same upstream-format payload goes to three very different places
(docs/upstreams.md "Code Assist envelope", "Code Assist countTokens", "AI Studio", "Codex"): Code
Assist wants its envelope with the serving account's project, AI Studio the bare body with the key
header, Codex the body with the model and the account's ChatGPT id.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cliproxy.addons.accounts.ai_studio import AIStudioKey
from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.addons.accounts.gemini import GeminiAccount
from cliproxy.addons.settings import Endpoints
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex as codex_upstream
from cliproxy.addons.upstreams.outbound import build
from cliproxy.addons.upstreams.outbound import upstream_of

ENDPOINTS = Endpoints(
    gemini_cli="http://127.0.0.1:9001/",  # a trailing slash must not double up
    ai_studio="http://127.0.0.1:9002",
    codex="http://127.0.0.1:9003/backend-api/codex",
)
GEMINI = GeminiAccount(
    path=Path("gemini-a.json"),
    raw={"token": {"access_token": "ya29.gemini-a", "refresh_token": "1//r"}},
    email="a@example.com",
    project_id="helpful-fox-abc123",
)
OTHER_GEMINI = GeminiAccount(
    path=Path("gemini-b.json"),
    raw={"token": {"access_token": "ya29.gemini-b"}},
    email="b@example.com",
    project_id="other-proj-42",
)
CODEX = CodexAccount(
    path=Path("codex-a.json"),
    raw={"access_token": "eyJ.codex-a", "refresh_token": "rt"},
    email="a@example.com",
    account_id="0f1e2d3c-acct",
)
KEY = AIStudioKey("AIzaSyExampleExampleKey1234")
CA = "http://127.0.0.1:9001/v1internal:"
AIS = "http://127.0.0.1:9002/v1beta/models/gemini-2.5-pro:"

# The upstream-format body the translators produce for Gemini
# (docs/upstreams.md "Code Assist envelope" `request`).
GEMINI_PAYLOAD: dict[str, Any] = {
    "contents": [{"role": "user", "parts": [{"text": "List files in src"}]}],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent"}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "list_directory",
                    "description": "Lists a directory",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"dir_path": {"type": "string"}},
                    },
                }
            ]
        }
    ],
    "generationConfig": {"temperature": 1, "thinkingConfig": {"includeThoughts": True}},
}
CODEX_PAYLOAD: dict[str, Any] = {
    "model": "gpt-5",  # what the client named; the exchange's model wins
    "instructions": "",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]}
    ],
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": None,
    "store": False,
    "stream": True,
    "include": [],
}


@pytest.mark.parametrize(
    ("account", "upstream"),
    [(GEMINI, "code_assist"), (OTHER_GEMINI, "code_assist"), (KEY, "ai_studio"), (CODEX, "codex")],
)
def test_upstream_of(account: Any, upstream: str) -> None:
    assert upstream_of(account).name == upstream


# ---------------------------------------------------------------- Code Assist


@pytest.mark.parametrize(
    ("method", "stream", "url", "accept"),
    [
        ("generateContent", False, CA + "generateContent", "application/json"),
        ("streamGenerateContent", True, CA + "streamGenerateContent?alt=sse", "text/event-stream"),
    ],
)
def test_code_assist_envelope_with_the_accounts_project(
    method: str, stream: bool, url: str, accept: str
) -> None:
    out = build(ENDPOINTS, GEMINI, "gemini-2.5-pro", method, stream, GEMINI_PAYLOAD)
    assert out.url == url
    assert out.body == {
        "model": "gemini-2.5-pro",
        "project": "helpful-fox-abc123",
        "request": GEMINI_PAYLOAD,
    }
    assert out.headers["authorization"] == "Bearer ya29.gemini-a"
    assert out.headers["accept"] == accept
    assert out.headers["accept-encoding"] == "identity"
    assert out.headers["user-agent"] == code_assist.USER_AGENT
    assert "x-goog-api-key" not in out.headers


def test_code_assist_retry_on_another_account_changes_project_and_token_only() -> None:
    first = build(ENDPOINTS, GEMINI, "gemini-2.5-pro", "generateContent", False, GEMINI_PAYLOAD)
    second = build(
        ENDPOINTS, OTHER_GEMINI, "gemini-2.5-pro", "generateContent", False, GEMINI_PAYLOAD
    )
    assert second.body == {**first.body, "project": "other-proj-42"}
    assert second.headers == {**first.headers, "authorization": "Bearer ya29.gemini-b"}


def test_code_assist_model_is_bare() -> None:
    out = build(ENDPOINTS, GEMINI, "models/gemini-2.5-flash", "generateContent", False, {})
    assert out.body["model"] == "gemini-2.5-flash"


def test_code_assist_preview_fallback_model_goes_in_the_envelope() -> None:
    preview = code_assist.PREVIEW_MODELS["gemini-2.5-pro"][0]
    out = build(ENDPOINTS, GEMINI, preview, "streamGenerateContent", True, GEMINI_PAYLOAD)
    assert out.body["model"] == "gemini-2.5-pro-preview-05-06"


def test_code_assist_count_tokens_form_folds_system_and_tools_into_contents() -> None:
    out = build(ENDPOINTS, GEMINI, "gemini-2.5-flash", "countTokens", False, GEMINI_PAYLOAD)
    assert out.url == "http://127.0.0.1:9001/v1internal:countTokens"
    assert out.headers["accept"] == "application/json"
    # docs/upstreams.md "Code Assist countTokens": no project, no systemInstruction, no tools;
    # `models/` prefix here only
    lead = {
        "role": "user",
        "parts": [
            {"text": "You are an interactive CLI agent"},
            {"text": _compact(GEMINI_PAYLOAD["tools"])},
        ],
    }
    assert out.body == {
        "request": {
            "model": "models/gemini-2.5-flash",
            "contents": [lead, *GEMINI_PAYLOAD["contents"]],
        }
    }


def test_code_assist_count_tokens_of_plain_contents() -> None:
    payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    out = build(ENDPOINTS, GEMINI, "gemini-2.5-pro", "countTokens", False, payload)
    assert out.body == {
        "request": {"model": "models/gemini-2.5-pro", "contents": payload["contents"]}
    }


# ---------------------------------------------------------------- AI Studio


@pytest.mark.parametrize(
    ("method", "stream", "url"),
    [
        ("generateContent", False, AIS + "generateContent"),
        ("streamGenerateContent", True, AIS + "streamGenerateContent?alt=sse"),
        ("countTokens", False, AIS + "countTokens"),
    ],
)
def test_ai_studio_url_has_alt_sse_only_when_streaming(method: str, stream: bool, url: str) -> None:
    out = build(ENDPOINTS, KEY, "gemini-2.5-pro", method, stream, GEMINI_PAYLOAD)
    assert out.url == url


@pytest.mark.parametrize("stream", [True, False])
def test_ai_studio_bare_body_and_key_header(stream: bool) -> None:
    method = "streamGenerateContent" if stream else "generateContent"
    out = build(ENDPOINTS, KEY, "gemini-2.5-pro", method, stream, GEMINI_PAYLOAD)
    assert out.body == GEMINI_PAYLOAD  # no envelope, no project, no model
    assert out.headers["x-goog-api-key"] == "AIzaSyExampleExampleKey1234"
    assert "authorization" not in out.headers
    assert out.headers["accept"] == ("text/event-stream" if stream else "application/json")
    assert out.headers["accept-encoding"] == "identity"


def test_ai_studio_drops_code_assist_only_fields() -> None:
    # gemini-cli (through the relay) sends session_id inside `request`; the public API refuses it
    payload = {**GEMINI_PAYLOAD, "session_id": "7c9e6679", "model": "gemini-2.5-pro"}
    out = build(ENDPOINTS, KEY, "gemini-2.5-pro", "generateContent", False, payload)
    assert out.body == GEMINI_PAYLOAD


def test_ai_studio_count_tokens_uses_the_generate_content_request_form() -> None:
    out = build(ENDPOINTS, KEY, "gemini-2.5-flash", "countTokens", False, GEMINI_PAYLOAD)
    assert out.body == {
        "generateContentRequest": {"model": "models/gemini-2.5-flash", **GEMINI_PAYLOAD}
    }


# ---------------------------------------------------------------- Codex


def test_codex_account_id_header_and_model_set() -> None:
    out = build(ENDPOINTS, CODEX, "gpt-5-codex", "responses", True, CODEX_PAYLOAD)
    assert out.url == "http://127.0.0.1:9003/backend-api/codex/responses"
    assert out.body == {**CODEX_PAYLOAD, "model": "gpt-5-codex"}
    assert out.headers["chatgpt-account-id"] == "0f1e2d3c-acct"
    assert out.headers["authorization"] == "Bearer eyJ.codex-a"
    assert out.headers["accept"] == "text/event-stream"
    assert out.headers["originator"] == codex_upstream.ORIGINATOR
    assert out.headers["session_id"]


def test_codex_stream_flag_does_not_change_the_request() -> None:
    # Codex always streams; a non-stream client is served by reading the SSE
    # (docs/upstreams.md "Codex")
    a = build(ENDPOINTS, CODEX, "gpt-5", "responses", True, CODEX_PAYLOAD)
    b = build(ENDPOINTS, CODEX, "gpt-5", "responses", False, CODEX_PAYLOAD)
    assert (a.url, a.body) == (b.url, b.body)


@pytest.mark.parametrize(
    ("account", "model", "method", "payload"),
    [
        (GEMINI, "gemini-2.5-pro", "generateContent", GEMINI_PAYLOAD),
        (GEMINI, "gemini-2.5-pro", "countTokens", GEMINI_PAYLOAD),
        (KEY, "gemini-2.5-pro", "generateContent", {**GEMINI_PAYLOAD, "session_id": "s"}),
        (KEY, "gemini-2.5-pro", "countTokens", GEMINI_PAYLOAD),
        (CODEX, "gpt-5-codex", "responses", CODEX_PAYLOAD),
    ],
)
def test_build_never_mutates_the_exchange_payload(
    account: Any, model: str, method: str, payload: dict
) -> None:
    # the exchange keeps the payload for retries on other accounts and models
    before = copy.deepcopy(payload)
    build(ENDPOINTS, account, model, method, False, payload)
    assert payload == before


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def test_content_is_compact_utf8_json_of_the_body() -> None:
    payload = {"contents": [{"role": "user", "parts": [{"text": "Grüße ✓"}]}]}
    out = build(ENDPOINTS, KEY, "gemini-2.5-pro", "generateContent", False, payload)
    assert out.content == '{"contents":[{"role":"user","parts":[{"text":"Grüße ✓"}]}]}'.encode()
    assert json.loads(out.content) == out.body
