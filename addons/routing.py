"""Which endpoint a client called, in which dialect, and which provider serves a model.

Pure functions over the request line and headers (docs/configuration.md "Endpoints"), so they are
tested without mitmproxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["openai", "anthropic", "gemini"]
Action = Literal[
    "chat",  # POST /v1/chat/completions
    "responses",  # POST /v1/responses
    "messages",  # POST /v1/messages
    "count_tokens",  # POST /v1/messages/count_tokens
    "generate",  # POST …/models/{m}:generateContent
    "stream_generate",  # POST …/models/{m}:streamGenerateContent
    "gemini_count_tokens",  # POST …/models/{m}:countTokens
    "models",  # GET /v1/models, /v1beta/models
    "model",  # GET /v1beta/models/{m}, /v1/models/{m}
    "healthz",  # GET /healthz
    "relay",  # /v1internal:{method} (Gemini CLI's Code Assist calls)
    "relay_operation",  # GET /v1internal/operations/… (onboarding poll)
]


@dataclass(frozen=True, slots=True)
class Route:
    dialect: Dialect
    action: Action
    model: str | None = None  # the model named in a Gemini path
    rpc: str | None = None  # the Code Assist method of a /v1internal call


_GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+)(?::([A-Za-z]+))?$")
_GEMINI_METHODS: dict[str, Action] = {
    "generateContent": "generate",
    "streamGenerateContent": "stream_generate",
    "countTokens": "gemini_count_tokens",
}


def guess_dialect(path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Dialect:
    """The dialect to answer in when the route itself is unknown or the method is wrong."""
    if (
        path.startswith(("/v1beta/", "/v1internal"))
        or "x-goog-api-key" in headers
        or "key" in query
    ):
        return "gemini"
    if "anthropic-version" in headers or path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def classify(
    method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]
) -> Route | None:
    """The route of a request, or None for an unknown path / wrong method."""
    if path in ("/v1/chat/completions", "/chat/completions"):
        return Route("openai", "chat") if method == "POST" else None
    if path.startswith("/v1internal:"):
        return Route("gemini", "relay", rpc=path.removeprefix("/v1internal:"))
    if path.startswith("/v1internal/"):
        return Route("gemini", "relay_operation", rpc=path.removeprefix("/v1internal/"))
    if path in ("/v1/responses", "/responses"):
        return Route("openai", "responses") if method == "POST" else None
    if path == "/v1/messages":
        return Route("anthropic", "messages") if method == "POST" else None
    if path == "/v1/messages/count_tokens":
        return Route("anthropic", "count_tokens") if method == "POST" else None
    if path == "/healthz":
        return Route("openai", "healthz") if method == "GET" else None
    if path in ("/v1/models", "/models"):
        if method != "GET":
            return None
        if "anthropic-version" in headers:
            return Route("anthropic", "models")
        if "x-goog-api-key" in headers or "key" in query:
            return Route("gemini", "models")
        return Route("openai", "models")
    if path == "/v1beta/models":
        return Route("gemini", "models") if method == "GET" else None
    match = _GEMINI_PATH.match(path)
    if match is None:
        return None
    version, model, verb = match.groups()
    if verb is None:
        if method != "GET":
            return None
        if version == "v1beta" or "x-goog-api-key" in headers or "key" in query:
            return Route("gemini", "model", model)
        if "anthropic-version" in headers:
            return Route("anthropic", "model", model)
        return Route("openai", "model", model)
    action = _GEMINI_METHODS.get(verb)
    if action is None or method != "POST":
        return None
    return Route("gemini", action, model)


def resolve_model(model: str, aliases: Mapping[str, str]) -> str:
    """`model-aliases` applied once (no chains: an alias names a real model)."""
    bare = model.removeprefix("models/")
    return aliases.get(bare, bare)


Provider = Literal["gemini", "codex"]

LOGIN_COMMAND: dict[Provider, str] = {
    "gemini": "cliproxy login gemini",
    "codex": "cliproxy login codex",
}


def provider_for(model: str) -> Provider | None:
    """docs/configuration.md "Endpoints": gemini-* → Gemini pool; gpt-*, codex-*, o1/o3/o4* → Codex;
    else None."""
    name = model.lower()
    if name.startswith("gemini-"):
        return "gemini"
    if name.startswith(("gpt-", "codex-", "o1", "o3", "o4")):
        return "codex"
    return None
