from __future__ import annotations

import pytest
from cliproxy.addons.routing import Route
from cliproxy.addons.routing import classify
from cliproxy.addons.routing import guess_dialect
from cliproxy.addons.routing import provider_for
from cliproxy.addons.routing import resolve_model

ANTHROPIC = {"anthropic-version": "2023-06-01"}
PRO = "gemini-2.5-pro"
GOOG = {"x-goog-api-key": "k"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "query", "route"),
    [
        ("POST", "/v1/chat/completions", {}, {}, Route("openai", "chat")),
        ("POST", "/v1/messages", ANTHROPIC, {}, Route("anthropic", "messages")),
        ("POST", "/v1/messages/count_tokens", {}, {}, Route("anthropic", "count_tokens")),
        ("GET", "/v1/models", {}, {}, Route("openai", "models")),
        ("GET", "/v1/models", ANTHROPIC, {}, Route("anthropic", "models")),
        ("GET", "/v1/models", GOOG, {}, Route("gemini", "models")),
        ("GET", "/v1/models", {}, {"key": "k"}, Route("gemini", "models")),
        ("GET", "/v1beta/models", {}, {}, Route("gemini", "models")),
        (
            "GET",
            "/v1beta/models/gemini-2.5-pro",
            {},
            {},
            Route("gemini", "model", "gemini-2.5-pro"),
        ),
        ("GET", "/v1/models/gemini-2.5-pro", GOOG, {}, Route("gemini", "model", PRO)),
        ("GET", "/v1/models/gemini-2.5-pro", {}, {}, Route("openai", "model", PRO)),
        (
            "POST",
            "/v1beta/models/gemini-2.5-pro:generateContent",
            {},
            {},
            Route("gemini", "generate", "gemini-2.5-pro"),
        ),
        (
            "POST",
            "/v1/models/gemini-2.5-flash:streamGenerateContent",
            GOOG,
            {"alt": "sse"},
            Route("gemini", "stream_generate", "gemini-2.5-flash"),
        ),
        (
            "POST",
            "/v1beta/models/gemini-2.5-flash:countTokens",
            {},
            {},
            Route("gemini", "gemini_count_tokens", "gemini-2.5-flash"),
        ),
        ("GET", "/healthz", {}, {}, Route("openai", "healthz")),
        ("GET", "/v1/chat/completions", {}, {}, None),
        ("POST", "/v1beta/models/gemini-2.5-pro:embedContent", {}, {}, None),
        ("POST", "/nope", {}, {}, None),
        ("DELETE", "/v1/messages", {}, {}, None),
    ],
)
def test_classify(method: str, path: str, headers: dict, query: dict, route: Route | None) -> None:
    assert classify(method, path, headers, query) == route


def test_guess_dialect_for_unknown_routes() -> None:
    assert guess_dialect("/v1beta/x", {}, {}) == "gemini"
    assert guess_dialect("/v1/x", ANTHROPIC, {}) == "anthropic"
    assert guess_dialect("/v1/x", {}, {}) == "openai"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gemini-2.5-pro", "gemini"),
        ("gpt-5", "codex"),
        ("codex-mini-latest", "codex"),
        ("o3-mini", "codex"),
        ("o4-mini", "codex"),
        ("claude-sonnet-4-5", None),
        ("llama", None),
    ],
)
def test_provider_for(model: str, provider: str | None) -> None:
    assert provider_for(model) == provider


def test_aliases_apply_once_and_strip_models_prefix() -> None:
    aliases = {"claude-sonnet-4-5": "gemini-2.5-pro", "gemini-2.5-pro": "gemini-2.5-flash"}
    assert resolve_model("claude-sonnet-4-5", aliases) == "gemini-2.5-pro"
    assert resolve_model("models/gemini-2.5-flash", {}) == "gemini-2.5-flash"
