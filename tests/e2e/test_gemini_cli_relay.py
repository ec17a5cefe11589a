"""Gemini CLI 0.61.0 in Code Assist relay mode (`CODE_ASSIST_ENDPOINT`,
docs/upstreams.md "Gemini CLI").

The CLI believes it talks to Code Assist with its own token; the proxy answers its set-up calls as
an onboarded user and serves generation from the pool's account: the fake Code Assist must see
the pool account's token and project, never the CLI's.
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

CLI_TOKEN = "ya29.the-cli-own-token"


def gemini_relay(clients: Clients, proxy: Proxy, prompt: str, home: Path, cwd: Path) -> Run:
    return gemini_cli(
        clients, prompt, home, cwd, "oauth-personal",
        CODE_ASSIST_ENDPOINT=proxy.base_url, GOOGLE_GENAI_USE_GCA="true",
        GOOGLE_CLOUD_ACCESS_TOKEN=CLI_TOKEN,
    )  # fmt: skip


def test_plain_prompt_relay_mode(
    clients: Clients, proxy: Proxy, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    run = gemini_relay(clients, proxy, "say hi", tmp_path / "home", workdir)
    info = (
        f"{run.report()}\n--- upstream ---\n{upstream_summary(google)}\n"
        f"--- proxy log ---\n{proxy.log()[-4000:]}"
    )
    assert run.returncode == 0, info
    out = run.json()
    calls = google.calls("streamGenerateContent")
    assert [(c.status, c.body["project"]) for c in calls] == [(200, PROJECT)], info
    assert calls[0].headers["authorization"] == f"Bearer {GEMINI_TOKEN}", info
    # the CLI's own token never reached the upstream, on any call
    assert all(CLI_TOKEN not in json.dumps(r.headers) for r in google.requests), info
    assert out["response"] == fake_google.default_reply(calls[0].body["request"]).text, info
    # set-up was answered by the proxy, not forwarded
    assert google.calls("loadCodeAssist") == [] and google.calls("onboardUser") == [], info


def test_read_file_round_trip_relay_mode(
    clients: Clients, proxy: Proxy, google: FakeGoogle, tmp_path: Path, workdir: Path
) -> None:
    target = workdir / "hello.txt"
    target.write_text("hello from a file\n")
    google.enqueue(fake_google.Calls([("read_file", {"file_path": str(target)})]))
    run = gemini_relay(clients, proxy, "read hello.txt", tmp_path / "home", workdir)
    info = f"{run.report()}\n--- upstream ---\n{upstream_summary(google)}"
    assert run.returncode == 0, info
    out = run.json()
    calls = google.calls("streamGenerateContent")
    assert [c.status for c in calls] == [200, 200], info
    answers = [
        p["functionResponse"]
        for p in calls[1].body["request"]["contents"][-1]["parts"]
        if "functionResponse" in p
    ]
    assert "hello from a file" in json.dumps(answers), info
    assert out["stats"]["tools"]["totalCalls"] == 1, info
    assert "hello from a file" in out["response"], info
