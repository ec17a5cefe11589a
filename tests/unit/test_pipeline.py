"""translators/pipeline.py: upstream SSE bytes -> client bytes
(docs/mitmproxy.md "Streaming responses", docs/configuration.md "Error shapes").

What a client notices: the same bytes however TCP splits the upstream stream, an error event in
its own format when anything goes wrong (never a clean end, never untranslated upstream bytes),
and the Codex / Gemini pass-through streams left as the upstream sent them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from cliproxy.translators import anthropic
from cliproxy.translators import code_assist
from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import openai_responses
from cliproxy.translators.pipeline import GeminiPassthrough
from cliproxy.translators.pipeline import ResponsesRelay
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.sse import SSEParser
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.fixtures.codex_stream import CODEX_EVENTS
from tests.fixtures.determinism import NOW
from tests.fixtures.determinism import deterministic

# ---------------------------------------------------------------- upstream fixtures

# Code Assist stream (docs/upstreams.md "Code Assist responses and SSE"): thought, text (multi-byte
# UTF-8, so some splits fall inside a character), then a whole functionCall with a base64
# thoughtSignature and STOP.
CA_FRAMES = [
    {
        "response": {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"thought": True, "text": "**Listing files**"}],
                    },
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 12282,
                "totalTokenCount": 12352,
                "thoughtsTokenCount": 70,
            },
            "modelVersion": "gemini-2.5-pro",
        },
        "traceId": "1a2b3c4d5e6f7a8b",
    },
    {
        "response": {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Grüße ✓ "}]}, "index": 0}
            ],
            "modelVersion": "gemini-2.5-pro",
        },
        "traceId": "1a2b3c4d5e6f7a8b",
    },
    {
        "response": {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {
                                    "name": "list_directory",
                                    "args": {"dir_path": "src"},
                                },
                                "thoughtSignature": "CikB0e2Kb7zk",
                            }
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 12282,
                "candidatesTokenCount": 14,
                "totalTokenCount": 12366,
                "thoughtsTokenCount": 70,
            },
            "modelVersion": "gemini-2.5-pro",
        },
        "traceId": "1a2b3c4d5e6f7a8b",
    },
]


def sse_data(objs: list[Any], newline: bytes = b"\n") -> bytes:
    """`data: <json>` events as Google frames them (no `event:`, no [DONE])."""
    out = b""
    for obj in objs:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        out += b"data: " + text.encode() + newline + newline
    return out


CA_STREAM = sse_data(CA_FRAMES)
CA_STREAM_CRLF = sse_data(CA_FRAMES, b"\r\n")
AI_STUDIO_STREAM = sse_data([f["response"] for f in CA_FRAMES])

# Codex stream (docs/upstreams.md "Codex SSE events"), with the codex.rate_limits event the backend
# sends first.


def codex_frame(obj: dict[str, Any], named: bool = True) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    head = b"event: " + obj["type"].encode() + b"\n" if named else b""
    return head + b"data: " + data + b"\n\n"


CODEX_FRAMES = [codex_frame(e) for e in CODEX_EVENTS]
CODEX_STREAM = b"".join(CODEX_FRAMES)
CODEX_CUT = b"".join(CODEX_FRAMES[:-1])  # no response.completed

# ---------------------------------------------------------------- helpers


Stream = Callable[[bytes], list[bytes]]


def run(stream: Stream, chunks: list[bytes]) -> list[bytes]:
    """Feed every chunk, then end of stream (b""), as mitmproxy does."""
    out: list[bytes] = []
    for chunk in chunks:
        out += stream(chunk)
    out += stream(b"")
    return out


def frames(data: bytes) -> list[tuple[str | None, Any]]:
    """Client bytes -> [(event name, parsed data)] ("[DONE]" stays a string)."""
    parser = SSEParser()
    out = []
    for ev in parser.feed(data) + parser.finish():
        out.append((ev.event, ev.data if ev.data == "[DONE]" else json.loads(ev.data)))
    return out


def chat() -> openai_chat.StreamEncoder:
    return openai_chat.StreamEncoder("gpt-4o", include_usage=True)


def claude() -> anthropic.StreamEncoder:
    return anthropic.StreamEncoder("claude-sonnet-4-5")


def responses() -> openai_responses.StreamEncoder:
    return openai_responses.StreamEncoder("gpt-5")


def gemini_client() -> gemini.StreamEncoder:
    return gemini.StreamEncoder("gemini-2.5-pro")


def code_assist_pipeline(encoder: Callable[[], Any]) -> Stream:
    return StreamPipeline(
        gemini.StreamDecoder("gemini-2.5-pro"), encoder(), unwrap=code_assist.unwrap_response
    )


def ai_studio_pipeline(encoder: Callable[[], Any]) -> Stream:
    return StreamPipeline(gemini.StreamDecoder("gemini-2.5-pro"), encoder())


def codex_pipeline(encoder: Callable[[], Any]) -> Stream:
    return StreamPipeline(codex.StreamDecoder("gpt-5-codex"), encoder())


ENCODERS: dict[str, Callable[[], Any]] = {
    "chat": chat,
    "anthropic": claude,
    "responses": responses,
    "gemini": gemini_client,
}

# ---------------------------------------------------------------- chunking invariance

SPLIT_CASES: list[tuple[str, Callable[[], Stream], bytes]] = [
    ("code_assist->chat", lambda: code_assist_pipeline(chat), CA_STREAM),
    ("code_assist->chat crlf", lambda: code_assist_pipeline(chat), CA_STREAM_CRLF),
    ("code_assist->anthropic", lambda: code_assist_pipeline(claude), CA_STREAM),
    ("code_assist->responses", lambda: code_assist_pipeline(responses), CA_STREAM),
    ("code_assist->gemini", lambda: code_assist_pipeline(gemini_client), CA_STREAM),
    ("ai_studio->anthropic", lambda: ai_studio_pipeline(claude), AI_STUDIO_STREAM),
    ("codex->chat", lambda: codex_pipeline(chat), CODEX_STREAM),
    ("codex->anthropic", lambda: codex_pipeline(claude), CODEX_STREAM),
    ("codex->responses relay", ResponsesRelay, CODEX_STREAM),
    ("codex->responses relay, cut", ResponsesRelay, CODEX_CUT),
    ("code_assist->gemini passthrough", lambda: GeminiPassthrough(unwrap=True), CA_STREAM),
    ("ai_studio->gemini passthrough", lambda: GeminiPassthrough(unwrap=False), AI_STUDIO_STREAM),
    ("code_assist->gemini passthrough, cut", lambda: GeminiPassthrough(True), CA_STREAM[:-300]),
]


def whole(factory: Callable[[], Stream], data: bytes) -> list[bytes]:
    with deterministic():
        return run(factory(), [data])


@pytest.mark.parametrize(
    ("factory", "data"), [c[1:] for c in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES]
)
def test_every_split_point_gives_the_bytes_of_the_whole_stream(
    factory: Callable[[], Stream], data: bytes
) -> None:
    expected = b"".join(whole(factory, data))
    assert expected.count(b"\n\n") >= 3  # the reference itself is a real translation
    for i in range(1, len(data)):
        with deterministic():
            out = run(factory(), [data[:i], data[i:]])
        assert b"" not in out, i
        assert b"".join(out) == expected, f"split at byte {i}"


@pytest.mark.parametrize(
    ("factory", "data"), [c[1:] for c in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES]
)
def test_one_byte_at_a_time_gives_the_bytes_of_the_whole_stream(
    factory: Callable[[], Stream], data: bytes
) -> None:
    expected = b"".join(whole(factory, data))
    with deterministic():
        out = run(factory(), [data[i : i + 1] for i in range(len(data))])
    assert b"" not in out
    assert b"".join(out) == expected


def test_crlf_framing_translates_like_lf() -> None:
    lf = b"".join(whole(lambda: code_assist_pipeline(chat), CA_STREAM))
    crlf = b"".join(whole(lambda: code_assist_pipeline(chat), CA_STREAM_CRLF))
    assert crlf == lf


# ---------------------------------------------------------------- exact client streams


def test_code_assist_to_chat_exact_chunks() -> None:
    out = frames(b"".join(whole(lambda: code_assist_pipeline(chat), CA_STREAM)))
    head = {"id": "chatcmpl-1a2b3c4d5e6f7a8b", "object": "chat.completion.chunk"}
    for name, obj in out[:-1]:
        assert name is None
        assert {k: obj[k] for k in head} == head
        assert (obj["created"], obj["model"]) == (NOW, "gpt-4o")
    choices = [obj["choices"] for _, obj in out[:-1]]
    call_id = choices[3][0]["delta"]["tool_calls"][0]["id"]
    assert call_id.startswith("call_")
    assert choices == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        [{"index": 0, "delta": {"reasoning_content": "**Listing files**"}, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "Grüße ✓ "}, "finish_reason": None}],
        [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "list_directory", "arguments": ""},
                            "extra_content": {"google": {"thought_signature": "CikB0e2Kb7zk"}},
                        }
                    ]
                },
                "finish_reason": None,
            }
        ],
        [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [{"index": 0, "function": {"arguments": '{"dir_path": "src"}'}}]
                },
                "finish_reason": None,
            }
        ],
        [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
        [],  # the include_usage chunk
    ]
    assert out[-2][1]["usage"] == {
        "prompt_tokens": 12282,
        "completion_tokens": 84,  # candidates 14 + thoughts 70
        "total_tokens": 12366,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 70},
    }
    assert out[-1] == (None, "[DONE]")


def test_code_assist_to_anthropic_exact_events() -> None:
    out = frames(b"".join(whole(lambda: code_assist_pipeline(claude), CA_STREAM)))
    assert all(name == obj["type"] for name, obj in out)  # every frame names its type
    start = out[0][1]["message"]
    assert start["id"] == "msg_1a2b3c4d5e6f7a8b"
    assert start["model"] == "claude-sonnet-4-5"
    assert start["usage"]["input_tokens"] == 12282
    tool_id = out[10][1]["content_block"]["id"]
    assert [obj for _, obj in out[1:]] == [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "**Listing files**"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Grüße ✓ "},
        },
        {"type": "content_block_stop", "index": 1},
        # the functionCall's thoughtSignature rides on an empty thinking block before tool_use
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "signature_delta", "signature": "gemini:CikB0e2Kb7zk"},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {
                "type": "tool_use",
                "id": tool_id,
                "name": "list_directory",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": '{"dir_path": "src"}'},
        },
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "input_tokens": 12282,
                "output_tokens": 84,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
        {"type": "message_stop"},
    ]


def test_code_assist_to_gemini_client_exact_chunks() -> None:
    out = frames(b"".join(whole(lambda: code_assist_pipeline(gemini_client), CA_STREAM)))
    bodies = [obj for _, obj in out]
    for body in bodies:
        assert (body["modelVersion"], body["responseId"]) == ("gemini-2.5-pro", "1a2b3c4d5e6f7a8b")
    parts = [b["candidates"][0].get("content", {}).get("parts") for b in bodies]
    call = parts[2][0]
    assert parts == [
        [{"thought": True, "text": "**Listing files**"}],
        [{"text": "Grüße ✓ "}],
        [
            {
                "functionCall": {
                    "name": "list_directory",
                    "args": {"dir_path": "src"},
                    "id": call["functionCall"]["id"],
                },
                "thoughtSignature": "CikB0e2Kb7zk",
            }
        ],
        None,
    ]
    assert bodies[-1]["candidates"] == [{"finishReason": "STOP", "index": 0}]
    assert bodies[-1]["usageMetadata"] == {
        "promptTokenCount": 12282,
        "candidatesTokenCount": 14,
        "totalTokenCount": 12366,
        "thoughtsTokenCount": 70,
    }


def test_code_assist_to_responses_ends_completed_with_every_item() -> None:
    out = frames(b"".join(whole(lambda: code_assist_pipeline(responses), CA_STREAM)))
    kinds = [name for name, _ in out]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [obj["sequence_number"] for _, obj in out] == list(range(len(out)))
    final = out[-1][1]["response"]
    assert final["id"] == "resp_1a2b3c4d5e6f7a8b"
    assert final["status"] == "completed"
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][2]["name"] == "list_directory"
    assert json.loads(final["output"][2]["arguments"]) == {"dir_path": "src"}
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 70}


def test_codex_to_anthropic_counts_cached_input_apart() -> None:
    out = frames(b"".join(whole(lambda: codex_pipeline(claude), CODEX_STREAM)))
    assert [name for name, _ in out] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert out[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_xyz",
        "name": "shell",
        "input": {},
    }
    assert out[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"command":["ls"]}'}
    assert out[7][1]["usage"] == {
        "input_tokens": 176,
        "output_tokens": 42,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1024,
    }


# ---------------------------------------------------------------- errors in the client's format

ERROR_429 = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
    }
}
MSG_429 = ERROR_429["error"]["message"]


def expected_error(client: str, message: str, status: int) -> tuple[str | None, dict[str, Any]]:
    """The exact error frame each dialect gets (docs/configuration.md "Error shapes" stream
    errors)."""
    if client == "chat":
        return None, openai_chat.error_body(status, message)
    if client == "anthropic":
        return "error", anthropic.error_body(status, message)
    if client == "gemini":
        return None, gemini.error_body(status, message)
    raise AssertionError(client)


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini", "responses"])
def test_error_object_mid_stream_becomes_the_clients_error_event(client: str) -> None:
    first = sse_data(CA_FRAMES[:1])
    rest = sse_data([ERROR_429, CA_FRAMES[1], CA_FRAMES[2]])
    with deterministic():
        pipe = code_assist_pipeline(ENCODERS[client])
        before = pipe(first)
        out = pipe(rest)
        after = pipe(sse_data(CA_FRAMES[1:])) + pipe(b"")
    assert before  # the thought went out
    assert after == []  # nothing after the error: no clean end, no late content
    translated = frames(b"".join(out))
    assert len(translated) == 1
    name, obj = translated[-1]
    if client == "responses":
        assert name == "response.failed"
        assert obj["response"]["status"] == "failed"
        assert obj["response"]["error"] == {"code": "rate_limit_exceeded", "message": MSG_429}
        assert obj["response"]["id"] == "resp_1a2b3c4d5e6f7a8b"
    else:
        assert (name, obj) == expected_error(client, MSG_429, 429)
    assert "Grüße".encode() not in b"".join(out)


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini"])
def test_error_object_as_first_frame_is_an_error_only(client: str) -> None:
    with deterministic():
        out = run(code_assist_pipeline(ENCODERS[client]), [sse_data([ERROR_429])])
    assert frames(b"".join(out)) == [expected_error(client, MSG_429, 429)]


def test_error_object_without_a_code_is_a_500_with_its_text() -> None:
    out = run(ai_studio_pipeline(chat), [b'data: {"error":"backend exploded"}\n\n'])
    assert frames(b"".join(out)) == [(None, openai_chat.error_body(500, "backend exploded"))]


class BoomDecoder:
    """A decoder with a bug: the `fail_at`-th feed raises."""

    def __init__(self, fail_at: int = 2, fail_finish: bool = False) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.fail_finish = fail_finish

    def feed(self, obj: dict) -> list[ir.Event]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return [ir.StreamStart("id1", "m"), ir.TextDelta(f"t{self.calls}")]

    def finish(self) -> list[ir.Event]:
        if self.fail_finish:
            raise KeyError("late")
        return [ir.Finish("stop")]


THREE_FRAMES = sse_data([{"n": 1}, {"n": 2}, {"n": 3}])


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini", "responses"])
def test_decoder_exception_becomes_an_error_event_and_the_rest_is_swallowed(client: str) -> None:
    with deterministic():
        pipe = StreamPipeline(BoomDecoder(fail_at=2), ENCODERS[client]())
        first = pipe(THREE_FRAMES[: THREE_FRAMES.index(b"\n\n") + 2])
        out = pipe(THREE_FRAMES[THREE_FRAMES.index(b"\n\n") + 2 :])
        later = pipe(sse_data([{"n": 4}])) + pipe(b"") + pipe(b"data: {}\n\n")
    assert later == []
    assert b"" not in out
    message = "proxy translation error: RuntimeError: boom"
    if client == "responses":
        name, obj = frames(b"".join(out))[-1]
        assert name == "response.failed"
        assert obj["response"]["error"] == {"code": "server_error", "message": message}
    else:
        assert frames(b"".join(out))[-1] == expected_error(client, message, 500)
    # what came before the fault was delivered; nothing after it (t3) is
    assert b"t1" in b"".join(first)
    assert b"t3" not in b"".join(out)


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini"])
def test_decoder_finish_exception_becomes_an_error_event(client: str) -> None:
    with deterministic():
        pipe = StreamPipeline(BoomDecoder(fail_at=0, fail_finish=True), ENCODERS[client]())
        out = run(pipe, [THREE_FRAMES])
    assert frames(b"".join(out))[-1] == expected_error(
        client, "proxy translation error: KeyError: 'late'", 500
    )


def test_unwrap_exception_becomes_an_error_event() -> None:
    def bad_unwrap(obj: Any) -> dict:
        raise ValueError("bad wrapper")

    pipe = StreamPipeline(gemini.StreamDecoder("m"), chat(), unwrap=bad_unwrap)
    out = run(pipe, [sse_data(CA_FRAMES)])
    assert frames(b"".join(out)) == [
        (None, openai_chat.error_body(500, "proxy translation error: ValueError: bad wrapper"))
    ]


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini", "responses"])
def test_stream_cut_before_finish_ends_in_an_error_not_a_clean_end(client: str) -> None:
    with deterministic():
        out = run(code_assist_pipeline(ENCODERS[client]), [sse_data(CA_FRAMES[:2])])
    name, obj = frames(b"".join(out))[-1]
    message = "upstream stream ended before completion"
    if client == "responses":
        assert name == "response.failed"
        assert obj["response"]["error"] == {"code": "server_error", "message": message}
    else:
        assert (name, obj) == expected_error(client, message, 502)
    assert b"[DONE]" not in b"".join(out)
    assert b"message_stop" not in b"".join(out)


def test_codex_stream_cut_reaches_a_chat_client_as_an_error() -> None:
    with deterministic():
        out = run(codex_pipeline(chat), [CODEX_CUT])
    assert frames(b"".join(out))[-1] == (
        None,
        openai_chat.error_body(
            502, "Codex stream closed before response.completed", "stream_incomplete"
        ),
    )


def test_codex_in_stream_failure_reaches_an_anthropic_client_as_an_error() -> None:
    failed = {
        "type": "response.failed",
        "sequence_number": 3,
        "response": {
            "id": "resp_1",
            "status": "failed",
            "error": {
                "code": "context_length_exceeded",
                "message": "Your input exceeds the context window of this model.",
            },
            "usage": None,
        },
    }
    with deterministic():
        out = run(codex_pipeline(claude), [CODEX_FRAMES[1] + CODEX_FRAMES[3] + codex_frame(failed)])
    assert frames(b"".join(out))[-1] == (
        "error",
        anthropic.error_body(400, "Your input exceeds the context window of this model."),
    )


def test_empty_upstream_stream_is_an_error() -> None:
    assert frames(b"".join(run(code_assist_pipeline(chat), []))) == [
        (None, openai_chat.error_body(502, "upstream stream ended before completion"))
    ]


# ---------------------------------------------------------------- ResponsesRelay


class BrokenParser:
    """An SSE parser with a bug, to reach the translators' last-resort handlers."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def feed(self, chunk: bytes) -> list:
        raise self.exc

    def finish(self) -> list:
        return []


def test_relay_moves_rate_limits_after_created_and_passes_the_rest_verbatim() -> None:
    out = run(ResponsesRelay(), [CODEX_STREAM])
    assert out == [CODEX_FRAMES[1], CODEX_FRAMES[0], *CODEX_FRAMES[2:]]


def test_relay_holds_early_events_across_chunks_until_created() -> None:
    relay = ResponsesRelay()
    assert relay(CODEX_FRAMES[0]) == []  # held: response.created has not come yet
    assert relay(CODEX_FRAMES[1]) == [CODEX_FRAMES[1], CODEX_FRAMES[0]]
    assert relay(CODEX_FRAMES[2]) == [CODEX_FRAMES[2]]


def test_relay_names_events_that_came_without_an_event_line() -> None:
    unnamed = b"".join(codex_frame(e, named=False) for e in CODEX_EVENTS[1:])
    out = run(ResponsesRelay(), [unnamed])
    assert out == CODEX_FRAMES[1:]


def test_relay_ends_a_cut_stream_with_response_failed_carrying_the_created_id() -> None:
    out = run(ResponsesRelay(), [CODEX_CUT])
    assert out[:-1] == [CODEX_FRAMES[1], CODEX_FRAMES[0], *CODEX_FRAMES[2:-1]]
    ((name, obj),) = frames(out[-1])
    assert name == "response.failed"
    assert obj == {
        "type": "response.failed",
        "sequence_number": 7,  # one past the last the client saw
        "response": {
            **CODEX_EVENTS[1]["response"],
            "status": "failed",
            "error": {
                "code": "server_error",
                "message": "the upstream stream ended before response.completed",
            },
        },
    }


@pytest.mark.parametrize(
    "terminal", ["response.completed", "response.incomplete", "response.failed"]
)
def test_relay_adds_nothing_after_a_terminal_event(terminal: str) -> None:
    end = {"type": terminal, "sequence_number": 2, "response": {"id": "resp_68a1", "status": "x"}}
    data = CODEX_FRAMES[1] + CODEX_FRAMES[3] + codex_frame(end)
    out = run(ResponsesRelay(), [data])
    assert out == [CODEX_FRAMES[1], CODEX_FRAMES[3], codex_frame(end)]


def test_relay_without_any_event_still_fails() -> None:
    out = run(ResponsesRelay(), [])
    ((name, obj),) = frames(b"".join(out))
    assert name == "response.failed"
    assert obj["sequence_number"] == 0
    assert obj["response"]["status"] == "failed"


def test_relay_flushes_held_events_before_failing_when_created_never_came() -> None:
    out = run(ResponsesRelay(), [CODEX_FRAMES[0]])
    assert out[0] == CODEX_FRAMES[0]
    assert frames(out[1])[0][0] == "response.failed"


def test_relay_internal_fault_becomes_response_failed() -> None:
    relay = ResponsesRelay()
    relay(CODEX_FRAMES[1])

    relay.parser = BrokenParser(MemoryError("no room"))  # type: ignore[assignment]
    out = relay(b"anything")
    ((name, obj),) = frames(b"".join(out))
    assert name == "response.failed"
    assert obj["response"]["id"] == "resp_68a1"
    assert obj["response"]["error"] == {
        "code": "server_error",
        "message": "proxy translation error: MemoryError",
    }


# ---------------------------------------------------------------- GeminiPassthrough


def test_passthrough_unwraps_code_assist_frames() -> None:
    out = run(GeminiPassthrough(unwrap=True), [CA_STREAM])
    expected = [{**f["response"], "responseId": "1a2b3c4d5e6f7a8b"} for f in CA_FRAMES]
    assert frames(b"".join(out)) == [(None, body) for body in expected]


def test_passthrough_keeps_a_response_id_code_assist_already_set() -> None:
    frame = {"response": {**CA_FRAMES[2]["response"], "responseId": "own"}, "traceId": "t"}
    out = run(GeminiPassthrough(unwrap=True), [sse_data([frame])])
    assert frames(b"".join(out))[0][1]["responseId"] == "own"


def test_passthrough_leaves_ai_studio_frames_alone() -> None:
    out = run(GeminiPassthrough(unwrap=False), [AI_STUDIO_STREAM])
    assert b"".join(out) == AI_STUDIO_STREAM  # compact JSON in, the same bytes out


def test_passthrough_drops_code_assist_frames_without_a_response() -> None:
    # a Code Assist chunk without `response` is valid (= no candidates): nothing to pass on to a
    # public-API client, while a Code Assist client gets it as it came
    data = sse_data([{"traceId": "abc"}, CA_FRAMES[2]])
    out = run(GeminiPassthrough(unwrap=True), [data])
    assert len(out) == 1
    assert frames(out[0])[0][1]["candidates"][0]["finishReason"] == "STOP"
    relayed = run(GeminiPassthrough(unwrap=False), [data])
    assert b"".join(relayed) == data


def test_passthrough_wraps_ai_studio_frames_for_a_code_assist_client() -> None:
    out = run(GeminiPassthrough(unwrap=False, wrap=True), [AI_STUDIO_STREAM])
    assert frames(b"".join(out)) == [(None, {"response": f["response"]}) for f in CA_FRAMES]


def test_passthrough_relays_code_assist_frames_verbatim_to_a_code_assist_client() -> None:
    out = run(GeminiPassthrough(unwrap=False), [CA_STREAM])
    assert b"".join(out) == CA_STREAM


@pytest.mark.parametrize(("unwrap", "data"), [(True, CA_STREAM), (False, AI_STUDIO_STREAM)])
def test_passthrough_cut_stream_gets_an_error_frame(unwrap: bool, data: bytes) -> None:
    cut = data[: data.index(b'"finishReason"')]  # the last frame never completes
    out = run(GeminiPassthrough(unwrap=unwrap), [cut])
    assert len(out) == 3
    assert frames(out[-1]) == [
        (
            None,
            {
                "error": {
                    "code": 502,
                    "message": "upstream stream ended early",
                    "status": "UNAVAILABLE",
                }
            },
        )
    ]


def test_passthrough_upstream_error_frame_passes_and_ends_the_stream() -> None:
    data = sse_data([CA_FRAMES[0], ERROR_429])
    out = run(GeminiPassthrough(unwrap=True), [data])
    assert len(out) == 2
    assert frames(out[-1]) == [(None, ERROR_429)]


def test_passthrough_internal_fault_becomes_an_error_frame() -> None:
    passthrough = GeminiPassthrough(unwrap=True)

    passthrough.parser = BrokenParser(RuntimeError("x"))  # type: ignore[assignment]
    assert passthrough(b"data: {}\n\n") == [
        b'data: {"error":{"code":502,"message":"proxy translation error: RuntimeError",'
        b'"status":"UNAVAILABLE"}}\n\n'
    ]
    assert passthrough(b"") == []  # finished: no second error frame


# ---------------------------------------------------------------- Code Assist frames from the IR


def test_envelope_wraps_every_frame_for_gemini_cli_and_leaves_errors_bare() -> None:
    def envelope() -> Stream:
        encoder = gemini.StreamEncoder("gpt-5-codex", envelope=True)
        return StreamPipeline(codex.StreamDecoder("gpt-5-codex"), encoder)

    with deterministic():
        bare = run(codex_pipeline(gemini_client), [CODEX_STREAM])
        wrapped = run(envelope(), [CODEX_STREAM])
        cut = run(envelope(), [CODEX_CUT])
    assert [(None, {"response": obj}) for _, obj in frames(b"".join(bare))] == frames(
        b"".join(wrapped)
    )
    assert frames(cut[-1]) == [
        (
            None,
            gemini.error_body(
                502, "Codex stream closed before response.completed", "stream_incomplete"
            ),
        )
    ]


def test_transitional_code_assist_envelope_is_the_encoder_with_envelope_on() -> None:
    with deterministic():
        flag = run(
            StreamPipeline(
                codex.StreamDecoder("gpt-5"), gemini.StreamEncoder("gpt-5", envelope=True)
            ),
            [CODEX_STREAM],
        )
        shim = run(
            StreamPipeline(
                codex.StreamDecoder("gpt-5"), gemini.StreamEncoder("gpt-5", envelope=True)
            ),
            [CODEX_STREAM],
        )
    assert flag == shim
    assert all(f.startswith(b'data: {"response":{') for f in b"".join(flag).split(b"\n\n") if f)


# ---------------------------------------------------------------- properties

_KEYS = [
    "response",
    "candidates",
    "content",
    "parts",
    "text",
    "thought",
    "functionCall",
    "args",
    "name",
    "id",
    "finishReason",
    "usageMetadata",
    "promptTokenCount",
    "error",
    "code",
    "message",
    "status",
    "type",
    "item",
    "delta",
    "item_id",
    "output_index",
    "call_id",
    "arguments",
    "traceId",
    "responseId",
    "promptFeedback",
    "blockReason",
    "thoughtSignature",
    "inlineData",
    "data",
    "mimeType",
    "sequence_number",
    "usage",
    "input_tokens",
]
_KINDS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.output_text.delta",
    "response.output_item.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
    "codex.rate_limits",
    "response.function_call_arguments.delta",
    "response.reasoning_summary_text.delta",
    "response.custom_tool_call_input.delta",
    "message",
    "function_call",
    "reasoning",
]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from([*_KINDS, "STOP", "MAX_TOKENS", "SAFETY", "model", "user"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5),
    ),
    max_leaves=20,
)


def _event(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False)
    return b"data: " + text.encode("utf-8", "surrogatepass") + b"\n\n"


_pieces = st.one_of(
    _json.map(_event),
    st.sampled_from(
        [
            *CODEX_FRAMES,
            *(sse_data([f]) for f in CA_FRAMES),
            sse_data([ERROR_429]),
            b"\r\n",
            b"\r",
            b"data: [DONE]\n\n",
            b": keep-alive\n\n",
            b"event: x\n",
            b"data: {\n",
        ]
    ),
    st.binary(max_size=40),
)

FACTORIES: dict[str, Callable[[], Stream]] = {
    **{f"code_assist->{k}": (lambda e=e: code_assist_pipeline(e)) for k, e in ENCODERS.items()},
    **{f"ai_studio->{k}": (lambda e=e: ai_studio_pipeline(e)) for k, e in ENCODERS.items()},
    **{f"codex->{k}": (lambda e=e: codex_pipeline(e)) for k, e in ENCODERS.items()},
    "relay": ResponsesRelay,
    "passthrough code_assist": lambda: GeminiPassthrough(unwrap=True),
    "passthrough ai_studio": lambda: GeminiPassthrough(unwrap=False),
    "passthrough ai_studio->code_assist": lambda: GeminiPassthrough(unwrap=False, wrap=True),
    "codex->code_assist envelope": lambda: StreamPipeline(
        codex.StreamDecoder("gpt-5"), gemini.StreamEncoder("gpt-5", envelope=True)
    ),
}


@settings(max_examples=150)
@given(
    name=st.sampled_from(sorted(FACTORIES)),
    pieces=st.lists(_pieces, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_streams_never_raise_never_yield_empty_and_ignore_chunking(
    name: str, pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)]) if b > a]
    with deterministic():
        reference = run(FACTORIES[name](), [data] if data else [])
    with deterministic():
        stream = FACTORIES[name]()
        out = run(stream, chunks)
        tail = stream(b"")  # a second end of stream adds nothing for a finished translator
    assert all(isinstance(b, bytes) and b for b in out)
    assert b"".join(out) == b"".join(reference)
    assert out  # the client always gets something: content, a clean end or an error event
    if name != "relay":
        assert tail == []


@settings(max_examples=100)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_random_bytes_never_break_any_stream(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)]) if b > a]
    for factory in FACTORIES.values():
        out = run(factory(), chunks)
        assert all(isinstance(b, bytes) and b for b in out)


# ---------------------------------------------------------------- regressions found here


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini", "responses"])
@pytest.mark.parametrize("ending", [b"\n", b""])
def test_codex_last_event_without_blank_line_is_a_clean_end(client: str, ending: bytes) -> None:
    # SSEParser.finish() flushes the last event; the decoder must see it before finish()
    data = CODEX_STREAM.rstrip(b"\n") + ending
    with deterministic():
        expected = run(codex_pipeline(ENCODERS[client]), [CODEX_STREAM])
    with deterministic():
        out = run(codex_pipeline(ENCODERS[client]), [data])
    assert b"".join(out) == b"".join(expected)


@pytest.mark.parametrize("client", ["chat", "anthropic", "gemini", "responses"])
def test_decoder_fault_keeps_what_was_translated_in_the_same_read(client: str) -> None:
    with deterministic():
        out = StreamPipeline(BoomDecoder(fail_at=2), ENCODERS[client]())(THREE_FRAMES)
    assert b"t1" in b"".join(out)
    if client == "responses":
        assert next(n for n, _ in frames(b"".join(out))) == "response.created"


BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
    "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    "modelVersion": "gemini-2.5-flash",
}


@pytest.mark.parametrize(
    ("unwrap", "frame"),
    [(False, BLOCKED), (True, {"response": BLOCKED, "traceId": "t"})],
)
def test_passthrough_blocked_prompt_is_a_complete_answer(unwrap: bool, frame: dict) -> None:
    out = run(GeminiPassthrough(unwrap=unwrap), [sse_data([frame])])
    assert len(out) == 1
    assert "error" not in frames(out[0])[0][1]
