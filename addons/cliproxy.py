"""The `mitmdump -s addons/cliproxy.py` entry point: builds the addon chain, nothing else."""

from __future__ import annotations

import sys
from pathlib import Path

# mitmproxy loads this file as a script with only addons/ on sys.path; the project root must be
# importable so that `addons.*` and `translators.*` resolve to this checkout.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from addons.gateway import Gateway  # noqa: E402
from addons.inspect import FlowLimit  # noqa: E402
from addons.reqlog import RequestLog  # noqa: E402
from addons.reqlog import RequestLogWriter  # noqa: E402
from addons.startup import Startup  # noqa: E402
from addons.state import State  # noqa: E402

_state = State()

# mitmproxy runs each hook through the chain in order: RequestLog sees the client's request and
# the raw upstream answer before the Gateway rewrites them, RequestLogWriter the final answer.
addons = [
    Startup(_state),
    RequestLog(_state),
    Gateway(_state),
    RequestLogWriter(_state),
    FlowLimit(),
]
