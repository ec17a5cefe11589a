"""OpenAI Responses dialect (non-Codex upstreams): request parsing, response rendering, stream
encoding, errors.

Shapes follow docs/upstreams.md "Codex request body", "Codex SSE events", "OpenAI Responses" and
what Codex CLI 0.169 and the openai 3.54.0 SDK send (docs/upstreams.md "Codex CLI", "Python SDKs").
The SDK is used twice: its pydantic types validate every object and event we produce, and a real
client runs against an httpx MockTransport backed by this module.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import openai_responses
from cliproxy.translators.openai_responses import StreamEncoder
from cliproxy.translators.openai_responses import error_body
from cliproxy.translators.openai_responses import parse_request
from cliproxy.translators.openai_responses import render_response
from cliproxy.translators.sse import SSEParser
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from openai.types.responses import Response
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

EVENT = TypeAdapter(ResponseStreamEvent)
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PNG_URL = f"data:image/png;base64,{PNG_B64}"
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": WEATHER_PARAMS,
    "strict": False,
}
WEATHER_IR = ir.Tool("get_weather", "Weather for a city", WEATHER_PARAMS)


def req(**kw: Any) -> ir.Request:
    """An expected ir.Request with the usual model."""
    kw.setdefault("model", "gemini-2.5-pro")
    return ir.Request(**kw)


def body(input_: Any, **kw: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-pro", "input": input_, **kw}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def user_ir(text: str) -> ir.Message:
    return ir.Message("user", [ir.TextPart(text)])


HI = [user("Hi")]
HI_IR = [user_ir("Hi")]

# ================================================================ a real Codex CLI 0.169 body

APPLY_PATCH_GRAMMAR = (
    "start: begin_patch hunk+ end_patch\n"
    'begin_patch: "*** Begin Patch" LF\n'
    'end_patch: "*** End Patch" LF?\n'
    "hunk: add_hunk | delete_hunk | update_hunk\n"
    'add_hunk: "*** Add File: " filename LF add_line+\n'
    'delete_hunk: "*** Delete File: " filename LF\n'
    'update_hunk: "*** Update File: " filename LF change_move? change?\n'
    "filename: /(.+)/\n"
    'add_line: "+" /(.*)/ LF -> line\n'
    "%import common.LF\n"
)
APPLY_PATCH_DESC = (
    "Use the `apply_patch` tool to edit files. "
    "This is a FREEFORM tool, so do not wrap the patch in JSON."
)
EXEC_PARAMS = {
    "type": "object",
    "properties": {
        "cmd": {"type": "string", "description": "Shell command to execute."},
        "workdir": {"type": "string"},
        "yield_time_ms": {"type": "number"},
        "max_output_tokens": {"type": "number"},
    },
    "required": ["cmd"],
    "additionalProperties": False,
}
EXEC_DESC = "Runs a command in a PTY, returning output or a session ID for ongoing interaction."
DEV_PERMISSIONS = (
    "<permissions instructions>\nFilesystem sandboxing defines which files can be read or "
    "written. `sandbox_mode` is `read-only`.\nApproval policy is currently never.\n"
    "</permissions instructions>"
)
DEV_SKILLS = "<skills_instructions>\n## Skills\nNo skills are installed.\n</skills_instructions>"
ENV_CONTEXT = (
    "<environment_context>\n  <cwd>/tmp/codex-work</cwd>\n  <shell>bash</shell>\n"
    "  <current_date>2026-05-02</current_date>\n</environment_context>"
)
EXEC_OUTPUT = (
    "Chunk ID: 7f3c2a\nWall time: 0.0021 seconds\nProcess exited with code 0\n"
    "Original token count: 5\nOutput:\nhello from a file\n"
)
CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.5",
    "input": [
        {
            "type": "message",
            "id": "msg_0c1",
            "role": "developer",
            "content": [{"type": "input_text", "text": DEV_PERMISSIONS}],
        },
        {
            "type": "message",
            "id": "msg_0c2",
            "role": "developer",
            "content": [{"type": "input_text", "text": DEV_SKILLS}],
        },
        {
            "type": "message",
            "id": "msg_0c3",
            "role": "user",
            "content": [{"type": "input_text", "text": ENV_CONTEXT}],
        },
        {
            "type": "message",
            "id": "msg_0c4",
            "role": "user",
            "content": [{"type": "input_text", "text": "What does hello.txt say?"}],
        },
        {
            "type": "reasoning",
            "id": "rs_0c5",
            "summary": [{"type": "summary_text", "text": "**Reading the file**"}],
            "content": None,
            "encrypted_content": None,
        },
        {
            "type": "function_call",
            "id": "fc_0c6",
            "status": "completed",
            "name": "exec_command",
            "arguments": '{"cmd":"cat hello.txt","yield_time_ms":10000}',
            "call_id": "call_Qx81",
        },
        {
            "type": "function_call_output",
            "id": "fco_0c7",
            "call_id": "call_Qx81",
            "output": EXEC_OUTPUT,
        },
    ],
    "tools": [
        {
            "type": "function",
            "name": "exec_command",
            "description": EXEC_DESC,
            "strict": False,
            "parameters": EXEC_PARAMS,
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": APPLY_PATCH_DESC,
            "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR},
        },
        {
            "type": "tool_search",
            "execution": "client",
            "description": "Search the available tools.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
        {"type": "web_search", "external_web_access": False},
        {
            "type": "namespace",
            "name": "multi_agent_v1",
            "description": "Tools for spawning and managing sub-agents.",
            "tools": [
                {
                    "type": "function",
                    "name": "spawn_agent",
                    "description": "Spawn a sub-agent.",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {}},
                }
            ],
        },
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "019a3c1e-7b2d-7f00-9c4e-2d5f8a1b3c4d",
    "client_metadata": {"x-codex-installation-id": "3f0c7a52-1d9e-4b8f-a6c2-5e7d9b1f0a34"},
    "text": {"verbosity": "low"},
}
APPLY_PATCH_PARAMS = {
    "type": "object",
    "properties": {
        "input": {
            "type": "string",
            "description": "The raw input text for this tool, as plain text (not JSON). "
            "It must match this lark grammar:\n" + APPLY_PATCH_GRAMMAR,
        }
    },
    "required": ["input"],
}
CODEX_IR = ir.Request(
    model="gpt-5.5",
    system=[DEV_PERMISSIONS, DEV_SKILLS],
    messages=[
        user_ir(ENV_CONTEXT),
        user_ir("What does hello.txt say?"),
        ir.Message(
            "assistant",
            [
                ir.ThinkingPart("**Reading the file**"),
                ir.ToolCallPart(
                    "call_Qx81", "exec_command", {"cmd": "cat hello.txt", "yield_time_ms": 10000}
                ),
            ],
        ),
        ir.Message(
            "user", [ir.ToolResultPart("call_Qx81", [ir.TextPart(EXEC_OUTPUT)], "exec_command")]
        ),
    ],
    tools=[
        ir.Tool("exec_command", EXEC_DESC, EXEC_PARAMS),
        ir.Tool("apply_patch", APPLY_PATCH_DESC, APPLY_PATCH_PARAMS),
    ],
    tool_choice=ir.ToolChoice("auto"),
    parallel_tool_calls=True,
    stream=True,
    thinking=ir.Thinking(effort="medium"),
    dropped=[
        "custom tool apply_patch: exposed as a function with one string 'input'",
        "dropped tool tool_search: not supported by this upstream",
        "dropped tool web_search: not supported by this upstream",
        "dropped tool namespace multi_agent_v1: not supported by this upstream",
    ],
    extras={
        "responses_custom_tools": ["apply_patch"],
        "custom_tool_formats": {
            "apply_patch": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR}
        },
    },
)


def test_parse_codex_cli_body() -> None:
    assert parse_request(CODEX_BODY) == CODEX_IR


def test_parse_codex_cli_body_is_not_mutated() -> None:
    before = json.dumps(CODEX_BODY, sort_keys=True)
    parse_request(CODEX_BODY)
    assert json.dumps(CODEX_BODY, sort_keys=True) == before


# ================================================================ parse_request: valid input

PARSE_CASES: list[tuple[str, dict[str, Any], ir.Request]] = [
    (
        "string input with instructions",
        body("Hello", instructions="Be terse."),
        req(system=["Be terse."], messages=[user_ir("Hello")]),
    ),
    (
        "instructions come before leading developer and system messages",
        body(
            [
                {"role": "developer", "content": "Answer in French."},
                {"role": "system", "content": [{"type": "input_text", "text": "No emoji."}]},
                user("Hello"),
            ],
            instructions="Be terse.",
        ),
        req(system=["Be terse.", "Answer in French.", "No emoji."], messages=[user_ir("Hello")]),
    ),
    (
        "a later developer message becomes a system message in the conversation",
        body([user("a"), {"role": "developer", "content": "now be brief"}, user("b")]),
        req(
            messages=[
                user_ir("a"),
                ir.Message("system", [ir.TextPart("now be brief")]),
                user_ir("b"),
            ]
        ),
    ),
    (
        "easy input messages (role without type), string content",
        body([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]),
        req(messages=[user_ir("Hi"), ir.Message("assistant", [ir.TextPart("Hello!")])]),
    ),
    (
        "input_image data URL and http URL, detail ignored",
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is it?"},
                        {"type": "input_image", "image_url": PNG_URL, "detail": "auto"},
                        {"type": "input_image", "image_url": "https://example.com/cat.webp"},
                    ],
                }
            ]
        ),
        req(
            messages=[
                ir.Message(
                    "user",
                    [
                        ir.TextPart("What is it?"),
                        ir.ImagePart("image/png", PNG_B64),
                        ir.ImagePart("image/webp", url="https://example.com/cat.webp"),
                    ],
                )
            ]
        ),
    ),
    (
        "input_file data URL, plain base64 with filename, http URL",
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_file",
                            "filename": "a.pdf",
                            "file_data": "data:application/pdf;base64,JVBERi0=",
                        },
                        {"type": "input_file", "filename": "n.txt", "file_data": "aGk="},
                        {"type": "input_file", "file_url": "https://example.com/r.pdf?x=1"},
                    ],
                }
            ]
        ),
        req(
            messages=[
                ir.Message(
                    "user",
                    [
                        ir.ImagePart("application/pdf", "JVBERi0="),
                        ir.ImagePart("text/plain", "aGk="),
                        ir.ImagePart("application/pdf", url="https://example.com/r.pdf?x=1"),
                    ],
                )
            ]
        ),
    ),
    (
        "file_id references are dropped with a note",
        body(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "see"},
                        {"type": "input_image", "file_id": "file-1"},
                        {"type": "input_file", "file_id": "file-2"},
                        {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                    ],
                }
            ]
        ),
        req(
            messages=[user_ir("see")],
            dropped=[
                "input[0].content[1]: image by file_id is not supported (send a data URL)",
                "input[0].content[2]: file without inline file_data (file_id is not supported)",
                "input[0].content[3]: content part type 'input_audio' not supported",
            ],
        ),
    ),
    (
        "assistant history: output_text, refusal, reasoning and calls merge into one turn",
        body(
            [
                user("q"),
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [
                        {"type": "summary_text", "text": "first"},
                        {"type": "summary_text", "text": "second"},
                    ],
                    "encrypted_content": "gAAAAB-opaque",
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "Checking.", "annotations": []},
                        {"type": "refusal", "refusal": "Not that."},
                    ],
                },
                {
                    "type": "function_call",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                    "call_id": "call_A",
                },
                {
                    "type": "function_call",
                    "name": "get_weather",
                    "arguments": '{"location":"Rome"}',
                    "call_id": "call_B",
                },
                {"type": "function_call_output", "call_id": "call_A", "output": "18C"},
                {"type": "function_call_output", "call_id": "call_B", "output": "21C"},
            ]
        ),
        req(
            messages=[
                user_ir("q"),
                ir.Message(
                    "assistant",
                    [
                        ir.ThinkingPart("first\n\nsecond", "codex-rs:gAAAAB-opaque"),
                        ir.TextPart("Checking."),
                        ir.TextPart("Not that."),
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
        ),
    ),
    (
        "reasoning: encrypted only, raw content fallback, empty item skipped",
        body(
            [
                user("q"),
                {"type": "reasoning", "summary": [], "encrypted_content": "enc1"},
                {"type": "reasoning", "summary": [], "content": None},
                {
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "raw thought"}],
                },
            ]
        ),
        req(
            messages=[
                user_ir("q"),
                ir.Message(
                    "assistant",
                    [ir.ThinkingPart("", "codex-rs:enc1"), ir.ThinkingPart("raw thought")],
                ),
            ]
        ),
    ),
    (
        "custom tool call and output (apply_patch round trip)",
        body(
            [
                user("fix it"),
                {
                    "type": "custom_tool_call",
                    "id": "ctc_1",
                    "status": "completed",
                    "call_id": "call_P",
                    "name": "apply_patch",
                    "input": "*** Begin Patch\n*** End Patch\n",
                },
                {
                    "type": "custom_tool_call_output",
                    "call_id": "call_P",
                    "output": "Success. Updated the following files:\nM a.py\n",
                },
            ]
        ),
        req(
            messages=[
                user_ir("fix it"),
                ir.Message(
                    "assistant",
                    [
                        ir.ToolCallPart(
                            "call_P", "apply_patch", {"input": "*** Begin Patch\n*** End Patch\n"}
                        )
                    ],
                ),
                ir.Message(
                    "user",
                    [
                        ir.ToolResultPart(
                            "call_P",
                            [ir.TextPart("Success. Updated the following files:\nM a.py\n")],
                            "apply_patch",
                        )
                    ],
                ),
            ]
        ),
    ),
    (
        "function_call_output as an array with an image; unknown call id has no name",
        body(
            [
                {
                    "type": "function_call_output",
                    "call_id": "call_V",
                    "output": [
                        {"type": "input_text", "text": "screenshot:"},
                        {"type": "input_image", "image_url": PNG_URL},
                    ],
                },
                {"type": "function_call_output", "call_id": "call_W", "output": ""},
            ]
        ),
        req(
            messages=[
                ir.Message(
                    "user",
                    [
                        ir.ToolResultPart(
                            "call_V",
                            [ir.TextPart("screenshot:"), ir.ImagePart("image/png", PNG_B64)],
                        ),
                        ir.ToolResultPart("call_W", []),
                    ],
                )
            ]
        ),
    ),
    (
        "a user message after tool outputs is its own message",
        body(
            [
                {"type": "function_call", "name": "f", "arguments": "", "call_id": "c1"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
                user("thanks"),
                {"type": "function_call_output", "call_id": "c1", "output": "again"},
            ]
        ),
        req(
            messages=[
                ir.Message("assistant", [ir.ToolCallPart("c1", "f", {})]),
                ir.Message("user", [ir.ToolResultPart("c1", [ir.TextPart("ok")], "f")]),
                user_ir("thanks"),
                ir.Message("user", [ir.ToolResultPart("c1", [ir.TextPart("again")], "f")]),
            ]
        ),
    ),
    (
        "arguments: object, non-object JSON, invalid JSON kept with a note",
        body(
            [
                {"type": "function_call", "name": "f", "arguments": {"a": 1}, "call_id": "c1"},
                {"type": "function_call", "name": "f", "arguments": "[1,2]", "call_id": "c2"},
                {"type": "function_call", "name": "f", "arguments": "{oops", "call_id": "c3"},
            ]
        ),
        req(
            messages=[
                ir.Message(
                    "assistant",
                    [
                        ir.ToolCallPart("c1", "f", {"a": 1}),
                        ir.ToolCallPart("c2", "f", {"value": [1, 2]}),
                        ir.ToolCallPart("c3", "f", {"value": "{oops"}),
                    ],
                )
            ],
            dropped=["input[2].arguments: not valid JSON; passed on as a string"],
        ),
    ),
    (
        "items the IR cannot hold are dropped with a note; id/status ignored",
        body(
            [
                user("q"),
                {"type": "local_shell_call", "id": "lsc_1", "call_id": "c", "status": "completed"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                {"type": "item_reference", "id": "msg_9"},
                {"type": "compaction", "encrypted_content": "zz"},
            ]
        ),
        req(
            messages=[user_ir("q")],
            dropped=[
                "input[1]: item type 'local_shell_call' not supported by this upstream",
                "input[2]: item type 'web_search_call' not supported by this upstream",
                "input[3]: item type 'item_reference' not supported by this upstream",
                "input[4]: item type 'compaction' not supported by this upstream",
            ],
        ),
    ),
    (
        "empty messages carry nothing; non-text system parts are noted",
        body(
            [
                {"role": "system", "content": [{"type": "input_image", "image_url": PNG_URL}]},
                {"role": "user", "content": ""},
                {"role": "assistant", "content": []},
                user("real"),
            ]
        ),
        req(
            messages=[user_ir("real")],
            dropped=["input[0].content: non-text part in a system message"],
        ),
    ),
    (
        "sampling, output format, stream and ignored keys",
        body(
            HI,
            max_output_tokens=256,
            temperature=0.2,
            top_p=0.9,
            stream=False,
            text={
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "strict": True,
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
                "verbosity": "high",
            },
            store=False,
            include=["reasoning.encrypted_content"],
            prompt_cache_key="k",
            client_metadata={"a": "b"},
            metadata={"x": "y"},
            user="u1",
            service_tier="auto",
            truncation="disabled",
            previous_response_id=None,
        ),
        req(
            messages=HI_IR,
            max_tokens=256,
            temperature=0.2,
            top_p=0.9,
            response_mime_type="application/json",
            response_schema={"type": "object", "properties": {"a": {"type": "string"}}},
        ),
    ),
    (
        "json_object and text formats",
        body(HI, text={"format": {"type": "json_object"}}),
        req(messages=HI_IR, response_mime_type="application/json"),
    ),
    (
        "unknown top-level fields are noted",
        body(HI, text={"format": {"type": "text"}}, background=False, top_logprobs=2),
        req(
            messages=HI_IR,
            dropped=[
                "background: unsupported field ignored",
                "top_logprobs: unsupported field ignored",
            ],
        ),
    ),
    (
        "tools: function (strict noted, missing type, no parameters) and custom without grammar",
        body(
            HI,
            tools=[
                {**WEATHER_TOOL, "strict": True},
                {"name": "ping"},
                {"type": "custom", "name": "note", "description": "Free text", "format": None},
                {"type": "custom", "name": "raw", "format": {"type": "text"}},
            ],
        ),
        req(
            messages=HI_IR,
            tools=[
                WEATHER_IR,
                ir.Tool("ping", "", {}),
                ir.Tool(
                    "note",
                    "Free text",
                    {
                        "type": "object",
                        "properties": {
                            "input": {
                                "type": "string",
                                "description": "The raw input text for this tool, "
                                "as plain text (not JSON).",
                            }
                        },
                        "required": ["input"],
                    },
                ),
                ir.Tool(
                    "raw",
                    "",
                    {
                        "type": "object",
                        "properties": {
                            "input": {
                                "type": "string",
                                "description": "The raw input text for this tool, "
                                "as plain text (not JSON).",
                            }
                        },
                        "required": ["input"],
                    },
                ),
            ],
            dropped=[
                "tools[0].strict: strict schema adherence is not enforced",
                "custom tool note: exposed as a function with one string 'input'",
                "custom tool raw: exposed as a function with one string 'input'",
            ],
            extras={
                "responses_custom_tools": ["note", "raw"],
                "custom_tool_formats": {"raw": {"type": "text"}},
            },
        ),
    ),
    (
        "hosted tools are dropped, one note each",
        body(
            HI,
            tools=[
                {"type": "local_shell"},
                {"type": "file_search", "vector_store_ids": ["vs_1"]},
                {"type": "code_interpreter", "container": {"type": "auto"}},
                {"type": "mcp", "server_label": "x"},
                {"type": "image_generation"},
                {"type": "computer_use_preview"},
            ],
        ),
        req(
            messages=HI_IR,
            dropped=[
                f"dropped tool {kind}: not supported by this upstream"
                for kind in [
                    "local_shell",
                    "file_search",
                    "code_interpreter",
                    "mcp",
                    "image_generation",
                    "computer_use_preview",
                ]
            ],
        ),
    ),
]


@pytest.mark.parametrize(("name", "raw", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_request(name: str, raw: dict[str, Any], expected: ir.Request) -> None:
    assert parse_request(raw) == expected


@pytest.mark.parametrize(
    ("choice", "expected", "notes"),
    [
        ("auto", ir.ToolChoice("auto"), []),
        ("none", ir.ToolChoice("none"), []),
        ("required", ir.ToolChoice("required"), []),
        ({"type": "function", "name": "get_weather"}, ir.ToolChoice("tool", "get_weather"), []),
        ({"type": "custom", "name": "apply_patch"}, ir.ToolChoice("tool", "apply_patch"), []),
        (
            {"type": "allowed_tools", "mode": "required", "tools": []},
            ir.ToolChoice("required"),
            ["tool_choice.allowed_tools: the tool subset is not enforced"],
        ),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": []},
            ir.ToolChoice("auto"),
            ["tool_choice.allowed_tools: the tool subset is not enforced"],
        ),
        (
            {"type": "web_search_preview"},
            ir.ToolChoice("auto"),
            ["tool_choice web_search_preview: not supported by this upstream; using auto"],
        ),
    ],
)
def test_tool_choice(choice: object, expected: ir.ToolChoice, notes: list[str]) -> None:
    parsed = parse_request(body(HI, tool_choice=choice, parallel_tool_calls=False))
    assert (parsed.tool_choice, parsed.parallel_tool_calls) == (expected, False)
    assert parsed.dropped == notes


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        (None, None),
        ({}, None),
        ({"effort": "high"}, ir.Thinking(effort="high")),
        ({"effort": "xhigh", "summary": "auto"}, ir.Thinking("xhigh", None, True)),
        ({"effort": "none", "summary": "none"}, ir.Thinking(effort="none")),
        ({"summary": "auto"}, ir.Thinking(include_thoughts=True)),  # Codex, unknown models
        ({"summary": "detailed"}, ir.Thinking(include_thoughts=True)),
        ({"summary": "none"}, None),
        ({"generate_summary": "concise"}, ir.Thinking(include_thoughts=True)),
        ({"effort": "minimal", "summary": None}, ir.Thinking(effort="minimal")),
    ],
)
def test_reasoning(reasoning: object, expected: ir.Thinking | None) -> None:
    assert parse_request(body(HI, reasoning=reasoning)).thinking == expected


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh"])
def test_reasoning_efforts(effort: str) -> None:
    parsed = parse_request(body(HI, reasoning={"effort": effort}))
    assert parsed.thinking == ir.Thinking(effort=effort)  # type: ignore[arg-type]


# ================================================================ parse_request: errors

ERROR_CASES: list[tuple[object, str | None, str]] = [
    ([], None, "must be a JSON object"),
    ("x", None, "must be a JSON object"),
    ({"input": "hi"}, "model", "model is required"),
    ({"model": "", "input": "hi"}, "model", "model is required"),
    ({"model": 5, "input": "hi"}, "model", "model is required"),
    (body("hi", previous_response_id="resp_1"), "previous_response_id", "no server-side state"),
    (body("hi", conversation="conv_1"), "conversation", "no server-side state"),
    ({"model": "m"}, "input", "input is required"),
    (body(""), "input", "must not be empty"),
    (body([]), "input", "input is required"),
    (body({"role": "user"}), "input", "input is required"),
    (body(HI, instructions=["x"]), "instructions", "must be a string"),
    (body(["hi"]), "input[0]", "must be an object"),
    (body([{"content": "x"}]), "input[0].type", "must be a non-empty string"),
    (body([{"type": 3}]), "input[0].type", "must be a non-empty string"),
    (body([{"role": "tool", "content": "x"}]), "input[0].role", "must be one of"),
    (body([{"type": "message", "content": "x"}]), "input[0].role", "must be one of"),
    (body([{"role": "user"}]), "input[0].content", "is required"),
    (body([{"role": "user", "content": 5}]), "input[0].content", "must be a string or an array"),
    (body([{"role": "user", "content": ["x"]}]), "input[0].content[0]", "must be an object"),
    (
        body([user("a"), {"role": "user", "content": [{"type": "input_text", "text": 1}]}]),
        "input[1].content[0].text",
        "must be a string",
    ),
    (
        body([{"role": "user", "content": [{"type": "refusal"}]}]),
        "input[0].content[0].refusal",
        "must be a string",
    ),
    (
        body([{"role": "user", "content": [{"text": "x"}]}]),
        "input[0].content[0].type",
        "must be a string",
    ),
    (
        body(
            [
                user("a"),
                user("b"),
                user("c"),
                {"role": "user", "content": [{"type": "input_image"}]},
            ]
        ),
        "input[3].content[0].image_url",
        "is required",
    ),
    (
        body(
            [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x/a.png"}]}]
        ),
        "input[0].content[0].image_url",
        "http(s) URL or a base64 data URL",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_image", "image_url": 7}]}]),
        "input[0].content[0].image_url",
        "non-empty string",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_image", "image_url": "data:xx"}]}]),
        "input[0].content[0].image_url",
        "not a valid data URL",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_file", "file_data": ""}]}]),
        "input[0].content[0].file_data",
        "non-empty string",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_file", "file_url": "file:///x"}]}]),
        "input[0].content[0].file_url",
        "http(s) URL",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_file", "filename": 1}]}]),
        "input[0].content[0].filename",
        "must be a string",
    ),
    (
        body([{"type": "function_call", "name": "f", "arguments": "{}"}]),
        "input[0].call_id",
        "non-empty string",
    ),
    (
        body([{"type": "function_call", "call_id": "c", "arguments": "{}"}]),
        "input[0].name",
        "non-empty string",
    ),
    (
        body([{"type": "function_call", "call_id": "c", "name": "f", "arguments": 3}]),
        "input[0].arguments",
        "must be a JSON string",
    ),
    (
        body([{"type": "custom_tool_call", "call_id": "c", "name": "f", "input": {}}]),
        "input[0].input",
        "must be a string",
    ),
    (body([{"type": "function_call_output", "output": "x"}]), "input[0].call_id", "non-empty"),
    (
        body([{"type": "function_call_output", "call_id": "c"}]),
        "input[0].output",
        "is required",
    ),
    (
        body([{"type": "custom_tool_call_output", "call_id": "c", "output": {"a": 1}}]),
        "input[0].output",
        "must be a string or an array",
    ),
    (
        body([{"type": "reasoning", "summary": "x"}]),
        "input[0].summary",
        "must be an array",
    ),
    (
        body([{"type": "reasoning", "summary": [{"type": "summary_text"}]}]),
        "input[0].summary[0].text",
        "must be a string",
    ),
    (
        body([{"type": "reasoning", "summary": [], "content": [1]}]),
        "input[0].content[0].text",
        "must be a string",
    ),
    (
        body([{"type": "reasoning", "summary": [], "encrypted_content": 5}]),
        "input[0].encrypted_content",
        "must be a string",
    ),
    (body(HI, tools={}), "tools", "must be an array"),
    (body(HI, tools=["x"]), "tools[0]", "must be an object"),
    (body(HI, tools=[{"type": 1}]), "tools[0].type", "must be a string"),
    (body(HI, tools=[{"type": "function"}]), "tools[0].name", "non-empty string"),
    (
        body(HI, tools=[{"type": "function", "name": "f", "description": 1}]),
        "tools[0].description",
        "must be a string",
    ),
    (
        body(HI, tools=[{"type": "function", "name": "f", "parameters": []}]),
        "tools[0].parameters",
        "must be an object",
    ),
    (
        body(HI, tools=[WEATHER_TOOL, {"type": "custom", "name": "p", "format": "lark"}]),
        "tools[1].format",
        "must be an object",
    ),
    (
        body(HI, tools=[{"type": "custom", "name": "p", "format": {"type": "grammar"}}]),
        "tools[0].format.definition",
        "must be a string",
    ),
    (body(HI, tool_choice="any"), "tool_choice", "none, auto, required"),
    (body(HI, tool_choice=1), "tool_choice", "a string or an object"),
    (body(HI, tool_choice={"type": "function"}), "tool_choice.name", "non-empty string"),
    (body(HI, tool_choice={}), "tool_choice.type", "non-empty string"),
    (body(HI, parallel_tool_calls="yes"), "parallel_tool_calls", "must be a boolean"),
    (body(HI, reasoning="high"), "reasoning", "must be an object"),
    (body(HI, reasoning={"effort": "ultra"}), "reasoning.effort", "must be one of"),
    (body(HI, reasoning={"summary": "brief"}), "reasoning.summary", "must be one of"),
    (body(HI, reasoning={"generate_summary": 1}), "reasoning.generate_summary", "must be one of"),
    (body(HI, max_output_tokens=0), "max_output_tokens", "at least 1"),
    (body(HI, max_output_tokens=1.5), "max_output_tokens", "must be an integer"),
    (body(HI, max_output_tokens=True), "max_output_tokens", "must be an integer"),
    (body(HI, temperature="hot"), "temperature", "must be a number"),
    (body(HI, top_p=10**400), "top_p", "finite number"),
    (body(HI, text="json"), "text", "must be an object"),
    (body(HI, text={"format": "json"}), "text.format", "must be an object"),
    (body(HI, text={"format": {"type": "yaml"}}), "text.format.type", "must be text"),
    (body(HI, text={"format": {"type": "json_schema"}}), "text.format.schema", "an object"),
    (body(HI, stream="true"), "stream", "must be a boolean"),
]


@pytest.mark.parametrize(("raw", "param", "fragment"), ERROR_CASES)
def test_parse_request_errors(raw: object, param: str | None, fragment: str) -> None:
    with pytest.raises(ir.RequestError) as info:
        parse_request(raw)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.status == 400


def test_previous_response_id_message() -> None:
    with pytest.raises(ir.RequestError) as info:
        parse_request(body("hi", previous_response_id="resp_abc"))
    assert info.value.message == (
        "previous_response_id is not supported: this proxy keeps no server-side state; "
        "send the full conversation in input"
    )


# ================================================================ render_response


def _validated(obj: dict[str, Any]) -> Response:
    """The SDK model accepts it, and nothing we produce is lost on the way."""
    model = Response.model_validate(obj)
    assert model.id == obj["id"] and len(model.output) == len(obj["output"])
    return model


def _usage_json(i: int = 0, o: int = 0, c: int = 0, r: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": i,
        "input_tokens_details": {"cached_tokens": c, "cache_write_tokens": 0},
        "output_tokens": o,
        "output_tokens_details": {"reasoning_tokens": r},
        "total_tokens": i + o,
    }


def _strip_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        prefix, _, rest = item["id"].partition("_")
        assert re.fullmatch(r"[0-9a-f]{32}", rest), item["id"]
        out.append({**item, "id": prefix})
    return out


def test_render_text_with_usage() -> None:
    resp = ir.Response("abc", "gemini-2.5-pro", [ir.TextPart("Hi!")], "stop", ir.Usage(12, 3))
    out = render_response(resp)
    model = _validated(out)
    assert model.output_text == "Hi!"
    assert isinstance(out["created_at"], int)
    assert {k: out[k] for k in ("id", "object", "status", "model", "error")} == {
        "id": "resp_abc",
        "object": "response",
        "status": "completed",
        "model": "gemini-2.5-pro",
        "error": None,
    }
    assert out["incomplete_details"] is None
    assert out["usage"] == _usage_json(12, 3)
    assert _strip_ids(out["output"]) == [
        {
            "id": "msg",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi!", "annotations": []}],
        }
    ]


def test_render_reasoning_calls_and_custom_tools() -> None:
    resp = ir.Response(
        "resp_x",
        "gemini-2.5-pro",
        [
            ir.ThinkingPart("plan", "gemini-opaque-sig"),
            ir.ThinkingPart("", "codex-rs:ENC"),
            ir.ThinkingPart("", "gemini-only"),  # nothing a Responses client can carry
            ir.TextPart("Patching."),
            ir.ToolCallPart("call_1", "exec_command", {"cmd": "ls"}),
            ir.ToolCallPart("call_2", "apply_patch", {"input": "*** Begin Patch\n"}),
            ir.ToolCallPart("call_3", "noargs", {}),
        ],
        "tool_calls",
        ir.Usage(100, 40, 10, 20),
    )
    out = render_response(resp, {"apply_patch"})
    _validated(out)
    assert out["id"] == "resp_x" and out["status"] == "completed"
    assert out["usage"] == _usage_json(100, 40, 10, 20)
    assert _strip_ids(out["output"]) == [
        {"id": "rs", "type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]},
        {"id": "rs", "type": "reasoning", "summary": [], "encrypted_content": "ENC"},
        {
            "id": "msg",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Patching.", "annotations": []}],
        },
        {
            "id": "fc",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"cmd":"ls"}',
            "call_id": "call_1",
            "name": "exec_command",
        },
        {
            "id": "ctc",
            "type": "custom_tool_call",
            "call_id": "call_2",
            "name": "apply_patch",
            "input": "*** Begin Patch\n",
        },
        {
            "id": "fc",
            "type": "function_call",
            "status": "completed",
            "arguments": "{}",
            "call_id": "call_3",
            "name": "noargs",
        },
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"input": "raw"}, "raw"),
        ({"patch": "renamed param"}, "renamed param"),
        ({}, ""),
        ({"a": 1, "b": "x"}, '{"a":1,"b":"x"}'),
        ({"input": 5}, "5"),
    ],
)
def test_render_custom_tool_input(args: dict[str, Any], expected: str) -> None:
    resp = ir.Response("r", "m", [ir.ToolCallPart("c", "apply_patch", args)])
    out = render_response(resp, frozenset({"apply_patch"}))
    assert out["output"][0]["input"] == expected


def test_render_image_output() -> None:
    resp = ir.Response("r", "m", [ir.ImagePart("image/png", PNG_B64), ir.ImagePart("image/x", "")])
    out = render_response(resp)
    _validated(out)
    assert _strip_ids(out["output"]) == [
        {
            "id": "ig",
            "type": "image_generation_call",
            "status": "completed",
            "result": PNG_B64,
            "output_format": "png",
        }
    ]


@pytest.mark.parametrize(
    ("reason", "status", "details"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("error", "completed", None),
        ("length", "incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "incomplete", {"reason": "content_filter"}),
    ],
)
def test_render_status(reason: ir.FinishReason, status: str, details: Any) -> None:
    out = render_response(ir.Response("r", "m", [ir.TextPart("x")], reason))
    _validated(out)
    assert (out["status"], out["incomplete_details"]) == (status, details)


def test_render_generates_an_id() -> None:
    out = render_response(ir.Response("", "m", []))
    assert re.fullmatch(r"resp_[0-9a-f]{32}", out["id"])
    assert _validated(out).output == []


# ================================================================ stream encoder


def _run(
    events: list[ir.Event], custom: frozenset[str] = frozenset(), end: bool = True
) -> list[bytes]:
    enc = StreamEncoder("gemini-2.5-pro", custom)
    frames = [f for ev in events for f in enc.encode(ev)]
    frames += enc.finish() if end else []
    return frames


def _events(frames: list[bytes]) -> list[dict[str, Any]]:
    """Parse the frames; check the framing invariants every client relies on."""
    assert all(isinstance(f, bytes) and f for f in frames)
    parser = SSEParser()
    raw = parser.feed(b"".join(frames)) + parser.finish()
    assert len(raw) == len(frames)  # one event per frame
    out = []
    for i, ev in enumerate(raw):
        data = json.loads(ev.data)
        assert ev.event == data["type"]
        assert data["sequence_number"] == i
        EVENT.validate_python(data)  # the openai SDK's own type for this event
        out.append(data)
    assert out[0]["type"] == "response.created"
    return out


_ID = re.compile(r"^(msg|rs|fc|ctc|ig)_[0-9a-f]{32}$")


def _normalized(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids -> `<prefix>#<n>` by first appearance, created_at -> 0, sequence_number dropped."""
    seen: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (0 if k == "created_at" else walk(v))
                for k, v in value.items()
                if k != "sequence_number"
            }
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and _ID.match(value):
            if value not in seen:
                seen[value] = f"{value.split('_')[0]}#{len(seen)}"
            return seen[value]
        return value

    return [walk(e) for e in events]


def _resp(status: str, output: list[Any], usage: Any = None, **kw: Any) -> dict[str, Any]:
    obj = {
        "id": "resp_r1",
        "object": "response",
        "created_at": 0,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gemini-2.5-pro",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": usage,
        "metadata": {},
    }
    obj.update(kw)
    return obj


def _msg(ref: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {"id": ref, "type": "message", "status": status, "role": "assistant", "content": content}


def _fc(ref: str, call_id: str, name: str, args: str, status: str) -> dict[str, Any]:
    return {
        "id": ref,
        "type": "function_call",
        "status": status,
        "arguments": args,
        "call_id": call_id,
        "name": name,
    }


START = [
    {"type": "response.created", "response": _resp("in_progress", [])},
    {"type": "response.in_progress", "response": _resp("in_progress", [])},
]


def test_stream_text_then_tool_call_exact() -> None:
    frames = _run(
        [
            ir.StreamStart("r1", "gemini-2.5-pro"),
            ir.TextDelta("Running "),
            ir.TextDelta("ls."),
            ir.ToolCallStart("call_xyz", "shell"),
            ir.ToolCallEnd("call_xyz", {"command": ["ls"]}),
            ir.UsageUpdate(ir.Usage(1200, 42, 1024, 16)),
            ir.Finish("stop"),
        ]
    )
    events = _normalized(_events(frames))
    at = {"item_id": "msg#0", "output_index": 0, "content_index": 0}
    fc = {"item_id": "fc#1", "output_index": 1}
    args = '{"command":["ls"]}'
    message = _msg("msg#0", "Running ls.", "completed")
    call = _fc("fc#1", "call_xyz", "shell", args, "completed")
    text_part = {"type": "output_text", "text": "Running ls.", "annotations": []}
    assert events == [
        *START,
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _msg("msg#0", None, "in_progress"),
        },
        {
            "type": "response.content_part.added",
            **at,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        {"type": "response.output_text.delta", **at, "delta": "Running ", "logprobs": []},
        {"type": "response.output_text.delta", **at, "delta": "ls.", "logprobs": []},
        {"type": "response.output_text.done", **at, "text": "Running ls.", "logprobs": []},
        {"type": "response.content_part.done", **at, "part": text_part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": _fc("fc#1", "call_xyz", "shell", "", "in_progress"),
        },
        {"type": "response.function_call_arguments.delta", **fc, "delta": args},
        {"type": "response.function_call_arguments.done", **fc, "name": "shell", "arguments": args},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {
            "type": "response.completed",
            "response": _resp("completed", [message, call], _usage_json(1200, 42, 1024, 16)),
        },
    ]


def test_stream_reasoning_with_codex_signature_exact() -> None:
    frames = _run(
        [
            ir.StreamStart("r1", "m"),
            ir.ThinkingDelta("Let me "),
            ir.ThinkingDelta("think."),
            ir.ThinkingDelta("", "codex-rs:ENC=="),
            ir.ThinkingDelta("More."),  # after a signature: a new reasoning item
            ir.Finish("stop"),
        ]
    )
    events = _normalized(_events(frames))
    ids0 = {"item_id": "rs#0", "output_index": 0, "summary_index": 0}
    ids1 = {"item_id": "rs#1", "output_index": 1, "summary_index": 0}
    first = {
        "id": "rs#0",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Let me think."}],
        "encrypted_content": "ENC==",
    }
    second = {
        "id": "rs#1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "More."}],
    }
    empty = {"type": "summary_text", "text": ""}
    assert events == [
        *START,
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "rs#0", "type": "reasoning", "summary": []},
        },
        {"type": "response.reasoning_summary_part.added", **ids0, "part": empty},
        {"type": "response.reasoning_summary_text.delta", **ids0, "delta": "Let me "},
        {"type": "response.reasoning_summary_text.delta", **ids0, "delta": "think."},
        {"type": "response.reasoning_summary_text.done", **ids0, "text": "Let me think."},
        {
            "type": "response.reasoning_summary_part.done",
            **ids0,
            "part": {"type": "summary_text", "text": "Let me think."},
        },
        {"type": "response.output_item.done", "output_index": 0, "item": first},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {"id": "rs#1", "type": "reasoning", "summary": []},
        },
        {"type": "response.reasoning_summary_part.added", **ids1, "part": empty},
        {"type": "response.reasoning_summary_text.delta", **ids1, "delta": "More."},
        {"type": "response.reasoning_summary_text.done", **ids1, "text": "More."},
        {
            "type": "response.reasoning_summary_part.done",
            **ids1,
            "part": {"type": "summary_text", "text": "More."},
        },
        {"type": "response.output_item.done", "output_index": 1, "item": second},
        {
            "type": "response.completed",
            "response": _resp("completed", [first, second], _usage_json()),
        },
    ]


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def _done_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]


def test_stream_non_codex_signatures_are_not_exposed() -> None:
    events = _events(
        _run(
            [
                ir.ThinkingDelta("", "gemini-sig"),  # nothing to carry: no item
                ir.ThinkingDelta("plan", "gemini-sig-2"),
                ir.ThinkingDelta("", "gemini-sig-3"),
                ir.ToolCallStart("c1", "f", "gemini-call-sig"),
                ir.ToolCallEnd("c1", {}),
                ir.Finish("tool_calls"),
            ]
        )
    )
    items = _done_items(events)
    assert [i["type"] for i in items] == ["reasoning", "function_call"]
    assert "encrypted_content" not in items[0]
    assert items[0]["summary"] == [{"type": "summary_text", "text": "plan"}]
    assert b"sig-x" not in b"".join(_run([ir.ThinkingDelta("", "sig-x"), ir.Finish("stop")]))


def test_stream_lone_codex_signature_opens_a_reasoning_item() -> None:
    events = _events(
        _run([ir.ThinkingDelta("", "codex-rs:E"), ir.TextDelta("x"), ir.Finish("stop")])
    )
    items = _done_items(events)
    assert items[0]["summary"] == [] and items[0]["encrypted_content"] == "E"
    assert "response.reasoning_summary_part.added" not in _types(events)


def test_stream_tool_call_fragments() -> None:
    events = _events(
        _run(
            [
                ir.ToolCallStart("call_B", "get_weather"),
                ir.ToolCallDelta("call_B", '{"location"'),
                ir.ToolCallDelta("call_B", ':"Rome"}'),
                ir.ToolCallEnd("call_B", {"location": "Rome"}),
                ir.ToolCallStart("call_C", "get_weather"),
                ir.ToolCallEnd("call_C", {}),
                ir.Finish("tool_calls"),
            ]
        )
    )
    deltas = [
        (e["output_index"], e["delta"])
        for e in events
        if e["type"] == "response.function_call_arguments.delta"
    ]
    assert deltas == [(0, '{"location"'), (0, ':"Rome"}'), (1, "{}")]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["name"], e["arguments"]) for e in done] == [
        ("get_weather", '{"location":"Rome"}'),
        ("get_weather", "{}"),
    ]
    assert [(i["call_id"], i["arguments"]) for i in _done_items(events)] == [
        ("call_B", '{"location":"Rome"}'),
        ("call_C", "{}"),
    ]
    assert events[-1]["response"]["status"] == "completed"


def test_stream_invalid_fragments_fall_back_to_final_arguments() -> None:
    events = _events(
        _run(
            [
                ir.ToolCallStart("c", "f"),
                ir.ToolCallDelta("c", '{"a":'),
                ir.ToolCallEnd("c", {"a": 1}),
                ir.Finish("stop"),
            ]
        )
    )
    assert _done_items(events)[0]["arguments"] == '{"a":1}'


def test_stream_custom_tool_call() -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    events = _normalized(
        _events(
            _run(
                [
                    ir.ToolCallStart("call_P", "apply_patch"),
                    ir.ToolCallDelta("call_P", '{"input":'),  # JSON fragments are not raw input
                    ir.ToolCallDelta("call_P", json.dumps(patch) + "}"),
                    ir.ToolCallEnd("call_P", {"input": patch}),
                    ir.Finish("tool_calls"),
                ],
                frozenset({"apply_patch"}),
            )
        )
    )
    ids = {"item_id": "ctc#0", "output_index": 0}
    item = {
        "id": "ctc#0",
        "type": "custom_tool_call",
        "call_id": "call_P",
        "name": "apply_patch",
        "input": patch,
    }
    assert events[2:-1] == [
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "input": ""}},
        {"type": "response.custom_tool_call_input.delta", **ids, "delta": patch},
        {"type": "response.custom_tool_call_input.done", **ids, "input": patch},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    ]
    assert events[-1]["response"]["output"] == [item]


def test_stream_image_output() -> None:
    events = _events(_run([ir.ImageOut("image/png", PNG_B64), ir.Finish("stop")]))
    assert _types(events)[2:] == [
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"]["status"] == "in_progress" and events[2]["item"]["result"] == ""
    assert events[3]["item"]["result"] == PNG_B64


@pytest.mark.parametrize(
    ("reason", "details"),
    [("length", {"reason": "max_output_tokens"}), ("content_filter", {"reason": "content_filter"})],
)
def test_stream_incomplete(reason: ir.FinishReason, details: dict[str, str]) -> None:
    events = _events(
        _run([ir.TextDelta("trunc"), ir.Finish(reason), ir.UsageUpdate(ir.Usage(5, 9))])
    )
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == details
    assert last["response"]["usage"] == _usage_json(5, 9)  # usage after the finish still lands
    assert _done_items(events)[0]["content"][0]["text"] == "trunc"


def test_stream_late_stop_does_not_hide_tool_calls() -> None:
    events = _events(_run([ir.Finish("tool_calls"), ir.Finish("length")]))
    assert events[-1]["type"] == "response.completed"


def test_stream_start_id_is_kept_and_late_start_ignored() -> None:
    events = _events(_run([ir.TextDelta("a"), ir.StreamStart("late", "m"), ir.Finish("stop")]))
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1 and "late" not in ids.pop()
    events = _events(_run([ir.StreamStart("resp_given", "m"), ir.Finish("stop")]))
    assert events[-1]["response"]["id"] == "resp_given"
    assert _types(events) == ["response.created", "response.in_progress", "response.completed"]


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, None, "rate_limit_exceeded"),
        (400, None, "invalid_prompt"),
        (500, None, "server_error"),
        (503, None, "server_error"),
        (429, "insufficient_quota", "insufficient_quota"),
    ],
)
def test_stream_error_event(status: int, code: str | None, expected: str) -> None:
    enc = StreamEncoder("m")
    frames = enc.encode(ir.TextDelta("par"))
    frames += enc.encode(ir.StreamError("upstream reset", status, code))
    assert enc.encode(ir.TextDelta("more")) == []
    assert enc.finish() == [] and enc.error("again") == []
    parser = SSEParser()
    events = [json.loads(e.data) for e in parser.feed(b"".join(frames))]
    last = events[-1]
    assert [e["type"] for e in events].count("response.failed") == 1
    assert last["type"] == "response.failed"
    assert last["response"]["status"] == "failed"
    assert last["response"]["error"] == {"code": expected, "message": "upstream reset"}
    if code is None:  # codes outside the SDK's Literal are for Codex CLI (it maps them)
        _events(frames)


def test_stream_error_before_anything_still_starts_with_created() -> None:
    events = _events(StreamEncoder("m").error("no account available", 429))
    assert _types(events) == ["response.created", "response.in_progress", "response.failed"]


def test_stream_cut_short_is_a_failure() -> None:
    events = _events(_run([ir.StreamStart("r1", "m"), ir.TextDelta("par")]))
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {
        "code": "server_error",
        "message": "upstream stream ended before completion",
    }


def test_stream_codex_minimum() -> None:
    """Codex CLI reads items from output_item.done and needs response.completed with usage."""
    events = _events(
        _run(
            [
                ir.TextDelta("Running ls."),
                ir.ToolCallStart("call_xyz", "shell"),
                ir.ToolCallDelta("call_xyz", '{"command":["ls"]}'),
                ir.ToolCallEnd("call_xyz", {"command": ["ls"]}),
                ir.Finish("tool_calls"),
                ir.UsageUpdate(ir.Usage(1200, 42)),
            ]
        )
    )
    items = _done_items(events)
    assert items[0]["content"][0]["text"] == "Running ls."
    assert (items[1]["call_id"], items[1]["arguments"]) == ("call_xyz", '{"command":["ls"]}')
    completed = events[-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["usage"]["total_tokens"] == 1242
    assert completed["response"]["output"] == items


def test_stream_tolerates_odd_orders() -> None:
    events = _events(
        _run(
            [
                ir.UsageUpdate(ir.Usage(1, 1)),
                ir.ToolCallEnd("nope", {"a": 1}),  # end without start
                ir.ToolCallDelta("nope", "{}"),
                ir.ToolCallStart("a", "f"),
                ir.ToolCallStart("b", "g"),  # interleaved: closes a
                ir.ToolCallDelta("a", '{"late":1}'),  # a is closed: ignored
                ir.ToolCallEnd("a", {"late": 1}),
                ir.ToolCallStart("a", "f"),  # duplicate id: ignored
                ir.TextDelta(""),
                ir.ThinkingDelta(""),
                ir.ToolCallEnd("b", {"x": 2}),
                ir.Finish("stop"),
            ]
        )
    )
    assert [(i["call_id"], i["arguments"]) for i in _done_items(events)] == [
        ("a", "{}"),
        ("b", '{"x":2}'),
    ]
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [
        0,
        1,
    ]


def test_stream_internal_error_becomes_response_failed() -> None:
    enc = StreamEncoder("m")
    bad = ir.ToolCallEnd("c", {"x": object()})  # not JSON-serialisable
    frames = enc.encode(ir.ToolCallStart("c", "f")) + enc.encode(bad)
    frames += enc.encode(ir.Finish("stop")) + enc.finish()
    events = _events(frames)
    assert _types(events)[-2:] == ["response.output_item.done", "response.completed"]
    assert _done_items(events)[0]["arguments"] == "{}"
    enc = StreamEncoder("m")
    frames = enc.encode(ir.TextDelta("\ud800"))  # cannot be encoded as UTF-8
    assert frames and b"response.failed" in frames[-1]
    assert enc.finish() == []


# ================================================================ the real openai SDK end to end


class FakeServer:
    """An httpx transport that answers like the proxy would, using only this module."""

    def __init__(self, events: list[ir.Event], response: ir.Response | None = None) -> None:
        self.events = events
        self.response = response
        self.parsed: list[ir.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        try:
            parsed = parse_request(json.loads(request.content))
        except ir.RequestError as exc:
            return httpx.Response(
                exc.status, json=error_body(exc.status, exc.message, param=exc.param)
            )
        self.parsed.append(parsed)
        custom = frozenset(parsed.extras.get("responses_custom_tools", []))
        if not parsed.stream:
            assert self.response is not None
            return httpx.Response(200, json=render_response(self.response, custom))
        enc = StreamEncoder(parsed.model, custom)
        frames = [f for ev in self.events for f in enc.encode(ev)] + enc.finish()
        return httpx.Response(
            200, content=b"".join(frames), headers={"content-type": "text/event-stream"}
        )

    def client(self) -> openai.OpenAI:
        http = httpx.Client(transport=httpx.MockTransport(self.handler))
        return openai.OpenAI(
            base_url="http://proxy.test/v1", api_key="sk-test", max_retries=0, http_client=http
        )


STREAM_EVENTS: list[ir.Event] = [
    ir.StreamStart("r9", "gemini-2.5-pro"),
    ir.ThinkingDelta("Weather lookup."),
    ir.TextDelta("Let me "),
    ir.TextDelta("check."),
    ir.ToolCallStart("call_A", "get_weather"),
    ir.ToolCallEnd("call_A", {"location": "Paris"}),
    ir.ToolCallStart("call_P", "apply_patch"),
    ir.ToolCallEnd("call_P", {"input": "*** Begin Patch\n*** End Patch\n"}),
    ir.Finish("tool_calls"),
    ir.UsageUpdate(ir.Usage(850, 21, 0, 5)),
]
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files"}


def test_sdk_responses_stream() -> None:
    server = FakeServer(STREAM_EVENTS)
    client = server.client()
    with client.responses.stream(
        model="gemini-2.5-pro",
        input="Weather in Paris?",
        instructions="Be terse.",
        tools=[WEATHER_TOOL, PATCH_TOOL],  # type: ignore[list-item]
        reasoning={"effort": "low", "summary": "auto"},
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.id == "resp_r9" and final.status == "completed"
    assert final.output_text == "Let me check."
    assert [o.type for o in final.output] == [
        "reasoning",
        "message",
        "function_call",
        "custom_tool_call",
    ]
    call, custom = final.output[2], final.output[3]
    assert call.type == "function_call" and custom.type == "custom_tool_call"
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_A",
        "get_weather",
        {"location": "Paris"},
    )
    assert custom.input == "*** Begin Patch\n*** End Patch\n"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (
        850,
        21,
        871,
    )
    parsed = server.parsed[0]
    assert parsed.stream and parsed.system == ["Be terse."]
    assert parsed.messages == [user_ir("Weather in Paris?")]
    assert parsed.thinking == ir.Thinking("low", None, True)
    assert [t.name for t in parsed.tools] == ["get_weather", "apply_patch"]


def test_sdk_create_stream_raw_events() -> None:
    server = FakeServer(STREAM_EVENTS)
    events = list(server.client().responses.create(model="gemini-2.5-pro", input="x", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"


def test_sdk_stream_error_yields_response_failed() -> None:
    server = FakeServer([ir.TextDelta("par"), ir.StreamError("upstream reset", 502)])
    with server.client().responses.stream(model="gemini-2.5-pro", input="x") as stream:
        events = list(stream)
        assert events[-1].type == "response.failed"
        assert events[-1].response.error is not None
        assert events[-1].response.error.message == "upstream reset"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


def test_sdk_cut_stream_yields_response_failed() -> None:
    server = FakeServer([ir.TextDelta("par")])
    with server.client().responses.stream(model="gemini-2.5-pro", input="x") as stream:
        events = list(stream)
    assert events[-1].type == "response.failed"
    assert "ended before completion" in events[-1].response.error.message  # type: ignore[union-attr]


def test_sdk_tool_round_trip_non_stream() -> None:
    first = ir.Response(
        "r1",
        "gemini-2.5-pro",
        [ir.ToolCallPart("call_A", "get_weather", {"location": "Paris"})],
        "tool_calls",
        ir.Usage(50, 10),
    )
    server = FakeServer([], first)
    client = server.client()
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    out = client.responses.create(
        model="gemini-2.5-pro",
        input=history,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="auto",
        max_output_tokens=64,
    )
    call = out.output[0]
    assert call.type == "function_call" and call.call_id == "call_A"
    assert server.parsed[0].max_tokens == 64 and not server.parsed[0].stream

    # the follow-up an SDK user sends: the output items back, plus the tool's answer
    history += [item.model_dump(exclude_none=True) for item in out.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C"})
    server.response = ir.Response("r2", "gemini-2.5-pro", [ir.TextPart("18C in Paris.")])
    answer = client.responses.create(model="gemini-2.5-pro", input=history, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert answer.output_text == "18C in Paris."
    assert server.parsed[-1].messages == [
        user_ir("Weather in Paris?"),
        ir.Message("assistant", [ir.ToolCallPart("call_A", "get_weather", {"location": "Paris"})]),
        ir.Message("user", [ir.ToolResultPart("call_A", [ir.TextPart("18C")], "get_weather")]),
    ]
    assert server.parsed[-1].tools == [WEATHER_IR]


def test_sdk_input_image_and_json_schema() -> None:
    server = FakeServer([], ir.Response("r", "gemini-2.5-pro", [ir.TextPart('{"animal":"cat"}')]))
    out = server.client().responses.create(
        model="gemini-2.5-pro",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is it?"},
                    {"type": "input_image", "image_url": PNG_URL, "detail": "auto"},
                ],
            }
        ],
        text={
            "format": {
                "type": "json_schema",
                "name": "animal",
                "schema": {"type": "object", "properties": {"animal": {"type": "string"}}},
            }
        },
    )
    assert json.loads(out.output_text) == {"animal": "cat"}
    parsed = server.parsed[0]
    assert parsed.messages == [
        ir.Message("user", [ir.TextPart("What is it?"), ir.ImagePart("image/png", PNG_B64)])
    ]
    assert parsed.response_mime_type == "application/json"
    assert parsed.response_schema == {
        "type": "object",
        "properties": {"animal": {"type": "string"}},
    }


def test_sdk_bad_request_maps_to_bad_request_error() -> None:
    client = FakeServer([]).client()
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gemini-2.5-pro", input="x", previous_response_id="resp_1")
    assert info.value.param == "previous_response_id"
    assert "no server-side state" in info.value.message


def test_module_exports() -> None:
    # the IR's exception and reasoning prefix are the only ones: no dialect re-exports them
    assert not hasattr(openai_responses, "RequestError")
    assert not hasattr(openai_responses, "CODEX_SIGNATURE_PREFIX")
    assert error_body is openai_chat.error_body
    assert error_body(429, "slow down") == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


# ================================================================ properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=20,
)
part_types = st.sampled_from(
    ["input_text", "output_text", "refusal", "input_image", "input_file", "x", None]
)
content_part = st.fixed_dictionaries(
    {"type": part_types},
    optional={
        "text": json_values,
        "refusal": json_values,
        "image_url": st.sampled_from([PNG_URL, "https://a/b.gif", "data:x", "zz", ""])
        | json_values,
        "file_id": json_values,
        "file_data": st.sampled_from(["data:application/pdf;base64,AA", "AA", ""]) | json_values,
        "file_url": json_values,
        "filename": json_values,
    },
)
content = json_values | st.text(max_size=8) | st.lists(content_part, max_size=3)
item_types = st.sampled_from(
    [
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
        "local_shell_call",
        None,
        7,
    ]
)
summary = st.lists(
    st.fixed_dictionaries({"type": st.just("summary_text")}, optional={"text": json_values})
    | json_values,
    max_size=2,
)
item = st.fixed_dictionaries(
    {"type": item_types},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]) | json_values,
        "content": content,
        "id": json_values,
        "status": json_values,
        "call_id": st.sampled_from(["c1", "c2", ""]) | json_values,
        "name": st.sampled_from(["f", "apply_patch"]) | json_values,
        "arguments": st.sampled_from(['{"a":1}', "[1]", "{bad", ""]) | json_values,
        "input": json_values,
        "output": content,
        "summary": summary | json_values,
        "encrypted_content": json_values,
    },
)
tool = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "custom", "web_search", "namespace"]) | json_values},
    optional={
        "name": st.sampled_from(["f", "apply_patch", ""]) | json_values,
        "description": json_values,
        "parameters": json_values,
        "strict": json_values,
        "format": st.fixed_dictionaries(
            {"type": st.sampled_from(["grammar", "text"])},
            optional={"syntax": json_values, "definition": json_values},
        )
        | json_values,
    },
)
request_body = st.fixed_dictionaries(
    {
        "model": st.just("m") | json_values,
        "input": st.text(max_size=8) | st.lists(item, max_size=5) | json_values,
    },
    optional={
        "tools": st.lists(tool, max_size=3) | json_values,
        "tool_choice": st.sampled_from(["auto", "none", "required", "x"])
        | st.fixed_dictionaries({"type": json_values, "name": json_values})
        | json_values,
        "reasoning": st.fixed_dictionaries(
            {}, optional={"effort": json_values, "summary": json_values}
        )
        | json_values,
        "text": st.fixed_dictionaries(
            {},
            optional={
                "format": st.fixed_dictionaries(
                    {"type": st.sampled_from(["json_schema", "json_object", "text"]) | json_values},
                    optional={"schema": json_values},
                )
                | json_values,
                "verbosity": json_values,
            },
        )
        | json_values,
        **{
            key: json_values
            for key in [
                "instructions",
                "parallel_tool_calls",
                "max_output_tokens",
                "temperature",
                "top_p",
                "stream",
                "previous_response_id",
                "store",
                "include",
            ]
        },
    },
)


def _parse_only_request_errors(raw: object) -> None:
    try:
        parsed = parse_request(raw)
    except ir.RequestError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    assert isinstance(parsed, ir.Request)
    assert all(isinstance(note, str) for note in parsed.dropped)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_property_any_json(raw: object) -> None:
    _parse_only_request_errors(raw)


@settings(max_examples=600, deadline=None)
@given(request_body)
def test_property_request_shapes(raw: dict[str, Any]) -> None:
    _parse_only_request_errors(raw)


ids_ = st.sampled_from(["a", "b", "c"])
usage = st.builds(
    ir.Usage, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 9), st.integers(0, 9)
)
signatures = st.none() | st.text(max_size=3) | st.just("codex-rs:E") | st.just("codex-rs:")
events = st.one_of(
    st.builds(ir.StreamStart, st.text(max_size=5), st.text(max_size=5)),
    st.builds(ir.TextDelta, st.text(max_size=5)),
    st.builds(ir.ThinkingDelta, st.text(max_size=5), signatures),
    st.builds(ir.ToolCallStart, ids_, st.sampled_from(["f", "apply_patch"]), signatures),
    st.builds(ir.ToolCallDelta, ids_, st.text(max_size=5) | st.just('{"input":"x"}')),
    st.builds(ir.ToolCallEnd, ids_, st.dictionaries(st.text(max_size=3), json_values, max_size=2)),
    st.builds(ir.ImageOut, st.sampled_from(["image/png", "x"]), st.text(max_size=5)),
    st.builds(ir.UsageUpdate, usage),
    st.builds(
        ir.Finish, st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error"])
    ),
    st.builds(ir.StreamError, st.text(max_size=5), st.integers(100, 599), st.none()),
)
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


@settings(max_examples=400, deadline=None)
@given(st.lists(events, max_size=14), st.booleans(), st.booleans())
def test_property_encoder_never_raises(evs: list[ir.Event], custom: bool, end: bool) -> None:
    enc = StreamEncoder("m", frozenset({"apply_patch"}) if custom else frozenset())
    frames: list[bytes] = []
    for ev in evs:
        frames.extend(enc.encode(ev))
    frames.extend(enc.finish() if end else enc.error("stop", 500))
    assert enc.finish() == [] and enc.error("x") == [] and enc.encode(ir.TextDelta("x")) == []
    events_ = _events(frames)  # framing, sequence numbers and SDK types for every event
    kinds = _types(events_)
    assert kinds[-1] in TERMINAL
    assert sum(k in TERMINAL for k in kinds) == 1
    # items open and close in order, one at a time, each with a fresh output_index
    added = [e["output_index"] for e in events_ if e["type"] == "response.output_item.added"]
    done = [e["output_index"] for e in events_ if e["type"] == "response.output_item.done"]
    assert added == list(range(len(added)))
    assert done == added[: len(done)] and len(added) - len(done) <= 1
    if kinds[-1] != "response.failed":
        assert done == added
        assert events_[-1]["response"]["output"] == _done_items(events_)
