"""OpenAI Chat Completions dialect: request parsing, response rendering, stream encoding, errors.

Shapes follow docs/upstreams.md "OpenAI Chat Completions" and what the openai 3.54.0 SDK sends
(docs/upstreams.md "Python SDKs"); the SDK itself is used twice: its pydantic types validate our
output, and a real client runs against an httpx MockTransport backed by this module.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators.openai_chat import StreamEncoder
from cliproxy.translators.openai_chat import error_body
from cliproxy.translators.openai_chat import models_list
from cliproxy.translators.openai_chat import parse_request
from cliproxy.translators.openai_chat import render_response
from cliproxy.translators.sse import SSEParser
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from openai.types.chat import ChatCompletionChunk

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
WEATHER_PARAMS = WEATHER_TOOL["function"]["parameters"]


def req(**kw: Any) -> ir.Request:
    """An expected ir.Request with the usual model."""
    kw.setdefault("model", "gemini-2.5-pro")
    return ir.Request(**kw)


def body(messages: list[Any], **kw: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-pro", "messages": messages, **kw}


HI = [{"role": "user", "content": "Hi"}]
HI_IR = [ir.Message("user", [ir.TextPart("Hi")])]

# ================================================================ parse_request: valid input

PARSE_CASES: list[tuple[str, dict[str, Any], ir.Request]] = [
    (
        "string content, leading system and developer",
        body(
            [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hello"},
            ]
        ),
        req(
            system=["You are terse.", "Answer in French."],
            messages=[ir.Message("user", [ir.TextPart("Hello")])],
        ),
    ),
    (
        "system text parts are joined",
        body(
            [
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                *HI,
            ]
        ),
        req(system=["a\nb"], messages=HI_IR),
    ),
    (
        "later system message stays in the conversation",
        body(
            [
                *HI,
                {"role": "assistant", "content": "Hello!"},
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Why?"},
            ]
        ),
        req(
            messages=[
                *HI_IR,
                ir.Message("assistant", [ir.TextPart("Hello!")]),
                ir.Message("system", [ir.TextPart("Be brief.")]),
                ir.Message("user", [ir.TextPart("Why?")]),
            ]
        ),
    ),
    (
        "parts: text, data URL image, http image URLs",
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x.test/cat.PNG?s=1", "detail": "low"},
                        },
                        {"type": "image_url", "image_url": "http://x.test/photo"},
                    ],
                }
            ]
        ),
        req(
            messages=[
                ir.Message(
                    "user",
                    [
                        ir.TextPart("What is this?"),
                        ir.ImagePart("image/png", PNG_B64),
                        ir.ImagePart("image/png", url="https://x.test/cat.PNG?s=1"),
                        ir.ImagePart("image/jpeg", url="http://x.test/photo"),
                    ],
                )
            ]
        ),
    ),
    (
        "percent-encoded data URL is re-encoded as base64",
        body(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:,A%20B"}}],
                }
            ]
        ),
        req(messages=[ir.Message("user", [ir.ImagePart("image/jpeg", "QSBC")])]),
    ),
    (
        "audio and files with inline data",
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                        {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
                        {
                            "type": "file",
                            "file": {
                                "filename": "a.pdf",
                                "file_data": "data:application/pdf;base64,JVBE",
                            },
                        },
                        {"type": "file", "file": {"filename": "notes.txt", "file_data": "aGk="}},
                    ],
                }
            ]
        ),
        req(
            messages=[
                ir.Message(
                    "user",
                    [
                        ir.ImagePart("audio/wav", "UklG"),
                        ir.ImagePart("audio/mpeg", "SUQz"),
                        ir.ImagePart("application/pdf", "JVBE"),
                        ir.ImagePart("text/plain", "aGk="),
                    ],
                )
            ]
        ),
    ),
    (
        "media without inline data and unknown parts are dropped with a note",
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see file"},
                        {"type": "file", "file": {"file_id": "file-abc"}},
                        {"type": "input_audio", "input_audio": {"format": "wav"}},
                        {"type": "video_url", "video_url": {"url": "https://x"}},
                    ],
                }
            ]
        ),
        req(
            messages=[ir.Message("user", [ir.TextPart("see file")])],
            dropped=[
                "messages[0].content[1].file: file without inline file_data"
                " (file_id is not supported)",
                "messages[0].content[2].input_audio: audio without base64 data",
                "messages[0].content[3]: content part type 'video_url' not supported",
            ],
        ),
    ),
    (
        "tools + two parallel calls + tool follow-up (openai SDK shapes)",
        body(
            [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_A",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        },
                        {
                            "id": "call_B",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_A", "content": "18C sunny"},
                {
                    "role": "tool",
                    "tool_call_id": "call_B",
                    "content": [{"type": "text", "text": "21C"}],
                },
                {"role": "user", "content": "Thanks"},
            ],
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            parallel_tool_calls=True,
        ),
        req(
            messages=[
                ir.Message("user", [ir.TextPart("Weather in Paris and Rome?")]),
                ir.Message(
                    "assistant",
                    [
                        ir.ToolCallPart("call_A", "get_weather", {"location": "Paris"}),
                        ir.ToolCallPart("call_B", "get_weather", {"location": "Rome"}),
                    ],
                ),
                ir.Message(
                    "user",
                    [
                        ir.ToolResultPart("call_A", [ir.TextPart("18C sunny")], "get_weather"),
                        ir.ToolResultPart("call_B", [ir.TextPart("21C")], "get_weather"),
                    ],
                ),
                ir.Message("user", [ir.TextPart("Thanks")]),
            ],
            tools=[ir.Tool("get_weather", "Weather for a city", WEATHER_PARAMS)],
            tool_choice=ir.ToolChoice("auto"),
            parallel_tool_calls=True,
        ),
    ),
    (
        "tool messages interrupted by user / system messages are not merged across them",
        body(
            [
                *HI,
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "user", "content": "more"},
                {"role": "tool", "tool_call_id": "b", "content": "2"},
                {"role": "system", "content": "sys"},
                {"role": "tool", "tool_call_id": "c", "content": "3"},
            ]
        ),
        req(
            messages=[
                *HI_IR,
                ir.Message("user", [ir.ToolResultPart("a", [ir.TextPart("1")])]),
                ir.Message("user", [ir.TextPart("more")]),
                ir.Message("user", [ir.ToolResultPart("b", [ir.TextPart("2")])]),
                ir.Message("system", [ir.TextPart("sys")]),
                ir.Message("user", [ir.ToolResultPart("c", [ir.TextPart("3")])]),
            ]
        ),
    ),
    (
        "tool result with an image, unknown call id keeps name None",
        body(
            [
                *HI,
                {
                    "role": "tool",
                    "tool_call_id": "call_X",
                    "content": [
                        {"type": "text", "text": "shot"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
                        },
                    ],
                },
            ]
        ),
        req(
            messages=[
                *HI_IR,
                ir.Message(
                    "user",
                    [
                        ir.ToolResultPart(
                            "call_X", [ir.TextPart("shot"), ir.ImagePart("image/png", PNG_B64)]
                        )
                    ],
                ),
            ]
        ),
    ),
    (
        "arguments: empty, whitespace, non-object, already an object, missing id",
        body(
            [
                *HI,
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "f", "arguments": " "},
                        },
                        {
                            "id": "c3",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        },
                        {"id": "c4", "function": {"name": "f", "arguments": {"a": 1}}},
                        {"type": "function", "function": {"name": "g"}},
                    ],
                },
            ]
        ),
        req(
            messages=[
                *HI_IR,
                ir.Message(
                    "assistant",
                    [
                        ir.ToolCallPart("c1", "f", {}),
                        ir.ToolCallPart("c2", "f", {}),
                        ir.ToolCallPart("c3", "f", {"value": [1]}),
                        ir.ToolCallPart("c4", "f", {"a": 1}),
                        ir.ToolCallPart("call_1_4", "g", {}),
                    ],
                ),
            ]
        ),
    ),
    (
        "reasoning_content becomes a thinking part before the text; empty assistant skipped",
        body(
            [
                *HI,
                {"role": "assistant", "reasoning_content": "hmm", "content": "Hello"},
                {"role": "assistant", "content": None},
                {"role": "user", "content": [{"type": "text", "text": "go"}]},
            ]
        ),
        req(
            messages=[
                *HI_IR,
                ir.Message("assistant", [ir.ThinkingPart("hmm"), ir.TextPart("Hello")]),
                ir.Message("user", [ir.TextPart("go")]),
            ]
        ),
    ),
    (
        "legacy functions / function_call / role function",
        body(
            [
                *HI,
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "lookup", "arguments": '{"q":"x"}'},
                },
                {"role": "function", "name": "lookup", "content": "found"},
                {"role": "function", "name": "other", "content": "late"},
            ],
            functions=[{"name": "lookup", "parameters": {"type": "object"}}],
            function_call={"name": "lookup"},
        ),
        req(
            messages=[
                *HI_IR,
                ir.Message("assistant", [ir.ToolCallPart("call_fn_1", "lookup", {"q": "x"})]),
                ir.Message(
                    "user",
                    [
                        ir.ToolResultPart("call_fn_1", [ir.TextPart("found")], "lookup"),
                        ir.ToolResultPart("call_fn_3", [ir.TextPart("late")], "other"),
                    ],
                ),
            ],
            tools=[ir.Tool("lookup", "", {"type": "object"})],
            tool_choice=ir.ToolChoice("tool", "lookup"),
        ),
    ),
    (
        "non-function tools are dropped with a note; strict noted",
        body(
            HI,
            tools=[
                {"type": "web_search"},
                {"type": "function", "function": {"name": "f", "strict": True}},
            ],
        ),
        req(
            messages=HI_IR,
            tools=[ir.Tool("f")],
            dropped=[
                "tools[0]: tool type 'web_search' not supported",
                "tools[1].function.strict: strict schema adherence is not enforced",
            ],
        ),
    ),
    (
        "sampling, limits, stop, seed, penalties",
        body(
            HI,
            max_completion_tokens=100,
            max_tokens=5,
            temperature=0.2,
            top_p=1,
            stop="END",
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            n=1,
            user="u-1",
            metadata={"a": "b"},
            store=False,
            service_tier="auto",
        ),
        req(
            messages=HI_IR,
            max_tokens=100,
            temperature=0.2,
            top_p=1.0,
            stop=["END"],
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
        ),
    ),
    (
        "max_tokens alone, stop list",
        body(HI, max_tokens=64, stop=["a", "b"]),
        req(messages=HI_IR, max_tokens=64, stop=["a", "b"]),
    ),
    (
        "response_format json_object",
        body(HI, response_format={"type": "json_object"}),
        req(messages=HI_IR, response_mime_type="application/json"),
    ),
    (
        "response_format json_schema",
        body(
            HI,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "w",
                    "strict": True,
                    "schema": {"type": "object", "properties": {"t": {"type": "number"}}},
                },
            },
        ),
        req(
            messages=HI_IR,
            response_mime_type="application/json",
            response_schema={"type": "object", "properties": {"t": {"type": "number"}}},
        ),
    ),
    (
        "response_format text",
        body(HI, response_format={"type": "text"}),
        req(messages=HI_IR),
    ),
    (
        "stream with include_usage",
        body(HI, stream=True, stream_options={"include_usage": True}),
        req(messages=HI_IR, stream=True, include_usage=True),
    ),
    (
        "stream without options",
        body(HI, stream=True, stream_options=None),
        req(messages=HI_IR, stream=True),
    ),
    (
        "logprobs, logit_bias and unknown keys are noted",
        body(HI, logprobs=True, top_logprobs=2, logit_bias={"1": 5}),
        req(
            messages=HI_IR,
            dropped=[
                "logprobs: log probabilities are not returned",
                "top_logprobs: unsupported field ignored",
                "logit_bias: unsupported field ignored",
            ],
        ),
    ),
]


@pytest.mark.parametrize(("name", "raw", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_request(name: str, raw: dict[str, Any], expected: ir.Request) -> None:
    assert parse_request(raw) == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", ir.ToolChoice("none")),
        ("auto", ir.ToolChoice("auto")),
        ("required", ir.ToolChoice("required")),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            ir.ToolChoice("tool", "get_weather"),
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}},
            ir.ToolChoice("required"),
        ),
    ],
)
def test_tool_choice(choice: object, expected: ir.ToolChoice) -> None:
    assert parse_request(body(HI, tools=[WEATHER_TOOL], tool_choice=choice)).tool_choice == expected


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [("none", ir.ToolChoice("none")), ("auto", ir.ToolChoice("auto"))],
)
def test_legacy_function_call_choice(legacy: str, expected: ir.ToolChoice) -> None:
    assert parse_request(body(HI, function_call=legacy)).tool_choice == expected


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_reasoning_effort(effort: str) -> None:
    assert parse_request(body(HI, reasoning_effort=effort)).thinking == ir.Thinking(effort=effort)  # type: ignore[arg-type]


# ================================================================ parse_request: errors


def _tc(arguments: object) -> list[dict[str, Any]]:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return [
        *HI,
        {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}, call]},
    ]


ERROR_CASES: list[tuple[object, str | None, str]] = [
    ([], None, "request body must be a JSON object"),
    ("x", None, "request body must be a JSON object"),
    ({"messages": HI}, "model", "model is required"),
    ({"model": "", "messages": HI}, "model", "model is required"),
    ({"model": 3, "messages": HI}, "model", "model is required"),
    ({"model": "m"}, "messages", "messages is required"),
    ({"model": "m", "messages": []}, "messages", "non-empty array"),
    ({"model": "m", "messages": {"role": "user"}}, "messages", "non-empty array"),
    (body(["hi"]), "messages[0]", "messages[0] must be an object"),
    (body([{"role": "bot", "content": "x"}]), "messages[0].role", "must be one of"),
    (body([{"content": "x"}]), "messages[0].role", "must be one of"),
    (body([{"role": ["user"], "content": "x"}]), "messages[0].role", "must be one of"),
    (body([{"role": "user"}]), "messages[0].content", "is required"),
    (body([{"role": "user", "content": 5}]), "messages[0].content", "string or an array"),
    (body([{"role": "system", "content": {}}]), "messages[0].content", "string or an array"),
    (body([{"role": "user", "content": ["x"]}]), "messages[0].content[0]", "must be an object"),
    (body([{"role": "user", "content": [{"text": "x"}]}]), "messages[0].content[0].type", "string"),
    (
        body([{"role": "user", "content": [{"type": "text", "text": 1}]}]),
        "messages[0].content[0].text",
        "must be a string",
    ),
    (
        body([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
        "messages[0].content[0].image_url.url",
        "non-empty string",
    ),
    (
        body([{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}]),
        "messages[0].content[0].image_url",
        "non-empty string",
    ),
    (
        body(
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://a"}}]}]
        ),
        "messages[0].content[0].image_url.url",
        "http(s) URL",
    ),
    (
        body(
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:xx"}}]}]
        ),
        "messages[0].content[0].image_url.url",
        "not a valid data URL",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]}]),
        "messages[0].content[0].input_audio",
        "must be an object",
    ),
    (
        body([{"role": "user", "content": [{"type": "file", "file": None}]}]),
        "messages[0].content[0].file",
        "must be an object",
    ),
    (
        body([{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:bad"}}]}]),
        "messages[0].content[0].file.file_data",
        "not a valid data URL",
    ),
    (
        body([*HI, {"role": "assistant", "reasoning_content": 1}]),
        "messages[1].reasoning_content",
        "must be a string",
    ),
    (body([*HI, {"role": "assistant", "tool_calls": {}}]), "messages[1].tool_calls", "array"),
    (body([*HI, {"role": "assistant", "tool_calls": [1]}]), "messages[1].tool_calls[0]", "object"),
    (
        body([*HI, {"role": "assistant", "tool_calls": [{"type": "mcp", "mcp": {}}]}]),
        "messages[1].tool_calls[0].type",
        "must be 'function' or 'custom'",
    ),
    (
        body([*HI, {"role": "assistant", "tool_calls": [{"type": "custom", "custom": {}}]}]),
        "messages[1].tool_calls[0].custom.name",
        "non-empty string",
    ),
    (
        body([*HI, {"role": "assistant", "tool_calls": [{"type": "custom", "custom": 1}]}]),
        "messages[1].tool_calls[0].custom",
        "must be an object",
    ),
    (
        body(
            [
                *HI,
                {
                    "role": "assistant",
                    "tool_calls": [{"type": "custom", "custom": {"name": "p", "input": {}}}],
                },
            ]
        ),
        "messages[1].tool_calls[0].custom.input",
        "must be a string",
    ),
    (
        body([*HI, {"role": "assistant", "tool_calls": [{"id": 5, "function": {"name": "f"}}]}]),
        "messages[1].tool_calls[0].id",
        "non-empty string",
    ),
    (
        body([*HI, {"role": "assistant", "tool_calls": [{"id": "c"}]}]),
        "messages[1].tool_calls[0].function",
        "must be an object",
    ),
    (
        body([*HI, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": ""}}]}]),
        "messages[1].tool_calls[0].function.name",
        "non-empty string",
    ),
    (body(_tc("{bad")), "messages[1].tool_calls[1].function.arguments", "not valid JSON"),
    (body(_tc("[" * 100000)), "messages[1].tool_calls[1].function.arguments", "not valid JSON"),
    (body(_tc(5)), "messages[1].tool_calls[1].function.arguments", "JSON string"),
    (
        body([*HI, {"role": "assistant", "function_call": {"arguments": "{}"}}]),
        "messages[1].function_call.name",
        "non-empty string",
    ),
    (
        body([*HI, {"role": "assistant", "function_call": {"name": "f", "arguments": "nope"}}]),
        "messages[1].function_call.arguments",
        "not valid JSON",
    ),
    (body([{"role": "tool", "content": "x"}]), "messages[0].tool_call_id", "non-empty string"),
    (
        body([{"role": "tool", "tool_call_id": "c", "content": 1}]),
        "messages[0].content",
        "string or an array",
    ),
    (body([{"role": "function", "content": "x"}]), "messages[0].name", "non-empty string"),
    (body(HI, tools={}), "tools", "tools must be an array"),
    (body(HI, tools=["f"]), "tools[0]", "must be an object"),
    (body(HI, tools=[{"type": "function"}]), "tools[0].function", "must be an object"),
    (body(HI, tools=[{"type": "function", "function": {}}]), "tools[0].function.name", "non-empty"),
    (
        body(HI, tools=[{"type": "function", "function": {"name": "f", "description": 1}}]),
        "tools[0].function.description",
        "must be a string",
    ),
    (
        body(HI, tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
        "tools[0].function.parameters",
        "must be an object",
    ),
    (body(HI, functions={}), "functions", "functions must be an array"),
    (body(HI, functions=[{}]), "functions[0].name", "non-empty string"),
    (body(HI, tool_choice="any"), "tool_choice", "none, auto, required"),
    (body(HI, tool_choice=3), "tool_choice", "string or an object"),
    (body(HI, tool_choice={"type": "mcp"}), "tool_choice.type", "must be 'function' or 'custom'"),
    (body(HI, tool_choice={"type": "custom"}), "tool_choice.custom.name", "non-empty"),
    (body(HI, tools=[{"type": "custom"}]), "tools[0].custom", "must be an object"),
    (body(HI, tools=[{"type": "custom", "custom": {}}]), "tools[0].custom.name", "non-empty"),
    (
        body(HI, tools=[{"type": "custom", "custom": {"name": "p", "format": {"type": "x"}}}]),
        "tools[0].custom.format.type",
        "'text' or 'grammar'",
    ),
    (
        body(
            HI,
            tools=[
                {
                    "type": "custom",
                    "custom": {"name": "p", "format": {"type": "grammar", "grammar": {}}},
                }
            ],
        ),
        "tools[0].custom.format.grammar.definition",
        "must be a string",
    ),
    (
        body(
            HI,
            tools=[
                {
                    "type": "custom",
                    "custom": {
                        "name": "p",
                        "format": {"type": "grammar", "grammar": {"definition": "x"}},
                    },
                }
            ],
        ),
        "tools[0].custom.format.grammar.syntax",
        "'lark' or 'regex'",
    ),
    (body(HI, tool_choice={"type": "function"}), "tool_choice.function.name", "non-empty"),
    (body(HI, function_call="required"), "function_call", "none, auto, required"),
    (body(HI, function_call={}), "function_call.name", "non-empty string"),
    (body(HI, parallel_tool_calls="yes"), "parallel_tool_calls", "must be a boolean"),
    (body(HI, max_completion_tokens="10"), "max_completion_tokens", "must be an integer"),
    (body(HI, max_completion_tokens=0), "max_completion_tokens", "at least 1"),
    (body(HI, max_tokens=1.5), "max_tokens", "must be an integer"),
    (body(HI, max_tokens=True), "max_tokens", "must be an integer"),
    (body(HI, temperature="hot"), "temperature", "temperature must be a number"),
    (body(HI, temperature=True), "temperature", "temperature must be a number"),
    (body(HI, temperature=10**400), "temperature", "finite number"),
    (body(HI, temperature=float("nan")), "temperature", "finite number"),
    (body(HI, top_p=[1]), "top_p", "top_p must be a number"),
    (body(HI, top_k=0), "top_k", "at least 1"),
    (body(HI, seed=1.5), "seed", "seed must be an integer"),
    (body(HI, presence_penalty="0"), "presence_penalty", "must be a number"),
    (body(HI, frequency_penalty={}), "frequency_penalty", "must be a number"),
    (body(HI, n=2), "n", "only one choice"),
    (body(HI, n="1"), "n", "must be an integer"),
    (body(HI, stop=5), "stop", "string or an array of strings"),
    (body(HI, stop=["a", 1]), "stop", "string or an array of strings"),
    (body(HI, response_format="json"), "response_format", "must be an object"),
    (body(HI, response_format={"type": "xml"}), "response_format.type", "text, json_object"),
    (body(HI, response_format={"type": ["text"]}), "response_format.type", "text, json_object"),
    (
        body(HI, response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "must be an object",
    ),
    (
        body(HI, response_format={"type": "json_schema", "json_schema": {"schema": "x"}}),
        "response_format.json_schema.schema",
        "must be an object",
    ),
    (body(HI, reasoning_effort="extreme"), "reasoning_effort", "must be one of"),
    (body(HI, reasoning_effort=["low"]), "reasoning_effort", "must be one of"),
    (body(HI, stream="true"), "stream", "stream must be a boolean"),
    (body(HI, stream_options=[]), "stream_options", "must be an object"),
    (
        body(HI, stream_options={"include_usage": 1}),
        "stream_options.include_usage",
        "must be a boolean",
    ),
]


@pytest.mark.parametrize(("raw", "param", "fragment"), ERROR_CASES)
def test_parse_request_errors(raw: object, param: str | None, fragment: str) -> None:
    with pytest.raises(ir.RequestError) as info:
        parse_request(raw)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.status == 400


# ================================================================ render_response


def _render(parts: list[Any], **kw: Any) -> dict[str, Any]:
    kw.setdefault("id", "resp-1")
    kw.setdefault("model", "gemini-2.5-pro")
    out = render_response(ir.Response(parts=parts, **kw))
    ChatCompletion.model_validate(out)  # the real SDK accepts it
    assert isinstance(out.pop("created"), int)
    return out


def _usage_json(i: int = 0, o: int = 0, c: int = 0, r: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": i,
        "completion_tokens": o,
        "total_tokens": i + o,
        "prompt_tokens_details": {"cached_tokens": c},
        "completion_tokens_details": {"reasoning_tokens": r},
    }


def _completion(message: dict[str, Any], finish: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-resp-1",
        "object": "chat.completion",
        "model": "gemini-2.5-pro",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


def test_render_text_with_usage() -> None:
    out = _render(
        [ir.TextPart("Hello"), ir.TextPart(" world")],
        usage=ir.Usage(input_tokens=10, output_tokens=7, cached_tokens=4, reasoning_tokens=3),
    )
    message = {"role": "assistant", "content": "Hello world", "refusal": None}
    assert out == _completion(message, "stop", _usage_json(10, 7, 4, 3))


def test_render_tool_calls_and_reasoning() -> None:
    out = _render(
        [
            ir.ThinkingPart("think", "sig"),
            ir.ToolCallPart("call_Ab12", "get_weather", {"location": "Paris"}),
            ir.ToolCallPart("call_2", "now", {}),
        ],
        finish_reason="stop",  # a STOP with calls still reports tool_calls
        usage=ir.Usage(input_tokens=850, output_tokens=21),
    )
    message = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_Ab12",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ],
        "reasoning_content": "think",
    }
    assert out == _completion(message, "tool_calls", _usage_json(850, 21))


def test_render_image_output() -> None:
    out = _render([ir.TextPart("here"), ir.ImagePart("image/png", PNG_B64)])
    assert out["choices"][0]["message"]["images"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}, "index": 0}
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "stop"),
    ],
)
def test_render_finish_reason(reason: ir.FinishReason, expected: str) -> None:
    assert (
        _render([ir.TextPart("x")], finish_reason=reason)["choices"][0]["finish_reason"] == expected
    )


@pytest.mark.parametrize(
    ("rid", "check"),
    [
        ("chatcmpl-abc", lambda v: v == "chatcmpl-abc"),
        ("abc", lambda v: v == "chatcmpl-abc"),
        ("", lambda v: v.startswith("chatcmpl-") and len(v) > 12),
    ],
)
def test_render_id(rid: str, check: Any) -> None:
    assert check(_render([], id=rid)["id"])


def test_render_empty_thinking_is_omitted() -> None:
    out = _render([ir.ThinkingPart("", "sig"), ir.TextPart("x")])
    assert "reasoning_content" not in out["choices"][0]["message"]


# ================================================================ stream encoder


def _run(events: list[ir.Event], include_usage: bool = False) -> list[bytes]:
    enc = StreamEncoder("gemini-2.5-pro", include_usage=include_usage)
    frames: list[bytes] = []
    for ev in events:
        frames.extend(enc.encode(ev))
    frames.extend(enc.finish())
    assert all(f for f in frames)
    assert enc.encode(ir.TextDelta("late")) == []  # closed after finish / error
    assert enc.finish() == []
    return frames


def _chunks(frames: list[bytes], *, done: bool = True) -> list[dict[str, Any]]:
    """Parse frames; check SSE framing, [DONE], shared id/created/model/object, and that the
    openai SDK's chunk type accepts each one. Returns the chunks minus the shared fields."""
    raw = b"".join(frames)
    assert all(f.startswith(b"data: ") and f.endswith(b"\n\n") for f in frames)
    events = SSEParser().feed(raw)
    assert all(ev.event is None for ev in events)
    assert (events[-1].data == "[DONE]") is done
    payloads = [json.loads(ev.data) for ev in events if ev.data != "[DONE]"]
    out: list[dict[str, Any]] = []
    shared: set[tuple[Any, ...]] = set()
    for obj in payloads:
        if "error" in obj:
            out.append(obj)
            continue
        ChatCompletionChunk.model_validate(obj)
        shared.add((obj.pop("id"), obj.pop("created"), obj.pop("model"), obj.pop("object")))
        out.append(obj)
    assert len(shared) <= 1
    if shared:
        cid, created, model, kind = shared.pop()
        assert cid.startswith("chatcmpl-") and isinstance(created, int)
        assert (model, kind) == ("gemini-2.5-pro", "chat.completion.chunk")
    return out


def ch(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


ROLE = ch({"role": "assistant", "content": ""})


def tc_start(index: int, cid: str, name: str, sig: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "index": index,
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    if sig is not None:  # Gemini's thought signature, as its OpenAI-compatible API sends it
        call["extra_content"] = {"google": {"thought_signature": sig}}
    return ch({"tool_calls": [call]})


def tc_args(index: int, fragment: str) -> dict[str, Any]:
    return ch({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})


STREAM_CASES: list[tuple[str, list[ir.Event], list[dict[str, Any]]]] = [
    (
        "text",
        [
            ir.StreamStart("abc", "gemini-2.5-pro"),
            ir.TextDelta("Hel"),
            ir.TextDelta(""),
            ir.TextDelta("lo"),
            ir.Finish("stop"),
        ],
        [ROLE, ch({"content": "Hel"}), ch({"content": "lo"}), ch({}, "stop")],
    ),
    (
        "no StreamStart: role chunk synthesized; thinking as reasoning_content",
        [
            ir.ThinkingDelta("plan"),
            ir.ThinkingDelta("", "sig"),
            ir.TextDelta("ok"),
            ir.Finish("length"),
        ],
        [ROLE, ch({"reasoning_content": "plan"}), ch({"content": "ok"}), ch({}, "length")],
    ),
    (
        "two parallel tool calls with fragments",
        [
            ir.StreamStart("x", "m"),
            ir.ToolCallStart("call_A", "get_weather"),
            ir.ToolCallDelta("call_A", '{"location":'),
            ir.ToolCallStart("call_B", "get_time"),
            ir.ToolCallDelta("call_B", '{"tz":"CET"}'),
            ir.ToolCallDelta("call_A", '"Paris"}'),
            ir.ToolCallEnd("call_A", {"location": "Paris"}),
            ir.ToolCallEnd("call_B", {"tz": "CET"}),
            ir.Finish("stop"),  # Gemini says STOP; the client must see tool_calls
        ],
        [
            ROLE,
            tc_start(0, "call_A", "get_weather"),
            tc_args(0, '{"location":'),
            tc_start(1, "call_B", "get_time"),
            tc_args(1, '{"tz":"CET"}'),
            tc_args(0, '"Paris"}'),
            ch({}, "tool_calls"),
        ],
    ),
    (
        "tool call with only ToolCallEnd arguments (Gemini whole calls), and empty args",
        [
            ir.ToolCallStart("call_1", "get_weather", "sig"),
            ir.ToolCallEnd("call_1", {"location": "Paris"}),
            ir.ToolCallStart("call_2", "now"),
            ir.ToolCallDelta("call_2", ""),
            ir.ToolCallEnd("call_2", {}),
            ir.Finish("tool_calls"),
            ir.Finish("stop"),
        ],
        [
            ROLE,
            tc_start(0, "call_1", "get_weather", "sig"),
            tc_args(0, '{"location":"Paris"}'),
            tc_start(1, "call_2", "now"),
            tc_args(1, "{}"),
            ch({}, "tool_calls"),
        ],
    ),
    (
        "unknown ids and duplicate starts are ignored",
        [
            ir.ToolCallDelta("nope", "{}"),
            ir.ToolCallEnd("nope", {}),
            ir.ToolCallStart("c", "f"),
            ir.ToolCallStart("c", "f"),
            ir.ToolCallEnd("c", {"a": 1}),
            ir.Finish("content_filter"),
        ],
        [ROLE, tc_start(0, "c", "f"), tc_args(0, '{"a":1}'), ch({}, "tool_calls")],
    ),
    (
        "error finish maps to stop; image output",
        [ir.ImageOut("image/png", "QUJD"), ir.Finish("error")],
        [
            ROLE,
            ch(
                {
                    "images": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,QUJD"},
                            "index": 0,
                        }
                    ]
                }
            ),
            ch({}, "stop"),
        ],
    ),
    (
        "usage without include_usage is not sent",
        [ir.TextDelta("a"), ir.UsageUpdate(ir.Usage(3, 4)), ir.Finish("stop")],
        [ROLE, ch({"content": "a"}), ch({}, "stop")],
    ),
]


@pytest.mark.parametrize(
    ("name", "events", "expected"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES]
)
def test_stream(name: str, events: list[ir.Event], expected: list[dict[str, Any]]) -> None:
    assert _chunks(_run(events)) == expected


def test_stream_include_usage_after_finish() -> None:
    events: list[ir.Event] = [
        ir.StreamStart("abc", "gemini-2.5-pro"),
        ir.UsageUpdate(ir.Usage(1, 1)),
        ir.TextDelta("Hi"),
        ir.Finish("stop"),
        ir.UsageUpdate(ir.Usage(850, 21, cached_tokens=800, reasoning_tokens=5)),  # last wins
    ]
    got = _chunks(_run(events, include_usage=True))
    nul = {"usage": None}
    assert got == [
        {**ROLE, **nul},
        {**ch({"content": "Hi"}), **nul},
        {**ch({}, "stop"), **nul},
        {"choices": [], "usage": _usage_json(850, 21, 800, 5)},
    ]


def test_stream_include_usage_without_usage_sends_zeros() -> None:
    got = _chunks(_run([ir.Finish("stop")], include_usage=True))
    assert got[-1] == {"choices": [], "usage": _usage_json()}
    assert got[0] == {**ROLE, "usage": None}


def test_stream_start_id_is_reused() -> None:
    enc = StreamEncoder("m")
    first = json.loads(enc.encode(ir.StreamStart("chatcmpl-up", "x"))[0][6:])
    assert first["id"] == "chatcmpl-up"
    later = enc.encode(ir.StreamStart("other", "x"))  # a second start changes nothing
    assert later == []
    assert json.loads(enc.encode(ir.TextDelta("a"))[0][6:])["id"] == "chatcmpl-up"


def _error_frame(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def test_stream_error_mid_stream() -> None:
    events: list[ir.Event] = [
        ir.TextDelta("par"),
        ir.StreamError("upstream reset", 502),
        ir.TextDelta("tial"),
        ir.Finish("stop"),
    ]
    got = _chunks(_run(events), done=False)
    assert got == [
        ROLE,
        ch({"content": "par"}),
        _error_frame("upstream reset", "server_error", "bad_gateway"),
    ]


def test_stream_error_code_and_explicit_error() -> None:
    enc = StreamEncoder("m")
    frames = enc.encode(ir.StreamError("quota", 429, "usage_limit_reached"))
    assert _chunks(frames, done=False) == [
        _error_frame("quota", "rate_limit_error", "usage_limit_reached")
    ]
    assert enc.error("again") == []
    enc2 = StreamEncoder("m")
    assert _chunks(enc2.error("boom"), done=False) == [
        _error_frame("boom", "server_error", "server_error")
    ]


def test_stream_finish_without_finish_is_an_error() -> None:
    got = _chunks(_run([ir.TextDelta("cut"), ir.ToolCallStart("c", "f")]), done=False)
    assert got == [
        ROLE,
        ch({"content": "cut"}),
        tc_start(0, "c", "f"),
        _error_frame("upstream stream ended before completion", "server_error", "bad_gateway"),
    ]


def test_stream_never_raises_on_bad_events() -> None:
    enc = StreamEncoder("m")
    # unhashable id: the internal failure becomes an error frame, not an exception
    frames = enc.encode(ir.ToolCallDelta([], "x"))  # type: ignore[arg-type]
    assert frames == [] or b'"error"' in frames[0]
    enc2 = StreamEncoder("m")
    out = enc2.encode(ir.ToolCallStart("c", "f")) + enc2.encode(ir.ToolCallEnd("c", {"x": {1, 2}}))  # type: ignore[dict-item]
    assert out and all(out)
    assert json.loads(out[-1][6:])["choices"][0]["delta"]["tool_calls"][0]["function"] == {
        "arguments": "{}"
    }


# ================================================================ errors and models


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "invalid_api_key"),
        (403, "permission_error", "permission_denied"),
        (404, "not_found_error", "not_found"),
        (409, "invalid_request_error", "conflict"),
        (418, "invalid_request_error", "invalid_request_error"),
        (429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "server_error", "server_error"),
        (502, "server_error", "bad_gateway"),
        (503, "api_error", "service_unavailable"),
        (599, "server_error", "server_error"),
    ],
)
def test_error_body(status: int, kind: str, code: str) -> None:
    assert error_body(status, "msg") == {
        "error": {"message": "msg", "type": kind, "param": None, "code": code}
    }


def test_error_body_explicit_code_and_param() -> None:
    assert error_body(404, "no such model", code="model_not_found", param="model") == {
        "error": {
            "message": "no such model",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_models_list() -> None:
    out = models_list(["gemini-2.5-pro", "gpt-5", "custom"], owned_by={"custom": "me"})
    assert out == {
        "object": "list",
        "data": [
            {
                "id": "gemini-2.5-pro",
                "object": "model",
                "created": 1750000000,
                "owned_by": "google",
            },
            {"id": "gpt-5", "object": "model", "created": 1750000000, "owned_by": "openai"},
            {"id": "custom", "object": "model", "created": 1750000000, "owned_by": "me"},
        ],
    }


# ================================================================ the real openai SDK end to end


class FakeServer:
    """An httpx transport that answers like the proxy would, using only this module."""

    def __init__(self, events: list[ir.Event], response: ir.Response | None = None) -> None:
        self.events = events
        self.response = response
        self.parsed: list[ir.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=models_list(["gemini-2.5-pro"]))
        try:
            parsed = parse_request(json.loads(request.content))
        except ir.RequestError as exc:
            return httpx.Response(
                exc.status, json=error_body(exc.status, exc.message, param=exc.param)
            )
        self.parsed.append(parsed)
        if not parsed.stream:
            assert self.response is not None
            return httpx.Response(200, json=render_response(self.response))
        enc = StreamEncoder(parsed.model, include_usage=parsed.include_usage)
        frames = [f for ev in self.events for f in enc.encode(ev)] + enc.finish()
        return httpx.Response(
            200, content=b"".join(frames), headers={"content-type": "text/event-stream"}
        )

    def client(self) -> openai.OpenAI:
        http = httpx.Client(transport=httpx.MockTransport(self.handler))
        return openai.OpenAI(
            base_url="http://proxy.test/v1", api_key="sk-test", max_retries=0, http_client=http
        )


TOOL_EVENTS: list[ir.Event] = [
    ir.StreamStart("r1", "gemini-2.5-pro"),
    ir.ToolCallStart("call_A", "get_weather"),
    ir.ToolCallEnd("call_A", {"location": "Paris"}),
    ir.ToolCallStart("call_B", "get_weather"),
    ir.ToolCallDelta("call_B", '{"location"'),
    ir.ToolCallDelta("call_B", ':"Rome"}'),
    ir.ToolCallEnd("call_B", {"location": "Rome"}),
    ir.Finish("stop"),
    ir.UsageUpdate(ir.Usage(850, 21)),
]


def test_sdk_stream_with_tools_and_usage() -> None:
    server = FakeServer(TOOL_EVENTS)
    client = server.client()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    stream = client.chat.completions.create(
        model="gemini-2.5-pro",
        messages=messages,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 871
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    parsed = server.parsed[0]
    assert parsed.stream and parsed.include_usage
    assert parsed.tools == [ir.Tool("get_weather", "Weather for a city", WEATHER_PARAMS)]

    # the accumulating helper joins the fragments into valid JSON per call
    with client.chat.completions.stream(
        model="gemini-2.5-pro",
        messages=messages,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as s:
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_A", "get_weather", {"location": "Paris"}),
        ("call_B", "get_weather", {"location": "Rome"}),
    ]

    # the follow-up the SDK user sends back parses into one merged tool-result message
    messages.append(final.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": "call_A", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_B", "content": "21C"},
    ]
    server.response = ir.Response("r2", "gemini-2.5-pro", [ir.TextPart("Nice.")])
    answer = client.chat.completions.create(model="gemini-2.5-pro", messages=messages)
    assert answer.choices[0].message.content == "Nice."
    assert server.parsed[-1].messages[1:] == [
        ir.Message(
            "assistant",
            [
                ir.ToolCallPart("call_A", "get_weather", {"location": "Paris"}),
                ir.ToolCallPart("call_B", "get_weather", {"location": "Rome"}),
            ],
        ),
        ir.Message(
            "user",
            [
                ir.ToolResultPart("call_A", [ir.TextPart("18C")], "get_weather"),
                ir.ToolResultPart("call_B", [ir.TextPart("21C")], "get_weather"),
            ],
        ),
    ]


def test_sdk_stream_error_raises_api_error() -> None:
    server = FakeServer([ir.TextDelta("par"), ir.StreamError("upstream reset", 502)])
    stream = server.client().chat.completions.create(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="upstream reset"):
        list(stream)


def test_sdk_cut_stream_raises_api_error() -> None:
    server = FakeServer([ir.TextDelta("par")])
    stream = server.client().chat.completions.create(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="ended before completion"):
        list(stream)


def test_sdk_non_stream_image_and_models() -> None:
    server = FakeServer([], ir.Response("r", "gemini-2.5-pro", [ir.TextPart("A cat.")]))
    client = server.client()
    out = client.chat.completions.create(
        model="gemini-2.5-pro",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is it?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            }
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        reasoning_effort="low",
        max_completion_tokens=50,
    )
    assert out.choices[0].message.content == "A cat."
    assert out.id == "chatcmpl-r"
    parsed = server.parsed[0]
    assert parsed.messages[0].parts[1] == ir.ImagePart("image/png", PNG_B64)
    assert (parsed.response_mime_type, parsed.response_schema) == ("application/json", {})
    assert (parsed.thinking, parsed.max_tokens) == (ir.Thinking(effort="low"), 50)
    assert [m.id for m in client.models.list()] == ["gemini-2.5-pro"]


def test_sdk_bad_request_maps_to_bad_request_error() -> None:
    client = FakeServer([]).client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=[], n=2)
    assert info.value.param == "messages"


# ================================================================ properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=20,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
part_types = st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "other"])
content_part = st.fixed_dictionaries(
    {"type": part_types},
    optional={
        "text": json_values,
        "refusal": json_values,
        "image_url": json_values
        | st.fixed_dictionaries(
            {
                "url": st.sampled_from(
                    ["data:image/png;base64,AA", "https://a/b.gif", "data:x", "zz"]
                )
            }
        ),
        "input_audio": json_values,
        "file": json_values
        | st.fixed_dictionaries({"file_data": json_values, "filename": json_values}),
    },
)
tool_call = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "type": st.just("function") | json_values,
        "function": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=4) | json_values,
                "arguments": st.text(max_size=10) | json_values,
            },
        )
        | json_values,
    },
)
message = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": json_values | st.text(max_size=8) | st.lists(content_part, max_size=3),
        "tool_calls": st.lists(tool_call, max_size=3) | json_values,
        "tool_call_id": st.text(max_size=4) | json_values,
        "name": st.text(max_size=4) | json_values,
        "function_call": tool_call | json_values,
        "reasoning_content": json_values,
    },
)
request_body = st.fixed_dictionaries(
    {"model": st.just("m") | json_values, "messages": st.lists(message, max_size=4) | json_values},
    optional={
        key: json_values
        for key in [
            "tools",
            "functions",
            "tool_choice",
            "function_call",
            "parallel_tool_calls",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "top_k",
            "n",
            "stop",
            "seed",
            "response_format",
            "reasoning_effort",
            "stream",
            "stream_options",
            "logprobs",
        ]
    },
)


def _parse_only_request_errors(raw: object) -> None:
    try:
        parsed = parse_request(raw)
    except ir.RequestError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    assert isinstance(parsed, ir.Request)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_property_any_json(raw: object) -> None:
    _parse_only_request_errors(raw)


@settings(max_examples=500, deadline=None)
@given(request_body)
def test_property_request_shapes(raw: dict[str, Any]) -> None:
    _parse_only_request_errors(raw)


ids_ = st.sampled_from(["a", "b", "c"])
usage = st.builds(
    ir.Usage, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 9), st.integers(0, 9)
)
events = st.one_of(
    st.builds(ir.StreamStart, st.text(max_size=5), st.text(max_size=5)),
    st.builds(ir.TextDelta, st.text(max_size=5)),
    st.builds(ir.ThinkingDelta, st.text(max_size=5), st.none() | st.text(max_size=3)),
    st.builds(ir.ToolCallStart, ids_, st.text(max_size=5)),
    st.builds(ir.ToolCallDelta, ids_, st.text(max_size=5)),
    st.builds(ir.ToolCallEnd, ids_, st.dictionaries(st.text(max_size=3), json_values, max_size=2)),
    st.builds(ir.ImageOut, st.text(max_size=5), st.text(max_size=5)),
    st.builds(ir.UsageUpdate, usage),
    st.builds(
        ir.Finish, st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error"])
    ),
    st.builds(
        ir.StreamError, st.text(max_size=5), st.integers(100, 599), st.none() | st.text(max_size=3)
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=12), st.booleans(), st.booleans())
def test_property_encoder_never_raises(evs: list[ir.Event], include_usage: bool, end: bool) -> None:
    enc = StreamEncoder("m", include_usage=include_usage)
    frames: list[bytes] = []
    for ev in evs:
        frames.extend(enc.encode(ev))
    frames.extend(enc.finish() if end else enc.error("stop", 500))
    assert all(isinstance(f, bytes) and f for f in frames)
    payloads = [
        json.loads(e.data) for e in SSEParser().feed(b"".join(frames)) if e.data != "[DONE]"
    ]
    for obj in payloads:
        if "error" not in obj:
            ChatCompletionChunk.model_validate(obj)
    # the stream always ends either cleanly with [DONE] or with exactly one error frame
    last = frames[-1]
    assert last == b"data: [DONE]\n\n" or b'"error"' in last
    assert sum(b'"error":{' in f for f in frames) <= 1


def test_request_error_has_one_name() -> None:
    # the IR's exception is the only one: no dialect re-exports it under its own name
    assert not hasattr(openai_chat, "RequestError")
