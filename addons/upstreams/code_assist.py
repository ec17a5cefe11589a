"""Google Code Assist (Gemini CLI accounts): URL, headers and error facts (UPSTREAMS.md §2)."""

from __future__ import annotations

# What Code Assist serves (UPSTREAMS.md §9). It has no model-list method, so the list is ours.
MODELS: tuple[str, ...] = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3.1-pro-preview",
    "gemini-3-flash-preview",
)

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
        # Translated chunk by chunk: compressed bytes would reach the translator (MITMPROXY.md §5).
        "accept-encoding": "identity",
        "accept": "text/event-stream" if stream else "application/json",
    }
