"""Upstream SSE bytes -> client bytes, chunk by chunk: SSE framing, unwrap, decode, encode.

One instance per streamed exchange; mitmproxy calls it with each TCP read and finally with b""
(docs/mitmproxy.md "Streaming responses"). It returns a list (possibly empty, never b"") and never
raises: an internal
fault becomes an error event in the client's format instead of untranslated upstream bytes. The
decoder / encoder contract itself is stream.py's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cliproxy.translators import code_assist
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import usage as usage_of
from cliproxy.translators.sse import SSEParser
from cliproxy.translators.sse import data_frame
from cliproxy.translators.sse import event_frame
from cliproxy.translators.sse import parse_json_events
from cliproxy.translators.stream import FAULT
from cliproxy.translators.stream import Decoder
from cliproxy.translators.stream import Encoder
from cliproxy.translators.stream import fault_message


class StreamPipeline:
    def __init__(
        self,
        decoder: Decoder,
        encoder: Encoder,
        unwrap: Callable[[Any], dict] | None = None,
    ) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.unwrap = unwrap
        self.parser = SSEParser()
        self.failed = False
        self.usage: ir.Usage | None = None  # the upstream's last usage figures, for the addons

    def __call__(self, chunk: bytes) -> list[bytes]:
        if self.failed:
            return []
        out: list[bytes] = []  # kept on a fault: the encoder's state already includes it
        try:
            if chunk:
                self._translate(self.parser.feed(chunk), out)
                # one write per upstream read: every list item costs mitmproxy a socket send
                return [b"".join(out)] if len(out) > 1 else out
            # the events flushed at end of stream reach the decoder before its finish()
            self._translate(self.parser.finish(), out)
            if self.failed:
                return out
            for event in self.decoder.finish():
                self._note(event)
                out.extend(self.encoder.encode(event))
            return out + self.encoder.finish()
        except Exception as e:  # never let mitmproxy pass the rest through untranslated
            self.failed = True
            return out + self.encoder.error(fault_message(e))

    def _translate(self, events: list, out: list[bytes]) -> None:
        for obj in parse_json_events(events):
            # a Gemini error object; a typed event (Codex `{"type":"error",…}`) is its decoder's
            if (
                isinstance(obj, dict)
                and "error" in obj
                and "response" not in obj
                and "type" not in obj
            ):
                # an error object inside a 200 stream: surface it, never a clean end
                err = obj["error"] if isinstance(obj["error"], dict) else {}
                message = str(err.get("message") or obj["error"])
                status = err.get("code") if isinstance(err.get("code"), int) else 500
                self.failed = True
                out.extend(self.encoder.error(message, status))
                return
            payload = self.unwrap(obj) if self.unwrap else obj
            if not isinstance(payload, dict):
                continue
            for event in self.decoder.feed(payload):
                self._note(event)
                out.extend(self.encoder.encode(event))

    def _note(self, event: ir.Event) -> None:
        if isinstance(event, ir.UsageUpdate):
            self.usage = event.usage  # cumulative: the last one wins


TERMINAL_RESPONSE_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)


class ResponsesRelay:
    """Codex SSE → a Responses-API client, event for event (the pass-through path keeps what the
    IR does not model). The one change: a stream that ends without a terminal event gets a
    `response.failed`, so Codex CLI and the openai SDK see an error, never a clean end."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.terminal = False
        self.started = False  # response.created has gone out
        self.held: list[bytes] = []  # events the backend sent before response.created
        self.sequence = -1
        self.response: dict[str, Any] = {}

    def __call__(self, chunk: bytes) -> list[bytes]:
        try:
            events = self.parser.feed(chunk) if chunk else self.parser.finish()
            out: list[bytes] = []
            for ev in events:
                if not ev.data.strip():
                    continue
                frame, kind = self._frame(ev.event, ev.data)
                if self.started:
                    out.append(frame)
                elif kind == "response.created":
                    # the openai SDK insists on response.created first; the backend sends
                    # codex.rate_limits before it, so such events follow it instead
                    self.started = True
                    out += [frame, *self.held]
                    self.held = []
                else:
                    self.held.append(frame)
            if not chunk:
                out += self.held
                self.held = []
                if not self.terminal:
                    out.append(self._failed("the upstream stream ended before response.completed"))
            return out
        except Exception as e:  # never raise inside mitmproxy's stream callback
            self.terminal = True
            return [self._failed(f"{FAULT}: {type(e).__name__}")]

    @property
    def usage(self) -> ir.Usage | None:
        """The usage of the last `response` object seen (response.completed carries it)."""
        return usage_of.of_answer(self.response)

    def _frame(self, name: str | None, data: str) -> tuple[bytes, str | None]:
        """The event re-framed verbatim, and its kind."""
        kind = None
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            kind = obj.get("type") if isinstance(obj.get("type"), str) else None
            name = name or kind
            if isinstance(obj.get("sequence_number"), int):
                self.sequence = max(self.sequence, obj["sequence_number"])
            if isinstance(obj.get("response"), dict):
                self.response = obj["response"]
            if kind in TERMINAL_RESPONSE_EVENTS:
                self.terminal = True
        head = b"event: " + name.encode() + b"\n" if name else b""
        return head + b"data: " + data.encode() + b"\n\n", kind

    def _failed(self, message: str) -> bytes:
        self.sequence += 1
        response = {
            **self.response,
            "status": "failed",
            "error": {"code": "server_error", "message": message},
        }
        return event_frame(
            "response.failed",
            {"type": "response.failed", "sequence_number": self.sequence, "response": response},
        )


class GeminiPassthrough:
    """Gemini SSE → a Gemini-speaking client, chunk for chunk. `unwrap`: Code Assist frames lose
    their `{"response": …}` wrapper (for public-API clients); `wrap`: bare AI Studio frames get
    one (for Code Assist clients, i.e. Gemini CLI through the relay). A stream that ends without
    a finishReason was cut: it ends in an error frame, never a clean end."""

    def __init__(self, unwrap: bool, wrap: bool = False) -> None:
        self.unwrap = unwrap
        self.wrap = wrap
        self.parser = SSEParser()
        self.finished = False
        self.usage: ir.Usage | None = None  # the upstream's last usageMetadata, for the addons

    def __call__(self, chunk: bytes) -> list[bytes]:
        try:
            events = self.parser.feed(chunk) if chunk else self.parser.finish()
            out = [frame for obj in parse_json_events(events) if (frame := self._frame(obj))]
            if not chunk and not self.finished:
                self.finished = True
                out.append(data_frame(gemini.error_body(502, "upstream stream ended early")))
            return out
        except Exception as e:  # never raise inside mitmproxy's stream callback
            self.finished = True
            return [data_frame(gemini.error_body(502, f"{FAULT}: {type(e).__name__}"))]

    def _frame(self, obj: Any) -> bytes | None:
        if not isinstance(obj, dict):
            return None
        if "error" in obj and "response" not in obj and "candidates" not in obj:
            self.finished = True  # an error frame is an end, and the client sees it
            return data_frame(obj)
        # a Code Assist chunk without `response` is valid (no candidates): nothing for the
        # public API, passed on as it is to a Code Assist client
        inner = code_assist.unwrap_response(obj) if self.unwrap or "response" in obj else obj
        if isinstance(inner, dict) and isinstance(inner.get("usageMetadata"), dict):
            self.usage = usage_of.of_answer(inner)
        candidates = inner.get("candidates") if isinstance(inner, dict) else None
        if isinstance(candidates, list) and any(
            isinstance(c, dict) and c.get("finishReason") for c in candidates
        ):
            self.finished = True
        feedback = inner.get("promptFeedback") if isinstance(inner, dict) else None
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self.finished = True  # a blocked prompt is a complete answer without candidates
        if self.unwrap:
            # a Code Assist wrapper without `response` (= no candidates) has nothing to pass on
            return data_frame(inner) if inner and "response" in obj else None
        return data_frame(code_assist.wrap_response(obj) if self.wrap else obj)
