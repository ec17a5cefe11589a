from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from cliproxy.addons.accounts.authfile import AuthFileError
from cliproxy.addons.accounts.codex import CodexAccount

from tests.fakes.codex import make_jwt

AUTH = "https://api.openai.com/auth"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def token(exp: datetime, account: str = "acct-9", email: str | None = None) -> str:
    claims: dict = {"exp": int(exp.timestamp()), AUTH: {"chatgpt_account_id": account,
                                                        "chatgpt_plan_type": "plus"}}  # fmt: skip
    if email:
        claims["email"] = email
    return make_jwt(claims)


def account(**raw: object) -> CodexAccount:
    return CodexAccount.from_raw(Path("codex-x.json"), {"type": "codex", **raw})


def test_account_id_and_email_come_from_the_id_token_when_missing() -> None:
    acc = account(
        id_token=token(NOW + timedelta(days=1), "acct-from-jwt", "e@example.com"),
        access_token=token(NOW + timedelta(days=1)),
        refresh_token="r",
    )
    assert acc.account_id == "acct-from-jwt" and acc.email == "e@example.com"
    assert acc.plan == "plus"


def test_a_file_without_any_account_id_is_refused() -> None:
    with pytest.raises(AuthFileError, match="account_id"):
        account(access_token="opaque", refresh_token="r")


@pytest.mark.parametrize(
    ("jwt_exp", "expired", "needs"),
    [
        (NOW + timedelta(days=5), None, False),
        (NOW + timedelta(minutes=3), None, True),  # within the margin
        (NOW + timedelta(days=5), (NOW - timedelta(hours=1)).isoformat(), True),  # file says past
        (None, (NOW + timedelta(days=1)).isoformat(), False),  # opaque token, file says fine
        (None, (NOW - timedelta(seconds=1)).isoformat(), True),
    ],
)
def test_needs_refresh(jwt_exp: datetime | None, expired: str | None, needs: bool) -> None:
    access = token(jwt_exp) if jwt_exp else "opaque-token"
    raw: dict = {"account_id": "a", "access_token": access, "refresh_token": "r"}
    if expired:
        raw["expired"] = expired
    assert account(**raw).needs_refresh(NOW) is needs


def test_apply_refresh_replaces_only_what_came_and_records_expiry() -> None:
    acc = account(account_id="a", access_token="old", refresh_token="r-old", id_token="id-old",
                  extra_key="kept")  # fmt: skip
    new_access = token(NOW + timedelta(days=10))
    acc.apply_refresh({"access_token": new_access, "refresh_token": "r-new"}, NOW)
    assert acc.raw["access_token"] == new_access and acc.raw["refresh_token"] == "r-new"
    assert acc.raw["id_token"] == "id-old" and acc.raw["extra_key"] == "kept"
    assert acc.raw["last_refresh"] == "2026-11-26T12:00:00Z"
    assert acc.raw["expired"] == (NOW + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not acc.needs_refresh(NOW)


def test_opaque_refreshed_token_does_not_refresh_on_every_request() -> None:
    acc = account(account_id="a", access_token="old", refresh_token="r",
                  expired=(NOW - timedelta(days=1)).isoformat())  # fmt: skip
    assert acc.needs_refresh(NOW)
    acc.apply_refresh({"access_token": "opaque-new"}, NOW)
    assert not acc.needs_refresh(NOW)


def test_refresh_request_is_codex_json() -> None:
    kind, body = account(account_id="a", access_token="x", refresh_token="r").refresh_request()
    assert kind == "json"
    assert body == {"client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "grant_type": "refresh_token",
                    "refresh_token": "r"}  # fmt: skip
