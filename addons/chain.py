"""The addon chain of one cliproxy process, in hook order."""

from __future__ import annotations

from cliproxy.addons.access import Access
from cliproxy.addons.endpoints import LocalEndpoints
from cliproxy.addons.flowlimit import FlowLimit
from cliproxy.addons.gateway import Gateway
from cliproxy.addons.limits import Limits
from cliproxy.addons.observe import Observe
from cliproxy.addons.observe import ObserveEndpoints
from cliproxy.addons.observe import Telemetry
from cliproxy.addons.relay import Relay
from cliproxy.addons.reqlog import RequestLog
from cliproxy.addons.reqlog import RequestLogWriter
from cliproxy.addons.startup import Startup
from cliproxy.addons.state import State
from cliproxy.addons.webview import WebView


def build_chain(state: State | None = None) -> list[object]:
    """mitmproxy runs each hook through the chain in order, and each `request` hook leaves a flow
    that an earlier one answered alone: RequestLog copies the client's request before anything
    rewrites it, Access may refuse it, LocalEndpoints and Relay answer what needs no generation,
    the Gateway forwards the rest; Observe accounts for the final answer (access log, metrics,
    usage) before RequestLogWriter writes it."""
    state = state or State()
    gateway = Gateway(state)
    telemetry = Telemetry(state)
    return [
        Startup(state),
        Limits(state),  # before anything reads a body: it decodes compressed ones, bounded
        RequestLog(state),
        Access(state),
        LocalEndpoints(state),
        ObserveEndpoints(telemetry),
        Relay(state, gateway.streamer),
        gateway,
        gateway.streamer,
        Observe(telemetry),
        RequestLogWriter(state),
        WebView(state),
        FlowLimit(),
    ]
