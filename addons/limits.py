"""Limits on what a client or an upstream can make the proxy spend: body size (compressed or
not), time to send headers and body, time to connect to and hear from an upstream; and the
answer mitmproxy itself writes when it gives up on a flow, in the caller's shape.

mitmproxy's own levers are used where they exist (docs/mitmproxy.md "Limits"):
`body_size_limit` (checked on Content-Length before any body byte is read, and while a chunked
body is read), `tcp_timeout`, the connection handlers' activity watchdog. What it lacks is built
here: a bounded decompression of request bodies, a header/body deadline per client connection,
connect and idle deadlines per upstream connection, and the caller's shape on its error pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import re
import resource
import time
import zlib
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from cliproxy.addons.local import error_response
from cliproxy.addons.routing import route_of
from cliproxy.addons.routing import shape_of
from cliproxy.addons.settings import Settings
from cliproxy.addons.state import State
from cliproxy.addons.upstream_call import VIA_STREAMER
from cliproxy.translators.registry import AnswerShape
from mitmproxy import connection
from mitmproxy import ctx
from mitmproxy import http
from mitmproxy.net.http.http1 import assemble_response
from mitmproxy.proxy import server_hooks

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 0.25  # seconds between looks at the open connections
# An idle keep-alive connection (a request already served, no byte of the next one yet) may
# stay this long, as nginx's default keepalive_timeout; a new connection gets client-headers.
KEEPALIVE_IDLE = 75.0
# Bodies up to this size are answered the ordinary way when refused on their headers (mitmproxy
# reads them, keep-alive survives); larger or chunked ones are answered at once and the
# connection closed, so no byte of them is ever buffered.
SMALL_BODY = 64 * 1024

ANSWERED = "cliproxy_answered_early"  # flow.metadata: answer_now wrote the answer itself
TIMED_OUT = "cliproxy_timed_out"  # flow.metadata: (status, message) our deadline cut the flow
UPSTREAM_TITLE = "cliproxy_upstream_title"  # flow.metadata: the upstream's name in messages
# flow.metadata: the flow's own upstream call got no answer and the failover's answer (another
# account's) was written instead of an error page; flow.error stays, for mitmweb
RECOVERED = "cliproxy_recovered"


# ---------------------------------------------------------------------------------- error pages


@dataclass(frozen=True, slots=True)
class ErrorPage:
    shape: AnswerShape
    status: int | None  # replaces mitmproxy's status (504 for our idle deadline), or None
    message: str
    # the failover's answer when another account served the request after this flow's own
    # upstream call got none (addons/gateway.py `error`): written instead of an error
    answer: http.Response | None = None


# Set by the `error` hook; read by `error_page` right after it in the same task: mitmproxy runs
# a hook and then resumes the connection's layer, which writes its error page, in one task
# (proxy/server.py `hook_task`), so each flow sees its own value and no other flow's.
ERROR_PAGE: contextvars.ContextVar[ErrorPage | None] = contextvars.ContextVar(
    "cliproxy_error_page", default=None
)


SILENT = ErrorPage("openai", None, "")  # the flow was answered before mitmproxy gave up on it


def error_page(status_code: int, message: str = "") -> bytes:
    """Replacement for mitmproxy's HTML error page (`_http1.make_error_response`): the caller's
    shape when the flow is known, else a body all three SDK families parse."""
    page = ERROR_PAGE.get()
    if page is SILENT:
        return b""  # the client already has its answer (answer_now); mitmproxy writes nothing
    if page is not None and page.answer is not None:
        resp = page.answer.copy()
    elif page is not None:
        resp = error_response(page.shape, page.status or status_code, page.message)
    else:
        body = {
            "type": "error",
            "error": {
                "type": "api_error",
                "message": f"proxy error: {message}" if message else "proxy error",
                "code": status_code,
                "status": "UNAVAILABLE" if status_code >= 500 else "INVALID_ARGUMENT",
            },
        }
        resp = http.Response.make(
            status_code, json.dumps(body).encode(), {"content-type": "application/json"}
        )
    resp.headers["connection"] = "close"
    return assemble_response(resp)


def upstream_title(flow: http.HTTPFlow) -> str:
    """How messages name the upstream a flow was sent to."""
    title = flow.metadata.get(UPSTREAM_TITLE)
    if isinstance(title, str):
        return title
    ex = flow.metadata.get("cliproxy")  # gateway.KEY; not imported (gateway imports us)
    upstream = getattr(ex, "upstream", None)
    if upstream is not None:
        return str(upstream.title)
    route = route_of(flow)
    if route is not None and route.relay:
        return "Code Assist"
    return "the upstream"


def page_for(flow: http.HTTPFlow, settings: Settings) -> ErrorPage | None:
    """The answer to write for a flow mitmproxy is about to fail, or None when none is due
    (killed by us, or the client is gone)."""
    if flow.error is None:
        return None
    msg = flow.error.msg
    if msg == flow.error.KILLED_MESSAGE or "Client disconnected" in msg:
        return None
    shape = shape_of(flow)
    if "body_size_limit" in msg:
        return ErrorPage(
            shape,
            413,
            f"the request body is larger than max-body-size ({settings.max_body_size} bytes)",
        )
    cut = flow.metadata.get(TIMED_OUT)
    if cut is not None:
        status, message = cut
        return ErrorPage(shape, status, message)
    title = upstream_title(flow)
    # "[Errno 111] Connect call failed ('127.0.0.1', 9)": the reason without errno and address
    reason = re.sub(r"\[Errno \d+\]\s*", "", msg.split("(", 1)[0]).strip().rstrip(":.")
    reason = (reason or "connection failed").lower()
    return ErrorPage(shape, 502, f"{title} could not be reached: {reason}")


# ---------------------------------------------------------------------------------- bodies


class BodyTooLarge(Exception):
    pass


class UnknownEncoding(Exception):
    pass


def decode_bounded(raw: bytes, encoding: str, limit: int) -> bytes:
    """`raw` decoded per Content-Encoding, never producing more than `limit` bytes (a 1 MB gzip
    bomb inflates to 1 GB; mitmproxy's `.content` would inflate it whole)."""
    out = raw
    # codings apply in the order listed, so they are undone right to left
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip", "deflate"):
            out = _inflate(out, coding, limit)
        elif coding == "zstd":
            out = _unzstd(out, limit)
        else:
            raise UnknownEncoding(coding)
    return out


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    # 47: gzip or zlib header; deflate without a header is raw (-15), as some clients send it
    wbits = 47 if coding != "deflate" or data[:1] in (b"\x78", b"\x58") else -15
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise ValueError(f"the {coding} body cannot be decoded: {e}") from None
    if len(out) > limit:
        raise BodyTooLarge
    return out


def _unzstd(data: bytes, limit: int) -> bytes:
    try:
        import zstandard  # mitmproxy depends on it
    except ImportError:  # pragma: no cover
        raise UnknownEncoding("zstd") from None
    reader = zstandard.ZstdDecompressor().stream_reader(data)
    try:
        out = reader.read(limit + 1)
    except zstandard.ZstdError as e:
        raise ValueError(f"the zstd body cannot be decoded: {e}") from None
    if len(out) > limit:
        raise BodyTooLarge
    return out


def request_has_body(request: http.Request) -> bool:
    if "transfer-encoding" in request.headers:
        return True
    try:
        return int(request.headers.get("content-length", "0") or 0) > 0
    except ValueError:
        return True


def expected_body(request: http.Request) -> int | None:
    """Content-Length, 0 without a body, None for a chunked (unknown) one."""
    if "transfer-encoding" in request.headers:
        return None
    try:
        return max(int(request.headers.get("content-length", "0") or 0), 0)
    except ValueError:
        return None


def answer_now(flow: http.HTTPFlow, response: http.Response) -> None:
    """Refuse a request on its headers without reading its body.

    mitmproxy reads the whole body of a flow whose response was set in `requestheaders`
    before sending it (proxy/layers/http `state_consume_request_body`, bounded only by
    body_size_limit). For small bodies that is harmless and keeps the connection; for large or
    chunked ones the answer is written to the client's socket here, then the flow is killed,
    which closes the connection: nothing of the body is kept (docs/mitmproxy.md "Limits")."""
    size = expected_body(flow.request)
    writer = None
    if (size is None or size > SMALL_BODY) and not (flow.request.is_http2 or flow.request.is_http3):
        writer = client_writer(flow.client_conn)
    if writer is None:
        flow.response = response
        return
    response.headers["connection"] = "close"
    writer.write(assemble_response(response))
    flow.metadata[ANSWERED] = True
    flow.response = response  # for the logs; never sent by mitmproxy (the flow is killed)
    flow.kill()


def _handler(client: connection.Client) -> Any:
    ps = ctx.master.addons.get("proxyserver") if ctx.master is not None else None
    if ps is None:
        return None
    return ps.connections.get(client.id)


def client_writer(client: connection.Client) -> Any:
    handler = _handler(client)
    if handler is None:
        return None
    io = handler.transports.get(handler.client)
    return getattr(io, "writer", None)


def close_client(client: connection.Client, why: str) -> bool:
    """Close a client connection the way mitmproxy's own idle watchdog does
    (proxy/server.py `on_timeout`)."""
    handler = _handler(client)
    io = handler.transports.get(handler.client) if handler is not None else None
    if io is None or io.handler is None:
        return False
    logger.info("closing %s: %s", _addr(client), why)
    io.handler.cancel(why)
    return True


def cancel_upstream(client: connection.Client, server: connection.Server | None) -> bool:
    """Cancel the task of an upstream connection (connecting or open): mitmproxy then fails the
    flow as for a refused connection or a peer that hung up, and runs the `error` hook."""
    handler = _handler(client)
    if handler is None:
        return False
    done = False
    for conn, io in list(handler.transports.items()):
        if conn is handler.client or io.handler is None:
            continue
        if server is None or conn is server or conn.id == server.id:
            io.handler.cancel("cliproxy upstream deadline")
            done = True
    return done


def _addr(client: connection.Client) -> str:
    peer = client.peername
    return f"{peer[0]}:{peer[1]}" if peer else "a client"


def raise_fd_limit() -> None:
    """Many open connections must not exhaust file descriptors before the deadlines close them:
    the soft limit is raised to the hard one (mitmproxy leaves it as the shell set it)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# ---------------------------------------------------------------------------------- the addon


@dataclass(slots=True)
class _Conn:
    client: connection.Client
    since: float  # when the current phase began
    phase: str = "headers"  # headers | body | busy
    served: int = 0  # requests answered on this connection
    flows: set[str] = field(default_factory=set)  # flows in progress (several on HTTP/2)
    flow: http.HTTPFlow | None = None  # the latest flow in progress


@dataclass(slots=True)
class _Connecting:
    client: connection.Client
    server: connection.Server
    since: float


class Limits:
    def __init__(self, state: State) -> None:
        self.state = state
        self.conns: dict[str, _Conn] = {}
        self.connecting: dict[str, _Connecting] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.managed: set[str] = set()  # mitmproxy options we set (the user left them alone)
        state.listeners.append(self.settings_changed)

    # -------------------------------------------------------------- options

    def running(self) -> None:
        raise_fd_limit()
        self.managed = {
            name
            for name in ("body_size_limit", "tcp_timeout")
            if name in ctx.options and not ctx.options.has_changed(name)
        }
        self._apply(self.state.settings)
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())

    def settings_changed(self, old: Settings, new: Settings) -> None:
        if (old.max_body_size, old.timeouts) != (new.max_body_size, new.timeouts):
            self._apply(new)

    def _apply(self, settings: Settings) -> None:
        updates: dict[str, object] = {}
        if "body_size_limit" in self.managed:
            # mitmproxy checks Content-Length before reading a byte, and a chunked body while
            # reading it; the error hook turns its refusal into a 413 in the caller's shape
            updates["body_size_limit"] = str(settings.max_body_size)
        if "tcp_timeout" in self.managed:
            # mitmproxy's own idle cut must come after ours, which answer 504 instead of
            # silently closing
            t = settings.timeouts
            longest = max(t.upstream_idle, t.client_body, t.client_headers, KEEPALIVE_IDLE)
            updates["tcp_timeout"] = int(longest) + 5
        if updates:
            ctx.options.update(**updates)

    async def done(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # -------------------------------------------------------------- connections

    def client_connected(self, client: connection.Client) -> None:
        self.conns[client.id] = _Conn(client, time.monotonic())

    def client_disconnected(self, client: connection.Client) -> None:
        self.conns.pop(client.id, None)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.connecting[data.server.id] = _Connecting(data.client, data.server, time.monotonic())

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.connecting.pop(data.server.id, None)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.connecting.pop(data.server.id, None)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.connecting.pop(data.server.id, None)

    # -------------------------------------------------------------- flows

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flow.metadata[CLIENT_VERSION] = flow.request.http_version
        conn = self.conns.get(flow.client_conn.id)
        if conn is None:
            return
        conn.flows.add(flow.id)
        conn.flow = flow
        conn.phase = "body" if request_has_body(flow.request) else "busy"
        conn.since = time.monotonic()

    def request(self, flow: http.HTTPFlow) -> None:
        """First in the chain: before anything reads `.content` (which would inflate a
        compressed body without limit), a compressed body is decoded here, bounded."""
        conn = self.conns.get(flow.client_conn.id)
        if conn is not None and conn.phase == "body":
            conn.phase, conn.since = "busy", time.monotonic()
        if flow.response or flow.error or not flow.live:
            return
        encoding = flow.request.headers.get("content-encoding", "")
        if not encoding or not flow.request.raw_content:
            return
        limit = self.state.settings.max_body_size
        try:
            decoded = decode_bounded(flow.request.raw_content, encoding, limit)
        except BodyTooLarge:
            flow.response = error_response(
                shape_of(flow),
                413,
                f"the decompressed request body is larger than max-body-size ({limit} bytes)",
            )
            return
        except UnknownEncoding as e:
            flow.response = error_response(
                shape_of(flow), 415, f"unsupported Content-Encoding {e.args[0]!r}"
            )
            return
        except ValueError as e:
            flow.response = error_response(shape_of(flow), 400, str(e))
            return
        del flow.request.headers["content-encoding"]
        flow.request.raw_content = decoded  # no encoding left: raw is the content
        flow.request.headers["content-length"] = str(len(decoded))

    def response(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)
        if flow.metadata.get(ANSWERED):
            # mitmproxy may still fail the flow on its own (body_size_limit checks the
            # Content-Length of a request we refused): its page must not follow ours
            ERROR_PAGE.set(SILENT)
            return
        try:
            page = page_for(flow, self.state.settings)
        except Exception:  # never let a log-less crash replace the answer
            logger.exception("while preparing the error answer")
            page = None
        if page is not None:
            ERROR_PAGE.set(page)
            logger.warning(
                "%s %s → %d: %s",
                flow.request.method,
                _client_path(flow),
                page.status or 502,
                page.message,
            )

    def _finished(self, flow: http.HTTPFlow) -> None:
        conn = self.conns.get(flow.client_conn.id)
        if conn is None:
            return
        conn.flows.discard(flow.id)
        if not conn.flows:
            conn.phase, conn.since, conn.flow = "headers", time.monotonic(), None
            conn.served += 1

    # -------------------------------------------------------------- deadlines

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                self.sweep(time.monotonic())
            except Exception:  # a deadline check must never take the proxy down
                logger.exception("deadline check failed")

    def sweep(self, now: float) -> None:
        t = self.state.settings.timeouts
        for conn in list(self.conns.values()):
            if conn.phase == "headers":
                allowed = KEEPALIVE_IDLE if conn.served else t.client_headers
                if conn.served and now - conn.since > t.client_headers:
                    # a keep-alive connection that started a new request must finish its
                    # headers in time too
                    allowed = t.client_headers if self._active_since(conn) else allowed
                if now - conn.since > allowed:
                    why = "request headers not complete in time (timeouts.client-headers)"
                    if conn.served and allowed == KEEPALIVE_IDLE:
                        why = "idle keep-alive connection"
                    close_client(conn.client, why)
                    self.conns.pop(conn.client.id, None)
            elif conn.phase == "body":
                idle = self._idle(conn, now)
                if idle is not None and idle > t.client_body:
                    close_client(conn.client, "no request body byte in time (timeouts.client-body)")
                    self.conns.pop(conn.client.id, None)
            elif conn.phase == "busy" and conn.flow is not None:
                idle = self._idle(conn, now)
                flow = conn.flow
                if flow.metadata.get(VIA_STREAMER):
                    continue  # the streamer times the real upstream, and ends the stream cleanly
                if idle is not None and idle > t.upstream_idle and TIMED_OUT not in flow.metadata:
                    message = (
                        f"{upstream_title(flow)} sent nothing for {t.upstream_idle:g} s "
                        "(timeouts.upstream-idle)"
                    )
                    flow.metadata[TIMED_OUT] = (504, message)
                    if not cancel_upstream(conn.client, None):
                        del flow.metadata[TIMED_OUT]
        for key, pending in list(self.connecting.items()):
            if now - pending.since > t.upstream_connect:
                self.connecting.pop(key, None)
                conn = self.conns.get(pending.client.id)
                flow = conn.flow if conn is not None else None
                if flow is not None and TIMED_OUT not in flow.metadata:
                    message = (
                        f"{upstream_title(flow)} could not be reached within "
                        f"{t.upstream_connect:g} s (timeouts.upstream-connect)"
                    )
                    flow.metadata[TIMED_OUT] = (502, message)
                cancel_upstream(pending.client, pending.server)

    def _idle(self, conn: _Conn, now: float) -> float | None:
        """Seconds without any event on the connection (a byte from either side), from
        mitmproxy's own activity watchdog; None while a hook runs (hooks pause it, and ours
        may wait on a token refresh or a retry)."""
        handler = _handler(conn.client)
        if handler is None:
            return None
        watchdog = handler.timeout_watchdog
        if not watchdog.can_timeout.is_set():
            return None
        wall_idle = time.time() - watchdog.last_activity
        return min(wall_idle, now - conn.since)

    def _active_since(self, conn: _Conn) -> bool:
        """Some byte arrived on an idle keep-alive connection after the last answer."""
        handler = _handler(conn.client)
        if handler is None:
            return False
        idle = time.time() - handler.timeout_watchdog.last_activity
        return idle < time.monotonic() - conn.since - 0.5


def _client_path(flow: http.HTTPFlow) -> str:
    """The path the client called, without its query (which may hold `key=`)."""
    route = route_of(flow)
    path = flow.request.path.split("?", 1)[0]
    if route is not None and route.action == "generate" and flow.metadata.get("cliproxy"):
        ex = flow.metadata["cliproxy"]
        return f"({ex.client.name})"
    return path


_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


def valid_model_name(model: str) -> bool:
    """Model names are plain tokens; anything else could end up in an upstream URL."""
    return _MODEL.match(model) is not None


CLIENT_VERSION = "cliproxy_client_http_version"  # flow.metadata, set on the client's headers


def client_http_version(flow: http.HTTPFlow) -> str:
    """The client's HTTP version (the flow's request is the upstream's by the time answers
    are framed)."""
    version = flow.metadata.get(CLIENT_VERSION)
    return version if isinstance(version, str) else flow.request.http_version
