"""Replay in mitmweb (docs/configuration.md "Observability"): a stored flow keeps only masked
credentials, so a replayed upstream call gets a fresh token of the account that made it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cliproxy.addons.masking import mask_request

from tests.hooks.harness import LOOPBACK
from tests.hooks.harness import gemini_auth
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings


async def test_a_replayed_relay_side_call_gets_its_accounts_token_back(tmp_path: Path) -> None:
    gemini_auth(
        tmp_path, "a", access="ya29.fresh-a", refresh="1//r", project="proj-a",
        expires_in=timedelta(hours=1),
    )  # fmt: skip
    async with running(settings(tmp_path)) as chain:
        flow = make_flow("POST", "/v1internal:retrieveUserQuota", {"project": "x"}, peer=LOOPBACK)
        await chain.request(flow)
        assert flow.request.headers["authorization"] == "Bearer ya29.fresh-a"
        mask_request(flow.request)  # what mitmweb stores
        assert flow.request.headers["authorization"] == "Bearer …sh-a"
        flow.is_replay = "request"
        await chain.request(flow)
    assert flow.request.headers["authorization"] == "Bearer ya29.fresh-a"
    assert flow.response is None  # replayed upstream, not answered here
    assert flow.comment.startswith("replay · relay · a@example.com")
