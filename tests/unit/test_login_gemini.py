"""`cliproxy login gemini` and `cliproxy import gemini-cli`, in-process through scripts.cli.main,
against FakeGoogle (OAuth token + userinfo + Code Assist + Resource Manager). A scripted browser
follows the authorization URL to the callback like Google would after consent."""

from __future__ import annotations

import _thread
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cliproxy.addons.accounts.authfile import parse_time
from cliproxy.addons.accounts.pool import load_accounts
from cliproxy.cli import code_assist_setup
from cliproxy.cli import oauth
from cliproxy.cli.code_assist_setup import METADATA

from tests.fakes.google import CLIENT_ID
from tests.fakes.google import CLIENT_SECRET
from tests.fakes.google import SCOPES
from tests.fakes.google import FakeGoogle
from tests.unit.test_login_oauth import ScriptedBrowser
from tests.unit.test_login_oauth import StdoutWatcher
from tests.unit.test_login_oauth import free_port
from tests.unit.test_login_oauth import query_of
from tests.unit.test_login_oauth import run_cli
from tests.unit.test_login_oauth import unserved_port
from tests.unit.test_login_oauth import write_config

PROJECT = "helpful-fox-abc123"
EMAIL = "new@example.com"
ACCESS, REFRESH = "ya29.login-access", "1//login-refresh"


@dataclass
class Env:
    fake: FakeGoogle
    config: Path
    auth_dir: Path
    port: int
    monkeypatch: pytest.MonkeyPatch

    def browser(self, script: Callable[[str], dict[str, str] | None]) -> ScriptedBrowser:
        browser = ScriptedBrowser(script)
        self.monkeypatch.setattr(oauth, "open_browser", browser)
        return browser

    def login(self, *extra: str) -> list[str]:
        return ["login", "gemini", "--config", str(self.config), "--callback-port",
                str(self.port), *extra]  # fmt: skip

    def files(self) -> list[str]:
        return sorted(p.name for p in self.auth_dir.iterdir()) if self.auth_dir.exists() else []

    def read(self, name: str) -> dict[str, Any]:
        return json.loads((self.auth_dir / name).read_text())


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr(oauth, "CALLBACK_TIMEOUT", 10.0)  # a broken test must not hang 5 min
    monkeypatch.setattr(code_assist_setup, "POLL_INTERVAL", 0.02)
    monkeypatch.setattr(code_assist_setup, "POLL_TIMEOUT", 10.0)
    with FakeGoogle() as fake, unserved_port() as proxy_port:
        config = write_config(tmp_path, {
            "gemini-cli": fake.base_url,
            "google-token": fake.token_url,
            "google-userinfo": fake.base_url + "/oauth2/v1/userinfo",
            "google-authorize": fake.base_url + "/o/oauth2/auth",
        }, port=proxy_port)  # fmt: skip
        yield Env(fake, config, tmp_path / "auth", free_port(), monkeypatch)


def google(
    env: Env, *, email: str = EMAIL, project: str = PROJECT, access: str = ACCESS,
    refresh: str = REFRESH, state: str | None = None, error: str | None = None,
) -> Callable[[str], dict[str, str]]:  # fmt: skip
    """What Google does with the authorization URL: check it, issue a code, redirect."""

    def script(url: str) -> dict[str, str]:
        assert url.startswith(env.fake.base_url + "/o/oauth2/auth?")
        q = query_of(url)
        assert q == {
            "client_id": CLIENT_ID,
            "redirect_uri": f"http://localhost:{env.port}/oauth2callback",
            "response_type": "code",
            "scope": SCOPES,
            "access_type": "offline",
            "prompt": "consent",
            "state": q["state"],
            "code_challenge": q["code_challenge"],
            "code_challenge_method": "S256",
        }
        assert len(q["state"]) >= 43 and len(q["code_challenge"]) == 43
        if error:
            return {"error": error, "state": q["state"]}
        code = "4/0A" + secrets.token_urlsafe(12)
        env.fake.add_auth_code(code, access, refresh, project, email=email,
                               redirect_uri=q["redirect_uri"],
                               code_challenge=q["code_challenge"])  # fmt: skip
        return {"code": code, "state": state or q["state"], "scope": SCOPES}

    return script


def file_name(email: str = EMAIL, project: str = PROJECT) -> str:
    return f"gemini-{email}-{project}.json"


def ops(fake: FakeGoogle) -> list[Any]:
    return [r for r in fake.requests if r.path.startswith("/v1internal/operations/")]


# ---------------------------------------------------------------- the happy path


def test_login_writes_the_auth_file(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    browser = env.browser(google(env))
    before = datetime.now(UTC)
    code, out, err = run_cli(env.login(), capsys)
    browser.join()
    assert (code, err) == (0, "")
    assert env.files() == [file_name()]
    path = env.auth_dir / file_name()
    assert path.stat().st_mode & 0o777 == 0o600
    data = env.read(file_name())
    expiry = parse_time(data["token"].pop("expiry"))
    assert expiry is not None
    assert before + timedelta(seconds=3590) <= expiry <= datetime.now(UTC) + timedelta(hours=1)
    assert data == {
        "type": "gemini", "email": EMAIL, "project_id": PROJECT,
        "token": {"access_token": ACCESS, "refresh_token": REFRESH, "token_type": "Bearer",
                  "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "scopes": SCOPES.split(), "token_uri": env.fake.token_url},
    }  # fmt: skip
    assert out.splitlines()[-2:] == [
        f"Logged in: gemini {EMAIL}, project {PROJECT} (free-tier)",
        f"Wrote {path}",
    ]
    assert ACCESS not in out and REFRESH not in out  # tokens are never printed
    # the browser was shown the success page
    assert browser.pages[0].status_code == 200
    assert "authorization received" in browser.pages[0].text
    # the proxy's pool takes the file as it is
    [account] = load_accounts(env.auth_dir)
    assert (account.email, account.project_id, account.access_token) == (EMAIL, PROJECT, ACCESS)


def test_code_exchange_sends_the_pkce_verifier(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    browser = env.browser(google(env))
    assert run_cli(env.login(), capsys)[0] == 0
    browser.join()
    challenge = query_of(browser.urls[0])["code_challenge"]
    [form] = env.fake.token_requests
    assert form == {
        "code": form["code"], "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "redirect_uri": f"http://localhost:{env.port}/oauth2callback",
        "grant_type": "authorization_code", "code_verifier": form["code_verifier"],
    }  # fmt: skip
    assert oauth.code_challenge(form["code_verifier"]) == challenge


def test_fake_refuses_a_wrong_pkce_verifier(env: Env) -> None:
    import httpx

    env.fake.add_auth_code("4/c", "a", "r", PROJECT, code_challenge=oauth.pkce_pair()[1])
    form = {"code": "4/c", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code", "code_verifier": oauth.pkce_pair()[0]}  # fmt: skip
    assert httpx.post(env.fake.token_url, data=form).json() == {
        "error": "invalid_grant", "error_description": "Invalid code verifier."}  # fmt: skip


def test_setup_calls_are_those_of_gemini_cli(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(google(env))
    assert run_cli(env.login(), capsys)[0] == 0
    [info] = [r for r in env.fake.requests if r.path == "/oauth2/v1/userinfo"]
    assert info.headers["authorization"] == f"Bearer {ACCESS}"
    assert info.query == {"alt": "json"}
    [load] = env.fake.calls("loadCodeAssist")
    assert load.body == {"metadata": METADATA}
    assert load.headers["authorization"] == f"Bearer {ACCESS}"
    assert load.headers["content-type"] == "application/json"
    assert env.fake.calls("onboardUser") == []  # already onboarded: nothing else to do


def test_no_browser_prints_the_url_and_waits(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from cliproxy.cli import cli

    def must_not_open(url: str) -> bool:
        raise AssertionError("--no-browser must not open a browser")

    monkeypatch.setattr(oauth, "open_browser", must_not_open)
    browser = ScriptedBrowser(google(env))  # the user copies the printed URL
    out = StdoutWatcher(browser)
    monkeypatch.setattr("sys.stdout", out)
    assert cli.main(env.login("--no-browser")) == 0
    browser.join()
    assert len(browser.urls) == 1
    assert "Open this URL in a browser to sign in:" in out.text
    assert env.files() == [file_name()]


@pytest.mark.parametrize("spelling", [
    ["--login", "--project_id", PROJECT],
    ["-login", "-project_id", PROJECT],
    ["login", "gemini", "--project-id", PROJECT],
])  # fmt: skip
def test_seed_spellings(env: Env, capsys: pytest.CaptureFixture[str], spelling: list[str]) -> None:
    env.browser(google(env))
    args = [*spelling, "--config", str(env.config), "--callback-port", str(env.port)]
    assert run_cli(args, capsys)[0] == 0
    assert env.fake.calls("loadCodeAssist")[0].body == {
        "cloudaicompanionProject": PROJECT,
        "metadata": {**METADATA, "duetProject": PROJECT},
    }
    assert env.files() == [file_name()]


def test_login_again_replaces_the_file(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(google(env))
    assert run_cli(env.login(), capsys)[0] == 0
    (env.auth_dir / "keep.json").write_text("{}")
    env.browser(google(env, access="ya29.second", refresh="1//second"))
    code, out, _ = run_cli(env.login(), capsys)
    assert code == 0
    assert out.splitlines()[-1] == f"Replaced {env.auth_dir / file_name()}"
    assert env.files() == [file_name(), "keep.json"]
    token = env.read(file_name())["token"]
    assert (token["access_token"], token["refresh_token"]) == ("ya29.second", "1//second")
    assert (env.auth_dir / file_name()).stat().st_mode & 0o777 == 0o600


def test_login_again_replaces_a_file_named_otherwise(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """CLIProxyAPI v3 named files `<email>-<project>.json` and left `type` out."""
    env.auth_dir.mkdir()
    legacy = env.auth_dir / f"{EMAIL}-{PROJECT}.json"
    legacy.write_text(json.dumps({"email": EMAIL, "project_id": PROJECT, "token": {}}))
    (env.auth_dir / "broken.json").write_text("{")
    other = {"type": "gemini", "email": EMAIL, "project_id": "p-2", "token": {}}
    (env.auth_dir / "other.json").write_text(json.dumps(other))
    env.browser(google(env))
    code, out, _ = run_cli(env.login(), capsys)
    assert code == 0 and out.splitlines()[-1] == f"Replaced {legacy}"
    assert env.files() == ["broken.json", legacy.name, "other.json"]
    assert env.read(legacy.name)["token"]["access_token"] == ACCESS
    assert legacy.stat().st_mode & 0o777 == 0o600


def test_another_project_is_another_file(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(google(env))
    assert run_cli(env.login(), capsys)[0] == 0
    env.browser(google(env, project="other-proj-1", access="ya29.b", refresh="1//b"))
    assert run_cli(env.login(), capsys)[0] == 0
    assert env.files() == [file_name(), file_name(project="other-proj-1")]


# ---------------------------------------------------------------- onboarding


def test_onboarding_polls_the_operation_until_done(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fake.onboarding = "new-user"
    env.fake.onboard_pending = 2  # onboardUser says done:false, then one poll says it again
    env.browser(google(env))
    code, out, err = run_cli(env.login(), capsys)
    assert (code, err) == (0, "")
    [onboard] = env.fake.calls("onboardUser")
    assert onboard.body == {"tierId": "free-tier", "metadata": METADATA}  # no project: free tier
    polls = ops(env.fake)
    assert len(polls) == 2 and all(p.method == "GET" for p in polls)
    assert polls[0].path == polls[1].path
    assert polls[0].headers["authorization"] == f"Bearer {ACCESS}"
    assert env.read(file_name())["project_id"] == PROJECT
    assert f"Logged in: gemini {EMAIL}, project {PROJECT} (free-tier)" in out


def test_onboarding_done_at_once_needs_no_poll(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fake.onboarding = "new-user"
    env.browser(google(env))
    assert run_cli(env.login(), capsys)[0] == 0
    assert len(env.fake.calls("onboardUser")) == 1 and ops(env.fake) == []


def test_onboarding_that_never_finishes(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code_assist_setup, "POLL_TIMEOUT", 0.2)
    env.fake.onboarding = "new-user"
    env.fake.onboard_pending = 10_000
    env.browser(google(env))
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == ("cliproxy login gemini: Code Assist onboarding did not finish within 0.2 s; "
                   "run the login again later\n")  # fmt: skip
    assert env.files() == []


def test_project_required(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.fake.onboarding = "project-required"
    env.fake.cloud_projects = ["proj-one", PROJECT]
    env.browser(google(env))
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == (
        "cliproxy login gemini: this Google account needs a Google Cloud project for Gemini Code "
        "Assist (Workspace or paid accounts): run the login again with --project-id PROJECT_ID; "
        f"your projects: proj-one, {PROJECT}\n"
    )
    assert env.files() == []
    [onboard] = env.fake.calls("onboardUser")
    assert onboard.body == {"tierId": "standard-tier", "metadata": METADATA}
    [listing] = [r for r in env.fake.requests if r.path == "/v1/projects"]
    assert listing.headers["authorization"] == f"Bearer {ACCESS}"

    env.fake.reset()
    env.browser(google(env))
    code, out, err = run_cli(env.login("--project-id", PROJECT), capsys)
    assert (code, err) == (0, "")
    [onboard] = env.fake.calls("onboardUser")
    assert onboard.body == {"tierId": "standard-tier", "cloudaicompanionProject": PROJECT,
                            "metadata": {**METADATA, "duetProject": PROJECT}}  # fmt: skip
    assert env.read(file_name())["project_id"] == PROJECT
    assert "(standard-tier)" in out


def test_project_required_without_a_project_list(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fake.onboarding = "project-required"
    env.browser(google(env))
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1 and err.endswith("--project-id PROJECT_ID\n")


def test_project_of_someone_else(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.fake.onboarding = "project-required"
    env.browser(google(env))
    code, _, err = run_cli(env.login("--project-id", "not-mine-1"), capsys)
    assert code == 1
    assert err == ("cliproxy login gemini: Code Assist onboardUser failed: HTTP 403 "
                   "PERMISSION_DENIED: The caller does not have permission\n")  # fmt: skip
    assert env.files() == []


def test_current_tier_without_project(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.fake.onboarding = "standard-onboarded"
    env.browser(google(env))
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1 and "--project-id PROJECT_ID" in err
    env.browser(google(env))
    code, out, _ = run_cli(env.login("--project_id", PROJECT), capsys)
    assert code == 0 and "(standard-tier)" in out
    assert env.fake.calls("onboardUser") == []


def test_project_number_is_refused(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(lambda url: None)
    code, _, err = run_cli(env.login("--project-id", "123456789012"), capsys)
    assert code == 1 and "looks like a project number" in err


# ---------------------------------------------------------------- failures


def test_wrong_state_is_refused(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    browser = env.browser(google(env, state="forged-state"))
    code, _, err = run_cli(env.login(), capsys)
    browser.join()
    assert code == 1
    assert err == (
        "cliproxy login gemini: the browser came back with a state that does not belong to this "
        "login (an old tab or a forged request); nothing was saved, run the login again\n"
    )
    assert browser.pages[0].status_code == 400
    assert "Gemini login failed" in browser.pages[0].text
    assert env.fake.token_requests == []  # the code was never exchanged
    assert env.files() == []


def test_consent_refused(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(google(env, error="access_denied"))
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == ("cliproxy login gemini: the sign-in was refused or cancelled in the "
                   "browser\n")  # fmt: skip


def test_timeout(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth, "CALLBACK_TIMEOUT", 0.3)
    env.browser(lambda url: None)  # the user never signs in
    started = time.monotonic()
    code, _, err = run_cli(env.login(), capsys)
    assert 0.3 <= time.monotonic() - started < 3
    assert code == 1
    assert err == ("cliproxy login gemini: no answer from the browser within 0.3 seconds; run the "
                   "login again (with --no-browser, open the printed URL yourself)\n")  # fmt: skip
    assert env.files() == []


def test_port_in_use(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(lambda url: pytest.fail("no URL may be shown"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", env.port))
        busy.listen()
        code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == (
        f"cliproxy login gemini: port {env.port} on 127.0.0.1 is already in use (another login "
        "running?); free it or pass --callback-port with another port\n"
    )


def test_bad_code_exchange(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.browser(lambda url: {"code": "4/unknown", "state": query_of(url)["state"]})
    code, _, err = run_cli(env.login(), capsys)
    assert code == 1
    assert err == ("cliproxy login gemini: the Google token exchange failed: HTTP 400 "
                   "invalid_grant: Malformed auth code.\n")  # fmt: skip


def test_ctrl_c_leaves_no_file(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C after the tokens arrived (during the onboarding polls): nothing is written."""
    env.fake.onboarding = "new-user"
    env.fake.onboard_pending = 100_000
    env.browser(google(env))

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 10
        while not ops(env.fake) and time.monotonic() < deadline:
            time.sleep(0.01)
        _thread.interrupt_main()

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        code, _, err = run_cli(env.login(), capsys)
    finally:
        presser.join()
    assert code == 130
    # (the fake may log a connection reset first: the interrupted client hung up mid-answer)
    assert err.splitlines()[-1] == "cliproxy login gemini: interrupted; nothing was saved"
    assert env.files() == []  # no auth file, no temp file


# ---------------------------------------------------------------- import gemini-cli


def write_creds(tmp: Path, **over: Any) -> Path:
    creds = {"access_token": "ya29.cli", "refresh_token": "1//cli", "scope": SCOPES,
             "token_type": "Bearer",
             "expiry_date": int((time.time() + 1800) * 1000)}  # fmt: skip
    creds.update(over)
    creds = {k: v for k, v in creds.items() if v is not None}
    path = tmp / ".gemini" / "oauth_creds.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(creds))
    return path


def id_token(email: str) -> str:
    payload = oauth.b64url(json.dumps({"email": email, "sub": "1"}).encode())
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


def imp(env: Env, *args: str) -> list[str]:
    return ["import", "gemini-cli", *args, "--config", str(env.config)]


def test_import_gemini_cli(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env.fake.add_account("ya29.cli", "1//cli", PROJECT, email="cli@example.com")
    expiry_ms = int((time.time() + 1800) * 1000)
    creds = write_creds(tmp_path, id_token=id_token("cli@example.com"), expiry_date=expiry_ms)
    code, out, err = run_cli(imp(env, str(creds)), capsys)
    assert (code, err) == (0, "")
    name = file_name("cli@example.com")
    data = env.read(name)
    assert data["token"] == {
        "access_token": "ya29.cli", "refresh_token": "1//cli", "token_type": "Bearer",
        # expiry_date is in milliseconds
        "expiry": datetime.fromtimestamp(expiry_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scopes": SCOPES.split(),
        "token_uri": env.fake.token_url,
    }  # fmt: skip
    assert [data[k] for k in ("type", "email", "project_id")] == [
        "gemini",
        "cli@example.com",
        PROJECT,
    ]
    assert (env.auth_dir / name).stat().st_mode & 0o777 == 0o600
    assert env.fake.token_requests == []  # still valid: no refresh
    assert [r.path for r in env.fake.requests] == ["/v1internal:loadCodeAssist"]  # email: id_token
    assert out.splitlines()[0] == f"Imported: gemini cli@example.com, project {PROJECT} (free-tier)"


def test_import_refreshes_an_expired_token(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fake.add_account("ya29.old", "1//cli", PROJECT, email="cli@example.com", expired=True)
    env.fake.onboarding = "new-user"
    creds = write_creds(tmp_path, access_token="ya29.old",
                        expiry_date=int((time.time() - 60) * 1000))  # fmt: skip
    (creds.parent / "google_accounts.json").write_text(
        json.dumps({"active": "cli@example.com", "old": []}))  # fmt: skip
    code, _, err = run_cli(imp(env, str(creds)), capsys)
    assert (code, err) == (0, "")
    [form] = env.fake.token_requests
    assert form == {"refresh_token": "1//cli", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET, "grant_type": "refresh_token"}  # fmt: skip
    token = env.read(file_name("cli@example.com"))["token"]
    assert token["access_token"].startswith("ya29.fake-") and token["refresh_token"] == "1//cli"
    assert env.fake.calls("onboardUser")  # the set-up ran with the fresh token
    assert not [r for r in env.fake.requests if "userinfo" in r.path]  # google_accounts.json


def test_import_asks_userinfo_for_the_email(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fake.add_account("ya29.cli", "1//cli", PROJECT, email="who@example.com")
    creds = write_creds(tmp_path)
    code, _, _ = run_cli(imp(env, str(creds)), capsys)
    assert code == 0 and env.files() == [file_name("who@example.com")]


def test_import_default_path(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env.fake.add_account("ya29.cli", "1//cli", PROJECT, email="cli@example.com")
    write_creds(tmp_path, id_token=id_token("cli@example.com"))
    assert run_cli(imp(env), capsys)[0] == 0
    assert env.files() == [file_name("cli@example.com")]


@pytest.mark.parametrize(("over", "message"), [
    ({"refresh_token": None}, "has no refresh_token"),
    ("missing", "does not exist (sign in with gemini-cli first, or run `cliproxy login gemini`)"),
    ("garbage", "is not valid JSON"),
])  # fmt: skip
def test_import_gemini_cli_errors(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], over: Any, message: str
) -> None:
    path = tmp_path / "creds.json"
    if isinstance(over, dict):
        path = write_creds(tmp_path, **over)
    elif over == "garbage":
        path.write_text("{nope")
    code, _, err = run_cli(imp(env, str(path)), capsys)
    assert code == 1
    assert err.startswith(f"cliproxy import gemini-cli: {path}") and message in err
    assert env.files() == []


# ---------------------------------------------------------------- accounts


def test_accounts(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["accounts", "--config", str(env.config)], capsys)
    assert (code, out) == (1, "")
    assert err == (
        f"cliproxy accounts: no accounts in {env.auth_dir}: run `cliproxy login gemini` or "
        "`cliproxy login codex` (or adopt a CLI login: `cliproxy import gemini-cli` / "
        "`cliproxy import codex`)\n"
    )
    env.browser(google(env))
    assert run_cli(env.login(), capsys)[0] == 0
    code, out, _ = run_cli(["accounts", "--config", str(env.config)], capsys)
    assert code == 0
    header, line = out.splitlines()
    assert header == "1 account(s), from auth-dir (the proxy is not running: no live state):"
    assert line.split()[:3] == ["gemini", EMAIL, PROJECT]
