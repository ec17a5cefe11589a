"""Issue 10: Anthropic's web_search server tool on a Codex model. The tool becomes Codex's
`web_search`; Codex `web_search_call` items come back as `server_tool_use` +
`web_search_tool_result` blocks (stream and non-stream), and such blocks in history go back to
Codex as web_search_call items."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cliproxy.translators import anthropic
from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import parse_json_events

WEB_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
SOURCES = [
    {"type": "url", "url": "https://example.com/a", "title": "A"},
    {"type": "url", "url": "https://example.com/b", "title": "B"},
]
RESULTS = [
    {"url": "https://example.com/a", "title": "A"},
    {"url": "https://example.com/b", "title": "B"},
]
SEARCH_ITEM = {
    "id": "ws_1",
    "type": "web_search_call",
    "status": "completed",
    "action": {"type": "search", "query": "mitmproxy 12", "sources": SOURCES},
}
USAGE = {"input_tokens": 3, "output_tokens": 2}
STREAM = [
    {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5"}},
    {
        "type": "response.output_item.added",
        "item": {"id": "ws_1", "type": "web_search_call", "status": "in_progress"},
    },
    {"type": "response.web_search_call.searching", "item_id": "ws_1"},
    {"type": "response.output_item.done", "item": SEARCH_ITEM},
    {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Found it."},
    {
        "type": "response.completed",
        "response": {"id": "resp_1", "usage": USAGE, "output": [SEARCH_ITEM]},
    },
]


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-5",
        "max_tokens": 1024,
        "tools": [WEB_TOOL],
        "messages": [{"role": "user", "content": "what is new in mitmproxy?"}],
        **extra,
    }


def test_the_server_tool_becomes_codex_web_search() -> None:
    req = anthropic.parse_request(_body())
    assert req.web_search and req.tools == [] and req.dropped == []
    out = codex.render_request(req)
    assert out["tools"] == [{"type": "web_search"}]
    assert "web_search_call.action.sources" in out["include"]


def test_without_it_no_web_search_is_offered() -> None:
    out = codex.render_request(anthropic.parse_request(_body(tools=[])))
    assert out["tools"] == [] and out["include"] == ["reasoning.encrypted_content"]


def test_gemini_gets_a_note_not_a_search() -> None:
    req = anthropic.parse_request(_body(model="gemini-2.5-pro"))
    body, _ = gemini.render_request(req)
    assert "tools" not in body
    assert any(n.startswith("web_search:") for n in req.dropped)


def _decode(objs: list[dict[str, Any]]) -> list[ir.Event]:
    dec = codex.StreamDecoder("gpt-5")
    out: list[ir.Event] = []
    for obj in objs:
        out += dec.feed(obj)
    return out + dec.finish()


def test_decoder_gives_one_web_search_part() -> None:
    events = _decode(STREAM)
    searches = [e for e in events if isinstance(e, ir.WebSearchPart)]
    assert searches == [ir.WebSearchPart("ws_1", "mitmproxy 12", RESULTS)]  # once, not twice
    assert events[-1] == ir.Finish("stop")  # a server-side search is not a client tool call


def test_non_stream_answer_has_server_tool_use_and_result_blocks() -> None:
    acc = ResponseAccumulator()
    acc.extend(_decode(STREAM))
    body = anthropic.render_response(acc.response())
    use, result, text = body["content"]
    assert use == {
        "type": "server_tool_use",
        "id": "srvtoolu_ws_1",
        "name": "web_search",
        "input": {"query": "mitmproxy 12"},
    }
    assert result["type"] == "web_search_tool_result" and result["tool_use_id"] == use["id"]
    assert [(r["type"], r["url"], r["title"]) for r in result["content"]] == [
        ("web_search_result", "https://example.com/a", "A"),
        ("web_search_result", "https://example.com/b", "B"),
    ]
    assert text == {"type": "text", "text": "Found it."}
    assert body["stop_reason"] == "end_turn"


def test_stream_answer_has_server_tool_use_and_result_blocks() -> None:
    pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), anthropic.StreamEncoder("gpt-5"))
    raw = b"".join(pipe("".join(f"data: {json.dumps(o)}\n\n" for o in STREAM).encode()))
    raw += b"".join(pipe(b""))
    parser = SSEParser()
    objs = [o for o in parse_json_events(parser.feed(raw) + parser.finish()) if isinstance(o, dict)]
    starts = [o["content_block"] for o in objs if o["type"] == "content_block_start"]
    assert [b["type"] for b in starts] == ["server_tool_use", "web_search_tool_result", "text"]
    assert starts[0]["input"] == {} and starts[1]["tool_use_id"] == starts[0]["id"]
    assert [r["url"] for r in starts[1]["content"]] == [r["url"] for r in RESULTS]
    deltas = [o["delta"] for o in objs if o["type"] == "content_block_delta" and o["index"] == 0]
    assert json.loads("".join(d["partial_json"] for d in deltas)) == {"query": "mitmproxy 12"}
    stop = next(o for o in objs if o["type"] == "message_delta")
    assert stop["delta"]["stop_reason"] == "end_turn"


def test_history_blocks_go_back_to_codex_as_a_web_search_call() -> None:
    acc = ResponseAccumulator()
    acc.extend(_decode(STREAM))
    answer = anthropic.render_response(acc.response())
    messages = [
        {"role": "user", "content": "what is new in mitmproxy?"},
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": "and in 11?"},
    ]
    req = anthropic.parse_request(_body(messages=messages))
    assert req.dropped == []
    (search,) = [p for p in req.messages[1].parts if isinstance(p, ir.WebSearchPart)]
    assert search.query == "mitmproxy 12" and search.results == RESULTS
    items = codex.render_request(req)["input"]
    assert items[1] == {
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "mitmproxy 12"},
    }
    # Gemini reads what was found as text
    body, _ = gemini.render_request(req)
    assert "https://example.com/a" in body["contents"][1]["parts"][0]["text"]


@pytest.mark.parametrize("stream", [True, False])
def test_other_clients_ignore_the_search(stream: bool) -> None:
    if stream:
        pipe = StreamPipeline(codex.StreamDecoder("gpt-5"), openai_chat.StreamEncoder("gpt-5"))
        raw = b"".join(pipe("".join(f"data: {json.dumps(o)}\n\n" for o in STREAM).encode()))
        raw += b"".join(pipe(b""))
        assert b"Found it." in raw and b"error" not in raw
    else:
        acc = ResponseAccumulator()
        acc.extend(_decode(STREAM))
        resp = acc.response()
        assert openai_chat.render_response(resp)["choices"][0]["message"]["content"] == "Found it."
        parts = gemini.render_response(resp)["candidates"][0]["content"]["parts"]
        assert parts == [{"text": "Found it."}]
