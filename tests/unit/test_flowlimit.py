from __future__ import annotations

from cliproxy.addons.flowlimit import FlowLimit
from mitmproxy.addons.view import View
from mitmproxy.test import taddons
from mitmproxy.test import tflow


def test_mitmweb_keeps_only_the_last_finished_flows() -> None:
    view, limit = View(), FlowLimit()
    with taddons.context(view, limit) as tctx:
        tctx.configure(limit, cliproxy_max_flows=3)
        flows = [tflow.tflow(resp=True) for _ in range(5)]
        for f in flows:
            f.live = False
            view.add([f])
            limit.response(f)
        assert list(view) == flows[2:]
        # a live flow is never removed (removing it from the view would kill it)
        live = tflow.tflow(resp=True)
        live.live = True
        view.add([live])
        limit.response(live)
        assert live in list(view) and len(view) == 3


def test_without_a_view_nothing_is_tracked() -> None:
    limit = FlowLimit()
    with taddons.context(limit) as tctx:
        tctx.configure(limit, cliproxy_max_flows=1)
        for _ in range(3):
            limit.response(tflow.tflow(resp=True))
        assert len(limit.finished) == 0
