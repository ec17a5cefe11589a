"""The official anthropic SDK (and Claude Code's request shape) against the proxy."""

from __future__ import annotations

import base64

import anthropic
import httpx
import pytest

from tests.fakes.google import Calls
from tests.fakes.google import FakeGoogle
from tests.fakes.google import count_tokens
from tests.fakes.google import rate_limited
from tests.integration.conftest import Proxy

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()

READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["file_path"],
        "additionalProperties": False,
    },
    "cache_control": {"type": "ephemeral"},
}


@pytest.fixture
def client(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, api_key="sk-ant-test", max_retries=0)


def test_text(client: anthropic.Anthropic, fake: FakeGoogle) -> None:
    msg = client.messages.create(
        model="gemini-2.5-flash",
        max_tokens=512,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello"}],
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "Echo: hello"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    req = fake.calls("generateContent")[0].body["request"]
    assert req["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert req["generationConfig"]["maxOutputTokens"] == 512


def test_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="gemini-2.5-pro", max_tokens=256, messages=[{"role": "user", "content": "a b c d"}]
    ) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(deltas) == "Echo: a b c d" and len(deltas) >= 2
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_raw_stream_event_grammar(client: anthropic.Anthropic) -> None:
    events = list(
        client.messages.create(
            model="gemini-2.5-pro",
            max_tokens=256,
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start" and "content_block_stop" in kinds
    assert events[0].message.usage.input_tokens > 0  # type: ignore[union-attr]


def test_thinking_and_tool_round_trip_keeps_signature(
    client: anthropic.Anthropic, fake: FakeGoogle
) -> None:
    fake.enqueue(Calls([("Read", {"file_path": "/tmp/hello.txt"})], text_before="Reading."))
    messages: list = [{"role": "user", "content": "read /tmp/hello.txt"}]
    with client.messages.stream(
        model="claude-sonnet-4-5",  # an alias of gemini-2.5-pro in the test config
        max_tokens=32000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[READ_TOOL],
        messages=messages,
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    tool_use = [b for b in first.content if b.type == "tool_use"]
    assert len(tool_use) == 1 and tool_use[0].input == {"file_path": "/tmp/hello.txt"}
    sent = fake.calls("streamGenerateContent")[0].body["request"]
    assert sent["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }

    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_use[0].id,
                    "content": "1\thello from a file\n",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        }
    )
    second = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=4096, tools=[READ_TOOL], messages=messages
    )
    assert second.content[-1].type == "text"
    assert second.content[-1].text == 'Tool said: [{"output":"1\\thello from a file\\n"}]'
    contents = fake.calls("generateContent")[0].body["request"]["contents"]
    call_part = next(p for p in contents[1]["parts"] if "functionCall" in p)
    # the real signature Gemini issued came back through Claude's thinking block
    assert call_part["thoughtSignature"] == fake.issued_signatures[-1]


def test_claude_code_shaped_request(proxy: Proxy, fake: FakeGoogle) -> None:
    body = {
        "model": "gemini-2.5-pro",
        "max_tokens": 32000,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": '{"device_id":"d","account_uuid":"","session_id":"s"}'},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.1; x;"},
            {
                "type": "text",
                "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {"role": "system", "content": "Agents: none."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>r</system-reminder>"},
                    {"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
        "tools": [READ_TOOL],
    }
    r = httpx.post(
        proxy.base_url + "/v1/messages?beta=true",
        json=body,
        headers={
            "x-api-key": "sk-ant-test",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
            "accept": "application/json",
        },
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    names = [ln.split(": ", 1)[1] for ln in r.text.splitlines() if ln.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    req = fake.calls("streamGenerateContent")[0].body["request"]
    system_text = " ".join(p["text"] for p in req["systemInstruction"]["parts"])
    assert "billing-header" not in system_text and "You are Claude Code." in system_text
    # adaptive thinking with output_config.effort "high" goes through the effort table
    assert req["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 24576


def test_image(client: anthropic.Anthropic, fake: FakeGoogle) -> None:
    client.messages.create(
        model="gemini-2.5-flash",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "describe"},
                ],
            }
        ],
    )
    parts = fake.calls("generateContent")[0].body["request"]["contents"][0]["parts"]
    assert parts[0] == {"inlineData": {"mimeType": "image/png", "data": PNG}}


def test_count_tokens_counts_system_and_tools(
    client: anthropic.Anthropic, fake: FakeGoogle
) -> None:
    plain = client.messages.count_tokens(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hello world"}]
    )
    sent = fake.calls("countTokens")[0].body
    assert sent["request"]["model"] == "models/gemini-2.5-flash"
    assert plain.input_tokens == count_tokens(sent["request"]["contents"])
    full = client.messages.count_tokens(
        model="gemini-2.5-flash",
        system="A long system prompt " * 20,
        tools=[READ_TOOL],
        messages=[{"role": "user", "content": "hello world"}],
    )
    assert full.input_tokens > plain.input_tokens


def test_model_list(client: anthropic.Anthropic) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gemini-2.5-flash" in ids and "claude-sonnet-4-5" in ids


def test_errors_in_anthropic_shape(client: anthropic.Anthropic, fake: FakeGoogle) -> None:
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(
            model="claude-opus-4", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="gemini-2.5-pro", max_tokens=10, messages=[])
    assert "messages" in bad.value.message
    fake.enqueue(rate_limited("30s"))  # a model without preview variants
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model="gemini-3-flash-preview",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
        )
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert limited.value.response.headers["retry-after"] == "30"


def test_missing_max_tokens_is_400(proxy: Proxy) -> None:
    r = httpx.post(
        proxy.base_url + "/v1/messages",
        json={"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 400
    assert r.json()["type"] == "error" and "max_tokens" in r.json()["error"]["message"]
