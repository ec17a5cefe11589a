"""Native streams that mitmproxy alone cannot finish well (docs/mitmproxy.md "Native streams").

A stream without `proxy-url` goes to the upstream through mitmproxy itself, the cheapest path.
Two things mitmproxy cannot do for it are done here, on the client's own connection
(addons/clientwire.py):

- its first attempt was refused (429, 5xx…) or got no answer (refused connection,
  `timeouts.upstream-connect`, `upstream-idle` before the headers): the failover goes on through
  the loopback streamer's relay (httpx, the next account…) and the answer is streamed to the
  client as the upstream produces it, translated here;
- its upstream failed after the first byte: the stream ends with the upstream dialect's failure
  frame, translated into an error event in the client's format, instead of an aborted transfer.
"""

from __future__ import annotations

import logging

from cliproxy.addons import attempts
from cliproxy.addons.clientwire import ClientWire
from cliproxy.addons.exchange import Answer
from cliproxy.addons.exchange import Exchange
from cliproxy.addons.exchange import answer_response
from cliproxy.addons.exchange import make_stream
from cliproxy.addons.failover import NoAnswer
from cliproxy.addons.limits import ANSWERED
from cliproxy.addons.limits import RECOVERED
from cliproxy.addons.local import error_response
from cliproxy.addons.observe import Tee
from cliproxy.addons.observe import body_limit
from cliproxy.addons.streamer import Streamer
from cliproxy.addons.streamer import interrupted_text
from mitmproxy import http

logger = logging.getLogger(__name__)


class ClientSink:
    """The relay's sink for a native stream: upstream bytes translated with the exchange's
    stream callable (kept by a Tee, as Observe does for every stream) onto the client's wire."""

    def __init__(
        self, wire: ClientWire, flow: http.HTTPFlow, ex: Exchange, request_log: bool
    ) -> None:
        self.wire, self.flow, self.ex = wire, flow, ex
        self.limit = body_limit(request_log)
        self.translate: Tee | None = None  # made once the serving attempt is known

    @property
    def started(self) -> bool:
        return self.translate is not None

    def begin(self, content_type: str) -> None:
        # the translator is made now, for the account that answered: the failover may have
        # moved the exchange to another upstream (a Code Assist account → an AI Studio key)
        self.translate = Tee(make_stream(self.ex), self.limit)
        response = http.Response.make(
            200, b"", {"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        self.wire.head(response)
        response.stream = self.translate  # Observe finds the Tee there: usage, TTFB, body kept
        self.flow.response = response

    def send(self, raw: bytes) -> None:
        assert self.translate is not None, "begin() comes first"
        for piece in self.translate(raw):
            self.wire.data(piece)

    def finish(self) -> None:
        assert self.translate is not None, "begin() comes first"
        for piece in self.translate(b""):
            self.wire.data(piece)
        self.wire.end()

    def waiting(self) -> int:
        return self.wire.waiting()

    async def drain(self) -> None:
        await self.wire.drain()

    async def answer(self, answer: Answer) -> None:
        response = answer_response(answer)
        self.wire.whole(response)
        self.flow.response = response
        await self.wire.drain()

    async def gone(self) -> bool:
        return await self.wire.gone()


async def take_over(
    flow: http.HTTPFlow,
    ex: Exchange,
    streamer: Streamer,
    first: tuple[int, bytes, str | None, NoAnswer | None],
) -> bool:
    """Answer a native stream whose own attempt failed (`first`) through the failover, written
    straight to the client. False when that cannot be done (not HTTP/1.x, client gone): the
    caller then answers the ordinary way."""
    wire = ClientWire.of(flow)
    if wire is None or wire.closed:
        return False
    attempts.separate_first_attempt(flow, ex)
    sink = ClientSink(wire, flow, ex, streamer.state.settings.request_log)
    try:
        await streamer.relay(ex, sink, first)
    except ConnectionError:
        pass  # the client went away while its answer was written
    except Exception:
        logger.exception("failover of a stream for %s", ex.client.name)
        if not sink.started:
            response = error_response(
                ex.shape, 502, "the upstream answer could not be translated (see the log)"
            )
            wire.whole(response)
            flow.response = response
    flow.metadata[ANSWERED] = True  # mitmproxy writes nothing more for this flow
    flow.metadata[RECOVERED] = True  # its own attempt's error is not the client's answer
    return True


def end_with_error_event(flow: http.HTTPFlow, ex: Exchange, message: str) -> bool:
    """A native stream whose upstream failed after the first byte: its last event is the
    failure in the client's format, framed as mitmproxy framed the stream so far."""
    response = flow.response
    wire = ClientWire.of(flow)
    if response is None or not callable(response.stream) or wire is None or wire.closed:
        return False
    text = interrupted_text(ex, message)
    logger.warning("%s: %s", ex.account.label, text)
    translate = response.stream
    # framed as the gateway had mitmproxy frame the stream: chunked, or raw for HTTP/1.0
    for piece in [*_pieces(translate(ex.upstream_dialect.interrupted(text))),
                  *_pieces(translate(b""))]:  # fmt: skip
        wire.data(piece)
    wire.end()
    return True


def _pieces(out: bytes | list[bytes]) -> list[bytes]:
    return [out] if isinstance(out, bytes) else list(out)
