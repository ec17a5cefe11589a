"""Gemini CLI 0.61.0 in API-key mode (`/v1beta`, docs/upstreams.md "Gemini CLI") through the proxy.

The CLI speaks the public Gemini API to the proxy; the proxy serves it from its Gemini CLI account,
so the fake Code Assist must see the request in its envelope with the account's project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import GEMINI_TOKEN
from tests.e2e.conftest import Clients
from tests.e2e.conftest import Run
from tests.e2e.conftest import gemini_cli
from tests.e2e.conftest import upstream_summary
from tests.fakes import google as fake_google
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy

pytestmark = pytest.mark.e2e

FILE_TEXT = "hello from a file"


def gemini(clients: Clients, proxy: Proxy, prompt: str, home: Path, cwd: Path) -> Run:
    # without selectedType the base URL makes it pick auth type "gateway": rc 41
    # (docs/upstreams.md "Gemini CLI")
    return gemini_cli(
        clients, prompt, home, cwd, "gemini-api-key",
        GEMINI_API_KEY="e2e-anything", GOOGLE_GEMINI_BASE_URL=proxy.base_url,
    )  # fmt: skip


def test_plain_prompt_api_key_mode(
    clients: Clients, proxy: Proxy, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    run = gemini(clients, proxy, "say hi", tmp_path / "home", workdir)
    info = (
        f"{run.report()}\n--- upstream ---\n{upstream_summary(google)}\n"
        f"--- proxy log ---\n{proxy.log()[-4000:]}"
    )
    out = run.json()
    assert run.returncode == 0, info
    calls = [r for r in google.requests if r.rpc in ("generateContent", "streamGenerateContent")]
    assert [(c.rpc, c.query.get("alt"), c.status) for c in calls] == [
        ("streamGenerateContent", "sse", 200)
    ], info
    env = calls[0].body
    assert env["model"] == "gemini-2.5-flash" and env["project"] == PROJECT, info
    assert calls[0].headers["authorization"] == f"Bearer {GEMINI_TOKEN}", info
    last = env["request"]["contents"][-1]
    assert last["role"] == "user" and "say hi" in [p.get("text") for p in last["parts"]], info
    assert out["response"] == fake_google.default_reply(env["request"]).text, info
    assert out["response"].startswith("Echo: ") and "say hi" in out["response"], info


def test_read_file_round_trip_api_key_mode(
    clients: Clients, proxy: Proxy, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    target = workdir / "hello.txt"
    target.write_text(FILE_TEXT + "\n")
    google.enqueue(fake_google.Calls([("read_file", {"file_path": str(target)})]))
    run = gemini(clients, proxy, "read hello.txt", tmp_path / "home", workdir)
    info = (
        f"{run.report()}\n--- upstream ---\n{upstream_summary(google)}\n"
        f"--- proxy log ---\n{proxy.log()[-4000:]}"
    )
    out = run.json()
    assert run.returncode == 0, info
    calls = [r for r in google.requests if r.rpc in ("generateContent", "streamGenerateContent")]
    assert [(c.rpc, c.status) for c in calls] == [("streamGenerateContent", 200)] * 2, info
    contents = calls[1].body["request"]["contents"]
    # the model turn comes back with the call and the signature the fake issued ...
    call_parts = [p for p in contents[-2]["parts"] if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in call_parts] == ["read_file"], info
    assert call_parts[0].get("thoughtSignature") in google.issued_signatures, info
    # ... followed by the tool's answer carrying the file's text
    answers = [p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p]
    assert [a["name"] for a in answers] == ["read_file"], info
    assert FILE_TEXT in json.dumps(answers[0]["response"]), info
    assert out["stats"]["tools"]["totalCalls"] == 1, info
    assert out["response"] == fake_google.default_reply(calls[1].body["request"]).text, info
    assert FILE_TEXT in out["response"], info
