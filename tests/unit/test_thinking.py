"""Thinking tables (docs/upstreams.md "Cross-dialect mappings"): IR Thinking -> Gemini
thinkingConfig, budget -> effort."""

from __future__ import annotations

import pytest
from cliproxy.translators import ir
from cliproxy.translators.thinking import budget_to_effort
from cliproxy.translators.thinking import gemini_thinking_config
from hypothesis import given
from hypothesis import strategies as st

T = ir.Thinking


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (-1, "auto"),
        (-500, "auto"),
        (0, "none"),
        (1, "minimal"),
        (512, "minimal"),
        (513, "low"),
        (1024, "low"),
        (1025, "medium"),
        (8192, "medium"),
        (8193, "high"),
        (24576, "high"),
        (24577, "xhigh"),
        (128000, "xhigh"),
    ],
)
def test_budget_to_effort(budget: int, effort: str) -> None:
    assert budget_to_effort(budget) == effort


PRO = "gemini-2.5-pro"
FLASH = "gemini-2.5-flash"
LITE = "gemini-2.5-flash-lite"
G3PRO = "gemini-3-pro-preview"
G31PRO = "gemini-3.1-pro-preview"
G3FLASH = "gemini-3-flash-preview"


@pytest.mark.parametrize(
    ("thinking", "model", "expected"),
    [
        # no request -> upstream default
        (None, PRO, None),
        (T(), PRO, None),
        (T(include_thoughts=False), FLASH, {"includeThoughts": False}),
        # 2.5 Pro: 128..32768, dynamic allowed, "none" -> 128 without thoughts
        (T(effort="none"), PRO, {"thinkingBudget": 128, "includeThoughts": False}),
        (T(effort="minimal"), PRO, {"thinkingBudget": 512, "includeThoughts": True}),
        (T(effort="low"), PRO, {"thinkingBudget": 1024, "includeThoughts": True}),
        (T(effort="medium"), PRO, {"thinkingBudget": 8192, "includeThoughts": True}),
        (T(effort="high"), PRO, {"thinkingBudget": 24576, "includeThoughts": True}),
        (T(effort="xhigh"), PRO, {"thinkingBudget": 32768, "includeThoughts": True}),
        (T(effort="max"), PRO, {"thinkingBudget": 32768, "includeThoughts": True}),
        (T(effort="auto"), PRO, {"thinkingBudget": -1, "includeThoughts": True}),
        (T(budget=0), PRO, {"thinkingBudget": 128, "includeThoughts": False}),
        (T(budget=50), PRO, {"thinkingBudget": 128, "includeThoughts": True}),
        (T(budget=100000), PRO, {"thinkingBudget": 32768, "includeThoughts": True}),
        (T(budget=-1), PRO, {"thinkingBudget": -1, "includeThoughts": True}),
        (T(budget=-7), PRO, {"thinkingBudget": -1, "includeThoughts": True}),
        (
            T(budget=4096, include_thoughts=False),
            PRO,
            {"thinkingBudget": 4096, "includeThoughts": False},
        ),
        # an explicit budget wins over an effort on 2.5
        (T(effort="high", budget=2000), PRO, {"thinkingBudget": 2000, "includeThoughts": True}),
        # 2.5 Flash / Flash-Lite: 0..24576
        (T(effort="none"), FLASH, {"thinkingBudget": 0, "includeThoughts": False}),
        (T(effort="xhigh"), FLASH, {"thinkingBudget": 24576, "includeThoughts": True}),
        (T(effort="max"), LITE, {"thinkingBudget": 24576, "includeThoughts": True}),
        (T(budget=0), LITE, {"thinkingBudget": 0, "includeThoughts": False}),
        (T(effort="auto"), FLASH, {"thinkingBudget": -1, "includeThoughts": True}),
        (
            T(effort="none", include_thoughts=True),
            FLASH,
            {"thinkingBudget": 0, "includeThoughts": True},
        ),
        # "models/" prefix and unknown models (0..32768)
        (
            T(effort="medium"),
            "models/gemini-2.5-pro",
            {"thinkingBudget": 8192, "includeThoughts": True},
        ),
        (T(effort="max"), "gemma-4-31b-it", {"thinkingBudget": 32768, "includeThoughts": True}),
        (T(effort="none"), "gemma-4-31b-it", {"thinkingBudget": 0, "includeThoughts": False}),
        # Gemini 3: thinkingLevel only, never thinkingBudget
        (T(effort="high"), G3FLASH, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (T(effort="medium"), G3FLASH, {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
        (T(effort="low"), G3FLASH, {"thinkingLevel": "LOW", "includeThoughts": True}),
        (T(effort="minimal"), G3FLASH, {"thinkingLevel": "MINIMAL", "includeThoughts": True}),
        (T(effort="none"), G3FLASH, {"thinkingLevel": "MINIMAL", "includeThoughts": False}),
        (T(effort="xhigh"), G3FLASH, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (T(effort="max"), G3FLASH, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (T(effort="auto"), G3FLASH, {"includeThoughts": True}),
        (T(budget=-1), G3FLASH, {"includeThoughts": True}),
        (T(budget=8192), G3FLASH, {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
        (T(budget=0), G3FLASH, {"thinkingLevel": "MINIMAL", "includeThoughts": False}),
        (T(budget=30000), G3FLASH, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        # an explicit effort wins over a budget on 3.x
        (T(effort="low", budget=30000), G3FLASH, {"thinkingLevel": "LOW", "includeThoughts": True}),
        # 3 Pro accepts LOW/HIGH only, 3.1 Pro has no MINIMAL
        (T(effort="high"), G3PRO, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (T(effort="low"), G3PRO, {"thinkingLevel": "LOW", "includeThoughts": True}),
        (T(effort="medium"), G3PRO, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (T(effort="none"), G3PRO, {"thinkingLevel": "LOW", "includeThoughts": False}),
        (T(budget=512), G3PRO, {"thinkingLevel": "LOW", "includeThoughts": True}),
        (T(effort="minimal"), G31PRO, {"thinkingLevel": "LOW", "includeThoughts": True}),
        (T(effort="medium"), G31PRO, {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
    ],
)
def test_gemini_thinking_config(
    thinking: ir.Thinking | None, model: str, expected: dict | None
) -> None:
    assert gemini_thinking_config(thinking, model) == expected


EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh", "max", "auto"]
MODELS = [PRO, FLASH, LITE, G3PRO, G31PRO, G3FLASH, "gemma-4-31b-it", "", "models/gemini-3-x"]


@given(
    effort=st.none() | st.sampled_from(EFFORTS),
    budget=st.none() | st.integers(-(10**9), 10**9),
    include=st.none() | st.booleans(),
    model=st.sampled_from(MODELS) | st.text(max_size=20),
)
def test_config_keys_per_family(
    effort: str | None, budget: int | None, include: bool | None, model: str
) -> None:
    cfg = gemini_thinking_config(ir.Thinking(effort, budget, include), model)  # type: ignore[arg-type]
    if cfg is None:
        assert effort is None and budget is None and include is None
        return
    if model.lower().removeprefix("models/").startswith("gemini-3"):
        assert "thinkingBudget" not in cfg
        assert cfg.get("thinkingLevel", "HIGH") in {"MINIMAL", "LOW", "MEDIUM", "HIGH"}
    else:
        assert "thinkingLevel" not in cfg
        if "thinkingBudget" in cfg:
            b = cfg["thinkingBudget"]
            assert b == -1 or 0 <= b <= 32768
    if include is not None:
        assert cfg["includeThoughts"] is include
