"""The real thing: `mitmdump -s addons/cliproxy.py` as a subprocess, in front of the strict fakes.

Each proxy gets its own config.yaml and auth-dir in a temp folder, listens on a free loopback
port, and is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.fakes.codex import FakeCodex
from tests.fakes.codex import Tokens
from tests.fakes.google import FakeGoogle

ROOT = Path(__file__).resolve().parents[2]
MITMDUMP = str(Path(sys.executable).parent / "mitmdump")
PROJECT = "helpful-fox-abc123"
PROJECT_B = "proj-bravo-222"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gemini_auth(
    email: str, project: str, access: str, refresh: str, expires_in: timedelta, **extra: Any
) -> dict[str, Any]:
    expiry = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "gemini",
        "email": email,
        "project_id": project,
        "token": {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expiry": expiry,
            "client_id": "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
            "client_secret": "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",
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        **extra,
    }


@dataclass
class Proxy:
    base_url: str
    port: int
    config_path: Path
    auth_dir: Path
    process: subprocess.Popen
    log_path: Path
    stopped: bool = field(default=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        stop_process(self.process)


def start_proxy(
    tmp: Path,
    fake: FakeGoogle,
    *,
    config: dict[str, Any] | None = None,
    auth_files: dict[str, dict[str, Any]] | None = None,
    extra_args: list[str] | None = None,
    wait: bool = True,
    codex: FakeCodex | None = None,
) -> Proxy:
    tmp.mkdir(parents=True, exist_ok=True)
    auth_dir = tmp / "auth"
    auth_dir.mkdir(exist_ok=True)
    for name, content in (auth_files or {}).items():
        path = auth_dir / name
        path.write_text(json.dumps(content))
        path.chmod(0o600)
    port = free_port()
    cfg: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "auth-dir": str(auth_dir),
        "endpoints": {"gemini-cli": fake.base_url, "google-token": fake.token_url},
    }
    if codex is not None:
        cfg["endpoints"].update({"codex": codex.base_url, "openai-token": codex.token_url})
    cfg.update(config or {})
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    log_path = tmp / "mitmdump.log"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["CLIPROXY_CONFIG"] = str(config_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [MITMDUMP, "-s", str(ROOT / "addons" / "cliproxy.py"), *(extra_args or [])],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    proxy = Proxy(f"http://127.0.0.1:{port}", port, config_path, auth_dir, process, log_path)
    if wait:
        wait_ready(proxy)
    return proxy


def wait_ready(proxy: Proxy, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"mitmdump exited early:\n{proxy.log()}")
        try:
            httpx.get(proxy.base_url + "/healthz", timeout=1)
            return  # any HTTP answer (a 401 with api-keys set, too) means it is serving
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proxy.stop()
    raise RuntimeError(f"mitmdump did not come up:\n{proxy.log()}")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_account("ya29.valid-a", "1//refresh-a", PROJECT, email="a@example.com")
        yield server


@pytest.fixture(scope="module")
def codex() -> Iterator[FakeCodex]:
    """A strict fake Codex backend shared by a module's tests (a module may define its own)."""
    with FakeCodex() as server:
        yield server


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def two_accounts() -> dict[str, dict]:
    """Gemini CLI accounts a@example.com (PROJECT) and b@example.com (PROJECT_B); the fake Google
    must know b (`fake.add_account("ya29.valid-b", "1//refresh-b", PROJECT_B, …)`)."""
    return {
        "gemini-a.json": gemini_auth(
            "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
        ),
        "gemini-b.json": gemini_auth(
            "b@example.com", PROJECT_B, "ya29.valid-b", "1//refresh-b", timedelta(hours=1)
        ),
    }


def mixed_auth_files(tokens: Tokens, email: str) -> dict[str, dict]:
    """A Codex account (`tokens`, registered at the fake Codex as `email`) and the Gemini CLI
    account `a@example.com` the fake Google knows: a proxy that serves both providers."""
    return {
        f"codex-{email}.json": tokens.auth_file(),
        "gemini-a.json": gemini_auth(
            "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
        ),
    }


@pytest.fixture(scope="module")
def proxy(fake: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """One proxy with one valid Gemini account, for the SDK tests of a module."""
    p = start_proxy(
        tmp_path_factory.mktemp("proxy"),
        fake,
        config={"model-aliases": {"claude-sonnet-4-5": "gemini-2.5-pro"}},
        auth_files={
            "gemini-a@example.com-helpful-fox-abc123.json": gemini_auth(
                "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
            )
        },
    )
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def _clean_fakes(request: pytest.FixtureRequest) -> None:
    """Each test starts with the module's fake upstreams holding no queued reply or record."""
    for name in ("fake", "codex"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@contextmanager
def serving_both(
    tmp: Path, fake: FakeGoogle, codex: FakeCodex, tokens: Tokens, email: str, **kwargs: Any
) -> Iterator[Proxy]:
    """A proxy with a Codex account and a Gemini CLI account (`mixed_auth_files`)."""
    p = start_proxy(tmp, fake, codex=codex, auth_files=mixed_auth_files(tokens, email), **kwargs)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def oai(proxy: Proxy) -> openai.OpenAI:
    """The OpenAI SDK on the module's proxy."""
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-test", max_retries=0)


@pytest.fixture
def claude(proxy: Proxy) -> anthropic.Anthropic:
    """The Anthropic SDK on the module's proxy."""
    return anthropic.Anthropic(base_url=proxy.base_url, api_key="x", max_retries=0)


@pytest.fixture
def proxy_factory(fake: FakeGoogle, tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    started: list[Proxy] = []

    def factory(**kwargs: Any) -> Proxy:
        p = start_proxy(tmp_path / f"p{len(started)}", fake, **kwargs)
        started.append(p)
        return p

    yield factory
    for p in started:
        p.stop()


def generate_requests(fake: FakeGoogle) -> list[Any]:
    """The generate calls the fake received (what the proxy really sent upstream)."""
    return [r for r in fake.requests if "generateContent" in r.path or "GenerateContent" in r.path]
