"""Field checks shared by every dialect's request parser, with one message style: the full path
of the field, then what it must be ("max_tokens must be an integer",
"messages[0].content[1].text must be a string"). The path is also the error's `param`, so each
dialect's 400 points at the field in its own error shape.

JSON booleans are Python ints, so every numeric check excludes bool explicitly.
"""

from __future__ import annotations

import math

from cliproxy.translators import ir


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(value: object, param: str) -> float | None:
    """A finite number, or None when absent."""
    if value is None:
        return None
    if not is_number(value):
        raise ir.RequestError(f"{param} must be a number", param)
    try:
        result = float(value)  # type: ignore[arg-type]
    except OverflowError:  # e.g. 10**400: JSON allows it, a float does not
        raise ir.RequestError(f"{param} must be a finite number", param) from None
    if not math.isfinite(result):
        raise ir.RequestError(f"{param} must be a finite number", param)
    return result


def integer(
    value: object, param: str, minimum: int | None = None, *, whole_floats: bool = False
) -> int | None:
    """An integer, or None when absent. `whole_floats`: 3.0 counts as 3 (proto-JSON clients,
    i.e. Gemini's, may write integers that way)."""
    if value is None:
        return None
    if whole_floats and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ir.RequestError(f"{param} must be an integer", param)
    if minimum is not None and value < minimum:
        raise ir.RequestError(f"{param} must be at least {minimum}", param)
    return value


def boolean(value: object, param: str) -> bool | None:
    """A boolean, or None when absent."""
    if value is not None and not isinstance(value, bool):
        raise ir.RequestError(f"{param} must be a boolean", param)
    return value


def string(value: object, param: str) -> str:
    """A string (required; may be empty)."""
    if not isinstance(value, str):
        raise ir.RequestError(f"{param} must be a string", param)
    return value


def optional_string(value: object, param: str) -> str | None:
    """A string, or None when absent."""
    return None if value is None else string(value, param)
