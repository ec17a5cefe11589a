"""Pointing a flow at its upstream (the native path: no `proxy-url`, not a stream).

With `proxy-url` set, every upstream call goes through the loopback streamer instead
(addons/streamer.py), whose httpx client speaks HTTP, HTTPS and SOCKS proxies alike.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mitmproxy import http


def retarget(
    flow: http.HTTPFlow,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    method: str = "POST",
) -> None:
    """Point the flow at an upstream: URL, headers (nothing of the client's), body."""
    req = flow.request
    req.method = method
    req.headers = http.Headers(
        [(b"host", urlsplit(url).netloc.encode())]
        + [(k.encode(), v.encode()) for k, v in headers.items()]
    )
    req.url = url
    if content is not None:
        req.content = content


def masked_proxy(proxy_url: str) -> str:
    """`proxy-url` fit for a message: scheme, host and port, never the credentials."""
    parts = urlsplit(proxy_url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"
