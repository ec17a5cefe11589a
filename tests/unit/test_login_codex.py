"""`cliproxy login codex` and `cliproxy import codex`, in-process through scripts.cli.main, against
FakeCodex's OpenAI token endpoint. A scripted browser follows the authorization URL to the
callback like auth.openai.com would after sign-in."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.codex import CodexAccount
from cliproxy.cli import oauth

from tests.fakes.codex import AUTH_CLAIM
from tests.fakes.codex import CLIENT_ID
from tests.fakes.codex import FakeCodex
from tests.fakes.codex import jwt_claims
from tests.fakes.codex import make_jwt
from tests.unit.test_login_oauth import ScriptedBrowser
from tests.unit.test_login_oauth import free_port
from tests.unit.test_login_oauth import query_of
from tests.unit.test_login_oauth import run_cli
from tests.unit.test_login_oauth import unserved_port
from tests.unit.test_login_oauth import write_config

ACCOUNT_ID = "6b1d2c3e-1111-2222-3333-444455556666"
EMAIL = "c@example.com"
ORDER = ["response_type", "client_id", "redirect_uri", "scope", "code_challenge",
         "code_challenge_method", "id_token_add_organizations", "codex_cli_simplified_flow",
         "state", "originator"]  # fmt: skip


@dataclass
class Env:
    fake: FakeCodex
    config: Path
    auth_dir: Path
    port: int
    monkeypatch: pytest.MonkeyPatch

    def browser(self, script: Callable[[str], dict[str, str] | None]) -> ScriptedBrowser:
        browser = ScriptedBrowser(script)
        self.monkeypatch.setattr(oauth, "open_browser", browser)
        return browser

    def login(self, *extra: str) -> list[str]:
        return ["login", "codex", "--config", str(self.config), "--callback-port",
                str(self.port), *extra]  # fmt: skip

    def files(self) -> list[str]:
        return sorted(p.name for p in self.auth_dir.iterdir()) if self.auth_dir.exists() else []

    def read(self, name: str) -> dict[str, Any]:
        return json.loads((self.auth_dir / name).read_text())


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr(oauth, "CALLBACK_TIMEOUT", 10.0)
    with FakeCodex() as fake, unserved_port() as proxy_port:
        config = write_config(tmp_path, {
            "codex": fake.base_url,
            "openai-token": fake.token_url,
            "openai-authorize": fake.origin + "/oauth/authorize",
        }, port=proxy_port)  # fmt: skip
        yield Env(fake, config, tmp_path / "auth", free_port(), monkeypatch)


def openai(
    env: Env, *, email: str = EMAIL, account_id: str = ACCOUNT_ID, plan: str = "plus",
    state: str | None = None, error: tuple[str, str] | None = None,
) -> Callable[[str], dict[str, str]]:  # fmt: skip
    """What auth.openai.com does with the authorization URL: check it, issue a code, redirect."""

    def script(url: str) -> dict[str, str]:
        assert url.startswith(env.fake.origin + "/oauth/authorize?")
        assert [k for k, _ in parse_qsl(urlsplit(url).query)] == ORDER  # Codex's order
        assert "&scope=openid%20profile%20email%20offline_access&" in url
        q = query_of(url)
        assert q == {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": f"http://localhost:{env.port}/auth/callback",
            "scope": "openid profile email offline_access",
            "code_challenge": q["code_challenge"],
            "code_challenge_method": "S256",
            "id_token_add_organizations": "true",
            "codex_cli_simplified_flow": "true",
            "state": q["state"],
            "originator": "codex_cli_rs",
        }
        if error:
            return {"error": error[0], "error_description": error[1], "state": q["state"]}
        code = "ac_" + secrets.token_urlsafe(16)
        env.fake.add_auth_code(code, code_challenge=q["code_challenge"],
                               redirect_uri=q["redirect_uri"], account_id=account_id,
                               email=email, plan=plan)  # fmt: skip
        return {"code": code, "scope": "openid profile email offline_access",
                "state": state or q["state"]}  # fmt: skip

    return script


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- login


def test_login_writes_the_auth_file(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    browser = env.browser(openai(env, plan="pro"))
    before = time.time()
    code, out, err = run_cli(env.login(), capsys)
    browser.join()
    assert (code, err) == (0, "")
    name = f"codex-{EMAIL}.json"
    assert env.files() == [name]
    assert (env.auth_dir / name).stat().st_mode & 0o777 == 0o600
    data = env.read(name)
    access = jwt_claims(data["access_token"])
    last_refresh = parse_time(data.pop("last_refresh"))
    assert last_refresh is not None and before - 1 <= last_refresh.timestamp() <= time.time()
    assert data == {
        "type": "codex", "email": EMAIL, "account_id": ACCOUNT_ID,
        "id_token": data["id_token"], "access_token": data["access_token"],
        "refresh_token": data["refresh_token"], "expired": rfc3339(access["exp"]),
    }  # fmt: skip
    assert jwt_claims(data["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT_ID
    assert data["refresh_token"].startswith("rt_")
    assert out.splitlines()[-2:] == [
        f"Logged in: codex {EMAIL}, account {ACCOUNT_ID}, plan pro",
        f"Wrote {env.auth_dir / name}",
    ]
    assert data["access_token"] not in out and data["refresh_token"] not in out
    assert browser.pages[0].status_code == 200
    account = CodexAccount.from_raw(env.auth_dir / name, env.read(name))
    assert (account.email, account.account_id, account.plan) == (EMAIL, ACCOUNT_ID, "pro")


def test_code_exchange_with_pkce(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    browser = env.browser(openai(env))
    assert run_cli(env.login(), capsys)[0] == 0
    challenge = query_of(browser.urls[0])["code_challenge"]
    [form] = env.fake.token_requests
    assert form == {
        "grant_type": "authorization_code", "code": form["code"],
        "redirect_uri": f"http://localhost:{env.port}/auth/callback", "client_id": CLIENT_ID,
        "code_verifier": form["code_verifier"],
    }  # fmt: skip
    assert len(form["code_verifier"]) == 86
    assert oauth.code_challenge(form["code_verifier"]) == challenge
    [request] = [r for r in env.fake.requests if r.path == "/oauth/token"]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("spelling", [["--codex-login"], ["-codex-login"]])
def test_seed_spelling(env: Env, capsys: pytest.CaptureFixture[str], spelling: list[str]) -> None:
    env.browser(openai(env))
    args = [*spelling, "--config", str(env.config), "--callback-port", str(env.port)]
    assert run_cli(args, capsys)[0] == 0
    assert env.files() == [f"codex-{EMAIL}.json"]


def test_login_again_replaces_the_file(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(openai(env))
    assert run_cli(env.login(), capsys)[0] == 0
    first = env.read(f"codex-{EMAIL}.json")
    env.browser(openai(env))
    code, out, _ = run_cli(env.login(), capsys)
    assert code == 0 and out.splitlines()[-1].startswith("Replaced ")
    assert env.files() == [f"codex-{EMAIL}.json"]
    assert env.read(f"codex-{EMAIL}.json")["refresh_token"] != first["refresh_token"]


def test_wrong_state(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    browser = env.browser(openai(env, state="someone-elses"))
    code, _, err = run_cli(env.login(), capsys)
    browser.join()
    assert code == 1 and "state that does not belong to this login" in err
    assert browser.pages[0].status_code == 400 and "Codex login failed" in browser.pages[0].text
    assert env.fake.token_requests == [] and env.files() == []


def test_missing_codex_entitlement(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(openai(env, error=("access_denied", "missing_codex_entitlement")))
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == (
        "cliproxy login codex: OpenAI refused the sign-in: Codex is not enabled for this ChatGPT "
        "account or workspace (missing_codex_entitlement); ask the workspace admin, or use "
        "another account\n"
    )


def test_cancel_route(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    def cancel(url: str) -> None:
        httpx.get(f"http://localhost:{env.port}/cancel", timeout=5)

    env.browser(cancel)
    code, _, err = run_cli(env.login(), capsys)
    assert (code, err) == (1, "cliproxy login codex: the login was cancelled in the browser\n")


def test_timeout(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth, "CALLBACK_TIMEOUT", 0.2)
    env.browser(lambda url: None)
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1 and "no answer from the browser within 0.2 seconds" in err


def test_port_in_use(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", env.port))
        busy.listen()
        code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == (
        f"cliproxy login codex: port {env.port} on 127.0.0.1 is already in use (another login "
        "running?); free it or pass --callback-port with another port (OpenAI redirects only to "
        "the ports the Codex client is registered with: 1455 or 1457)\n"
    )


def test_default_callback_port() -> None:
    from cliproxy.cli import cli

    ns, _ = cli.build_parser().parse_known_args(["login", "codex"])
    assert (ns.callback_port, ns.no_browser) == (1455, False)
    ns, _ = cli.build_parser().parse_known_args(["login", "gemini"])
    assert (ns.callback_port, ns.project_id) == (8085, None)


# ---------------------------------------------------------------- import codex


def codex_auth_json(env: Env, tmp: Path, **tokens_over: Any) -> tuple[Path, Any]:
    tokens = env.fake.add_account(ACCOUNT_ID, email=EMAIL, plan="team")
    auth = {"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
            "tokens": {"id_token": tokens.id_token, "access_token": tokens.access_token,
                       "refresh_token": tokens.refresh_token, "account_id": ACCOUNT_ID},
            "last_refresh": "2026-05-01T10:00:00.123456789Z"}  # fmt: skip
    auth["tokens"].update(tokens_over)
    auth["tokens"] = {k: v for k, v in auth["tokens"].items() if v is not None}
    path = tmp / ".codex" / "auth.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(auth))
    return path, tokens


def test_import_codex(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, tokens = codex_auth_json(env, tmp_path, account_id=None)  # taken from the id_token
    code, out, err = run_cli(["import", "codex", str(path), "--config", str(env.config)], capsys)
    # the one stderr line: the shared single-use refresh token (issue 12)
    assert code == 0 and err.startswith("cliproxy import codex: warning:")
    assert "cliproxy login codex" in err and len(err.splitlines()) == 1
    data = env.read(f"codex-{EMAIL}.json")
    assert data == {
        "type": "codex", "email": EMAIL, "account_id": ACCOUNT_ID, "id_token": tokens.id_token,
        "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "last_refresh": "2026-05-01T10:00:00Z",
        "expired": rfc3339(jwt_claims(tokens.access_token)["exp"]),
    }  # fmt: skip
    assert (env.auth_dir / f"codex-{EMAIL}.json").stat().st_mode & 0o777 == 0o600
    assert out.splitlines()[0] == f"Imported: codex {EMAIL}, account {ACCOUNT_ID}, plan team"
    assert env.fake.requests == []  # nothing is called on import


def test_import_codex_keeps_the_files_account_id(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = codex_auth_json(env, tmp_path, account_id="workspace-2")
    assert run_cli(["import", "codex", str(path), "--config", str(env.config)], capsys)[0] == 0
    assert env.read(f"codex-{EMAIL}.json")["account_id"] == "workspace-2"


def test_import_codex_default_path(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    codex_auth_json(env, tmp_path)
    assert run_cli(["import", "codex", "--config", str(env.config)], capsys)[0] == 0
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "nowhere"))
    code, _, err = run_cli(["import", "codex", "--config", str(env.config)], capsys)
    assert code == 1 and str(tmp_path / "nowhere" / "auth.json") in err


@pytest.mark.parametrize(("content", "message"), [
    ({"OPENAI_API_KEY": "sk-x", "tokens": None}, "holds an API key, not a ChatGPT sign-in"),
    ({"tokens": {}}, "has no tokens (sign in with `codex login` first)"),
    ({"tokens": {"id_token": "x.y.z", "access_token": "a"}}, "tokens has no refresh_token"),
    ({"tokens": {"id_token": make_jwt({"email": EMAIL}), "access_token": "a",
                 "refresh_token": "r"}}, "the id_token names no ChatGPT account"),
    ([], "is not a JSON object"),
])  # fmt: skip
def test_import_codex_errors(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, message: str
) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps(content))
    code, _, err = run_cli(["import", "codex", str(path), "--config", str(env.config)], capsys)
    assert code == 1 and err.startswith("cliproxy import codex: ") and message in err
    assert env.files() == []


def test_accounts_lists_the_codex_account(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = codex_auth_json(env, tmp_path)
    assert run_cli(["import", "codex", str(path), "--config", str(env.config)], capsys)[0] == 0
    code, out, _ = run_cli(["accounts", "--config", str(env.config)], capsys)
    assert code == 0
    _, line = out.splitlines()
    assert line.split()[:3] == ["codex", EMAIL, ACCOUNT_ID]
