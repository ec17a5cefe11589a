"""Streams that survive (issue 11) through a real mitmdump, in every client dialect and upstream:
failover before the first byte keeps the stream progressive, a failure after it ends in an error
event in the caller's format, `timeouts` bound every wait, and a client that goes cancels the
upstream request."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.codex import FakeCodex
from tests.fakes.codex import Tokens
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import PROJECT_B
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import start_proxy
from tests.integration.conftest import two_accounts
from tests.integration.conftest import wait_ready
from tests.integration.streams import DIALECTS
from tests.integration.streams import HEADERS
from tests.integration.streams import UPSTREAMS
from tests.integration.streams import Upstream
from tests.integration.streams import completed
from tests.integration.streams import error_event
from tests.integration.streams import error_message
from tests.integration.streams import parse_event
from tests.integration.streams import request_for
from tests.integration.streams import stream
from tests.integration.streams import text_events
from tests.integration.streams import text_of

KEY_A, KEY_B = "AIzaSy-stream-key-000A", "AIzaSy-stream-key-000B"
IDLE = 1.0  # timeouts.upstream-idle of every proxy here
DELAY = {"code_assist": 0.25, "ai_studio": 0.25, "codex": 0.12}  # between upstream events
MIN_SPAN = 0.6  # first text event → last event, at least (buffered would be ~0)
# one model per test kind and dialect: a refusal rests an account for its model only, so no
# test sees another's rests
GOOGLE_MODELS = ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-flash",
                 "gemini-3.1-flash-lite", "gemini-3-pro-preview", "gemini-3.1-pro-preview",
                 "gemini-3-flash-preview", "gemini-2.5-pro-preview-06-05",
                 "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash-preview-04-17"]  # fmt: skip
CODEX_MODELS = ["gpt-5", "gpt-5-codex", "gpt-5.5", "codex-mini-latest", "gpt-5.4-mini",
                "gpt-5.1", "gpt-5.2", "gpt-5.4", "gpt-5.6", "gpt-5.7"]  # fmt: skip
STEADY = {"code_assist": "gemini-2.5-pro", "ai_studio": "gemini-2.5-pro", "codex": "gpt-5.3"}


def model_for(upstream: str, index: int) -> str:
    return (CODEX_MODELS if upstream == "codex" else GOOGLE_MODELS)[index]


@pytest.fixture(scope="module")
def codex() -> Iterator[FakeCodex]:
    with FakeCodex() as server:
        for name in ("gpt-5.1", "gpt-5.2", "gpt-5.3", "gpt-5.4", "gpt-5.6", "gpt-5.7"):
            server.add_model(name)
        yield server


@pytest.fixture(scope="module")
def codex_accounts(codex: FakeCodex) -> tuple[Tokens, Tokens]:
    return (
        codex.add_account("acct-A", email="ca@example.com"),
        codex.add_account("acct-B", email="cb@example.com"),
    )


@pytest.fixture(scope="module")
def proxies(
    fake: FakeGoogle,
    codex: FakeCodex,
    codex_accounts: tuple[Tokens, Tokens],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Proxy]]:
    """One proxy per upstream kind, each with two accounts of it; started side by side."""
    fake.add_account("ya29.valid-b", "1//refresh-b", PROJECT_B, email="b@example.com")
    fake.add_api_key(KEY_A)
    fake.add_api_key(KEY_B)
    timeouts = {"timeouts": {"upstream-idle": IDLE}}
    configs = {
        "code_assist": {
            "auth_files": two_accounts(),
            "config": timeouts,
        },
        "ai_studio": {
            "config": {
                **timeouts,
                "generative-language-api-key": [KEY_A, KEY_B],
                "endpoints": {
                    "gemini-cli": fake.base_url,
                    "google-token": fake.token_url,
                    "ai-studio": fake.ai_studio_url,
                },
            }
        },
        "codex": {
            "auth_files": {f"codex-{t.email}.json": t.auth_file() for t in codex_accounts},
            "config": timeouts,
            "codex": codex,
        },
    }
    started = {
        name: start_proxy(tmp_path_factory.mktemp(name), fake, wait=False, **kwargs)
        for name, kwargs in configs.items()
    }
    try:
        for p in started.values():
            wait_ready(p)
        yield started
    finally:
        for p in started.values():
            p.stop()


@pytest.fixture
def upstream(
    request: pytest.FixtureRequest, proxies: dict[str, Proxy], fake: FakeGoogle, codex: FakeCodex
) -> Iterator[Upstream]:
    codex.reset()
    up = Upstream(request.param, proxies[request.param].base_url, fake, codex)
    yield up
    fake.event_delay = codex.event_delay = 0.0


# ------------------------------------------------------------------ 1. progressive failover


@pytest.mark.parametrize("upstream", UPSTREAMS, indirect=True)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_429_then_a_slow_stream_arrives_progressively(upstream: Upstream, dialect: str) -> None:
    model = model_for(upstream.name, DIALECTS.index(dialect))
    reply, text = upstream.slow()
    upstream.enqueue(upstream.rate_limit(model), reply)
    upstream.set_delay(DELAY[upstream.name])
    got = stream(upstream.base_url, dialect, model)
    assert got.status == 200, got.body
    assert got.aborted is None
    # the first account refused, the second served
    (refused, refused_status), (served, served_status) = upstream.calls()
    assert (refused_status, served_status) == (429, 200) and refused != served
    # the whole answer, ended as a success in the caller's dialect …
    assert text_of(dialect, got.events) == text
    assert completed(dialect, got.events)
    # … and its events came as the upstream produced them, not in one piece at the end
    first_text = text_events(dialect, got.events)[0][0]
    assert got.events[-1].at - first_text.at >= MIN_SPAN, [e.at - got.started for e in got.events]
    # the account that refused rests: the next request goes straight to the other one
    upstream.set_delay(0)
    again = stream(upstream.base_url, dialect, model)
    assert again.status == 200 and completed(dialect, again.events)
    assert upstream.calls()[2:] == [(served, 200)]


# ------------------------------------------------------------------ 2. dropped mid-stream


@pytest.mark.parametrize("upstream", UPSTREAMS, indirect=True)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_drop_mid_stream_is_an_error_event(upstream: Upstream, dialect: str) -> None:
    upstream.enqueue(upstream.cut(2))
    got = stream(upstream.base_url, dialect, STEADY[upstream.name])
    assert got.status == 200 and got.aborted is None  # a clean transfer …
    assert text_of(dialect, got.events)  # … that had begun answering …
    assert not completed(dialect, got.events)  # … never ends as a success …
    err = error_event(dialect, got.events)  # … but in an error event of the caller's format
    assert err is not None, [(e.name, e.data) for e in got.events]
    assert "failed after the stream started" in err["message"]
    if dialect == "chat":
        assert all(e.data != "[DONE]" for e in got.events)
    if dialect == "anthropic":
        assert err["type"] == "overloaded_error"  # Claude Code retries on this one
    if dialect == "gemini":
        assert err["code"] == 503
    assert error_event(dialect, got.events[-1:]) is not None  # and nothing after it


@pytest.mark.parametrize("upstream", ["code_assist", "codex"], indirect=True)
def test_sdks_raise_on_a_drop_mid_stream(upstream: Upstream) -> None:
    model = STEADY[upstream.name]
    base = upstream.base_url
    upstream.enqueue(*[upstream.cut(2) for _ in range(4)])
    oai = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIError, match="failed after the stream started"):
        for _ in oai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass
    events = list(oai.responses.create(model=model, input="x", stream=True))
    assert events[-1].type == "response.failed"
    assert not any(e.type == "response.completed" for e in events)
    claude = anthropic.Anthropic(base_url=base, api_key="x", max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        claude.messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        for _ in s:
            pass
    assert "overloaded_error" in str(err.value.body)
    g = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=base))
    with pytest.raises(genai_errors.ServerError) as gerr:
        for _ in g.models.generate_content_stream(model=model, contents="x"):
            pass
    assert gerr.value.code == 503


# ------------------------------------------------------------------ 3. stalls and timeouts


@pytest.mark.parametrize(
    ("upstream", "dialect"),
    [("code_assist", "anthropic"), ("ai_studio", "chat"), ("codex", "gemini")],
    indirect=["upstream"],
)
def test_stall_before_the_first_byte_fails_over(upstream: Upstream, dialect: str) -> None:
    model = model_for(upstream.name, 4)
    reply, text = upstream.slow(3)
    upstream.enqueue(upstream.stall(8), reply)
    got = stream(upstream.base_url, dialect, model)
    assert got.status == 200 and completed(dialect, got.events)
    assert text_of(dialect, got.events) == text
    (stalled, _), (served, status) = upstream.calls()
    assert stalled != served and status == 200
    assert IDLE <= got.ended - got.started < IDLE + 3  # the idle timeout, not the stall


@pytest.mark.parametrize(
    ("upstream", "dialect"),
    [("code_assist", "gemini"), ("ai_studio", "responses"), ("codex", "chat")],
    indirect=["upstream"],
)
def test_stall_before_a_whole_answer_fails_over(upstream: Upstream, dialect: str) -> None:
    """The same without streaming: mitmproxy's own upstream call (the native path) goes silent,
    `timeouts.upstream-idle` cuts it, and the next account answers the request."""
    model = model_for(upstream.name, 7)
    reply, text = upstream.slow(3)
    upstream.enqueue(upstream.stall(8), reply)
    path, body = request_for(dialect, model, "hello", stream=False)
    started = time.monotonic()
    r = httpx.post(upstream.base_url + path, json=body, headers=HEADERS, timeout=20)
    took = time.monotonic() - started
    assert r.status_code == 200, r.text
    answer = r.json()
    if dialect == "gemini":
        got = "".join(p["text"] for p in answer["candidates"][0]["content"]["parts"])
    elif dialect == "responses":
        got = answer["output"][-1]["content"][0]["text"]
    else:
        got = answer["choices"][0]["message"]["content"]
    assert got == text
    (stalled, _), (served, status) = upstream.calls()
    assert stalled != served and status == 200
    assert IDLE <= took < IDLE + 3  # the idle timeout, not the stall


@pytest.mark.parametrize(
    ("upstream", "dialect"),
    [("code_assist", "chat"), ("ai_studio", "anthropic"), ("codex", "responses"),
     ("code_assist", "gemini")],
    indirect=["upstream"],
)  # fmt: skip
def test_stall_on_every_account_is_504_in_the_callers_shape(
    upstream: Upstream, dialect: str
) -> None:
    model = model_for(upstream.name, 5 if dialect != "gemini" else 6)
    upstream.enqueue(upstream.stall(8), upstream.stall(8))
    got = stream(upstream.base_url, dialect, model)
    assert got.status == 504, got.body
    assert got.headers["content-type"].startswith("application/json")
    assert f"sent nothing for {IDLE:g} s" in error_message(dialect, got.json())
    assert len(upstream.calls()) == 2  # each account tried once
    assert got.ended - got.started < 2 * IDLE + 3


@pytest.mark.parametrize(
    ("upstream", "dialect"),
    [("code_assist", "responses"), ("ai_studio", "gemini"), ("codex", "anthropic")],
    indirect=["upstream"],
)
def test_stall_mid_stream_is_an_error_event(upstream: Upstream, dialect: str) -> None:
    upstream.enqueue(upstream.stall(8, after=2))
    got = stream(upstream.base_url, dialect, STEADY[upstream.name])
    assert got.status == 200 and got.aborted is None
    assert text_of(dialect, got.events) and not completed(dialect, got.events)
    err = error_event(dialect, got.events)
    assert err is not None and "during the stream" in err["message"]
    assert got.ended - got.started < IDLE + 3


def test_upstream_that_does_not_answer_connects_is_502_naming_it(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    # a listener whose backlog is full: the kernel leaves further SYNs unanswered
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(blackhole.getsockname())
        fillers.append(s)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    hour = timedelta(hours=1)
    proxies = [
        start_proxy(
            tmp_path / name,
            fake,
            wait=False,
            auth_files={
                "gemini-a.json": gemini_auth(
                    "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", hour
                )
            },
            config={
                "timeouts": {"upstream-connect": 0.5},
                "endpoints": {
                    "gemini-cli": f"http://127.0.0.1:{sock.getsockname()[1]}",
                    "google-token": fake.token_url,
                },
            },
        )
        for name, sock in (("blackhole", blackhole), ("refused", refused))
    ]
    try:
        for p in proxies:
            wait_ready(p)
        timed_out = stream(proxies[0].base_url, "chat", "gemini-2.5-flash")
        assert timed_out.status == 502
        message = error_message("chat", timed_out.json())
        assert "Code Assist could not be reached within 0.5 s" in message
        assert timed_out.ended - timed_out.started < 3
        gone = stream(proxies[1].base_url, "anthropic", "gemini-2.5-flash")
        assert gone.status == 502
        assert "Code Assist could not be reached" in error_message("anthropic", gone.json())
    finally:
        for p in proxies:
            p.stop()
        for s in [blackhole, refused, *fillers]:
            s.close()


# ------------------------------------------------------------------ 4. the client goes


def leave_after_the_first_word(upstream: Upstream, dialect: str, model: str) -> float:
    """Stream until the first word of the answer arrives, then hang up; when the client left."""
    path, body = request_for(dialect, model, "go")
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", upstream.base_url + path, json=body, headers=HEADERS) as r,
    ):
        assert r.status_code == 200
        seen = b""
        for chunk in r.iter_bytes():
            seen += chunk
            if b"w0" in seen:
                break
        assert b"w0" in seen
    return time.monotonic()  # the response and its connection are closed here


@pytest.mark.parametrize(
    ("upstream", "dialect"),
    [("code_assist", "chat"), ("ai_studio", "gemini"), ("codex", "anthropic")],
    indirect=["upstream"],
)
def test_client_gone_mid_stream_cancels_the_upstream_within_a_second(
    upstream: Upstream, dialect: str
) -> None:
    # the upstream has begun answering and then says nothing: no write fails, no idle timeout
    # fires before IDLE; only noticing the client's departure can close the upstream request
    upstream.enqueue(upstream.stall(8, after=2))
    left = leave_after_the_first_word(upstream, dialect, STEADY[upstream.name])
    deadline = left + 3
    while not upstream.peer_closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.peer_closed, "the upstream connection stayed open"
    assert upstream.peer_closed[0] - left < min(1.0, IDLE / 2)


@pytest.mark.parametrize(
    ("upstream", "dialect"),
    [("code_assist", "anthropic"), ("codex", "chat")],
    indirect=["upstream"],
)
def test_client_gone_after_a_failover_cancels_the_upstream_within_a_second(
    upstream: Upstream, dialect: str
) -> None:
    # the first account refuses; the second begins answering and then says nothing: the
    # answer now comes through the failover, which must notice the client's departure itself
    model = model_for(upstream.name, 8)
    upstream.enqueue(upstream.rate_limit(model), upstream.stall(8, after=2))
    left = leave_after_the_first_word(upstream, dialect, model)
    (refused, status), (served, _) = upstream.calls()
    assert status == 429 and refused != served
    deadline = left + 3
    while not upstream.peer_closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.peer_closed, "the upstream connection stayed open"
    assert upstream.peer_closed[-1] - left < 1.0


@pytest.mark.parametrize("upstream", ["code_assist"], indirect=True)
def test_http10_client_gets_a_failover_and_an_error_event_close_delimited(
    upstream: Upstream,
) -> None:
    # HTTP/1.0 has no chunks: the answer written around mitmproxy ends with the connection
    model = model_for(upstream.name, 9)
    upstream.enqueue(upstream.rate_limit(model), upstream.cut(2))
    path, body = request_for("chat", model, "old client")
    payload = json.dumps(body).encode()
    port = int(upstream.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST %s HTTP/1.0\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (path.encode(), len(payload), payload)
        )
        s.settimeout(10)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    assert b"chunked" not in head.lower() and b"content-length" not in head.lower()
    events = [parse_event(e, 0) for e in rest.replace(b"\r\n", b"\n").split(b"\n\n") if e]
    assert text_of("chat", events) == "w0 w1 "
    err = error_event("chat", events)
    assert err is not None and "failed after the stream started" in err["message"]
    (refused, status), (served, _) = upstream.calls()
    assert status == 429 and refused != served


@pytest.mark.parametrize("upstream", ["code_assist"], indirect=True)
def test_large_request_body_still_streams_to_the_end(upstream: Upstream) -> None:
    # Claude Code's requests are 70 KB and more: they reach the loopback streamer in several
    # reads, and none of their bytes may be taken for the client going away
    reply, text = upstream.slow(4)
    upstream.enqueue(reply)
    upstream.set_delay(0.2)
    got = stream(upstream.base_url, "anthropic", STEADY[upstream.name], "x" * 300_000)
    assert got.status == 200 and got.aborted is None
    assert text_of("anthropic", got.events) == text and completed("anthropic", got.events)
