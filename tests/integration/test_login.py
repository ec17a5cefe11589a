"""`cliproxy login` as a real process: `--no-browser` prints the URL and waits on the callback
port, a scripted browser completes the sign-in against FakeGoogle, the proxy then serves with the
new account; Ctrl-C (SIGINT) while waiting ends the login cleanly with no file written."""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import yaml

from tests.fakes.google import FakeGoogle
from tests.integration.conftest import ROOT
from tests.integration.conftest import free_port
from tests.integration.conftest import start_proxy
from tests.unit.test_login_oauth import query_of

PROJECT = "login-proj-123"
EMAIL = "fresh@example.com"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


class Login:
    """`python -m scripts.cli login ...` with its stdout read line by line."""

    def __init__(self, tmp: Path, fake: FakeGoogle, *args: str) -> None:
        self.auth_dir = tmp / "auth"
        self.port = free_port()
        config = tmp / "login.yaml"
        config.write_text(yaml.safe_dump({
            "auth-dir": str(self.auth_dir),
            "endpoints": {
                "gemini-cli": fake.base_url, "google-token": fake.token_url,
                "google-userinfo": fake.base_url + "/oauth2/v1/userinfo",
                "google-authorize": fake.base_url + "/o/oauth2/auth",
            },
        }))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cliproxy.cli.cli", *args, "--no-browser",
             "--config", str(config), "--callback-port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def url(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if match := re.search(r"https?://\S+\?\S+", line):
                return match.group(0)
        self.process.kill()
        raise AssertionError("the login printed no authorization URL")

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        assert self.process.stderr is not None
        return code, self.process.stderr.read()

    def output(self) -> str:
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return "".join(out)


def test_login_then_serve(google: FakeGoogle, tmp_path: Path) -> None:
    google.onboarding = "new-user"
    login = Login(tmp_path, google, "login", "gemini")
    url = login.url()
    q = query_of(url)
    assert q["redirect_uri"] == f"http://localhost:{login.port}/oauth2callback"
    code = "4/0A" + secrets.token_urlsafe(8)
    google.add_auth_code(code, "ya29.fresh", "1//fresh", PROJECT, email=EMAIL,
                         redirect_uri=q["redirect_uri"],
                         code_challenge=q["code_challenge"])  # fmt: skip
    page = httpx.get(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")
    assert page.status_code == 200
    status, err = login.finish()
    assert (status, err) == (0, "")
    name = f"gemini-{EMAIL}-{PROJECT}.json"
    assert sorted(p.name for p in login.auth_dir.iterdir()) == [name]
    assert (login.auth_dir / name).stat().st_mode & 0o777 == 0o600
    assert f"Logged in: gemini {EMAIL}, project {PROJECT} (free-tier)" in login.output()

    # the proxy serves with the account the login wrote
    proxy = start_proxy(tmp_path, google)
    try:
        resp = httpx.post(
            proxy.base_url + "/v1/chat/completions",
            json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        [generate] = [r for r in google.requests if r.rpc == "generateContent"]
        assert generate.headers["authorization"] == "Bearer ya29.fresh"
        assert generate.body["project"] == PROJECT
    finally:
        proxy.stop()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_while_waiting(google: FakeGoogle, tmp_path: Path) -> None:
    login = Login(tmp_path, google, "--login")
    login.url()
    login.process.send_signal(signal.SIGINT)
    status, err = login.finish()
    assert status == 130
    assert err.strip() == "cliproxy login gemini: interrupted; nothing was saved"
    assert not login.auth_dir.exists() or list(login.auth_dir.iterdir()) == []
    # the callback port is free again
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{login.port}/oauth2callback", timeout=2)
