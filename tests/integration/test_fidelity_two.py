"""Issue 10, "Fidelity, round two", the rest: Chat Completions freeform tools, Anthropic's web
search on Codex, Chat clients' Gemini thought signatures, and one conversation across providers,
through the real proxy in front of the strict fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.codex import Calls as CodexCalls
from tests.fakes.codex import CustomCall
from tests.fakes.codex import FakeCodex
from tests.fakes.codex import Tokens
from tests.fakes.codex import WebSearch
from tests.fakes.google import Calls as GeminiCalls
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import Proxy
from tests.integration.conftest import generate_requests
from tests.integration.conftest import serving_both


@pytest.fixture(scope="module")
def tokens(codex: FakeCodex) -> Tokens:
    return codex.add_account("acct-3333", email="g@example.com")


@pytest.fixture(scope="module")
def proxy(
    fake: FakeGoogle, codex: FakeCodex, tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("fidelity-two-proxy")
    with serving_both(tmp, fake, codex, tokens, "g@example.com") as p:
        yield p


def last_body(codex: FakeCodex) -> dict:
    return codex.responses_requests[-1].body


# ------------------------------------------------------------------ (1) freeform tools, Chat

PATCH = '*** Begin Patch\n*** Add File: a.txt\n+say "hi"\n*** End Patch\n'
GRAMMAR = 'start: "*** Begin Patch" /(.|\\n)*/'
PATCH_TOOL: dict[str, Any] = {
    "type": "custom",
    "custom": {
        "name": "apply_patch",
        "description": "Edit files",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": GRAMMAR}},
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_custom_tool_to_codex_and_its_raw_call_back(
    oai: openai.OpenAI, codex: FakeCodex, stream: bool
) -> None:
    codex.enqueue(CustomCall("apply_patch", PATCH))
    kwargs: dict[str, Any] = {
        "model": "gpt-5",
        "messages": [{"role": "user", "content": "add a.txt"}],
        "tools": [PATCH_TOOL],
        "tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}},
    }
    if stream:
        calls: dict[int, dict[str, Any]] = {}
        finish = None
        for chunk in oai.chat.completions.create(stream=True, **kwargs):
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or []:
                    raw = tc.to_dict()
                    call = calls.setdefault(tc.index, {"input": ""})
                    call.update({k: raw[k] for k in ("id", "type") if k in raw})
                    custom = raw.get("custom") or {}
                    call["name"] = custom.get("name", call.get("name"))
                    call["input"] += custom.get("input", "")
                    assert "function" not in raw
                finish = choice.finish_reason or finish
        (call,) = calls.values()
        assert call["type"] == "custom" and call["name"] == "apply_patch"
        assert call["input"] == PATCH and call["id"].startswith("call_")
        assert finish == "tool_calls"
    else:
        answer = oai.chat.completions.create(**kwargs)
        (tc,) = answer.choices[0].message.tool_calls or []
        assert tc.type == "custom"
        assert tc.custom.name == "apply_patch" and tc.custom.input == PATCH  # type: ignore[union-attr]
        assert answer.choices[0].finish_reason == "tool_calls"
    body = last_body(codex)
    assert body["tools"] == [
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Edit files",
            "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
        }
    ]
    assert body["tool_choice"] == {"type": "custom", "name": "apply_patch"}


def test_chat_custom_call_in_history_reaches_codex_as_a_custom_pair(
    oai: openai.OpenAI, codex: FakeCodex
) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "add a.txt"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_p1",
                    "type": "custom",
                    "custom": {"name": "apply_patch", "input": PATCH},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_p1", "content": "Done!"},
    ]
    answer = oai.chat.completions.create(model="gpt-5", messages=messages, tools=[PATCH_TOOL])
    assert answer.choices[0].message.content == "Tool said: Done!"
    call, output = last_body(codex)["input"][-2:]
    assert call == {
        "type": "custom_tool_call",
        "call_id": "call_p1",
        "name": "apply_patch",
        "input": PATCH,
    }
    assert output == {"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Done!"}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_custom_tool_to_gemini_as_a_string_function(
    oai: openai.OpenAI, fake: FakeGoogle, stream: bool
) -> None:
    fake.enqueue(GeminiCalls([("apply_patch", {"input": PATCH})]))
    kwargs: dict[str, Any] = {
        "model": "gemini-2.5-pro",
        "messages": [{"role": "user", "content": "add a.txt"}],
        "tools": [PATCH_TOOL],
    }
    if stream:
        inputs, kinds = "", set()
        for chunk in oai.chat.completions.create(stream=True, **kwargs):
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or []:
                    raw = tc.to_dict()
                    kinds.add(raw.get("type"))
                    inputs += (raw.get("custom") or {}).get("input", "")
        assert kinds >= {"custom"} and "function" not in kinds and inputs == PATCH
    else:
        (tc,) = oai.chat.completions.create(**kwargs).choices[0].message.tool_calls or []
        assert tc.type == "custom" and tc.custom.input == PATCH  # type: ignore[union-attr]
    rpc = "streamGenerateContent" if stream else "generateContent"
    (decl,) = fake.calls(rpc)[-1].body["request"]["tools"][0]["functionDeclarations"]
    assert decl["name"] == "apply_patch"
    assert json.dumps(GRAMMAR)[1:-1] in json.dumps(decl["parametersJsonSchema"])


# ------------------------------------------------------------------ (3) Chat thought signatures

LS_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "ls", "parameters": {"type": "object", "properties": {}}},
}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_client_carries_gemini_thought_signature_both_ways(
    oai: openai.OpenAI, fake: FakeGoogle, stream: bool
) -> None:
    fake.enqueue(GeminiCalls([("ls", {})]))
    kwargs: dict[str, Any] = {
        "model": "gemini-2.5-pro",
        "messages": [{"role": "user", "content": "list"}],
        "tools": [LS_TOOL],
    }
    if stream:
        call: dict[str, Any] = {}
        for chunk in oai.chat.completions.create(stream=True, **kwargs):
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or []:
                    raw = tc.to_dict()
                    call.setdefault("id", raw.get("id"))
                    call.setdefault("extra_content", raw.get("extra_content"))
    else:
        (tc,) = oai.chat.completions.create(**kwargs).choices[0].message.tool_calls or []
        call = tc.to_dict()
    (issued,) = fake.issued_signatures
    assert call["extra_content"] == {"google": {"thought_signature": issued}}
    # the next turn sends it back; the strict fake refuses any signature it did not issue
    messages: list[Any] = [
        {"role": "user", "content": "list"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": "ls", "arguments": "{}"},
                    "extra_content": call["extra_content"],
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "a.txt"},
    ]
    answer = oai.chat.completions.create(model="gemini-2.5-pro", messages=messages, tools=[LS_TOOL])
    assert answer.choices[0].message.content == 'Tool said: [{"output":"a.txt"}]'
    contents = fake.calls("generateContent")[-1].body["request"]["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == issued


# ------------------------------------------------------------------ (2) web search on Codex

WEB_TOOL: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
FOUND = [("https://mitmproxy.org/", "mitmproxy"), ("https://docs.mitmproxy.org/", "Docs")]


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_web_search_runs_on_codex(
    claude: anthropic.Anthropic, codex: FakeCodex, stream: bool
) -> None:
    codex.enqueue(WebSearch("mitmproxy latest", FOUND, "mitmproxy 12 is out."))
    kwargs: dict[str, Any] = {
        "model": "gpt-5",
        "max_tokens": 1024,
        "tools": [WEB_TOOL],
        "messages": [{"role": "user", "content": "what is the latest mitmproxy?"}],
    }
    if stream:
        with claude.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    use, result, text = message.content
    assert use.type == "server_tool_use" and use.name == "web_search"
    assert use.input == {"query": "mitmproxy latest"}
    assert result.type == "web_search_tool_result" and result.tool_use_id == use.id
    assert [(r.url, r.title) for r in result.content] == FOUND  # type: ignore[union-attr]
    assert text.type == "text" and text.text == "mitmproxy 12 is out."
    assert message.stop_reason == "end_turn"
    body = last_body(codex)
    assert body["tools"] == [{"type": "web_search"}]
    # the next turn replays the search; the strict fake takes the web_search_call item
    history = [
        {"role": "user", "content": "what is the latest mitmproxy?"},
        {
            "role": "assistant",
            "content": [b.model_dump(exclude_none=True) for b in message.content],
        },
        {"role": "user", "content": "thanks"},
    ]
    answer = claude.messages.create(
        model="gpt-5", max_tokens=1024, tools=[WEB_TOOL], messages=history
    )
    assert answer.content[-1].text == "Echo: thanks"  # type: ignore[union-attr]
    items = last_body(codex)["input"]
    assert items[1] == {
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "mitmproxy latest"},
    }


# ------------------------------------------------------------------ (4) one conversation, 3 hops

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwAD"
    "hgGAWjR9awAAAABJRU5ErkJggg=="
)
READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
}
GREP_TOOL = {
    "name": "Grep",
    "description": "Search files",
    "input_schema": {"type": "object", "properties": {"pattern": {"type": "string"}}},
}


def _turn(
    claude: anthropic.Anthropic, model: str, history: list[dict[str, Any]], stream: bool
) -> anthropic.types.Message:
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [READ_TOOL, GREP_TOOL],
        "messages": history,
    }
    if stream:
        with claude.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    history.append(
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}
    )
    return message


def _result(message: anthropic.types.Message, text: str) -> dict[str, Any]:
    (use,) = [b for b in message.content if b.type == "tool_use"]
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": use.id, "content": text}],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_one_session_across_gemini_codex_and_back(
    claude: anthropic.Anthropic, fake: FakeGoogle, codex: FakeCodex, stream: bool
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    history: list[dict[str, Any]] = [
        {"role": "user", "content": [image, {"type": "text", "text": "what does a.txt say?"}]}
    ]
    # hop 1, Gemini: a signed call (the fake issues the signature)
    fake.enqueue(GeminiCalls([("Read", {"file_path": "a.txt"})]))
    first = _turn(claude, "gemini-2.5-pro", history, stream)
    assert first.stop_reason == "tool_use"
    # Gemini's signature reaches Claude clients marked as Gemini's (anthropic.client_signature)
    assert any(
        b.type == "thinking" and b.signature.removeprefix("gemini:") in fake.issued_signatures
        for b in first.content
        if b.type == "thinking" and b.signature.startswith("gemini:")
    )
    history.append(_result(first, "hello"))
    # hop 2, Codex: Gemini's signature means nothing there; Codex reasons (encrypted) and calls
    codex.enqueue(CodexCalls([("Grep", {"pattern": "hello"})], reasoning="Search for it."))
    second = _turn(claude, "gpt-5", history, stream)
    assert second.stop_reason == "tool_use"
    body = last_body(codex)
    assert not any(i.get("type") == "reasoning" for i in body["input"])  # nothing foreign
    assert [i["type"] for i in body["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert body["input"][0]["content"][0]["type"] == "input_image"
    (reasoning,) = [b for b in second.content if b.type == "thinking" and b.signature]
    assert reasoning.signature.startswith("codex-rs:")
    history.append(_result(second, "a.txt:1:hello"))
    # hop 3, back to Gemini: Codex's reasoning is not a thought signature; its call gets the
    # sentinel; the first hop's signature is Gemini's own and goes back
    third = _turn(claude, "gemini-2.5-pro", history, stream)
    assert third.stop_reason == "end_turn"
    rpc = "streamGenerateContent" if stream else "generateContent"
    contents = fake.calls(rpc)[-1].body["request"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert "inlineData" in contents[0]["parts"][0]
    signatures = [
        p.get("thoughtSignature") for c in contents for p in c["parts"] if "functionCall" in p
    ]
    assert signatures[0] in fake.issued_signatures
    assert signatures[1] == "skip_thought_signature_validator"
    assert "codex-rs:" not in json.dumps(contents)
    # hop 4, Codex again: its own reasoning goes back (the fake verifies it), pairs intact
    history.append({"role": "user", "content": "thanks"})
    _turn(claude, "gpt-5", history, stream)
    body = last_body(codex)
    kinds = [i["type"] for i in body["input"]]
    assert kinds.count("reasoning") == 1
    assert kinds.count("function_call") == kinds.count("function_call_output") == 2
    (item,) = [i for i in body["input"] if i["type"] == "reasoning"]
    assert item["encrypted_content"] in codex.issued_reasoning


@pytest.mark.parametrize("stream", [False, True])
def test_a_session_begun_on_anthropic_goes_on_on_gemini(
    claude: anthropic.Anthropic, fake: FakeGoogle, stream: bool
) -> None:
    """History from Anthropic itself carries Anthropic's signatures (base64, as Gemini's are):
    the strict fake refuses any signature it did not issue, as Gemini does ("Corrupted thought
    signature"), so the proxy must not forward them."""
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "what does a.txt say?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "I should read it.",
                    "signature": "EqQBCkYIBxgCKkBhbnRocm9waWMtc2lnbmF0dXJlLWZvci10ZXN0cw==",
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "Read",
                    "input": {"file_path": "a.txt"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "hello"}],
        },
    ]
    answer = _turn(claude, "gemini-2.5-pro", history, stream)
    assert answer.stop_reason == "end_turn"
    sent = generate_requests(fake)[-1].body["request"]["contents"]
    (call,) = [p for c in sent for p in c["parts"] if "functionCall" in p]
    assert call["thoughtSignature"] == "skip_thought_signature_validator"


def test_claude_code_fast_mode_takes_codex_priority_lane(
    claude: anthropic.Anthropic, codex: FakeCodex
) -> None:
    message = claude.messages.create(
        model="gpt-5",
        max_tokens=256,
        messages=[{"role": "user", "content": "quick"}],
        extra_body={"speed": "fast"},
    )
    assert message.content[0].type == "text"
    assert last_body(codex)["service_tier"] == "priority"
    claude.messages.create(
        model="gpt-5", max_tokens=256, messages=[{"role": "user", "content": "no hurry"}]
    )
    assert "service_tier" not in last_body(codex)
