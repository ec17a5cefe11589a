"""The upstream's token usage, read from the answer objects the translators already hold.

Pure: the addons read it after an answer is complete (usage history, metrics, access log). Counts
are the upstream's own figures (Gemini `usageMetadata`, Responses/Codex `usage`), never estimates.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translators import codex
from cliproxy.translators import gemini
from cliproxy.translators import ir


def of_answer(obj: Any) -> ir.Usage | None:
    """Usage of one answer object: a Gemini GenerateContentResponse (bare or in a Code Assist
    `{"response": …}` wrapper) or a Responses/Codex `response` object; None when it has none."""
    if not isinstance(obj, dict):
        return None
    meta = obj.get("usageMetadata")
    if meta is None and isinstance(obj.get("response"), dict):
        inner = obj["response"]
        meta = inner.get("usageMetadata")
        if meta is None and isinstance(inner.get("usage"), dict):
            return codex._usage(inner["usage"])
    if isinstance(meta, dict):
        return gemini._usage(meta)
    usage = obj.get("usage")
    if isinstance(usage, dict) and ("input_tokens" in usage or "output_tokens" in usage):
        return codex._usage(usage)
    return None
