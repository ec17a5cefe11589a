"""First-run friction (issue 12): a mistyped config path and a busy port say what to change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import MITMDUMP
from tests.integration.conftest import ROOT
from tests.integration.conftest import free_port

CLIPROXY = str(Path(sys.executable).parent / "cliproxy")


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "CLIPROXY_CONFIG"}
    return subprocess.run(
        args, cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_cli_refuses_a_config_path_that_does_not_exist(tmp_path: Path) -> None:
    for command in (["accounts"], ["usage"], ["login", "gemini"], ["import", "codex"]):
        r = run([CLIPROXY, *command, "--config", "typo.yaml"], tmp_path)
        assert r.returncode == 2 and "typo.yaml: no such config file" in r.stderr, (command, r)


def test_proxy_refuses_a_named_config_that_does_not_exist(tmp_path: Path) -> None:
    addon = str(ROOT / "addons" / "cliproxy.py")
    r = run([MITMDUMP, "-s", addon, "--set", "cliproxy_config=typo.yaml"], tmp_path)
    assert r.returncode != 0 and "typo.yaml: no such config file" in r.stdout + r.stderr
    r = run([MITMDUMP, "-s", addon], tmp_path, {"CLIPROXY_CONFIG": str(tmp_path / "nope.yaml")})
    assert r.returncode != 0 and "nope.yaml: no such config file" in r.stdout + r.stderr


def test_busy_port_names_the_key_to_change(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "config.yaml").write_text(f"host: 127.0.0.1\nport: {port}\nauth-dir: {tmp_path}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        r = run([MITMDUMP, "-s", str(ROOT / "addons" / "cliproxy.py")], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert f"port {port} is already in use" in out and "change `port` in" in out


def test_import_codex_warns_about_the_shared_refresh_token(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(f"auth-dir: {tmp_path / 'auth'}\n")
    r = run([CLIPROXY, "import", "codex", str(tmp_path / "missing.json")], tmp_path)
    assert "refresh" in r.stderr and "cliproxy login codex" in r.stderr
