"""The two account families: which models each serves, in which upstream dialect, and the login
that adds one. A third provider is one entry here, its accounts' module and an upstream module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex
from cliproxy.translators.registry import UpstreamDialectName

# An auth file's `type` (a missing type means gemini, docs/configuration.md "Auth files"); AI Studio
# keys are "gemini" too.
Provider = Literal["gemini", "codex"]
# The service an account's requests go to (addons/upstreams/outbound.py builds them).
UpstreamName = Literal["code_assist", "ai_studio", "codex"]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    login: str  # the command that adds an account
    model_prefixes: tuple[str, ...]  # routing by model name (after model-aliases)
    models: tuple[str, ...]  # what /v1/models lists while an account of it is usable
    dialect: UpstreamDialectName  # what its upstreams speak


PROVIDERS: dict[Provider, ProviderInfo] = {
    "gemini": ProviderInfo("cliproxy login gemini", ("gemini-",), code_assist.MODELS, "gemini-api"),
    "codex": ProviderInfo(
        "cliproxy login codex",
        ("gpt-", "codex-", "o1", "o3", "o4"),
        codex.MODELS,
        "codex-responses",
    ),
}


def provider_for(model: str) -> Provider | None:
    """gemini-* → the Gemini pool; gpt-*, codex-*, o1/o3/o4* → Codex; else None
    (docs/configuration.md, "Routing")."""
    name = model.lower()
    for provider, info in PROVIDERS.items():
        if name.startswith(info.model_prefixes):
            return provider
    return None
