"""`cliproxy login codex`: OpenAI (ChatGPT) OAuth with PKCE for the Codex CLI client
(docs/upstreams.md "OpenAI OAuth"), then `codex-<email>.json` in auth-dir
(docs/configuration.md "Auth files").

The browser comes back to `http://localhost:<port>/auth/callback` (default port 1455, the one the
Codex client is registered with; Codex itself falls back to 1457). The account id, email and plan
come from the id_token claims. Logging in again with the same email replaces that file.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import httpx
from cliproxy.addons.accounts import jwt
from cliproxy.addons.accounts.authfile import format_time
from cliproxy.addons.accounts.codex import CODEX_CLIENT_ID
from cliproxy.addons.settings import Settings
from cliproxy.cli import oauth
from cliproxy.cli.oauth import LoginError
from cliproxy.cli.oauth import Saved

SCOPE = "openid profile email offline_access"
CALLBACK_PATH = "/auth/callback"
CANCEL_PATH = "/cancel"
DEFAULT_CALLBACK_PORT = 1455
ORIGINATOR = "codex_cli_rs"
PORT_HINT = "OpenAI redirects only to the ports the Codex client is registered with: 1455 or 1457"


def authorization_url(settings: Settings, redirect_uri: str, state: str, challenge: str) -> str:
    # Codex's own order and encoding (login/src/server.rs: spaces as %20)
    query = [
        ("response_type", "code"),
        ("client_id", CODEX_CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", ORIGINATOR),
    ]
    encoded = urlencode(query, safe="", quote_via=quote)
    return f"{settings.endpoints.openai_authorize}?{encoded}"


def describe_error(error: str, description: str) -> str:
    if error == "access_denied" and "missing_codex_entitlement" in description.lower():
        return (
            "OpenAI refused the sign-in: Codex is not enabled for this ChatGPT account or "
            "workspace (missing_codex_entitlement); ask the workspace admin, or use another account"
        )
    return oauth.describe_oauth_error(error, description)


def exchange_code(
    http: httpx.Client, settings: Settings, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": CODEX_CLIENT_ID,
        "code_verifier": verifier,
    }
    reply = oauth.request_json(
        http, "POST", settings.endpoints.openai_token, "the OpenAI token exchange", data=form
    )
    names = ("id_token", "access_token", "refresh_token")
    tokens: dict[str, Any] = {k: reply.get(k) for k in names}
    missing = [k for k, v in tokens.items() if not isinstance(v, str) or not v]
    if missing:
        raise LoginError(f"the OpenAI token exchange answered without {', '.join(missing)}")
    if isinstance(reply.get("expires_in"), int):
        tokens["expires_in"] = reply["expires_in"]
    return tokens


def auth_record(
    tokens: dict[str, Any], *, account_id: str = "", last_refresh: str | None = None
) -> dict[str, Any]:
    """The auth file; `account_id` wins over the claims (auth.json may carry its own)."""
    id_token, access = str(tokens["id_token"]), str(tokens["access_token"])
    account_id = (
        account_id
        or str(jwt.openai_auth(id_token).get("chatgpt_account_id") or "")
        or str(jwt.openai_auth(access).get("chatgpt_account_id") or "")
    )
    if not account_id:
        raise LoginError("the id_token names no ChatGPT account (chatgpt_account_id)")
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "type": "codex",
        "email": jwt.openai_email(id_token) or jwt.openai_email(access),
        "account_id": account_id,
        "id_token": id_token,
        "access_token": access,
        "refresh_token": str(tokens.get("refresh_token") or ""),
        "last_refresh": last_refresh or format_time(now),
    }
    expiry = jwt.expiry(access)
    if expiry is None and isinstance(tokens.get("expires_in"), int):
        expiry = now + timedelta(seconds=tokens["expires_in"])
    if expiry is not None:
        record["expired"] = format_time(expiry)
    return record


def file_name(record: dict[str, Any]) -> str:
    return f"codex-{oauth.safe_name(record['email'] or record['account_id'])}.json"


def describe(record: dict[str, Any]) -> str:
    plan = jwt.openai_auth(record["id_token"]).get("chatgpt_plan_type")
    return f"codex {record['email'] or '(no email)'}, account {record['account_id']}" + (
        f", plan {plan}" if isinstance(plan, str) and plan else ""
    )


def save(settings: Settings, record: dict[str, Any]) -> Saved:
    def same_account(raw: dict[str, Any]) -> bool:
        return (
            raw.get("type") == "codex"
            and bool(record["email"])
            and raw.get("email") == record["email"]
        )

    path, replaced = oauth.save_auth_file(settings, file_name(record), record, same_account)
    return Saved(path, replaced, describe(record))


def login(
    settings: Settings,
    *,
    no_browser: bool = False,
    callback_port: int = DEFAULT_CALLBACK_PORT,
    timeout: float | None = None,
) -> Saved:
    state = oauth.new_state()
    verifier, challenge = oauth.pkce_pair()
    with oauth.http_client(settings) as http:
        server = oauth.CallbackServer(
            callback_port,
            CALLBACK_PATH,
            state,
            provider="Codex",
            describe_error=describe_error,
            extra_routes={CANCEL_PATH: "the login was cancelled in the browser"},
            port_hint=PORT_HINT,
        )
        with server:
            redirect_uri = f"http://localhost:{server.port}{CALLBACK_PATH}"
            url = authorization_url(settings, redirect_uri, state, challenge)
            oauth.announce(url, no_browser=no_browser, port=server.port)
            code = server.wait(timeout)
        tokens = exchange_code(http, settings, code, redirect_uri, verifier)
    return save(settings, auth_record(tokens))
