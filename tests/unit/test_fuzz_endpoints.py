"""Fuzzing every endpoint in every dialect, in process (issue 9, CONTRACT §5): whatever a client
sends, the proxy either forwards the request upstream or answers JSON 4xx in the caller's shape —
never a 5xx, never a traceback in the log.

The addon chain's request-side hooks run in order on mitmproxy test flows (no sockets): Limits,
Access, LocalEndpoints, Relay, Gateway, with one Gemini and one Codex account whose tokens are
fresh (nothing is refreshed, nothing leaves the process).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cliproxy.addons.access import Access
from cliproxy.addons.endpoints import LocalEndpoints
from cliproxy.addons.gateway import Gateway
from cliproxy.addons.limits import Limits
from cliproxy.addons.relay import Relay
from cliproxy.addons.routing import classify
from cliproxy.addons.routing import guess_shape
from cliproxy.addons.settings import parse_settings
from cliproxy.addons.state import State
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

KEY = "fuzz-key-0123456789"
LATER = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

ENDPOINTS: list[tuple[str, str]] = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages?beta=true"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/v1beta/models/gemini-2.5-pro:generateContent"),
    ("POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
    ("POST", "/v1beta/models/gemini-2.5-pro:countTokens"),
    ("POST", "/v1/models/gemini-2.5-flash:generateContent"),
    ("POST", "/v1internal:generateContent"),
    ("POST", "/v1internal:streamGenerateContent?alt=sse"),
    ("POST", "/v1internal:countTokens"),
    ("POST", "/v1internal:loadCodeAssist"),
    ("POST", "/v1internal:retrieveUserQuota"),
    ("GET", "/v1internal/operations/x"),
    ("GET", "/v1/models"),
    ("GET", "/v1beta/models"),
    ("GET", "/v1beta/models/gemini-2.5-pro"),
    ("GET", "/healthz"),
    ("PUT", "/v1/chat/completions"),
    ("POST", "/nowhere"),
    ("DELETE", "/v1internal:foo/../../x"),
]
DIALECT_HEADERS: list[dict[str, str]] = [
    {},
    {"anthropic-version": "2023-06-01"},
    {"x-goog-api-key": KEY},
    {"authorization": f"Bearer {KEY}"},
    {"x-api-key": "wrong"},
]
MODELS = ["gemini-2.5-pro", "gpt-5", "claude-x", "gemini-x?key=a&", "../../x", "", "o3"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=20,
)
FIELDS = [
    "model", "messages", "input", "contents", "request", "stream", "tools", "system",
    "max_tokens", "content", "role", "parts", "tool_choice", "generationConfig", "instructions",
    "thinking", "reasoning", "response_format", "stop", "temperature", "project",
]  # fmt: skip


@st.composite
def plausible_body(draw: st.DrawFn) -> bytes:
    """A body that is nearly right: known fields with any JSON value, a real model."""
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6)):
        body[name] = draw(json_value)
    if draw(st.booleans()):
        body["messages"] = [{"role": "user", "content": draw(json_value)}]
    if draw(st.booleans()):
        body["input"] = [{"type": draw(json_value), "content": [{"type": draw(json_value)}]}]
    if draw(st.booleans()):
        body["contents"] = [{"role": "user", "parts": [{"text": draw(json_value)}]}]
    return json.dumps(body).encode()


@st.composite
def nasty_body(draw: st.DrawFn) -> bytes:
    """What a parser chokes on: lone surrogates, deep nesting, invalid UTF-8, wrong roots."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return b'{"model":"gemini-2.5-pro","messages":[{"role":"user","content":"\\ud800x"}]}'
    if kind == 1:
        depth = draw(st.sampled_from([101, 1000, 100_000]))
        return b'{"model":"gemini-2.5-pro","messages":' + b"[" * depth + b"]" * depth + b"}"
    if kind == 2:
        return b'{"model":"gemini-2.5-pro","contents":[{"parts":[{"text":"\xff\xfe"}]}]}'
    if kind == 3:
        return json.dumps(draw(json_value)).encode()
    if kind == 4:
        return draw(st.binary(max_size=64))
    if kind == 5:
        return b'{"model":"gpt-5","input":[{"type":"message","content":[{"type":[]}]}]}'
    depth = draw(st.sampled_from([150, 5000]))
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"model":"gemini-2.5-pro","contents":[{"parts":[{"text":"x"}]}],"x":' + inner + b"}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Any], Any]]:
    auth = tmp_path_factory.mktemp("auth")
    (auth / "gemini.json").write_text(json.dumps({
        "type": "gemini", "email": "g@example.com", "project_id": "proj",
        "token": {"access_token": "ya29.fuzz", "refresh_token": "1//r", "expiry": LATER},
    }))  # fmt: skip
    (auth / "codex.json").write_text(json.dumps({
        "type": "codex", "email": "c@example.com", "account_id": "acc",
        "access_token": "opaque-access", "refresh_token": "rt", "expired": LATER,
    }))  # fmt: skip
    settings_ = parse_settings({"auth-dir": str(auth), "api-keys": [KEY], "max-body-size": "1MiB"})
    state = State()
    state.apply(settings_, Path(auth / "none.yaml"))
    gateway = Gateway(state)
    addons = [Limits(state), Access(state), LocalEndpoints(state), Relay(state, gateway.streamer)]
    addons.append(gateway)
    with taddons.context(*addons) as tctx:
        yield addons, tctx
    asyncio.run(state.close())


async def run_request(addons: list[Any], flow: http.HTTPFlow) -> None:
    for addon in addons:
        hook = getattr(addon, "requestheaders", None)
        if hook is not None:
            hook(flow)
    for addon in addons:
        result = addon.request(flow)
        if asyncio.iscoroutine(result):
            await result


SHAPE_KEYS = {
    "openai": lambda b: set(b) == {"error"} and "type" in b["error"] and "status" not in b["error"],
    "anthropic": lambda b: set(b) == {"type", "error"} and b["type"] == "error",
    "google": lambda b: set(b) == {"error"} and set(b["error"]) == {"code", "message", "status"},
}


def check(addons: list[Any], method: str, path: str, headers: dict, body: bytes,
          caplog: pytest.LogCaptureFixture, encoding: str | None = None) -> None:  # fmt: skip
    req = tutils.treq(method=method.encode(), path=path.encode(), content=body)
    req.headers.clear()
    req.headers["host"] = "127.0.0.1:8317"
    req.headers["content-type"] = "application/json"
    for name, value in headers.items():
        req.headers[name] = value
    if encoding:
        req.headers["content-encoding"] = encoding
    flow = tflow.tflow(req=req)
    flow.client_conn.peername = ("127.0.0.1", 40000)
    bare = path.split("?", 1)[0]
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&")) if "?" in path else {}
    route = classify(method, bare, req.headers, query)
    shape = route.shape if route is not None else guess_shape(bare, req.headers, query)
    caplog.clear()
    asyncio.run(run_request(addons, flow))
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ]
    if flow.response is None:
        return  # forwarded upstream: a valid request
    status = flow.response.status_code
    assert status < 500, (path, headers, body[:200], flow.response.content[:300])
    if status >= 400:
        assert flow.response.headers["content-type"].startswith("application/json")
        answer = json.loads(flow.response.content)
        assert SHAPE_KEYS[shape](answer), (shape, answer)


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    headers=st.sampled_from(DIALECT_HEADERS),
    body=st.one_of(plausible_body(), nasty_body()),
)
def test_any_body_on_any_endpoint_is_forwarded_or_a_json_4xx_in_dialect(
    world: tuple[list[Any], Any],
    caplog: pytest.LogCaptureFixture,
    endpoint: tuple[str, str],
    headers: dict[str, str],
    body: bytes,
) -> None:
    caplog.set_level(logging.DEBUG)
    addons, _ = world
    method, path = endpoint
    # a keyless request is refused before its body matters: give most requests the key
    check(addons, method, path, {**headers, "x-goog-api-key": KEY}, body, caplog)


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    headers=st.sampled_from(DIALECT_HEADERS),
    key=st.one_of(st.text(max_size=30), st.just(KEY)),
    query_key=st.booleans(),
)
def test_any_key_anywhere_is_a_json_answer(
    world: tuple[list[Any], Any],
    caplog: pytest.LogCaptureFixture,
    endpoint: tuple[str, str],
    headers: dict[str, str],
    key: str,
    query_key: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    addons, _ = world
    method, path = endpoint
    body = json.dumps({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]})
    if query_key:
        from urllib.parse import quote

        path += ("&" if "?" in path else "?") + "key=" + quote(key, safe="")
        check(addons, method, path, headers, body.encode(), caplog)
    else:
        raw = key.encode("utf-8", "surrogateescape")
        check(addons, method, path, {**headers, "x-api-key": raw.decode("latin-1")},
              body.encode(), caplog)  # fmt: skip


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "gzip, gzip", "bogus"])
def test_compressed_bodies_are_decoded_bounded_or_refused(
    world: tuple[list[Any], Any], caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    import zlib

    addons, _ = world
    body = json.dumps({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]})
    data = zlib.compress(body.encode()) if encoding == "deflate" else body.encode()
    if encoding.startswith("gzip"):
        for _ in encoding.split(","):
            data = zlib.compress(data, wbits=31)
    check(addons, "POST", "/v1/chat/completions", {"x-goog-api-key": KEY}, data, caplog,
          encoding)  # fmt: skip
    bomb = zlib.compress(b"\0" * (4 << 20), wbits=31)  # 4 MiB inflated > 1 MiB max-body-size
    req = tutils.treq(method=b"POST", path=b"/v1/chat/completions", content=bomb)
    req.headers["content-encoding"] = "gzip"
    req.headers["x-goog-api-key"] = KEY
    flow = tflow.tflow(req=req)
    flow.client_conn.peername = ("127.0.0.1", 40000)
    asyncio.run(run_request(addons, flow))
    assert flow.response is not None and flow.response.status_code == 413
