"""Anthropic Messages dialect: request parsing, non-stream rendering, the SSE encoder.

Fixtures follow real traffic (docs/upstreams.md "Claude Code", "Anthropic Messages"); rendered
bodies and streams are checked with the real anthropic 2.12 SDK (pydantic models, its stream
accumulator and a full client over a mock transport).
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message
from anthropic.types import ModelInfo
from anthropic.types import RawMessageStreamEvent
from cliproxy.translators import anthropic as an
from cliproxy.translators import ir
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.sse import SSEParser
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)

# ---------------------------------------------------------------- fixtures

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.123; cc_entrypoint=sdk-cli;"

READ_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "file_path": {"type": "string", "description": "The absolute path to the file to read"},
        "offset": {"type": "integer", "exclusiveMinimum": 0},
        "limit": {"type": "integer", "exclusiveMinimum": 0},
    },
    "required": ["file_path"],
    "additionalProperties": False,
}
BASH_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "command": {"type": "string"},
        "timeout": {"type": "number"},
        "run_in_background": {"type": "boolean"},
    },
    "required": ["command"],
    "additionalProperties": False,
}
USER_ID = json.dumps(
    {"device_id": "9f2c", "account_uuid": "", "session_id": "5b1e7c2a-0c55-4c1e-9a51-6a0e2f1d4b33"}
)


def claude_code_body() -> dict[str, Any]:
    """Trimmed Claude Code 2.1.197 follow-up turn for a non-Claude model name
    (docs/upstreams.md "Claude Code"): billing block, cache_control, string user_id, adaptive
    thinking + output_config, context_management, a role:"system" message, thinking in history, a
    tool_result follow-up."""
    return {
        "model": "gemini-2.5-pro",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nSkills: none\n</system-reminder>"},
                    {
                        "type": "text",
                        "text": "read hello.txt",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {"role": "system", "content": "Available agent types: general-purpose"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need the file.", "signature": "gemini:sig-A"},
                    {"type": "text", "text": "I'll read it."},
                    {"type": "thinking", "thinking": "", "signature": "gemini:gemini-sig-B"},
                    {
                        "type": "tool_use",
                        "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                        "name": "Read",
                        "input": {"file_path": "/tmp/w/hello.txt"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                        "content": "1\thello from a file\n2\t",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
        ],
        "system": [
            {"type": "text", "text": BILLING},
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "\nYou are an interactive CLI tool.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "tools": [
            {"name": "Read", "description": "Reads a file.", "input_schema": READ_SCHEMA},
            {"name": "Bash", "description": "Runs a command.", "input_schema": BASH_SCHEMA},
        ],
        "metadata": {"user_id": USER_ID},
        "max_tokens": 32000,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "stream": True,
    }


def test_claude_code_body_parses_exactly() -> None:
    req = an.parse_request(claude_code_body())
    assert req == ir.Request(
        model="gemini-2.5-pro",
        messages=[
            ir.Message(
                "user",
                [
                    ir.TextPart("<system-reminder>\nSkills: none\n</system-reminder>"),
                    ir.TextPart("read hello.txt"),
                ],
            ),
            ir.Message("system", [ir.TextPart("Available agent types: general-purpose")]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingPart("Need the file.", "sig-A"),
                    ir.TextPart("I'll read it."),
                    ir.ThinkingPart("", "gemini-sig-B"),
                    ir.ToolCallPart(
                        "toolu_01NRLabsLyVHZPKxbKvkfSMn", "Read", {"file_path": "/tmp/w/hello.txt"}
                    ),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResultPart(
                        "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                        [ir.TextPart("1\thello from a file\n2\t")],
                        name="Read",
                    )
                ],
            ),
        ],
        system=[
            "You are Claude Code, Anthropic's official CLI for Claude.",
            "\nYou are an interactive CLI tool.",
        ],
        tools=[
            ir.Tool("Read", "Reads a file.", READ_SCHEMA),
            ir.Tool("Bash", "Runs a command.", BASH_SCHEMA),
        ],
        stream=True,
        max_tokens=32000,
        thinking=ir.Thinking(effort="high", include_thoughts=True),
        extras={
            "anthropic": {
                "billing_header": BILLING,
                "metadata": {"user_id": USER_ID},
                "context_management": {
                    "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]
                },
            }
        },
    )
    assert req.dropped == []  # Claude Code's regular fields need no log line


def test_claude_code_claude_model_shape() -> None:
    body = claude_code_body()
    body["model"] = "claude-sonnet-4-5"
    body["thinking"] = {"type": "enabled", "budget_tokens": 31999}
    del body["output_config"]
    req = an.parse_request(body)
    assert req.thinking == ir.Thinking(budget=31999, include_thoughts=True)
    assert req.model == "claude-sonnet-4-5"


# ---------------------------------------------------------------- parse tables

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def body_with(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    body.update(fields)
    return body


def user_blocks(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


@pytest.mark.parametrize(
    ("content", "parts"),
    [
        ("Hello", [ir.TextPart("Hello")]),
        (
            [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            [ir.TextPart("a"), ir.TextPart("b")],
        ),
        (
            [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                }
            ],
            [ir.ImagePart("image/png", data=PNG)],
        ),
        (
            [{"type": "image", "source": {"type": "url", "url": "https://x.test/cat.webp?s=1"}}],
            [ir.ImagePart("image/webp", url="https://x.test/cat.webp?s=1")],
        ),
        (
            [{"type": "image", "source": {"type": "url", "url": "https://x.test/img"}}],
            [ir.ImagePart("image/jpeg", url="https://x.test/img")],
        ),
        (
            [
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi0x",
                    },
                    "title": "spec",
                }
            ],
            [ir.ImagePart("application/pdf", data="JVBERi0x")],
        ),
        (
            [
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"},
                }
            ],
            [ir.TextPart("plain doc")],
        ),
        (
            [{"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}],
            [ir.ImagePart("application/pdf", url="https://x.test/a.pdf")],
        ),
        (
            [
                {
                    "type": "document",
                    "source": {
                        "type": "content",
                        "content": [
                            {"type": "text", "text": "chunk"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    },
                }
            ],
            [ir.TextPart("chunk"), ir.ImagePart("image/png", data=PNG)],
        ),
        (
            [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"}],
            [ir.ThinkingPart("", signature="EmwKAhgBEgy3va", redacted=True)],
        ),
        (
            [{"type": "thinking", "thinking": "hmm", "signature": ""}],
            [ir.ThinkingPart("hmm", None)],
        ),
        (
            [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "boom"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                    ],
                },
                {"type": "tool_result", "tool_use_id": "toolu_unknown"},
            ],
            [
                ir.ToolCallPart("toolu_1", "get_weather", {}),
                ir.ToolResultPart(
                    "toolu_1",
                    [ir.TextPart("boom"), ir.ImagePart("image/png", data=PNG)],
                    name="get_weather",
                    is_error=True,
                ),
                ir.ToolResultPart("toolu_unknown", [], name=None),
            ],
        ),
    ],
    ids=[
        "string",
        "text-blocks",
        "image-base64",
        "image-url",
        "image-url-no-ext",
        "document-pdf",
        "document-text",
        "document-url",
        "document-content",
        "redacted-thinking",
        "thinking-empty-sig",
        "tool-use-and-result",
    ],
)
def test_content_blocks(content: Any, parts: list[ir.Part]) -> None:
    req = an.parse_request(body_with(messages=[{"role": "user", "content": content}]))
    assert req.messages == [ir.Message("user", parts)]
    assert req.dropped == []


@pytest.mark.parametrize(
    ("blocks", "parts", "notes"),
    [
        (
            [
                {"type": "text", "text": "x"},
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_2",
                    "name": "code_execution",
                    "input": {"code": "1"},
                },
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_9", "content": []},
            ],
            [ir.TextPart("x")],
            [
                "messages[0].content[1]: server_tool_use block dropped (no equivalent upstream)",
                "messages[0].content[2]: web_search_tool_result without its server_tool_use "
                "dropped",
            ],
        ),
        (
            [{"type": "image", "source": {"type": "file", "file_id": "file_011"}}],
            [],
            ["messages[0].content[0].source: file source dropped (the Files API is not proxied)"],
        ),
        (
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [
                        {"type": "tool_reference", "tool_name": "x"},
                        {"type": "text", "text": "ok"},
                    ],
                }
            ],
            [ir.ToolResultPart("t", [ir.TextPart("ok")])],
            [
                "messages[0].content[0].content[0]: tool_reference block dropped "
                "(no equivalent upstream)"
            ],
        ),
    ],
    ids=["server-blocks", "file-source", "tool-result-unknown-block"],
)
def test_dropped_blocks_are_noted(blocks: list, parts: list, notes: list[str]) -> None:
    req = an.parse_request(body_with(messages=user_blocks(*blocks)))
    assert req.messages == [ir.Message("user", parts)]
    assert req.dropped == notes


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be brief.", ["Be brief."]),
        ("", []),
        (None, []),
        ([{"type": "text", "text": "A"}, {"type": "text", "text": "B"}], ["A", "B"]),
        ([{"type": "text", "text": BILLING}], []),
    ],
)
def test_system(system: Any, expected: list[str]) -> None:
    assert an.parse_request(body_with(system=system)).system == expected


def test_tools_custom_and_server() -> None:
    tools = [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}},
        {"type": "custom", "name": "calc", "input_schema": {"type": "object"}, "cache_control": {}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    ]
    req = an.parse_request(body_with(tools=tools))
    assert req.tools == [
        ir.Tool("get_weather", "Weather", {"type": "object"}),
        ir.Tool("calc", "", {"type": "object"}),
    ]
    assert req.web_search  # carried: an upstream with its own search runs it (Codex)
    assert req.dropped == [
        "tools[3]: Anthropic server tool 'bash_20250124' dropped",
        "tools[4]: Anthropic server tool 'text_editor_20250728' dropped",
    ]


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ir.ToolChoice("auto"), None),
        ({"type": "any"}, ir.ToolChoice("required"), None),
        ({"type": "none"}, ir.ToolChoice("none"), None),
        ({"type": "tool", "name": "get_weather"}, ir.ToolChoice("tool", "get_weather"), None),
        ({"type": "auto", "disable_parallel_tool_use": True}, ir.ToolChoice("auto"), False),
        ({"type": "any", "disable_parallel_tool_use": False}, ir.ToolChoice("required"), None),
    ],
)
def test_tool_choice(choice: dict, expected: ir.ToolChoice, parallel: bool | None) -> None:
    req = an.parse_request(body_with(tool_choice=choice))
    assert (req.tool_choice, req.parallel_tool_calls) == (expected, parallel)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}},
            ir.Thinking(budget=2048, include_thoughts=True),
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}},
            ir.Thinking(budget=2048, include_thoughts=False),
        ),
        ({"thinking": {"type": "disabled"}}, ir.Thinking(effort="none", include_thoughts=False)),
        ({"thinking": {"type": "adaptive"}}, ir.Thinking(effort="auto", include_thoughts=True)),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}},
            ir.Thinking(effort="max", include_thoughts=True),
        ),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}},
            ir.Thinking(effort="low", include_thoughts=True),
        ),
        ({"output_config": {"effort": "medium"}}, ir.Thinking(effort="medium")),
        (
            {"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}},
            ir.Thinking(effort="none", include_thoughts=False),
        ),
        ({}, None),
    ],
)
def test_thinking(fields: dict, expected: ir.Thinking | None) -> None:
    assert an.parse_request(body_with(**fields)).thinking == expected


def test_sampling_and_stream_fields() -> None:
    req = an.parse_request(
        body_with(
            temperature=0,
            top_p=0.9,
            top_k=40,
            stop_sequences=["\n\nHuman:", "END"],
            stream=False,
        )
    )
    assert (req.temperature, req.top_p, req.top_k) == (0.0, 0.9, 40)
    assert req.stop == ["\n\nHuman:", "END"]
    assert req.stream is False
    assert req.max_tokens == 1024


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    for fields in (
        {"output_config": {"format": {"type": "json_schema", "schema": schema}}},
        {"output_format": {"type": "json_schema", "schema": schema}},
    ):
        req = an.parse_request(body_with(**fields))
        assert (req.response_mime_type, req.response_schema) == ("application/json", schema)


def test_ignored_fields_are_noted_and_kept() -> None:
    req = an.parse_request(
        body_with(
            service_tier="auto",
            container="container_1",
            mcp_servers=[{"type": "url", "url": "https://mcp.test", "name": "m"}],
            frobnicate=1,
            metadata={"user_id": "u"},
            output_config={"effort": "low", "task_budget": 3},
        )
    )
    assert req.dropped == [
        "service_tier: not supported by this proxy, ignored",
        "container: not supported by this proxy, ignored",
        "mcp_servers: not supported by this proxy, ignored",
        "frobnicate: unknown field, ignored",
        "output_config.task_budget: not supported by this proxy, ignored",
    ]
    assert req.extras["anthropic"]["service_tier"] == "auto"
    assert req.extras["anthropic"]["metadata"] == {"user_id": "u"}


def test_count_tokens() -> None:
    body = claude_code_body()
    del body["max_tokens"], body["stream"]
    req = an.parse_count_tokens(body)
    assert req.max_tokens is None
    assert req.stream is False
    assert len(req.tools) == 2
    assert an.parse_request(dict(body, stream=True), count_tokens=True).stream is False
    with pytest.raises(ir.RequestError) as exc:
        an.parse_request(body)
    assert exc.value.param == "max_tokens"
    assert an.count_tokens_body(377) == {"input_tokens": 377}


# ---------------------------------------------------------------- every RequestError path

IMG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ("x", None),
        (body_with(model=""), "model"),
        (body_with(model=5), "model"),
        ({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, "model"),
        (body_with(max_tokens=None), "max_tokens"),
        (body_with(max_tokens=0), "max_tokens"),
        (body_with(max_tokens="100"), "max_tokens"),
        (body_with(max_tokens=True), "max_tokens"),
        (body_with(max_tokens=1.5), "max_tokens"),
        (body_with(messages=[]), "messages"),
        (body_with(messages={"role": "user"}), "messages"),
        (body_with(messages=["hi"]), "messages[0]"),
        (body_with(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (body_with(messages=[{"role": "user"}]), "messages[0].content"),
        (body_with(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (body_with(messages=user_blocks("text")), "messages[0].content[0]"),
        (body_with(messages=user_blocks({"text": "x"})), "messages[0].content[0].type"),
        (
            body_with(messages=user_blocks({"type": "text", "text": 1})),
            "messages[0].content[0].text",
        ),
        (body_with(messages=user_blocks({"type": "image"})), "messages[0].content[0].source"),
        (
            body_with(messages=user_blocks({"type": "image", "source": {"type": "ftp"}})),
            "messages[0].content[0].source.type",
        ),
        (
            body_with(
                messages=user_blocks({"type": "image", "source": {"type": "base64", "data": PNG}})
            ),
            "messages[0].content[0].source.media_type",
        ),
        (
            body_with(
                messages=user_blocks(
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
                )
            ),
            "messages[0].content[0].source.data",
        ),
        (
            body_with(messages=user_blocks({"type": "image", "source": {"type": "url"}})),
            "messages[0].content[0].source.url",
        ),
        (
            body_with(messages=user_blocks({"type": "document", "source": "x"})),
            "messages[0].content[0].source",
        ),
        (
            body_with(messages=user_blocks({"type": "document", "source": {"type": "zip"}})),
            "messages[0].content[0].source.type",
        ),
        (
            body_with(messages=user_blocks({"type": "document", "source": {"type": "text"}})),
            "messages[0].content[0].source.data",
        ),
        (
            body_with(
                messages=user_blocks(
                    {"type": "document", "source": {"type": "content", "content": 3}}
                )
            ),
            "messages[0].content[0].source.content",
        ),
        (
            body_with(messages=user_blocks({"type": "tool_use", "name": "f", "input": {}})),
            "messages[0].content[0].id",
        ),
        (
            body_with(messages=user_blocks({"type": "tool_use", "id": "t", "input": {}})),
            "messages[0].content[0].name",
        ),
        (
            body_with(
                messages=user_blocks({"type": "tool_use", "id": "t", "name": "f", "input": "{}"})
            ),
            "messages[0].content[0].input",
        ),
        (
            body_with(messages=user_blocks({"type": "tool_result", "content": "x"})),
            "messages[0].content[0].tool_use_id",
        ),
        (
            body_with(
                messages=user_blocks({"type": "tool_result", "tool_use_id": "t", "content": 1})
            ),
            "messages[0].content[0].content",
        ),
        (
            body_with(
                messages=user_blocks(
                    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}
                )
            ),
            "messages[0].content[0].content[0].source",
        ),
        (
            body_with(
                messages=user_blocks({"type": "tool_result", "tool_use_id": "t", "content": [7]})
            ),
            "messages[0].content[0].content[0]",
        ),
        (
            body_with(
                messages=user_blocks({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"})
            ),
            "messages[0].content[0].is_error",
        ),
        (body_with(messages=user_blocks({"type": "thinking"})), "messages[0].content[0].thinking"),
        (
            body_with(messages=user_blocks({"type": "thinking", "thinking": "", "signature": 1})),
            "messages[0].content[0].signature",
        ),
        (
            body_with(messages=user_blocks({"type": "redacted_thinking"})),
            "messages[0].content[0].data",
        ),
        (
            body_with(
                messages=[
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": [IMG, 3]},
                ]
            ),
            "messages[1].content[1]",
        ),
        (body_with(system=5), "system"),
        (body_with(system=[{"type": "image"}]), "system[0].type"),
        (body_with(system=["x"]), "system[0].type"),
        (body_with(system=[{"type": "text"}]), "system[0].text"),
        (body_with(tools={}), "tools"),
        (body_with(tools=["Read"]), "tools[0]"),
        (body_with(tools=[{"input_schema": {}}]), "tools[0].name"),
        (body_with(tools=[{"name": "", "input_schema": {}}]), "tools[0].name"),
        (
            body_with(tools=[{"name": "f", "description": 1, "input_schema": {}}]),
            "tools[0].description",
        ),
        (body_with(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (body_with(tools=[{"type": "custom", "name": "f"}]), "tools[0].input_schema"),
        (body_with(tools=[{"name": "f", "input_schema": "{}"}]), "tools[0].input_schema"),
        (body_with(tool_choice="auto"), "tool_choice"),
        (body_with(tool_choice={"type": "required"}), "tool_choice.type"),
        (body_with(tool_choice={"type": "tool"}), "tool_choice.name"),
        (body_with(tool_choice={"type": "tool", "name": ""}), "tool_choice.name"),
        (
            body_with(tool_choice={"type": "auto", "disable_parallel_tool_use": 1}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (body_with(thinking=True), "thinking"),
        (body_with(thinking={"type": "on"}), "thinking.type"),
        (body_with(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (
            body_with(thinking={"type": "enabled", "budget_tokens": "1024"}),
            "thinking.budget_tokens",
        ),
        (body_with(thinking={"type": "enabled", "budget_tokens": -1}), "thinking.budget_tokens"),
        (body_with(output_config="high"), "output_config"),
        (body_with(output_config={"effort": "extreme"}), "output_config.effort"),
        (body_with(output_config={"format": {"type": "text"}}), "output_config.format.type"),
        (body_with(output_config={"format": "json"}), "output_config.format"),
        (
            body_with(output_config={"format": {"type": "json_schema", "schema": []}}),
            "output_config.format.schema",
        ),
        (body_with(output_format={"type": "json_schema"}), "output_format.schema"),
        (body_with(temperature="0.5"), "temperature"),
        (body_with(temperature=True), "temperature"),
        (body_with(top_p=[1]), "top_p"),
        (body_with(top_k=1.5), "top_k"),
        (body_with(stop_sequences="END"), "stop_sequences"),
        (body_with(stop_sequences=["END", 1]), "stop_sequences[1]"),
        (body_with(stream="true"), "stream"),
    ],
)
def test_request_errors(body: Any, param: str | None) -> None:
    with pytest.raises(ir.RequestError) as exc:
        an.parse_request(body)
    assert exc.value.param == param
    assert exc.value.status == 400
    assert exc.value.message


# ---------------------------------------------------------------- the real SDK's request shapes


def capture_sdk_body(**kwargs: Any) -> dict[str, Any]:
    """The body anthropic 2.12 actually sends for messages.create(**kwargs)."""
    seen: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.read())
        return httpx2.Response(200, json=an.render_response(ir.Response("m1", "m", [])))

    client = anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="http://proxy.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    client.messages.create(**kwargs)
    return json.loads(seen[0])


def test_sdk_request_shapes() -> None:
    body = capture_sdk_body(
        model="gemini-2.5-flash",
        max_tokens=512,
        system="Be terse.",
        messages=[
            {"role": "user", "content": [IMG, {"type": "text", "text": "What is this?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_9", "name": "look", "input": {"q": 1}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "a dot"}],
            },
        ],
        tools=[{"name": "look", "description": "Look", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 1024},
        stop_sequences=["STOP"],
        extra_body={"temperature": 1},  # anthropic 2.12 has no temperature argument any more
    )
    req = an.parse_request(body)
    assert req.model == "gemini-2.5-flash"
    assert req.system == ["Be terse."]
    assert req.messages == [
        ir.Message("user", [ir.ImagePart("image/png", data=PNG), ir.TextPart("What is this?")]),
        ir.Message("assistant", [ir.ToolCallPart("toolu_9", "look", {"q": 1})]),
        ir.Message("user", [ir.ToolResultPart("toolu_9", [ir.TextPart("a dot")], name="look")]),
    ]
    assert req.tool_choice == ir.ToolChoice("required")
    assert req.parallel_tool_calls is False
    assert req.thinking == ir.Thinking(budget=1024, include_thoughts=True)
    assert (req.temperature, req.stop, req.stream) == (1.0, ["STOP"], False)


# ---------------------------------------------------------------- render_response


def test_render_response_text_and_usage() -> None:
    resp = ir.Response(
        id="msg_abc",
        model="gemini-2.5-pro",
        parts=[ir.ThinkingPart("Let me think", "sig1"), ir.TextPart("Hi!")],
        finish_reason="stop",
        usage=ir.Usage(input_tokens=100, output_tokens=20, cached_tokens=30, reasoning_tokens=5),
    )
    body = an.render_response(resp)
    assert body == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "gemini-2.5-pro",
        "content": [
            {"type": "thinking", "thinking": "Let me think", "signature": "gemini:sig1"},
            {"type": "text", "text": "Hi!"},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 70,
            "output_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 30,
        },
    }
    msg = Message.model_validate(body)
    assert msg.usage.cache_read_input_tokens == 30


def test_render_response_tool_calls_and_signatures() -> None:
    resp = ir.Response(
        id="resp-1",
        model="m",
        parts=[
            ir.TextPart("Checking."),
            ir.ToolCallPart("toolu_1", "get_weather", {"location": "Paris"}, signature="S1"),
            ir.ToolCallPart("toolu_2", "get_time", {}, signature=None),
            ir.ThinkingPart("", "S3"),
            ir.ToolCallPart("toolu_3", "f", {"a": [1]}, signature="S3"),
            ir.ThinkingPart("summary", None),
            ir.ToolCallPart("toolu_4", "g", {}, signature="S4"),
            ir.ImagePart("image/png", data=PNG),
            ir.ThinkingPart("", "opaque", redacted=True),
        ],
        finish_reason="stop",  # a late STOP never hides tool calls
    )
    body = an.render_response(resp)
    assert body["id"] == "msg_resp-1"
    assert body["stop_reason"] == "tool_use"
    assert body["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "thinking", "thinking": "", "signature": "gemini:S1"},
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "get_weather",
            "input": {"location": "Paris"},
        },
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
        {"type": "thinking", "thinking": "", "signature": "gemini:S3"},
        {"type": "tool_use", "id": "toolu_3", "name": "f", "input": {"a": [1]}},
        {"type": "thinking", "thinking": "summary", "signature": ""},
        {"type": "thinking", "thinking": "", "signature": "gemini:S4"},
        {"type": "tool_use", "id": "toolu_4", "name": "g", "input": {}},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    Message.model_validate(body)


def test_signature_round_trip_through_history() -> None:
    """What the encoder emits comes back (verbatim, as Claude clients do) as ThinkingPart("", S)
    right before the ToolCallPart."""
    resp = ir.Response("msg_1", "m", [ir.ToolCallPart("toolu_1", "f", {"x": 1}, signature="S")])
    content = an.render_response(resp)["content"]
    req = an.parse_request(
        body_with(
            messages=[{"role": "user", "content": "go"}, {"role": "assistant", "content": content}]
        )
    )
    assert req.messages[1].parts == [
        ir.ThinkingPart("", "S"),
        ir.ToolCallPart("toolu_1", "f", {"x": 1}),
    ]


def test_a_signature_this_proxy_never_gave_out_is_dropped() -> None:
    """A session begun against Anthropic itself carries Anthropic's signatures (base64, like
    Gemini's): Gemini refuses them as corrupted, so they go, noted; ours come back as they were."""
    anthropic_sig = "EqQBCkYIBxgCKkB" + "x" * 40  # the shape of a real one
    codex_sig = ir.CODEX_REASONING_PREFIX + "gAAAAB"
    content = [
        {"type": "thinking", "thinking": "from Claude", "signature": anthropic_sig},
        {"type": "thinking", "thinking": "", "signature": "gemini:CikB0e2K"},
        {"type": "thinking", "thinking": "from gpt-5", "signature": codex_sig},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]
    req = an.parse_request(
        body_with(
            messages=[{"role": "user", "content": "go"}, {"role": "assistant", "content": content}]
        )
    )
    assert [p.signature for p in req.messages[1].parts[:3]] == [None, "CikB0e2K", codex_sig]
    assert any("messages[1].content[0].signature" in note for note in req.dropped)
    assert not any("content[1]" in note or "content[2]" in note for note in req.dropped)


@pytest.mark.parametrize(
    ("reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
    ],
)
def test_stop_reasons(reason: ir.FinishReason, stop_reason: str) -> None:
    body = an.render_response(ir.Response("", "m", [ir.TextPart("x")], finish_reason=reason))
    assert body["stop_reason"] == stop_reason
    assert body["id"].startswith("msg_") and len(body["id"]) > 4
    Message.model_validate(body)


def test_render_empty_answer_and_generated_tool_id() -> None:
    body = an.render_response(ir.Response("", "m", [ir.ToolCallPart("", "f", {})]))
    assert body["content"][0]["id"].startswith("toolu_")
    assert Message.model_validate(an.render_response(ir.Response("x", "m", []))).content == []


# ---------------------------------------------------------------- stream helpers


def parse_frames(chunks: list[bytes]) -> list[tuple[str | None, dict[str, Any]]]:
    assert all(isinstance(c, bytes) and c for c in chunks), "never b'' items"
    parser = SSEParser()
    events = parser.feed(b"".join(chunks)) + parser.finish()
    return [(ev.event, json.loads(ev.data)) for ev in events]


def check_grammar(frames: list[tuple[str | None, dict[str, Any]]]) -> None:
    """docs/upstreams.md "Anthropic Messages": `event:` = data.type, message_start first, one block
    open at a time, indexes from 0, deltas match their block, signature_delta last in its block,
    message_delta then message_stop last; an error event ends everything."""
    names = [name for name, _ in frames]
    for name, data in frames:
        assert name == data["type"]
        if name != "error":
            EVENT_ADAPTER.validate_python(data)  # the SDK's own event models
    if "error" in names:
        assert names.index("error") == len(names) - 1
        frames = frames[:-1]
    if not frames:
        return
    assert names[0] == "message_start"
    assert names.count("message_start") == 1
    open_kind: str | None = None
    signed = False
    next_index = 0
    prev = "message_start"
    for name, data in frames[1:]:
        assert prev != "message_stop", f"{name} after message_stop"
        if name == "content_block_start":
            assert open_kind is None and data["index"] == next_index
            open_kind, signed = data["content_block"]["type"], False
            next_index += 1
        elif name == "content_block_delta":
            assert open_kind is not None and data["index"] == next_index - 1
            allowed = {
                "text": {"text_delta"},
                "thinking": {"thinking_delta", "signature_delta"},
                "tool_use": {"input_json_delta"},
            }[open_kind]
            assert data["delta"]["type"] in allowed
            assert not signed, "nothing after signature_delta in a thinking block"
            signed = data["delta"]["type"] == "signature_delta"
        elif name == "content_block_stop":
            assert open_kind is not None and data["index"] == next_index - 1
            open_kind = None
        elif name == "message_delta":
            assert open_kind is None
        else:
            assert name == "message_stop" and prev == "message_delta"
        prev = name


def sdk_accumulate(frames: list[tuple[str | None, dict[str, Any]]]) -> Any:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for _, data in frames:
        snapshot = accumulate_event(
            event=EVENT_ADAPTER.validate_python(data), current_snapshot=snapshot, json_bufs=bufs
        )
    return snapshot


def run(events: list[ir.Event], model: str = "claude-sonnet-4-5", finish: bool = True) -> list:
    enc = an.StreamEncoder(model)
    chunks: list[bytes] = []
    for ev in events:
        chunks += enc.encode(ev)
    if finish:
        chunks += enc.finish()
    frames = parse_frames(chunks)
    check_grammar(frames)
    return frames


def names(frames: list) -> list[str]:
    return [n for n, _ in frames]


def blocks(frames: list) -> list[tuple[str, int, Any]]:
    """(event, index, block-or-delta) for the content events."""
    out = []
    for name, data in frames:
        if name == "content_block_start":
            out.append(("start", data["index"], data["content_block"]))
        elif name == "content_block_delta":
            out.append(("delta", data["index"], data["delta"]))
        elif name == "content_block_stop":
            out.append(("stop", data["index"], None))
    return out


USAGE = ir.Usage(input_tokens=377, output_tokens=65, cached_tokens=77)

# ---------------------------------------------------------------- stream sequences


def test_stream_text_only() -> None:
    frames = run(
        [
            ir.StreamStart("resp-9", "gemini-2.5-pro"),
            ir.UsageUpdate(ir.Usage(input_tokens=377)),
            ir.TextDelta("Hel"),
            ir.TextDelta(""),
            ir.TextDelta("lo"),
            ir.UsageUpdate(USAGE),
            ir.Finish("stop"),
        ]
    )
    assert names(frames) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert frames[0][1] == {
        "type": "message_start",
        "message": {
            "id": "msg_resp-9",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 377,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    }
    assert blocks(frames) == [
        ("start", 0, {"type": "text", "text": ""}),
        ("delta", 0, {"type": "text_delta", "text": "Hel"}),
        ("delta", 0, {"type": "text_delta", "text": "lo"}),
        ("stop", 0, None),
    ]
    assert frames[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 300,
            "output_tokens": 65,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 77,
        },
    }
    assert frames[-1][1] == {"type": "message_stop"}
    msg = sdk_accumulate(frames)
    assert [b.text for b in msg.content] == ["Hello"]
    assert (msg.stop_reason, msg.usage.output_tokens, msg.usage.input_tokens) == (
        "end_turn",
        65,
        300,
    )


def test_stream_thinking_signature_then_text() -> None:
    frames = run(
        [
            ir.StreamStart("x", "m"),
            ir.ThinkingDelta("Let me "),
            ir.ThinkingDelta("think."),
            ir.ThinkingDelta("", signature="sigA"),
            ir.ThinkingDelta("More", signature="sigB"),  # after a signature: a new block
            ir.TextDelta("Answer"),
            ir.Finish("stop"),
        ]
    )
    assert blocks(frames) == [
        ("start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("delta", 0, {"type": "thinking_delta", "thinking": "Let me "}),
        ("delta", 0, {"type": "thinking_delta", "thinking": "think."}),
        ("delta", 0, {"type": "signature_delta", "signature": "gemini:sigA"}),
        ("stop", 0, None),
        ("start", 1, {"type": "thinking", "thinking": "", "signature": ""}),
        ("delta", 1, {"type": "thinking_delta", "thinking": "More"}),
        ("delta", 1, {"type": "signature_delta", "signature": "gemini:sigB"}),
        ("stop", 1, None),
        ("start", 2, {"type": "text", "text": ""}),
        ("delta", 2, {"type": "text_delta", "text": "Answer"}),
        ("stop", 2, None),
    ]
    msg = sdk_accumulate(frames)
    assert [(b.type, getattr(b, "signature", None)) for b in msg.content] == [
        ("thinking", "gemini:sigA"),
        ("thinking", "gemini:sigB"),
        ("text", None),
    ]
    assert msg.content[0].thinking == "Let me think."


def test_stream_text_and_two_tool_calls() -> None:
    frames = run(
        [
            ir.StreamStart("x", "m"),
            ir.UsageUpdate(ir.Usage(input_tokens=10)),
            ir.TextDelta("I'll check the weather."),
            ir.ToolCallStart("toolu_A", "get_weather"),
            ir.ToolCallDelta("toolu_A", '{"location": '),
            ir.ToolCallDelta("toolu_A", '"Paris"}'),
            ir.ToolCallEnd("toolu_A", {"location": "Paris"}),
            ir.ToolCallStart("toolu_B", "get_time"),  # Gemini style: whole call, no fragments
            ir.ToolCallEnd("toolu_B", {"tz": "CET"}),
            ir.ToolCallStart("toolu_C", "no_args"),
            ir.ToolCallEnd("toolu_C", {}),
            ir.Finish("stop"),  # late STOP: still tool_use
        ]
    )
    assert names(frames) == [
        "message_start",
        *["content_block_start", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_delta", "content_block_delta"],
        "content_block_stop",
        *["content_block_start", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_stop"],
        "message_delta",
        "message_stop",
    ]
    assert blocks(frames)[3:] == [
        ("start", 1, {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {}}),
        ("delta", 1, {"type": "input_json_delta", "partial_json": '{"location": '}),
        ("delta", 1, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
        ("stop", 1, None),
        ("start", 2, {"type": "tool_use", "id": "toolu_B", "name": "get_time", "input": {}}),
        ("delta", 2, {"type": "input_json_delta", "partial_json": '{"tz":"CET"}'}),
        ("stop", 2, None),
        ("start", 3, {"type": "tool_use", "id": "toolu_C", "name": "no_args", "input": {}}),
        ("stop", 3, None),
    ]
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"
    msg = sdk_accumulate(frames)
    assert [getattr(b, "input", None) for b in msg.content] == [
        None,
        {"location": "Paris"},
        {"tz": "CET"},
        {},
    ]


def test_stream_tool_call_with_signature() -> None:
    frames = run(
        [
            ir.ThinkingDelta("plan"),
            ir.ToolCallStart("call_1", "Read", signature="GEMSIG"),
            ir.ToolCallEnd("call_1", {"file_path": "/x"}),
            ir.Finish("tool_calls"),
        ]
    )
    assert blocks(frames) == [
        ("start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("delta", 0, {"type": "thinking_delta", "thinking": "plan"}),
        ("stop", 0, None),
        ("start", 1, {"type": "thinking", "thinking": "", "signature": ""}),
        ("delta", 1, {"type": "signature_delta", "signature": "gemini:GEMSIG"}),
        ("stop", 1, None),
        ("start", 2, {"type": "tool_use", "id": "call_1", "name": "Read", "input": {}}),
        ("delta", 2, {"type": "input_json_delta", "partial_json": '{"file_path":"/x"}'}),
        ("stop", 2, None),
    ]
    msg = sdk_accumulate(frames)
    # the accumulated message, sent back as history, yields the signature before the call
    history = [b.model_dump(exclude_none=True) for b in msg.content]
    req = an.parse_request(
        body_with(
            messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": history}]
        )
    )
    assert req.messages[1].parts[1:] == [
        ir.ThinkingPart("", "GEMSIG"),
        ir.ToolCallPart("call_1", "Read", {"file_path": "/x"}),
    ]


def test_stream_signature_already_on_the_preceding_thinking_block() -> None:
    frames = run(
        [
            ir.ThinkingDelta("t", signature="S"),
            ir.ToolCallStart("c1", "f", signature="S"),
            ir.ToolCallEnd("c1", {}),
            ir.Finish("stop"),
        ]
    )
    assert blocks(frames) == [
        ("start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("delta", 0, {"type": "thinking_delta", "thinking": "t"}),
        ("delta", 0, {"type": "signature_delta", "signature": "gemini:S"}),
        ("stop", 0, None),
        ("start", 1, {"type": "tool_use", "id": "c1", "name": "f", "input": {}}),
        ("stop", 1, None),
    ]


def test_stream_usage_before_start_and_no_stream_start() -> None:
    frames = run([ir.UsageUpdate(USAGE), ir.TextDelta("a"), ir.Finish("length")])
    start = frames[0][1]["message"]
    assert start["id"].startswith("msg_") and len(start["id"]) > 4
    assert start["usage"]["input_tokens"] == 300
    assert start["usage"]["cache_read_input_tokens"] == 77
    assert frames[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_stream_empty_answer_is_a_valid_message() -> None:
    frames = run([ir.StreamStart("msg_x", "m"), ir.UsageUpdate(USAGE), ir.Finish("stop")])
    assert names(frames) == ["message_start", "message_delta", "message_stop"]
    assert frames[0][1]["message"]["id"] == "msg_x"
    assert sdk_accumulate(frames).content == []


@pytest.mark.parametrize(
    ("status", "etype"),
    [
        (529, "overloaded_error"),
        (503, "overloaded_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
    ],
)
def test_stream_error_mid_stream(status: int, etype: str) -> None:
    enc = an.StreamEncoder("m")
    chunks = enc.encode(ir.TextDelta("par")) + enc.error("Overloaded", status)
    assert enc.encode(ir.TextDelta("tial")) == []
    assert enc.finish() == []
    assert enc.error("again") == []
    frames = parse_frames(chunks)
    check_grammar(frames)
    assert names(frames) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    assert frames[-1][1] == {"type": "error", "error": {"type": etype, "message": "Overloaded"}}
    assert an.error_body(status, "Overloaded") == frames[-1][1]


def test_stream_error_event_from_upstream() -> None:
    frames = run(
        [ir.TextDelta("x"), ir.StreamError("quota", 429), ir.TextDelta("y"), ir.Finish("stop")]
    )
    assert names(frames)[-1] == "error"
    assert frames[-1][1]["error"] == {"type": "rate_limit_error", "message": "quota"}


def test_stream_finish_without_finish_event() -> None:
    frames = run([ir.StreamStart("x", "m"), ir.TextDelta("cut")])
    assert names(frames) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert frames[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended before completion"},
    }
    # nothing at all from upstream: just the error
    assert names(run([])) == ["error"]


def test_stream_image_out_ignored_and_stray_tool_events() -> None:
    frames = run(
        [
            ir.ImageOut("image/png", PNG),
            ir.ToolCallDelta("nope", "{}"),
            ir.ToolCallEnd("nope", {"a": 1}),
            ir.TextDelta("ok"),
            ir.Finish("stop"),
        ]
    )
    assert [b[0] for b in blocks(frames)] == ["start", "delta", "stop"]


# ---------------------------------------------------------------- the real SDK over a transport


def sdk_client(chunks: list[bytes]) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=b"".join(chunks)
        )

    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="http://proxy.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def encode_all(events: list[ir.Event]) -> list[bytes]:
    enc = an.StreamEncoder("claude-sonnet-4-5")
    out = [frame for ev in events for frame in enc.encode(ev)]
    return out + enc.finish()


def test_sdk_messages_stream_end_to_end() -> None:
    chunks = encode_all(
        [
            ir.StreamStart("r1", "gemini-2.5-pro"),
            ir.UsageUpdate(ir.Usage(input_tokens=12)),
            ir.ThinkingDelta("hmm", signature="S0"),
            ir.TextDelta("Reading."),
            ir.ToolCallStart("toolu_X", "Read", signature="S1"),
            ir.ToolCallDelta("toolu_X", '{"file_path":'),
            ir.ToolCallDelta("toolu_X", '"/a"}'),
            ir.ToolCallEnd("toolu_X", {"file_path": "/a"}),
            ir.UsageUpdate(ir.Usage(input_tokens=12, output_tokens=9)),
            ir.Finish("stop"),
        ]
    )
    client = sdk_client(chunks)
    with client.messages.stream(
        model="gemini-2.5-pro", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        texts = list(stream.text_stream)
        msg = stream.get_final_message()
    assert texts == ["Reading."]
    assert msg.stop_reason == "tool_use"
    assert msg.usage.output_tokens == 9
    assert [b.type for b in msg.content] == ["thinking", "text", "thinking", "tool_use"]
    assert msg.content[3].input == {"file_path": "/a"}
    assert msg.content[2].signature == "gemini:S1"


def test_sdk_raises_on_stream_error_event() -> None:
    enc = an.StreamEncoder("m")
    chunks = enc.encode(ir.TextDelta("x")) + enc.error("Overloaded", 529)
    client = sdk_client(chunks)
    with (
        pytest.raises(anthropic.APIStatusError) as exc,
        client.messages.stream(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert exc.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


# ---------------------------------------------------------------- errors, models


def test_error_body_and_types() -> None:
    assert an.error_body(400, "bad `model`") == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad `model`"},
    }
    assert an.error_type(418) == "invalid_request_error"
    assert an.error_type(599) == "api_error"
    assert an.error_type(504) == "timeout_error"


def test_models_list() -> None:
    body = an.models_list(["gemini-2.5-pro", "gpt-5"])
    assert body["has_more"] is False
    assert (body["first_id"], body["last_id"]) == ("gemini-2.5-pro", "gpt-5")
    assert body["data"][0] == {
        "type": "model",
        "id": "gemini-2.5-pro",
        "display_name": "gemini-2.5-pro",
        "created_at": an.MODEL_CREATED_AT,
        "lifecycle": "active",
    }
    for model in body["data"]:
        ModelInfo.model_validate(model)
    assert an.models_list([]) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


# ---------------------------------------------------------------- property tests

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*prefix, i))
    return out


def mutate(body: dict, path: tuple, value: Any) -> dict:
    body = copy.deepcopy(body)
    if not path:
        return value
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def valid_bodies() -> list[dict[str, Any]]:
    sdk_like = body_with(
        messages=[
            {
                "role": "user",
                "content": [IMG, {"type": "document", "source": {"type": "text", "data": "d"}}],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": [IMG]}],
            },
        ],
        tool_choice={"type": "tool", "name": "f"},
        output_config={"format": {"type": "json_schema", "schema": {}}},
        stop_sequences=["x"],
    )
    return [claude_code_body(), sdk_like]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_property_any_json_only_request_error(value: Any) -> None:
    for body in (
        value,
        body_with(messages=value),
        body_with(messages=[{"role": "user", "content": value}]),
    ):
        with contextlib.suppress(ir.RequestError):
            an.parse_request(body)


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [leaf for v in obj.values() for leaf in _leaves(v)]
    if isinstance(obj, list):
        return [leaf for v in obj for leaf in _leaves(v)]
    return [obj]


# Keys and string values of real bodies: mutations then hit the parser's interesting branches.
KEYS = sorted({p[-1] for b in valid_bodies() for p in paths(b) if p and isinstance(p[-1], str)})
VALUES = sorted(
    {v for b in valid_bodies() for v in _leaves(b) if isinstance(v, str) and len(v) < 20}
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=1),
    st.data(),
    JSON | st.sampled_from(VALUES),
)
def test_property_mutated_bodies_only_request_error(
    which: int, data: st.DataObject, value: Any
) -> None:
    body = valid_bodies()[which]
    path = data.draw(st.sampled_from(paths(body)))
    key = data.draw(st.none() | st.sampled_from(KEYS))
    if key is not None and path and isinstance(value, dict):
        value = {key: value}
    mutated = mutate(body, path, value)
    for count in (False, True):
        try:
            an.parse_request(mutated, count_tokens=count)
        except ir.RequestError as exc:
            assert isinstance(exc.message, str) and exc.message


IDS = st.sampled_from(["toolu_1", "toolu_2", "", "call_3"])
SMALL = st.text(max_size=6)
SIG = st.none() | st.text(min_size=1, max_size=6)  # decoders never emit an empty signature
USAGES = st.builds(
    ir.Usage,
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 100),
)
EVENTS = st.one_of(
    st.builds(ir.StreamStart, SMALL, SMALL),
    st.builds(ir.TextDelta, SMALL),
    st.builds(ir.ThinkingDelta, SMALL, st.none() | SMALL),
    st.builds(ir.ToolCallStart, IDS, SMALL, st.none() | SMALL),
    st.builds(ir.ToolCallDelta, IDS, st.sampled_from(["", "{", '"a":1', "}", '{"b":2}'])),
    st.builds(
        ir.ToolCallEnd,
        IDS,
        st.dictionaries(SMALL, st.integers() | SMALL, max_size=2),
    ),
    st.builds(ir.ImageOut, SMALL, SMALL),
    st.builds(ir.UsageUpdate, USAGES),
    st.builds(
        ir.Finish, st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error"])
    ),
    st.builds(ir.StreamError, SMALL, st.integers(100, 599)),
)


def encode_events(events: list[ir.Event], err: bool, end: bool) -> list:
    enc = an.StreamEncoder("m")
    chunks: list[bytes] = []
    for ev in events:
        chunks += enc.encode(ev)
    if err:
        chunks += enc.error("late failure", 503)
    if end:
        chunks += enc.finish()
    frames = parse_frames(chunks)
    check_grammar(frames)
    return frames


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENTS, max_size=25), st.booleans(), st.booleans())
def test_property_stream_never_raises_and_is_well_formed(
    events: list[ir.Event], end: bool, err: bool
) -> None:
    """Any order, stray and garbage events included: never raises, grammar always holds."""
    frames = encode_events(events, err, end)
    if any(name == "message_stop" for name, _ in frames):
        assert not err and end


@st.composite
def tool_call_group(draw: st.DrawFn) -> list[ir.Event]:
    """One whole call as decoders emit it: Start, the JSON text split into fragments (or none,
    Gemini style), End with the parsed arguments."""
    call_id = draw(IDS)
    args = draw(st.dictionaries(SMALL, st.integers() | SMALL, max_size=3))
    text = json.dumps(args)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
    fragments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    if draw(st.booleans()):
        fragments = []
    start = ir.ToolCallStart(call_id, draw(SMALL), draw(SIG))
    return [
        start,
        *(ir.ToolCallDelta(call_id, f) for f in fragments),
        ir.ToolCallEnd(call_id, args),
    ]


CONTENT = st.one_of(
    st.builds(ir.TextDelta, SMALL).map(lambda e: [e]),
    # an empty unsigned ThinkingDelta is a no-op here but opens a part in ResponseAccumulator
    st.builds(ir.ThinkingDelta, SMALL, SIG)
    .filter(lambda e: e.text or e.signature)
    .map(lambda e: [e]),
    st.builds(ir.UsageUpdate, USAGES).map(lambda e: [e]),
    st.builds(ir.ImageOut, SMALL, SMALL).map(lambda e: [e]),
    tool_call_group(),
)


WIRE_KEYS = ("type", "text", "thinking", "signature", "id", "name", "input", "data")


def normalize(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks reduced to their wire fields; generated tool ids (for upstream calls without an id)
    differ between the two paths."""
    out = []
    for block in content:
        block = {k: v for k, v in block.items() if k in WIRE_KEYS}
        if block["type"] == "tool_use" and block["id"] not in ("toolu_1", "toolu_2", "call_3"):
            block["id"] = "<generated>"
        out.append(block)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CONTENT, max_size=10), st.sampled_from(["stop", "length", "tool_calls"]))
def test_property_stream_rebuilt_by_the_sdk(groups: list[list[ir.Event]], reason: Any) -> None:
    """Well-formed upstream events: the SDK's accumulator rebuilds exactly the answer the
    non-stream path renders (same blocks, same tool inputs, same stop_reason)."""
    events = [ev for group in groups for ev in group] + [ir.Finish(reason)]
    frames = encode_events(events, err=False, end=True)
    msg = sdk_accumulate(frames)
    Message.model_validate(msg.model_dump(warnings=False))
    acc = ResponseAccumulator("r", "m")
    acc.extend(events)
    expected = an.render_response(acc.response())
    got = [b.model_dump(exclude_none=True) for b in msg.content]
    assert normalize(got) == normalize(expected["content"])
    assert msg.stop_reason == expected["stop_reason"]


PARTS = st.one_of(
    st.builds(ir.TextPart, SMALL),
    st.builds(ir.ImagePart, SMALL, SMALL),
    st.builds(ir.ThinkingPart, SMALL, st.none() | SMALL, st.booleans()),
    st.builds(
        ir.ToolCallPart,
        IDS,
        SMALL,
        st.dictionaries(SMALL, st.integers(), max_size=2),
        st.none() | SMALL,
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(PARTS, max_size=8),
    st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error"]),
    USAGES,
)
def test_property_render_response_is_a_valid_message(
    parts: list, reason: ir.FinishReason, usage: ir.Usage
) -> None:
    body = an.render_response(ir.Response("r", "m", parts, reason, usage))
    msg = Message.model_validate(body)
    assert msg.usage.input_tokens >= 0
    calls = [p for p in parts if isinstance(p, ir.ToolCallPart)]
    assert [b.name for b in msg.content if b.type == "tool_use"] == [c.name for c in calls]
    # round trip: the rendered content parses back; tool ids and text survive
    history = body_with(
        messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": body["content"]},
        ]
    )
    back = an.parse_request(history).messages[1].parts
    assert [p.text for p in back if isinstance(p, ir.TextPart)] == [
        p.text for p in parts if isinstance(p, ir.TextPart)
    ]
    assert [p.id for p in back if isinstance(p, ir.ToolCallPart)] == [
        b.id for b in msg.content if b.type == "tool_use"
    ]


def test_huge_numbers_are_a_request_error_not_a_crash() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "temperature": 10**400}  # fmt: skip
    with pytest.raises(ir.RequestError) as err:
        an.parse_request(body)
    assert err.value.param == "temperature" and "finite" in err.value.message
