"""addons/failover.py: `request-retry` caps the attempts one request makes across accounts
(docs/configuration.md "Keys"). Every account of the pool is rate-limited at FakeGoogle; the first
attempt is the flow mitmproxy forwards, the retries go out through httpx; the fake counts them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http

from tests.fakes.google import FakeGoogle
from tests.fakes.google import rate_limited
from tests.hooks.harness import LOOPBACK
from tests.hooks.harness import answer
from tests.hooks.harness import error_message
from tests.hooks.harness import gemini_auth
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings

MODEL = "gemini-2.5-pro"
ACCOUNTS = ("a", "b", "c", "d", "e")
RETRY_DELAY = 37  # seconds the upstream asks every account to wait
USER_CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]

CLIENTS: dict[str, tuple[str, dict[str, Any], dict[str, str], str]] = {
    "openai-chat": (
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        {},
        "openai",
    ),
    "anthropic": (
        "/v1/messages",
        {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        {"anthropic-version": "2023-06-01"},
        "anthropic",
    ),
    "gemini": (
        f"/v1beta/models/{MODEL}:generateContent",
        {"contents": USER_CONTENTS},
        {},
        "google",
    ),
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        for name in ACCOUNTS:
            server.add_account(f"ya29.{name}", f"1//{name}", f"proj-{name}", email=f"{name}@x.org")
        yield server


@pytest.fixture
def auth_dir(tmp_path: Path, fake: FakeGoogle) -> Path:
    fake.reset()
    path = tmp_path / "auth"
    path.mkdir()
    for name in ACCOUNTS:
        fake.always_for(f"proj-{name}", rate_limited(f"{RETRY_DELAY}s"))
        gemini_auth(
            path, name, access=f"ya29.{name}", refresh=f"1//{name}", project=f"proj-{name}",
            expires_in=timedelta(hours=1),
        )  # fmt: skip
    return path


async def exchange(
    fake: FakeGoogle, auth_dir: Path, client: str, request_retry: int
) -> http.HTTPFlow:
    path, body, headers, _ = CLIENTS[client]
    config = settings(
        auth_dir,
        endpoints={"gemini_cli": fake.base_url, "google_token": fake.token_url},
        request_retry=request_retry,
        quota_exceeded={"switch_preview_model": False},  # the cap alone, no preview fallback
    )
    async with running(config) as chain:
        return await chain.call(make_flow("POST", path, body, headers, LOOPBACK))


@pytest.mark.parametrize("request_retry", [1, 2, 4])
async def test_request_retry_caps_the_upstream_attempts(
    fake: FakeGoogle, auth_dir: Path, request_retry: int
) -> None:
    flow = await exchange(fake, auth_dir, "openai-chat", request_retry)
    calls = fake.calls("generateContent")
    assert len(calls) == request_retry  # five accounts, all refusing: the cap stops it
    assert all(c.status == 429 for c in calls)
    assert len({c.credential for c in calls}) == request_retry  # each on another account
    assert fake.token_requests == []  # fresh tokens: no refresh on the way
    assert answer(flow)[0] == 429


@pytest.mark.parametrize("client", list(CLIENTS))
async def test_the_capped_request_answers_429_with_retry_after_in_its_dialect(
    fake: FakeGoogle, auth_dir: Path, client: str
) -> None:
    flow = await exchange(fake, auth_dir, client, 3)
    assert len(fake.calls("generateContent")) == 3
    status, body = answer(flow)
    assert status == 429
    assert flow.response is not None
    assert flow.response.headers["retry-after"] == str(RETRY_DELAY)
    assert "exhausted your capacity" in error_message(CLIENTS[client][3], 429, body)
