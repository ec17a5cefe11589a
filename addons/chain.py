"""The addon chain of one cliproxy process, in hook order."""

from __future__ import annotations

from cliproxy.addons.flowlimit import FlowLimit
from cliproxy.addons.gateway import Gateway
from cliproxy.addons.reqlog import RequestLog
from cliproxy.addons.reqlog import RequestLogWriter
from cliproxy.addons.startup import Startup
from cliproxy.addons.state import State


def build_chain() -> list[object]:
    """mitmproxy runs each hook through the chain in order: RequestLog sees the client's request
    and the raw upstream answer before the Gateway rewrites them, RequestLogWriter the final
    answer."""
    state = State()
    return [
        Startup(state),
        RequestLog(state),
        Gateway(state),
        RequestLogWriter(state),
        FlowLimit(),
    ]
