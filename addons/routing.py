"""Which endpoint a client called, in which dialect: pure functions over the request line and
headers (docs/configuration.md, "Endpoints"), so they are tested without mitmproxy.

`route_of(flow)` classifies a flow once and keeps the answer in its metadata for every addon.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from cliproxy.translators.registry import CLIENTS
from cliproxy.translators.registry import AnswerShape
from cliproxy.translators.registry import ClientDialectName
from mitmproxy import http

Action = Literal[
    "generate",  # a generation request of a client dialect (stream or not)
    "count_tokens",  # a token-count request of a client dialect
    "models",  # GET /v1/models, /v1beta/models
    "model",  # GET /v1beta/models/{m}, /v1/models/{m}
    "healthz",  # GET /healthz
    "relay",  # /v1internal:{method}, other than generation (Gemini CLI's Code Assist calls)
    "relay_operation",  # GET /v1internal/operations/… (onboarding poll)
    "metrics",  # GET /metrics (addons/observe.py)
    "usage",  # GET /usage (addons/observe.py)
]


@dataclass(frozen=True, slots=True)
class Route:
    shape: AnswerShape  # how errors and model lists are written
    action: Action
    client: ClientDialectName | None = None  # for generate / count_tokens
    model: str | None = None  # the model named in a Gemini path
    stream: bool | None = None  # a stream named by the path (None: the body says)
    rpc: str | None = None  # the Code Assist method of a /v1internal call
    relay: bool = False  # a /v1internal path: loopback clients only


_GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+)(?::([A-Za-z]+))?$")
# Code Assist methods that are generation (served through the pool like any client dialect)
CODE_ASSIST_GENERATION: dict[str, tuple[Action, bool]] = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("generate", True),
    "countTokens": ("count_tokens", False),
}


def _fixed_paths() -> dict[str, Route]:
    """The dialect table's fixed paths: a client dialect served on its own paths needs no line
    here (docs/architecture.md "Adding a dialect or an upstream")."""
    routes: dict[str, Route] = {}
    for dialect in CLIENTS.values():
        for path in dialect.paths:
            routes[path] = Route(dialect.shape, "generate", dialect.name)
        for path in dialect.count_paths:
            routes[path] = Route(dialect.shape, "count_tokens", dialect.name)
    return routes


FIXED_PATHS = _fixed_paths()


def guess_shape(path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> AnswerShape:
    """The shape to answer in when the route itself is unknown or the method is wrong."""
    if (
        path.startswith(("/v1beta/", "/v1internal"))
        or "x-goog-api-key" in headers
        or "key" in query
    ):
        return "google"
    if "anthropic-version" in headers or path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def _list_shape(headers: Mapping[str, str], query: Mapping[str, str]) -> AnswerShape:
    if "anthropic-version" in headers:
        return "anthropic"
    if "x-goog-api-key" in headers or "key" in query:
        return "google"
    return "openai"


def classify(
    method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]
) -> Route | None:
    """The route of a request, or None for an unknown path / wrong method."""
    fixed = FIXED_PATHS.get(path)
    if fixed is not None:
        return fixed if method == "POST" else None
    if path.startswith("/v1internal:"):
        rpc = path.removeprefix("/v1internal:")
        if rpc in CODE_ASSIST_GENERATION:
            action, stream = CODE_ASSIST_GENERATION[rpc]
            return Route("google", action, "code-assist", stream=stream, rpc=rpc, relay=True)
        return Route("google", "relay", rpc=rpc, relay=True)
    if path.startswith("/v1internal/"):
        rpc = path.removeprefix("/v1internal/")
        return Route("google", "relay_operation", rpc=rpc, relay=True)
    if path == "/healthz":
        return Route("openai", "healthz") if method == "GET" else None
    if path in ("/metrics", "/usage"):
        return (
            Route("openai", "metrics" if path == "/metrics" else "usage")
            if method == "GET"
            else None
        )
    if path in ("/v1/models", "/models"):
        return Route(_list_shape(headers, query), "models") if method == "GET" else None
    if path == "/v1beta/models":
        return Route("google", "models") if method == "GET" else None
    match = _GEMINI_PATH.match(path)
    if match is None:
        return None
    version, model, verb = match.groups()
    if verb is None:
        if method != "GET":
            return None
        if version == "v1beta" or "x-goog-api-key" in headers or "key" in query:
            return Route("google", "model", model=model)
        shape = "anthropic" if "anthropic-version" in headers else "openai"
        return Route(shape, "model", model=model)
    if method != "POST":
        return None
    if verb == "countTokens":
        return Route("google", "count_tokens", "gemini-api", model=model, stream=False)
    if verb in ("generateContent", "streamGenerateContent"):
        stream = verb == "streamGenerateContent"
        return Route("google", "generate", "gemini-api", model=model, stream=stream)
    return None


def resolve_model(model: str, aliases: Mapping[str, str]) -> str:
    """`model-aliases` applied once (no chains: an alias names a real model)."""
    bare = model.removeprefix("models/")
    return aliases.get(bare, bare)


KEY = "cliproxy_route"


def route_of(flow: http.HTTPFlow) -> Route | None:
    """The flow's route, classified once from the client's request line."""
    if KEY not in flow.metadata:
        req = flow.request
        path = req.path.split("?", 1)[0]
        flow.metadata[KEY] = classify(req.method, path, req.headers, req.query)
    return flow.metadata[KEY]


def shape_of(flow: http.HTTPFlow) -> AnswerShape:
    """The shape of every local answer to this flow: its route's, else a guess."""
    route = route_of(flow)
    if route is not None:
        return route.shape
    req = flow.request
    return guess_shape(req.path.split("?", 1)[0], req.headers, req.query)
