"""Thinking / reasoning settings: IR Thinking -> Gemini thinkingConfig, budgets <-> efforts.

The tables are docs/upstreams.md "Cross-dialect mappings" (taken from CLIProxyAPI v7
`internal/thinking/convert.go`). Gemini 2.5 models take a token budget (`thinkingBudget`), Gemini
3.x models take a level (`thinkingLevel`) and reject budgets-as-levels confusion
(docs/upstreams.md "Pitfalls"), so the model name decides which key is written.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translators import ir

# effort -> thinkingBudget for Gemini 2.5 (before clamping to the model's range)
EFFORT_BUDGET: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 128000,
    "auto": -1,
}

# effort -> thinkingLevel for Gemini 3.x; None = leave unset (the model's dynamic default)
EFFORT_LEVEL: dict[str, str | None] = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
    "auto": None,
}

# Levels each Gemini 3 family accepts; an unsupported level moves to the nearest accepted one
# (3 Pro: low/high only; 3.1 Pro: no minimal; Flash models: all four).
_LEVEL_CLAMP: list[tuple[str, dict[str, str]]] = [
    ("gemini-3-pro", {"MINIMAL": "LOW", "MEDIUM": "HIGH"}),
    ("gemini-3.1-pro", {"MINIMAL": "LOW"}),
]


def budget_to_effort(budget: int) -> str:
    """A token budget as an effort name (Anthropic `budget_tokens` -> Codex / Gemini 3)."""
    if budget < 0:
        return "auto"
    if budget == 0:
        return "none"
    if budget <= 512:
        return "minimal"
    if budget <= 1024:
        return "low"
    if budget <= 8192:
        return "medium"
    if budget <= 24576:
        return "high"
    return "xhigh"


def bare_model(model: str) -> str:
    """`models/gemini-2.5-pro` -> `gemini-2.5-pro`, lowercased for table look-ups."""
    m = model.strip().lower()
    return m.removeprefix("models/")


def is_gemini3(model: str) -> bool:
    return bare_model(model).startswith("gemini-3")


def budget_range(model: str) -> tuple[int, int]:
    """(min, max) thinkingBudget the model accepts; -1 (dynamic) is accepted by all 2.5 models."""
    m = bare_model(model)
    if m.startswith("gemini-2.5-pro"):
        return 128, 32768
    if m.startswith("gemini-2.5-flash"):  # flash and flash-lite
        return 0, 24576
    return 0, 32768


def gemini_thinking_config(thinking: ir.Thinking | None, model: str) -> dict[str, Any] | None:
    """The camelCase `generationConfig.thinkingConfig` for `model`, or None to leave the
    upstream default in place (the client asked for nothing)."""
    if thinking is None:
        return None
    if thinking.budget is None and thinking.effort is None:
        if thinking.include_thoughts is None:
            return None
        return {"includeThoughts": thinking.include_thoughts}
    if is_gemini3(model):
        return _level_config(thinking, model)
    return _budget_config(thinking, model)


def _wants_off(thinking: ir.Thinking) -> bool:
    if thinking.budget is not None:
        return thinking.budget == 0
    return thinking.effort == "none"


def _include(thinking: ir.Thinking) -> bool:
    if thinking.include_thoughts is not None:
        return thinking.include_thoughts
    return not _wants_off(thinking)


def _level_config(thinking: ir.Thinking, model: str) -> dict[str, Any]:
    # An explicit effort wins over a budget when a client sent both (documented precedence).
    effort = thinking.effort
    if effort is None and thinking.budget is not None:
        effort = budget_to_effort(thinking.budget)
    level = EFFORT_LEVEL.get(effort or "auto")
    out: dict[str, Any] = {}
    if level is not None:
        m = bare_model(model)
        for prefix, clamp in _LEVEL_CLAMP:
            if m.startswith(prefix):
                level = clamp.get(level, level)
                break
        out["thinkingLevel"] = level
    out["includeThoughts"] = _include(thinking)
    return out


def _budget_config(thinking: ir.Thinking, model: str) -> dict[str, Any]:
    # An explicit budget wins over an effort when a client sent both.
    if thinking.budget is not None:
        budget = thinking.budget
    else:
        budget = EFFORT_BUDGET.get(thinking.effort or "auto", -1)
    if budget < 0:
        budget = -1  # dynamic
    else:
        lo, hi = budget_range(model)
        budget = min(max(budget, lo), hi)
    return {"thinkingBudget": budget, "includeThoughts": _include(thinking)}
