"""Codex accounts behind the proxy (the strict fake Codex), and /v1/responses on both upstreams."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from tests.fakes.codex import Calls
from tests.fakes.codex import CustomCall
from tests.fakes.codex import Cut
from tests.fakes.codex import Failed
from tests.fakes.codex import FakeCodex
from tests.fakes.codex import HttpError
from tests.fakes.codex import Text
from tests.fakes.codex import Tokens
from tests.fakes.codex import UsageLimit
from tests.fakes.google import Calls as GeminiCalls
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import Proxy
from tests.integration.conftest import serving_both
from tests.integration.conftest import start_proxy

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def tokens(codex: FakeCodex) -> Tokens:
    return codex.add_account("acct-1111", email="c@example.com")


@pytest.fixture(scope="module")
def proxy(
    fake: FakeGoogle, codex: FakeCodex, tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("codex-proxy")
    aliases = {"model-aliases": {"claude-sonnet-4-5": "gpt-5"}}
    with serving_both(tmp, fake, codex, tokens, "c@example.com", config=aliases) as p:
        yield p


def last_body(codex: FakeCodex) -> dict:
    return codex.responses_requests[-1].body


# ------------------------------------------------------------------ chat completions → Codex


def test_chat_text_and_upstream_shape(oai: openai.OpenAI, codex: FakeCodex, tokens: Tokens) -> None:
    resp = oai.chat.completions.create(
        model="gpt-5",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello codex"},
        ],
        temperature=0.3,
        max_tokens=50,
        reasoning_effort="high",
    )
    assert resp.choices[0].message.content == "Echo: hello codex"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    (rec,) = codex.responses_requests
    h = rec.headers
    assert h["authorization"] == f"Bearer {tokens.access_token}"
    assert h["chatgpt-account-id"] == "acct-1111"
    assert h["accept"] == "text/event-stream" and h["originator"] and h["session_id"]
    body = rec.body
    assert body["stream"] is True and body["store"] is False
    assert body["instructions"] == "Be brief."
    assert body["reasoning"]["effort"] == "high"
    assert "temperature" not in body and "max_output_tokens" not in body


def test_chat_stream(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-5",
            messages=[{"role": "user", "content": "one two three four"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three four"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_chat_tools_two_turns(oai: openai.OpenAI, codex: FakeCodex, stream: bool) -> None:
    codex.enqueue(Calls([("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]))
    messages: list = [{"role": "user", "content": "weather?"}]
    if stream:
        with oai.chat.completions.stream(model="gpt-5", messages=messages, tools=[WEATHER]) as s:
            first = s.get_final_completion()
    else:
        first = oai.chat.completions.create(model="gpt-5", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Oslo"]
    tools = last_body(codex)["tools"]
    assert tools[0]["type"] == "function" and tools[0]["name"] == "get_weather"  # flat shape
    messages.append(choice.message.model_dump(exclude_none=True))
    for call, out in zip(calls, ["sunny", "snow"], strict=True):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": out})
    second = oai.chat.completions.create(model="gpt-5", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Tool said: snow"
    items = last_body(codex)["input"]
    assert [i["type"] for i in items][-4:] == [
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert items[-2]["call_id"] == calls[0].id  # bound by the call_id Codex issued


def test_chat_image_to_codex(oai: openai.OpenAI, codex: FakeCodex) -> None:
    oai.chat.completions.create(
        model="gpt-5",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    content = last_body(codex)["input"][0]["content"]
    assert content[1] == {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}


# ------------------------------------------------------------------ /v1/responses → Codex


def test_responses_create_and_stream(oai: openai.OpenAI, codex: FakeCodex) -> None:
    resp = oai.responses.create(model="gpt-5", input="hi there", instructions="Be terse.")
    assert resp.output_text == "Echo: hi there"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert last_body(codex)["instructions"] == "Be terse."
    with oai.responses.stream(model="gpt-5", input="stream me please") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Echo: stream me please" and len(deltas) >= 2
    assert final.output_text == "Echo: stream me please"


def test_responses_codex_cli_shape_passes_through(proxy: Proxy, codex: FakeCodex) -> None:
    codex.enqueue(CustomCall("apply_patch", "*** Begin Patch\n*** End Patch"))
    body = {
        "model": "gpt-5.5",
        "stream": True,
        "input": [
            {"type": "message", "role": "developer", "id": "msg_1",
             "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "role": "system",
             "content": [{"type": "input_text", "text": "mid-conversation system text"}]},
            {"type": "message", "role": "user", "id": "msg_2",
             "content": [{"type": "input_text", "text": "patch it"}]},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "run", "strict": False,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            {"type": "custom", "name": "apply_patch", "description": "patch",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "pck-1",
        "text": {"verbosity": "low"},
        "max_output_tokens": 999,
    }  # fmt: skip
    r = httpx.post(
        proxy.base_url + "/v1/responses",
        json=body,
        headers={"authorization": "Bearer sk-local", "accept": "text/event-stream"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "response.completed"
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[-1]["type"] == "custom_tool_call" and done[-1]["name"] == "apply_patch"
    sent = last_body(codex)
    assert sent["instructions"] == "" and sent["store"] is False
    assert all("id" not in item for item in sent["input"])  # stripped: store=false
    assert [i["role"] for i in sent["input"]] == ["developer", "developer", "user"]
    assert "max_output_tokens" not in sent
    assert sent["prompt_cache_key"] == "pck-1" and sent["text"] == {"verbosity": "low"}
    assert [t["type"] for t in sent["tools"]] == ["function", "custom", "web_search"]


def test_responses_previous_response_id_is_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oai.responses.create(model="gpt-5", input="x", previous_response_id="resp_1")
    assert "previous_response_id" in err.value.message


def test_responses_tool_round_trip(oai: openai.OpenAI, codex: FakeCodex) -> None:
    codex.enqueue(Calls([("exec_command", {"cmd": "cat hello.txt"})]))
    tools = [
        {
            "type": "function",
            "name": "exec_command",
            "description": "run",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            "strict": False,
        }
    ]
    first = oai.responses.create(model="gpt-5", input="show hello.txt", tools=tools)
    call = next(o for o in first.output if o.type == "function_call")
    follow = [
        {"role": "user", "content": "show hello.txt"},
        *[o.model_dump(exclude_none=True) for o in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "hello from a file"},
    ]
    second = oai.responses.create(model="gpt-5", input=follow, tools=tools)
    assert second.output_text == "Tool said: hello from a file"


# ------------------------------------------------------------------ other clients → Codex


def test_anthropic_to_codex_with_thinking_and_tools(proxy: Proxy, codex: FakeCodex) -> None:
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="x", max_retries=0)
    codex.enqueue(Calls([("Read", {"file_path": "/tmp/a"})], reasoning="Need to read it."))
    tool = {
        "name": "Read",
        "description": "read",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
    }
    msgs: list = [{"role": "user", "content": "read /tmp/a"}]
    with client.messages.stream(
        model="claude-sonnet-4-5",  # alias of gpt-5 in this proxy's config
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=[tool],
        messages=msgs,
    ) as stream:
        first = stream.get_final_message()
    kinds = [b.type for b in first.content]
    assert "thinking" in kinds and kinds[-1] == "tool_use" and first.stop_reason == "tool_use"
    thinking = next(b for b in first.content if b.type == "thinking")
    assert thinking.thinking == "Need to read it."
    assert last_body(codex)["reasoning"]["effort"] == "medium"  # budget 2000 → medium
    use = first.content[-1]
    msgs.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    msgs.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "A"}],
        }
    )
    second = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=4096, tools=[tool], messages=msgs
    )
    assert second.content[-1].text == "Tool said: A"  # type: ignore[union-attr]
    items = last_body(codex)["input"]
    # Codex's own encrypted reasoning went back with the history (the fake verifies it)
    assert any(i["type"] == "reasoning" for i in items)


def test_genai_to_codex(proxy: Proxy, codex: FakeCodex) -> None:
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=proxy.base_url))
    resp = client.models.generate_content(model="gpt-5", contents="hello from genai")
    assert resp.text == "Echo: hello from genai"
    chunks = list(client.models.generate_content_stream(model="gpt-5", contents="a b c d"))
    assert "".join(c.text or "" for c in chunks) == "Echo: a b c d"
    codex.enqueue(Calls([("lookup", {"q": "x"})]))
    decl = types.FunctionDeclaration(
        name="lookup",
        description="look up",
        parameters_json_schema={"type": "object", "properties": {"q": {"type": "string"}}},
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[decl])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = client.models.generate_content(model="gpt-5", contents="look up x", config=config)
    assert first.function_calls and first.function_calls[0].args == {"q": "x"}
    history = [
        types.Content(role="user", parts=[types.Part(text="look up x")]),
        first.candidates[0].content,  # type: ignore[index]
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id=first.function_calls[0].id, name="lookup", response={"r": 1}
                    )
                )
            ],
        ),
    ]
    second = client.models.generate_content(model="gpt-5", contents=history, config=config)
    assert second.text and second.text.startswith("Tool said:")


# ------------------------------------------------------------------ /v1/responses → Gemini


def test_responses_to_gemini(oai: openai.OpenAI, fake: FakeGoogle) -> None:
    resp = oai.responses.create(
        model="gemini-2.5-flash", input="hello gemini", instructions="Be brief."
    )
    assert resp.output_text == "Echo: hello gemini"
    sent = fake.calls("generateContent")[0].body["request"]
    assert sent["systemInstruction"]["parts"][0]["text"] == "Be brief."
    with oai.responses.stream(model="gemini-2.5-pro", input="x y z") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Echo: x y z"


def test_responses_to_gemini_tools_and_image(oai: openai.OpenAI, fake: FakeGoogle) -> None:
    fake.enqueue(GeminiCalls([("exec_command", {"cmd": "ls"})]))
    tools = [
        {"type": "function", "name": "exec_command", "description": "run",
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
                        "additionalProperties": False}},
        {"type": "web_search"},
    ]  # fmt: skip
    user = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "list"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        ],
    }
    first = oai.responses.create(model="gemini-2.5-pro", input=[user], tools=tools)  # type: ignore[arg-type]
    call = next(o for o in first.output if o.type == "function_call")
    assert json.loads(call.arguments) == {"cmd": "ls"}
    sent = fake.calls("generateContent")[0].body["request"]
    assert sent["contents"][0]["parts"][1]["inlineData"]["data"] == PNG
    assert len(sent["tools"]) == 1  # web_search dropped: Gemini cannot run it
    follow = [
        user,
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "a.txt"},
    ]
    second = oai.responses.create(model="gemini-2.5-pro", input=follow, tools=tools)  # type: ignore[arg-type]
    assert second.output_text == 'Tool said: [{"output":"a.txt"}]'


# ------------------------------------------------------------------ errors and accounts


def test_usage_limit_is_429_with_retry_after(oai: openai.OpenAI, codex: FakeCodex) -> None:
    # its own model: the account then rests for that model only, the others stay served
    codex.enqueue(UsageLimit(1234))
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(
            model="gpt-5-codex", messages=[{"role": "user", "content": "x"}]
        )
    assert err.value.response.headers["retry-after"] in ("1233", "1234")
    assert "usage limit" in err.value.message.lower()
    # the resting account is not asked again for that model: 429 straight from the proxy
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(
            model="gpt-5-codex", messages=[{"role": "user", "content": "x"}]
        )
    assert len(codex.responses_requests) == 1
    ok = oai.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "y"}])
    assert ok.choices[0].message.content == "Echo: y"


def test_detail_error_is_translated(proxy: Proxy, codex: FakeCodex) -> None:
    codex.enqueue(HttpError(400, {"detail": "Unsupported value: 'x'"}))
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(
            model="gpt-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert "Unsupported value" in err.value.message


def test_failed_stream_is_an_error_event(oai: openai.OpenAI, codex: FakeCodex) -> None:
    codex.enqueue(Failed("context_length_exceeded", "Your input exceeds the context window"))
    with pytest.raises(openai.APIError) as err:
        for _ in oai.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass
    assert "context window" in str(err.value)


def test_cut_responses_stream_ends_in_response_failed(proxy: Proxy, codex: FakeCodex) -> None:
    codex.enqueue(Cut(4, Text("one two three four five six seven")))
    with httpx.stream(
        "POST",
        proxy.base_url + "/v1/responses",
        json={"model": "gpt-5", "input": "x", "stream": True},
    ) as r:
        try:
            text = "".join(r.iter_text())
        except httpx.HTTPError:
            # an aborted transfer is the other allowed outcome
            # (docs/configuration.md "Error shapes")
            return
    assert "response.completed" not in text
    assert "event: response.failed" in text


def test_codex_refresh_rotates_and_persists(
    fake: FakeGoogle, codex: FakeCodex, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tokens = codex.add_account("acct-2222", email="d@example.com", expires_in=60)
    p = start_proxy(
        tmp_path_factory.mktemp("codex-refresh"),
        fake,
        codex=codex,
        auth_files={"codex-d@example.com.json": tokens.auth_file()},
    )
    try:
        client = openai.OpenAI(base_url=p.base_url + "/v1", api_key="x", max_retries=0)
        resp = client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "after refresh"}]
        )
        assert resp.choices[0].message.content == "Echo: after refresh"
        assert len(codex.token_requests) == 1
        assert codex.token_requests[0]["grant_type"] == "refresh_token"
        saved = json.loads((p.auth_dir / "codex-d@example.com.json").read_text())
        assert saved["refresh_token"] != tokens.refresh_token  # rotated token kept
        assert saved["access_token"] != tokens.access_token
        assert codex.responses_requests[-1].headers["authorization"] == (
            "Bearer " + saved["access_token"]
        )
        assert "last_refresh" in saved and "expired" in saved
    finally:
        p.stop()
