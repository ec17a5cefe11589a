"""A local token estimate for upstreams without a counting method (Codex).

About four characters per token for text and JSON (the usual rule of thumb for GPT-family
tokenizers) plus a flat cost per image; system prompt and tool schemas count too, since clients
such as Claude Code use the number to decide when to compact.
"""

from __future__ import annotations

import json

from cliproxy.translators import ir

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 258  # what Gemini charges per image; a fair middle for an estimate
PER_MESSAGE_TOKENS = 3


def _part_chars(part: ir.Part) -> tuple[int, int]:
    """(characters, images) of one part."""
    if isinstance(part, ir.TextPart):
        return len(part.text), 0
    if isinstance(part, ir.ThinkingPart):
        return len(part.text), 0
    if isinstance(part, ir.ImagePart):
        return 0, 1
    if isinstance(part, ir.ToolCallPart):
        return len(part.name) + len(json.dumps(part.arguments)), 0
    chars = images = 0
    for inner in part.content:
        c, i = _part_chars(inner)
        chars, images = chars + c, images + i
    return chars, images


def estimate_tokens(req: ir.Request) -> int:
    chars = sum(len(s) for s in req.system)
    images = 0
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    for message in req.messages:
        for part in message.parts:
            c, i = _part_chars(part)
            chars, images = chars + c, images + i
    total = -(-chars // CHARS_PER_TOKEN) + images * IMAGE_TOKENS
    return total + PER_MESSAGE_TOKENS * len(req.messages)
