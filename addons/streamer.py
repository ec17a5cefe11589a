"""The loopback streamer: upstream calls that mitmproxy alone cannot make well, made with httpx
and streamed back through mitmproxy (docs/mitmproxy.md, "The loopback streamer").

mitmproxy has no SOCKS upstream, so with `proxy-url` set the gateway points every flow at this
in-process HTTP/1.1 server instead of the upstream (so do HTTP/2 and HTTP/3 clients' streams,
whose connection cannot be written around mitmproxy). The server performs every attempt with
httpx (through `proxy-url`, SOCKS included, with `timeouts.upstream-connect` / `upstream-idle`),
fails over before the first byte exactly as the native path does (addons/failover.py Recovery),
and then streams the upstream's bytes to mitmproxy as they arrive; mitmproxy translates them with
the usual stream callable. An upstream that fails after the first byte gets the upstream
dialect's own failure frame, which every translator turns into an error event in the client's
format. When the client goes, mitmproxy closes this connection and the upstream request is
cancelled.

The relay (attempts, failover, pump) writes to a `Sink`: mitmproxy's connection here, or a
client's own connection when a native stream fails over (addons/takeover.py).

HTTP/1.1 framing is h11's (the library httpcore and mitmproxy use), not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

import h11
import httpx
from cliproxy.addons.attempts import AttemptRecord
from cliproxy.addons.exchange import Answer
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.exchange import outbound_for
from cliproxy.addons.failover import Failover
from cliproxy.addons.failover import NoAnswer
from cliproxy.addons.retarget import masked_proxy
from cliproxy.addons.state import State
from cliproxy.addons.upstream_call import VIA_STREAMER
from cliproxy.addons.upstream_call import TooLarge
from cliproxy.addons.upstream_call import no_answer_body
from cliproxy.addons.upstream_call import no_answer_reason
from cliproxy.addons.upstream_call import read_capped
from cliproxy.addons.upstream_call import read_refusal
from cliproxy.addons.upstream_call import timeout
from mitmproxy import http

logger = logging.getLogger(__name__)

EXCHANGE_HEADER = "x-cliproxy-exchange"  # which waiting exchange a relayed flow is
FINAL_HEADER = "x-cliproxy-final"  # the answer is already in the client's dialect
MAX_REQUEST_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
DRAIN_ABOVE = 256 * 1024  # bytes waiting for mitmproxy before the upstream is made to wait
_CONNECTING = (httpx.ProxyError, httpx.ConnectError, httpx.ConnectTimeout)


class Streamer:
    def __init__(self, state: State, failover: Failover) -> None:
        self.state = state
        self.failover = failover
        self.server: asyncio.Server | None = None
        self.port: int | None = None
        self.waiting: dict[str, Exchange | PlainCall] = {}
        self.tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ mitmproxy hooks

    async def running(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]

    async def done(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for task in list(self.tasks):
            task.cancel()

    # ------------------------------------------------------------------ the gateway's side

    def wanted(self, ex: Exchange, flow: http.HTTPFlow) -> bool:
        """Every upstream call goes through here when `proxy-url` is set, so that one client
        (httpx) carries every byte through it, SOCKS included, and a broken proxy is a clean
        error; so do the streams of HTTP/2 and HTTP/3 clients (their connection cannot be
        written directly when a stream fails over: addons/takeover.py). Other exchanges keep
        the native path, streams included (docs/mitmproxy.md, "Native streams"). The server
        starts with mitmproxy (`running`), before any client can connect."""
        if self.port is None:
            return False
        if self.state.settings.proxy_url:
            return True
        return ex.stream and (flow.request.is_http2 or flow.request.is_http3)

    def take(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """Point the flow at this server; the client's own request (path, body) stays as it is,
        so mitmweb shows the client's exchange, and the upstream attempts as flows of their own."""
        self._point_here(flow, ex)

    def take_call(self, flow: http.HTTPFlow, call: PlainCall) -> None:
        """A request forwarded as it is (the Gemini CLI relay's other methods): one attempt,
        its answer passed back verbatim."""
        self._point_here(flow, call)

    def _point_here(self, flow: http.HTTPFlow, waiting: Exchange | PlainCall) -> None:
        if self.port is None:
            raise RuntimeError("the loopback streamer is not serving")
        key = secrets.token_urlsafe(16)
        self.waiting[key] = waiting
        flow.metadata[VIA_STREAMER] = True
        req = flow.request
        path = req.path
        # the body goes along as mitmproxy read it: its length must be said, or the server
        # would read a bodiless request and find the body's bytes where it waits for EOF
        req.headers = http.Headers(
            host=f"127.0.0.1:{self.port}",
            content_type=req.headers.get("content-type", "application/json"),
            content_length=str(len(req.raw_content or b"")),
            **{EXCHANGE_HEADER: key},
        )
        req.method = "POST"
        req.scheme, req.host, req.port = "http", "127.0.0.1", self.port
        req.path = path

    # ------------------------------------------------------------------ the server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        try:
            # keep-alive: mitmproxy reuses this connection for the next stream of its client
            while (request := await self._read_request(reader, conn)) is not None:
                waiting = self.waiting.pop(_header(request, EXCHANGE_HEADER), None)
                leftover: bytes | None = b""
                if waiting is None:
                    await _send_whole(writer, conn, 404, b'{"error": "no such exchange"}', {})
                elif isinstance(waiting, PlainCall):
                    await self._call(waiting, writer, conn)
                else:
                    sink = H11Sink(reader, writer, conn)
                    leftover = sink.leftover if await self.relay(waiting, sink) else None
                if leftover is None or conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()
                if leftover:
                    conn.receive_data(leftover)
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass  # mitmproxy went away (its client did): nothing to answer
        except Exception:
            logger.exception("loopback streamer failed")
        finally:
            if task is not None:
                self.tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(
        reader: asyncio.StreamReader, conn: h11.Connection
    ) -> h11.Request | None:
        request: h11.Request | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(READ_SIZE)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return None
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def relay(
        self,
        ex: Exchange,
        sink: Sink,
        first: tuple[int, bytes, str | None, NoAnswer | None] | None = None,
    ) -> bool:
        """Attempts until one answers 200 or the failover gives its final answer; then the
        upstream's bytes, as they come, into `sink`. `first`: a refusal the exchange already
        had (mitmproxy's own attempt on the native path). False when the sink's peer went away
        before the end."""
        recovery = self.failover.recovery(ex)
        outcome = first
        while True:
            if outcome is not None:
                final = await recovery.after_refusal(*outcome)
                if final is not None:
                    await sink.answer(final)
                    return True
            attempt = await self._attempt(ex)
            if isinstance(attempt[0], httpx.Response):
                response, record = attempt
                return await self._stream(ex, response, record, sink)
            outcome = attempt

    async def _attempt(
        self, ex: Exchange
    ) -> tuple[httpx.Response, AttemptRecord] | tuple[int, bytes, str | None, NoAnswer | None]:
        """One upstream attempt: the streaming response when it is a 200, else what refused
        (status, body, Retry-After, and why there was no answer when the proxy wrote it)."""
        settings, client = self.state.settings, self.state.http
        assert client is not None
        out = outbound_for(settings, ex)
        record = AttemptRecord.start(ex, out)
        request = client.build_request(
            "POST", out.url, headers=out.headers, content=out.content, timeout=timeout(settings)
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as e:
            status, message = self._failure(ex.upstream.title, e)
            body = no_answer_body(status, message)
            record.finish(status, body, {})
            ex.record(status)
            return status, body, None, "proxy" if self._proxy_failed(e) else "upstream"
        ex.record(response.status_code)
        if response.status_code == 200:
            record.answered(response)
            return response, record
        try:
            content = await read_refusal(response)
        except httpx.HTTPError as e:
            status, message = self._failure(ex.upstream.title, e)
            content = no_answer_body(status, message)
        finally:
            await response.aclose()
        record.finish(response.status_code, content, dict(response.headers))
        return response.status_code, content, response.headers.get("retry-after"), None

    async def _call(
        self,
        call: PlainCall,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
    ) -> None:
        client = self.state.http
        assert client is not None
        settings = self.state.settings
        request = client.build_request(
            call.method, call.url, headers=call.headers, content=call.content,
            timeout=timeout(settings),
        )  # fmt: skip
        try:
            response = await client.send(request, stream=True)
            try:
                content = await read_capped(response, settings.max_body_size)
            finally:
                await response.aclose()
        except (httpx.HTTPError, TooLarge) as e:
            status, message = (
                (502, str(e)) if isinstance(e, TooLarge) else self._failure(call.title, e)
            )
            await _send_whole(writer, conn, status, no_answer_body(status, message), {})
            return
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        await _send_whole(writer, conn, response.status_code, content, headers)

    def _failure(self, title: str, error: httpx.HTTPError) -> tuple[int, str]:
        """An attempt that got no answer: the status and a message naming the upstream, or the
        proxy when that is what failed."""
        settings = self.state.settings
        if self._proxy_failed(error):
            proxy = masked_proxy(settings.proxy_url)
            return 502, f"proxy-url {proxy} failed ({type(error).__name__}: {error})"
        return no_answer_reason(title, error, settings)

    def _proxy_failed(self, error: httpx.HTTPError) -> bool:
        """With a proxy, the connection is the proxy's: failing to make it is the proxy
        failing (and every account's attempt would fail alike)."""
        return bool(self.state.settings.proxy_url) and isinstance(error, _CONNECTING)

    async def _stream(
        self, ex: Exchange, response: httpx.Response, record: AttemptRecord, sink: Sink
    ) -> bool:
        sink.begin(response.headers.get("content-type", "text/event-stream"))
        pump = asyncio.ensure_future(self._pump(ex, response, record, sink))
        gone = asyncio.ensure_future(sink.gone())
        try:
            done, _ = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone in done and gone.result():  # the peer went: cancel the upstream request
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
                record.interrupted("the client went away")
                return False
            await pump
            return True
        finally:
            await _settled(gone)  # the reader has one waiter at a time: this one must be gone
            await response.aclose()

    async def _pump(
        self, ex: Exchange, response: httpx.Response, record: AttemptRecord, sink: Sink
    ) -> None:
        try:
            async for chunk in response.aiter_raw():
                record.body(chunk)
                sink.send(chunk)
                if sink.waiting() > DRAIN_ABOVE:
                    await sink.drain()  # the peer reads slower than the upstream writes
        except httpx.HTTPError as e:
            _, message = self._failure(ex.upstream.title, e)
            if isinstance(e, httpx.ReadTimeout):
                message = f"{message} during the stream"
            text = interrupted_text(ex, message)
            logger.warning("%s: %s", ex.account.label, text)
            sink.send(ex.upstream_dialect.interrupted(text))
            record.interrupted(text)
        else:
            record.done()
        sink.finish()
        await sink.drain()


def interrupted_text(ex: Exchange, message: str) -> str:
    """The message of the error event that ends a stream whose upstream failed after the first
    byte (the upstream dialect's failure frame carries it; every translator makes it an error
    event in the client's format)."""
    return f"upstream ({ex.upstream.title}) failed after the stream started: {message}"


class Sink(Protocol):
    """Where the relay writes: mitmproxy over the loopback connection (H11Sink: raw upstream
    bytes, mitmproxy translates them), or the client's own connection (addons/takeover.py:
    translated here)."""

    def begin(self, content_type: str) -> None:
        """The 200 head of a stream."""

    def send(self, raw: bytes) -> None:
        """Upstream bytes of the stream, as they came."""

    def finish(self) -> None:
        """The stream's end."""

    def waiting(self) -> int:
        """Bytes written that the peer has not taken yet."""

    async def drain(self) -> None: ...

    async def answer(self, answer: Answer) -> None:
        """The failover's final answer, already in the client's dialect."""

    async def gone(self) -> bool:
        """Completes with True when the peer has gone (cancelled when no longer needed)."""


class H11Sink:
    """mitmproxy's connection to this server, with h11's framing."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: h11.Connection
    ) -> None:
        self.reader, self.writer, self.conn = reader, writer, conn
        self.leftover = b""  # what mitmproxy sent meanwhile: the start of its next request

    def begin(self, content_type: str) -> None:
        headers = [("content-type", content_type), ("cache-control", "no-cache")]
        self.writer.write(self.conn.send(h11.Response(status_code=200, headers=headers)))

    def send(self, raw: bytes) -> None:
        self.writer.write(self.conn.send(h11.Data(data=raw)))

    def finish(self) -> None:
        self.writer.write(self.conn.send(h11.EndOfMessage()))

    def waiting(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        await self.writer.drain()

    async def answer(self, answer: Answer) -> None:
        await _send_answer(self.writer, self.conn, answer)

    async def gone(self) -> bool:
        # mitmproxy sends nothing while a response is under way: an EOF means it (its client)
        # went away; bytes would be its next request, kept for the next cycle
        data = await self.reader.read(READ_SIZE)
        self.leftover += data
        return not data


async def _settled(waiter: asyncio.Future[bool]) -> None:
    """Cancel a pending wait for the peer and let it finish (a cancelled read loses nothing:
    data that arrives later stays in the reader's buffer)."""
    if not waiter.done():
        waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter


def _header(request: h11.Request, name: str) -> str:
    wanted = name.encode()
    for key, value in request.headers:
        if key == wanted:
            return value.decode("latin-1")
    return ""


@dataclass(frozen=True, slots=True)
class PlainCall:
    """A request to forward as it is, without failover."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes
    title: str  # the upstream, as messages name it


# framing is h11's own; the upstream's would contradict it
_HOP_BY_HOP = frozenset(
    {"connection", "content-length", "transfer-encoding", "content-encoding", "keep-alive"}
)


async def _send_whole(
    writer: asyncio.StreamWriter,
    conn: h11.Connection,
    status: int,
    body: bytes,
    headers: dict[str, str],
) -> None:
    head = [("content-length", str(len(body))), *headers.items()]
    if not any(k.lower() == "content-type" for k, _ in head):
        head.append(("content-type", "application/json"))
    writer.write(conn.send(h11.Response(status_code=status, headers=head)))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


async def _send_answer(writer: asyncio.StreamWriter, conn: h11.Connection, answer: Answer) -> None:
    """The failover's final answer, already in the client's dialect."""
    body = json.dumps(answer.body, ensure_ascii=False).encode()
    await _send_whole(writer, conn, answer.status, body, {**answer.headers, FINAL_HEADER: "1"})
