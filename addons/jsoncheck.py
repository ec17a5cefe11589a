"""Parsed JSON a client sent, checked once for what no later step can handle (CONTRACT §5):
nesting beyond MAX_DEPTH and strings that are not text."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 100  # JSON nesting a client may send (CONTRACT §5); upstreams refuse far less


def check_json(value: Any) -> str | None:
    """What makes a parsed JSON body unusable, or None: nesting deeper than MAX_DEPTH, or a
    string that is no text (a lone surrogate `\\ud800` cannot be encoded as UTF-8, so every
    step after parsing would fail on it). Iterative: a hostile depth cannot exhaust the
    stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return "a string holds a lone surrogate (invalid Unicode)"
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"the JSON nests deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not _encodable(key):
                        return "a key holds a lone surrogate (invalid Unicode)"
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
