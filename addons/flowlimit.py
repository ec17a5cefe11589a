"""mitmweb: keep memory bounded by pruning finished flows beyond `cliproxy_max_flows`.

mitmweb's view keeps every flow forever (docs/mitmproxy.md "Flow store"); mitmdump has no view and
is untouched.
"""

from __future__ import annotations

from collections import deque

from mitmproxy import ctx
from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.addonmanager import Loader


class FlowLimit:
    def __init__(self) -> None:
        self.finished: deque[mflow.Flow] = deque()

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "cliproxy_max_flows",
            int,
            1000,
            """
            mitmweb only: how many finished flows to keep for inspection.
            """,
        )

    def response(self, flow: http.HTTPFlow) -> None:
        self.keep(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.keep(flow)

    def keep(self, flow: mflow.Flow) -> None:
        """A finished flow, the oldest of which go once there are more than the limit (flows
        added to the view by hand, such as upstream attempts, come here too)."""
        view = ctx.master.addons.get("view")
        if view is None:
            return
        self.finished.append(flow)
        limit = max(1, ctx.options.cliproxy_max_flows)
        if len(self.finished) <= limit:
            return
        old = []
        while len(self.finished) > limit:
            old.append(self.finished.popleft())
        # never remove a live flow: view.remove kills it
        removable = [f for f in old if not f.live]
        self.finished.extendleft(reversed([f for f in old if f.live]))
        if removable:
            view.remove(removable)
