"""The official openai SDK against the proxy, Code Assist behind it (the strict fake)."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest

from tests.fakes.google import Calls
from tests.fakes.google import CutStream
from tests.fakes.google import FakeGoogle
from tests.fakes.google import Text
from tests.fakes.google import rate_limited
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
def client(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)


def test_text(client: openai.OpenAI, fake: FakeGoogle) -> None:
    resp = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.2,
        max_tokens=100,
    )
    assert resp.choices[0].message.content == "Echo: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    (call,) = fake.calls("generateContent")
    assert call.headers["authorization"] == "Bearer ya29.valid-a"
    body = call.body
    assert body["project"] == PROJECT and body["model"] == "gemini-2.5-flash"
    req = body["request"]
    assert req["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert req["generationConfig"]["temperature"] == 0.2
    assert req["generationConfig"]["maxOutputTokens"] == 100


def test_stream_with_usage(client: openai.OpenAI, fake: FakeGoogle) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gemini-2.5-pro",
            messages=[{"role": "user", "content": "count to three please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: count to three please"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # streamed
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1
    (call,) = fake.calls("streamGenerateContent")
    assert call.query.get("alt") == "sse"


def test_stream_wrapper_helper(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Echo: hi"


@pytest.mark.parametrize("stream", [False, True])
def test_tools_two_turns(client: openai.OpenAI, fake: FakeGoogle, stream: bool) -> None:
    fake.enqueue(Calls([("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]))
    messages: list = [{"role": "user", "content": "weather in Paris and Rome?"}]
    kwargs = {"model": "gemini-2.5-pro", "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    if stream:
        with client.chat.completions.stream(messages=messages, **kwargs) as s:
            first = s.get_final_completion()
    else:
        first = client.chat.completions.create(messages=messages, **kwargs)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert len({c.id for c in calls}) == 2
    # the schema Gemini would refuse was cleaned before it left the proxy
    sent = fake.calls("streamGenerateContent" if stream else "generateContent")[0].body
    decl = sent["request"]["tools"][0]["functionDeclarations"][0]
    assert "additionalProperties" not in json.dumps(decl) and "$schema" not in json.dumps(decl)

    messages.append(choice.message.model_dump(exclude_none=True))
    for call, result in zip(calls, ["sunny", "rainy"], strict=True):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    second = client.chat.completions.create(messages=messages, **kwargs)
    assert second.choices[0].message.content == 'Tool said: [{"output":"sunny"},{"output":"rainy"}]'
    # the strict fake checked the thought signature and the response count; assert the shape too
    contents = fake.calls("generateContent")[-1].body["request"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    model_parts = contents[1]["parts"]
    # the signature rode in the first call's extra_content.google.thought_signature (as Gemini's
    # OpenAI-compatible API hands it out) and the SDK's model_dump sent it back
    assert model_parts[0]["thoughtSignature"] == fake.issued_signatures[0]
    names = [p["functionResponse"]["name"] for p in contents[2]["parts"]]
    assert names == ["get_weather", "get_weather"]


def test_forced_tool_choice(client: openai.OpenAI, fake: FakeGoogle) -> None:
    fake.enqueue(Calls([("get_weather", {"city": "Oslo"})]))
    client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    config = fake.calls("generateContent")[0].body["request"]["toolConfig"]
    assert config["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["get_weather"],
    }


def test_image(client: openai.OpenAI, fake: FakeGoogle) -> None:
    client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    parts = fake.calls("generateContent")[0].body["request"]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}


def test_reasoning_effort_and_thoughts(client: openai.OpenAI, fake: FakeGoogle) -> None:
    resp = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "think"}],
        reasoning_effort="low",
    )
    thinking = fake.calls("generateContent")[0].body["request"]["generationConfig"]
    assert thinking["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    message = resp.choices[0].message
    assert message.content == "Echo: think"
    assert message.model_extra is not None
    assert message.model_extra.get("reasoning_content") == "Thinking about the answer."
    assert resp.usage is not None and resp.usage.completion_tokens_details is not None
    assert resp.usage.completion_tokens_details.reasoning_tokens > 0


def test_reasoning_effort_none_sends_zero_budget(client: openai.OpenAI, fake: FakeGoogle) -> None:
    client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "quick"}],
        reasoning_effort="none",
    )
    config = fake.calls("generateContent")[0].body["request"]["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] == 0


def test_model_list(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gemini-2.5-pro" in ids and "gemini-2.5-flash" in ids
    assert "claude-sonnet-4-5" in ids  # the alias of the config


def test_alias_routes_to_target(client: openai.OpenAI, fake: FakeGoogle) -> None:
    resp = client.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
    )
    assert resp.model == "claude-sonnet-4-5"
    assert fake.calls("generateContent")[0].body["model"] == "gemini-2.5-pro"


def test_unknown_model_is_404(client: openai.OpenAI, fake: FakeGoogle) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="llama-3", messages=[{"role": "user", "content": "x"}])
    assert "llama-3" in err.value.message
    assert fake.requests == []


def test_codex_model_without_codex_account_is_503(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 503
    assert "cliproxy login codex" in err.value.message


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "gemini-2.5-pro", "messages": "hi"}', "messages"),
        (b'{"model": "gemini-2.5-pro", "messages": [{"role": "wizard", "content": "x"}]}', "role"),
        (
            b'{"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}], '
            b'"temperature": "hot"}',
            "temperature",
        ),
    ],
)
def test_bad_input_is_400_in_openai_shape(proxy: Proxy, body: bytes, needle: str) -> None:
    r = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and needle in err["message"]


def test_unknown_route_is_json_404(proxy: Proxy) -> None:
    r = httpx.post(proxy.base_url + "/v1/embeddings", json={"model": "x", "input": "y"})
    assert r.status_code == 404
    assert "no such endpoint" in r.json()["error"]["message"]


def test_upstream_429_is_translated(client: openai.OpenAI, fake: FakeGoogle) -> None:
    # (a model without preview variants: with one account there is nowhere else to go)
    fake.enqueue(rate_limited("7s", "QUOTA_EXHAUSTED", "gemini-3-pro-preview"))
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(
            model="gemini-3-pro-preview", messages=[{"role": "user", "content": "x"}]
        )
    assert err.value.response.headers["retry-after"] == "7"
    assert "exhausted your capacity" in err.value.message


def test_stream_cut_mid_way_is_an_error(client: openai.OpenAI, fake: FakeGoogle) -> None:
    fake.enqueue(CutStream(2, Text("one two three four five six")))
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for _ in client.chat.completions.create(
            model="gemini-2.5-pro", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass


def test_many_streams_and_answers_on_one_keep_alive_connection(proxy: Proxy) -> None:
    """One client connection carries streams and whole answers in turn, as the SDKs do: the
    loopback streamer's connection from mitmproxy is kept alive between streams too."""
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "again"}]}
    with httpx.Client(base_url=proxy.base_url, timeout=20) as client:
        for i in range(8):
            stream = i % 3 != 2
            r = client.post("/v1/chat/completions", json={**body, "stream": stream})
            assert r.status_code == 200, (i, r.text)
            if stream:
                assert r.text.rstrip().endswith("data: [DONE]"), (i, r.text)
            else:
                assert r.json()["choices"][0]["message"]["content"] == "Echo: again"
    assert "loopback streamer failed" not in proxy.log(), proxy.log()[-3000:]
