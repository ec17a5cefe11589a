"""Re-targeting a flow at its upstream, through `proxy-url` when it names an HTTP(S) proxy.

mitmproxy reaches an HTTP(S) upstream proxy through `server_conn.via`; the CONNECT's credentials
are added in `http_connect_upstream`, never through `upstream_auth`, which would overwrite the
injected bearer in reverse mode (docs/mitmproxy.md, "Upstream proxies").
"""

from __future__ import annotations

import base64
from urllib.parse import unquote
from urllib.parse import urlsplit

from cliproxy.addons.state import State
from mitmproxy import http
from mitmproxy.connection import Server


def http_proxy(proxy_url: str) -> tuple[str, tuple[str, int], str | None] | None:
    """(scheme, address, basic credentials) of an http(s) `proxy-url`, else None. Userinfo is
    percent-decoded, as httpx decodes it for the refreshes through the same URL."""
    if not proxy_url.startswith(("http://", "https://")):
        return None
    parts = urlsplit(proxy_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    creds = None
    if parts.username:
        raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        creds = "Basic " + base64.b64encode(raw).decode()
    return parts.scheme, (parts.hostname or "127.0.0.1", port), creds


def retarget(
    flow: http.HTTPFlow,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    proxy_url: str,
    method: str = "POST",
) -> None:
    """Point the flow at an upstream: URL, headers (nothing of the client's), body, and the
    configured proxy."""
    req = flow.request
    req.method = method
    req.headers = http.Headers(
        [(b"host", urlsplit(url).netloc.encode())]
        + [(k.encode(), v.encode()) for k, v in headers.items()]
    )
    req.url = url
    if content is not None:
        req.content = content
    via = http_proxy(proxy_url)
    if via is not None:
        scheme, address, _ = via
        if flow.server_conn.timestamp_start is not None:  # an open connection can't move
            flow.server_conn = Server(address=flow.server_conn.address)
        flow.server_conn.via = (scheme, address)  # type: ignore[assignment]


class UpstreamProxy:
    def __init__(self, state: State) -> None:
        self.state = state

    def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        """Credentials for the CONNECT to an upstream proxy."""
        via = http_proxy(self.state.settings.proxy_url)
        if via is not None and via[2]:
            flow.request.headers["proxy-authorization"] = via[2]
