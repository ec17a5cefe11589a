"""Which path a stream takes (docs/mitmproxy.md "Native streams"): an HTTP/1.x client's stream
goes to the upstream through mitmproxy itself (its failover and error event are written on the
client's connection); an HTTP/2 client's connection cannot be written around mitmproxy, so its
stream takes the loopback streamer; with `proxy-url` every call does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fakes.google import FakeGoogle
from tests.hooks.harness import LOOPBACK
from tests.hooks.harness import gemini_auth
from tests.hooks.harness import make_flow
from tests.hooks.harness import running
from tests.hooks.harness import settings
from tests.hooks.harness import went_to_streamer
from tests.hooks.harness import went_upstream

STREAM = {
    "model": "gemini-2.5-pro",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_account("ya29.valid-a", "1//refresh-a", "proj-a")
        yield server


@pytest.mark.parametrize(
    ("http_version", "stream", "proxy", "streamer"),
    [
        ("HTTP/1.1", True, False, False),
        ("HTTP/1.0", True, False, False),
        ("HTTP/2.0", True, False, True),
        ("HTTP/2.0", False, False, False),
        ("HTTP/1.1", False, True, True),
        ("HTTP/1.1", True, True, True),
    ],
)
async def test_the_path_of_a_request(
    tmp_path: Path, fake: FakeGoogle, http_version: str, stream: bool, proxy: bool, streamer: bool
) -> None:
    gemini_auth(
        tmp_path, "a", access="ya29.valid-a", refresh="1//refresh-a", project="proj-a",
        expires_in=timedelta(hours=1),
    )  # fmt: skip
    keys = {"proxy_url": "http://127.0.0.1:9"} if proxy else {}
    config = settings(tmp_path, endpoints={"gemini_cli": fake.base_url}, **keys)
    flow = make_flow("POST", "/v1/chat/completions", dict(STREAM, stream=stream), peer=LOOPBACK)
    flow.request.http_version = http_version
    async with running(config) as chain:
        await chain.request(flow)
    if streamer:
        assert went_to_streamer(flow)
    else:
        assert went_upstream(flow, fake.base_url + "/v1internal:")
