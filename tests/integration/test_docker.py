"""The Docker image for real (README "Running it for real"): built from the repo's Dockerfile on a
debian:trixie-slim
made here with debootstrap (Docker Hub is unreachable from CI), run with --network host in front
of the strict fake, one request through it, then the container and image are removed. The base
image is kept: making it costs minutes and it is the same every time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import ROOT
from tests.integration.conftest import free_port
from tests.integration.conftest import gemini_auth

BASE = "debian:trixie-slim"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def sh(*args: str, timeout: float = 1800, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, timeout=timeout, capture_output=True, **kw)  # type: ignore[call-overload]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (never a hard-coded host)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    for text in texts:
        for url in re.findall(r"(?:^URIs:|^deb)\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M):
            if "security" not in url and url.rstrip("/").endswith("/debian"):
                return url
    raise RuntimeError("no Debian mirror in /etc/apt/sources.list(.d)")


def ensure_base() -> None:
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode == 0:
        return
    with tempfile.TemporaryDirectory() as root:
        sh("debootstrap", "--variant=minbase", "trixie", root, debian_mirror())
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        try:
            sh("docker", "import", "-", BASE, stdin=tar.stdout)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait(timeout=60)


@pytest.fixture(scope="module")
def docker_ready() -> None:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise RuntimeError("dockerd is not running (`.ci/run` starts it)")


def test_image_serves_a_request(docker_ready: None, fake: FakeGoogle, tmp_path: Path) -> None:
    ensure_base()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for name in ("Dockerfile", "pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, ctx / name)
    for folder in ("addons", "translators", "scripts"):
        shutil.copytree(ROOT / folder, ctx / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (ctx / "certs").mkdir()
    shutil.copy(HOST_CA, ctx / "certs" / "host-ca.crt")  # this machine's TLS-intercepting CA
    tag = f"cliproxy-test:{uuid.uuid4().hex[:8]}"
    name = f"cliproxy-test-{uuid.uuid4().hex[:8]}"
    pip_env = [f"--build-arg={k}={os.environ[k]}" for k in ("PIP_INDEX_URL",) if k in os.environ]
    auth = tmp_path / "auth"
    auth.mkdir(mode=0o700)
    (auth / "gemini-a.json").write_text(json.dumps(gemini_auth(
        "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
    )))  # fmt: skip
    port = free_port()
    config = tmp_path / "config.yaml"
    endpoints = {"gemini-cli": fake.base_url, "google-token": fake.token_url}
    config.write_text(yaml.safe_dump({"host": "127.0.0.1", "port": port, "endpoints": endpoints}))
    try:
        sh("docker", "build", "--network", "host", "-t", tag, *pip_env, str(ctx))
        # the logins' entry point is there too
        out = sh("docker", "run", "--rm", tag, "cliproxy", "login", "gemini", "--help").stdout
        assert b"--no-browser" in out
        volumes = ["-v", f"{config}:/app/config.yaml", "-v", f"{auth}:/root/.cli-proxy-api"]
        sh("docker", "run", "-d", "--name", name, "--network", "host", *volumes, tag)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    logs = subprocess.run(["docker", "logs", name], capture_output=True)
                    raise AssertionError(logs.stdout + logs.stderr) from None
                time.sleep(0.3)
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "from docker"}]
        )
        assert reply.choices[0].message.content == "Echo: from docker"
        logs = subprocess.run(["docker", "logs", name], capture_output=True)
        assert b"POST /v1/chat/completions" in logs.stdout + logs.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
