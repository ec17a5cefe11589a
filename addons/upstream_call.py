"""Upstream calls the proxy makes itself with httpx (the loopback streamer, buffered retries,
relayed side calls): their timeouts, reads bounded like every body a peer controls, and the
refusal written for an attempt that got no answer."""

from __future__ import annotations

import json

import httpx
from cliproxy.addons.settings import Settings

# flow.metadata: the flow is served by the loopback streamer, whose httpx calls enforce the
# upstream timeouts themselves (and turn them into failover or an error event)
VIA_STREAMER = "cliproxy_via_streamer"
ERROR_BODY_MAX = 1 << 20  # of a refusal only the message matters: the rest is dropped


class TooLarge(Exception):
    """An upstream answer over `max-body-size`."""


def timeout(settings: Settings) -> httpx.Timeout:
    """`timeouts.upstream-connect` to connect, `timeouts.upstream-idle` between bytes."""
    t = settings.timeouts
    return httpx.Timeout(t.upstream_idle, connect=t.upstream_connect, pool=t.upstream_connect)


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The whole (decoded) body, or TooLarge past `limit` bytes without reading further."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upstream answer is over {limit} bytes (max-body-size)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_refusal(response: httpx.Response) -> bytes:
    """A refusal's body, cut at ERROR_BODY_MAX (a huge error page costs nothing)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: ERROR_BODY_MAX - size])
        size += len(chunks[-1])
        if size >= ERROR_BODY_MAX:
            break
    return b"".join(chunks)


def no_answer_body(status: int, message: str) -> bytes:
    """What the proxy writes for an attempt that got no answer, in the shape both upstream error
    readers parse (`{"error": {"code", "message"}}`)."""
    return json.dumps({"error": {"code": status, "message": message}}).encode()


def no_answer_reason(title: str, error: httpx.HTTPError, settings: Settings) -> tuple[int, str]:
    """Status and message for an attempt to `title` that got no answer: 502 when it could not
    be reached (within `timeouts.upstream-connect`), 504 when it sent nothing for
    `timeouts.upstream-idle`."""
    kind = type(error).__name__
    if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
        seconds = settings.timeouts.upstream_connect
        return 502, f"{title} could not be reached within {seconds:g} s ({kind})"
    if isinstance(error, httpx.TimeoutException):
        return 504, f"{title} sent nothing for {settings.timeouts.upstream_idle:g} s"
    return 502, f"{title} could not be reached ({kind}: {error})"
