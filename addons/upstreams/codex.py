"""OpenAI Codex (ChatGPT backend): URL, headers and error classification (docs/upstreams.md
"Codex")."""

from __future__ import annotations

import uuid

# What a ChatGPT account serves through Codex (docs/upstreams.md "Models and preview fallback"); the
# backend has no list method.
MODELS: tuple[str, ...] = (
    "gpt-5",
    "gpt-5-codex",
    "gpt-5.5",
    "gpt-5.4-mini",
    "codex-mini-latest",
)

ORIGINATOR = "codex_cli_rs"
USER_AGENT = "codex_cli_rs/0.169.0 (Linux; x86_64) cliproxy"


def responses_url(base: str) -> str:
    return f"{base}/responses"


def headers(access_token: str, account_id: str, session_id: str | None = None) -> dict[str, str]:
    return {
        "authorization": f"Bearer {access_token}",
        "chatgpt-account-id": account_id,
        "content-type": "application/json",
        "accept": "text/event-stream",
        # translated chunk by chunk: compressed bytes would reach the translator
        "accept-encoding": "identity",
        "openai-beta": "responses=experimental",
        "originator": ORIGINATOR,
        "session_id": session_id or str(uuid.uuid4()),
        "user-agent": USER_AGENT,
    }
