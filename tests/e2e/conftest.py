"""End-to-end: the real Claude Code, Codex CLI and Gemini CLI
(docs/upstreams.md "Driving real clients offline") through the proxy.

The proxy is the real `mitmdump -s addons/cliproxy.py` subprocess of the integration tests, in
front of the strict fakes (one Gemini CLI account, one Codex account). The pinned clients are
installed once per machine into a cache dir by install_clients.sh; a failed install fails the
tests with npm's output (this project allows no skips). Every client run gets an `env -i` style
environment, a throwaway HOME, stdin from /dev/null and a 120 s limit after which its whole
process group is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.codex import FakeCodex
from tests.fakes.codex import Tokens
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import start_proxy

INSTALL_SCRIPT = Path(__file__).with_name("install_clients.sh")
INSTALL_TIMEOUT = 1200  # a cold npm install of three CLIs with native binaries
# docs/upstreams.md "Driving real clients offline": some clients retry for minutes
CLIENT_TIMEOUT = 120
GEMINI_TOKEN = "ya29.e2e-valid"
CODEX_ACCOUNT = "acct-e2e-1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs a real client (Claude Code, Codex CLI, Gemini CLI) via the proxy"
    )


@dataclass
class Run:
    """One finished client run."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self) -> str:
        """What a failed assertion should show: the command, rc, and both streams."""
        return (
            f"$ {' '.join(self.argv)}\nrc={self.returncode} after {self.seconds:.1f}s\n"
            f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"
        )

    def json(self) -> dict[str, Any]:
        """stdout as one JSON document (Claude Code / Gemini CLI --output-format json)."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            pytest.fail(f"client stdout is not one JSON document\n{self.report()}")

    def jsonl(self) -> list[dict[str, Any]]:
        """stdout as JSON lines (Codex --json); non-JSON lines fail the test."""
        events = []
        for line in self.stdout.splitlines():
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                pytest.fail(f"client stdout has a non-JSON line {line!r}\n{self.report()}")
        return events


@dataclass
class Clients:
    """The installed pinned clients."""

    root: Path

    def bin(self, name: str) -> str:
        return str(self.root / "node_modules" / ".bin" / name)


@pytest.fixture(scope="session")
def clients() -> Clients:
    """Install (or reuse) the pinned clients; any failure fails the test with npm's output."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"installing the clients took over {INSTALL_TIMEOUT}s\n{e.stdout}\n{e.stderr}")
    if done.returncode != 0:
        pytest.fail(
            f"installing the clients failed (rc {done.returncode}) after "
            f"{time.monotonic() - started:.0f}s\n--- stdout ---\n{done.stdout}\n"
            f"--- stderr ---\n{done.stderr}"
        )
    return Clients(Path(done.stdout.strip().splitlines()[-1]))


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """`env -i` plus what docs/upstreams.md "Driving real clients offline" asks for: nothing of the
    caller's environment leaks."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (Node >= 20 is needed for the e2e tests)")
    path = os.pathsep.join(dict.fromkeys([str(Path(node).parent), "/usr/bin", "/bin"]))
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": path,
        "HOME": str(home),
        "TERM": "dumb",
        "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **extra,
    }


def start_client(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """A client process with its output piped. A session of its own: the npm shims spawn the
    native binaries, so killing the shim's pid alone would leave them running."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_client(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = CLIENT_TIMEOUT
) -> Run:
    """Run a client to completion; on timeout kill its whole process group and fail."""
    started = time.monotonic()
    proc = start_client(argv, env, cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        run = Run(argv, -9, out, err, time.monotonic() - started)
        pytest.fail(f"client did not finish within {timeout}s (killed)\n{run.report()}")
    return Run(argv, proc.returncode, out, err, time.monotonic() - started)


@pytest.fixture(scope="session")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_account(GEMINI_TOKEN, "1//e2e-refresh", PROJECT, email="e2e@example.com")
        yield server


@pytest.fixture(scope="session")
def codex() -> Iterator[FakeCodex]:
    with FakeCodex() as server:
        yield server


@pytest.fixture(scope="session")
def codex_tokens(codex: FakeCodex) -> Tokens:
    return codex.add_account(CODEX_ACCOUNT, email="c-e2e@example.com")


@pytest.fixture(scope="session")
def proxy(
    google: FakeGoogle,
    codex: FakeCodex,
    codex_tokens: Tokens,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proxy]:
    """One proxy with one Gemini CLI account and one Codex account, for every e2e test."""
    p = start_proxy(
        tmp_path_factory.mktemp("e2e-proxy"),
        google,
        codex=codex,
        auth_files={
            "gemini-e2e@example.com-helpful-fox-abc123.json": gemini_auth(
                "e2e@example.com", PROJECT, GEMINI_TOKEN, "1//e2e-refresh", timedelta(hours=1)
            ),
            "codex-c-e2e@example.com.json": codex_tokens.auth_file(),
        },
    )
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def _clean_fakes(request: pytest.FixtureRequest) -> None:
    """Each test starts with empty request logs and reply queues on the fakes it uses."""
    for name in ("google", "codex"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory for the client (no repo files, no CLAUDE.md / AGENTS.md)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def upstream_summary(google: FakeGoogle | None = None, codex: FakeCodex | None = None) -> str:
    """Every request the fakes saw, with status: the context a failed count assertion needs."""
    lines = []
    for rec in google.requests if google else []:
        lines.append(f"google {rec.method} {rec.path} {rec.query} -> {rec.status}")
    for rec in codex.requests if codex else []:
        lines.append(f"codex {rec.method} {rec.path} -> {rec.status}")
    return "\n".join(lines) or "(no upstream requests)"


def gemini_cli(
    clients: Clients, prompt: str, home: Path, cwd: Path, auth_type: str, **env: str
) -> Run:
    """Gemini CLI headless (docs/upstreams.md "Gemini CLI"): settings with `auth_type`, no
    telemetry, no updates, no folder-trust prompt; `-m` skips the router call (one generation
    request)."""
    settings = {
        "security": {"auth": {"selectedType": auth_type}, "folderTrust": {"enabled": False}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "ide": {"enabled": False},
    }
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(settings))
    argv = [clients.bin("gemini"), "-p", prompt, "--output-format", "json"]
    argv += ["-m", "gemini-2.5-flash"]
    return run_client(argv, client_env(home, GEMINI_CLI_NO_RELAUNCH="true", **env), cwd)
