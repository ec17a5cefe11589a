"""mitmweb that tells the truth (docs/configuration.md "Observability"): a real mitmweb in front of
the strict fake, read
through its REST API and rendered by headless Chromium (Debian package `chromium`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.fakes.google import FakeGoogle
from tests.integration.conftest import MITMDUMP
from tests.integration.conftest import PROJECT
from tests.integration.conftest import ROOT
from tests.integration.conftest import free_port
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import stop_process

PASSWORD = "web-pass-for-tests"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
SHOTS = ROOT / ".ci" / "screenshots"


class Web:
    def __init__(self, tmp: Path, fake: FakeGoogle) -> None:
        auth = tmp / "auth"
        auth.mkdir()
        (auth / "gemini-a.json").write_text(json.dumps(gemini_auth(
            "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
        )))  # fmt: skip
        self.port, self.web_port = free_port(), free_port()
        endpoints = {"gemini-cli": fake.base_url, "google-token": fake.token_url}
        cfg = {
            "host": "127.0.0.1",
            "port": self.port,
            "auth-dir": str(auth),
            "endpoints": endpoints,
        }
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
        self.log_path = tmp / "web.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [MITMDUMP.replace("mitmdump", "mitmweb"),
                 "-s", str(ROOT / "addons" / "cliproxy.py"),
                 "--set", "web_open_browser=false", "--set", f"web_port={self.web_port}",
                 "--set", "web_host=127.0.0.1", "--set", f"web_password={PASSWORD}"],
                cwd=tmp, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"
        self.ui = f"http://127.0.0.1:{self.web_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.base + "/healthz", timeout=1)
                httpx.get(self.ui + "/flows", headers=self.auth, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(self.log_path.read_text()) from None
                time.sleep(0.1)

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {PASSWORD}"}

    def flows(self) -> list[dict]:
        return httpx.get(self.ui + "/flows", headers=self.auth).json()

    def options(self) -> dict:
        return httpx.get(self.ui + "/options", headers=self.auth).json()

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def web(fake: FakeGoogle, tmp_path: Path) -> Iterator[Web]:
    w = Web(tmp_path, fake)
    yield w
    w.stop()


def chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=8000", "--window-size=1400,900", *args],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip


def test_flows_are_truthful_masked_and_replayable(web: Web, fake: FakeGoogle) -> None:
    client = openai.OpenAI(base_url=web.base + "/v1", api_key="x", max_retries=0)
    msg = [{"role": "user", "content": "show me in mitmweb"}]
    client.chat.completions.create(model="gemini-2.5-flash", messages=msg)
    chunks = list(
        client.chat.completions.create(model="gemini-2.5-flash", messages=msg, stream=True)
    )
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    httpx.get(web.base + "/v1/models")

    assert "comment" in web.options()["web_columns"]["value"]
    flows = web.flows()
    upstream = [f for f in flows if "generatecontent" in f["request"]["path"].lower()]
    assert len(upstream) == 2, flows
    for f in upstream:
        assert f["comment"].startswith(
            "openai-chat → code_assist · gemini-2.5-flash · a@example.com · attempt 1/3"
        )
    # no usable secret stored: the real token went out, the flow keeps its last 4 characters
    dump = json.dumps(flows)
    assert "ya29.valid-a" not in dump
    stream_flow = next(f for f in upstream if "stream" in f["request"]["path"].lower())
    req_headers = {k.lower(): v for k, v in stream_flow["request"]["headers"]}
    assert req_headers["authorization"] == "Bearer …id-a"
    sent = [r for r in fake.requests if "GenerateContent" in r.path or "generateContent" in r.path]
    assert all(r.headers.get("authorization") == "Bearer ya29.valid-a" for r in sent)
    # the streamed answer is kept for display, as the client got it
    body = httpx.get(
        f"{web.ui}/flows/{stream_flow['id']}/response/content.data", headers=web.auth
    ).text
    assert "data: " in body and streamed_text and streamed_text.split()[0] in body
    # an answer made here shows the proxy's own address, not the reverse placeholder
    local = next(f for f in flows if f["request"]["path"] == "/v1/models")
    assert (local["request"]["host"], local["request"]["port"]) == ("127.0.0.1", web.port)

    # Replay re-sends the upstream request with a fresh (real) token of its account
    before = len(fake.requests)
    whole_flow = next(f for f in upstream if f is not stream_flow)
    xsrf = {"x-xsrftoken": "c0ffee", "cookie": "_mitmproxy_xsrf=c0ffee"}  # tornado's double submit
    r = httpx.post(f"{web.ui}/flows/{whole_flow['id']}/replay", headers={**web.auth, **xsrf})
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while len(fake.requests) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    replayed = fake.requests[before]
    assert replayed.headers.get("authorization") == "Bearer ya29.valid-a"
    assert replayed.status == 200
    time.sleep(0.3)
    again = next(f for f in web.flows() if f["id"] == whole_flow["id"])
    assert again["response"]["status_code"] == 200 and "ya29.valid-a" not in json.dumps(again)

    # a real browser: the flow list shows the comment column with the account
    dom = chromium("--dump-dom", f"{web.ui}/?token={PASSWORD}")
    html = dom.stdout.decode(errors="replace")
    assert "a@example.com" in html and "attempt 1/3" in html, dom.stderr.decode()[-2000:]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, url in (
        ("flow-list.png", f"{web.ui}/?token={PASSWORD}"),
        ("streamed-flow.png", f"{web.ui}/?token={PASSWORD}#/flows/{stream_flow['id']}/response"),
    ):
        shot = SHOTS / name
        shot.unlink(missing_ok=True)
        chromium(f"--screenshot={shot}", url)
        assert shot.exists() and shot.stat().st_size > 10_000, name
