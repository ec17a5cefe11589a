"""Issue 10, freeform ("custom") tools through Chat Completions: GPT-5's `{"type":"custom"}`
tools, assistant `tool_calls` of type custom with raw input, and custom calls in answers (stream
and not), to Codex (native custom tools) and to Gemini (a function with one string `input`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import registry
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events

GRAMMAR = 'start: "add " NUMBER " " NUMBER\n%import common.NUMBER'
PATCH = '*** Begin Patch\n*** Add File: a.txt\n+hi "there"\n*** End Patch\n'
CUSTOM_TOOL = {
    "type": "custom",
    "custom": {
        "name": "calc",
        "description": "Adds two numbers",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": GRAMMAR}},
    },
}
FREE_TOOL = {"type": "custom", "custom": {"name": "apply_patch", "description": "Edit files"}}
FN_TOOL = {
    "type": "function",
    "function": {"name": "ls", "parameters": {"type": "object", "properties": {}}},
}


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-5",
        "messages": [{"role": "user", "content": "patch it"}],
        "tools": [CUSTOM_TOOL, FREE_TOOL, FN_TOOL],
        **extra,
    }


HISTORY = [
    {"role": "user", "content": "patch it"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_c1", "type": "custom", "custom": {"name": "apply_patch", "input": PATCH}},
            {"id": "call_f1", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_c1", "content": "Done!"},
    {"role": "tool", "tool_call_id": "call_f1", "content": "a.txt"},
]


# ================================================================ request


def test_custom_tools_are_parsed_into_the_ir_with_their_format() -> None:
    req = openai_chat.parse_request(
        _body(tool_choice={"type": "custom", "custom": {"name": "calc"}})
    )
    assert [t.name for t in req.tools] == ["calc", "apply_patch", "ls"]
    calc = req.tools[0]
    assert calc.description == "Adds two numbers"
    assert calc.parameters["required"] == ["input"]
    assert GRAMMAR in calc.parameters["properties"]["input"]["description"]
    assert req.extras[ir.CUSTOM_TOOLS] == ["calc", "apply_patch"]
    assert req.extras[ir.CUSTOM_TOOL_FORMATS] == {
        "calc": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}
    }
    assert req.tool_choice == ir.ToolChoice("tool", "calc")
    assert req.dropped == []


def test_custom_tool_calls_in_history_carry_the_raw_input() -> None:
    req = openai_chat.parse_request(_body(messages=HISTORY))
    call, fn = req.messages[1].parts
    assert call == ir.ToolCallPart("call_c1", "apply_patch", {"input": PATCH})
    assert fn == ir.ToolCallPart("call_f1", "ls", {})
    results = req.messages[2].parts
    assert [(r.call_id, r.name) for r in results] == [("call_c1", "apply_patch"), ("call_f1", "ls")]


def test_custom_tools_go_to_codex_as_custom_tools_and_calls() -> None:
    body = _body(messages=HISTORY, tool_choice={"type": "custom", "custom": {"name": "calc"}})
    out = codex.render_request(openai_chat.parse_request(body))
    assert out["tools"][:2] == [
        {
            "type": "custom",
            "name": "calc",
            "description": "Adds two numbers",
            "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
        },
        {"type": "custom", "name": "apply_patch", "description": "Edit files"},
    ]
    assert out["tools"][2]["type"] == "function"
    assert out["tool_choice"] == {"type": "custom", "name": "calc"}
    items = out["input"]
    assert items[1] == {
        "type": "custom_tool_call",
        "call_id": "call_c1",
        "name": "apply_patch",
        "input": PATCH,
    }
    assert items[2]["type"] == "function_call"
    assert items[3] == {"type": "custom_tool_call_output", "call_id": "call_c1", "output": "Done!"}
    assert items[4] == {"type": "function_call_output", "call_id": "call_f1", "output": "a.txt"}


def test_custom_tools_go_to_gemini_as_functions_with_one_string_input() -> None:
    req = openai_chat.parse_request(_body(messages=HISTORY))
    out, _names = gemini.render_request(req)
    decls = out["tools"][0]["functionDeclarations"]
    calc = next(d for d in decls if d["name"] == "calc")
    schema = calc.get("parametersJsonSchema") or calc.get("parameters")
    assert schema["required"] == ["input"]
    model = out["contents"][1]
    assert model["parts"][0]["functionCall"]["args"] == {"input": PATCH}


# ================================================================ answers


def _options(body: dict[str, Any]) -> registry.AnswerOptions:
    return registry.AnswerOptions.of(openai_chat.parse_request(body), "gpt-5")


def _frames(objs: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objs)


def _sse(raw: bytes) -> list[Any]:
    parser = SSEParser()
    return parse_json_events(parser.feed(raw) + parser.finish())


def _custom_item(text: str) -> dict[str, Any]:
    return {
        "id": "ctc_1",
        "type": "custom_tool_call",
        "call_id": "call_9",
        "name": "apply_patch",
        "input": text,
    }


def _delta(text: str) -> dict[str, Any]:
    return {"type": "response.custom_tool_call_input.delta", "item_id": "ctc_1", "delta": text}


CODEX_CUSTOM = [
    {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5"}},
    {"type": "response.output_item.added", "item": _custom_item("")},
    _delta(PATCH[:20]),
    _delta(PATCH[20:]),
    {"type": "response.output_item.done", "item": _custom_item(PATCH)},
    {
        "type": "response.completed",
        "response": {"id": "resp_1", "usage": {"input_tokens": 3, "output_tokens": 2}},
    },
]


def _tool_deltas(objs: list[Any]) -> list[dict[str, Any]]:
    return [
        tc
        for o in objs
        if isinstance(o, dict)
        for c in o["choices"]
        for tc in c["delta"].get("tool_calls", [])
    ]


def test_codex_custom_call_reaches_chat_raw_non_stream() -> None:
    dialect = registry.CLIENTS["openai-chat"]
    acc = ResponseAccumulator()
    dec = codex.StreamDecoder("gpt-5")
    for obj in CODEX_CUSTOM:
        acc.extend(dec.feed(obj))
    acc.extend(dec.finish())
    body = dialect.render(acc.response(), _options(_body()))
    choice = body["choices"][0]
    assert choice["message"]["tool_calls"] == [
        {"id": "call_9", "type": "custom", "custom": {"name": "apply_patch", "input": PATCH}}
    ]
    assert choice["finish_reason"] == "tool_calls"


def test_codex_custom_call_reaches_chat_raw_stream() -> None:
    dialect = registry.CLIENTS["openai-chat"]
    pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), dialect.encoder(_options(_body())))
    objs = _sse(b"".join(pipe(_frames(CODEX_CUSTOM))) + b"".join(pipe(b"")))
    calls = _tool_deltas(objs)
    assert calls[0] == {
        "index": 0,
        "id": "call_9",
        "type": "custom",
        "custom": {"name": "apply_patch", "input": ""},
    }
    assert all("function" not in c for c in calls)
    assert "".join(c["custom"]["input"] for c in calls) == PATCH
    reasons = [c["finish_reason"] for o in objs if isinstance(o, dict) for c in o["choices"]]
    assert [r for r in reasons if r] == ["tool_calls"]


@pytest.mark.parametrize("stream", [True, False])
def test_gemini_function_call_to_a_custom_tool_reaches_chat_raw(stream: bool) -> None:
    dialect = registry.CLIENTS["openai-chat"]
    call = {"functionCall": {"name": "apply_patch", "args": {"input": PATCH}}}
    chunk = {
        "candidates": [{"content": {"role": "model", "parts": [call]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    }
    opts = _options(_body())
    if stream:
        pipe = StreamPipeline(gemini.StreamDecoder("gemini-2.5-pro"), dialect.encoder(opts))
        objs = _sse(b"".join(pipe(_frames([chunk]))) + b"".join(pipe(b"")))
        calls = _tool_deltas(objs)
        assert calls[0]["type"] == "custom" and calls[0]["custom"]["name"] == "apply_patch"
        assert "".join(c["custom"]["input"] for c in calls) == PATCH
    else:
        acc = ResponseAccumulator()
        dec = gemini.StreamDecoder("gemini-2.5-pro")
        acc.extend(dec.feed(chunk))
        acc.extend(dec.finish())
        (tc,) = dialect.render(acc.response(), opts)["choices"][0]["message"]["tool_calls"]
        assert tc["type"] == "custom" and tc["custom"] == {"name": "apply_patch", "input": PATCH}


def test_function_calls_stay_function_calls_next_to_custom_tools() -> None:
    resp = ir.Response("r", "gpt-5", [ir.ToolCallPart("call_1", "ls", {"path": "."})], "tool_calls")
    (tc,) = openai_chat.render_response(resp, frozenset({"apply_patch"}))["choices"][0]["message"][
        "tool_calls"
    ]
    assert tc == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "ls", "arguments": '{"path":"."}'},
    }
