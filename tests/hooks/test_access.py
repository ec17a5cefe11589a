"""addons/access.py in the chain (docs/configuration.md "Access"): with no `api-keys` only loopback
clients are served; with keys every client must send one; the /v1internal relay serves loopback
clients only, whatever the keys; /healthz answers without a key but lists accounts only with one.

"Passes" means the chain did what it does for an allowed client: a generation request is
re-targeted at the upstream (NOWHERE, never called), a model list is answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http

from tests.hooks.harness import LOOPBACK
from tests.hooks.harness import LOOPBACK6
from tests.hooks.harness import NOWHERE
from tests.hooks.harness import REMOTE
from tests.hooks.harness import REMOTE6
from tests.hooks.harness import answer
from tests.hooks.harness import error_message
from tests.hooks.harness import gemini_auth
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings
from tests.hooks.harness import went_upstream

MODEL = "gemini-2.5-pro"
KEY = "sk-right-key"
ACCESS_TOKEN = "ya29.account-a"
USER_CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    shape: str  # the dialect of its errors
    key_header: str  # how this dialect's SDK sends a key

    def flow(self, peer: tuple[Any, ...], key: str | None = None) -> http.HTTPFlow:
        headers = dict(self.headers)
        if key is not None:
            headers[self.key_header] = (
                f"Bearer {key}" if self.key_header == "authorization" else key
            )
        return make_flow(self.method, self.path, self.body, headers, peer)

    @property
    def generates(self) -> bool:
        return self.method == "POST"


ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
CALLS = {
    "openai-chat": Call(
        "POST",
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        {},
        "openai",
        "authorization",
    ),
    "openai-responses": Call(
        "POST", "/v1/responses", {"model": MODEL, "input": "hi"}, {}, "openai", "authorization"
    ),
    "anthropic": Call(
        "POST",
        "/v1/messages",
        {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        ANTHROPIC_VERSION,
        "anthropic",
        "x-api-key",
    ),
    "gemini": Call(
        "POST",
        f"/v1beta/models/{MODEL}:generateContent",
        {"contents": USER_CONTENTS},
        {},
        "google",
        "x-goog-api-key",
    ),
    "models-openai": Call("GET", "/v1/models", None, {}, "openai", "authorization"),
    "models-anthropic": Call(
        "GET", "/v1/models", None, ANTHROPIC_VERSION, "anthropic", "x-api-key"
    ),
    "models-gemini": Call("GET", "/v1beta/models", None, {}, "google", "x-goog-api-key"),
}

RELAY_CALLS = {
    "loadCodeAssist": ("POST", "/v1internal:loadCodeAssist", {"metadata": {}}),
    "generateContent": (
        "POST",
        "/v1internal:generateContent",
        {"model": MODEL, "request": {"contents": USER_CONTENTS}},
    ),
    "countTokens": (
        "POST",
        "/v1internal:countTokens",
        {"request": {"model": f"models/{MODEL}", "contents": USER_CONTENTS}},
    ),
    "retrieveUserQuota": ("POST", "/v1internal:retrieveUserQuota", {"project": "p"}),
    "operation": ("GET", "/v1internal/operations/abc", None),
}


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    """One Gemini CLI account with a fresh token: nothing needs a refresh."""
    path = tmp_path / "auth"
    path.mkdir()
    gemini_auth(
        path, "a", access=ACCESS_TOKEN, refresh="1//r", project="proj-a",
        expires_in=timedelta(hours=1),
    )  # fmt: skip
    return path


def assert_passed(call: Call, flow: http.HTTPFlow) -> None:
    if call.generates:
        assert went_upstream(flow, NOWHERE + "/"), flow.response and flow.response.content
        # the account's token goes upstream, never what the client sent
        assert flow.request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
        return
    status, body = answer(flow)
    assert status == 200 and MODEL in str(body), body


# ---------------------------------------------------------------- no api-keys: loopback only


@pytest.mark.parametrize("peer", [REMOTE, REMOTE6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("name", list(CALLS))
async def test_without_api_keys_a_remote_client_gets_403_in_its_dialect(
    auth_dir: Path, name: str, peer: tuple[Any, ...]
) -> None:
    call = CALLS[name]
    async with running(settings(auth_dir)) as chain:
        flow = await chain.request(call.flow(peer))
    status, body = answer(flow)
    assert status == 403
    assert "loopback" in error_message(call.shape, 403, body)
    assert flow.request.url.startswith("http://127.0.0.1:8317/")  # not sent anywhere


@pytest.mark.parametrize("peer", [LOOPBACK, LOOPBACK6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("name", list(CALLS))
async def test_without_api_keys_a_loopback_client_passes(
    auth_dir: Path, name: str, peer: tuple[Any, ...]
) -> None:
    call = CALLS[name]
    async with running(settings(auth_dir)) as chain:
        flow = await chain.request(call.flow(peer))
    assert_passed(call, flow)


# ---------------------------------------------------------------- api-keys set


@pytest.mark.parametrize("key", [None, "sk-wrong"], ids=["missing", "wrong"])
@pytest.mark.parametrize("peer", [LOOPBACK, REMOTE], ids=["loopback", "remote"])
@pytest.mark.parametrize("name", ["openai-chat", "anthropic", "gemini", "models-openai"])
async def test_with_api_keys_a_missing_or_wrong_key_is_401_in_its_dialect(
    auth_dir: Path, name: str, peer: tuple[Any, ...], key: str | None
) -> None:
    call = CALLS[name]
    async with running(settings(auth_dir, api_keys=[KEY])) as chain:
        flow = await chain.request(call.flow(peer, key))
    status, body = answer(flow)
    assert status == 401
    message = error_message(call.shape, 401, body)
    assert message.startswith("missing API key" if key is None else "invalid API key")


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("openai-chat", "authorization"),
        ("anthropic", "x-api-key"),
        ("gemini", "x-goog-api-key"),
        ("gemini", "?key="),
        ("models-openai", "authorization"),
    ],
)
async def test_with_api_keys_the_right_key_passes_from_a_remote_client(
    auth_dir: Path, name: str, how: str
) -> None:
    call = CALLS[name]
    async with running(settings(auth_dir, api_keys=["sk-other", KEY])) as chain:
        if how == "?key=":
            flow = make_flow(call.method, f"{call.path}?key={KEY}", call.body, peer=REMOTE)
        else:
            value = f"Bearer {KEY}" if how == "authorization" else KEY
            flow = make_flow(call.method, call.path, call.body, {how: value}, REMOTE)
        await chain.request(flow)
    assert_passed(call, flow)
    if call.generates:  # the client's key stays here
        assert KEY not in flow.request.url
        assert all(KEY not in value for value in flow.request.headers.values())


# ---------------------------------------------------------------- the /v1internal relay


@pytest.mark.parametrize("keys", [[], [KEY]], ids=["no-api-keys", "api-keys"])
@pytest.mark.parametrize("rpc", list(RELAY_CALLS))
async def test_the_relay_refuses_a_remote_client_even_with_a_valid_key(
    auth_dir: Path, rpc: str, keys: list[str]
) -> None:
    method, path, body = RELAY_CALLS[rpc]
    headers = {"authorization": f"Bearer {KEY}", "x-goog-api-key": KEY}
    async with running(settings(auth_dir, api_keys=keys)) as chain:
        flow = await chain.request(make_flow(method, path, body, headers, REMOTE))
    status, answer_body = answer(flow)
    assert status == 403
    assert "loopback clients only" in error_message("google", 403, answer_body)


@pytest.mark.parametrize("rpc", list(RELAY_CALLS))
async def test_the_relay_serves_a_loopback_client_without_a_key(auth_dir: Path, rpc: str) -> None:
    """Gemini CLI sends its own Google token, not one of our keys."""
    method, path, body = RELAY_CALLS[rpc]
    async with running(settings(auth_dir, api_keys=[KEY])) as chain:
        flow = await chain.request(make_flow(method, path, body, peer=LOOPBACK))
    if rpc in ("loadCodeAssist", "operation"):  # answered here, as for an onboarded user
        status, answer_body = answer(flow)
        assert status == 200 and "proj-a" in str(answer_body)
    else:
        assert went_upstream(flow, NOWHERE + "/v1internal:" + rpc)
        assert flow.request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


# ---------------------------------------------------------------- /healthz


@pytest.mark.parametrize(
    ("keys", "peer", "key", "listed"),
    [
        ([KEY], REMOTE, None, False),
        ([KEY], REMOTE, "sk-wrong", False),
        ([KEY], LOOPBACK, None, False),
        ([KEY], REMOTE, KEY, True),
        ([], REMOTE, None, False),
        ([], LOOPBACK, None, True),
    ],
    ids=["key-missing", "key-wrong", "key-missing-loopback", "key-right", "remote", "loopback"],
)
async def test_healthz_answers_everyone_and_lists_accounts_only_to_the_authorised(
    auth_dir: Path, keys: list[str], peer: tuple[Any, ...], key: str | None, listed: bool
) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with running(settings(auth_dir, api_keys=keys)) as chain:
        flow = await chain.request(make_flow("GET", "/healthz", None, headers, peer))
    status, body = answer(flow)
    assert status == 200 and body["status"] == "ok"
    if listed:
        assert list(body["accounts"]) == ["gemini-a.json"]
        assert body["accounts"]["gemini-a.json"]["email"] == "a@example.com"
        assert MODEL in body["models"]
    else:
        assert body == {"status": "ok", "accounts": {}}
