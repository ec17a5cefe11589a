"""The stream contract every dialect's decoder and encoder keeps, written once.

A decoder turns upstream JSON objects into IR events; an encoder turns IR events into client
bytes. mitmproxy calls the stream callable with each read and cannot take an exception from it
(it would pass the rest of the upstream bytes through untranslated), so an encoder never raises:
a fault becomes the dialect's own error event, a stream that ends without ir.Finish ends in an
error (a cut stream must never look complete), and nothing goes out after the end.
"""

from __future__ import annotations

from typing import Protocol

from cliproxy.translators import ir

# The one wording of an encoder's (or the pipeline's) own fault, whatever the dialect.
FAULT = "proxy translation error"
CUT = "upstream stream ended before completion"


class Decoder(Protocol):
    def feed(self, obj: dict) -> list[ir.Event]: ...
    def finish(self) -> list[ir.Event]: ...


class Encoder(Protocol):
    def encode(self, event: ir.Event) -> list[bytes]: ...
    def finish(self) -> list[bytes]: ...
    def error(self, message: str, status: int = 500) -> list[bytes]: ...


def fault_message(exc: BaseException) -> str:
    """An internal fault as the client reads it: the one wording, then what failed."""
    return f"{FAULT}: {type(exc).__name__}: {exc}"


class SafeStreamEncoder:
    """The encoders' shared contract: never raise (a fault becomes the dialect's error event), a
    stream without ir.Finish ends in an error, and nothing goes out after the end or after an
    error. Usage and the finish reason are kept here for the closing frames.

    A subclass writes the frames: `_encode` (one event; it hands events it has no case for to
    `_track`), `_final` (the closing frames), `_error_frames` (the dialect's error event) and
    `_fault_frames` (an error event that cannot fail, for when `_error_frames` did).
    """

    FAULT = FAULT

    def __init__(self) -> None:
        self._closed = False
        self._finish: ir.FinishReason | None = None
        self._usage = ir.Usage()

    def encode(self, event: ir.Event) -> list[bytes]:
        if self._closed:
            return []
        try:
            return self._encode(event)
        except Exception as exc:  # a bug here must become an error event, not a dead stream
            return self.error(fault_message(exc), 500)

    def finish(self) -> list[bytes]:
        if self._closed:
            return []
        if self._finish is None:  # cut short: the client must see an error, not a clean end
            return self.error(CUT, 502)
        try:
            out = self._final()
        except Exception as exc:
            return self.error(fault_message(exc), 500)
        self._closed = True
        return out

    def error(self, message: str, status: int = 500, code: str | None = None) -> list[bytes]:
        if self._closed:
            return []
        self._closed = True
        try:
            return self._error_frames(message, status, code)
        except Exception:
            return self._fault_frames()

    def _track(self, event: ir.Event) -> list[bytes]:
        """Events that write no frame of their own: usage and the finish reason are kept for
        `_final`; an upstream error ends the stream."""
        match event:
            case ir.UsageUpdate(usage=usage):
                self._usage = usage
            case ir.Finish(reason=reason):
                if self._finish != "tool_calls":  # a late STOP never hides tool calls
                    self._finish = reason
            case ir.StreamError(message=msg, status=status, code=code):
                return self.error(msg, status, code)
            case _:
                pass
        return []

    def _encode(self, event: ir.Event) -> list[bytes]:
        raise NotImplementedError

    def _final(self) -> list[bytes]:
        raise NotImplementedError

    def _error_frames(self, message: str, status: int, code: str | None) -> list[bytes]:
        raise NotImplementedError

    def _fault_frames(self) -> list[bytes]:
        raise NotImplementedError
