"""Google Code Assist (Gemini CLI accounts): URL, headers and error facts
(docs/upstreams.md "Code Assist")."""

from __future__ import annotations

import re

from cliproxy.addons.upstreams.fault import Fault
from cliproxy.addons.upstreams.fault import by_status

# What Code Assist serves (docs/upstreams.md "Models and preview fallback"). It has no model-list
# method, so the list is ours.
MODELS: tuple[str, ...] = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3.1-pro-preview",
    "gemini-3-flash-preview",
)

# Older preview ids tried when every account refuses a model for quota
# (`quota-exceeded.switch-preview-model`, docs/upstreams.md "Models and preview fallback";
# CLIProxyAPI v3.0.5's list).
PREVIEW_MODELS: dict[str, tuple[str, ...]] = {
    "gemini-2.5-pro": ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05"),
    "gemini-2.5-flash": ("gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20"),
    "gemini-2.5-flash-lite": ("gemini-2.5-flash-lite-preview-06-17",),
}

USER_AGENT = "google-api-nodejs-client/10.9.0"
API_VERSION = "v1internal"


def method_url(base: str, method: str, stream: bool = False) -> str:
    """`{base}/v1internal:{method}` (a colon, not a slash); SSE needs `alt=sse`."""
    url = f"{base}/{API_VERSION}:{method}"
    return url + "?alt=sse" if stream else url


def headers(access_token: str, stream: bool) -> dict[str, str]:
    return {
        "authorization": f"Bearer {access_token}",
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Translated chunk by chunk: compressed bytes would reach the translator
        # (docs/mitmproxy.md "Streaming responses").
        "accept-encoding": "identity",
        "accept": "text/event-stream" if stream else "application/json",
    }


# ---------------------------------------------------------------- error classification

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
    """Seconds until the quota resets, in CLIProxyAPI v7's order
    (docs/upstreams.md "Code Assist errors"): RetryInfo.retryDelay, then
    ErrorInfo.metadata.quotaResetDelay, then the message text."""
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
    """A Google error (Code Assist or AI Studio) for the pool
    (docs/upstreams.md "Code Assist errors", "AI Studio")."""
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
