"""Codex upstream dialect: IR -> Codex body, Responses-client pass-through, Codex SSE -> IR
events, the non-stream `response` rebuild and the error-body parser.

Fixtures are real shapes: the docs/upstreams.md "Codex SSE events" SSE sample byte for byte, a
trimmed Codex CLI 0.169 request (docs/upstreams.md "Codex CLI") and the "Codex errors and usage
limits" bodies.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from cliproxy.translators import codex
from cliproxy.translators import codex_errors
from cliproxy.translators import ir
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

PREFIX = ir.CODEX_REASONING_PREFIX

# ---------------------------------------------------------------- fixtures

# docs/upstreams.md "Codex SSE events", byte for byte: text, then a tool call.
SSE_SAMPLE = (
    b"event: response.created\n"
    b'data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_68a1","object":"response","created_at":1755041560,"status":"in_progress","model":"gpt-5-codex","output":[],"usage":null}}\n'  # noqa: E501
    b"\n"
    b"event: response.output_item.added\n"
    b'data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_01","type":"message","status":"in_progress","role":"assistant","content":[]}}\n'  # noqa: E501
    b"\n"
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_01","output_index":0,"content_index":0,"delta":"Running ls."}\n'  # noqa: E501
    b"\n"
    b"event: response.output_item.done\n"
    b'data: {"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"id":"msg_01","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Running ls.","annotations":[]}]}}\n'  # noqa: E501
    b"\n"
    b"event: response.output_item.added\n"
    b'data: {"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"id":"fc_01","type":"function_call","status":"in_progress","name":"shell","call_id":"call_xyz","arguments":""}}\n'  # noqa: E501
    b"\n"
    b"event: response.function_call_arguments.delta\n"
    b'data: {"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"fc_01","output_index":1,"delta":"{\\"command\\":[\\"ls\\"]}"}\n'  # noqa: E501
    b"\n"
    b"event: response.output_item.done\n"
    b'data: {"type":"response.output_item.done","sequence_number":6,"output_index":1,"item":{"id":"fc_01","type":"function_call","status":"completed","name":"shell","call_id":"call_xyz","arguments":"{\\"command\\":[\\"ls\\"]}"}}\n'  # noqa: E501
    b"\n"
    b"event: response.completed\n"
    b'data: {"type":"response.completed","sequence_number":7,"response":{"id":"resp_68a1","object":"response","created_at":1755041560,"status":"completed","model":"gpt-5-codex","output":[],"usage":{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1024},"output_tokens":42,"output_tokens_details":{"reasoning_tokens":16},"total_tokens":1242}}}\n'  # noqa: E501
    b"\n"
)

SAMPLE_USAGE = ir.Usage(
    input_tokens=1200, output_tokens=42, cached_tokens=1024, reasoning_tokens=16
)

APPLY_PATCH_GRAMMAR = (
    'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
    'end_patch: "*** End Patch" LF?\n'
)

# Codex CLI 0.169.0 `codex exec`, second turn, trimmed (docs/upstreams.md "Codex CLI"): no
# instructions, developer messages, ids on items, a status on the function call,
# custom/namespace/tool_search/ web_search tools. max_output_tokens, temperature and a system item
# were added to exercise the rules.
CODEX_CLI_BODY: dict[str, Any] = {
    "model": "gpt-5.5",
    "input": [
        {
            "type": "message",
            "id": "msg_dev1",
            "role": "developer",
            "content": [{"type": "input_text", "text": "You are Codex, a coding agent..."}],
        },
        {
            "type": "message",
            "id": "msg_dev2",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions instructions>..."}],
        },
        {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Be brief."}],
        },
        {
            "type": "message",
            "id": "msg_env",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "<environment_context>\n  <cwd>/tmp/w</cwd>\n"}
            ],
        },
        {
            "type": "message",
            "id": "msg_u1",
            "role": "user",
            "content": [{"type": "input_text", "text": "cat hello.txt"}],
        },
        {
            "type": "reasoning",
            "id": "rs_01",
            "summary": [{"type": "summary_text", "text": "**Reading the file**"}],
            "content": None,
            "encrypted_content": "gAAAAABoENC",
        },
        {
            "type": "function_call",
            "id": "fc_01",
            "status": "completed",
            "name": "exec_command",
            "arguments": '{"cmd":"cat hello.txt"}',
            "call_id": "call_abc",
        },
        {
            "type": "function_call_output",
            "id": "fco_01",
            "call_id": "call_abc",
            "output": "Chunk ID: 1\nProcess exited with code 0\nOutput:\nhello from a file\n",
        },
    ],
    "tools": [
        {
            "type": "function",
            "name": "exec_command",
            "description": "Runs a command in a PTY.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
                "required": ["cmd"],
                "additionalProperties": False,
            },
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Use the `apply_patch` tool to edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR},
        },
        {
            "type": "namespace",
            "name": "multi_agent_v1",
            "description": "Spawn and manage sub-agents.",
            "tools": [
                {
                    "type": "function",
                    "name": "spawn_agent",
                    "description": "Start a sub-agent.",
                    "strict": False,
                    "parameters": {
                        "type": "object",
                        "properties": {"message": {"type": "string"}},
                        "required": ["message"],
                    },
                }
            ],
        },
        {"type": "tool_search"},
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "client_metadata": {"installation_id": "5f0c7a1e"},
    "text": {"verbosity": "low"},
    "max_output_tokens": 4096,
    "temperature": 0.2,
}


def _objects(raw: bytes) -> list[dict[str, Any]]:
    parser = SSEParser()
    return parse_json_events(parser.feed(raw) + parser.finish())


def _decode(objs: list[dict[str, Any]], model: str = "gpt-5-codex") -> list[ir.Event]:
    dec = codex.StreamDecoder(model)
    out: list[ir.Event] = []
    for obj in objs:
        out.extend(dec.feed(obj))
    out.extend(dec.finish())
    return out


def _user(text: str) -> ir.Message:
    return ir.Message("user", [ir.TextPart(text)])


def _req(messages: list[ir.Message], **kw: Any) -> ir.Request:
    return ir.Request(model="gpt-5", messages=messages, **kw)


def _base(**over: Any) -> dict[str, Any]:
    """The always-present keys of a rendered body with their defaults."""
    body: dict[str, Any] = {
        "model": "gpt-5",
        "instructions": "",
        "input": [],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
    }
    body.update(over)
    return body


def _msg(role: str, *content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": list(content)}


def _in(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def _out(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text}


# ================================================================ render_request


def test_render_text_and_system() -> None:
    req = _req([_user("hi")], system=["You are terse.", "", "Answer in French."], stream=False)
    assert codex.render_request(req) == _base(
        instructions="You are terse.\n\nAnswer in French.",
        input=[_msg("user", _in("hi"))],
    )
    assert req.dropped == []


def test_render_no_system_still_sends_instructions() -> None:
    body = codex.render_request(_req([_user("hi")]))
    assert body["instructions"] == ""


def test_render_images() -> None:
    req = _req(
        [
            ir.Message(
                "user",
                [
                    ir.TextPart("What is in these?"),
                    ir.ImagePart("image/png", data="iVBORw0KGgo="),
                    ir.ImagePart("image/jpeg", url="https://example.com/cat.jpg"),
                ],
            )
        ]
    )
    assert codex.render_request(req)["input"] == [
        _msg(
            "user",
            _in("What is in these?"),
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
        )
    ]


def test_render_multi_turn_parallel_tools() -> None:
    req = _req(
        [
            _user("Weather in Paris and Oslo?"),
            ir.Message(
                "assistant",
                [
                    ir.TextPart("Checking both."),
                    ir.ToolCallPart("call_1", "get_weather", {"city": "Paris"}),
                    ir.ToolCallPart("call_2", "get_weather", {"city": "Oslo"}),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResultPart("call_1", [ir.TextPart("18C"), ir.TextPart("sunny")]),
                    ir.ToolResultPart(
                        "call_2",
                        [ir.TextPart("radar:"), ir.ImagePart("image/png", data="AAAA")],
                        is_error=True,
                    ),
                    ir.TextPart("Compare them."),
                ],
            ),
        ],
        tools=[
            ir.Tool(
                "get_weather",
                "Current weather",
                {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            )
        ],
        parallel_tool_calls=True,
    )
    assert codex.render_request(req) == _base(
        input=[
            _msg("user", _in("Weather in Paris and Oslo?")),
            _msg("assistant", _out("Checking both.")),
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city": "Oslo"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C\nsunny"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    _in("radar:"),
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
            _msg("user", _in("Compare them.")),
        ],
        tools=[
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ],
    )


def test_render_interleaved_text_and_calls_keep_order() -> None:
    req = _req(
        [
            ir.Message(
                "assistant",
                [ir.TextPart("a"), ir.ToolCallPart("c1", "f", {}), ir.TextPart("b")],
            )
        ]
    )
    assert codex.render_request(req)["input"] == [
        _msg("assistant", _out("a")),
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        _msg("assistant", _out("b")),
    ]


def test_render_mid_conversation_system_becomes_developer() -> None:
    req = _req(
        [
            _user("one"),
            ir.Message("assistant", [ir.TextPart("two")]),
            ir.Message("system", [ir.TextPart("Now answer in German.")]),
            _user("three"),
        ],
        system=["Lead prompt"],
    )
    body = codex.render_request(req)
    assert body["instructions"] == "Lead prompt"
    assert body["input"] == [
        _msg("user", _in("one")),
        _msg("assistant", _out("two")),
        _msg("developer", _in("Now answer in German.")),
        _msg("user", _in("three")),
    ]


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        (None, "medium"),
        (ir.Thinking(), "medium"),
        (ir.Thinking(include_thoughts=True), "medium"),
        (ir.Thinking(effort="auto"), "medium"),
        (ir.Thinking(effort="max"), "xhigh"),
        (ir.Thinking(effort="none"), "none"),
        (ir.Thinking(effort="minimal"), "minimal"),
        (ir.Thinking(effort="low"), "low"),
        (ir.Thinking(effort="high"), "high"),
        (ir.Thinking(effort="xhigh"), "xhigh"),
        (ir.Thinking(budget=0), "none"),
        (ir.Thinking(budget=512), "minimal"),
        (ir.Thinking(budget=1024), "low"),
        (ir.Thinking(budget=8192), "medium"),
        (ir.Thinking(budget=16000), "high"),
        (ir.Thinking(budget=32768), "xhigh"),
        (ir.Thinking(budget=-1), "medium"),
        (ir.Thinking(effort="low", budget=30000), "low"),  # explicit effort wins
    ],
)
def test_render_reasoning_effort(thinking: ir.Thinking | None, effort: str) -> None:
    body = codex.render_request(_req([_user("x")], thinking=thinking))
    assert body["reasoning"] == {"effort": effort, "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize(
    ("mime", "schema", "text", "dropped"),
    [
        (None, None, None, []),
        ("text/plain", None, None, []),
        ("application/json", None, {"format": {"type": "json_object"}}, []),
        (
            "application/json",
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"answer": {"type": "string"}},
            },
            {
                "format": {
                    "type": "json_schema",
                    "name": "response",
                    "strict": False,
                    "schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
                }
            },
            [],
        ),
        (
            None,
            {"type": "array", "items": {"type": "integer"}},
            {
                "format": {
                    "type": "json_schema",
                    "name": "response",
                    "strict": False,
                    "schema": {"type": "array", "items": {"type": "integer"}},
                }
            },
            [],
        ),
        (
            "text/x.enum",
            None,
            None,
            ["response_mime_type=text/x.enum: Codex has no such format; dropped"],
        ),
    ],
)
def test_render_response_format(
    mime: str | None, schema: dict[str, Any] | None, text: dict[str, Any] | None, dropped: list
) -> None:
    req = _req([_user("x")], response_mime_type=mime, response_schema=schema)
    body = codex.render_request(req)
    if text is None:
        assert "text" not in body
    else:
        assert body["text"] == text
    assert req.dropped == dropped


_TOOL = ir.Tool("lookup", "Look up", {"type": "object", "properties": {"q": {"type": "string"}}})


@pytest.mark.parametrize(
    ("choice", "tools", "expected", "dropped"),
    [
        (None, [_TOOL], "auto", []),
        (ir.ToolChoice("auto"), [_TOOL], "auto", []),
        (ir.ToolChoice("none"), [_TOOL], "none", []),
        (ir.ToolChoice("required"), [_TOOL], "required", []),
        (ir.ToolChoice("tool", "lookup"), [_TOOL], {"type": "function", "name": "lookup"}, []),
        (ir.ToolChoice("tool"), [_TOOL], "required", []),
        (
            ir.ToolChoice("tool", "other"),
            [_TOOL],
            "required",
            ["tool_choice=other: no such tool declared; sent required"],
        ),
        (ir.ToolChoice("none"), [], "none", []),
        (
            ir.ToolChoice("required"),
            [],
            "auto",
            ["tool_choice=required: no tools declared; sent auto"],
        ),
    ],
)
def test_render_tool_choice(
    choice: ir.ToolChoice | None, tools: list[ir.Tool], expected: Any, dropped: list[str]
) -> None:
    req = _req([_user("x")], tools=tools, tool_choice=choice)
    assert codex.render_request(req)["tool_choice"] == expected
    assert req.dropped == dropped


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"type": "object", "properties": {}}),
        ({"$schema": "x"}, {"type": "object", "properties": {}}),
        ({"type": "object"}, {"type": "object", "properties": {}}),
        ({"properties": {"a": {}}}, {"properties": {"a": {}}, "type": "object"}),
        (
            {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
            {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
        ),
    ],
)
def test_render_tool_schema(params: dict[str, Any], expected: dict[str, Any]) -> None:
    req = _req([_user("x")], tools=[ir.Tool("t", parameters=params)], parallel_tool_calls=False)
    body = codex.render_request(req)
    assert body["tools"] == [
        {
            "type": "function",
            "name": "t",
            "description": "",
            "strict": False,
            "parameters": expected,
        }
    ]
    assert body["parallel_tool_calls"] is False


def test_render_drops_unsupported_and_foreign_thinking_with_notes() -> None:
    req = _req(
        [
            _user("q"),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingPart("gemini thoughts", "CikB0e2Kb7zk"),
                    ir.ThinkingPart("claude thoughts", "EqQBCkYIBxgC"),
                    ir.ToolCallPart("c1", "f", {"a": 1}, signature="CikB"),
                    ir.ImagePart("image/png", data="AAAA"),
                    ir.TextPart(""),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResultPart("c1", [ir.TextPart("ok")]),
                    ir.ImagePart("application/pdf", data="JVBERi0="),
                ],
            ),
        ],
        max_tokens=100,
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        stop=["END"],
    )
    body = codex.render_request(req)
    assert body["input"] == [
        _msg("user", _in("q")),
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        # a PDF goes as the file it is (issue 10), no longer dropped
        _msg(
            "user",
            {
                "type": "input_file",
                "filename": "document.pdf",
                "file_data": "data:application/pdf;base64,JVBERi0=",
            },
        ),
    ]
    assert req.dropped == [
        "thinking from another upstream cannot be replayed to Codex; dropped",
        "assistant image: Codex history has no place for it; dropped",
        "max_output_tokens: not supported by the Codex backend; dropped",
        "temperature: not supported by the Codex backend; dropped",
        "top_p: not supported by the Codex backend; dropped",
        "top_k: not supported by the Codex backend; dropped",
        "seed: not supported by the Codex backend; dropped",
        "presence_penalty: not supported by the Codex backend; dropped",
        "frequency_penalty: not supported by the Codex backend; dropped",
        "stop: not supported by the Codex backend; dropped",
    ]
    for key in ("max_output_tokens", "temperature", "top_p", "stop", "seed"):
        assert key not in body


def test_render_codex_reasoning_is_replayed() -> None:
    req = _req(
        [
            _user("q"),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingPart("**Plan**", PREFIX + "gAAAAB1"),
                    ir.ThinkingPart("", PREFIX + "gAAAAB2"),
                    ir.TextPart("done"),
                ],
            ),
        ]
    )
    body = codex.render_request(req)
    assert body["input"] == [
        _msg("user", _in("q")),
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "**Plan**"}],
            "encrypted_content": "gAAAAB1",
        },
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB2"},
        _msg("assistant", _out("done")),
    ]
    assert req.dropped == []


def test_render_tool_result_text_only_and_empty() -> None:
    req = _req(
        [
            ir.Message(
                "user",
                [ir.ToolResultPart("a", []), ir.ToolResultPart("b", [ir.TextPart("x")])],
            )
        ]
    )
    assert codex.render_request(req)["input"] == [
        {"type": "function_call_output", "call_id": "a", "output": ""},
        {"type": "function_call_output", "call_id": "b", "output": "x"},
    ]


# ================================================================ prepare_passthrough


def test_passthrough_codex_cli_body() -> None:
    before = copy.deepcopy(CODEX_CLI_BODY)
    out, notes = codex.prepare_passthrough(CODEX_CLI_BODY)
    assert before == CODEX_CLI_BODY  # not mutated
    assert notes == [
        "max_output_tokens: not supported by the Codex backend; dropped",
        "temperature: not supported by the Codex backend; dropped",
    ]
    # exactly what changed: two keys out, `instructions` in, ids and the system role in `input`
    assert set(before) - set(out) == {"max_output_tokens", "temperature"}
    assert set(out) - set(before) == {"instructions"}
    assert out["instructions"] == ""
    for key in set(before) & set(out) - {"input"}:
        assert out[key] == before[key], key
    expected_input = copy.deepcopy(before["input"])
    for item in expected_input:
        item.pop("id", None)
    expected_input[2]["role"] = "developer"
    assert out["input"] == expected_input
    assert out["input"][6] == {
        "type": "function_call",
        "status": "completed",
        "name": "exec_command",
        "arguments": '{"cmd":"cat hello.txt"}',
        "call_id": "call_abc",
    }
    assert out["input"][7]["call_id"] == "call_abc"
    assert [t["type"] for t in out["tools"]] == [
        "function",
        "custom",
        "namespace",
        "tool_search",
        "web_search",
    ]


def test_passthrough_string_input_and_defaults() -> None:
    body = {"model": "gpt-5", "input": "hello", "stream": False, "store": True}
    out, notes = codex.prepare_passthrough(body)
    assert out == {
        "model": "gpt-5",
        "input": [_msg("user", _in("hello"))],
        "instructions": "",
        "stream": True,
        "store": False,
    }
    assert notes == ["store=true: Codex is used with store=false; nothing is stored"]
    assert body["input"] == "hello"


@pytest.mark.parametrize(
    ("include", "reasoning", "expected"),
    [
        (None, {"effort": "high"}, ["reasoning.encrypted_content"]),
        (
            ["message.output_text.logprobs"],
            {"effort": "low", "summary": "auto"},
            ["message.output_text.logprobs", "reasoning.encrypted_content"],
        ),
        (["reasoning.encrypted_content"], {}, ["reasoning.encrypted_content"]),
        (["web_search_call.results"], None, ["web_search_call.results"]),
        (None, None, None),
    ],
)
def test_passthrough_include(include: Any, reasoning: Any, expected: Any) -> None:
    body: dict[str, Any] = {"model": "gpt-5", "input": [], "instructions": "Be kind."}
    if include is not None:
        body["include"] = include
    if reasoning is not None:
        body["reasoning"] = reasoning
    before = copy.deepcopy(body)
    out, notes = codex.prepare_passthrough(body)
    assert out.get("include") == expected
    assert out["instructions"] == "Be kind."
    assert notes == []
    assert body == before


def test_passthrough_keeps_service_tier_and_null_previous_response_id_is_ignored() -> None:
    body = {
        "model": "gpt-5",
        "input": [],
        "service_tier": "priority",
        "previous_response_id": None,
        "instructions": None,
    }
    out, notes = codex.prepare_passthrough(body)
    assert out == {
        "model": "gpt-5",
        "input": [],
        "service_tier": "priority",
        "instructions": "",
        "store": False,
        "stream": True,
    }
    assert notes == []


def test_passthrough_drops_every_unsupported_parameter() -> None:
    body: dict[str, Any] = {"model": "gpt-5", "input": []}
    for key in sorted(codex.UNSUPPORTED_PARAMETERS):
        body[key] = 1
    out, notes = codex.prepare_passthrough(body)
    assert not set(out) & codex.UNSUPPORTED_PARAMETERS
    assert notes == [
        f"{k}: not supported by the Codex backend; dropped"
        for k in sorted(codex.UNSUPPORTED_PARAMETERS)
    ]
    assert "service_tier" not in codex.UNSUPPORTED_PARAMETERS
    assert "previous_response_id" not in codex.UNSUPPORTED_PARAMETERS


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ([], None, "JSON object"),
        ({"input": []}, "model", "model"),
        ({"model": 5, "input": []}, "model", "model"),
        ({"model": "gpt-5"}, "input", "input"),
        ({"model": "gpt-5", "input": 3}, "input", "input"),
        ({"model": "gpt-5", "input": ["hi"]}, "input[0]", "object"),
        ({"model": "gpt-5", "input": "x", "instructions": ["a"]}, "instructions", "string"),
        (
            {"model": "gpt-5", "input": "x", "previous_response_id": "resp_1"},
            "previous_response_id",
            "previous_response_id is not supported: this proxy keeps no server-side state; "
            "send the full input",
        ),
        ({"model": "gpt-5", "input": "x", "conversation": "conv_1"}, "conversation", "state"),
        ({"model": "gpt-5", "input": "x", "prompt": {"id": "pmpt_1"}}, "prompt", "state"),
        (
            {"model": "gpt-5", "input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0]",
            "item_reference",
        ),
    ],
)
def test_passthrough_rejects(body: Any, param: str | None, fragment: str) -> None:
    with pytest.raises(ir.RequestError) as info:
        codex.prepare_passthrough(body)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.status == 400


# ================================================================ StreamDecoder


def test_decoder_sample_text_then_tool_call() -> None:
    assert _decode(_objects(SSE_SAMPLE)) == [
        ir.StreamStart("resp_68a1", "gpt-5-codex"),
        ir.TextDelta("Running ls."),
        ir.ToolCallStart("call_xyz", "shell"),
        ir.ToolCallDelta("call_xyz", '{"command":["ls"]}'),
        ir.ToolCallEnd("call_xyz", {"command": ["ls"]}),
        ir.UsageUpdate(SAMPLE_USAGE),
        ir.Finish("tool_calls"),
    ]


def test_decoder_sample_split_anywhere_gives_same_events() -> None:
    parser = SSEParser()
    dec = codex.StreamDecoder("gpt-5-codex")
    events: list[ir.Event] = []
    for i in range(0, len(SSE_SAMPLE), 7):
        for obj in parse_json_events(parser.feed(SSE_SAMPLE[i : i + 7])):
            events.extend(dec.feed(obj))
    events.extend(dec.finish())
    assert events == _decode(_objects(SSE_SAMPLE))


def _ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


CREATED = _ev("response.created", response={"id": "resp_2", "model": "gpt-5.5", "output": []})


def _completed(kind: str = "response.completed", **response: Any) -> dict[str, Any]:
    usage = {
        "input_tokens": 10,
        "input_tokens_details": None,
        "output_tokens": 5,
        "output_tokens_details": None,
        "total_tokens": 15,
    }
    return _ev(kind, response={"id": "resp_2", "usage": usage, **response})


USAGE_10_5 = ir.UsageUpdate(ir.Usage(input_tokens=10, output_tokens=5))

REASONING_STREAM = [
    CREATED,
    _ev("response.in_progress", response={"id": "resp_2"}),
    _ev(
        "response.output_item.added",
        output_index=0,
        item={"id": "rs_1", "type": "reasoning", "summary": []},
    ),
    _ev("response.reasoning_summary_part.added", item_id="rs_1", summary_index=0, part={}),
    _ev("response.reasoning_summary_text.delta", item_id="rs_1", summary_index=0, delta="**Plan**"),
    _ev("response.reasoning_summary_text.delta", item_id="rs_1", summary_index=0, delta=" it"),
    _ev("response.reasoning_summary_text.done", item_id="rs_1", summary_index=0, text="x"),
    _ev("codex.rate_limits", primary={"used_percent": 12.0}),
    _ev("response.reasoning_summary_part.added", item_id="rs_1", summary_index=1, part={}),
    _ev("response.reasoning_summary_text.delta", item_id="rs_1", summary_index=1, delta="Next"),
    _ev(
        "response.output_item.done",
        output_index=0,
        item={
            "id": "rs_1",
            "type": "reasoning",
            "summary": [
                {"type": "summary_text", "text": "**Plan** it"},
                {"type": "summary_text", "text": "Next"},
            ],
            "encrypted_content": "gAAAAABenc",
        },
    ),
    _ev("response.content_part.added", item_id="msg_1", output_index=1, content_index=0),
    _ev("response.output_text.delta", item_id="msg_1", output_index=1, delta="Hi"),
    _ev("response.output_text.done", item_id="msg_1", output_index=1, text="Hi"),
    _ev(
        "response.output_item.done",
        output_index=1,
        item={"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "Hi"}]},
    ),
    _completed(),
]


def test_decoder_reasoning_summaries_and_encrypted_item() -> None:
    assert _decode(REASONING_STREAM) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.ThinkingDelta("**Plan**"),
        ir.ThinkingDelta(" it"),
        ir.ThinkingDelta("\n\n"),
        ir.ThinkingDelta("Next"),
        ir.ThinkingDelta("", PREFIX + "gAAAAABenc"),
        ir.TextDelta("Hi"),
        USAGE_10_5,
        ir.Finish("stop"),
    ]


def test_decoder_whole_items_without_deltas() -> None:
    objs = [
        CREATED,
        _ev(
            "response.output_item.done",
            output_index=0,
            item={
                "id": "rs_9",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "A"}, {"text": "B"}],
                "encrypted_content": "enc",
            },
        ),
        _ev(
            "response.output_item.done",
            output_index=1,
            item={
                "id": "msg_9",
                "type": "message",
                "content": [{"type": "output_text", "text": "Hello"}, {"type": "refusal"}],
            },
        ),
        _completed(),
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.ThinkingDelta("A\n\nB"),
        ir.ThinkingDelta("", PREFIX + "enc"),
        ir.TextDelta("Hello"),
        USAGE_10_5,
        ir.Finish("stop"),
    ]


def test_decoder_custom_tool_call() -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    objs = [
        CREATED,
        _ev(
            "response.output_item.added",
            output_index=0,
            item={
                "id": "ctc_1",
                "type": "custom_tool_call",
                "call_id": "call_patch",
                "name": "apply_patch",
                "input": "",
            },
        ),
        _ev("response.custom_tool_call_input.delta", item_id="ctc_1", delta=patch[:20]),
        _ev("response.custom_tool_call_input.delta", item_id="ctc_1", delta=patch[20:]),
        _ev(
            "response.output_item.done",
            output_index=0,
            item={
                "id": "ctc_1",
                "type": "custom_tool_call",
                "call_id": "call_patch",
                "name": "apply_patch",
                "input": patch,
            },
        ),
        _completed(),
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.ToolCallStart("call_patch", "apply_patch"),
        ir.ToolCallDelta("call_patch", json.dumps({"input": patch})),
        ir.ToolCallEnd("call_patch", {"input": patch}),
        USAGE_10_5,
        ir.Finish("tool_calls"),
    ]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (
            {
                "code": "context_length_exceeded",
                "message": "Your input exceeds the context window of this model.",
            },
            400,
        ),
        ({"code": "rate_limit_exceeded", "message": "Try again in 20s"}, 429),
        ({"code": "insufficient_quota", "message": "quota"}, 429),
        ({"code": "usage_limit_reached", "message": "limit"}, 429),
        ({"code": "server_is_overloaded", "message": "busy"}, 502),
    ],
)
def test_decoder_response_failed(error: dict[str, str], status: int) -> None:
    objs = [
        CREATED,
        _ev("response.output_text.delta", item_id="m", delta="par"),
        _ev(
            "response.failed",
            sequence_number=3,
            response={"id": "resp_2", "status": "failed", "error": error, "usage": None},
        ),
        _completed(),  # anything after the failure is ignored
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.TextDelta("par"),
        ir.StreamError(error["message"], status, error["code"]),
    ]


def test_decoder_response_failed_without_error_object() -> None:
    assert _decode([_ev("response.failed", response={"id": "r9", "status": "failed"})]) == [
        ir.StreamStart("r9", "gpt-5-codex"),
        ir.StreamError("Codex response failed", 502, None),
    ]


def test_decoder_error_event() -> None:
    objs = [
        CREATED,
        _ev("error", code="rate_limit_exceeded", message="Rate limit reached", param=None),
        _ev("response.failed", response={"error": {"code": "x", "message": "dup"}}),
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.StreamError("Rate limit reached", 429, "rate_limit_exceeded"),
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("max_output_tokens", "length"),
        ("content_filter", "content_filter"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_decoder_response_incomplete(reason: str | None, finish: str) -> None:
    details = {"reason": reason} if reason else None
    objs = [
        CREATED,
        _ev("response.output_text.delta", item_id="m", delta="abc"),
        _completed("response.incomplete", status="incomplete", incomplete_details=details),
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.TextDelta("abc"),
        USAGE_10_5,
        ir.Finish(finish),  # type: ignore[arg-type]
    ]


def test_decoder_deltas_before_created_and_added() -> None:
    dec = codex.StreamDecoder("gpt-5.5")
    first = dec.feed(_ev("response.output_text.delta", item_id="m", delta="Hi"))
    assert len(first) == 2 and first[1] == ir.TextDelta("Hi")
    start = first[0]
    assert isinstance(start, ir.StreamStart)
    assert start.model == "gpt-5.5" and start.id.startswith("resp_") and len(start.id) > 10
    assert dec.feed(CREATED) == []  # too late to start again
    # arguments before their item was announced are held, then flushed with the done item
    assert (
        dec.feed(_ev("response.function_call_arguments.delta", item_id="fc_7", delta='{"a"')) == []
    )
    assert (
        dec.feed(_ev("response.function_call_arguments.delta", item_id="fc_7", delta=":1}")) == []
    )
    done = _ev(
        "response.output_item.done",
        item={
            "id": "fc_7",
            "type": "function_call",
            "call_id": "call_7",
            "name": "f",
            "arguments": '{"a":1}',
        },
    )
    assert dec.feed(done) == [
        ir.ToolCallStart("call_7", "f"),
        ir.ToolCallDelta("call_7", '{"a":1}'),
        ir.ToolCallEnd("call_7", {"a": 1}),
    ]
    assert dec.feed(done) == []  # a duplicate done does not end the call twice
    assert dec.feed(_completed()) == [USAGE_10_5, ir.Finish("tool_calls")]
    assert dec.finish() == []


def test_decoder_tool_call_done_only_and_argument_edge_cases() -> None:
    def call_done(cid: str, args: Any) -> dict[str, Any]:
        item = {"id": "fc_" + cid, "type": "function_call", "call_id": cid, "name": "f"}
        if args is not None:
            item["arguments"] = args
        return _ev("response.output_item.done", item=item)

    objs = [
        CREATED,
        call_done("c1", ""),
        call_done("c2", "not json"),
        call_done("c3", "[1]"),
        call_done("c4", None),
        _completed(),
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.ToolCallStart("c1", "f"),
        ir.ToolCallEnd("c1", {}),
        ir.ToolCallStart("c2", "f"),
        ir.ToolCallDelta("c2", "not json"),
        ir.ToolCallEnd("c2", {"_raw": "not json"}),
        ir.ToolCallStart("c3", "f"),
        ir.ToolCallDelta("c3", "[1]"),
        ir.ToolCallEnd("c3", {"_raw": "[1]"}),
        ir.ToolCallStart("c4", "f"),
        ir.ToolCallEnd("c4", {}),
        USAGE_10_5,
        ir.Finish("tool_calls"),
    ]


def test_decoder_added_without_deltas_and_unfinished_call_closed_on_completed() -> None:
    objs = [
        CREATED,
        _ev(
            "response.output_item.added",
            item={"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f"},
        ),
        _ev(
            "response.output_item.done",
            item={
                "id": "fc_1",
                "type": "function_call",
                "call_id": "c1",
                "name": "f",
                "arguments": '{"x":2}',
            },
        ),
        _ev(
            "response.output_item.added",
            item={"id": "fc_2", "type": "function_call", "call_id": "c2", "name": "g"},
        ),
        _ev("response.function_call_arguments.delta", item_id="fc_2", delta='{"y":'),
        _ev("response.function_call_arguments.delta", item_id="fc_2", delta="3}"),
        _ev("response.function_call_arguments.done", item_id="fc_2", arguments='{"y":3}'),
        _completed(),
    ]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.ToolCallStart("c1", "f"),
        ir.ToolCallDelta("c1", '{"x":2}'),
        ir.ToolCallEnd("c1", {"x": 2}),
        ir.ToolCallStart("c2", "g"),
        ir.ToolCallDelta("c2", '{"y":'),
        ir.ToolCallDelta("c2", "3}"),
        USAGE_10_5,
        ir.ToolCallEnd("c2", {"y": 3}),
        ir.Finish("tool_calls"),
    ]


def test_decoder_stream_cut_before_completed() -> None:
    objs = [CREATED, _ev("response.output_text.delta", item_id="m", delta="Hel")]
    assert _decode(objs) == [
        ir.StreamStart("resp_2", "gpt-5.5"),
        ir.TextDelta("Hel"),
        ir.StreamError("Codex stream closed before response.completed", 502, "stream_incomplete"),
    ]


def test_decoder_ignores_unknown_and_malformed() -> None:
    dec = codex.StreamDecoder("m")
    for obj in [
        _ev("codex.rate_limits"),
        _ev("response.content_part.done"),
        _ev("response.output_text.done", text="x"),
        _ev("response.output_item.added", item={"type": "message"}),
        _ev("response.output_text.delta", delta=5),
        _ev("response.output_item.done", item="nope"),
        {"no": "type"},
        [],  # type: ignore[list-item]
    ]:
        assert dec.feed(obj) == []
    assert not dec.started


# ================================================================ round trip through the IR


def test_round_trip_keeps_call_ids_and_encrypted_reasoning() -> None:
    objs = [
        CREATED,
        _ev(
            "response.output_item.done",
            output_index=0,
            item={
                "id": "rs_1",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "**Checking**"}],
                "encrypted_content": "gAAAAABsecret==",
            },
        ),
        *_objects(SSE_SAMPLE)[1:-1],  # text + the shell call, without created / completed
        _completed(),
    ]
    dec = codex.StreamDecoder("gpt-5.5")
    acc = ResponseAccumulator()
    for obj in objs:
        acc.extend(dec.feed(obj))
    acc.extend(dec.finish())
    resp = acc.response()
    assert acc.error is None
    assert resp.id == "resp_2" and resp.finish_reason == "tool_calls"
    assert resp.parts == [
        ir.ThinkingPart("**Checking**", PREFIX + "gAAAAABsecret=="),
        ir.TextPart("Running ls."),
        ir.ToolCallPart("call_xyz", "shell", {"command": ["ls"]}),
    ]
    follow_up = _req(
        [
            _user("list files"),
            ir.Message("assistant", list(resp.parts)),
            ir.Message("user", [ir.ToolResultPart("call_xyz", [ir.TextPart("a.txt\nb.txt")])]),
        ]
    )
    assert codex.render_request(follow_up)["input"] == [
        _msg("user", _in("list files")),
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "**Checking**"}],
            "encrypted_content": "gAAAAABsecret==",
        },
        _msg("assistant", _out("Running ls.")),
        {
            "type": "function_call",
            "call_id": "call_xyz",
            "name": "shell",
            "arguments": '{"command": ["ls"]}',
        },
        {"type": "function_call_output", "call_id": "call_xyz", "output": "a.txt\nb.txt"},
    ]
    assert follow_up.dropped == []


# ================================================================ completed_response


def _item_done(index: int, item_id: str) -> dict[str, Any]:
    return _ev(
        "response.output_item.done",
        output_index=index,
        item={"id": item_id, "type": "message", "content": []},
    )


def test_completed_response_rebuilds_empty_output_in_index_order() -> None:
    events = [
        CREATED,
        _item_done(1, "b"),
        _ev("codex.rate_limits"),
        _item_done(0, "a"),
        _item_done(2, "c"),
        _completed(status="completed", output=[]),
    ]
    before = copy.deepcopy(events)
    out = codex.completed_response(events)
    assert out is not None
    assert [i["id"] for i in out["output"]] == ["a", "b", "c"]
    assert out["status"] == "completed" and out["usage"]["total_tokens"] == 15
    assert events == before


def test_completed_response_keeps_full_output() -> None:
    full = [{"id": "x", "type": "message", "content": []}]
    out = codex.completed_response([_item_done(0, "a"), _completed(output=full)])
    assert out is not None and out["output"] == full


def test_completed_response_sample_and_terminal_kinds() -> None:
    out = codex.completed_response(_objects(SSE_SAMPLE))
    assert out is not None
    assert [i["id"] for i in out["output"]] == ["msg_01", "fc_01"]
    assert out["usage"]["input_tokens"] == 1200
    failed = _ev("response.failed", response={"id": "r", "status": "failed", "error": {}})
    assert codex.completed_response([failed]) == {
        "id": "r",
        "status": "failed",
        "error": {},
        "output": [],
    }
    incomplete = codex.completed_response([_completed("response.incomplete")])
    assert incomplete is not None and incomplete["output"] == []
    assert codex.completed_response([CREATED, _item_done(0, "a")]) is None
    assert codex.completed_response([]) is None


# ================================================================ parse_error

NOW = 1776654252.0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"detail":"Unsupported parameter: max_output_tokens"}',
            codex_errors.CodexError("Unsupported parameter: max_output_tokens"),
        ),
        (
            400,
            b'{"detail":"Instructions are required"}',
            codex_errors.CodexError("Instructions are required"),
        ),
        (
            429,
            b'{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached",'
            b'"plan_type":"plus","resets_at":1776672030,"resets_in_seconds":17778}}',
            codex_errors.CodexError(
                "The usage limit has been reached", "usage_limit_reached", 17778.0, "plus"
            ),
        ),
        (
            429,
            b'{"error":{"type":"usage_limit_reached","message":"limit","resets_in_seconds":600}}',
            codex_errors.CodexError("limit", "usage_limit_reached", 600.0, None),
        ),
        (
            429,
            b'{"error":{"type":"usage_limit_reached","message":"m","resets_at":1000}}',
            codex_errors.CodexError("m", "usage_limit_reached", 0.0, None),
        ),
        (
            429,
            b'{"error":{"type":"usage_not_included","message":"Upgrade to Plus",'
            b'"plan_type":"free"}}',
            codex_errors.CodexError("Upgrade to Plus", "usage_not_included", None, "free"),
        ),
        (
            401,
            b'{"error":{"message":"Your authentication token has been invalidated.",'
            b'"type":"invalid_request_error","code":"token_invalidated","param":null}}',
            codex_errors.CodexError(
                "Your authentication token has been invalidated.", "token_invalidated"
            ),
        ),
        (
            429,
            b'{"error":{"message":"Rate limit reached","type":"rate_limit_exceeded","code":null}}',
            codex_errors.CodexError("Rate limit reached", "rate_limit_exceeded"),
        ),
        (500, b'{"error":"server_error"}', codex_errors.CodexError("server_error")),
        (
            403,
            b"<html><head><title>Just a moment...</title><script>var x = 1;</script></head>"
            b"<body><h1>Attention Required!</h1>\n<p>Cloudflare</p></body></html>",
            codex_errors.CodexError("Just a moment... Attention Required! Cloudflare"),
        ),
        (502, b"Bad Gateway\n", codex_errors.CodexError("Bad Gateway")),
        (500, b"", codex_errors.CodexError("HTTP 500")),
        (500, b"x" * 500, codex_errors.CodexError("x" * 200)),
        (500, b"\xff\xfeoops", codex_errors.CodexError("\ufffd\ufffdoops")),
        (400, b"[1, 2]", codex_errors.CodexError("[1, 2]")),
        (
            400,
            b'{"detail":[{"loc":["body"],"msg":"bad"}]}',
            codex_errors.CodexError('[{"loc":["body"],"msg":"bad"}]'),
        ),
    ],
)
def test_parse_error(status: int, body: bytes, expected: codex_errors.CodexError) -> None:
    assert codex_errors.parse_error(status, body, NOW) == expected


# ================================================================ properties

_scalar = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6)
_keys = st.sampled_from(
    [
        "type",
        "model",
        "input",
        "instructions",
        "role",
        "content",
        "id",
        "call_id",
        "name",
        "arguments",
        "output",
        "item",
        "item_id",
        "delta",
        "response",
        "usage",
        "error",
        "code",
        "message",
        "include",
        "reasoning",
        "encrypted_content",
        "summary",
        "text",
        "previous_response_id",
        "incomplete_details",
        "reason",
        "input_tokens",
        "output_tokens",
        "output_index",
        "detail",
        "resets_at",
    ]
)
_kinds = st.sampled_from(
    [
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_part.added",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "message",
        "function_call",
        "custom_tool_call",
        "reasoning",
        "system",
        "user",
    ]
)
_json = st.recursive(
    _scalar | _kinds,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(_keys, c, max_size=6),
    max_leaves=30,
)
_event = st.fixed_dictionaries(
    {"type": _kinds},
    optional={
        "item_id": st.sampled_from(["a", "b"]),
        "delta": _scalar,
        "item": _json,
        "response": _json,
        "code": _scalar,
        "message": _scalar,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event | _json, max_size=10))
def test_decoder_never_raises(objs: list[Any]) -> None:
    dec = codex.StreamDecoder("m")
    events: list[ir.Event] = []
    for obj in objs:
        out = dec.feed(obj)
        assert isinstance(out, list)
        events.extend(out)
    events.extend(dec.finish())
    # always ends with exactly one terminal event: Finish or StreamError
    terminal = [e for e in events if isinstance(e, ir.Finish | ir.StreamError)]
    assert len(terminal) == 1 and events[-1] is terminal[0]
    assert sum(isinstance(e, ir.StreamStart) for e in events) <= 1
    acc = ResponseAccumulator()
    acc.extend(events)
    acc.response()
    assert isinstance(
        codex.completed_response([o for o in objs if isinstance(o, dict)]), dict | None
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json | st.fixed_dictionaries({"model": _scalar, "input": _json}, optional={"x": _json}))
def test_prepare_passthrough_raises_only_request_error(body: Any) -> None:
    before = copy.deepcopy(body)
    with contextlib.suppress(ir.RequestError):
        out, notes = codex.prepare_passthrough(body)
        assert out["stream"] is True and out["store"] is False
        assert isinstance(out["instructions"], str) and isinstance(out["input"], list)
        assert all(isinstance(n, str) for n in notes)
    assert body == before


_text = st.text(max_size=5)
_image = st.builds(
    ir.ImagePart,
    st.sampled_from(["image/png", "application/pdf", ""]),
    st.none() | _text,
    st.none() | _text,
)
_part = st.one_of(
    st.builds(ir.TextPart, _text),
    _image,
    st.builds(
        ir.ThinkingPart,
        _text,
        st.none() | _text | _text.map(lambda s: PREFIX + s),
        st.booleans(),
    ),
    st.builds(
        ir.ToolCallPart,
        _text,
        _text,
        st.dictionaries(_text, _scalar, max_size=2),
        st.none() | _text,
    ),
    st.builds(
        ir.ToolResultPart,
        _text,
        st.lists(st.builds(ir.TextPart, _text) | _image, max_size=3),
        st.none() | _text,
        st.booleans(),
    ),
)
_request = st.builds(
    ir.Request,
    model=_text,
    messages=st.lists(
        st.builds(ir.Message, st.sampled_from(["user", "assistant", "system"]), st.lists(_part)),
        max_size=4,
    ),
    system=st.lists(_text, max_size=2),
    tools=st.lists(st.builds(ir.Tool, _text, _text, st.dictionaries(_keys, _json, max_size=3))),
    tool_choice=st.none()
    | st.builds(ir.ToolChoice, st.sampled_from(["auto", "none", "required", "tool"]), _text),
    parallel_tool_calls=st.none() | st.booleans(),
    max_tokens=st.none() | st.integers(0, 10),
    temperature=st.none() | st.floats(0, 2),
    response_mime_type=st.none() | st.sampled_from(["application/json", "text/plain", "x"]),
    response_schema=st.none() | st.dictionaries(_keys, _json, max_size=3),
    thinking=st.none()
    | st.builds(
        ir.Thinking,
        st.none()
        | st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh", "max", "auto"]),
        st.none() | st.integers(-2, 40000),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_request)
def test_render_request_never_raises(req: ir.Request) -> None:
    try:
        body = codex.render_request(req)
    except ir.RequestError as e:
        # the one refusal (issue 10): a media part Codex cannot carry, named in the error
        assert e.param is not None and e.param.startswith("messages[")
        assert e.param in e.message and "cannot be sent to a Codex model" in e.message
        return
    json.dumps(body)  # always serialisable
    assert body["stream"] is True and body["store"] is False
    assert body["reasoning"]["effort"] in {"none", "minimal", "low", "medium", "high", "xhigh"}
    assert all(item.get("role") != "system" for item in body["input"])
    for item in body["input"]:
        if item["type"] == "message":
            assert item["content"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60) | _json.map(lambda v: json.dumps(v).encode()), st.floats(0, 2e9))
def test_parse_error_never_raises(body: bytes, now: float) -> None:
    err = codex_errors.parse_error(429, body, now)
    assert isinstance(err.message, str) and err.message
    assert err.resets_in_seconds is None or err.resets_in_seconds >= 0
