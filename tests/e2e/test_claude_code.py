"""Claude Code 2.1.197 (`claude -p … --output-format json`) through the proxy
(docs/upstreams.md "Claude Code").

Claude Code silently falls back to a second, non-streaming request when it cannot use a stream
(docs/upstreams.md "Claude Code"), so every test counts the upstream generate calls: one streamed
call per model turn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import CLIENT_TIMEOUT
from tests.e2e.conftest import GEMINI_TOKEN
from tests.e2e.conftest import Clients
from tests.e2e.conftest import Run
from tests.e2e.conftest import client_env
from tests.e2e.conftest import run_client
from tests.e2e.conftest import start_client
from tests.e2e.conftest import upstream_summary
from tests.fakes import codex as fake_codex
from tests.fakes import google as fake_google
from tests.fakes.codex import FakeCodex
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import start_proxy

pytestmark = pytest.mark.e2e

FILE_TEXT = "hello from a file"
PROJECT_B = "proj-e2e-bravo"


def claude_env(home: Path, proxy: Proxy, model: str) -> dict[str, str]:
    """Claude Code's environment (docs/upstreams.md "Claude Code"), with retries off so every
    request the client makes is visible."""
    return client_env(
        home,
        ANTHROPIC_BASE_URL=proxy.base_url,
        ANTHROPIC_API_KEY="sk-ant-test",
        ANTHROPIC_MODEL=model,
        ANTHROPIC_SMALL_FAST_MODEL="claude-haiku-4-5",
        ANTHROPIC_DEFAULT_HAIKU_MODEL="claude-haiku-4-5",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_BUG_COMMAND="1",
        DISABLE_NON_ESSENTIAL_MODEL_CALLS="1",
        CLAUDE_CODE_MAX_RETRIES="0",
    )


def claude(
    clients: Clients, proxy: Proxy, model: str, prompt: str, home: Path, cwd: Path, *extra: str
) -> Run:
    env = claude_env(home, proxy, model)
    argv = [clients.bin("claude"), "-p", prompt, "--output-format", "json", *extra]
    return run_client(argv, env, cwd)


def context(run: Run, proxy: Proxy, google: FakeGoogle | None, codex: FakeCodex | None) -> str:
    return (
        f"{run.report()}\n--- upstream ---\n{upstream_summary(google, codex)}\n"
        f"--- proxy log ---\n{proxy.log()[-4000:]}"
    )


def generate_calls(google: FakeGoogle) -> list[fake_google.Recorded]:
    return [r for r in google.requests if r.rpc in ("generateContent", "streamGenerateContent")]


def test_plain_prompt_to_gemini(
    clients: Clients, proxy: Proxy, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    run = claude(clients, proxy, "gemini-2.5-flash", "say hi", tmp_path / "home", workdir)
    info = context(run, proxy, google, None)
    out = run.json()
    assert run.returncode == 0, info
    assert out["type"] == "result" and out["is_error"] is False, info
    # 1 streamed upstream call = Claude Code used our stream; 2 = its non-stream fallback fired
    calls = generate_calls(google)
    assert [(c.rpc, c.query.get("alt"), c.status) for c in calls] == [
        ("streamGenerateContent", "sse", 200)
    ], info
    env = calls[0].body
    assert env["model"] == "gemini-2.5-flash" and env["project"] == PROJECT, info
    user_texts = [p.get("text", "") for p in env["request"]["contents"][-1]["parts"]]
    assert "say hi" in user_texts, info
    assert out["result"] == fake_google.default_reply(env["request"]).text, info
    assert out["result"].startswith("Echo: ") and out["num_turns"] == 1, info


def test_plain_prompt_to_codex(
    clients: Clients, proxy: Proxy, codex: FakeCodex, tmp_path: Path, workdir: Path
) -> None:
    run = claude(clients, proxy, "gpt-5", "say hi", tmp_path / "home", workdir)
    info = context(run, proxy, None, codex)
    out = run.json()
    assert run.returncode == 0, info
    assert out["type"] == "result" and out["is_error"] is False, info
    reqs = codex.responses_requests
    assert [r.status for r in reqs] == [200], info  # one streamed call, no fallback
    body = reqs[0].body
    assert body["model"] == "gpt-5" and body["stream"] is True, info
    assert out["result"] == fake_codex.default_reply(body).text, info
    assert out["result"].startswith("Echo: ") and "say hi" in out["result"], info
    assert out["num_turns"] == 1, info


def test_read_tool_round_trip(
    clients: Clients, proxy: Proxy, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    target = workdir / "hello.txt"
    target.write_text(FILE_TEXT + "\n")
    google.enqueue(fake_google.Calls([("Read", {"file_path": str(target)})]))
    run = claude(clients, proxy, "gemini-2.5-flash", "read hello.txt", tmp_path / "home", workdir)
    info = context(run, proxy, google, None)
    out = run.json()
    assert run.returncode == 0, info
    assert out["is_error"] is False and out["num_turns"] == 2, info
    calls = generate_calls(google)
    assert [(c.rpc, c.status) for c in calls] == [("streamGenerateContent", 200)] * 2, info
    contents = calls[1].body["request"]["contents"]
    # the model turn carries the call (with the signature the fake issued) ...
    model_turn = contents[-2]
    call_parts = [p for p in model_turn["parts"] if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in call_parts] == ["Read"], info
    assert call_parts[0]["functionCall"]["args"] == {"file_path": str(target)}, info
    assert call_parts[0].get("thoughtSignature") in google.issued_signatures, info
    # ... and the user turn answers it with the file's text
    answers = [p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p]
    assert [a["name"] for a in answers] == ["Read"], info
    assert FILE_TEXT in json.dumps(answers[0]["response"]), info
    assert FILE_TEXT in out["result"], info
    assert out["result"] == fake_google.default_reply(calls[1].body["request"]).text, info


def test_one_session_switching_model_between_turns(
    clients: Clients,
    proxy: Proxy,
    google: FakeGoogle,
    codex: FakeCodex,
    tmp_path: Path,
    workdir: Path,
) -> None:
    """Issue 10, one conversation across providers: Gemini reads a file, the session goes on
    (`--continue`) on gpt-5, which reasons and reads it again, then back on Gemini. Every hop
    carries the others' artefacts (Gemini thought signatures, Codex encrypted reasoning, both
    families' tool ids) and the strict fakes accept each request."""
    home = tmp_path / "home"
    target = workdir / "hello.txt"
    target.write_text(FILE_TEXT + "\n")
    google.enqueue(fake_google.Calls([("Read", {"file_path": str(target)})]))
    first = claude(clients, proxy, "gemini-2.5-flash", "read hello.txt", home, workdir)
    info = context(first, proxy, google, codex)
    assert first.returncode == 0 and first.json()["is_error"] is False, info
    assert FILE_TEXT in first.json()["result"], info

    codex.enqueue(fake_codex.Calls([("Read", {"file_path": str(target)})], reasoning="Re-read."))
    second = claude(clients, proxy, "gpt-5", "read it once more", home, workdir, "--continue")
    info = context(second, proxy, google, codex)
    assert second.returncode == 0 and second.json()["is_error"] is False, info
    reqs = codex.responses_requests
    assert [r.status for r in reqs] == [200, 200], info  # the call, then the answer to it
    items = reqs[0].body["input"]
    kinds = [i["type"] for i in items]
    # the first turn's Gemini call and its result, in Codex's terms; no foreign reasoning
    assert kinds.count("function_call") == kinds.count("function_call_output") == 1, info
    assert "reasoning" not in kinds, info
    # the second request replays Codex's own encrypted reasoning (the fake verified it)
    replayed = [i for i in reqs[1].body["input"] if i["type"] == "reasoning"]
    assert [i["encrypted_content"] for i in replayed] == codex.issued_reasoning, info
    assert FILE_TEXT in second.json()["result"], info

    third = claude(clients, proxy, "gemini-2.5-flash", "thanks", home, workdir, "--continue")
    info = context(third, proxy, google, codex)
    assert third.returncode == 0 and third.json()["is_error"] is False, info
    calls = generate_calls(google)
    assert [c.status for c in calls] == [200, 200, 200], info  # one stream per model turn
    contents = calls[-1].body["request"]["contents"]
    signed = [
        p.get("thoughtSignature") for c in contents for p in c["parts"] if "functionCall" in p
    ]
    # Gemini's own call keeps its signature; Codex's call gets the sentinel, not Codex's token
    assert signed[0] in google.issued_signatures, info
    assert signed[1] == "skip_thought_signature_validator", info
    assert "codex-rs:" not in json.dumps(contents), info
    assert third.json()["result"] == fake_google.default_reply(calls[-1].body["request"]).text, info


def test_progressive_answer_after_a_429(
    clients: Clients, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    """Issue 11: the first account refuses with a 429, the second streams slowly; Claude Code's
    own stream-json output shows the first text delta well before the end (the failover happened
    before the first byte, and the stream was not buffered)."""
    google.add_account("ya29.e2e-valid-b", "1//e2e-refresh-b", PROJECT_B, email="e2e-b@example.com")
    hour = timedelta(hours=1)
    proxy = start_proxy(
        tmp_path / "proxy",
        google,
        auth_files={
            "gemini-a.json": gemini_auth(
                "e2e@example.com", PROJECT, GEMINI_TOKEN, "1//e2e-refresh", hour
            ),
            "gemini-b.json": gemini_auth(
                "e2e-b@example.com", PROJECT_B, "ya29.e2e-valid-b", "1//e2e-refresh-b", hour
            ),
        },
    )
    words = [f"part{i} " for i in range(6)]
    google.enqueue(
        fake_google.rate_limited("60s", "RATE_LIMIT_EXCEEDED", "gemini-2.5-flash"),
        fake_google.Raw([{"text": w} for w in words]),
    )
    google.event_delay = 0.4
    try:
        lines, run = claude_streaming(clients, proxy, "say hi", tmp_path / "home", workdir)
    finally:
        google.event_delay = 0.0
        proxy.stop()
    info = context(run, proxy, google, None)
    assert run.returncode == 0, info
    events = [(at, json.loads(line)) for at, line in lines if line.startswith("{")]
    deltas = [
        at
        for at, ev in events
        if ev.get("type") == "stream_event"
        and ev["event"].get("type") == "content_block_delta"
        and ev["event"]["delta"].get("type") == "text_delta"
    ]
    result = [(at, ev) for at, ev in events if ev.get("type") == "result"]
    assert deltas and len(result) == 1, info
    ended, out = result[0]
    assert out["is_error"] is False and out["result"] == "".join(words), info
    # the first words were on screen while the upstream still had 2 s of answer to send
    assert ended - deltas[0] >= 1.2, ([at - deltas[0] for at in deltas], ended - deltas[0])
    calls = generate_calls(google)
    assert [(c.rpc, c.status) for c in calls] == [
        ("streamGenerateContent", 429),
        ("streamGenerateContent", 200),
    ], info
    assert calls[0].credential != calls[1].credential, info


def claude_streaming(
    clients: Clients, proxy: Proxy, prompt: str, home: Path, cwd: Path
) -> tuple[list[tuple[float, str]], Run]:
    """`claude -p --output-format stream-json --include-partial-messages`, each stdout line with
    the moment it arrived; the whole process group is killed after CLIENT_TIMEOUT."""
    env = claude_env(home, proxy, "gemini-2.5-flash")
    argv = [clients.bin("claude"), "-p", prompt, "--output-format", "stream-json", "--verbose"]
    argv.append("--include-partial-messages")
    started = time.monotonic()
    proc = start_client(argv, env, cwd)
    lines: list[tuple[float, str]] = []
    errors: list[str] = []

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    def read_err() -> None:
        assert proc.stderr is not None
        errors.extend(proc.stderr)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    for t in readers:
        t.start()
    try:
        proc.wait(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for t in readers:
        t.join(timeout=10)
    out = "\n".join(line for _, line in lines)
    run = Run(argv, proc.returncode, out, "".join(errors), time.monotonic() - started)
    if run.returncode == -signal.SIGKILL:
        pytest.fail(f"client did not finish within {CLIENT_TIMEOUT}s (killed)\n{run.report()}")
    return lines, run
