"""The neutral conversation and stream-event types every dialect translates to and from.

The IR is a superset of what the client dialects express: text, images, tool calls with ids,
tool results (text and images), thinking with signatures, usage and finish reasons. Dialect
modules only know their own wire format and these types (docs/architecture.md "Rules of the house":
a hub, not a matrix).

Plain slotted dataclasses, not pydantic models: they are built on the hot path for every stream
event and must stay cheap (docs/architecture.md "Performance budget").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal


class RequestError(ValueError):
    """A client request that cannot be translated: becomes a 400 in the caller's dialect.

    `param` names the offending field (e.g. "messages[2].content") so the message can point at it.
    """

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


# ---------------------------------------------------------------- content parts


@dataclass(slots=True)
class TextPart:
    text: str


@dataclass(slots=True)
class ImagePart:
    """An image: inline base64 `data` with its `mime_type`, or a remote `url`."""

    mime_type: str
    data: str | None = None
    url: str | None = None


# Opaque reasoning state of the Codex/Responses family travels in ThinkingPart.signature with this
# prefix, so each dialect can tell it from a Gemini thoughtSignature (base64) or an Anthropic
# signature and replay it only where it belongs (as a Responses `reasoning` item).
CODEX_REASONING_PREFIX = "codex-rs:"

# Freeform ("custom") tools of the OpenAI dialects (GPT-5's raw-string tools, Codex's apply_patch)
# travel as function tools with one string parameter `input`, and their calls as arguments
# {"input": <raw text>}. Request.extras[CUSTOM_TOOLS] lists their names (the way back turns calls
# to them into the client's custom calls again); Request.extras[CUSTOM_TOOL_FORMATS] maps a name to
# its input format in the Responses form ({"type": "grammar", "syntax", "definition"}), so an
# upstream that has custom tools itself (Codex) gets the tool as it was declared.
CUSTOM_TOOLS = "responses_custom_tools"
CUSTOM_TOOL_FORMATS = "custom_tool_formats"


def custom_input(args: dict[str, Any]) -> str:
    """The raw text of a custom tool call from its function-style arguments. Models sometimes
    rename the one parameter or send a non-string: a lone value is the input."""
    value = args.get("input")
    if isinstance(value, str):
        return value
    if len(args) == 1:
        (only,) = args.values()
        return only if isinstance(only, str) else _json_text(only)
    return _json_text(args) if args else ""


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return ""


@dataclass(slots=True)
class ThinkingPart:
    """Model reasoning. `signature` is the opaque token the upstream needs back in history
    (Anthropic `signature`, Gemini `thoughtSignature`); `redacted` marks Anthropic redacted_thinking
    whose opaque payload is kept in `signature`."""

    text: str
    signature: str | None = None
    redacted: bool = False


@dataclass(slots=True)
class ToolCallPart:
    """A call the model made. `arguments` is the parsed JSON object; `signature` is the Gemini
    thoughtSignature attached to the functionCall part (must be replayed in history)."""

    id: str
    name: str
    arguments: dict[str, Any]
    signature: str | None = None


@dataclass(slots=True)
class ToolResultPart:
    """The result of a tool call, bound to the call by `call_id`. `name` is filled when known
    (Gemini needs it; translators look it up from the earlier call in the same request)."""

    call_id: str
    content: list[TextPart | ImagePart]
    name: str | None = None
    is_error: bool = False


@dataclass(slots=True)
class WebSearchPart:
    """A web search the upstream ran itself (Codex `web_search_call`; Anthropic `server_tool_use`
    + `web_search_tool_result`): the query and the pages it found (`{"url", "title"}` each). It
    is both a part (answers, history) and a stream event (it arrives whole)."""

    id: str
    query: str
    results: list[dict[str, str]] = field(default_factory=list)


Part = TextPart | ImagePart | ThinkingPart | ToolCallPart | ToolResultPart | WebSearchPart

Role = Literal["user", "assistant", "system"]


@dataclass(slots=True)
class Message:
    """One turn. Tool results live in `user` messages (as in Anthropic); `system` here means a
    system/developer message *inside* the conversation (the leading ones go to Request.system)."""

    role: Role
    parts: list[Part]


# ---------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # raw JSON Schema from the client


@dataclass(slots=True)
class ToolChoice:
    """auto: the model decides; none: no tool; required: some tool; tool: the one named."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max", "auto"]


@dataclass(slots=True)
class Thinking:
    """What the client asked for. Exactly one of `effort` / `budget` is normally set; `auto`
    effort (or Anthropic `adaptive`) means "dynamic". `include_thoughts` None = upstream default."""

    effort: Effort | None = None
    budget: int | None = None
    include_thoughts: bool | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message]
    system: list[str] = field(default_factory=list)  # leading system / developer texts
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_mime_type: str | None = None  # "application/json" for JSON mode
    response_schema: dict[str, Any] | None = None  # JSON Schema of a structured answer
    thinking: Thinking | None = None
    include_usage: bool = False  # OpenAI stream_options.include_usage
    # What the client sent that was knowingly not translated, one human-readable note each (the
    # addon logs them): the one documented place where input may disappear (docs/architecture.md
    # "Rules of the house").
    dropped: list[str] = field(default_factory=list)
    # the client asked for the fast lane (Anthropic `speed: "fast"`); Codex: service_tier priority
    fast: bool = False
    # the client offered the upstream's own web search (Anthropic's `web_search_…` server tool);
    # Codex: the `web_search` tool
    web_search: bool = False
    # Dialect-specific values kept aside so nothing silently disappears, keyed by dialect name.
    extras: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- response

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(slots=True)
class Usage:
    """Token counts. `output_tokens` includes `reasoning_tokens` (as OpenAI counts them)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[TextPart | ImagePart | ThinkingPart | ToolCallPart | WebSearchPart]
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)


# ---------------------------------------------------------------- stream events
# Upstream decoders turn upstream bytes into these; client encoders turn them into client bytes.
# A tool call is always ToolCallStart, zero or more ToolCallDelta, ToolCallEnd (Gemini sends whole
# calls and emits all three at once; Codex streams argument fragments).


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    text: str
    signature: str | None = None  # may arrive alone (text "") after the thinking text


@dataclass(slots=True)
class ToolCallStart:
    id: str
    name: str
    signature: str | None = None


@dataclass(slots=True)
class ToolCallDelta:
    id: str
    arguments: str  # a fragment of the JSON text of the arguments


@dataclass(slots=True)
class ToolCallEnd:
    id: str
    arguments: dict[str, Any]  # the complete parsed arguments


@dataclass(slots=True)
class ImageOut:
    mime_type: str
    data: str


@dataclass(slots=True)
class UsageUpdate:
    usage: Usage  # cumulative: the last one wins


@dataclass(slots=True)
class Finish:
    reason: FinishReason


@dataclass(slots=True)
class StreamError:
    """The upstream failed after the stream started; encoders emit the dialect's error event."""

    message: str
    status: int = 500
    code: str | None = None


Event = (
    StreamStart
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | ImageOut
    | WebSearchPart
    | UsageUpdate
    | Finish
    | StreamError
)
