"""Issue 10: OpenAI-compatible Gemini clients carry a tool call's thought signature in
`extra_content.google.thought_signature`; it goes to Gemini instead of the bypass sentinel, and
Gemini's signatures come back to Chat clients the same way (stream and non-stream)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events

SIG = "CiQBjz1rX4pQ8sV0bW9kZWwtc2lnbmF0dXJl"  # base64, as Gemini hands them out


def _history(extra: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "ls", "arguments": "{}"},
    }
    if extra is not None:
        call["extra_content"] = extra
    return {
        "model": "gemini-2.5-pro",
        "messages": [
            {"role": "user", "content": "list"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
        ],
    }


def test_signature_from_extra_content_goes_to_gemini() -> None:
    req = openai_chat.parse_request(_history({"google": {"thought_signature": SIG}}))
    assert req.messages[1].parts[0] == ir.ToolCallPart("call_1", "ls", {}, SIG)
    body, _ = gemini.render_request(req)
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == SIG


def test_without_extra_content_the_sentinel_is_sent() -> None:
    body, _ = gemini.render_request(openai_chat.parse_request(_history(None)))
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == gemini.SENTINEL_SIGNATURE


def test_other_extra_content_is_ignored_and_a_bad_signature_is_a_400() -> None:
    req = openai_chat.parse_request(_history({"other": {"x": 1}}))
    assert req.messages[1].parts[0].signature is None  # type: ignore[union-attr]
    with pytest.raises(ir.RequestError) as err:
        openai_chat.parse_request(_history({"google": {"thought_signature": 5}}))
    assert err.value.param == "messages[1].tool_calls[0].extra_content.google.thought_signature"


def test_a_signature_to_codex_is_not_sent() -> None:
    body = codex.render_request(
        openai_chat.parse_request(_history({"google": {"thought_signature": SIG}}))
    )
    assert SIG not in json.dumps(body)


GEMINI_CALL = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"functionCall": {"name": "ls", "args": {}}, "thoughtSignature": SIG}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
}


@pytest.mark.parametrize("stream", [True, False])
def test_gemini_signature_reaches_chat_in_extra_content(stream: bool) -> None:
    if stream:
        pipe = StreamPipeline(
            gemini.StreamDecoder("gemini-2.5-pro"), openai_chat.StreamEncoder("m")
        )
        raw = b"".join(pipe(f"data: {json.dumps(GEMINI_CALL)}\n\n".encode())) + b"".join(pipe(b""))
        parser = SSEParser()
        objs = [
            o for o in parse_json_events(parser.feed(raw) + parser.finish()) if isinstance(o, dict)
        ]
        deltas = [tc for o in objs for c in o["choices"] for tc in c["delta"].get("tool_calls", [])]
        assert deltas[0]["extra_content"] == {"google": {"thought_signature": SIG}}
    else:
        acc = ResponseAccumulator()
        dec = gemini.StreamDecoder("gemini-2.5-pro")
        acc.extend(dec.feed(GEMINI_CALL))
        acc.extend(dec.finish())
        (tc,) = openai_chat.render_response(acc.response())["choices"][0]["message"]["tool_calls"]
        assert tc["extra_content"] == {"google": {"thought_signature": SIG}}


def test_codex_reasoning_is_not_a_thought_signature() -> None:
    part = ir.ToolCallPart("call_1", "ls", {}, ir.CODEX_REASONING_PREFIX + "gAAAA")
    resp = ir.Response("r", "gpt-5", [part], "tool_calls")
    (tc,) = openai_chat.render_response(resp)["choices"][0]["message"]["tool_calls"]
    assert "extra_content" not in tc
