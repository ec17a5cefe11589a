"""addons/exchange.py: the way back, upstream answer -> the client's dialect.

Whole answers for every client x upstream, the stream callable chosen for each exchange, and
upstream refusals: how they are read and classified, and what the client finally sees
(docs/configuration.md "Error shapes"; docs/upstreams.md "Code Assist responses and SSE", §2.7, §3,
§4.6, §4.7).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from cliproxy.addons import exchange as exchange_module
from cliproxy.addons.accounts.ai_studio import AIStudioKey
from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.addons.accounts.gemini import GeminiAccount
from cliproxy.addons.exchange import Answer
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.exchange import all_resting_answer
from cliproxy.addons.exchange import error_to_client
from cliproxy.addons.exchange import make_stream
from cliproxy.addons.exchange import outbound_for
from cliproxy.addons.exchange import read_error
from cliproxy.addons.exchange import success_answer
from cliproxy.addons.exchange import whole_answer
from cliproxy.addons.exchange import whole_stream
from cliproxy.addons.settings import Settings
from cliproxy.translators import anthropic
from cliproxy.translators import code_assist
from cliproxy.translators import gemini
from cliproxy.translators import openai_chat
from cliproxy.translators.fault import Fault
from cliproxy.translators.fault import UpstreamError
from cliproxy.translators.pipeline import GeminiPassthrough
from cliproxy.translators.pipeline import ResponsesRelay
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.registry import CLIENTS
from cliproxy.translators.registry import UPSTREAM_DIALECTS
from cliproxy.translators.registry import AnswerOptions
from cliproxy.translators.sse import SSEParser

from tests.fixtures.codex_stream import CODEX_EVENTS
from tests.fixtures.determinism import NOW
from tests.fixtures.determinism import deterministic

GEMINI = GeminiAccount(
    path=Path("gemini-a.json"),
    raw={"token": {"access_token": "ya29.a"}, "project_id": "helpful-fox-abc123"},
    email="a@example.com",
    project_id="helpful-fox-abc123",
)
CODEX = CodexAccount(
    path=Path("codex-a.json"), raw={"access_token": "eyJ.a"}, email="a@x.com", account_id="acct"
)
KEY = AIStudioKey("AIzaSyExampleExampleKey1234")
ACCOUNTS = {"code_assist": GEMINI, "ai_studio": KEY, "codex": CODEX}


# the tables below name client dialects briefly
CLIENT = {
    "chat": "openai-chat",
    "responses": "openai-responses",
    "anthropic": "anthropic-messages",
    "gemini": "gemini-api",
    "code_assist": "code-assist",
}


def exchange(
    client: str,
    upstream: str,
    kind: str = "translate",
    stream: bool = False,
    **kw: Any,
) -> Exchange:
    """kind: "translate" (through the IR), "passthrough" (native) or "count_tokens"."""
    codex = upstream == "codex"
    client_model = kw.pop("client_model", "my-model")
    options = AnswerOptions(
        client_model,
        include_usage=kw.pop("include_usage", False),
        custom_tools=frozenset(kw.pop("custom_tools", ())),
    )
    return Exchange(
        client=CLIENTS[CLIENT[client]],  # type: ignore[index]
        upstream_dialect=UPSTREAM_DIALECTS["codex-responses" if codex else "gemini-api"],
        native=kind == "passthrough",
        counting=kind == "count_tokens",
        provider="codex" if codex else "gemini",
        client_model=client_model,
        model="gpt-5-codex" if codex else "gemini-2.5-pro",
        stream=stream,
        payload={},
        account=ACCOUNTS[upstream],  # type: ignore[arg-type]
        options=options,
        **kw,
    )


def client_status(status: int) -> int:
    """What a client sees for an upstream status that the body says nothing more about."""
    return UpstreamError(status, "refused", Fault("request")).client_status


# ---------------------------------------------------------------- fixtures (docs/upstreams.md "Code
# Assist responses and SSE", §4.6)

GENERATE_RESPONSE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"thought": True, "text": "Thinking."}, {"text": "Hi!"}],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 3,
        "totalTokenCount": 25,
        "thoughtsTokenCount": 10,
    },
    "modelVersion": "gemini-2.5-pro",
}
CODE_ASSIST_BODY = json.dumps({"response": GENERATE_RESPONSE, "traceId": "1a2b3c4d5e6f7a8b"})
AI_STUDIO_BODY = json.dumps({**GENERATE_RESPONSE, "responseId": "ais-resp-1"})


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode()
        for e in events
    )


CODEX_STREAM = sse(CODEX_EVENTS)
BODIES = {"code_assist": CODE_ASSIST_BODY.encode(), "ai_studio": AI_STUDIO_BODY.encode()}
BODIES["codex"] = CODEX_STREAM

GEMINI_USAGE_CHAT = {
    "prompt_tokens": 12,
    "completion_tokens": 13,  # candidates + thoughts
    "total_tokens": 25,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 10},
}


def chat_answer(rid: str, message: dict, finish: str, usage: dict) -> dict:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": NOW,
        "model": "my-model",  # the name the client asked for, not the upstream's
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


GEMINI_CHAT_MESSAGE = {
    "role": "assistant",
    "content": "Hi!",
    "refusal": None,
    "reasoning_content": "Thinking.",
}
GEMINI_ANTHROPIC_CONTENT = [
    {"type": "thinking", "thinking": "Thinking.", "signature": ""},
    {"type": "text", "text": "Hi!"},
]
GEMINI_ANTHROPIC_USAGE = {
    "input_tokens": 12,
    "output_tokens": 13,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def anthropic_answer(rid: str, content: list, stop: str, usage: dict) -> dict:
    return {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": "my-model",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def gemini_answer(rid: str, parts: list, usage: dict) -> dict:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": usage,
        "modelVersion": "my-model",
        "responseId": rid,
    }


GEMINI_PARTS = [{"thought": True, "text": "Thinking."}, {"text": "Hi!"}]
CODEX_GEMINI_PARTS = [
    {"text": "Running ls."},
    {"functionCall": {"name": "shell", "args": {"command": ["ls"]}, "id": "call_xyz"}},
]
CODEX_GEMINI_USAGE = {
    "promptTokenCount": 1200,
    "candidatesTokenCount": 26,
    "totalTokenCount": 1242,
    "thoughtsTokenCount": 16,
    "cachedContentTokenCount": 1024,
}

WHOLE_ANSWERS: list[tuple[str, str, dict]] = [
    (
        "chat",
        "code_assist",
        chat_answer(
            "chatcmpl-1a2b3c4d5e6f7a8b", GEMINI_CHAT_MESSAGE, "stop", GEMINI_USAGE_CHAT
        ),  # traceId becomes the response id
    ),
    (
        "chat",
        "ai_studio",
        chat_answer("chatcmpl-ais-resp-1", GEMINI_CHAT_MESSAGE, "stop", GEMINI_USAGE_CHAT),
    ),
    (
        "chat",
        "codex",
        chat_answer(
            "chatcmpl-resp_68a1",
            {
                "role": "assistant",
                "content": "Running ls.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_xyz",
                        "type": "function",
                        "function": {"name": "shell", "arguments": '{"command":["ls"]}'},
                    }
                ],
            },
            "tool_calls",
            {
                "prompt_tokens": 1200,
                "completion_tokens": 42,
                "total_tokens": 1242,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 16},
            },
        ),
    ),
    (
        "anthropic",
        "code_assist",
        anthropic_answer(
            "msg_1a2b3c4d5e6f7a8b", GEMINI_ANTHROPIC_CONTENT, "end_turn", GEMINI_ANTHROPIC_USAGE
        ),
    ),
    (
        "anthropic",
        "ai_studio",
        anthropic_answer(
            "msg_ais-resp-1", GEMINI_ANTHROPIC_CONTENT, "end_turn", GEMINI_ANTHROPIC_USAGE
        ),
    ),
    (
        "anthropic",
        "codex",
        anthropic_answer(
            "msg_resp_68a1",
            [
                {"type": "text", "text": "Running ls."},
                {
                    "type": "tool_use",
                    "id": "call_xyz",
                    "name": "shell",
                    "input": {"command": ["ls"]},
                },
            ],
            "tool_use",
            # Anthropic counts cached input apart from input_tokens (docs/upstreams.md
            # "Cross-dialect mappings")
            {
                "input_tokens": 176,
                "output_tokens": 42,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1024,
            },
        ),
    ),
    (
        "gemini",
        "code_assist",
        gemini_answer("1a2b3c4d5e6f7a8b", GEMINI_PARTS, GENERATE_RESPONSE["usageMetadata"]),
    ),
    (
        "gemini",
        "ai_studio",
        gemini_answer("ais-resp-1", GEMINI_PARTS, GENERATE_RESPONSE["usageMetadata"]),
    ),
    ("gemini", "codex", gemini_answer("resp_68a1", CODEX_GEMINI_PARTS, CODEX_GEMINI_USAGE)),
    (
        "code_assist",
        "codex",
        {"response": gemini_answer("resp_68a1", CODEX_GEMINI_PARTS, CODEX_GEMINI_USAGE)},
    ),
]


@pytest.mark.parametrize(
    ("client", "upstream", "expected"),
    WHOLE_ANSWERS,
    ids=[f"{c}<-{u}" for c, u, _ in WHOLE_ANSWERS],
)
def test_whole_answer(client: str, upstream: str, expected: dict) -> None:
    with deterministic():
        answer = whole_answer(exchange(client, upstream), BODIES[upstream])
    assert answer == Answer(200, expected)


RESPONSES_OUTPUT_GEMINI = [
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking."}]},
    {
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hi!", "annotations": []}],
    },
]
RESPONSES_OUTPUT_CODEX = [
    {
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Running ls.", "annotations": []}],
    },
    {
        "type": "function_call",
        "status": "completed",
        "arguments": '{"command":["ls"]}',
        "call_id": "call_xyz",
        "name": "shell",
    },
]


@pytest.mark.parametrize(
    ("upstream", "rid", "output", "usage"),
    [
        ("code_assist", "resp_1a2b3c4d5e6f7a8b", RESPONSES_OUTPUT_GEMINI, (12, 0, 13, 10, 25)),
        ("ai_studio", "resp_ais-resp-1", RESPONSES_OUTPUT_GEMINI, (12, 0, 13, 10, 25)),
        ("codex", "resp_68a1", RESPONSES_OUTPUT_CODEX, (1200, 1024, 42, 16, 1242)),
    ],
)
def test_whole_answer_responses_client(
    upstream: str, rid: str, output: list, usage: tuple[int, ...]
) -> None:
    with deterministic():
        answer = whole_answer(exchange("responses", upstream), BODIES[upstream])
    body = answer.body
    assert answer.status == 200
    assert (body["id"], body["object"], body["status"], body["model"]) == (
        rid,
        "response",
        "completed",
        "my-model",
    )
    assert [{k: v for k, v in item.items() if k != "id"} for item in body["output"]] == output
    assert all(item["id"] for item in body["output"])
    inp, cached, out, reasoning, total = usage
    assert body["usage"] == {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total,
    }


def test_whole_answer_gemini_passthrough_unwraps_code_assist_only() -> None:
    ca = whole_answer(exchange("gemini", "code_assist", "passthrough"), BODIES["code_assist"])
    ais = whole_answer(exchange("gemini", "ai_studio", "passthrough"), BODIES["ai_studio"])
    assert ca == Answer(200, {**GENERATE_RESPONSE, "responseId": "1a2b3c4d5e6f7a8b"})
    assert ais == Answer(200, json.loads(AI_STUDIO_BODY))


def test_whole_answer_code_assist_client_gets_code_assist_frames() -> None:
    # Gemini CLI through the relay: its own wrapper as it came, or a wrapper added for AI Studio
    ca = whole_answer(exchange("code_assist", "code_assist", "passthrough"), BODIES["code_assist"])
    ais = whole_answer(exchange("code_assist", "ai_studio", "passthrough"), BODIES["ai_studio"])
    assert ca == Answer(200, json.loads(CODE_ASSIST_BODY))
    assert ais == Answer(200, {"response": json.loads(AI_STUDIO_BODY)})


def test_whole_answer_responses_passthrough_rebuilds_output_from_items() -> None:
    answer = whole_answer(exchange("responses", "codex", "passthrough"), CODEX_STREAM)
    assert answer.status == 200
    assert answer.body == {
        **CODEX_EVENTS[-1]["response"],
        "output": [CODEX_EVENTS[4]["item"], CODEX_EVENTS[7]["item"]],
    }


def test_whole_answer_responses_passthrough_of_a_cut_stream_is_a_502() -> None:
    answer = whole_answer(exchange("responses", "codex", "passthrough"), sse(CODEX_EVENTS[:-1]))
    assert answer == Answer(
        502, openai_chat.error_body(502, "the Codex stream ended before response.completed")
    )


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            "chat",
            (
                502,
                openai_chat.error_body(
                    502, "upstream error: Codex stream closed before response.completed"
                ),
            ),
        ),
        (
            "anthropic",
            (
                502,
                anthropic.error_body(
                    502, "upstream error: Codex stream closed before response.completed"
                ),
            ),
        ),
        (
            "gemini",
            (
                502,
                gemini.error_body(
                    502, "upstream error: Codex stream closed before response.completed"
                ),
            ),
        ),
    ],
)
def test_whole_answer_of_a_cut_codex_stream_is_an_error(client: str, expected: tuple) -> None:
    answer = whole_answer(exchange(client, "codex"), sse(CODEX_EVENTS[:-1]))
    assert (answer.status, answer.body) == expected


def test_whole_answer_codex_in_stream_failure_keeps_its_status() -> None:
    failed = {
        "type": "response.failed",
        "sequence_number": 2,
        "response": {
            "id": "resp_1",
            "status": "failed",
            "error": {
                "code": "context_length_exceeded",
                "message": "Your input exceeds the context window of this model.",
            },
        },
    }
    answer = whole_answer(exchange("anthropic", "codex"), sse([CODEX_EVENTS[1], failed]))
    assert answer == Answer(
        400,
        anthropic.error_body(
            400, "upstream error: Your input exceeds the context window of this model."
        ),
    )


@pytest.mark.parametrize(
    ("client", "upstream", "expected"),
    [
        ("anthropic", "code_assist", {"input_tokens": 1234}),
        ("anthropic", "ai_studio", {"input_tokens": 1234}),
        ("gemini", "code_assist", {"totalTokens": 1234}),
        ("gemini", "ai_studio", {"totalTokens": 1234}),
    ],
)
def test_whole_answer_count_tokens(client: str, upstream: str, expected: dict) -> None:
    ex = exchange(client, upstream, "count_tokens")
    assert whole_answer(ex, b'{"totalTokens": 1234}') == Answer(200, expected)
    # Google omits totalTokens when it is zero
    zero = next(iter(expected))
    assert whole_answer(ex, b"{}") == Answer(200, {zero: 0})


# ---------------------------------------------------------------- streams


STREAMS = [
    ("chat", "code_assist", "translate", StreamPipeline, True),
    ("chat", "ai_studio", "translate", StreamPipeline, False),
    ("anthropic", "codex", "translate", StreamPipeline, False),
    ("responses", "code_assist", "translate", StreamPipeline, True),
    ("gemini", "codex", "translate", StreamPipeline, False),
    ("code_assist", "codex", "translate", StreamPipeline, False),
    ("responses", "codex", "passthrough", ResponsesRelay, None),
    ("gemini", "code_assist", "passthrough", GeminiPassthrough, None),
    ("gemini", "ai_studio", "passthrough", GeminiPassthrough, None),
    ("code_assist", "code_assist", "passthrough", GeminiPassthrough, None),
    ("code_assist", "ai_studio", "passthrough", GeminiPassthrough, None),
]


@pytest.mark.parametrize(("client", "upstream", "kind", "cls", "unwraps"), STREAMS)
def test_make_stream_picks_the_translator(
    client: str, upstream: str, kind: str, cls: type, unwraps: bool | None
) -> None:
    stream = make_stream(exchange(client, upstream, kind, stream=True))
    assert type(stream) is cls
    if isinstance(stream, StreamPipeline):
        assert (stream.unwrap is code_assist.unwrap_response) is unwraps
        assert getattr(stream.encoder, "envelope", False) is (client == "code_assist")


@pytest.mark.parametrize(
    ("client", "upstream", "unwrap", "wrap"),
    [
        ("gemini", "code_assist", True, False),
        ("gemini", "ai_studio", False, False),
        ("code_assist", "code_assist", False, False),
        ("code_assist", "ai_studio", False, True),
    ],
)
def test_make_stream_gemini_passthrough_framing(
    client: str, upstream: str, unwrap: bool, wrap: bool
) -> None:
    stream = make_stream(exchange(client, upstream, "passthrough", stream=True))
    assert isinstance(stream, GeminiPassthrough)
    assert (stream.unwrap, stream.wrap) == (unwrap, wrap)


def test_make_stream_passes_include_usage_and_the_client_model() -> None:
    ex = exchange("chat", "codex", stream=True, include_usage=True, client_model="gpt-4o")
    stream = make_stream(ex)
    assert isinstance(stream, StreamPipeline)
    assert stream.encoder.include_usage is True
    assert stream.encoder.model == "gpt-4o"


def _frames(data: bytes) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    return [(e.event, e.data) for e in parser.feed(data) + parser.finish()]


def test_whole_stream_translates_a_buffered_stream() -> None:
    with deterministic():
        out = whole_stream(exchange("chat", "codex", stream=True), CODEX_STREAM)
    frames = _frames(out)
    assert frames[-1] == (None, "[DONE]")
    chunks = [json.loads(d) for _, d in frames[:-1]]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [
        None,
        None,
        None,
        None,
        "tool_calls",
    ]
    assert chunks[1]["choices"][0]["delta"] == {"content": "Running ls."}


def test_whole_stream_of_nothing_is_an_error_event() -> None:
    out = whole_stream(exchange("anthropic", "code_assist", stream=True), b"")
    assert _frames(out) == [
        (
            "error",
            json.dumps(
                anthropic.error_body(502, "upstream stream ended before completion"),
                separators=(",", ":"),
            ),
        )
    ]


def test_success_answer_stream_is_sse_bytes_and_non_stream_is_json() -> None:
    streamed = success_answer(exchange("gemini", "ai_studio", "passthrough", True), b"")
    assert streamed.status == 200
    assert streamed.headers == {"content-type": "text/event-stream"}
    assert isinstance(streamed.body, bytes)
    whole = success_answer(exchange("gemini", "ai_studio", "passthrough"), BODIES["ai_studio"])
    assert whole == Answer(200, json.loads(AI_STUDIO_BODY))


def test_exchange_properties() -> None:
    assert exchange("chat", "codex").shape == "openai"
    assert exchange("responses", "codex").shape == "openai"
    assert exchange("anthropic", "codex").shape == "anthropic"
    assert exchange("gemini", "codex").shape == "google"
    assert exchange("code_assist", "code_assist").shape == "google"
    assert exchange("chat", "codex").upstream_stream is True  # Codex always streams
    assert exchange("chat", "code_assist", stream=True).upstream_stream is True
    assert exchange("chat", "code_assist").upstream_stream is False
    assert exchange("chat", "ai_studio", "count_tokens").upstream_stream is False


# ---------------------------------------------------------------- read_error: Google

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def google_error(code: int, message: str, status: str, details: list | None = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return json.dumps({"error": err}).encode()


CA_QUOTA_DETAILS = [
    {
        "@type": ERROR_INFO,
        "reason": "QUOTA_EXHAUSTED",
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": {
            "uiMessage": "true",
            "model": "gemini-2.5-pro",
            "quotaResetDelay": "539.477544ms",
            "quotaResetTimeStamp": "2025-10-20T19:14:08Z",
        },
    },
    {"@type": RETRY_INFO, "retryDelay": "0.539477544s"},
]
AIS_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. "
    "Please retry in 40.025771073s."
)

GOOGLE_ERRORS = [
    (
        "429 RetryInfo",
        429,
        google_error(
            429,
            "You have exhausted your capacity on this model. Your quota will reset after 0s.",
            "RESOURCE_EXHAUSTED",
            CA_QUOTA_DETAILS,
        ),
        ("quota", 0.539477544),
    ),
    (
        "429 quotaResetDelay",
        429,
        google_error(429, "exhausted", "RESOURCE_EXHAUSTED", CA_QUOTA_DETAILS[:1]),
        ("quota", 0.539477544),
    ),
    (
        "429 reset after 1h2m3s",
        429,
        google_error(429, "Your quota will reset after 1h2m3s.", "RESOURCE_EXHAUSTED"),
        ("quota", 3723.0),
    ),
    (
        "429 Please retry in 40.02s",
        429,
        google_error(429, "Please retry in 40.02s.", "RESOURCE_EXHAUSTED"),
        ("quota", 40.02),
    ),
    (
        "AI Studio 429 with RetryInfo 40s",
        429,
        google_error(
            429,
            AIS_QUOTA_MESSAGE,
            "RESOURCE_EXHAUSTED",
            [{"@type": RETRY_INFO, "retryDelay": "40s"}],
        ),
        ("quota", 40.0),
    ),
    (
        "429 limit: 0",
        429,
        google_error(
            429,
            "Quota exceeded for metric: x, limit: 0, model: gemini-2.5-pro",
            "RESOURCE_EXHAUSTED",
        ),
        ("quota", math.inf),
    ),
    (
        "429 MODEL_CAPACITY_EXHAUSTED",
        429,
        google_error(
            429,
            "No capacity available for model gemini-2.5-pro on the server",
            "RESOURCE_EXHAUSTED",
            [{"@type": ERROR_INFO, "reason": "MODEL_CAPACITY_EXHAUSTED"}],
        ),
        ("server", None),
    ),
    (
        "400 API_KEY_INVALID",
        400,
        google_error(
            400,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            [{"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
        ),
        ("unusable", None),
    ),
    (
        "401",
        401,
        google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"),
        ("auth", None),
    ),
    (
        "403",
        403,
        google_error(403, "The caller does not have permission", "PERMISSION_DENIED"),
        ("forbidden", None),
    ),
    ("500", 500, google_error(500, "Internal error encountered.", "INTERNAL"), ("server", None)),
    (
        "400",
        400,
        google_error(
            400, 'Invalid JSON payload received. Unknown name "$schema"', "INVALID_ARGUMENT"
        ),
        ("request", None),
    ),
    (
        "array-wrapped error",
        429,
        b"[" + google_error(429, "Please retry in 3s.", "RESOURCE_EXHAUSTED") + b"]",
        ("quota", 3.0),
    ),
    ("plain-text 502", 502, b"<html>Bad Gateway</html>", ("server", None)),
]


@pytest.mark.parametrize("upstream", ["code_assist", "ai_studio"])
@pytest.mark.parametrize(
    ("status", "body", "fault"), [c[1:] for c in GOOGLE_ERRORS], ids=[c[0] for c in GOOGLE_ERRORS]
)
def test_read_error_google(
    upstream: str, status: int, body: bytes, fault: tuple[str, float | None]
) -> None:
    err = read_error(exchange("chat", upstream), status, body, None)
    assert err.status == status
    assert err.fault.kind == fault[0]
    if fault[1] is None:
        assert err.fault.retry_after is None
    else:
        assert err.fault.retry_after == pytest.approx(fault[1])
    try:
        parsed = json.loads(body)
    except ValueError:
        assert err.message == body.decode()
        assert (err.status_name, err.details) == (None, [])
        return
    inner = (parsed[0] if isinstance(parsed, list) else parsed)["error"]
    assert err.message == inner["message"]
    assert err.status_name == inner["status"]
    assert err.details == inner.get("details", [])


def test_read_error_google_ignores_retry_after_header() -> None:
    # Google's hint is in the body; a bare 429 rests by backoff, not by a header it never sends
    body = google_error(429, "Resource has been exhausted", "RESOURCE_EXHAUSTED")
    err = read_error(exchange("chat", "code_assist"), 429, body, "30")
    assert err.fault == Fault("quota", None)


# ---------------------------------------------------------------- read_error: Codex


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(exchange_module.time, "time", lambda: float(NOW))
    return float(NOW)


def codex_error(**err: Any) -> bytes:
    return json.dumps({"error": err}).encode()


CODEX_ERRORS = [
    (
        "usage_limit_reached with resets_at",
        429,
        codex_error(
            type="usage_limit_reached",
            message="The usage limit has been reached",
            plan_type="plus",
            resets_at=NOW + 17778,
        ),
        None,
        ("The usage limit has been reached", Fault("quota", 17778.0)),
    ),
    (
        "usage_limit_reached with resets_in_seconds (older backend)",
        429,
        codex_error(
            type="usage_limit_reached",
            message="The usage limit has been reached",
            resets_in_seconds=3600,
        ),
        None,
        ("The usage limit has been reached", Fault("quota", 3600.0)),
    ),
    (
        "resets_at wins over resets_in_seconds and retry-after",
        429,
        codex_error(
            type="usage_limit_reached", message="limit", resets_at=NOW + 100, resets_in_seconds=5
        ),
        "30",
        ("limit", Fault("quota", 100.0)),
    ),
    (
        "a resets_at in the past is 0",
        429,
        codex_error(type="usage_limit_reached", message="limit", resets_at=NOW - 5),
        None,
        ("limit", Fault("quota", 0.0)),
    ),
    (
        "usage_not_included",
        429,
        codex_error(type="usage_not_included", message="Your plan does not include Codex"),
        None,
        (
            "Your plan does not include Codex",
            Fault("unusable", reason="this ChatGPT plan does not include Codex"),
        ),
    ),
    (
        "429 with only a retry-after header",
        429,
        codex_error(code="rate_limit_exceeded", message="Rate limit reached"),
        "30",
        ("Rate limit reached", Fault("quota", 30.0)),
    ),
    (
        "429 with an HTTP-date retry-after is no hint",
        429,
        b"",
        "Wed, 21 Oct 2026 07:28:00 GMT",
        ("HTTP 429", Fault("quota", None)),
    ),
    (
        "401 token_invalidated",
        401,
        codex_error(
            code="token_invalidated", message="Your authentication token has been invalidated."
        ),
        None,
        ("Your authentication token has been invalidated.", Fault("auth")),
    ),
    (
        "400 {detail}",
        400,
        b'{"detail":"Unsupported parameter: max_output_tokens"}',
        None,
        ("Unsupported parameter: max_output_tokens", Fault("request")),
    ),
    (
        "403 Cloudflare page",
        403,
        b"<html><title>Just a moment...</title><body>Blocked</body></html>",
        None,
        ("Just a moment... Blocked", Fault("forbidden")),
    ),
    ("500 empty body", 500, b"", None, ("HTTP 500", Fault("server"))),
]


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "expected"),
    [c[1:] for c in CODEX_ERRORS],
    ids=[c[0] for c in CODEX_ERRORS],
)
def test_read_error_codex(
    frozen_time: float,
    status: int,
    body: bytes,
    retry_after: str | None,
    expected: tuple[str, Fault],
) -> None:
    err = read_error(exchange("responses", "codex"), status, body, retry_after)
    assert (err.status, err.message, err.fault) == (status, *expected)
    assert (err.status_name, err.details) == (None, [])


# ---------------------------------------------------------------- what the client sees


@pytest.mark.parametrize(
    ("upstream", "client"),
    [
        (400, 400),
        (401, 503),  # the account's credentials are ours: never a 401 to the client
        (403, 503),
        (404, 404),
        (408, 408),
        (413, 413),
        (429, 429),
        (500, 502),
        (502, 502),
        (503, 503),
        (504, 502),
        (529, 502),
    ],
)
def test_client_status(upstream: int, client: int) -> None:
    assert client_status(upstream) == client


def test_client_status_never_passes_an_auth_failure() -> None:
    for status in range(400, 600):
        assert client_status(status) not in (401, 403)


def quota_error(retry_after: float | None, details: list | None = None) -> UpstreamError:
    return UpstreamError(
        429,
        "Please retry in 40.02s.",
        Fault("quota", retry_after),
        "RESOURCE_EXHAUSTED",
        details or [],
    )


def test_error_to_client_openai() -> None:
    answer = error_to_client(exchange("chat", "code_assist"), quota_error(40.02))
    assert answer == Answer(
        429,
        {
            "error": {
                "message": "upstream (Code Assist) error 429: Please retry in 40.02s.",
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        {"retry-after": "41"},
    )


def test_error_to_client_responses_is_openai_shaped() -> None:
    err = UpstreamError(500, "boom", Fault("server"))
    answer = error_to_client(exchange("responses", "codex"), err)
    assert answer == Answer(502, openai_chat.error_body(502, "upstream (Codex) error 500: boom"))


def test_error_to_client_anthropic_auth_becomes_503() -> None:
    err = UpstreamError(401, "Request had invalid authentication credentials.", Fault("auth"))
    answer = error_to_client(exchange("anthropic", "ai_studio"), err)
    assert answer == Answer(
        503,
        {
            "type": "error",
            "error": {
                "type": "overloaded_error",
                "message": "upstream (AI Studio) error 401: "
                "Request had invalid authentication credentials.",
            },
        },
    )


def test_error_to_client_gemini_keeps_status_name_and_details() -> None:
    details = [
        {"@type": ERROR_INFO, "reason": "QUOTA_EXHAUSTED"},
        {"@type": RETRY_INFO, "retryDelay": "40s"},
    ]
    answer = error_to_client(exchange("gemini", "ai_studio"), quota_error(40.0, details))
    assert answer == Answer(
        429,
        {
            "error": {
                "code": 429,
                "message": "upstream (AI Studio) error 429: Please retry in 40.02s.",
                "status": "RESOURCE_EXHAUSTED",
                "details": details,
            }
        },
        {"retry-after": "40"},
    )


def test_error_to_client_code_assist_client_gets_the_gemini_shape() -> None:
    answer = error_to_client(exchange("code_assist", "code_assist"), quota_error(1.2))
    assert answer.body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert answer.headers == {"retry-after": "2"}


@pytest.mark.parametrize(
    ("retry_after", "headers"),
    [
        (None, {}),
        (math.inf, {}),  # limit: 0: no honest retry time to give
        (0.2, {"retry-after": "1"}),
        (0.0, {"retry-after": "1"}),
        (17778.4, {"retry-after": "17779"}),
    ],
)
def test_error_to_client_retry_after(retry_after: float | None, headers: dict) -> None:
    answer = error_to_client(exchange("chat", "codex"), quota_error(retry_after))
    assert answer.headers == headers


def test_error_to_client_codex_404_is_the_requests_fault() -> None:
    body = b'{"detail": "Item with id \'rs_1\' not found."}'
    codex = exchange("responses", "codex")
    answer = error_to_client(codex, read_error(codex, 404, body, None))
    assert answer.status == 400
    assert answer.body["error"]["type"] == "invalid_request_error"
    assert "rs_1" in answer.body["error"]["message"]
    google = exchange("chat", "code_assist")
    body = b'{"error": {"code": 404, "message": "model not found", "status": "NOT_FOUND"}}'
    assert error_to_client(google, read_error(google, 404, body, None)).status == 404


def test_error_to_client_request_error_passes_the_message() -> None:
    err = UpstreamError(400, "Unsupported parameter: max_output_tokens", Fault("request"))
    answer = error_to_client(exchange("chat", "codex"), err)
    assert answer == Answer(
        400,
        openai_chat.error_body(
            400, "upstream (Codex) error 400: Unsupported parameter: max_output_tokens"
        ),
    )


# ---------------------------------------------------------------- every account resting


@pytest.mark.parametrize(
    ("wait", "after"), [(12.2, "13"), (0.2, "1"), (0.0, "1"), (30.0, "30"), (21599.5, "21600")]
)
def test_all_cooling_retry_after_is_the_ceiling(wait: float, after: str) -> None:
    answer = all_resting_answer("openai", "gemini", "gemini-2.5-pro", wait)
    assert answer.status == 429
    assert answer.headers == {"retry-after": after}
    assert answer.body == openai_chat.error_body(
        429,
        "every gemini account is resting after quota or rate limits for model "
        f"'gemini-2.5-pro'; the first is back in {after} s",
    )


def test_all_cooling_anthropic_names_the_last_refusal() -> None:
    last = UpstreamError(429, "The usage limit has been reached", Fault("quota", 600.0))
    answer = all_resting_answer("anthropic", "codex", "gpt-5-codex", 599.1, last)
    assert answer == Answer(
        429,
        anthropic.error_body(
            429,
            "every codex account is resting after quota or rate limits for model "
            "'gpt-5-codex'; the first is back in 600 s "
            "(last refusal: The usage limit has been reached)",
        ),
        {"retry-after": "600"},
    )


def test_all_cooling_gemini_has_our_retry_info_and_the_upstreams_other_details() -> None:
    upstream_details = [
        {"@type": ERROR_INFO, "reason": "QUOTA_EXHAUSTED", "metadata": {"model": "gemini-2.5-pro"}},
        {"@type": RETRY_INFO, "retryDelay": "0.5s"},  # stale: replaced by ours
        "junk",
    ]
    last = quota_error(0.5, upstream_details)
    answer = all_resting_answer("google", "gemini", "gemini-2.5-pro", 42.5, last)
    assert answer.status == 429
    assert answer.headers == {"retry-after": "43"}
    assert answer.body["error"]["code"] == 429
    assert answer.body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert answer.body["error"]["details"] == [
        upstream_details[0],
        {"@type": RETRY_INFO, "retryDelay": "43s"},
    ]


def test_all_cooling_gemini_without_a_last_error_still_has_retry_info() -> None:
    answer = all_resting_answer("google", "gemini", "gemini-2.5-flash", 5.0)
    assert answer.body["error"]["details"] == [{"@type": RETRY_INFO, "retryDelay": "5s"}]


# ---------------------------------------------------------------- the current attempt's request


@pytest.mark.parametrize(
    ("upstream", "method", "url_end", "accept"),
    [
        ("code_assist", "generateContent", "/v1internal:generateContent", "application/json"),
        (
            "code_assist",
            "streamGenerateContent",
            "/v1internal:streamGenerateContent?alt=sse",
            "text/event-stream",
        ),
        ("code_assist", "countTokens", "/v1internal:countTokens", "application/json"),
        (
            "ai_studio",
            "streamGenerateContent",
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
            "text/event-stream",
        ),
        ("codex", "responses", "/backend-api/codex/responses", "text/event-stream"),
    ],
)
def test_outbound_for_streams_exactly_for_stream_generate_content(
    upstream: str, method: str, url_end: str, accept: str
) -> None:
    kind = "count_tokens" if method == "countTokens" else "translate"
    ex = exchange("chat", upstream, kind, stream=method == "streamGenerateContent")
    assert ex.method == method
    out = outbound_for(Settings(), ex)
    assert out.url.endswith(url_end)
    assert out.headers["accept"] == accept
    assert ex.upstream.name == upstream


def test_outbound_for_follows_the_exchanges_current_account_and_model() -> None:
    ex = exchange("chat", "code_assist")
    ex.payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    first = outbound_for(Settings(), ex)
    other = GeminiAccount(
        path=Path("gemini-b.json"),
        raw={"token": {"access_token": "ya29.b"}},
        email="b@example.com",
        project_id="other-proj",
    )
    ex.account, ex.model = other, "gemini-2.5-pro-preview-06-05"  # a retry, a preview fallback
    second = outbound_for(Settings(), ex)
    assert first.body["project"] == "helpful-fox-abc123"
    assert (second.body["project"], second.body["model"]) == (
        "other-proj",
        "gemini-2.5-pro-preview-06-05",
    )
    assert second.headers["authorization"] == "Bearer ya29.b"
    assert second.body["request"] == first.body["request"] == ex.payload
