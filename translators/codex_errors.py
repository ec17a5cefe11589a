"""Codex's error replies (ChatGPT backend): read them, and say what they mean.

Parsing and classifying live side by side, so one module holds every fact about a Codex refusal
(docs/upstreams.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from cliproxy.translators.fault import Fault
from cliproxy.translators.fault import UpstreamError
from cliproxy.translators.fault import by_status
from cliproxy.translators.sse import dumps


def read_error(status: int, body: bytes, retry_after: str | None, now: float) -> UpstreamError:
    """An upstream refusal, parsed and classified; `retry_after` is the HTTP header, used when
    the body names no reset."""
    err = parse_error(status, body, now)
    hint = float(retry_after) if retry_after and retry_after.isdigit() else None
    fault = classify(status, err.code, err.resets_in_seconds, hint)
    # a 404 names something the request referred to (an item id the backend never stored)
    override = 400 if status == 404 else None
    return UpstreamError(status, err.message, fault, code=err.code, client_status_override=override)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True, slots=True)
class CodexError:
    """What an error reply says. `code`: `error.code`, else `error.type` (usage_limit_reached,
    usage_not_included…). `resets_in_seconds`: when a usage limit lifts."""

    message: str
    code: str | None = None
    resets_in_seconds: float | None = None
    plan_type: str | None = None


_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")


def _plain_text(text: str) -> str:
    """Crude HTML -> text (Cloudflare pages & co.): tags and scripts out, whitespace squeezed."""
    text = _SCRIPT_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()[:200]


def _resets_in(err: dict[str, Any], now: float) -> float | None:
    resets_at = err.get("resets_at")
    if _is_num(resets_at):
        return max(float(resets_at) - now, 0.0)
    resets_in = err.get("resets_in_seconds")
    if _is_num(resets_in):
        return max(float(resets_in), 0.0)
    return None


def _from_json(obj: Any, now: float) -> CodexError | None:
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        code = _str(err.get("code")) or _str(err.get("type"))
        message = _str(err.get("message")) or code or dumps(err)[:200]
        return CodexError(message, code, _resets_in(err, now), _str(err.get("plan_type")))
    if isinstance(err, str) and err:
        return CodexError(err)
    detail = obj.get("detail")
    if detail is not None:
        message = detail if isinstance(detail, str) else dumps(detail)[:200]
        return CodexError(message)
    message = _str(obj.get("message"))
    if message:
        return CodexError(message, _str(obj.get("code")))
    return None


def parse_error(status: int, body: bytes, now: float) -> CodexError:
    """A Codex error reply -> CodexError (docs/upstreams.md). `now` (unix seconds) turns
    `resets_at` into a delay; passed in so this stays pure. Never raises."""
    try:
        text = bytes(body).decode("utf-8", errors="replace")
        try:
            parsed = _from_json(json.loads(text), now)
        except ValueError:
            parsed = None
        if parsed is not None:
            if not parsed.message:  # e.g. {"detail": ""}: still say something
                return dataclasses.replace(parsed, message=f"HTTP {status}")
            return parsed
        return CodexError(_plain_text(text) or f"HTTP {status}")
    except Exception:
        return CodexError(f"HTTP {status}")


def classify(
    status: int, code: str | None, resets_in_seconds: float | None, retry_after: float | None
) -> Fault:
    """docs/upstreams.md: usage limits rest the account until the reset the backend names;
    a plan without Codex can never serve; 401 means refresh once."""
    if status == 429:
        if code == "usage_not_included":
            return Fault("unusable", reason="this ChatGPT plan does not include Codex")
        return Fault("quota", resets_in_seconds if resets_in_seconds is not None else retry_after)
    return by_status(status)
