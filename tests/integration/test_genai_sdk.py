"""The official google-genai SDK (v1 default and v1beta) against the proxy."""

from __future__ import annotations

import base64

import httpx
import pytest
from google import genai
from google.genai import errors
from google.genai import types

from tests.fakes.google import Calls
from tests.fakes.google import FakeGoogle
from tests.fakes.google import count_tokens
from tests.fakes.google import rate_limited
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


@pytest.fixture(params=["v1", "v1beta"])
def client(proxy: Proxy, request: pytest.FixtureRequest) -> genai.Client:
    return genai.Client(
        api_key="k-test",
        http_options=types.HttpOptions(base_url=proxy.base_url, api_version=request.param),
    )


def test_generate(client: genai.Client, fake: FakeGoogle) -> None:
    resp = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello genai",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.5),
    )
    assert resp.text == "Echo: hello genai"
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.usage_metadata and resp.usage_metadata.prompt_token_count
    (call,) = fake.calls("generateContent")
    assert call.body["project"] == PROJECT and call.body["model"] == "gemini-2.5-flash"
    assert "x-goog-api-key" not in call.headers  # the client's key never goes upstream
    assert call.body["request"]["generationConfig"]["temperature"] == 0.5


def test_stream(client: genai.Client, fake: FakeGoogle) -> None:
    chunks = list(
        client.models.generate_content_stream(model="gemini-2.5-pro", contents="one two three")
    )
    assert "".join(c.text or "" for c in chunks) == "Echo: one two three"
    assert len(chunks) >= 2
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "STOP"


def test_function_call_round_trip(client: genai.Client, fake: FakeGoogle) -> None:
    fake.enqueue(Calls([("get_weather", {"city": "Paris"})]))
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                description="Weather",
                parameters_json_schema={
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            )
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    first = client.models.generate_content(
        model="gemini-2.5-pro", contents="weather in Paris?", config=config
    )
    assert first.function_calls and first.function_calls[0].args == {"city": "Paris"}
    history = [
        types.Content(role="user", parts=[types.Part(text="weather in Paris?")]),
        first.candidates[0].content,  # type: ignore[index]
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"t": 21})],
        ),
    ]
    second = client.models.generate_content(model="gemini-2.5-pro", contents=history, config=config)
    assert second.text == 'Tool said: [{"t":21}]'
    contents = fake.calls("generateContent")[-1].body["request"]["contents"]
    # the real signature went back untouched on the native path
    assert contents[1]["parts"][0]["thoughtSignature"] == fake.issued_signatures[0]


def test_image(client: genai.Client, fake: FakeGoogle) -> None:
    client.models.generate_content(
        model="gemini-2.5-flash",
        contents=[types.Part.from_bytes(data=PNG_BYTES, mime_type="image/png"), "what is it?"],
    )
    part = fake.calls("generateContent")[0].body["request"]["contents"][0]["parts"][0]
    inline = part.get("inlineData") or part.get("inline_data")
    assert base64.b64decode(inline["data"]) == PNG_BYTES


def test_thinking(client: genai.Client, fake: FakeGoogle) -> None:
    resp = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="think",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
        ),
    )
    parts = resp.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert parts and parts[0].thought is True
    assert resp.text == "Echo: think"


def test_count_tokens(client: genai.Client, fake: FakeGoogle) -> None:
    resp = client.models.count_tokens(model="gemini-2.5-flash", contents="count these words")
    sent = fake.calls("countTokens")[0].body["request"]
    assert sent["model"] == "models/gemini-2.5-flash"
    assert resp.total_tokens == count_tokens(sent["contents"]) > 0


def test_models(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-pro" in names
    one = client.models.get(model="gemini-2.5-flash")
    assert one.name == "models/gemini-2.5-flash" and one.input_token_limit


def test_errors_in_gemini_shape(
    client: genai.Client, fake: FakeGoogle, request: pytest.FixtureRequest
) -> None:
    with pytest.raises(errors.ClientError) as nf:
        client.models.generate_content(model="mystery-model", contents="x")
    assert nf.value.code == 404 and nf.value.status == "NOT_FOUND"
    # a model without preview variants, one per API version: the account then rests for it
    model = {"v1": "gemini-3-pro-preview", "v1beta": "gemini-3-flash-preview"}[
        request.node.callspec.params["client"]
    ]
    fake.enqueue(rate_limited("5s", "QUOTA_EXHAUSTED"))
    with pytest.raises(errors.ClientError) as limited:
        client.models.generate_content(model=model, contents="x")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    details = limited.value.details["error"]["details"]
    assert any(d.get("reason") == "QUOTA_EXHAUSTED" for d in details)


def test_bad_json_is_gemini_400(proxy: Proxy) -> None:
    r = httpx.post(
        proxy.base_url + "/v1beta/models/gemini-2.5-pro:generateContent",
        content=b"{oops",
        headers={"content-type": "application/json", "x-goog-api-key": "k"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_contents_of_wrong_type_is_400(proxy: Proxy) -> None:
    r = httpx.post(
        proxy.base_url + "/v1beta/models/gemini-2.5-pro:generateContent",
        json={"contents": 5},
        headers={"x-goog-api-key": "k"},
    )
    assert r.status_code == 400 and "contents" in r.json()["error"]["message"]
