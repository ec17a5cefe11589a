"""addons/cliproxy.py as mitmproxy loads it (docs/mitmproxy.md "Loading the script"): mitmproxy
puts the script's folder first on sys.path and leaves it there; the entry script takes it out
before importing anything, so `cliproxy` is the installed package and addons/ shadows nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "addons" / "cliproxy.py"

PROBE = """
import importlib, os, sys
from mitmproxy.addons.script import load_script
module = load_script({entry!r})
assert module is not None, "the script did not load"
here = os.path.dirname({entry!r})
print("on-path", any(os.path.abspath(p or os.curdir) == here for p in sys.path))
sys.modules.pop("inspect", None)
print("inspect", importlib.import_module("inspect").__file__)
print("chain", [type(a).__name__ for a in module.addons])
"""


def test_the_entry_script_leaves_sys_path_clean_and_builds_the_chain(tmp_path: Path) -> None:
    # a fresh interpreter in another folder: nothing of this test run's sys.path helps
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(entry=str(ENTRY))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    lines = dict(line.split(" ", 1) for line in probe.stdout.splitlines())
    assert lines["on-path"] == "False"
    # the standard library's inspect, not the addons/ folder's (which once held an inspect.py)
    assert "/addons/" not in lines["inspect"] and lines["inspect"].endswith("inspect.py")
    assert "'Gateway'" in lines["chain"] and "'Streamer'" in lines["chain"]
