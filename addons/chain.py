"""The addon chain of one cliproxy process, in hook order."""

from __future__ import annotations

from cliproxy.addons.access import Access
from cliproxy.addons.endpoints import LocalEndpoints
from cliproxy.addons.flowlimit import FlowLimit
from cliproxy.addons.gateway import Gateway
from cliproxy.addons.limits import Limits
from cliproxy.addons.relay import Relay
from cliproxy.addons.reqlog import RequestLog
from cliproxy.addons.reqlog import RequestLogWriter
from cliproxy.addons.startup import Startup
from cliproxy.addons.state import State
from cliproxy.addons.upstream_proxy import UpstreamProxy


def build_chain(state: State | None = None) -> list[object]:
    """mitmproxy runs each hook through the chain in order, and each `request` hook leaves a flow
    that an earlier one answered alone: RequestLog copies the client's request before anything
    rewrites it, Access may refuse it, LocalEndpoints and Relay answer what needs no generation,
    the Gateway forwards the rest; RequestLogWriter sees the final answer."""
    state = state or State()
    return [
        Startup(state),
        Limits(state),  # before anything reads a body: it decodes compressed ones, bounded
        RequestLog(state),
        Access(state),
        LocalEndpoints(state),
        Relay(state),
        Gateway(state),
        UpstreamProxy(state),
        RequestLogWriter(state),
        FlowLimit(),
    ]
