"""The stream-encoder contract (translators/stream.py), kept by every client dialect's encoder:
a fault becomes one error event in the dialect's format with one wording, a cut stream ends in an
error, and nothing goes out after the end."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cliproxy.translators import anthropic
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat
from cliproxy.translators import openai_responses
from cliproxy.translators.stream import CUT
from cliproxy.translators.stream import FAULT
from cliproxy.translators.stream import SafeStreamEncoder

ENCODERS: dict[str, Callable[[], SafeStreamEncoder]] = {
    "chat": lambda: openai_chat.StreamEncoder("m"),
    "anthropic": lambda: anthropic.StreamEncoder("m"),
    "responses": lambda: openai_responses.StreamEncoder("m"),
    "gemini": lambda: gemini.StreamEncoder("m"),
    "code_assist": lambda: gemini.StreamEncoder("m", envelope=True),
}

encoders = pytest.mark.parametrize("make", list(ENCODERS.values()), ids=list(ENCODERS))


def error_message(frame: bytes) -> str:
    """The message of a dialect's error frame (every dialect names it `message`)."""
    data = next(line for line in frame.split(b"\n") if line.startswith(b"data: "))
    obj: dict[str, Any] = json.loads(data.removeprefix(b"data: "))
    err = obj["response"]["error"] if obj.get("type") == "response.failed" else obj["error"]
    return err["message"]


def boom(*_: object) -> list[bytes]:
    raise RuntimeError("boom")


def assert_closed(enc: SafeStreamEncoder) -> None:
    assert enc.encode(ir.TextDelta("late")) == []
    assert enc.finish() == []
    assert enc.error("again") == []


@encoders
def test_a_fault_while_encoding_is_one_error_event_then_nothing(
    make: Callable[[], SafeStreamEncoder],
) -> None:
    enc = make()
    enc._encode = boom  # type: ignore[method-assign]
    out = enc.encode(ir.TextDelta("hi"))
    assert error_message(out[-1]) == f"{FAULT}: RuntimeError: boom"
    assert sum(b"boom" in f for f in out) == 1
    assert_closed(enc)


@encoders
def test_a_fault_while_closing_is_an_error_event(make: Callable[[], SafeStreamEncoder]) -> None:
    enc = make()
    enc.encode(ir.StreamStart("r1", "m"))
    enc.encode(ir.Finish("stop"))
    enc._final = boom  # type: ignore[method-assign]
    out = enc.finish()
    assert error_message(out[-1]) == f"{FAULT}: RuntimeError: boom"
    assert_closed(enc)


@encoders
def test_a_failing_error_event_falls_back_to_the_fault_event(
    make: Callable[[], SafeStreamEncoder],
) -> None:
    enc = make()
    enc._error_frames = boom  # type: ignore[method-assign]
    out = enc.error("upstream said no", 503)
    assert [error_message(f) for f in out if b"error" in f] == [FAULT]
    assert_closed(enc)


@encoders
def test_a_stream_without_finish_ends_in_an_error(make: Callable[[], SafeStreamEncoder]) -> None:
    enc = make()
    enc.encode(ir.StreamStart("r1", "m"))
    enc.encode(ir.TextDelta("partial"))
    out = enc.finish()
    assert error_message(out[-1]) == CUT
    assert_closed(enc)


@encoders
def test_an_upstream_error_event_ends_the_stream(make: Callable[[], SafeStreamEncoder]) -> None:
    enc = make()
    enc.encode(ir.StreamStart("r1", "m"))
    out = enc.encode(ir.StreamError("quota gone", 429))
    assert error_message(out[-1]) == "quota gone"
    assert enc.encode(ir.Finish("stop")) == []
    assert_closed(enc)
