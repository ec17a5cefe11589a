"""`cliproxy import gemini-cli|codex`: adopt an existing CLI login as an auth file
(docs/upstreams.md "Google OAuth", "OpenAI OAuth").

- gemini-cli: `~/.gemini/oauth_creds.json` (google-auth-library Credentials; `expiry_date` in ms).
  It names no project and maybe no email: the email comes from the id_token claims, else from
  `google_accounts.json` next to it (`active`), else from userinfo; then the Code Assist set-up
  runs as after a login (the token is refreshed first when it expires within 5 minutes).
- codex: `$CODEX_HOME/auth.json` (default `~/.codex/auth.json`), tokens under `tokens`; the
  account id comes from there or from the id_token. Nothing is called: the proxy refreshes later.
"""

from __future__ import annotations

import json
import os
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from cliproxy.addons.accounts import jwt
from cliproxy.addons.accounts.authfile import format_time
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.file_account import REFRESH_MARGIN
from cliproxy.addons.settings import Settings
from cliproxy.cli import login_codex
from cliproxy.cli import login_gemini
from cliproxy.cli import oauth
from cliproxy.cli.login_gemini import GoogleTokens
from cliproxy.cli.oauth import LoginError
from cliproxy.cli.oauth import Saved


def default_gemini_creds() -> Path:
    return Path.home() / ".gemini" / "oauth_creds.json"


def default_codex_auth() -> Path:
    home = os.environ.get("CODEX_HOME")
    return (Path(home) if home else Path.home() / ".codex") / "auth.json"


def _read_json(path: Path, hint: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoginError(f"{path} does not exist ({hint})") from None
    except OSError as e:
        raise LoginError(f"{path} cannot be read: {e.strerror or e}") from None
    except ValueError:
        raise LoginError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise LoginError(f"{path} is not a JSON object")
    return data


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- gemini-cli


def gemini_tokens(creds: dict[str, Any], path: Path) -> GoogleTokens:
    refresh = _str(creds, "refresh_token")
    if not refresh:
        raise LoginError(
            f"{path} has no refresh_token, so the account could not be kept signed in; "
            "run `cliproxy login gemini` instead"
        )
    scope = _str(creds, "scope")
    return GoogleTokens(
        access_token=_str(creds, "access_token"),
        refresh_token=refresh,
        # `expiry_date` is milliseconds since the epoch; parse_time knows
        expiry=parse_time(creds.get("expiry_date")) or datetime.now(UTC),
        scopes=scope.split() if scope.strip() else list(login_gemini.SCOPES),
        id_token=_str(creds, "id_token"),
    )


def gemini_email(tokens: GoogleTokens, creds_path: Path) -> str | None:
    """From the id_token, else gemini-cli's google_accounts.json; None: ask userinfo."""
    email = jwt.claims(tokens.id_token).get("email")
    if isinstance(email, str) and email:
        return email
    accounts = creds_path.parent / "google_accounts.json"
    try:
        active = json.loads(accounts.read_text(encoding="utf-8")).get("active")
    except (OSError, ValueError, AttributeError):
        return None
    return active if isinstance(active, str) and active else None


def import_gemini_cli(
    settings: Settings,
    path: Path | None = None,
    *,
    project_id: str | None = None,
    poll_interval: float | None = None,
) -> Saved:
    project_id = login_gemini.check_project_id(project_id)
    path = (path or default_gemini_creds()).expanduser()
    creds = _read_json(path, "sign in with gemini-cli first, or run `cliproxy login gemini`")
    tokens = gemini_tokens(creds, path)
    email = gemini_email(tokens, path)
    with oauth.http_client(settings) as http:
        if not tokens.access_token or tokens.expiry - datetime.now(UTC) <= REFRESH_MARGIN:
            fresh = login_gemini.refresh(http, settings, tokens.refresh_token)
            fresh.id_token = fresh.id_token or tokens.id_token
            tokens = fresh
        return login_gemini.finish(
            http, settings, tokens, email=email, project_id=project_id, poll_interval=poll_interval
        )


# ---------------------------------------------------------------- codex


def codex_record(data: dict[str, Any], path: Path) -> dict[str, Any]:
    tokens = data.get("tokens")
    if not isinstance(tokens, dict) or not tokens:
        if data.get("OPENAI_API_KEY"):
            raise LoginError(
                f"{path} holds an API key, not a ChatGPT sign-in; only ChatGPT logins can be "
                "imported (run `cliproxy login codex`)"
            )
        raise LoginError(f"{path} has no tokens (sign in with `codex login` first)")
    missing = [k for k in ("id_token", "access_token", "refresh_token") if not _str(tokens, k)]
    if missing:
        raise LoginError(f"{path}: tokens has no {', '.join(missing)}")
    last = parse_time(data.get("last_refresh"))
    return login_codex.auth_record(
        tokens,
        account_id=_str(tokens, "account_id"),
        last_refresh=format_time(last) if last else None,
    )


def import_codex(settings: Settings, path: Path | None = None) -> Saved:
    path = (path or default_codex_auth()).expanduser()
    data = _read_json(path, "sign in with `codex login` first, or run `cliproxy login codex`")
    return login_codex.save(settings, codex_record(data, path))
