"""Writing an answer straight onto a flow's client connection, for the answers mitmproxy cannot
give itself (docs/mitmproxy.md "Native streams"): a stream that fails over after its first
attempt was refused or got no answer (mitmproxy cannot re-send a flow, and does not stream a
response an addon made), and the error event that ends a stream whose upstream failed after the
first byte (mitmproxy only aborts such a transfer).

HTTP/1.x only: the caller keeps HTTP/2 and HTTP/3 clients on the loopback streamer. The flow is
killed once its answer is written (mitmproxy then writes nothing more and closes the connection),
so every answer written here says `connection: close`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cliproxy.addons.limits import client_http_version
from cliproxy.addons.limits import client_writer
from mitmproxy import http
from mitmproxy.connection import ConnectionState
from mitmproxy.net.http.http1 import assemble_response
from mitmproxy.net.http.http1 import assemble_response_head

GONE_POLL = 0.2  # seconds between looks at whether the client is still there


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (an empty `data` would end the body: callers skip it)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class ClientWire:
    """The client connection of one flow, written directly."""

    def __init__(self, flow: http.HTTPFlow, writer: Any) -> None:
        self.flow = flow
        self.writer = writer
        self.http10 = client_http_version(flow) == "HTTP/1.0"

    @classmethod
    def of(cls, flow: http.HTTPFlow) -> ClientWire | None:
        """The wire of an HTTP/1.x client still connected, else None."""
        if flow.request.is_http2 or flow.request.is_http3:
            return None
        writer = client_writer(flow.client_conn)
        return cls(flow, writer) if writer is not None else None

    @property
    def closed(self) -> bool:
        """The client hung up (mitmproxy saw its EOF) or the socket is going."""
        return (
            not self.flow.client_conn.state & ConnectionState.CAN_READ or self.writer.is_closing()
        )

    async def gone(self) -> bool:
        """Completes (True) once the client has gone; cancel it when no longer needed."""
        while not self.closed:
            await asyncio.sleep(GONE_POLL)
        return True

    def head(self, response: http.Response) -> None:
        """Status line and headers of a body that follows in `data` (chunked, or up to the close
        for an HTTP/1.0 client, which has no chunks)."""
        headers = response.headers
        for name in ("content-length", "transfer-encoding", "connection"):
            headers.pop(name, None)
        headers["connection"] = "close"
        if not self.http10:
            headers["transfer-encoding"] = "chunked"
        response.http_version = "HTTP/1.0" if self.http10 else "HTTP/1.1"
        self.writer.write(assemble_response_head(response))

    def data(self, data: bytes) -> None:
        if data:
            self.writer.write(data if self.http10 else chunk(data))

    def end(self) -> None:
        if not self.http10:
            self.writer.write(LAST_CHUNK)

    def whole(self, response: http.Response) -> None:
        """A complete answer with its body."""
        response.headers["connection"] = "close"
        response.http_version = "HTTP/1.0" if self.http10 else "HTTP/1.1"
        self.writer.write(assemble_response(response))

    def waiting(self) -> int:
        """Bytes written but not yet taken by the client's socket."""
        transport = getattr(self.writer, "transport", None)
        return transport.get_write_buffer_size() if transport is not None else 0

    async def drain(self) -> None:
        await self.writer.drain()
