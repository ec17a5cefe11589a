"""Google's error replies (Code Assist and AI Studio): read them, and say what they mean.

Parsing and classifying live side by side, so one module holds every fact about a Google refusal:
its shapes, its retry hints, and the rest it earns the account (docs/upstreams.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from cliproxy.translators.fault import Fault
from cliproxy.translators.fault import UpstreamError
from cliproxy.translators.fault import by_status
from cliproxy.translators.sse import dumps


def read_error(status: int, body: bytes, retry_after: str | None, now: float) -> UpstreamError:
    """An upstream refusal, parsed and classified. `retry_after` and `now` are unused: Google
    names its delays in the body (RetryInfo)."""
    message, status_name, details = parse_error(body)
    return UpstreamError(status, message, classify(status, message, details), status_name, details)


def parse_error(body: bytes) -> tuple[str, str | None, list[Any]]:
    """(message, canonical status, details) from a Google error body: `{"error":{…}}`,
    `[{"error":{…}}]`, an OAuth `{"error":"…","error_description":"…"}`, or plain text.
    Never raises."""
    try:
        text = (
            body.decode("utf-8", errors="replace")
            if isinstance(body, bytes | bytearray)
            else str(body)
        )
    except Exception:
        return "upstream error", None, []
    try:
        obj: Any = json.loads(text)
    except ValueError:
        return (text.strip()[:2000] or "upstream error"), None, []
    return _error_fields(obj, 0)


def _error_fields(obj: Any, depth: int) -> tuple[str, str | None, list[Any]]:
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if not isinstance(obj, dict):
        return (dumps(obj)[:2000] if obj is not None else "upstream error"), None, []
    err = obj.get("error")
    if isinstance(err, str):
        desc = obj.get("error_description")
        return (desc if isinstance(desc, str) and desc else err), None, []
    if not isinstance(err, dict):
        message = obj.get("message")
        return (message if isinstance(message, str) else dumps(obj)[:2000]), None, []
    message = err.get("message")
    status = err.get("status")
    details = err.get("details")
    message = message if isinstance(message, str) else "upstream error"
    status = status if isinstance(status, str) else None
    details = details if isinstance(details, list) else []
    # gemini-cli also unwraps JSON nested in `message`
    if depth < 3 and message.lstrip().startswith(("{", "[")):
        try:
            inner = json.loads(message)
        except ValueError:
            inner = None
        if isinstance(inner, dict | list):
            m2, s2, d2 = _error_fields(inner, depth + 1)
            if m2 != "upstream error":
                return m2, s2 or status, d2 or details
    return message, status, details


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_RESET_AFTER = re.compile(r"(?:reset after|retry in)\s+((?:\d+(?:\.\d+)?(?:h|ms|us|µs|ns|m|s))+)")


def parse_duration(text: str) -> float | None:
    """Go-style durations as Google writes them: `539.477544ms`, `0.5s`, `40s`, `1h2m3s`."""
    text = text.strip()
    matches = list(_GO_DURATION.finditer(text))
    if not matches or "".join(m.group(0) for m in matches) != text:
        return None
    return sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2)] for m in matches)


def retry_delay(message: str, details: list) -> float | None:
    """Seconds until the quota resets, in CLIProxyAPI v7's order (docs/upstreams.md):
    RetryInfo.retryDelay, then ErrorInfo.metadata.quotaResetDelay, then the message text."""
    for kind, key in (("RetryInfo", "retryDelay"), ("ErrorInfo", "quotaResetDelay")):
        for detail in details:
            if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith(kind):
                continue
            source = detail if kind == "RetryInfo" else detail.get("metadata") or {}
            value = source.get(key) if isinstance(source, dict) else None
            if isinstance(value, str) and (seconds := parse_duration(value)) is not None:
                return seconds
    match = _RESET_AFTER.search(message)
    return parse_duration(match.group(1)) if match else None


def error_reason(details: list) -> str | None:
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("ErrorInfo"):
            reason = detail.get("reason")
            return reason if isinstance(reason, str) else None
    return None


_NO_QUOTA = re.compile(r"limit:\s*0\b")


def classify(status: int, message: str, details: list) -> Fault:
    """A Google error (Code Assist or AI Studio) for the pool (docs/upstreams.md)."""
    reason = error_reason(details)
    if status == 400 and reason == "API_KEY_INVALID":
        return Fault("unusable", reason="the AI Studio API key is not valid")
    if status in (429, 499) or (status == 503 and reason != "MODEL_CAPACITY_EXHAUSTED"):
        if reason in ("MODEL_CAPACITY_EXHAUSTED", "MODEL_CAPACITY_EXCEEDED"):
            return Fault("server")  # the model is busy for everyone, not this account
        if _NO_QUOTA.search(message):
            return Fault("quota", float("inf"))  # no quota at all: rest as long as allowed
        return Fault("quota", retry_delay(message, details))
    return by_status(status)
