"""Incremental Server-Sent Events framing, shared by every stream decoder and encoder.

mitmproxy hands stream callables raw TCP reads (docs/mitmproxy.md "Streaming responses"): an event
can be split anywhere, even inside `data: `. The parser buffers bytes and yields complete events
only; no line-length limit (big base64 image chunks broke a 64 KiB scanner in CLIProxyAPI).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    """Feed bytes, get complete events. `\\r\\n` and `\\r` line ends are normalised; multi-line
    `data:` fields are joined with `\\n`; comments (`:`) and unknown fields are ignored."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buf += chunk
        if b"\r" in self._buf:
            # keep a trailing lone \r: it may be the first half of \r\n
            tail = b"\r" if self._buf.endswith(b"\r") else b""
            body = self._buf[:-1] if tail else self._buf
            self._buf = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        *lines, self._buf = self._buf.split(b"\n")
        out: list[SSEEvent] = []
        for raw in lines:
            self._line(raw.decode("utf-8", errors="replace"), out)
        return out

    def finish(self) -> list[SSEEvent]:
        """End of stream: flush a last event that had no terminating blank line."""
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf.rstrip(b"\r").decode("utf-8", errors="replace"), out)
            self._buf = b""
        self._line("", out)
        return out

    def _line(self, line: str, out: list[SSEEvent]) -> None:
        if not line:
            if self._data or self._event is not None:
                out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event, self._data = None, []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def parse_json_events(events: list[SSEEvent]) -> list[Any]:
    """The JSON payloads of `events`, skipping `[DONE]` and payloads that are not JSON
    (gemini-cli and the SDKs skip malformed events the same way)."""
    out: list[Any] = []
    for ev in events:
        data = ev.data.strip()
        if not data or data == "[DONE]":
            continue
        try:
            out.append(json.loads(data))
        except ValueError:
            continue
    return out


def dumps(obj: Any) -> str:
    """Compact JSON as every upstream and client sends it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def data_frame(obj: Any) -> bytes:
    """`data: <json>\\n\\n` (OpenAI chat, Gemini)."""
    return b"data: " + dumps(obj).encode() + b"\n\n"


def event_frame(name: str, obj: Any) -> bytes:
    """`event: <name>\\ndata: <json>\\n\\n` (Anthropic, Responses)."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(obj).encode() + b"\n\n"
