"""Google AI Studio (Generative Language API) with an API key (docs/upstreams.md "AI Studio").

Same body format as Code Assist's `request`, without the envelope; answers without the
`{"response": …}` wrapper.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def method_url(base: str, model: str, method: str, stream: bool = False) -> str:
    # escaped whatever the caller checked: a model name never alters the path or the query
    # (`gemini-x?key=…&`, `gemini-x/../../files`) of a request sent with the operator's key
    url = f"{base}/v1beta/models/{quote(model, safe='')}:{quote(method, safe='')}"
    return url + "?alt=sse" if stream else url


def headers(key: str, stream: bool) -> dict[str, str]:
    return {
        "x-goog-api-key": key,
        "content-type": "application/json",
        "accept-encoding": "identity",
        "accept": "text/event-stream" if stream else "application/json",
    }


def request_body(payload: dict[str, Any], model: str, method: str) -> dict[str, Any]:
    """A Gemini request as the public API takes it: session_id is Code Assist's (gemini-cli
    sends it) and the public API refuses it; the URL names the model."""
    bare = {k: v for k, v in payload.items() if k not in ("session_id", "sessionId", "model")}
    return count_tokens_body(bare, model) if method == "countTokens" else bare


def count_tokens_body(request: dict, model: str) -> dict:
    """countTokens that counts system prompt and tools too: the public API's
    `generateContentRequest` form (a bare `contents` would ignore them)."""
    return {"generateContentRequest": {"model": f"models/{model}", **request}}
