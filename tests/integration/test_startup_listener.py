"""Start-up serves nothing but the configured listener (issue 9), checked in a private network
namespace (`unshare -n`, so the check owns every socket it sees) from the first instant:

- `cliproxy serve` never listens on :8080 (the mode is on mitmdump's command line);
- bare `mitmdump -s addons/cliproxy.py` and `mitmweb -s …` hold the default :8080 server back in
  `load()` (docs/mitmproxy.md "Start-up and the :8080 server": the script's load is always queued
  ahead of the bind), also with both cores busy; with `debug: true` mitmproxy logs every server it
  starts, so the log proves it as well as the watch. Should mitmproxy's start-up order ever
  change, the `client_connected` guard still refuses every client of another server
  (tests/unit/test_limits.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import MITMDUMP

WATCH = textwrap.dedent(
    """
    import json, os, signal, socket, subprocess, sys, time
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    command, config, log = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]

    def listening(port):
        hexport = ":%04X" % port
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[1].endswith(hexport) and cols[3] == "0A":  # 0A = LISTEN
                        return True
        return False

    env = dict(os.environ, CLIPROXY_CONFIG=config)
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seen_8080, served, looks, relayed, probes = False, False, 0, False, 0

    def probe_8080():
        # a forward-proxy request to :8080; any HTTP answer means it was served
        global relayed
        try:
            with socket.create_connection(("127.0.0.1", 8080), timeout=0.5) as s:
                s.sendall(b"GET http://127.0.0.1:8317/healthz HTTP/1.1\\r\\nhost: 127.0.0.1:8317"
                          b"\\r\\nconnection: close\\r\\n\\r\\n")
                relayed = relayed or s.recv(20).startswith(b"HTTP/")
        except OSError:
            pass

    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            looks += 1
            if listening(8080):
                seen_8080 = True
                probes += 1
                probe_8080()
            if not served and listening(8317):
                with socket.create_connection(("127.0.0.1", 8317), timeout=2) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\\r\\nhost: x\\r\\n"
                              b"connection: close\\r\\n\\r\\n")
                    served = s.recv(100).startswith(b"HTTP/1.1 200")
                settle = time.monotonic() + 1.0  # keep watching a while after it serves
            if served and time.monotonic() > settle:
                break
            if proc.poll() is not None:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(json.dumps({"seen_8080": seen_8080, "served": served, "looks": looks,
                      "relayed": relayed, "probes": probes}))
    """
)


def watch(tmp_path: Path, command: list[str], *, debug: bool = False) -> tuple[dict, str]:
    auth = tmp_path / "auth"
    auth.mkdir()
    config = tmp_path / "config.yaml"
    settings = {"auth-dir": str(auth), "port": 8317, "debug": debug}  # host "": all
    config.write_text(yaml.safe_dump(settings))
    watcher = tmp_path / "watch.py"
    watcher.write_text(WATCH)
    log = tmp_path / "mitmdump.log"
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(watcher), json.dumps(command), str(config),
         str(log)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    text = log.read_text(errors="replace")
    assert result["served"], text
    assert result["looks"] > 50  # watched closely, from before mitmproxy could bind anything
    return result, text


def test_cliproxy_serve_never_listens_on_8080(tmp_path: Path) -> None:
    cliproxy = str(Path(MITMDUMP).parent / "cliproxy")
    result, text = watch(tmp_path, [cliproxy, "serve", "--config", str(tmp_path / "config.yaml")])
    assert not result["seen_8080"], text
    assert "8080" not in text


@contextmanager
def busy_cores(count: int = 2) -> Iterator[None]:
    """Both cores spinning, the condition under which a start-up race would show: the resolver
    thread and the event loop then compete for the CPU."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + 60\n"
                          "while time.monotonic() < end: pass"])
        for _ in range(count)
    ]  # fmt: skip
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.mark.parametrize("round_", range(3))
def test_bare_mitmdump_never_listens_on_8080_on_busy_cores(tmp_path: Path, round_: int) -> None:
    mitmdump = str(Path(MITMDUMP))
    entry = str(Path(__file__).parents[2] / "addons" / "cliproxy.py")
    with busy_cores():
        result, text = watch(tmp_path, [mitmdump, "-s", entry], debug=True)
    assert not result["seen_8080"], text
    assert not result["relayed"], text
    # with `debug: true` mitmproxy logs every server it starts: only ours is in the log
    assert "listening at *:8317" in text, text
    assert "8080" not in text, text


def test_bare_mitmweb_never_listens_on_8080(tmp_path: Path) -> None:
    mitmweb = str(Path(MITMDUMP).parent / "mitmweb")
    entry = str(Path(__file__).parents[2] / "addons" / "cliproxy.py")
    with busy_cores():
        result, text = watch(
            tmp_path, [mitmweb, "--set", "web_open_browser=false", "-s", entry], debug=True
        )
    assert not result["seen_8080"], text
    assert "listening at *:8317" in text, text
    assert "8080" not in text, text
