"""Helpers for the stream tests (issue 11): a raw SSE client that timestamps every event, what
each client dialect asks and answers, and the three upstreams scripted alike."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx

from tests.fakes import codex as fc
from tests.fakes import google as fg
from tests.fakes.codex import FakeCodex
from tests.fakes.google import FakeGoogle

DIALECTS = ("chat", "responses", "anthropic", "gemini")
UPSTREAMS = ("code_assist", "ai_studio", "codex")


# ---------------------------------------------------------------- the client side


@dataclass
class Event:
    at: float  # time.monotonic() when its terminating blank line arrived
    name: str | None  # the SSE `event:` field
    data: str

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return None


@dataclass
class Streamed:
    status: int
    started: float
    ended: float
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    body: bytes = b""  # a non-200 answer's body
    aborted: str | None = None  # the transfer broke off (httpx's error)

    def json(self) -> Any:
        return json.loads(self.body)


def request_for(dialect: str, model: str, text: str, stream: bool = True) -> tuple[str, dict]:
    """(path, body) of a generation request in `dialect`."""
    messages = [{"role": "user", "content": text}]
    if dialect == "chat":
        return "/v1/chat/completions", {"model": model, "messages": messages, "stream": stream}
    if dialect == "responses":
        return "/v1/responses", {"model": model, "input": text, "stream": stream}
    if dialect == "anthropic":
        body = {"model": model, "max_tokens": 256, "messages": messages, "stream": stream}
        return "/v1/messages", body
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    return f"/v1beta/models/{model}:{method}", body


HEADERS = {"anthropic-version": "2023-06-01", "authorization": "Bearer sk-test"}


def parse_event(raw: bytes, at: float) -> Event:
    name, data = None, []
    for line in raw.decode("utf-8", "replace").split("\n"):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return Event(at, name, "\n".join(data))


def stream(
    base_url: str, dialect: str, model: str, text: str = "hello", timeout: float = 20.0
) -> Streamed:
    """One streamed request; every event with the moment it arrived."""
    path, body = request_for(dialect, model, text)
    started = time.monotonic()
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("POST", base_url + path, json=body, headers=HEADERS) as r,
    ):
        out = Streamed(r.status_code, started, started, dict(r.headers))
        if r.status_code != 200:
            out.body = r.read()
            out.ended = time.monotonic()
            return out
        buf = b""
        try:
            for chunk in r.iter_bytes():
                buf += chunk.replace(b"\r\n", b"\n")
                while b"\n\n" in buf:
                    raw, buf = buf.split(b"\n\n", 1)
                    if raw.strip():
                        out.events.append(parse_event(raw, time.monotonic()))
        except httpx.HTTPError as e:
            out.aborted = repr(e)
        if buf.strip():
            out.events.append(parse_event(buf, time.monotonic()))
    out.ended = time.monotonic()
    return out


def text_events(dialect: str, events: list[Event]) -> list[tuple[Event, str]]:
    """The events that carry answer text, with their text."""
    out = []
    for ev in events:
        obj = ev.json()
        if not isinstance(obj, dict):
            continue
        text = ""
        if dialect == "chat":
            choices = obj.get("choices") or [{}]
            text = (choices[0].get("delta") or {}).get("content") or ""
        elif dialect == "responses" and ev.name == "response.output_text.delta":
            text = obj["delta"]
        elif dialect == "anthropic" and ev.name == "content_block_delta":
            delta = obj["delta"]
            text = delta.get("text", "") if delta.get("type") == "text_delta" else ""
        elif dialect == "gemini":
            parts = ((obj.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        if text:
            out.append((ev, text))
    return out


def text_of(dialect: str, events: list[Event]) -> str:
    return "".join(text for _, text in text_events(dialect, events))


def completed(dialect: str, events: list[Event]) -> bool:
    """The stream ended the way a successful one does in `dialect`."""
    if not events:
        return False
    if dialect == "chat":
        return events[-1].data == "[DONE]"
    if dialect == "responses":
        return any(ev.name == "response.completed" for ev in events)
    if dialect == "anthropic":
        return any(ev.name == "message_stop" for ev in events)
    last = events[-1].json() or {}
    return (last.get("candidates") or [{}])[0].get("finishReason") == "STOP"


def error_event(dialect: str, events: list[Event]) -> dict | None:
    """The error event the stream carries, in `dialect`'s own spelling, or None."""
    for ev in events:
        obj = ev.json()
        if not isinstance(obj, dict):
            continue
        if dialect in ("chat", "gemini") and ev.name is None and "error" in obj:
            return obj["error"]
        if dialect == "responses" and ev.name == "response.failed":
            return obj["response"]["error"]
        if dialect == "anthropic" and ev.name == "error":
            assert obj["type"] == "error"
            return obj["error"]
    return None


def error_message(dialect: str, body: dict) -> str:
    """The message of a JSON error body in `dialect`'s shape (asserting the shape)."""
    if dialect == "anthropic":
        assert body["type"] == "error" and isinstance(body["error"]["type"], str), body
        return body["error"]["message"]
    if dialect == "gemini":
        assert isinstance(body["error"]["code"], int) and body["error"]["status"], body
        return body["error"]["message"]
    assert isinstance(body["error"]["type"], str), body  # the OpenAI shape (chat, responses)
    return body["error"]["message"]


# ---------------------------------------------------------------- the upstreams, alike


@dataclass
class Upstream:
    """One upstream kind behind its own proxy, with two accounts: "A" and "B" as the fake names
    them (a Code Assist project, an AI Studio key, a Codex account id)."""

    name: str
    base_url: str
    google: FakeGoogle
    codex: FakeCodex

    @property
    def is_codex(self) -> bool:
        return self.name == "codex"

    def enqueue(self, *replies: Any) -> None:
        (self.codex if self.is_codex else self.google).enqueue(*replies)

    def set_delay(self, seconds: float) -> None:
        (self.codex if self.is_codex else self.google).event_delay = seconds

    @property
    def peer_closed(self) -> list[float]:
        return (self.codex if self.is_codex else self.google).peer_closed

    def calls(self) -> list[tuple[str | None, int]]:
        """(account, status) of every generation call, in order (status 0 = dropped)."""
        if self.is_codex:
            recs = self.codex.responses_requests
            return [(r.headers.get("chatgpt-account-id"), r.status) for r in recs]
        rpcs = ("generateContent", "streamGenerateContent")
        if self.name == "ai_studio":
            rpcs = tuple("ai_studio:" + r for r in rpcs)
        return [(r.credential, r.status) for r in list(self.google.requests) if r.rpc in rpcs]

    # ---- replies
    def rate_limit(self, model: str) -> Any:
        if self.is_codex:
            return fc.UsageLimit(600)
        if self.name == "ai_studio":
            return fg.ai_studio_rate_limited("60s", model)
        return fg.rate_limited("60s", "RATE_LIMIT_EXCEEDED", model)

    def slow(self, words: int = 5) -> tuple[Any, str]:
        """A reply of several events, and its text."""
        chunks = [f"word{i} " for i in range(words)]
        if self.is_codex:
            return fc.Text("".join(chunks)), "".join(chunks)
        return fg.Raw([{"text": c} for c in chunks]), "".join(chunks)

    def cut(self, after: int) -> Any:
        """Dropped after `after` events that include some answer text."""
        if self.is_codex:  # rate_limits, created, in_progress, item, part, then deltas
            return fc.Cut(5 + after, fc.Text("one two three four five six seven"))
        return fg.CutStream(after, fg.Raw([{"text": f"w{i} "} for i in range(6)]))

    def stall(self, seconds: float, after: int | None = None) -> Any:
        if self.is_codex:
            reply = fc.Text("w0 w1 w2 w3 w4 w5")
            return fc.Stall(seconds, None if after is None else 5 + after, reply)
        reply = fg.Raw([{"text": f"w{i} "} for i in range(6)])
        return fg.Stall(seconds, after, reply if after is not None else None)
