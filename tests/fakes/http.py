"""Loopback HTTP/1.1 plumbing shared by the fake upstreams (FakeGoogle, FakeCodex): the server's
lifecycle on 127.0.0.1:<ephemeral>, the answer a fake computes (`Answer`), and a request handler
that reads the request (chunked bodies included) and writes a plain answer or a chunked SSE stream,
optionally cut. What a fake answers, and how its bodies and events are spelled, stay in its module.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from typing import Self
from urllib.parse import parse_qs
from urllib.parse import urlsplit


def loads(raw: bytes) -> Any:
    """The JSON value of a request body, None when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


@dataclass
class Answer:
    """What a fake answers one request with."""

    status: int = 200
    body: Any = None  # JSON-able, or str/bytes sent verbatim (what each fake accepts varies)
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict] | None = None  # SSE stream when set
    cut_after: int | None = None  # stream: send this many events, then drop the connection
    drop: bool = False  # close the connection without answering
    # accept the request, then send nothing for this many seconds (bounded; it ends early when
    # the peer closes) and drop the connection: before the status line, or with `cut_after`,
    # after that many events
    stall: float = 0.0


class LoopbackServer:
    """A fake's server on 127.0.0.1:<ephemeral>: start()/stop() or a context manager. The handler
    reaches the fake as `self.server.fake`."""

    def __init__(self, handler: type[FakeHandler]) -> None:
        self._handler = handler
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # time.monotonic() of each moment a peer was seen closing its connection while this
        # fake was streaming to it or stalling it (the client went away before the end)
        self.peer_closed: list[float] = []
        # the peer address of every connection accepted (who connected: a proxy shows here)
        self.connections: list[tuple[str, int]] = []

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, f"{type(self).__name__} not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class FakeHandler(BaseHTTPRequestHandler):
    """Every method goes to `serve` (the fake's routing); its Answer is written back. A subclass
    says how its bodies and SSE events are spelled: `serve`, `encode_body`, `encode_event` and
    `stream_type`."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end on their own
    stream_type = "text/event-stream"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as separate writes: without NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive exchange
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake.connections.append(tuple(self.client_address[:2]))

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    @property
    def fake(self) -> Any:
        """The fake this server belongs to (LoopbackServer.start sets it)."""
        return self.server.fake  # type: ignore[attr-defined]

    def serve(
        self, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        raise NotImplementedError

    def encode_body(self, body: Any) -> tuple[bytes, str]:
        """A plain answer's body -> (bytes, Content-Type)."""
        raise NotImplementedError

    def encode_event(self, event: dict) -> bytes:
        """One SSE event, with its terminating blank line."""
        raise NotImplementedError

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        out = self.serve(url.path, query, headers, self._read_body())
        try:
            if out.drop:
                self.close_connection = True
            elif out.stall and out.cut_after is None:
                self._wait(out.stall)
                self.close_connection = True
            elif out.events is not None:
                self._stream(out)
            else:
                self._reply(out)
        except OSError:  # the client went away
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return body
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, out: Answer) -> None:
        body, ctype = self.encode_body(out.body)
        self.send_response(out.status)
        headers = {"Content-Type": ctype, **out.headers, "Content-Length": str(len(body))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, out: Answer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", self.stream_type)
        for name, value in out.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i, event in enumerate(out.events or []):
            if out.cut_after is not None and i >= out.cut_after:
                break
            if i and self.fake.event_delay and not self._wait(self.fake.event_delay):
                self.close_connection = True
                return
            data = self.encode_event(event)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if out.cut_after is not None:
            if out.stall:
                self._wait(out.stall)
            self.close_connection = True  # no terminating chunk: the client sees a cut body
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait(self, seconds: float) -> bool:
        """Send nothing for `seconds`; False (and the moment recorded in `peer_closed`) as soon
        as the peer closes its side."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], left)
            if not readable:
                continue
            try:
                peeked = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                peeked = b""
            if not peeked:
                self.fake.peer_closed.append(time.monotonic())
                return False
            time.sleep(left)  # the peer sent more (a pipelined request): just wait
        return True
