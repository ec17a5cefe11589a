"""The /v1internal relay (Gemini CLI with CODE_ASSIST_ENDPOINT) through a real mitmdump."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from tests.fakes.codex import FakeCodex
from tests.fakes.google import FakeGoogle
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import start_proxy

CLI = {"authorization": "Bearer ya29.cli-own-token", "content-type": "application/json"}
META = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}


@pytest.fixture(scope="module")
def relay_proxy(
    fake: FakeGoogle, codex: FakeCodex, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    tokens = codex.add_account("acct-relay", email="r@example.com")
    p = start_proxy(
        tmp_path_factory.mktemp("relay"),
        fake,
        codex=codex,
        config={"api-keys": ["k-only-for-the-public-api"]},  # the relay ignores api-keys
        auth_files={
            "gemini-a.json": gemini_auth(
                "a@example.com", PROJECT, "ya29.valid-a", "1//refresh-a", timedelta(hours=1)
            ),
            "codex-r.json": tokens.auth_file(),
        },
    )
    yield p
    p.stop()


def post(proxy: Proxy, method: str, body: dict, **kw: object) -> httpx.Response:
    return httpx.post(f"{proxy.base_url}/v1internal:{method}", json=body, headers=CLI, **kw)  # type: ignore[arg-type]


def envelope(model: str, text: str, project: str = "project-the-cli-remembers") -> dict:
    return {
        "model": model,
        "project": project,
        "user_prompt_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"temperature": 1, "topP": 0.95, "topK": 64},
            "session_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        },
    }


def test_setup_calls_answer_as_an_onboarded_user(relay_proxy: Proxy, fake: FakeGoogle) -> None:
    load = post(relay_proxy, "loadCodeAssist", {"metadata": META})
    assert load.status_code == 200
    assert load.json()["currentTier"]["id"] == "free-tier"
    assert load.json()["cloudaicompanionProject"] == PROJECT
    onboard = post(relay_proxy, "onboardUser", {"tierId": "free-tier", "metadata": META})
    assert onboard.json()["done"] is True
    assert onboard.json()["response"]["cloudaicompanionProject"]["id"] == PROJECT
    poll = httpx.get(f"{relay_proxy.base_url}/v1internal/operations/x", headers=CLI)
    assert poll.status_code == 200 and poll.json()["done"] is True
    assert fake.requests == []  # answered by the proxy


def test_other_methods_forwarded_with_pool_token_and_project(
    relay_proxy: Proxy, fake: FakeGoogle
) -> None:
    r = post(relay_proxy, "retrieveUserQuota", {"project": "project-the-cli-remembers"})
    assert r.status_code == 200 and r.json() == {"buckets": []}
    r = post(
        relay_proxy,
        "listExperiments",
        {"project": "stale", "metadata": {**META, "duetProject": "stale"}},
    )
    assert r.status_code == 200 and "experimentIds" in r.json()
    quota, experiments = fake.requests
    assert quota.headers["authorization"] == "Bearer ya29.valid-a"
    assert quota.body == {"project": PROJECT}
    assert experiments.body["metadata"]["duetProject"] == PROJECT


def test_stream_generate_is_served_by_the_pool(relay_proxy: Proxy, fake: FakeGoogle) -> None:
    r = post(relay_proxy, "streamGenerateContent?alt=sse", envelope("gemini-2.5-flash", "a b c"))
    assert r.status_code == 200
    frames = [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: ")]
    assert all("response" in f for f in frames)  # Code Assist frames for Gemini CLI
    text = "".join(
        p.get("text", "")
        for f in frames
        for p in f["response"]["candidates"][0]["content"]["parts"]
    )
    assert text == "Echo: a b c"
    (call,) = fake.calls("streamGenerateContent")
    assert call.headers["authorization"] == "Bearer ya29.valid-a"
    assert call.body["project"] == PROJECT  # the CLI's stale project was replaced


def test_generate_and_count_tokens(relay_proxy: Proxy, fake: FakeGoogle) -> None:
    r = post(relay_proxy, "generateContent", envelope("gemini-2.5-pro", "hello"))
    assert r.json()["response"]["candidates"][0]["content"]["parts"][0]["text"] == "Echo: hello"
    body = {"request": {"model": "models/gemini-2.5-flash", "contents": [
        {"role": "user", "parts": [{"text": "count me"}]}]}}  # fmt: skip
    r = post(relay_proxy, "countTokens", body)
    assert r.status_code == 200 and r.json()["totalTokens"] > 0
    assert fake.calls("countTokens")[0].body["request"]["model"] == "models/gemini-2.5-flash"


def test_gpt_model_through_codex_comes_back_as_code_assist_frames(
    relay_proxy: Proxy, codex: FakeCodex
) -> None:
    r = post(relay_proxy, "streamGenerateContent?alt=sse", envelope("gpt-5", "via codex"))
    frames = [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: ")]
    text = "".join(
        p.get("text", "")
        for f in frames
        for p in f["response"].get("candidates", [{}])[0].get("content", {}).get("parts", [])
    )
    assert text == "Echo: via codex"
    assert codex.responses_requests[-1].body["input"][-1]["content"][0]["text"] == "via codex"
    r = post(relay_proxy, "generateContent", envelope("gpt-5", "whole"))
    assert r.json()["response"]["candidates"][0]["content"]["parts"][0]["text"] == "Echo: whole"


def test_bad_envelope_is_a_google_400(relay_proxy: Proxy) -> None:
    r = post(relay_proxy, "generateContent", {"model": "gemini-2.5-pro"})
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "request" in r.json()["error"]["message"]
