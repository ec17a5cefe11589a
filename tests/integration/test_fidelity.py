"""Issue 10, "Fidelity, round two": the edges real clients reach, through the real proxy in front
of the strict fakes (which refuse what the real services refuse: tool names and call ids over 64
characters at Codex, unknown Responses fields, an empty functionResponse.name at Gemini)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.fakes.codex import Calls
from tests.fakes.codex import Failed
from tests.fakes.codex import FakeCodex
from tests.fakes.codex import Tokens
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import Proxy
from tests.integration.conftest import serving_both

# Claude Code's name for an MCP tool: mcp__<server>__<tool>, 78 characters here
LONG_TOOL = "mcp__claude_in_chrome_extension_server__read_console_messages_with_filters_v2"
LONG_ID = "toolu_" + "x" * 70  # a tool-use id of another family, over Codex's 64
LONG_TOOL_DECL = {
    "name": LONG_TOOL,
    "description": "Read the browser console",
    "input_schema": {"type": "object", "properties": {"pattern": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def tokens(codex: FakeCodex) -> Tokens:
    return codex.add_account("acct-2222", email="f@example.com")


@pytest.fixture(scope="module")
def proxy(
    fake: FakeGoogle, codex: FakeCodex, tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("fidelity-proxy")
    with serving_both(tmp, fake, codex, tokens, "f@example.com") as p:
        yield p


def last_body(codex: FakeCodex) -> dict:
    return codex.responses_requests[-1].body


def declared_name(codex: FakeCodex) -> str:
    (tool,) = last_body(codex)["tools"]
    return tool["name"]


# ------------------------------------------------------------------ tool names and call ids


@pytest.mark.parametrize("stream", [False, True])
def test_long_mcp_tool_name_reaches_codex_short_and_comes_back_long(
    claude: anthropic.Anthropic, codex: FakeCodex, stream: bool
) -> None:
    # the model calls what it was shown: the first turn learns the Codex-side name
    claude.messages.create(
        model="gpt-5",
        max_tokens=1024,
        tools=[LONG_TOOL_DECL],
        messages=[{"role": "user", "content": "hi"}],
    )
    short = declared_name(codex)
    assert len(short) <= 64 and short.startswith("mcp__read_console")
    codex.enqueue(Calls([(short, {"pattern": "err"})]))
    kwargs: dict = {
        "model": "gpt-5",
        "max_tokens": 1024,
        "tools": [LONG_TOOL_DECL],
        "tool_choice": {"type": "tool", "name": LONG_TOOL},
        "messages": [{"role": "user", "content": "read the console"}],
    }
    if stream:
        with claude.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    assert last_body(codex)["tool_choice"] == {"type": "function", "name": short}
    use = message.content[-1]
    assert use.type == "tool_use" and use.name == LONG_TOOL and use.input == {"pattern": "err"}
    # next turn: the long name in history and a tool id of another family over 64 characters
    history = [
        {"role": "user", "content": "read the console"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": LONG_ID, "name": LONG_TOOL, "input": {"pattern": "e"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": LONG_ID, "content": "no errors"}],
        },
    ]
    answer = claude.messages.create(
        model="gpt-5", max_tokens=1024, tools=[LONG_TOOL_DECL], messages=history
    )
    assert answer.content[-1].text == "Tool said: no errors"  # type: ignore[union-attr]
    call, output = last_body(codex)["input"][-2:]
    assert call["name"] == short
    assert call["call_id"] == output["call_id"] and len(call["call_id"]) <= 64
    assert json.loads(call["arguments"]) == {"pattern": "e"}


# ------------------------------------------------------------------ interleaved items, truncation

READ = {"name": "Read", "description": "read", "input_schema": {"type": "object"}}
GREP = {"name": "Grep", "description": "grep", "input_schema": {"type": "object"}}
TWO_CALLS = [("Read", {"file_path": "/tmp/a.txt"}), ("Grep", {"pattern": "TODO", "path": "."})]


@pytest.mark.parametrize("stream", [False, True])
def test_interleaved_codex_calls_reach_anthropic_whole(
    claude: anthropic.Anthropic, codex: FakeCodex, stream: bool
) -> None:
    codex.enqueue(Calls(TWO_CALLS, interleave=True))
    kwargs: dict = {
        "model": "gpt-5",
        "max_tokens": 1024,
        "tools": [READ, GREP],
        "messages": [{"role": "user", "content": "look around"}],
    }
    if stream:
        with claude.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    uses = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert uses == TWO_CALLS
    assert message.stop_reason == "tool_use"


def test_interleaved_codex_calls_reach_chat_stream_whole(proxy: Proxy, codex: FakeCodex) -> None:
    oai = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)
    codex.enqueue(Calls(TWO_CALLS, interleave=True))
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": {"type": "object"}}}
        for t in (READ, GREP)
    ]
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    finish = None
    for chunk in oai.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "go"}], tools=tools, stream=True
    ):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
                if tc.function.name:
                    names[tc.index] = tc.function.name
            finish = choice.finish_reason or finish
    assert [(names[i], json.loads(args[i])) for i in sorted(args)] == TWO_CALLS
    assert finish == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
def test_truncation_mid_tool_call_is_length(
    proxy: Proxy, claude: anthropic.Anthropic, codex: FakeCodex, stream: bool
) -> None:
    kwargs: dict = {
        "model": "gpt-5",
        "max_tokens": 1024,
        "tools": [READ, GREP],
        "messages": [{"role": "user", "content": "look around"}],
    }
    codex.enqueue(Calls(TWO_CALLS, cut_after_fragments=4))
    if stream:
        with claude.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    assert message.stop_reason == "max_tokens"
    oai = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)
    codex.enqueue(Calls(TWO_CALLS, cut_after_fragments=4))
    tools = [{"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "go"}]
    if stream:
        chunks = list(
            oai.chat.completions.create(
                model="gpt-5",
                messages=messages,
                tools=tools,
                stream=True,  # type: ignore[arg-type]
            )
        )
        finish = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finish[-1] == "length" and "tool_calls" not in finish
    else:
        resp = oai.chat.completions.create(model="gpt-5", messages=messages, tools=tools)  # type: ignore[arg-type]
        assert resp.choices[0].finish_reason == "length"


# ------------------------------------------------------------------ nameless functionResponse


def _nameless_history(with_ids: bool) -> list[dict]:
    call: dict = {"name": "read_file", "args": {"path": "a"}}
    answer: dict = {"name": "", "response": {"output": "hello"}}
    if with_ids:
        call["id"], answer["id"] = "read_file_1", "read_file_1"
    return [
        {"role": "user", "parts": [{"text": "read a"}]},
        {"role": "model", "parts": [{"functionCall": call}]},
        {"role": "user", "parts": [{"functionResponse": answer}]},
    ]


@pytest.mark.parametrize("model", ["gemini-2.5-pro", "gpt-5"])
@pytest.mark.parametrize("with_ids", [True, False])
@pytest.mark.parametrize("stream", [False, True])
def test_nameless_function_response_is_named_from_its_call(
    proxy: Proxy, fake: FakeGoogle, codex: FakeCodex, model: str, with_ids: bool, stream: bool
) -> None:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    resp = httpx.post(
        f"{proxy.base_url}/v1beta/models/{model}:{method}",
        json={"contents": _nameless_history(with_ids)},
        headers={"x-goog-api-key": "k"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    if stream:
        chunks = [json.loads(line[6:]) for line in resp.text.splitlines() if line[:6] == "data: "]
    else:
        chunks = [resp.json()]
    # the last event of a stream may carry only finishReason and usage
    contents = [c["candidates"][0].get("content", {"parts": []}) for c in chunks]
    text = "".join(p.get("text", "") for c in contents for p in c["parts"])
    assert text.startswith("Tool said")
    if model.startswith("gemini"):
        sent = fake.requests[-1].body["request"]["contents"][2]["parts"][0]["functionResponse"]
        assert sent["name"] == "read_file"
    else:
        call, output = last_body(codex)["input"][-2:]
        assert call["call_id"] == output["call_id"]


# ------------------------------------------------------------------ Responses pass-through


@pytest.mark.parametrize("stream", [False, True])
def test_responses_passthrough_body_normalised_for_codex(
    proxy: Proxy, codex: FakeCodex, stream: bool
) -> None:
    oai = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)
    kwargs: dict = {
        "model": "gpt-5",
        "input": "hello there",
        "reasoning": {"effort": "low"},
        "tools": [{"type": "web_search_preview"}],
        "tool_choice": {"type": "web_search_preview"},
        "extra_body": {
            "context_management": [{"type": "compaction", "compact_threshold": 2000}],
            "prompt_cache_options": {"ttl": "1h"},
            "prompt_cache_breakpoint": {"mode": "auto"},
            "service_tier": "fast",
        },
    }
    if stream:
        with oai.responses.stream(**kwargs) as s:
            text = s.get_final_response().output_text
    else:
        text = oai.responses.create(**kwargs).output_text
    assert text == "Echo: hello there"
    body = last_body(codex)
    assert body["service_tier"] == "priority"
    assert body["tools"] == [{"type": "web_search"}]
    assert body["tool_choice"] == {"type": "web_search"}
    assert "reasoning.encrypted_content" in body["include"]
    assert not {"context_management", "prompt_cache_options", "prompt_cache_breakpoint"} & set(body)


# ------------------------------------------------------------------ request-caused errors

CYBER = "This content was flagged for possible cybersecurity risk."


@pytest.mark.parametrize("as_event", [False, True])
@pytest.mark.parametrize("stream", [False, True])
def test_cyber_policy_is_invalid_request_for_anthropic_and_chat(
    proxy: Proxy, claude: anthropic.Anthropic, codex: FakeCodex, stream: bool, as_event: bool
) -> None:
    failed = Failed("cyber_policy", CYBER, "invalid_request" if as_event else None)
    codex.enqueue(failed)
    kwargs: dict = {
        "model": "gpt-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        with pytest.raises(anthropic.APIStatusError) as err, claude.messages.stream(**kwargs) as s:
            s.get_final_message()
        assert err.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert CYBER in str(err.value.body)
    else:
        with pytest.raises(anthropic.BadRequestError) as bad:
            claude.messages.create(**kwargs)
        assert CYBER in bad.value.message
    oai = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)
    codex.enqueue(failed)
    if stream:
        with pytest.raises(openai.APIError) as oerr:
            list(oai.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True))  # fmt: skip  # noqa: E501
        assert oerr.value.type == "invalid_request_error"
    else:
        with pytest.raises(openai.BadRequestError) as obad:
            oai.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])  # fmt: skip  # noqa: E501
        assert CYBER in obad.value.message


# ------------------------------------------------------------------ documents and media

PDF = "JVBERi0xLjQKJcfsj6IK"  # "%PDF-1.4\n…" in base64
DOC_BLOCK = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
}


@pytest.mark.parametrize("model", ["gpt-5", "gemini-2.5-pro"])
def test_anthropic_pdf_only_request_reaches_both_upstreams(
    claude: anthropic.Anthropic, codex: FakeCodex, fake: FakeGoogle, model: str
) -> None:
    message = claude.messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": [DOC_BLOCK]}]
    )
    assert message.content
    if model == "gpt-5":
        (item,) = last_body(codex)["input"]
        assert item["content"] == [
            {
                "type": "input_file",
                "filename": "document.pdf",
                "file_data": f"data:application/pdf;base64,{PDF}",
            }
        ]
    else:
        (part,) = fake.requests[-1].body["request"]["contents"][0]["parts"]
        assert part == {"inlineData": {"mimeType": "application/pdf", "data": PDF}}


def test_gemini_audio_to_codex_is_a_400_naming_the_part(proxy: Proxy, codex: FakeCodex) -> None:
    contents = [
        {
            "role": "user",
            "parts": [
                {"text": "listen"},
                {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}},
            ],
        }
    ]
    resp = httpx.post(
        f"{proxy.base_url}/v1beta/models/gpt-5:generateContent",
        json={"contents": contents},
        headers={"x-goog-api-key": "k"},
        timeout=30,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert "messages[0]" in error["message"] and "audio/mp3" in error["message"]
    assert codex.responses_requests == []


def test_chat_input_audio_to_codex_is_a_clear_400(proxy: Proxy, codex: FakeCodex) -> None:
    oai = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)
    content = [
        {"type": "text", "text": "transcribe"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": content}])  # type: ignore[list-item]
    assert "audio/wav" in err.value.message and "Codex" in err.value.message
    assert codex.responses_requests == []
