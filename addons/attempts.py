"""Upstream attempts made with httpx (the loopback streamer, buffered retries), each shown in
mitmweb as a flow of its own with the account that made it (docs/mitmproxy.md, "The loopback
streamer").

mitmproxy never sees these requests, so a flow is built for each and added to mitmweb's view;
mitmdump has no view and records nothing. Stored flows never hold a usable secret: the
credentials are masked to their last four characters (the wire carried the real ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from cliproxy.addons.masking import mask_request
from cliproxy.addons.masking import masked_headers
from cliproxy.addons.webview import ATTEMPT_ACCOUNT
from cliproxy.addons.webview import EXCHANGE
from cliproxy.addons.webview import attempt_line
from mitmproxy import connection
from mitmproxy import ctx
from mitmproxy import http

if TYPE_CHECKING:
    from cliproxy.addons.exchange import Exchange
    from cliproxy.addons.upstreams.outbound import Outbound

DEFAULT_BODY_MAX = 1024 * 1024  # cliproxy_flow_body_max's default (addons/webview.py)
# flow.metadata: the client's own request (path, body, headers) of a flow sent natively, shown
# again in mitmweb when the failover answers it (the flow's request became the first attempt's)
CLIENT_REQUEST = "cliproxy_client_request"


def _view() -> Any:
    """mitmweb's flow view, or None (mitmdump, tests without a master)."""
    try:
        return ctx.master.addons.get("view")
    except AttributeError:
        return None


def _body_max() -> int:
    try:
        return int(ctx.options.cliproxy_flow_body_max)
    except (AttributeError, KeyError):
        return DEFAULT_BODY_MAX


def _show(view: Any, flow: http.HTTPFlow, ex: Exchange, number: int) -> None:
    """An attempt's flow into mitmweb's view, with its account; Replay of it re-sends it with a
    fresh token of that account (addons/webview.py)."""
    flow.comment = attempt_line(ex, number, ex.max_attempts)
    flow.metadata[EXCHANGE] = ex
    flow.metadata[ATTEMPT_ACCOUNT] = ex.account
    flow.live = False
    view.add([flow])
    flowlimit = ctx.master.addons.get("flowlimit")
    if flowlimit is not None:
        flowlimit.keep(flow)


@dataclass
class AttemptRecord:
    """One upstream attempt as mitmweb shows it; a no-op without mitmweb."""

    flow: http.HTTPFlow | None
    view: Any
    limit: int = DEFAULT_BODY_MAX
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    @classmethod
    def start(cls, ex: Exchange, out: Outbound) -> AttemptRecord:
        view = _view()
        if view is None:
            return cls(None, None)
        parts = urlsplit(out.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        now = time.time()
        client = connection.Client(
            peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0), timestamp_start=now
        )
        flow = http.HTTPFlow(client, connection.Server(address=(parts.hostname or "", port)))
        flow.request = http.Request.make("POST", out.url, out.content, masked_headers(out.headers))
        flow.request.timestamp_start = flow.request.timestamp_end = now
        _show(view, flow, ex, ex.attempts)
        return cls(flow, view, _body_max())

    def answered(self, response: Any) -> None:
        """The upstream's status and headers (its body follows in `body`)."""
        if self.flow is None:
            return
        self.flow.response = http.Response.make(
            response.status_code,
            b"",
            list(response.headers.raw),  # httpx: (bytes, bytes) pairs
        )
        self.flow.response.timestamp_start = time.time()
        self.view.update([self.flow])

    def body(self, chunk: bytes) -> None:
        """A streamed chunk, kept for display up to `cliproxy_flow_body_max` bytes."""
        if self.flow is None or self.size >= self.limit:
            return
        kept = chunk[: self.limit - self.size]
        self.chunks.append(kept)
        self.size += len(kept)

    def done(self) -> None:
        if self.flow is None or self.flow.response is None:
            return
        self.flow.response.content = b"".join(self.chunks)
        self.flow.response.timestamp_end = time.time()
        self.view.update([self.flow])

    def interrupted(self, reason: str) -> None:
        if self.flow is None:
            return
        self.done()
        self.flow.comment += f" · interrupted: {reason}"
        self.view.update([self.flow])

    def finish(self, status: int, content: bytes, headers: dict[str, str]) -> None:
        """A refused attempt (or one that got no answer) with its whole body."""
        if self.flow is None:
            return
        self.flow.response = http.Response.make(status, content[: self.limit], headers)
        self.flow.response.timestamp_start = self.flow.response.timestamp_end = time.time()
        self.view.update([self.flow])


def remember_client_request(flow: http.HTTPFlow) -> None:
    """Before a flow is re-targeted at the upstream (it becomes the first attempt): the client's
    own request, to show again should the failover answer it (`separate_first_attempt`)."""
    req = flow.request
    flow.metadata[CLIENT_REQUEST] = (req.path, req.raw_content, req.headers)


def separate_first_attempt(flow: http.HTTPFlow, ex: Exchange) -> None:
    """The failover answers a flow whose own upstream call (mitmproxy's, the first attempt) was
    refused or got no answer: that attempt becomes a flow of its own (its account, its refusal
    or error), and the flow shows the client's request again, with the final answer to come.
    A no-op without mitmweb."""
    view = _view()
    saved = flow.metadata.get(CLIENT_REQUEST)
    if view is None or saved is None:
        return
    attempt = http.HTTPFlow(flow.client_conn, flow.server_conn)
    attempt.request = flow.request.copy()
    mask_request(attempt.request)
    if flow.response is not None:
        attempt.response = flow.response.copy()
    attempt.error = flow.error
    _show(view, attempt, ex, len(ex.history))
    path, content, headers = saved
    req = flow.request
    req.headers = headers
    sock = flow.client_conn.sockname
    if sock:
        req.scheme, req.host, req.port = "http", str(sock[0]), int(sock[1])
    req.path = path
    req.raw_content = content
