"""Which upstream request an exchange becomes for a given account.

The exchange keeps the upstream-format payload (a bare Gemini request or a Codex body); the
chosen account decides the rest: Code Assist wraps it in its envelope with the account's project,
AI Studio takes it bare with the key, Codex takes it with the account's ChatGPT id. A retry on
another account (or another model) rebuilds the request here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from typing import Literal

from cliproxy.addons.accounts.ai_studio import AIStudioKey
from cliproxy.addons.accounts.pool import Account
from cliproxy.addons.settings import Endpoints
from cliproxy.addons.upstreams import ai_studio
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex as codex_upstream
from cliproxy.translators import gemini

Upstream = Literal["code_assist", "ai_studio", "codex"]


@dataclass(frozen=True, slots=True)
class Outbound:
    url: str
    headers: dict[str, str]
    body: Any
    upstream: Upstream

    @property
    def content(self) -> bytes:
        """The body as it goes on the wire: compact JSON, UTF-8."""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


def upstream_of(account: Account) -> Upstream:
    if account.provider == "codex":
        return "codex"
    return "ai_studio" if isinstance(account, AIStudioKey) else "code_assist"


def build(
    endpoints: Endpoints, account: Account, model: str, method: str, stream: bool, payload: dict
) -> Outbound:
    """`method` is a Gemini method (generateContent, streamGenerateContent, countTokens) or
    "responses" for Codex."""
    upstream = upstream_of(account)
    if upstream == "codex":
        return Outbound(
            codex_upstream.responses_url(endpoints.codex),
            codex_upstream.headers(account.access_token, account.project_id),
            {**payload, "model": model},
            upstream,
        )
    if upstream == "ai_studio":
        # session_id is Code Assist's (gemini-cli sends it); the public API refuses it
        bare = {k: v for k, v in payload.items() if k not in ("session_id", "sessionId", "model")}
        body = ai_studio.count_tokens_body(bare, model) if method == "countTokens" else bare
        return Outbound(
            ai_studio.method_url(endpoints.ai_studio, model, method, stream),
            ai_studio.headers(account.access_token, stream),
            body,
            upstream,
        )
    if method == "countTokens":
        body = gemini.count_tokens_request(payload, model)
    else:
        body = gemini.wrap_code_assist(payload, model, account.project_id)
    return Outbound(
        code_assist.method_url(endpoints.gemini_cli, method, stream),
        code_assist.headers(account.access_token, stream),
        body,
        upstream,
    )
