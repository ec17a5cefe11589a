"""addons/state.py: hot reload of config.yaml and auth-dir (docs/configuration.md "Keys").

"Changes to config.yaml and to auth-dir take effect while running: no restart, no request in
flight dropped; a config that fails validation is refused with a log line and the previous one
stays in force." check() is called directly (the watcher only calls it once a second); file
times are set explicitly so two writes in the same clock tick still count as a change.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from cliproxy.addons.accounts.ai_studio import AIStudioKey
from cliproxy.addons.accounts.gemini import GeminiAccount
from cliproxy.addons.settings import load_settings
from cliproxy.addons.state import State

MODEL = "gemini-2.5-pro"


class Files:
    """config.yaml and an auth-dir under tmp_path, each write with a later mtime."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.auth = root / "auth"
        self.auth.mkdir()
        self.config = root / "config.yaml"
        self._tick = 1_700_000_000_000_000_000

    def _touch(self, path: Path) -> None:
        self._tick += 1_000_000_000
        os.utime(path, ns=(self._tick, self._tick))

    def write_config(self, text: str = "", auth_dir: Path | None = None) -> None:
        head = f"auth-dir: {json.dumps(str(auth_dir or self.auth))}\n"
        self.config.write_text(head + text)
        self._touch(self.config)

    def write_raw_config(self, text: str) -> None:
        self.config.write_text(text)
        self._touch(self.config)

    def write_account(self, name: str, directory: Path | None = None, **extra: Any) -> Path:
        data = {
            "type": "gemini",
            "email": f"{name}@example.com",
            "project_id": f"proj-{name}",
            "token": {
                "access_token": f"ya29.{name}",
                "refresh_token": "1//r",
                "expiry": "2099-01-01T00:00:00Z",
            },
            **extra,
        }
        path = (directory or self.auth) / f"gemini-{name}.json"
        path.write_text(json.dumps(data))
        self._touch(path)
        return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def started(files: Files) -> State:
    """A State as start-up leaves it."""
    state = State()
    state.apply(load_settings(files.config), files.config)
    return state


def accounts(state: State) -> dict[str, Any]:
    assert state.pool is not None
    return {a.name: a for a in state.pool.accounts}


# ---------------------------------------------------------------- config.yaml


def test_start_up_reads_config_and_auth_dir(files: Files) -> None:
    files.write_config("request-retry: 2\n")
    files.write_account("a")
    state = started(files)
    assert state.settings.request_retry == 2
    assert state.config_path == files.config
    assert list(accounts(state)) == ["gemini-a.json"]
    assert state.pool is not None and state.pool.http is state.http


def test_unchanged_config_changes_nothing(files: Files) -> None:
    files.write_config("request-retry: 2\n")
    state = started(files)
    settings, pool, http = state.settings, state.pool, state.http
    state.check()
    state.check()
    assert (state.settings, state.pool, state.http) == (settings, pool, http)
    assert state.settings is settings


def test_rewritten_but_equal_config_is_not_a_reload(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_config("request-retry: 2\n")
    state = started(files)
    files.write_config("# a comment now\nrequest-retry: 2\n")
    with caplog.at_level(logging.WARNING, logger="cliproxy.addons.state"):
        state.check()
    assert "config reloaded" not in caplog.text


def test_changed_config_applies_and_keeps_the_pool_and_its_cooldowns(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_config("request-retry: 2\n")
    files.write_account("a")
    state = started(files)
    pool, http = state.pool, state.http
    account = accounts(state)["gemini-a.json"]
    account.cool(MODEL, "quota", 600.0, "HTTP 429")
    account.requests_served = 5

    files.write_config(
        "request-retry: 5\n"
        "api-keys: [sk-local]\n"
        "model-aliases: {claude-sonnet-4-5: gemini-2.5-pro}\n"
    )
    with caplog.at_level(logging.WARNING, logger="cliproxy.addons.state"):
        state.check()

    assert state.settings.request_retry == 5
    assert state.settings.api_keys == ["sk-local"]
    assert state.settings.model_aliases == {"claude-sonnet-4-5": "gemini-2.5-pro"}
    assert state.pool is pool  # no request in flight loses its account
    assert state.http is http  # proxy-url unchanged: same client
    assert accounts(state)["gemini-a.json"] is account
    assert account.cooling(MODEL) > 590
    assert account.requests_served == 5
    assert "config reloaded" in caplog.text


def test_proxy_url_change_replaces_the_http_client(files: Files) -> None:
    files.write_config()
    state = started(files)
    old = state.http
    files.write_config('proxy-url: "http://127.0.0.1:3128"\n')
    state.check()
    assert state.settings.proxy_url == "http://127.0.0.1:3128"
    assert state.http is not old
    assert state.pool is not None and state.pool.http is state.http


def test_endpoint_change_reaches_token_refreshes(files: Files) -> None:
    files.write_config()
    state = started(files)
    files.write_config(
        "endpoints:\n  google-token: http://127.0.0.1:9/token\n"
        "  openai-token: http://127.0.0.1:9/oauth/token\n"
    )
    state.check()
    assert state.pool is not None
    assert state.pool.token_urls == {
        "gemini": "http://127.0.0.1:9/token",
        "codex": "http://127.0.0.1:9/oauth/token",
    }
    assert state.settings.endpoints.google_token == "http://127.0.0.1:9/token"


def test_auth_dir_change_builds_a_pool_from_the_new_directory(files: Files) -> None:
    files.write_config()
    files.write_account("a")
    state = started(files)
    other = files.root / "other-auth"
    other.mkdir()
    files.write_account("b", directory=other)
    files.write_config(auth_dir=other)
    state.check()
    assert state.settings.auth_path == other
    assert list(accounts(state)) == ["gemini-b.json"]


def test_auth_dir_that_does_not_exist_yet_is_created(files: Files) -> None:
    files.write_config()
    state = started(files)
    new = files.root / "fresh" / "auth"
    files.write_config(auth_dir=new)
    state.check()
    assert new.is_dir()
    assert accounts(state) == {}


def test_ai_studio_keys_change_keeps_the_state_of_kept_keys(files: Files) -> None:
    files.write_config(
        "generative-language-api-key: [AIzaKeyNumberOne1111, AIzaKeyNumberTwo2222]\n"
    )
    state = started(files)
    kept = accounts(state)["ai-studio-key-…1111"]
    assert isinstance(kept, AIStudioKey)
    kept.cool(MODEL, "quota", 60.0, "HTTP 429")
    files.write_config(
        "generative-language-api-key: [AIzaKeyNumberOne1111, AIzaKeyNumberThree333]\n"
    )
    state.check()
    now = accounts(state)
    assert sorted(now) == ["ai-studio-key-…1111", "ai-studio-key-…e333"]
    assert now["ai-studio-key-…1111"] is kept
    assert kept.cooling(MODEL) > 50


def test_host_port_change_warns_that_a_restart_is_needed(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_config("port: 8317\n")
    state = started(files)
    files.write_config("port: 9000\n")
    with caplog.at_level(logging.WARNING, logger="cliproxy.addons.state"):
        state.check()
    assert "take effect after a restart" in caplog.text
    assert state.settings.port == 9000  # recorded; the listener itself stays


BAD_CONFIGS = [
    ("unknown key", "request-retry: 2\nrequest_retyr: 3\n", "request_retyr: unknown key"),
    ("wrong type", "request-retry: many\n", "request-retry"),
    ("out of range", "request-retry: 0\n", "request-retry"),
    ("bad endpoint", "endpoints:\n  codex: ftp://x\n", "endpoints.codex"),
    ("bad proxy scheme", 'proxy-url: "ftp://proxy"\n', "proxy-url"),
    ("empty api key", 'api-keys: [""]\n', "api-keys"),
    ("not YAML", "request-retry: [1\n", "cannot be read as YAML"),
    ("not a mapping", "- a\n- b\n", "the top level must be a mapping"),
]


@pytest.mark.parametrize(
    ("text", "named"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_invalid_config_is_refused_and_the_previous_one_stays(
    files: Files, caplog: pytest.LogCaptureFixture, text: str, named: str
) -> None:
    files.write_config("request-retry: 2\n")
    files.write_account("a")
    state = started(files)
    settings, pool = state.settings, state.pool
    files.write_raw_config(text)
    with caplog.at_level(logging.ERROR, logger="cliproxy.addons.state"):
        state.check()
    assert state.settings is settings
    assert state.pool is pool
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert named in errors[0]
    assert str(files.config) in errors[0]
    assert errors[0].endswith("(the previous config stays in force)")


def test_invalid_config_is_logged_once_then_a_fix_applies(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_config("request-retry: 2\n")
    state = started(files)
    files.write_raw_config("request-retry: nope\n")
    with caplog.at_level(logging.ERROR, logger="cliproxy.addons.state"):
        state.check()
        state.check()  # unchanged since: no second log line
        state.check()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    files.write_config("request-retry: 4\n")
    state.check()
    assert state.settings.request_retry == 4


# ---------------------------------------------------------------- auth-dir


def test_auth_file_added_edited_and_removed_while_running(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_config()
    files.write_account("a")
    state = started(files)
    path_b = files.write_account("b")
    with caplog.at_level(logging.WARNING, logger="cliproxy.addons.accounts.pool"):
        state.check()
    assert sorted(accounts(state)) == ["gemini-a.json", "gemini-b.json"]
    assert "added" in caplog.text

    b = accounts(state)["gemini-b.json"]
    b.cool(MODEL, "quota", 300.0, "HTTP 429")
    b.requests_served = 3
    files.write_account("b", project_id="proj-b2")  # e.g. a re-login wrote a new project
    state.check()
    b2 = accounts(state)["gemini-b.json"]
    assert isinstance(b2, GeminiAccount)
    assert b2.project_id == "proj-b2"
    assert b2.cooling(MODEL) > 290  # running state survives the re-read
    assert b2.requests_served == 3

    path_b.unlink()
    state.check()
    assert list(accounts(state)) == ["gemini-a.json"]


def test_broken_auth_file_is_skipped_and_the_rest_keep_serving(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_config()
    files.write_account("a")
    state = started(files)
    (files.auth / "gemini-half.json").write_text('{"type": "gemini", "token": ')
    with caplog.at_level(logging.WARNING, logger="cliproxy.addons.accounts.pool"):
        state.check()
    assert list(accounts(state)) == ["gemini-a.json"]
    assert "gemini-half.json" in caplog.text
    assert "is not valid JSON" in caplog.text


def test_auth_dir_is_watched_without_a_config_file(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    files = Files(tmp_path)
    state = State()
    state.apply(load_settings(tmp_path / "missing.yaml").model_copy(update={"auth_dir": str(auth)}))
    assert state.config_path is None
    files.write_account("a")
    state.check()
    assert list(accounts(state)) == ["gemini-a.json"]


def test_update_while_running_keeps_cooldowns_of_accounts_in_flight(files: Files) -> None:
    # a request holds its account object; a reload must not hand the pool a different one
    files.write_config()
    files.write_account("a")
    state = started(files)
    in_flight = accounts(state)["gemini-a.json"]
    files.write_config("debug: true\n")
    state.check()
    assert accounts(state)["gemini-a.json"] is in_flight


def test_config_that_vanishes_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    files = Files(tmp_path)
    files.write_config("request-retry: 5\napi-keys: [sk-1]\n")
    files.write_account("a")
    state = started(files)
    a = accounts(state)["gemini-a.json"]
    a.cool("gemini-2.5-pro", "quota", 600.0, "429")
    files.config.unlink()  # an editor's save: remove, then write
    state.check()
    assert state.settings.request_retry == 5
    assert state.settings.api_keys == ["sk-1"]
    assert list(accounts(state)) == ["gemini-a.json"]
    assert not (tmp_path / "home" / ".cli-proxy-api").exists()
    files.write_config("request-retry: 5\napi-keys: [sk-1]\n")
    state.check()
    assert accounts(state)["gemini-a.json"] is a
    assert a.cooling("gemini-2.5-pro") > 590
