"""countTokens for Codex models (addons/gateway.py, docs/architecture.md): Codex has no counting
method, so the Anthropic, Gemini and relay (Code Assist) count requests naming a gpt-* model are
answered here with a local estimate, in the client's shape, and nothing reaches FakeCodex.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.codex import FakeCodex
from tests.hooks.harness import LOOPBACK
from tests.hooks.harness import answer
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings
from tests.hooks.harness import write_auth

MODEL = "gpt-5"
SHORT = "Say hello."
LONG = "Summarise the following text in one line. " + "The quick brown fox jumps. " * 60


def contents(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "parts": [{"text": text}]}]


# client → (method path, body for a text, headers, the count's field)
REQUESTS: dict[str, tuple[str, Any, dict[str, str], str]] = {
    "anthropic": (
        "/v1/messages/count_tokens",
        lambda text: {"model": MODEL, "messages": [{"role": "user", "content": text}]},
        {"anthropic-version": "2023-06-01"},
        "input_tokens",
    ),
    "gemini": (
        f"/v1beta/models/{MODEL}:countTokens",
        lambda text: {"contents": contents(text)},
        {},
        "totalTokens",
    ),
    "gemini-generateContentRequest": (
        f"/v1beta/models/{MODEL}:countTokens",
        lambda text: {
            "generateContentRequest": {"model": f"models/{MODEL}", "contents": contents(text)}
        },
        {},
        "totalTokens",
    ),
    "relay": (
        "/v1internal:countTokens",
        lambda text: {"request": {"model": f"models/{MODEL}", "contents": contents(text)}},
        {},
        "totalTokens",
    ),
}


@pytest.fixture
def codex(tmp_path: Path) -> Iterator[FakeCodex]:
    """FakeCodex with one signed-in account in auth-dir: a count that went upstream would
    reach it."""
    with FakeCodex() as fake:
        tokens = fake.add_account("acct-1111", email="c@example.com")
        write_auth(tmp_path, "codex-c@example.com.json", tokens.auth_file())
        yield fake


async def count(tmp_path: Path, codex: FakeCodex, client: str, text: str) -> int:
    path, body, headers, field = REQUESTS[client]
    config = settings(
        tmp_path, endpoints={"codex": codex.base_url, "openai_token": codex.token_url}
    )
    async with running(config) as chain:
        assert chain.state.pool is not None and len(chain.state.pool.usable("codex")) == 1
        flow = await chain.request(make_flow("POST", path, body(text), headers, LOOPBACK))
    status, answer_body = answer(flow)  # answered by the request hooks: nothing was forwarded
    assert status == 200
    assert list(answer_body) == [field]
    assert isinstance(answer_body[field], int)
    return answer_body[field]


@pytest.mark.parametrize("client", list(REQUESTS))
async def test_a_codex_model_count_is_a_local_estimate(
    tmp_path: Path, codex: FakeCodex, client: str
) -> None:
    short = await count(tmp_path, codex, client, SHORT)
    long = await count(tmp_path, codex, client, LONG)
    assert 0 < short < long  # an estimate of the content, not a constant
    assert codex.requests == []
    assert codex.token_requests == []
