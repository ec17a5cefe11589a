"""One exchange's state, and the way back: upstream answer → the client's dialect.

Every choice here is a lookup in the dialect table (translators/registry.py) through the
exchange's client and upstream dialects; the translating itself happens in translators/.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.accounts.providers import Provider
from cliproxy.addons.local import JSON_HEADERS
from cliproxy.addons.local import json_response
from cliproxy.addons.settings import Settings
from cliproxy.addons.upstreams.outbound import Outbound
from cliproxy.addons.upstreams.outbound import Upstream
from cliproxy.addons.upstreams.outbound import build
from cliproxy.addons.upstreams.outbound import upstream_of
from cliproxy.translators import ir
from cliproxy.translators import usage as usage_of
from cliproxy.translators.accumulate import ResponseAccumulator
from cliproxy.translators.fault import UpstreamError
from cliproxy.translators.pipeline import StreamPipeline
from cliproxy.translators.registry import SHAPES
from cliproxy.translators.registry import AnswerOptions
from cliproxy.translators.registry import AnswerShape
from cliproxy.translators.registry import ClientDialect
from cliproxy.translators.registry import UpstreamDialect
from mitmproxy import http
from mitmproxy.net.http import status_codes


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream call of an exchange, for the access log, metrics and mitmweb."""

    upstream: str
    account: Account
    status: int


@dataclass(kw_only=True)
class Exchange:
    """What the response hooks need to know about a flow sent upstream, and what a retry on
    another account (or model) needs to rebuild it."""

    client: ClientDialect  # what the client speaks
    upstream_dialect: UpstreamDialect  # what the provider's upstreams speak
    native: bool  # the client's body went through untranslated (same wire format)
    counting: bool  # a token count, not a generation
    provider: Provider
    client_model: str  # the name the client asked for (before model-aliases)
    model: str  # the upstream model (a preview fallback may change it)
    stream: bool  # the client asked for a stream
    payload: dict[str, Any]  # the upstream-format body before account-specific wrapping
    account: Account
    options: AnswerOptions  # what the client's answer must echo or honour
    tool_names: dict[str, str] = field(default_factory=dict)  # upstream-safe name -> client's
    tried: set[str] = field(default_factory=set)  # accounts that refused this request
    attempts: int = 1
    max_attempts: int = 1  # `request-retry`
    refreshed: bool = False  # a 401 already forced one token refresh
    relayed: bool = False  # sent through the loopback streamer (addons/streamer.py)
    history: list[Attempt] = field(default_factory=list)  # every upstream call, in order
    usage: ir.Usage | None = None  # the upstream's usage figures of the answer served

    def record(self, status: int) -> None:
        """Note the current attempt's upstream status (each call exactly once)."""
        self.history.append(Attempt(self.upstream.name, self.account, status))

    @property
    def upstream(self) -> Upstream:
        """The service the current account's requests go to."""
        return upstream_of(self.account)

    @property
    def shape(self) -> AnswerShape:
        return self.client.shape

    @property
    def method(self) -> str:
        """The upstream method the URL names (generateContent, …, or responses)."""
        return self.upstream_dialect.method(self.stream, self.counting)

    @property
    def upstream_stream(self) -> bool:
        """The upstream answers in SSE: Codex always, Gemini methods when the client streams."""
        return self.upstream_dialect.always_streams or (self.stream and not self.counting)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any  # JSON-able, or bytes for an SSE body
    headers: dict[str, str] = field(default_factory=dict)


SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def answer_response(answer: Answer) -> http.Response:
    """An answer as a response of its own (JSON, or an SSE body delivered whole)."""
    if isinstance(answer.body, bytes):
        return http.Response.make(answer.status, answer.body, SSE_HEADERS)
    return json_response(answer.status, answer.body, answer.headers)


def answer_into(response: http.Response, answer: Answer) -> None:
    """An answer written over the upstream's response (status, headers, body): a new
    `http.Response` costs 29 µs, mostly mitmproxy's field type checks; this costs 7."""
    if isinstance(answer.body, bytes):
        body, headers = answer.body, SSE_HEADERS
    else:
        body = json.dumps(answer.body, ensure_ascii=False).encode()
        headers = {**JSON_HEADERS, **answer.headers}
    response.status_code = answer.status
    response.reason = status_codes.RESPONSES.get(answer.status, "")
    response.headers = http.Headers([(k.encode(), v.encode()) for k, v in headers.items()])
    response.trailers = None
    response.content = body


def outbound_for(settings: Settings, ex: Exchange) -> Outbound:
    """The upstream request of the exchange's current attempt (account, model)."""
    return build(
        settings.endpoints,
        ex.account,
        ex.model,
        ex.method,
        ex.method == "streamGenerateContent",
        ex.payload,
    )


def error_answer(ex: Exchange, status: int, message: str, headers: dict | None = None) -> Answer:
    return Answer(status, SHAPES[ex.shape].error_body(status, message), headers or {})


# ---------------------------------------------------------------------- streams


def make_stream(ex: Exchange) -> Callable[[bytes], list[bytes]]:
    """The mitmproxy stream callable for a 200 streamed answer."""
    envelope = ex.upstream.envelope
    if ex.native:
        assert ex.client.native is not None
        return ex.upstream_dialect.relay_stream(envelope, ex.client.native.envelope)
    return StreamPipeline(
        ex.upstream_dialect.decoder(ex.model, ex.tool_names),
        ex.client.encoder(ex.options),
        unwrap=ex.upstream_dialect.stream_unwrap(envelope),
    )


def whole_stream(ex: Exchange, content: bytes) -> bytes:
    """A stream answer delivered in one piece (after a retry mitmproxy cannot stream)."""
    translate = make_stream(ex)
    out = [*translate(content), *translate(b"")] if content else translate(b"")
    ex.usage = getattr(translate, "usage", None)
    return b"".join(out)


# ---------------------------------------------------------------------- whole answers


def whole_answer(ex: Exchange, content: bytes) -> Answer:
    """A buffered 200 answer → the client's JSON (a non-stream client)."""
    dialect, envelope = ex.upstream_dialect, ex.upstream.envelope
    if ex.counting:
        assert dialect.count_total is not None and ex.client.count_body is not None
        return Answer(200, ex.client.count_body(dialect.count_total(content)))
    if ex.native:
        assert ex.client.native is not None
        body = dialect.relay_whole(content, envelope, ex.client.native.envelope)
        if body is None:
            return error_answer(ex, 502, dialect.incomplete)
        ex.usage = usage_of.of_answer(body)
        return Answer(200, body)
    decoder = dialect.decoder(ex.model, ex.tool_names)
    objects = [o for o in dialect.whole_objects(content, envelope) if isinstance(o, dict)]
    events = [ev for obj in objects for ev in decoder.feed(obj)] + decoder.finish()
    acc = ResponseAccumulator(model=ex.client_model)
    acc.extend(events)
    ex.usage = acc.usage
    if acc.error is not None:
        return error_answer(ex, acc.error.status, f"upstream error: {acc.error.message}")
    return Answer(200, ex.client.render(acc.response(), ex.options))


def success_answer(ex: Exchange, content: bytes) -> Answer:
    if ex.stream:
        return Answer(200, whole_stream(ex, content), {"content-type": "text/event-stream"})
    return whole_answer(ex, content)


# ---------------------------------------------------------------------- upstream errors


def read_error(ex: Exchange, status: int, content: bytes, retry_after: str | None) -> UpstreamError:
    """Parse and classify an upstream refusal of the current attempt."""
    return ex.upstream_dialect.read_error(status, content, retry_after, time.time())


def error_to_client(ex: Exchange, err: UpstreamError) -> Answer:
    status = err.client_status
    headers: dict[str, str] = {}
    if status == 429 and err.fault.retry_after is not None and math.isfinite(err.fault.retry_after):
        headers["retry-after"] = str(max(1, math.ceil(err.fault.retry_after)))
    text = f"upstream ({ex.upstream.title}) error {err.status}: {err.message}"
    return Answer(status, SHAPES[ex.shape].upstream_error_body(status, text, err), headers)


def all_resting_answer(
    shape: AnswerShape, provider: str, model: str, wait: float, last: UpstreamError | None = None
) -> Answer:
    """429 when every account rests for `model`: Retry-After names the first one back."""
    after = max(1, math.ceil(wait))
    message = (
        f"every {provider} account is resting after quota or rate limits for model {model!r}; "
        f"the first is back in {after} s"
    ) + (f" (last refusal: {last.message})" if last else "")
    body = SHAPES[shape].resting_body(429, message, after, last)
    return Answer(429, body, {"retry-after": str(after)})
