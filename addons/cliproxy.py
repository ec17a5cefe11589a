"""The `mitmdump -s addons/cliproxy.py` entry point: builds the addon chain, nothing else."""

from __future__ import annotations

import os
import sys

# mitmproxy's script loader puts this file's folder first on sys.path and never takes it out
# (docs/mitmproxy.md, "Loading the script"). From that folder `cliproxy` would name this very file
# and its modules would shadow others, so the folder goes before anything is imported: the code
# is the installed `cliproxy` package (`pip install -e .`).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from cliproxy.addons.chain import build_chain  # noqa: E402

addons = build_chain()
