"""Reading JWT claims (payload only, no signature check: we only need what the token says about
itself — expiry and the ChatGPT account — and the issuer verifies it on every call)."""

from __future__ import annotations

import base64
import json
from datetime import UTC
from datetime import datetime
from typing import Any

OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"
OPENAI_PROFILE_CLAIM = "https://api.openai.com/profile"


def claims(token: str) -> dict[str, Any]:
    """The payload of `token`, or {} when it is not a decodable JWT."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def expiry(token: str) -> datetime | None:
    exp = claims(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, ValueError, OSError):  # exp of 1e20, NaN: no usable expiry
            return None
    return None


def openai_auth(token: str) -> dict[str, Any]:
    auth = claims(token).get(OPENAI_AUTH_CLAIM)
    return auth if isinstance(auth, dict) else {}


def openai_email(token: str) -> str:
    data = claims(token)
    email = data.get("email")
    if not isinstance(email, str):
        profile = data.get(OPENAI_PROFILE_CLAIM)
        email = profile.get("email") if isinstance(profile, dict) else None
    return email if isinstance(email, str) else ""
