"""Gemini dialect: upstream rendering/decoding (Code Assist, AI Studio), client parsing/encoding
(google-genai, Gemini CLI), the pass-through path and its Code Assist unwrapper.

Fixtures are real shapes: the "Code Assist responses and SSE" sample, Gemini CLI 0.61.0's follow-up
turn (docs/upstreams.md "Gemini CLI") and a body captured from google-genai 3.4.0 (mixed snake/camel
keys). Rendered answers and streams are read back with the real google-genai SDK over a mock
transport.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

import httpx
import pytest
from cliproxy.translators import code_assist
from cliproxy.translators import gemini as gm
from cliproxy.translators import google_errors
from cliproxy.translators import ir
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.pipeline import GeminiPassthrough
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events
from google import genai
from google.genai import types as gtypes
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

SENTINEL = "skip_thought_signature_validator"

# ---------------------------------------------------------------- fixtures

# docs/upstreams.md "Code Assist responses and SSE", byte for byte.
SSE_SAMPLE = (
    b'data: {"response":{"candidates":[{"content":{"role":"model","parts":[{"thought":true,"text":"**Listing files**"}]},"index":0}],"usageMetadata":{"promptTokenCount":12282,"totalTokenCount":12352,"thoughtsTokenCount":70},"modelVersion":"gemini-2.5-pro"},"traceId":"1a2b3c4d5e6f7a8b"}\n'  # noqa: E501
    b"\n"
    b'data: {"response":{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"list_directory","args":{"dir_path":"src"}},"thoughtSignature":"CikB0e2Kb7zk..."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12282,"candidatesTokenCount":14,"totalTokenCount":12366,"thoughtsTokenCount":70},"modelVersion":"gemini-2.5-pro"},"traceId":"1a2b3c4d5e6f7a8b"}\n'  # noqa: E501
    b"\n"
)

READ_FILE_DECL = {
    "name": "read_file",
    "description": "Reads and returns the content of a specified file.",
    "parametersJsonSchema": {
        "type": "object",
        "properties": {
            "file_path": {"description": "The path to the file to read.", "type": "string"},
            "offset": {"type": "number"},
        },
        "required": ["file_path"],
    },
}

# Gemini CLI 0.61.0, relay mode, second request of a tool round trip
# (docs/upstreams.md "Gemini CLI").
GEMINI_CLI_FOLLOWUP = {
    "model": "gemini-2.5-flash",
    "project": "helpful-fox-abc123",
    "user_prompt_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "request": {
        "contents": [
            {"role": "user", "parts": [{"text": "Read /tmp/w/hello.txt"}]},
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {
                            "name": "read_file",
                            "args": {"file_path": "/tmp/w/hello.txt"},
                            "id": "read_file_1764150000000_0",
                        },
                        "thoughtSignature": SENTINEL,
                    }
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "read_file",
                            "response": {"output": "hello from a file\n"},
                            "id": "read_file_1764150000000_0",
                        }
                    }
                ],
            },
        ],
        "systemInstruction": {
            "role": "user",
            "parts": [{"text": "You are an interactive CLI agent..."}],
        },
        "tools": [{"functionDeclarations": [READ_FILE_DECL]}],
        "generationConfig": {
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192},
        },
        "session_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    },
}

# Captured from google-genai 3.4.0 (generate_content with image, history, tools, config).
GENAI_BODY = {
    "contents": [
        {
            "parts": [
                {"text": "what is this"},
                {"inlineData": {"data": "iVBORw==", "mime_type": "image/png"}},
            ],
            "role": "user",
        },
        {
            "parts": [
                {
                    "functionCall": {
                        "id": "fc_1",
                        "args": {"city": "Paris"},
                        "name": "get_weather",
                    },
                    "thoughtSignature": "c2ln",
                }
            ],
            "role": "model",
        },
        {
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}
            ],
            "role": "user",
        },
    ],
    "systemInstruction": {"parts": [{"text": "be brief"}], "role": "user"},
    "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "description": "w",
                    "name": "get_weather",
                    "parameters_json_schema": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                        "additionalProperties": False,
                    },
                    "response_json_schema": {"type": "string"},
                }
            ]
        }
    ],
    "toolConfig": {
        "functionCallingConfig": {"allowedFunctionNames": ["get_weather"], "mode": "ANY"}
    },
    "generationConfig": {
        "temperature": 0.2,
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
        "seed": 7,
        "responseMimeType": "text/plain",
        "thinkingConfig": {"include_thoughts": True, "thinking_budget": 1024},
    },
}


def decode_sse(raw: bytes, decoder: gm.StreamDecoder) -> list[ir.Event]:
    parser = SSEParser()
    objs = parse_json_events(parser.feed(raw) + parser.finish())
    events: list[ir.Event] = []
    for obj in objs:
        events.extend(decoder.feed(code_assist.unwrap_response(obj)))
    return events + decoder.finish()


# ================================================================ StreamDecoder


def test_decoder_over_code_assist_sample() -> None:
    events = decode_sse(SSE_SAMPLE, gm.StreamDecoder("gemini-2.5-pro"))
    assert isinstance(events[4], ir.ToolCallStart)
    call_id = events[4].id
    assert re.fullmatch(r"call_[0-9a-f]{24}", call_id)
    assert events == [
        ir.StreamStart(id="1a2b3c4d5e6f7a8b", model="gemini-2.5-pro"),
        ir.UsageUpdate(ir.Usage(input_tokens=12282, output_tokens=70, reasoning_tokens=70)),
        ir.ThinkingDelta("**Listing files**", None),
        ir.UsageUpdate(ir.Usage(input_tokens=12282, output_tokens=84, reasoning_tokens=70)),
        # the signature rides on the tool call itself
        ir.ToolCallStart(call_id, "list_directory", "CikB0e2Kb7zk..."),
        ir.ToolCallDelta(call_id, '{"dir_path": "src"}'),
        ir.ToolCallEnd(call_id, {"dir_path": "src"}),
        ir.Finish("tool_calls"),
    ]


def test_decoder_sample_accumulates_to_response() -> None:
    acc = ResponseAccumulator()
    acc.extend(decode_sse(SSE_SAMPLE, gm.StreamDecoder("gemini-2.5-pro")))
    resp = acc.response()
    assert resp.id == "1a2b3c4d5e6f7a8b"
    assert resp.finish_reason == "tool_calls"
    assert resp.parts[0] == ir.ThinkingPart("**Listing files**")
    call = resp.parts[1]
    assert isinstance(call, ir.ToolCallPart)
    assert (call.name, call.arguments, call.signature) == (
        "list_directory",
        {"dir_path": "src"},
        "CikB0e2Kb7zk...",
    )
    assert resp.usage == ir.Usage(input_tokens=12282, output_tokens=84, reasoning_tokens=70)


def _chunk(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], **extra}


def test_decoder_parts_table() -> None:
    dec = gm.StreamDecoder("gemini-3-pro-preview", {"mcp__fs_ls": "mcp__fs/ls"})
    first = dec.feed(_chunk([{"text": "Hel"}], responseId="resp-1"))
    assert first == [ir.StreamStart("resp-1", "gemini-3-pro-preview"), ir.TextDelta("Hel")]
    assert dec.feed(_chunk([{"thought": True, "text": "plan", "thoughtSignature": "S0"}])) == [
        ir.ThinkingDelta("plan", "S0")
    ]
    # Gemini 3 text part with a signature; a signature-only part; an empty text part
    assert dec.feed(_chunk([{"text": "lo", "thoughtSignature": "S1"}])) == [
        ir.ThinkingDelta("", "S1"),
        ir.TextDelta("lo"),
    ]
    assert dec.feed(_chunk([{"text": "", "thoughtSignature": "S2"}])) == [
        ir.ThinkingDelta("", "S2")
    ]
    assert dec.feed(_chunk([{"text": ""}])) == []
    assert dec.feed(_chunk([{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}])) == [
        ir.ImageOut("image/png", "AAAA")
    ]
    events = dec.feed(
        _chunk([{"functionCall": {"id": "fc-9", "name": "mcp__fs_ls", "args": {}}}], "STOP")
    )
    assert events == [
        ir.ToolCallStart("fc-9", "mcp__fs/ls", None),
        ir.ToolCallDelta("fc-9", "{}"),
        ir.ToolCallEnd("fc-9", {}),
        ir.Finish("tool_calls"),
    ]
    # a second finishReason is not repeated
    assert dec.feed(_chunk([], "STOP")) == []


def test_decoder_parallel_calls_and_usage() -> None:
    dec = gm.StreamDecoder("gemini-2.5-flash")
    events = dec.feed(
        _chunk(
            [
                {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "SIG"},
                {"functionCall": {"name": "b", "args": {"y": "é"}}},
            ],
            "STOP",
            usageMetadata={
                "promptTokenCount": 100,
                "candidatesTokenCount": 20,
                "thoughtsTokenCount": 5,
                "cachedContentTokenCount": 40,
                "totalTokenCount": 125,
            },
        )
    )
    assert isinstance(events[0], ir.StreamStart) and events[0].id.startswith("gen-")
    assert events[0].model == "gemini-2.5-flash"
    assert events[1] == ir.UsageUpdate(ir.Usage(100, 25, 40, 5))
    starts = [e for e in events if isinstance(e, ir.ToolCallStart)]
    assert [(s.name, s.signature) for s in starts] == [("a", "SIG"), ("b", None)]
    assert starts[0].id != starts[1].id
    deltas = [e for e in events if isinstance(e, ir.ToolCallDelta)]
    assert [json.loads(d.arguments) for d in deltas] == [{"x": 1}, {"y": "é"}]
    assert events[-1] == ir.Finish("tool_calls")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
        ("LANGUAGE", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_decoder_finish_reasons(reason: str, expected: str) -> None:
    events = gm.StreamDecoder("m").feed(_chunk([{"text": "x"}], reason))
    assert events[-1] == ir.Finish(expected)  # type: ignore[arg-type]


def test_decoder_blocked_prompt_and_errors() -> None:
    dec = gm.StreamDecoder("m")
    events = dec.feed({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "r"})
    assert events == [ir.StreamStart("r", "m"), ir.Finish("content_filter")]
    dec = gm.StreamDecoder("m")
    events = dec.feed({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    assert events[1:] == [ir.StreamError("quota", 429, "RESOURCE_EXHAUSTED")]
    # wrong types are ignored
    dec = gm.StreamDecoder("m")
    assert dec.feed("junk") == []  # type: ignore[arg-type]
    assert len(dec.feed({"candidates": "x", "usageMetadata": [1]})) == 1  # StreamStart only
    assert (
        dec.feed({"candidates": [{"content": {"parts": [1, None, {"functionCall": "x"}]}}]}) == []
    )
    # an un-unwrapped Code Assist chunk is tolerated
    dec = gm.StreamDecoder("m")
    events = dec.feed({"response": _chunk([{"text": "hi"}]), "traceId": "t"})
    assert events == [ir.StreamStart("t", "m"), ir.TextDelta("hi")]


# ================================================================ render_request


def _parallel_conversation() -> ir.Request:
    return ir.Request(
        model="gemini-2.5-pro",
        system=["You are Claude Code.", "Be terse."],
        messages=[
            ir.Message("user", [ir.TextPart("compare a.txt and b.png")]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingPart("I should read both", None),
                    ir.ThinkingPart("", "REAL-SIG"),  # what the Anthropic parser yields
                    ir.ToolCallPart("toolu_1", "Read", {"file_path": "a.txt"}),
                    ir.ToolCallPart("toolu_2", "Read", {"file_path": "b.png"}),
                ],
            ),
            # results in the opposite order, then a follow-up user message with text
            ir.Message(
                "user",
                [
                    ir.ToolResultPart(
                        "toolu_2",
                        [ir.TextPart("an image"), ir.ImagePart("image/png", data="iVBOR")],
                    ),
                ],
            ),
            ir.Message(
                "user",
                [ir.ToolResultPart("toolu_1", [ir.TextPart("alpha")]), ir.TextPart("now compare")],
            ),
            ir.Message("assistant", [ir.TextPart("They differ.")]),
            ir.Message("system", [ir.TextPart("mid-conversation reminder")]),
            ir.Message("user", [ir.TextPart("thanks")]),
        ],
        tools=[
            ir.Tool(
                "Read",
                "Read a file",
                {"type": "object", "properties": {"file_path": {"type": "string"}}},
            )
        ],
    )


def test_render_parallel_tool_calls() -> None:
    body, names = gm.render_request(_parallel_conversation())
    assert names == {"Read": "Read"}
    assert body["systemInstruction"] == {
        "role": "user",
        "parts": [{"text": "You are Claude Code.\n\nBe terse."}],
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "compare a.txt and b.png"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "Read", "args": {"file_path": "a.txt"}},
                    "thoughtSignature": "REAL-SIG",
                },
                {"functionCall": {"name": "Read", "args": {"file_path": "b.png"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "Read", "response": {"output": "alpha"}}},
                {"functionResponse": {"name": "Read", "response": {"output": "an image"}}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                {"text": "now compare"},
            ],
        },
        {"role": "model", "parts": [{"text": "They differ."}]},
        {"role": "user", "parts": [{"text": "mid-conversation reminder"}, {"text": "thanks"}]},
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "Read",
                    "description": "Read a file",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"file_path": {"type": "string"}},
                    },
                }
            ]
        }
    ]
    assert "toolConfig" not in body
    assert "generationConfig" not in body


@pytest.mark.parametrize(
    ("parts", "expected_sigs"),
    [
        # no signature known: sentinel on the first call only
        (
            [ir.ToolCallPart("1", "f", {}), ir.ToolCallPart("2", "f", {})],
            [SENTINEL, None],
        ),
        # the call's own signature wins
        (
            [ir.ThinkingPart("", "VEhJTks="), ir.ToolCallPart("1", "f", {}, "T1dO")],
            ["T1dO"],
        ),
        # a thinking signature travels only to the call right after it
        (
            [ir.ThinkingPart("", "VEhJTks="), ir.TextPart("text"), ir.ToolCallPart("1", "f", {})],
            [SENTINEL],
        ),
        (
            [
                ir.ToolCallPart("1", "f", {}),
                ir.ThinkingPart("t", "VDI="),
                ir.ToolCallPart("2", "f", {}),
            ],
            [SENTINEL, "VDI="],
        ),
        # a redacted block's payload is not a Gemini signature
        (
            [ir.ThinkingPart("", "opaque", redacted=True), ir.ToolCallPart("1", "f", {})],
            [SENTINEL],
        ),
        # another upstream's opaque token (Codex encrypted reasoning) is not a Gemini signature
        (
            [ir.ThinkingPart("s", "codex-rs:gAAAA"), ir.ToolCallPart("1", "f", {})],
            [SENTINEL],
        ),
        # a second call with its own signature keeps it
        (
            [ir.ToolCallPart("1", "f", {}, "QQ=="), ir.ToolCallPart("2", "f", {}, "Qg==")],
            ["QQ==", "Qg=="],
        ),
    ],
)
def test_render_signature_rules(parts: list[ir.Part], expected_sigs: list[str | None]) -> None:
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[ir.Message("user", [ir.TextPart("go")]), ir.Message("assistant", parts)],
    )
    body, _ = gm.render_request(req)
    model = body["contents"][1]
    assert model["role"] == "model"
    calls = [p for p in model["parts"] if "functionCall" in p]
    assert [p.get("thoughtSignature") for p in calls] == expected_sigs
    assert all("thought" not in p for p in model["parts"])  # thought text is never replayed


def test_render_sentinel_per_model_turn_after_merge() -> None:
    # two adjacent assistant messages merge into one model content: one sentinel in total
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[
            ir.Message("user", [ir.TextPart("go")]),
            ir.Message("assistant", [ir.ToolCallPart("1", "f", {})]),
            ir.Message("assistant", [ir.ToolCallPart("2", "g", {})]),
            ir.Message(
                "user",
                [
                    ir.ToolResultPart("2", [ir.TextPart("G")]),
                    ir.ToolResultPart("1", [ir.TextPart("F")]),
                ],
            ),
            ir.Message("assistant", [ir.ToolCallPart("3", "f", {})]),
        ],
    )
    body, _ = gm.render_request(req)
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model"]
    assert [p.get("thoughtSignature") for p in contents[1]["parts"]] == [SENTINEL, None]
    assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == ["f", "g"]
    assert contents[3]["parts"][0]["thoughtSignature"] == SENTINEL


def test_render_tool_results_names_errors_images() -> None:
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[
            ir.Message("user", [ir.TextPart("x")]),
            ir.Message("assistant", [ir.ToolCallPart("c1", "mcp__srv/do it", {"a": 1})]),
            ir.Message(
                "user",
                [
                    ir.ToolResultPart(
                        "c1", [ir.TextPart("line1"), ir.TextPart("line2")], is_error=True
                    ),
                    ir.ToolResultPart(
                        "orphan", [ir.ImagePart("image/jpeg", url="https://x/y.jpg")]
                    ),
                    ir.ToolResultPart("orphan2", [], name="named"),
                    ir.ImagePart("image/png", url="data:image/gif;base64,R0lG"),
                    ir.TextPart(""),
                ],
            ),
        ],
    )
    body, names = gm.render_request(req)
    assert names == {"mcp__srv_do_it": "mcp__srv/do it", "unknown": "unknown", "named": "named"}
    assert body["contents"][1]["parts"][0]["functionCall"]["name"] == "mcp__srv_do_it"
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "mcp__srv_do_it", "response": {"error": "line1\nline2"}}},
        {"functionResponse": {"name": "unknown", "response": {"output": ""}}},
        {"functionResponse": {"name": "named", "response": {"output": ""}}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/y.jpg"}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
    ]


def test_render_name_collisions_stay_distinct() -> None:
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[ir.Message("user", [ir.TextPart("x")])],
        tools=[ir.Tool("a/b"), ir.Tool("a b"), ir.Tool("a_b")],
        tool_choice=ir.ToolChoice("tool", "a b"),
    )
    body, names = gm.render_request(req)
    declared = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    assert declared == ["a_b", "a_b_2", "a_b_3"]
    assert names == {"a_b": "a/b", "a_b_2": "a b", "a_b_3": "a_b"}
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a_b_2"]}
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ir.ToolChoice("auto"), {"functionCallingConfig": {"mode": "AUTO"}}),
        (ir.ToolChoice("none"), {"functionCallingConfig": {"mode": "NONE"}}),
        (ir.ToolChoice("required"), {"functionCallingConfig": {"mode": "ANY"}}),
        (
            ir.ToolChoice("tool", "f"),
            {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        ),
    ],
)
def test_render_tool_choice(choice: ir.ToolChoice, expected: dict[str, Any]) -> None:
    req = ir.Request(
        model="m",
        messages=[ir.Message("user", [ir.TextPart("x")])],
        tools=[ir.Tool("f")],
        tool_choice=choice,
    )
    assert gm.render_request(req)[0]["toolConfig"] == expected


def test_render_generation_config() -> None:
    req = ir.Request(
        model="gemini-3-flash-preview",
        messages=[ir.Message("user", [ir.TextPart("x")])],
        max_tokens=1000,
        temperature=0.0,
        top_p=0.9,
        top_k=40,
        stop=["END"],
        seed=3,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        response_schema={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": False,
        },
        thinking=ir.Thinking(effort="low"),
        parallel_tool_calls=False,
    )
    body, _ = gm.render_request(req)
    assert body["generationConfig"] == {
        "temperature": 0.0,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 1000,
        "seed": 3,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "stopSequences": ["END"],
        "responseJsonSchema": {"type": "object", "additionalProperties": False},
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": True},
    }
    assert req.dropped == ["parallel_tool_calls=false: Gemini has no such switch; ignored"]


# ================================================================ parse_request


def test_parse_gemini_cli_followup() -> None:
    req = gm.parse_request(GEMINI_CLI_FOLLOWUP["request"], "gemini-2.5-flash")
    assert req.model == "gemini-2.5-flash"
    assert req.system == ["You are an interactive CLI agent..."]
    assert req.messages == [
        ir.Message("user", [ir.TextPart("Read /tmp/w/hello.txt")]),
        ir.Message(
            "assistant",
            [
                ir.ToolCallPart(
                    "read_file_1764150000000_0",
                    "read_file",
                    {"file_path": "/tmp/w/hello.txt"},
                    SENTINEL,
                )
            ],
        ),
        ir.Message(
            "user",
            [
                ir.ToolResultPart(
                    "read_file_1764150000000_0", [ir.TextPart("hello from a file\n")], "read_file"
                )
            ],
        ),
    ]
    assert req.tools == [
        ir.Tool("read_file", READ_FILE_DECL["description"], READ_FILE_DECL["parametersJsonSchema"])
    ]
    assert (req.temperature, req.top_p, req.top_k) == (1, 0.95, 64)
    assert req.thinking == ir.Thinking(budget=8192, include_thoughts=True)
    assert req.dropped == []


def test_parse_google_genai_mixed_case_body() -> None:
    before = copy.deepcopy(GENAI_BODY)
    req = gm.parse_request(GENAI_BODY, "gemini-2.5-flash")
    assert before == GENAI_BODY
    assert req.messages[0] == ir.Message(
        "user", [ir.TextPart("what is this"), ir.ImagePart("image/png", data="iVBORw==")]
    )
    assert req.messages[1] == ir.Message(
        "assistant", [ir.ToolCallPart("fc_1", "get_weather", {"city": "Paris"}, "c2ln")]
    )
    # the response has no id: bound to the call by name
    assert req.messages[2] == ir.Message(
        "user", [ir.ToolResultPart("fc_1", [ir.TextPart("sunny")], "get_weather")]
    )
    assert req.system == ["be brief"]
    assert req.tools[0].name == "get_weather"
    assert (
        req.tools[0].parameters
        == GENAI_BODY["tools"][0]["functionDeclarations"][0]["parameters_json_schema"]
    )
    assert req.tool_choice == ir.ToolChoice("tool", "get_weather")
    assert (req.temperature, req.max_tokens, req.stop, req.seed) == (0.2, 100, ["END"], 7)
    assert req.response_mime_type == "text/plain"
    assert req.thinking == ir.Thinking(budget=1024, include_thoughts=True)
    assert req.extras["gemini"] == {"safetySettings": GENAI_BODY["safetySettings"]}
    assert req.dropped == ["safetySettings: kept for Gemini upstreams only"]


def test_parse_ids_by_position_and_name() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"thought": True, "text": "think", "thoughtSignature": "TS"},
                    {"functionCall": {"name": "a", "args": {"n": 1}}},
                    {"functionCall": {"name": "b"}},
                    {"functionCall": {"name": "a", "args": {"n": 2}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "a", "response": {"output": "one"}}},
                    {"functionResponse": {"name": "a", "response": {"error": "two failed"}}},
                    {"functionResponse": {"name": "b", "response": {"result": {"k": 1}}}},
                    {"functionResponse": {"name": "zzz", "response": {"output": "?"}}},
                ],
            },
        ]
    }
    req = gm.parse_request(body, "m")
    assert req.messages[1].parts == [
        ir.ThinkingPart("think", "TS"),
        ir.ToolCallPart("call_0", "a", {"n": 1}),
        ir.ToolCallPart("call_1", "b", {}),
        ir.ToolCallPart("call_2", "a", {"n": 2}),
    ]
    assert req.messages[2].parts == [
        ir.ToolResultPart("call_0", [ir.TextPart("one")], "a"),
        ir.ToolResultPart("call_2", [ir.TextPart("two failed")], "a", is_error=True),
        ir.ToolResultPart("call_1", [ir.TextPart('{"result": {"k": 1}}')], "b"),
        # no call to answer: a fresh id
        ir.ToolResultPart("call_3", [ir.TextPart("?")], "zzz"),
    ]
    # stable: the same body gives the same ids
    assert gm.parse_request(body, "m").messages == req.messages


def test_parse_shorthands_extras_and_notes() -> None:
    body = {
        "contents": "hello",
        "system_instruction": "sys",
        "tools": [
            {"googleSearch": {}},
            {
                "code_execution": {},
                "function_declarations": [
                    {
                        "name": "f",
                        "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}},
                    }
                ],
            },
        ],
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
        "generation_config": {
            "max_output_tokens": 5,
            "response_mime_type": "application/json",
            "response_schema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
            "thinking_config": {"thinking_level": "high"},
            "response_modalities": ["TEXT"],
            "candidate_count": 1,
        },
        "cachedContent": "cachedContents/abc",
        "labels": {"a": "b"},
        "whatever": 1,
    }
    req = gm.parse_request(body, "gemini-3-pro-preview")
    assert req.messages == [ir.Message("user", [ir.TextPart("hello")])]
    assert req.system == ["sys"]
    assert req.tools == [
        ir.Tool("f", "", {"type": "object", "properties": {"x": {"type": "string"}}})
    ]
    assert req.extras["gemini_tools"] == [{"googleSearch": {}}, {"codeExecution": {}}]
    assert req.tool_choice == ir.ToolChoice("none")
    assert req.max_tokens == 5
    assert req.response_schema == {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert req.thinking == ir.Thinking(effort="high")
    assert req.extras["gemini"] == {
        "generationConfig": {"responseModalities": ["TEXT"], "candidateCount": 1},
        "cachedContent": "cachedContents/abc",
        "labels": {"a": "b"},
    }
    assert req.dropped == [
        "tools[0].googleSearch: Gemini built-in tool, kept for Gemini upstreams only",
        "tools[1].codeExecution: Gemini built-in tool, kept for Gemini upstreams only",
        "generationConfig.candidateCount, responseModalities: kept for Gemini upstreams only",
        "cachedContent: kept for Gemini upstreams only",
        "labels: kept for Gemini upstreams only",
        "whatever: unknown request field ignored",
    ]
    # and they come back out when rendered for a Gemini upstream
    out, _ = gm.render_request(req)
    assert out["tools"][1:] == [{"googleSearch": {}}, {"codeExecution": {}}]
    assert out["generationConfig"]["responseModalities"] == ["TEXT"]
    assert out["cachedContent"] == "cachedContents/abc"


def test_parse_single_content_dict_and_unknown_parts() -> None:
    body = {
        "contents": {
            "role": "user",
            "parts": [
                {"text": "run"},
                {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                {"code_execution_result": {"outcome": "OUTCOME_OK"}},
                {"videoMetadata": {}},
                {"file_data": {"mime_type": "application/pdf", "file_uri": "gs://b/f.pdf"}},
                {"weird": 1},
            ],
        }
    }
    req = gm.parse_request(body, "m")
    assert req.messages == [
        ir.Message(
            "user", [ir.TextPart("run"), ir.ImagePart("application/pdf", url="gs://b/f.pdf")]
        )
    ]
    assert req.dropped == [
        "contents[0].parts[1]: executableCode part dropped (not supported by this upstream)",
        "contents[0].parts[2]: codeExecutionResult part dropped (not supported by this upstream)",
        "contents[0].parts[3]: videoMetadata part dropped (not supported by this upstream)",
        "contents[0].parts[5]: unrecognised part dropped",
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": 5}, "contents"),
        ({"contents": [5]}, "contents[0]"),
        ({"contents": [{"role": "bot", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": 3}]}, "contents[0].parts"),
        ({"contents": [{"role": "user", "parts": [{"text": "a"}, 7]}]}, "contents[0].parts[1]"),
        ({"contents": [{"parts": [{"text": 1}]}]}, "contents[0].parts[0].text"),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "x"}}]}]},
            "contents[0].parts[0].inlineData.data",
        ),
        ({"contents": [{"parts": [{"inline_data": "x"}]}]}, "contents[0].parts[0].inlineData"),
        (
            {"contents": [{"parts": [{"functionCall": {"args": {}}}]}]},
            "contents[0].parts[0].functionCall",
        ),
        (
            {"contents": [{"parts": [{"functionCall": {"name": "f", "args": []}}]}]},
            "contents[0].parts[0].functionCall.args",
        ),
        (
            {"contents": [{"parts": [{"functionResponse": {}}]}]},
            "contents[0].parts[0].functionResponse",
        ),
        (
            {"contents": "x", "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
        ),
        (
            {"contents": "x", "generation_config": {"max_output_tokens": 1.5}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": "x", "generationConfig": {"stopSequences": [1]}},
            "generationConfig.stopSequences",
        ),
        ({"contents": "x", "generationConfig": []}, "generationConfig"),
        ({"contents": "x", "tools": [1]}, "tools[0]"),
        (
            {"contents": "x", "tools": [{"functionDeclarations": [{"description": "no name"}]}]},
            "tools[0].functionDeclarations[0].name",
        ),
        ({"contents": "x", "systemInstruction": 5}, "systemInstruction"),
    ],
)
def test_parse_errors_name_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(ir.RequestError) as exc:
        gm.parse_request(body, "m")
    assert exc.value.param == param
    assert exc.value.status == 400


# ================================================================ prepare_passthrough


def test_passthrough_google_genai_body() -> None:
    before = copy.deepcopy(GENAI_BODY)
    out = gm.prepare_passthrough(GENAI_BODY)
    assert before == GENAI_BODY  # not mutated
    assert out["contents"][0]["parts"][1] == {
        "inlineData": {"data": "iVBORw==", "mimeType": "image/png"}
    }
    # a real signature is kept, not replaced by the sentinel
    assert out["contents"][1]["parts"][0]["thoughtSignature"] == "c2ln"
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "description": "w",
                    "name": "get_weather",
                    "responseJsonSchema": {"type": "string"},
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert out["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 1024,
    }
    assert out["safetySettings"] == GENAI_BODY["safetySettings"]
    assert out["toolConfig"] == GENAI_BODY["toolConfig"]
    assert out["systemInstruction"] == GENAI_BODY["systemInstruction"]


def test_passthrough_gemini_cli_followup_keeps_everything() -> None:
    request = GEMINI_CLI_FOLLOWUP["request"]
    out = gm.prepare_passthrough(request)
    assert out == request  # already clean: ids, sentinel, session_id all kept


def test_passthrough_normalises_and_adds_sentinel() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "calling"},
                    {"function_call": {"name": "f", "args": {"a_b": 1}, "id": "x1"}},
                    {"functionCall": {"name": "g", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"function_response": {"name": "f", "id": "x1", "response": {"output": "1"}}}
                ],
            },
        ],
        "system_instruction": {"parts": [{"text": "s"}]},
        "generation_config": {
            "max_output_tokens": 10,
            "response_json_schema": {
                "$schema": "x",
                "type": "object",
                "additionalProperties": False,
            },
            "thinking_config": {"thinking_level": "LOW", "include_thoughts": False},
            "response_modalities": ["TEXT"],
        },
        "tools": [
            {
                "function_declarations": [
                    {
                        "name": "f",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"a_b": {"type": "INTEGER", "format": "int64"}},
                            "additionalProperties": False,
                        },
                    }
                ]
            },
            {"google_search": {}},
        ],
        "tool_config": {"function_calling_config": {"mode": "AUTO"}},
        "session_id": "s-1",
        "someFutureField": {"keep_me": 1},
    }
    out = gm.prepare_passthrough(body)
    assert out["contents"][1]["parts"] == [
        {"text": "calling"},
        {
            "functionCall": {"name": "f", "args": {"a_b": 1}, "id": "x1"},
            "thoughtSignature": SENTINEL,
        },
        {"functionCall": {"name": "g", "args": {}}},
    ]
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "id": "x1", "response": {"output": "1"}}}
    ]
    assert out["systemInstruction"] == {"parts": [{"text": "s"}]}
    assert out["generationConfig"] == {
        "maxOutputTokens": 10,
        "responseJsonSchema": {"type": "object", "additionalProperties": False},
        "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": False},
        "responseModalities": ["TEXT"],
    }
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"a_b": {"type": "integer"}}},
                }
            ]
        },
        {"googleSearch": {}},
    ]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert out["session_id"] == "s-1"
    assert out["someFutureField"] == {"keep_me": 1}
    assert "system_instruction" not in out and "generation_config" not in out


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("x", None),
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": 3}, "contents"),
        ({"contents": [3]}, "contents[0]"),
        ({"contents": [{"parts": 3}]}, "contents[0].parts"),
        ({"contents": [{"parts": [3]}]}, "contents[0].parts[0]"),
        ({"contents": "x", "generationConfig": "y"}, "generationConfig"),
        ({"contents": "x", "tools": [3]}, "tools[0]"),
        (
            {"contents": "x", "tools": [{"functionDeclarations": {}}]},
            "tools[0].functionDeclarations",
        ),
    ],
)
def test_passthrough_errors(body: Any, param: str | None) -> None:
    with pytest.raises(ir.RequestError) as exc:
        gm.prepare_passthrough(body)
    assert exc.value.param == param


# ================================================================ render_response / StreamEncoder


def _genai_client(handler: Any) -> genai.Client:
    return genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url="http://127.0.0.1:9", client_args={"transport": httpx.MockTransport(handler)}
        ),
    )


SAMPLE_RESPONSE = ir.Response(
    id="resp-1",
    model="gemini-2.5-pro",
    parts=[
        ir.ThinkingPart("pondering", None),
        ir.TextPart("Checking."),
        ir.ThinkingPart("", "U0lH"),
        ir.ToolCallPart("call_abc", "get_weather", {"city": "Paris"}),
    ],
    finish_reason="tool_calls",
    usage=ir.Usage(input_tokens=10, output_tokens=7, cached_tokens=2, reasoning_tokens=3),
)


def test_render_response_in_the_code_assist_envelope() -> None:
    body = gm.render_response(SAMPLE_RESPONSE)
    assert gm.render_response(SAMPLE_RESPONSE, envelope=True) == {"response": body}


def test_render_response_shape_and_sdk() -> None:
    body = gm.render_response(SAMPLE_RESPONSE)
    assert body == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"thought": True, "text": "pondering"},
                        {"text": "Checking."},
                        {
                            "functionCall": {
                                "name": "get_weather",
                                "args": {"city": "Paris"},
                                "id": "call_abc",
                            },
                            "thoughtSignature": "U0lH",
                        },
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 4,
            "totalTokenCount": 17,
            "thoughtsTokenCount": 3,
            "cachedContentTokenCount": 2,
        },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "resp-1",
    }
    client = _genai_client(lambda request: httpx.Response(200, json=body))
    resp = client.models.generate_content(model="gemini-2.5-pro", contents="weather?")
    assert resp.text == "Checking."
    assert resp.function_calls is not None
    fc = resp.function_calls[0]
    assert (fc.name, fc.args, fc.id) == ("get_weather", {"city": "Paris"}, "call_abc")
    assert resp.usage_metadata is not None and resp.usage_metadata.thoughts_token_count == 3


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", "STOP"),
        ("tool_calls", "STOP"),
        ("length", "MAX_TOKENS"),
        ("content_filter", "SAFETY"),
        ("error", "OTHER"),
    ],
)
def test_render_response_finish(reason: str, expected: str) -> None:
    resp = ir.Response(id="r", model="m", parts=[ir.TextPart("x")], finish_reason=reason)  # type: ignore[arg-type]
    assert gm.render_response(resp)["candidates"][0]["finishReason"] == expected


def _frames(raw: list[bytes]) -> list[Any]:
    for b in raw:
        assert b.startswith(b"data: ") and b.endswith(b"\n\n") and b != b""
    return [json.loads(b[6:]) for b in raw]


STREAM_EVENTS: list[ir.Event] = [
    ir.UsageUpdate(ir.Usage(5, 0)),  # usage before start is tolerated
    ir.StreamStart("resp-9", "gpt-5"),
    ir.ThinkingDelta("hmm", None),
    ir.TextDelta("Hel"),
    ir.TextDelta(""),
    ir.TextDelta("lo"),
    ir.ThinkingDelta("", "U0lH"),
    ir.ToolCallStart("call_1", "get_weather", None),
    ir.ToolCallDelta("call_1", '{"city":'),
    ir.ToolCallDelta("call_1", '"Paris"}'),
    ir.ToolCallEnd("call_1", {"city": "Paris"}),
    ir.UsageUpdate(ir.Usage(5, 9, 0, 2)),
    ir.Finish("tool_calls"),
    ir.Finish("stop"),  # a late stop never hides tool calls
]


def test_stream_encoder_frames() -> None:
    enc = gm.StreamEncoder("gpt-5")
    raw: list[bytes] = []
    for ev in STREAM_EVENTS:
        raw.extend(enc.encode(ev))
    raw.extend(enc.finish())
    assert enc.finish() == [] and enc.encode(ir.TextDelta("late")) == []
    frames = _frames(raw)
    base = {"modelVersion": "gpt-5", "responseId": "resp-9"}

    def chunk(parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}], **base}

    assert frames == [
        chunk([{"thought": True, "text": "hmm"}]),
        chunk([{"text": "Hel"}]),
        chunk([{"text": "lo"}]),
        chunk(
            [
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris"},
                        "id": "call_1",
                    },
                    "thoughtSignature": "U0lH",
                }
            ]
        ),
        {
            "candidates": [{"finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": 5,
                "candidatesTokenCount": 7,
                "totalTokenCount": 14,
                "thoughtsTokenCount": 2,
            },
            **base,
        },
    ]


def test_stream_encoder_read_by_google_genai() -> None:
    enc = gm.StreamEncoder("gpt-5")
    raw: list[bytes] = []
    for ev in STREAM_EVENTS:
        raw.extend(enc.encode(ev))
    raw.extend(enc.finish())
    payload = b"".join(raw)
    client = _genai_client(
        lambda request: httpx.Response(
            200, content=payload, headers={"content-type": "text/event-stream"}
        )
    )
    chunks = list(client.models.generate_content_stream(model="gpt-5", contents="hi"))
    text = "".join(c.text or "" for c in chunks)
    assert text == "Hello"
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [(fc.name, fc.args, fc.id) for fc in calls] == [
        ("get_weather", {"city": "Paris"}, "call_1")
    ]
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP  # type: ignore[index]
    assert chunks[-1].usage_metadata.prompt_token_count == 5  # type: ignore[union-attr]


def test_stream_encoder_cut_stream_and_errors() -> None:
    enc = gm.StreamEncoder("m")
    assert _frames(enc.encode(ir.TextDelta("x")))[0]["candidates"][0]["content"]["parts"] == [
        {"text": "x"}
    ]
    out = _frames(enc.finish())
    assert out == [
        {
            "error": {
                "code": 502,
                "message": "upstream stream ended before completion",
                "status": "UNAVAILABLE",
            }
        }
    ]
    assert enc.finish() == []

    enc = gm.StreamEncoder("m")
    assert _frames(enc.encode(ir.StreamError("quota gone", 429, "RESOURCE_EXHAUSTED"))) == [
        {"error": {"code": 429, "message": "quota gone", "status": "RESOURCE_EXHAUSTED"}}
    ]
    assert enc.encode(ir.TextDelta("x")) == [] and enc.finish() == [] and enc.error("again") == []

    enc = gm.StreamEncoder("m")
    assert _frames(enc.error("boom")) == [
        {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}
    ]

    # a call that never got its End is still delivered at finish, as is a lone signature
    enc = gm.StreamEncoder("m")
    enc.encode(ir.ToolCallStart("c", "f", None))
    enc.encode(ir.ToolCallDelta("c", '{"a":1}'))
    enc.encode(ir.ThinkingDelta("", "U0lH"))
    enc.encode(ir.Finish("tool_calls"))
    last = _frames(enc.finish())[-1]
    assert last["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c"}},
        {"text": "", "thoughtSignature": "U0lH"},
    ]


# ================================================================ Code Assist stream, Gemini client
# The live path is pipeline.GeminiPassthrough(unwrap=True); these use this module's real sample.


CUT_FRAME = gm.error_body(502, "upstream stream ended early")


def _unwrapped(chunks: list[bytes]) -> tuple[list[bytes], bool]:
    """The passthrough's frames, and whether the stream was complete (no error frame added for
    a cut at the end)."""
    u = GeminiPassthrough(unwrap=True)
    out: list[bytes] = []
    for c in chunks:
        out.extend(u(c))
    out.extend(u(b""))
    return out, not out or _frames(out[-1:]) != [CUT_FRAME]


def test_unwrapper_sample_any_split() -> None:
    whole, finished = _unwrapped([SSE_SAMPLE])
    assert finished
    frames = _frames(whole)
    assert frames[0]["candidates"][0]["content"]["parts"] == [
        {"thought": True, "text": "**Listing files**"}
    ]
    assert frames[0]["responseId"] == "1a2b3c4d5e6f7a8b"  # from traceId
    assert frames[1]["candidates"][0]["finishReason"] == "STOP"
    assert len(frames) == 2
    for i in range(1, len(SSE_SAMPLE)):
        assert _unwrapped([SSE_SAMPLE[:i], SSE_SAMPLE[i:]]) == (whole, True)
    # CRLF framing and a last event without its blank line
    crlf = SSE_SAMPLE.replace(b"\n", b"\r\n")
    assert _unwrapped([crlf]) == (whole, True)
    assert _unwrapped([SSE_SAMPLE.rstrip(b"\n")]) == (whole, True)


def test_unwrapper_cut_stream_and_errors() -> None:
    first = SSE_SAMPLE.split(b"\n\n")[0] + b"\n\n"
    out, finished = _unwrapped([first, b'data: {"traceId":"only"}\n\n', b"data: not json\n\n"])
    # the frame without `response` and the non-JSON one yield nothing; the cut ends in an error
    assert not finished
    assert len(out) == 2
    assert _frames(out[1:]) == [CUT_FRAME]
    out, finished = _unwrapped(
        [b'data: {"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}\n\n']
    )
    assert finished
    assert _frames(out) == [{"error": {"code": 503, "message": "x", "status": "UNAVAILABLE"}}]
    out, finished = _unwrapped(
        [b'data: {"response":{"promptFeedback":{"blockReason":"SAFETY"}}}\n\n']
    )
    assert finished
    assert _frames(out) == [{"promptFeedback": {"blockReason": "SAFETY"}}]


# ================================================================ errors, models


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (418, "FAILED_PRECONDITION"),
        (599, "INTERNAL"),
    ],
)
def test_error_body(status: int, name: str) -> None:
    assert gm.error_body(status, "msg") == {
        "error": {"code": status, "message": "msg", "status": name}
    }


def test_error_body_explicit_status() -> None:
    assert (
        gm.error_body(400, "m", "FAILED_PRECONDITION")["error"]["status"] == "FAILED_PRECONDITION"
    )


QUOTA_ERROR = {
    "error": {
        "code": 429,
        "message": "You have exhausted your capacity on this model. "
        "Your quota will reset after 0s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "QUOTA_EXHAUSTED",
                "domain": "cloudcode-pa.googleapis.com",
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.539477544s"},
        ],
    }
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            json.dumps(QUOTA_ERROR).encode(),
            (
                QUOTA_ERROR["error"]["message"],
                "RESOURCE_EXHAUSTED",
                QUOTA_ERROR["error"]["details"],
            ),
        ),
        (
            json.dumps([QUOTA_ERROR]).encode(),
            (
                QUOTA_ERROR["error"]["message"],
                "RESOURCE_EXHAUSTED",
                QUOTA_ERROR["error"]["details"],
            ),
        ),
        (
            json.dumps(
                {
                    "error": {
                        "code": 400,
                        "message": json.dumps(
                            {"error": {"message": "inner", "status": "INVALID_ARGUMENT"}}
                        ),
                    }
                }
            ).encode(),
            ("inner", "INVALID_ARGUMENT", []),
        ),
        (
            b'{"error":"invalid_grant","error_description":"Token has been expired or revoked."}',
            ("Token has been expired or revoked.", None, []),
        ),
        (b"<html>502 Bad Gateway</html>", ("<html>502 Bad Gateway</html>", None, [])),
        (b"", ("upstream error", None, [])),
        (b"\xff\xfe", ("\ufffd\ufffd", None, [])),
        (b"[]", ("[]", None, [])),
        (b'{"error":{"message":5}}', ("upstream error", None, [])),
        (b"null", ("upstream error", None, [])),
    ],
)
def test_parse_error(body: bytes, expected: tuple[str, str | None, list[Any]]) -> None:
    assert google_errors.parse_error(body) == expected


def test_models_list() -> None:
    out = gm.models_list(["gemini-2.5-pro", "models/gemini-3-pro-preview", "gpt-5"])
    assert [m["name"] for m in out["models"]] == [
        "models/gemini-2.5-pro",
        "models/gemini-3-pro-preview",
        "models/gpt-5",
    ]
    assert out["models"][0] == {
        "name": "models/gemini-2.5-pro",
        "version": "001",
        "displayName": "Gemini 2.5 Pro",
        "description": "gemini-2.5-pro served by cliproxy",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        "thinking": True,
    }
    assert (out["models"][2]["inputTokenLimit"], out["models"][2]["outputTokenLimit"]) == (
        400000,
        128000,
    )
    assert gm.model_object("gemini-3-pro-preview")["displayName"] == "Gemini 3 Pro Preview"
    # the SDK reads the list
    client = _genai_client(lambda request: httpx.Response(200, json=out))
    names = [m.name for m in client.models.list()]
    assert names == ["models/gemini-2.5-pro", "models/gemini-3-pro-preview", "models/gpt-5"]


# ================================================================ property tests

_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
)
_keys = st.sampled_from(
    [
        "contents",
        "role",
        "parts",
        "text",
        "thought",
        "thoughtSignature",
        "thought_signature",
        "functionCall",
        "function_call",
        "functionResponse",
        "function_response",
        "name",
        "args",
        "id",
        "response",
        "output",
        "error",
        "inlineData",
        "inline_data",
        "mimeType",
        "mime_type",
        "data",
        "fileData",
        "fileUri",
        "systemInstruction",
        "system_instruction",
        "tools",
        "functionDeclarations",
        "function_declarations",
        "parameters",
        "parametersJsonSchema",
        "parameters_json_schema",
        "toolConfig",
        "functionCallingConfig",
        "mode",
        "allowedFunctionNames",
        "generationConfig",
        "generation_config",
        "temperature",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "thinkingConfig",
        "thinkingBudget",
        "thinkingLevel",
        "includeThoughts",
        "responseJsonSchema",
        "responseSchema",
        "type",
        "properties",
        "candidates",
        "content",
        "finishReason",
        "usageMetadata",
        "promptTokenCount",
        "promptFeedback",
        "blockReason",
        "model",
        "user",
        "STOP",
    ]
)
_json = st.recursive(
    _scalar | st.sampled_from(["user", "model", "STOP", "HIGH", "ANY", "object"]),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(_keys, c, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_parse_request_raises_only_request_error(body: Any) -> None:
    try:
        req = gm.parse_request(body, "gemini-2.5-pro")
    except ir.RequestError:
        return
    gm.render_request(req)  # whatever parsed also renders


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_prepare_passthrough_raises_only_request_error(body: Any) -> None:
    before = copy.deepcopy(body)
    with contextlib.suppress(ir.RequestError):
        gm.prepare_passthrough(body)
    assert body == before


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, max_size=5))
def test_decoder_never_raises(objs: list[Any]) -> None:
    dec = gm.StreamDecoder("m", {"a": "b"})
    for obj in objs:
        assert isinstance(dec.feed(obj), list)
    assert dec.finish() == []


_text = st.text(max_size=5)
_events = st.one_of(
    st.builds(ir.StreamStart, _text, _text),
    st.builds(ir.TextDelta, _text),
    st.builds(ir.ThinkingDelta, _text, st.none() | _text),
    st.builds(ir.ToolCallStart, st.sampled_from(["a", "b"]), _text, st.none() | _text),
    st.builds(ir.ToolCallDelta, st.sampled_from(["a", "b"]), _text),
    st.builds(
        ir.ToolCallEnd, st.sampled_from(["a", "b"]), st.dictionaries(_text, _scalar, max_size=2)
    ),
    st.builds(ir.ImageOut, _text, _text),
    st.builds(
        ir.UsageUpdate,
        st.builds(
            ir.Usage, st.integers(0, 9), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)
        ),
    ),
    st.builds(
        ir.Finish, st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error"])
    ),
    st.builds(ir.StreamError, _text, st.integers(400, 599)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_events, max_size=12))
def test_encoder_never_raises(events: list[ir.Event]) -> None:
    enc = gm.StreamEncoder("m")
    out: list[bytes] = []
    for ev in events:
        out.extend(enc.encode(ev))
    out.extend(enc.finish())
    frames = _frames(out)
    # the stream always ends with a finish chunk or an error, exactly once
    assert frames
    last = frames[-1]
    assert "error" in last or last["candidates"][0].get("finishReason")
    assert (
        sum(1 for f in frames if "error" in f or f.get("candidates", [{}])[0].get("finishReason"))
        == 1
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60) | _json.map(lambda v: json.dumps(v).encode()))
def test_parse_error_never_raises(body: bytes) -> None:
    message, status, details = google_errors.parse_error(body)
    assert isinstance(message, str) and (status is None or isinstance(status, str))
    assert isinstance(details, list)


@pytest.mark.parametrize(
    ("sig", "kept"),
    [
        ("U0lH", True),
        ("c2ln", True),
        ("YQ", True),
        ("gAAAAABo-_x1", True),  # urlsafe alphabet
        (SENTINEL, True),
        ("SIG", False),  # trailing bits set: google-genai rejects the whole response
        ("CikB0e2Kb7zk...", False),
        ("not base64!", False),
        ("", False),
    ],
)
def test_client_side_signatures_are_base64(sig: str, kept: bool) -> None:
    resp = ir.Response(
        id="r",
        model="m",
        parts=[ir.ThinkingPart("t", sig), ir.ToolCallPart("c", "f", {}, sig)],
    )
    parts = gm.render_response(resp)["candidates"][0]["content"]["parts"]
    assert [("thoughtSignature" in p) for p in parts] == [kept, kept]
    enc = gm.StreamEncoder("m")
    frames = _frames(enc.encode(ir.ThinkingDelta("t", sig)))
    assert ("thoughtSignature" in frames[0]["candidates"][0]["content"]["parts"][0]) is kept
    # whatever is kept, the SDK can read
    client = _genai_client(lambda request: httpx.Response(200, json=gm.render_response(resp)))
    assert client.models.generate_content(model="m", contents="x").function_calls
