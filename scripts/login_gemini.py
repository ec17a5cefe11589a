"""`cliproxy login gemini`: Google OAuth with gemini-cli's public client
(docs/upstreams.md "Google OAuth"), the Code Assist set-up
(docs/upstreams.md "Code Assist onboarding"), then `gemini-<email>-<project>.json` in auth-dir
(docs/configuration.md "Auth files").

The browser comes back to `http://localhost:<port>/oauth2callback` (default port 8085; any
loopback port works for this installed-app client). The flow uses a random, verified `state` and
PKCE S256 on top of the client secret. Logging in again with the same email and project replaces
that file; a login with another project is another account and gets its own file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from cliproxy.addons.accounts import jwt
from cliproxy.addons.accounts.authfile import format_time
from cliproxy.addons.accounts.gemini import GEMINI_CLI_CLIENT_ID
from cliproxy.addons.accounts.gemini import GEMINI_CLI_CLIENT_SECRET
from cliproxy.addons.accounts.pool import provider_of
from cliproxy.addons.settings import Settings
from cliproxy.cli import oauth
from cliproxy.cli.code_assist_setup import CodeAssistSetup
from cliproxy.cli.code_assist_setup import ProjectRequired
from cliproxy.cli.code_assist_setup import projects_url_for
from cliproxy.cli.oauth import LoginError
from cliproxy.cli.oauth import Saved

SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
)
CALLBACK_PATH = "/oauth2callback"
DEFAULT_CALLBACK_PORT = 8085


@dataclass
class GoogleTokens:
    access_token: str
    refresh_token: str
    expiry: datetime
    scopes: list[str]
    id_token: str = ""


def check_project_id(value: str | None) -> str | None:
    """--project-id as given, None when empty; a project number is refused like gemini-cli."""
    project = (value or "").strip()
    if not project:
        return None
    if project.isdigit():
        raise LoginError(
            f"--project-id {project} looks like a project number; pass the project ID "
            "(e.g. my-project-123, shown in the Cloud console next to the number)"
        )
    return project


def authorization_url(settings: Settings, redirect_uri: str, state: str, challenge: str) -> str:
    query = {
        "client_id": GEMINI_CLI_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",  # Google only returns a refresh token again with a fresh consent
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{settings.endpoints.google_authorize}?{urlencode(query)}"


def exchange_code(
    http: httpx.Client, settings: Settings, code: str, redirect_uri: str, verifier: str
) -> GoogleTokens:
    form = {
        "code": code,
        "client_id": GEMINI_CLI_CLIENT_ID,
        "client_secret": GEMINI_CLI_CLIENT_SECRET,
        "redirect_uri": redirect_uri,
        "grant_type": "authorization_code",
        "code_verifier": verifier,
    }
    reply = oauth.request_json(
        http, "POST", settings.endpoints.google_token, "the Google token exchange", data=form
    )
    tokens = _tokens(reply, refresh_token="")
    if not tokens.refresh_token:
        raise LoginError(
            "Google returned no refresh token; revoke cliproxy's access at "
            "https://myaccount.google.com/permissions and log in again"
        )
    return tokens


def refresh(http: httpx.Client, settings: Settings, refresh_token: str) -> GoogleTokens:
    """A fresh access token; Google's reply normally has no refresh_token: keep ours."""
    form = {
        "refresh_token": refresh_token,
        "client_id": GEMINI_CLI_CLIENT_ID,
        "client_secret": GEMINI_CLI_CLIENT_SECRET,
        "grant_type": "refresh_token",
    }
    reply = oauth.request_json(
        http, "POST", settings.endpoints.google_token, "the Google token refresh", data=form
    )
    return _tokens(reply, refresh_token=refresh_token)


def _tokens(reply: dict[str, Any], *, refresh_token: str) -> GoogleTokens:
    access = reply.get("access_token")
    if not isinstance(access, str) or not access:
        raise LoginError("the Google token endpoint answered without an access_token")
    expires_in = reply.get("expires_in")
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        expires_in = 3599  # Google's access tokens live one hour
    scope = reply.get("scope")
    new_refresh = reply.get("refresh_token")
    if not isinstance(new_refresh, str) or not new_refresh:
        new_refresh = refresh_token
    id_token = reply.get("id_token")
    return GoogleTokens(
        access_token=access,
        refresh_token=new_refresh,
        expiry=datetime.now(UTC) + timedelta(seconds=expires_in),
        scopes=scope.split() if isinstance(scope, str) and scope.strip() else list(SCOPES),
        id_token=id_token if isinstance(id_token, str) else "",
    )


def account_email(http: httpx.Client, settings: Settings, tokens: GoogleTokens) -> str:
    """The email from userinfo (what CLIProxyAPI asks), else from the id_token claims."""
    try:
        info = oauth.request_json(
            http,
            "GET",
            settings.endpoints.google_userinfo,
            "the Google userinfo request",
            params={"alt": "json"},
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
    except LoginError:
        info = {}
        if not jwt.claims(tokens.id_token).get("email"):
            raise
    email = info.get("email") or jwt.claims(tokens.id_token).get("email")
    if not isinstance(email, str) or not email:
        raise LoginError("Google did not tell which account signed in (no email in userinfo)")
    return email


def file_name(email: str, project_id: str) -> str:
    return f"gemini-{oauth.safe_name(email)}-{oauth.safe_name(project_id)}.json"


def same_account(record: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Another auth file of this Gemini account: same email and project (`type` may be absent)."""

    def match(raw: dict[str, Any]) -> bool:
        return (
            provider_of(raw) == "gemini"
            and raw.get("email") == record["email"]
            and raw.get("project_id") == record["project_id"]
        )

    return match


def auth_record(
    settings: Settings, email: str, project_id: str, tokens: GoogleTokens
) -> dict[str, Any]:
    return {
        "type": "gemini",
        "email": email,
        "project_id": project_id,
        "token": {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "token_type": "Bearer",
            "expiry": format_time(tokens.expiry),
            "client_id": GEMINI_CLI_CLIENT_ID,
            "client_secret": GEMINI_CLI_CLIENT_SECRET,
            "scopes": tokens.scopes,
            "token_uri": settings.endpoints.google_token,
        },
    }


def finish(
    http: httpx.Client,
    settings: Settings,
    tokens: GoogleTokens,
    *,
    email: str | None = None,
    project_id: str | None = None,
    poll_interval: float | None = None,
) -> Saved:
    """Email, Code Assist project, then the auth file (shared by login and import)."""
    email = email or account_email(http, settings, tokens)
    setup = CodeAssistSetup(
        http,
        settings.endpoints.gemini_cli,
        tokens.access_token,
        poll_interval=poll_interval,
        projects_url=projects_url_for(settings),
    )
    try:
        result = setup.run(project_id)
    except ProjectRequired as e:
        # the sign-in is done: ask for the project now rather than send the user through a
        # second browser login with --project-id
        entered = ask_project(e) if project_id is None else None
        if not entered:
            raise
        result = setup.run(entered)
    record = auth_record(settings, email, result.project_id, tokens)
    name = file_name(email, result.project_id)
    path, replaced = oauth.save_auth_file(settings, name, record, same_account(record))
    account = f"gemini {email}, project {result.project_id} ({result.tier})"
    return Saved(path, replaced, account)


def ask_project(error: ProjectRequired) -> str | None:
    """The project ID typed at the terminal; None when there is no terminal to ask."""
    if not sys.stdin.isatty():
        return None
    print(str(error), file=sys.stderr)
    try:
        return check_project_id(input("Google Cloud project ID for Code Assist: "))
    except EOFError:
        return None


def login(
    settings: Settings,
    *,
    project_id: str | None = None,
    no_browser: bool = False,
    callback_port: int = DEFAULT_CALLBACK_PORT,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> Saved:
    project_id = check_project_id(project_id)
    state = oauth.new_state()
    verifier, challenge = oauth.pkce_pair()
    with oauth.http_client(settings) as http:
        server = oauth.CallbackServer(callback_port, CALLBACK_PATH, state, provider="Gemini")
        with server:
            redirect_uri = f"http://localhost:{server.port}{CALLBACK_PATH}"
            url = authorization_url(settings, redirect_uri, state, challenge)
            oauth.announce(url, no_browser=no_browser, port=server.port)
            code = server.wait(timeout)
        print("Signed in; setting up Gemini Code Assist ...", flush=True)
        tokens = exchange_code(http, settings, code, redirect_uri, verifier)
        return finish(http, settings, tokens, project_id=project_id, poll_interval=poll_interval)
