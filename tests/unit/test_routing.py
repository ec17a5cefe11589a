from __future__ import annotations

import pytest
from cliproxy.addons.accounts.providers import provider_for
from cliproxy.addons.routing import Route
from cliproxy.addons.routing import classify
from cliproxy.addons.routing import guess_shape
from cliproxy.addons.routing import resolve_model

ANTHROPIC = {"anthropic-version": "2023-06-01"}
PRO = "gemini-2.5-pro"
GOOG = {"x-goog-api-key": "k"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "query", "route"),
    [
        ("POST", "/v1/chat/completions", {}, {}, Route("openai", "generate", "openai-chat")),
        (
            "POST",
            "/v1/messages",
            ANTHROPIC,
            {},
            Route("anthropic", "generate", "anthropic-messages"),
        ),
        (
            "POST",
            "/v1/messages/count_tokens",
            {},
            {},
            Route("anthropic", "count_tokens", "anthropic-messages"),
        ),
        ("GET", "/v1/models", {}, {}, Route("openai", "models")),
        ("GET", "/v1/models", ANTHROPIC, {}, Route("anthropic", "models")),
        ("GET", "/v1/models", GOOG, {}, Route("google", "models")),
        ("GET", "/v1/models", {}, {"key": "k"}, Route("google", "models")),
        ("GET", "/v1beta/models", {}, {}, Route("google", "models")),
        (
            "GET",
            "/v1beta/models/gemini-2.5-pro",
            {},
            {},
            Route("google", "model", model="gemini-2.5-pro"),
        ),
        ("GET", "/v1/models/gemini-2.5-pro", GOOG, {}, Route("google", "model", model=PRO)),
        ("GET", "/v1/models/gemini-2.5-pro", {}, {}, Route("openai", "model", model=PRO)),
        (
            "POST",
            "/v1beta/models/gemini-2.5-pro:generateContent",
            {},
            {},
            Route("google", "generate", "gemini-api", "gemini-2.5-pro", stream=False),
        ),
        (
            "POST",
            "/v1/models/gemini-2.5-flash:streamGenerateContent",
            GOOG,
            {"alt": "sse"},
            Route("google", "generate", "gemini-api", "gemini-2.5-flash", stream=True),
        ),
        (
            "POST",
            "/v1beta/models/gemini-2.5-flash:countTokens",
            {},
            {},
            Route("google", "count_tokens", "gemini-api", "gemini-2.5-flash", stream=False),
        ),
        ("GET", "/healthz", {}, {}, Route("openai", "healthz")),
        ("GET", "/v1/chat/completions", {}, {}, None),
        ("POST", "/v1beta/models/gemini-2.5-pro:embedContent", {}, {}, None),
        ("POST", "/nope", {}, {}, None),
        ("DELETE", "/v1/messages", {}, {}, None),
        (
            "POST",
            "/v1internal:streamGenerateContent",
            {},
            {"alt": "sse"},
            Route("google", "generate", "code-assist", None, True, "streamGenerateContent", True),
        ),
        (
            "POST",
            "/v1internal:countTokens",
            {},
            {},
            Route("google", "count_tokens", "code-assist", None, False, "countTokens", True),
        ),
        (
            "POST",
            "/v1internal:loadCodeAssist",
            {},
            {},
            Route("google", "relay", rpc="loadCodeAssist", relay=True),
        ),
        (
            "GET",
            "/v1internal/operations/x",
            {},
            {},
            Route("google", "relay_operation", rpc="operations/x", relay=True),
        ),
    ],
)
def test_classify(method: str, path: str, headers: dict, query: dict, route: Route | None) -> None:
    assert classify(method, path, headers, query) == route


def test_guess_shape_for_unknown_routes() -> None:
    assert guess_shape("/v1beta/x", {}, {}) == "google"
    assert guess_shape("/v1internal:nope", {}, {}) == "google"
    assert guess_shape("/v1/x", ANTHROPIC, {}) == "anthropic"
    assert guess_shape("/v1/x", {}, {}) == "openai"


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


def test_every_fixed_path_of_the_dialect_table_routes_to_its_dialect() -> None:
    """A client dialect served on fixed paths is routed from its registry entry alone."""
    from cliproxy.translators.registry import CLIENTS

    pairs = [
        (path, action, dialect)
        for dialect in CLIENTS.values()
        for action, paths in (("generate", dialect.paths), ("count_tokens", dialect.count_paths))
        for path in paths
    ]
    assert len(pairs) >= 6
    for path, action, dialect in pairs:
        assert classify("POST", path, {}, {}) == Route(dialect.shape, action, dialect.name)
        assert classify("GET", path, {}, {}) is None
