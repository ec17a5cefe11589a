"""Fold a stream of IR events into one IR Response (non-stream answers reuse the decoders)."""

from __future__ import annotations

from cliproxy.translators import ir


class ResponseAccumulator:
    """Collects events; `response()` returns the assembled answer. Adjacent text (or thinking)
    deltas merge into one part; tool calls keep their order and ids."""

    def __init__(self, id: str = "", model: str = "") -> None:
        self.id = id
        self.model = model
        self.parts: list[
            ir.TextPart | ir.ImagePart | ir.ThinkingPart | ir.ToolCallPart | ir.WebSearchPart
        ] = []
        self.finish_reason: ir.FinishReason | None = None
        self.usage = ir.Usage()
        self.error: ir.StreamError | None = None
        self._calls: dict[str, ir.ToolCallPart] = {}

    def add(self, event: ir.Event) -> None:
        last = self.parts[-1] if self.parts else None
        match event:
            case ir.StreamStart(id=id, model=model):
                self.id = self.id or id
                self.model = self.model or model
            case ir.TextDelta(text=text):
                if isinstance(last, ir.TextPart):
                    last.text += text
                elif text:
                    self.parts.append(ir.TextPart(text))
            case ir.ThinkingDelta(text=text, signature=sig):
                if not text and not sig:
                    return  # a no-op event must not open an empty part
                if (
                    isinstance(last, ir.ThinkingPart)
                    and not last.redacted
                    and (last.signature is None)
                ):
                    last.text += text
                    last.signature = sig or last.signature
                else:
                    self.parts.append(ir.ThinkingPart(text, sig or None))
            case ir.ToolCallStart(id=id, name=name, signature=sig):
                call = ir.ToolCallPart(id, name, {}, sig)
                self._calls[id] = call
                self.parts.append(call)
            case ir.ToolCallEnd(id=id, arguments=args):
                if id in self._calls:
                    self._calls[id].arguments = args
            case ir.ImageOut(mime_type=mime, data=data):
                self.parts.append(ir.ImagePart(mime, data))
            case ir.WebSearchPart():
                self.parts.append(event)
            case ir.UsageUpdate(usage=usage):
                self.usage = usage
            case ir.Finish(reason=reason):
                if self.finish_reason != "tool_calls":  # a late STOP never hides tool calls
                    self.finish_reason = reason
            case ir.StreamError():
                self.error = event
            case _:
                pass

    def extend(self, events: list[ir.Event]) -> None:
        for ev in events:
            self.add(ev)

    def response(self) -> ir.Response:
        return ir.Response(
            id=self.id,
            model=self.model,
            parts=self.parts,
            finish_reason=self.finish_reason or "stop",
            usage=self.usage,
        )
