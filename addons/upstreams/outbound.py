"""The upstream services, one entry each, and the request an exchange becomes for one account.

The exchange keeps the upstream-format payload (a bare Gemini request or a Codex body); the
chosen account's service decides the rest: Code Assist wraps it in its envelope with the
account's project, AI Studio takes it bare with the key, Codex takes it with the account's
ChatGPT id. A retry on another account (or another model) rebuilds the request here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.accounts.providers import UpstreamName
from cliproxy.addons.settings import Endpoints
from cliproxy.addons.upstreams import ai_studio
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex


@dataclass(frozen=True, slots=True)
class Outbound:
    url: str
    headers: dict[str, str]
    body: Any

    @property
    def content(self) -> bytes:
        """The body as it goes on the wire: compact JSON, UTF-8."""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


# (endpoints, account, model, method, stream, payload) -> the request on the wire
Builder = Callable[[Endpoints, Account, str, str, bool, dict[str, Any]], Outbound]


@dataclass(frozen=True, slots=True)
class Upstream:
    name: UpstreamName
    title: str  # how messages name it
    envelope: bool  # wraps requests and answers in Code Assist's envelope
    build: Builder


def _code_assist(
    endpoints: Endpoints, account: Account, model: str, method: str, stream: bool, payload: dict
) -> Outbound:
    return Outbound(
        code_assist.method_url(endpoints.gemini_cli, method, stream),
        code_assist.headers(account.access_token, stream),
        code_assist.request_body(payload, model, method, account.project_id),
    )


def _ai_studio(
    endpoints: Endpoints, account: Account, model: str, method: str, stream: bool, payload: dict
) -> Outbound:
    return Outbound(
        ai_studio.method_url(endpoints.ai_studio, model, method, stream),
        ai_studio.headers(account.access_token, stream),
        ai_studio.request_body(payload, model, method),
    )


def _codex(
    endpoints: Endpoints, account: Account, model: str, method: str, stream: bool, payload: dict
) -> Outbound:
    return Outbound(
        codex.responses_url(endpoints.codex),
        codex.headers(account.access_token, account.account_id),
        {**payload, "model": model},
    )


UPSTREAMS: dict[UpstreamName, Upstream] = {
    "code_assist": Upstream("code_assist", "Code Assist", True, _code_assist),
    "ai_studio": Upstream("ai_studio", "AI Studio", False, _ai_studio),
    "codex": Upstream("codex", "Codex", False, _codex),
}


def upstream_of(account: Account) -> Upstream:
    return UPSTREAMS[account.upstream]


def build(
    endpoints: Endpoints, account: Account, model: str, method: str, stream: bool, payload: dict
) -> Outbound:
    """`method` is a Gemini method (generateContent, streamGenerateContent, countTokens) or
    "responses" for Codex."""
    return upstream_of(account).build(endpoints, account, model, method, stream, payload)
