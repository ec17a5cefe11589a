"""mitmweb shows every upstream attempt as a flow of its own (issue 11): the refused one with the
account that made it, the served one with the other, tokens masked; and the client's own flow."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.google import FakeGoogle
from tests.fakes.google import rate_limited
from tests.integration.conftest import MITMDUMP
from tests.integration.conftest import PROJECT
from tests.integration.conftest import PROJECT_B
from tests.integration.conftest import ROOT
from tests.integration.conftest import free_port
from tests.integration.conftest import stop_process
from tests.integration.conftest import two_accounts
from tests.integration.streams import completed
from tests.integration.streams import stream

PASSWORD = "web-secret-for-tests"
MODEL = "gemini-2.5-flash"


def flows(web: str) -> list[dict[str, Any]]:
    r = httpx.get(web + "/flows", headers={"authorization": f"Bearer {PASSWORD}"}, timeout=5)
    r.raise_for_status()
    return r.json()


def header(flow: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in flow["request"]["headers"] if k.lower() == name), None)


def test_each_attempt_is_a_flow_with_its_account_and_a_masked_token(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    fake.add_account("ya29.valid-b", "1//refresh-b", PROJECT_B, email="b@example.com")
    auth = tmp_path / "auth"
    auth.mkdir()
    for name, body in two_accounts().items():
        (auth / name).write_text(json.dumps(body))
        (auth / name).chmod(0o600)
    port, web_port = free_port(), free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "auth-dir": str(auth),
        "endpoints": {"gemini-cli": fake.base_url, "google-token": fake.token_url},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                MITMDUMP.replace("mitmdump", "mitmweb"),
                "-s", str(ROOT / "addons" / "cliproxy.py"),
                "--set", "web_open_browser=false", "--set", f"web_port={web_port}",
                "--set", f"web_password={PASSWORD}",
            ],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base, web = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                httpx.get(base + "/healthz", timeout=1)
                flows(web)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        fake.enqueue(rate_limited("60s", "RATE_LIMIT_EXCEEDED", MODEL))
        got = stream(base, "chat", MODEL, "seen in mitmweb")
        assert got.status == 200 and completed("chat", got.events)
        refused_call, served_call = [r for r in fake.requests if r.rpc == "streamGenerateContent"]
        assert (refused_call.status, served_call.status) == (429, 200)

        shown = flows(web)
        upstream = [f for f in shown if f["request"]["path"].startswith("/v1internal:")]
        assert len(upstream) == 2, [(f["request"]["path"], f.get("comment")) for f in shown]
        refused, served = sorted(upstream, key=lambda f: f["request"]["timestamp_start"])
        emails = {PROJECT: "a@example.com", PROJECT_B: "b@example.com"}
        assert refused["response"]["status_code"] == 429
        assert served["response"]["status_code"] == 200
        assert emails[refused_call.credential] in refused["comment"]
        assert emails[served_call.credential] in served["comment"]
        assert refused["comment"].endswith("attempt 1/3"), refused["comment"]
        assert served["comment"].endswith("attempt 2/3"), served["comment"]
        tokens = {PROJECT: "ya29.valid-a", PROJECT_B: "ya29.valid-b"}
        for f, call in ((refused, refused_call), (served, served_call)):
            shown_auth = header(f, "authorization")
            assert shown_auth == "Bearer …" + tokens[call.credential][-4:], shown_auth
        # the client's own exchange is there too, with the account that served it
        mine = [f for f in shown if f["request"]["path"] == "/v1/chat/completions"]
        assert len(mine) == 1 and mine[0]["response"]["status_code"] == 200
        assert emails[served_call.credential] in mine[0]["comment"]
        # a whole (non-stream) answer after a refusal: the same, its first attempt having been
        # mitmproxy's own call rather than the streamer's
        fake.enqueue(rate_limited("60s", "RATE_LIMIT_EXCEEDED", "gemini-2.5-pro"))
        whole = httpx.post(
            base + "/v1/chat/completions",
            json={"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]},
            timeout=20,
        )
        assert whole.status_code == 200, whole.text
        calls = [r for r in fake.requests if r.rpc == "generateContent"]
        assert [c.status for c in calls] == [429, 200]
        shown = flows(web)
        tried = [f for f in shown if f["request"]["path"] == "/v1internal:generateContent"]
        assert len(tried) == 2, [(f["request"]["path"], f.get("comment")) for f in shown]
        first, second = sorted(tried, key=lambda f: f["request"]["timestamp_start"])
        assert first["response"]["status_code"] == 429
        assert emails[calls[0].credential] in first["comment"]
        assert first["comment"].endswith("attempt 1/3"), first["comment"]
        assert header(first, "authorization") == "Bearer …" + tokens[calls[0].credential][-4:]
        assert second["response"]["status_code"] == 200
        assert emails[calls[1].credential] in second["comment"]
        mine = [f for f in shown if f["request"]["path"] == "/v1/chat/completions"]
        assert len(mine) == 2 and all(f["response"]["status_code"] == 200 for f in mine)
        # no flow keeps a usable token
        raw = httpx.get(
            web + "/flows", headers={"authorization": f"Bearer {PASSWORD}"}, timeout=5
        ).text
        assert "ya29.valid-a" not in raw and "ya29.valid-b" not in raw
        # Replay of the served attempt re-sends it with a real, fresh token of its own account
        before = len(fake.requests)
        xsrf = {"x-xsrftoken": "c0ffee", "cookie": "_mitmproxy_xsrf=c0ffee"}  # tornado's check
        auth = {"authorization": f"Bearer {PASSWORD}", **xsrf}
        replay = httpx.post(f"{web}/flows/{served['id']}/replay", headers=auth, timeout=5)
        assert replay.status_code == 200, replay.text
        deadline = time.monotonic() + 10
        while len(fake.requests) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        again = fake.requests[before]
        assert again.credential == served_call.credential
        assert again.headers.get("authorization") == "Bearer " + tokens[served_call.credential]
        assert again.status == 200
    finally:
        stop_process(process)
