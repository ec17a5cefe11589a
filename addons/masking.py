"""Secrets as stored flows show them: cut to their last 4 characters, enough to tell two apart
(docs/configuration.md "Observability"). The wire carries the real values."""

from __future__ import annotations

from mitmproxy import http

SECRET_HEADERS = ("authorization", "proxy-authorization", "x-goog-api-key", "x-api-key",
                  "chatgpt-account-id", "cookie")  # fmt: skip


def mask(value: str) -> str:
    """A secret cut to its last 4 characters, enough to tell two apart ("Bearer " is kept)."""
    scheme, _, token = (
        value.partition(" ") if value.lower().startswith("bearer ") else ("", "", value)
    )
    if token.startswith("…"):
        return value  # masked already (responseheaders, then response)
    tail = token[-4:] if len(token) > 8 else ""
    return (f"{scheme} " if scheme else "") + f"…{tail}"


def mask_request(request: http.Request) -> None:
    for name in SECRET_HEADERS:
        if name in request.headers:
            request.headers[name] = mask(request.headers[name])
    if "key" in request.query:
        request.query["key"] = mask(request.query["key"])


def masked_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: mask(v) if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}
