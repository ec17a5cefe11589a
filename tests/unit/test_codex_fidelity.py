"""Issue 10 at the Codex translator: names and ids over Codex's limits, interleaved output items,
truncation in the middle of a call, Responses pass-through normalisation, files, custom tools,
web search, service tiers and request-caused errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cliproxy.translators import anthropic
from cliproxy.translators import codex
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events

LONG = "mcp__claude_in_chrome_extension_server__read_console_messages_with_filters_v2"
LONG_TWIN = "mcp__another_extension_server_with_long_name__read_console_messages_with_filters_v2"
LONG_ID = "toolu_" + "x" * 70


def _ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


CREATED = _ev("response.created", response={"id": "resp_1", "model": "gpt-5"})


def _completed(kind: str = "response.completed", **response: Any) -> dict[str, Any]:
    usage = {"input_tokens": 3, "output_tokens": 2}
    return _ev(kind, response={"id": "resp_1", "usage": usage, **response})


def _decode(objs: list[dict[str, Any]], names: dict[str, str] | None = None) -> list[ir.Event]:
    dec = codex.StreamDecoder("gpt-5", names)
    out: list[ir.Event] = []
    for obj in objs:
        out.extend(dec.feed(obj))
    return out + dec.finish()


def _accumulate(events: list[ir.Event]) -> ir.Response:
    acc = ResponseAccumulator()
    acc.extend(events)
    return acc.response()


def _sse(frames: list[bytes]) -> list[dict[str, Any]]:
    parser = SSEParser()
    raw = b"".join(frames)
    return [o for o in parse_json_events(parser.feed(raw) + parser.finish()) if isinstance(o, dict)]


def _added(item_id: str, call_id: str, name: str) -> dict[str, Any]:
    item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name}
    return _ev("response.output_item.added", item={**item, "arguments": ""})


def _args(item_id: str, delta: str) -> dict[str, Any]:
    return _ev("response.function_call_arguments.delta", item_id=item_id, delta=delta)


def _call_done(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name}
    return _ev("response.output_item.done", item={**item, "arguments": arguments})


def _tool_req(*names: str, choice: str | None = None, history: bool = True) -> ir.Request:
    messages = [ir.Message("user", [ir.TextPart("go")])]
    if history:
        messages += [
            ir.Message("assistant", [ir.ToolCallPart(LONG_ID, names[0], {"a": 1})]),
            ir.Message("user", [ir.ToolResultPart(LONG_ID, [ir.TextPart("ok")])]),
        ]
    return ir.Request(
        model="gpt-5",
        messages=messages,
        tools=[ir.Tool(n, "d", {"type": "object"}) for n in names],
        tool_choice=ir.ToolChoice("tool", choice) if choice else None,
    )


# ================================================================ (1) names and call ids


def test_long_tool_names_shortened_uniquely_and_deterministically() -> None:
    req = _tool_req(LONG, LONG_TWIN, "Read", choice=LONG)
    body = codex.render_request(req)
    names = [t["name"] for t in body["tools"]]
    assert names[2] == "Read"  # a valid name is left alone
    assert all(len(n) <= 64 for n in names) and len(set(names)) == 3
    # the MCP tool's own name stays readable; the hash tells the twins apart
    assert names[0].startswith("mcp__read_console_messages_with_filters_v2_")
    assert names[1].startswith("mcp__read_console_messages_with_filters_v2_")
    assert body["tool_choice"] == {"type": "function", "name": names[0]}
    call, output = body["input"][1:3]
    assert call["name"] == names[0]
    # the long call id maps to the same short id on the call and on its output
    assert call["call_id"] == output["call_id"] and len(call["call_id"]) == 64
    assert call["call_id"].startswith("toolu_xxx")
    # the same request renders the same names (no state), and the map gives them back
    assert codex.render_request(_tool_req(LONG, LONG_TWIN, "Read", choice=LONG)) == body
    assert codex.upstream_tool_names(req) == {names[0]: LONG, names[1]: LONG_TWIN}


def test_invalid_characters_and_history_only_names_are_mapped() -> None:
    req = _tool_req("server.tool:read", history=True)
    req.tools = []  # a call in history to a tool no longer declared
    body = codex.render_request(req)
    name = body["input"][1]["name"]
    assert name.startswith("server_tool_read_") and len(name) <= 64
    assert codex.upstream_tool_names(req) == {name: "server.tool:read"}


def test_short_name_clash_with_a_declared_name_takes_another() -> None:
    clash = codex._short_name(LONG, 0)
    req = _tool_req(LONG, clash, history=False)
    names = [t["name"] for t in codex.render_request(req)["tools"]]
    assert names[1] == clash and names[0] != clash and len(names[0]) <= 64


def test_call_ids_up_to_64_are_kept() -> None:
    assert codex.upstream_call_id("c" * 64) == "c" * 64
    assert codex.upstream_call_id("c" * 65) != codex.upstream_call_id("c" * 66)
    assert len(codex.upstream_call_id("c" * 300)) == 64


def test_passthrough_shortens_long_call_ids_in_pairs() -> None:
    body = {
        "model": "gpt-5",
        "input": [
            {"type": "function_call", "call_id": LONG_ID, "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": LONG_ID, "output": "x"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        ],
    }
    out, _ = codex.prepare_passthrough(body)
    first, second, third = out["input"]
    assert first["call_id"] == second["call_id"] == codex.upstream_call_id(LONG_ID)
    assert third["call_id"] == "call_1"
    assert body["input"][0]["call_id"] == LONG_ID  # the client's body is not mutated


def _long_call_stream(short: str) -> list[dict[str, Any]]:
    return [
        CREATED,
        _added("fc_1", "call_1", short),
        _args("fc_1", '{"a":'),
        _args("fc_1", "1}"),
        _call_done("fc_1", "call_1", short, '{"a":1}'),
        _completed(),
    ]


def test_decoder_gives_long_names_back_stream_and_not() -> None:
    req = _tool_req(LONG, history=False)
    names = codex.upstream_tool_names(req)
    (short,) = names
    events = _decode(_long_call_stream(short), names)
    assert ir.ToolCallStart("call_1", LONG) in events
    (part,) = _accumulate(events).parts
    assert isinstance(part, ir.ToolCallPart) and part.name == LONG and part.arguments == {"a": 1}
    # through a client encoder, streamed
    pipe = StreamPipeline(codex.StreamDecoder("gpt-5", names), anthropic.StreamEncoder("m"))
    raw = b"".join(pipe(_frames(_long_call_stream(short)))) + b"".join(pipe(b""))
    starts = [o for o in _sse([raw]) if o.get("type") == "content_block_start"]
    assert starts[0]["content_block"]["name"] == LONG


def _frames(objs: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objs)


# ================================================================ (2) interleaved items, final wins


INTERLEAVED = [
    CREATED,
    _added("fc_1", "call_1", "Read"),
    _args("fc_1", '{"file'),
    _added("fc_2", "call_2", "Grep"),
    _args("fc_2", '{"pattern"'),
    _args("fc_1", '_path":"a"}'),
    _ev("response.output_text.delta", item_id="msg_9", delta="between"),
    _args("fc_2", ':"x"}'),
    _call_done("fc_2", "call_2", "Grep", '{"pattern":"x"}'),
    _call_done("fc_1", "call_1", "Read", '{"file_path":"a"}'),
    _completed(),
]


def test_interleaved_calls_come_out_one_after_the_other() -> None:
    events = _decode(INTERLEAVED)
    assert events[1:] == [
        ir.ToolCallStart("call_1", "Read"),
        ir.ToolCallDelta("call_1", '{"file'),
        ir.ToolCallDelta("call_1", '_path":"a"}'),
        ir.ToolCallEnd("call_1", {"file_path": "a"}),
        # call 2 waited and had ended by then: its arguments ride whole on its end, and the
        # text that came while it was open follows it
        ir.ToolCallStart("call_2", "Grep"),
        ir.ToolCallEnd("call_2", {"pattern": "x"}),
        ir.TextDelta("between"),
        ir.UsageUpdate(ir.Usage(3, 2)),
        ir.Finish("tool_calls"),
    ]


@pytest.mark.parametrize("stream", [True, False])
def test_interleaved_calls_reach_anthropic_with_their_input(stream: bool) -> None:
    if stream:
        pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), anthropic.StreamEncoder("m"))
        objs = _sse([*pipe(_frames(INTERLEAVED)), *pipe(b"")])
        inputs: dict[int, str] = {}
        for o in objs:
            if o.get("type") == "content_block_delta" and o["delta"]["type"] == "input_json_delta":
                inputs[o["index"]] = inputs.get(o["index"], "") + o["delta"]["partial_json"]
        assert [json.loads(v) for v in inputs.values()] == [{"file_path": "a"}, {"pattern": "x"}]
    else:
        body = anthropic.render_response(_accumulate(_decode(INTERLEAVED)))
        uses = [b["input"] for b in body["content"] if b["type"] == "tool_use"]
        assert uses == [{"file_path": "a"}, {"pattern": "x"}]


def test_final_item_wins_over_deltas_and_completed_output_is_used() -> None:
    objs = [
        CREATED,
        _added("fc_1", "call_1", "Read"),
        # a call known only from response.completed's output (no delta, no done)
        _completed(
            output=[
                {
                    "id": "fc_1",
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "Read",
                    "arguments": '{"file_path":"b"}',
                },
                {
                    "id": "fc_2",
                    "type": "function_call",
                    "call_id": "call_2",
                    "name": "Grep",
                    "arguments": '{"pattern":"y"}',
                },
            ]
        ),
    ]
    response = _accumulate(_decode(objs))
    assert [(p.name, p.arguments) for p in response.parts if isinstance(p, ir.ToolCallPart)] == [
        ("Read", {"file_path": "b"}),
        ("Grep", {"pattern": "y"}),
    ]
    assert response.finish_reason == "tool_calls"


def test_completed_output_does_not_repeat_what_came_before() -> None:
    message = {"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "Hi"}]}
    objs = [
        CREATED,
        _ev("response.output_item.done", item=message),
        _completed(output=[message]),
    ]
    assert _accumulate(_decode(objs)).parts == [ir.TextPart("Hi")]


# ================================================================ (2) truncation mid call

CUT = [
    CREATED,
    _added("fc_1", "call_1", "Read"),
    _args("fc_1", '{"file_pa'),
    _completed("response.incomplete", incomplete_details={"reason": "max_output_tokens"}),
]


def test_truncated_call_is_length_in_the_ir() -> None:
    events = _decode(CUT)
    assert events[-1] == ir.Finish("length")
    assert _accumulate(events).finish_reason == "length"


@pytest.mark.parametrize("stream", [True, False])
def test_truncated_call_is_length_for_chat_and_max_tokens_for_anthropic(stream: bool) -> None:
    if stream:
        pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), openai_chat.StreamEncoder("m"))
        objs = _sse([*pipe(_frames(CUT)), *pipe(b"")])
        reasons = [c["finish_reason"] for o in objs for c in o.get("choices", [])]
        assert [r for r in reasons if r] == ["length"]
        pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), anthropic.StreamEncoder("m"))
        objs = _sse([*pipe(_frames(CUT)), *pipe(b"")])
        (delta,) = [o for o in objs if o.get("type") == "message_delta"]
        assert delta["delta"]["stop_reason"] == "max_tokens"
    else:
        response = _accumulate(_decode(CUT))
        assert openai_chat.render_response(response)["choices"][0]["finish_reason"] == "length"
        assert anthropic.render_response(response)["stop_reason"] == "max_tokens"


# ================================================================ (4) Responses pass-through


def test_passthrough_normalises_what_codex_refuses() -> None:
    body = {
        "model": "gpt-5",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi", "prompt_cache_breakpoint": {}}],
            }
        ],
        "context_management": [{"type": "compaction", "compact_threshold": 1000}],
        "prompt_cache_options": {"ttl": "1h"},
        "prompt_cache_breakpoint": {"mode": "auto"},
        "service_tier": "fast",
        "tools": [
            {"type": "web_search_preview", "search_context_size": "low"},
            {"type": "web_search_preview_2025_03_11"},
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
        ],
        "tool_choice": {"type": "web_search_preview"},
        "reasoning": {"effort": "low"},
    }
    out, notes = codex.prepare_passthrough(body)
    for key in ("context_management", "prompt_cache_options", "prompt_cache_breakpoint"):
        assert key not in out
        assert f"{key}: not supported by the Codex backend; dropped" in notes
    assert out["input"][0]["content"] == [{"type": "input_text", "text": "hi"}]
    assert out["service_tier"] == "priority"
    assert [t["type"] for t in out["tools"]] == ["web_search", "web_search", "function"]
    assert out["tools"][0] == {"type": "web_search", "search_context_size": "low"}
    assert out["tool_choice"] == {"type": "web_search"}
    assert out["include"] == ["reasoning.encrypted_content"]
    assert body["tools"][0]["type"] == "web_search_preview"  # not mutated


@pytest.mark.parametrize(
    ("tier", "sent"),
    [("priority", "priority"), ("default", "default"), ("fast", "priority"), ("auto", None),
     ("flex", None), ("scale", None), (None, None)],
)  # fmt: skip
def test_passthrough_service_tiers(tier: str | None, sent: str | None) -> None:
    out, notes = codex.prepare_passthrough({"model": "gpt-5", "input": [], "service_tier": tier})
    assert out.get("service_tier") == sent
    dropped = tier is not None and sent is None
    assert notes == ([f"service_tier={tier}: not taken by the Codex backend; dropped"] * dropped)


def test_passthrough_no_include_when_reasoning_is_off() -> None:
    body = {"model": "gpt-5", "input": [], "reasoning": {"effort": "none"}}
    assert "include" not in codex.prepare_passthrough(body)[0]


# ================================================================ (7) request-caused errors

CYBER_EVENT = _ev(
    "error",
    error={"type": "invalid_request", "code": "cyber_policy", "message": "flagged", "param": None},
)


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        (CYBER_EVENT, 400),
        (_ev("response.failed", response={"error": {"code": "cyber_policy", "message": "m"}}), 400),
        (_ev("response.failed", response={"error": {"type": "invalid_request"}}), 400),
        (_ev("error", code="invalid_prompt", message="m"), 400),
        (_ev("response.failed", response={"error": {"code": "server_error"}}), 502),
        (_ev("response.failed", response={"error": {"code": "rate_limit_exceeded"}}), 429),
    ],
)
def test_request_caused_failures_are_400(obj: dict[str, Any], status: int) -> None:
    (start, error) = _decode([obj])
    assert isinstance(start, ir.StreamStart)
    assert isinstance(error, ir.StreamError) and error.status == status


@pytest.mark.parametrize("stream", [True, False])
def test_cyber_policy_event_reaches_anthropic_as_invalid_request(stream: bool) -> None:
    if stream:
        pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), anthropic.StreamEncoder("m"))
        objs = _sse([*pipe(_frames([CREATED, CYBER_EVENT])), *pipe(b"")])
        (error,) = [o for o in objs if o.get("type") == "error"]
        assert error["error"] == {"type": "invalid_request_error", "message": "flagged"}
    else:
        acc = ResponseAccumulator()
        acc.extend(_decode([CREATED, CYBER_EVENT]))
        assert acc.error is not None and acc.error.status == 400
        assert anthropic.error_body(acc.error.status, "x")["error"]["type"] == (
            "invalid_request_error"
        )


# ================================================================ (5) files and media


def _media_req(*parts: ir.Part) -> ir.Request:
    return ir.Request(model="gpt-5", messages=[ir.Message("user", list(parts))])


def _file(name: str, data: str) -> dict[str, str]:
    return {"type": "input_file", "filename": name, "file_data": data}


def test_pdf_and_text_files_go_as_input_file() -> None:
    body = codex.render_request(
        _media_req(
            ir.ImagePart("application/pdf", data="JVBE"),
            ir.ImagePart("text/plain", data="aGk="),
            ir.ImagePart("application/pdf", url="https://x.test/a.pdf"),
        )
    )
    assert body["input"][0]["content"] == [
        _file("document.pdf", "data:application/pdf;base64,JVBE"),
        _file("document.txt", "data:text/plain;base64,aGk="),
        {"type": "input_file", "file_url": "https://x.test/a.pdf"},
    ]


def test_pdf_in_a_tool_result_goes_as_input_file() -> None:
    req = ir.Request(
        model="gpt-5",
        messages=[
            ir.Message("assistant", [ir.ToolCallPart("c1", "f", {})]),
            ir.Message(
                "user", [ir.ToolResultPart("c1", [ir.ImagePart("application/pdf", data="JVBE")])]
            ),
        ],
    )
    output = codex.render_request(req)["input"][1]["output"]
    assert output == [_file("document.pdf", "data:application/pdf;base64,JVBE")]


@pytest.mark.parametrize("mime", ["audio/wav", "video/mp4", "application/zip"])
def test_media_codex_cannot_read_is_refused_naming_the_part(mime: str) -> None:
    req = ir.Request(
        model="gpt-5",
        messages=[
            ir.Message("user", [ir.TextPart("a")]),
            ir.Message("assistant", [ir.TextPart("b")]),
            ir.Message("user", [ir.TextPart("c"), ir.ImagePart(mime, data="AAAA")]),
        ],
    )
    with pytest.raises(ir.RequestError) as err:
        codex.render_request(req)
    assert err.value.param == "messages[2]" and mime in err.value.message


def test_chat_input_audio_to_codex_is_refused() -> None:
    body = {
        "model": "gpt-5",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
                ],
            }
        ],
    }
    req = openai_chat.parse_request(body)
    with pytest.raises(ir.RequestError, match="audio/wav part cannot be sent to a Codex model"):
        codex.render_request(req)


# ================================================================ (8) fast lane


@pytest.mark.parametrize(
    ("extra", "tier"),
    [({"speed": "fast"}, "priority"), ({"service_tier": "priority"}, "priority"),
     ({"service_tier": "auto"}, None), ({}, None)],
)  # fmt: skip
def test_anthropic_fast_is_codex_priority(extra: dict[str, Any], tier: str | None) -> None:
    body = {"model": "gpt-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    req = anthropic.parse_request({**body, **extra})
    assert codex.render_request(req).get("service_tier") == tier
