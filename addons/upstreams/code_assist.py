"""Google Code Assist (Gemini CLI accounts): URL, headers and error facts (docs/upstreams.md "Code
Assist")."""

from __future__ import annotations

from typing import Any

from cliproxy.translators import code_assist

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
        # Translated chunk by chunk: compressed bytes would reach the translator (docs/mitmproxy.md
        # "Streaming responses").
        "accept-encoding": "identity",
        "accept": "text/event-stream" if stream else "application/json",
    }


def request_body(payload: dict[str, Any], model: str, method: str, project: str) -> dict[str, Any]:
    """The envelope Code Assist wants around a Gemini request (countTokens has its own)."""
    if method == "countTokens":
        return code_assist.count_tokens_request(payload, model)
    return code_assist.wrap_request(payload, model, project)
