"""addons/upstream_call.py: what the proxy reads of an upstream answer it fetched itself is
bounded, whatever the upstream sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cliproxy.addons import upstream_call
from cliproxy.addons.settings import Settings


async def endless(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield chunk


async def fetch(body: AsyncIterator[bytes], status: int = 200) -> httpx.Response:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return await client.send(client.build_request("GET", "http://upstream.test/"), stream=True)


async def test_a_whole_answer_is_read_up_to_the_limit_and_no_further() -> None:
    ok = await fetch(endless(b"x" * 1024, 4))
    assert await upstream_call.read_capped(ok, 4096) == b"x" * 4096
    big = await fetch(endless(b"x" * 1024, 10_000))  # 10 MB on offer
    with pytest.raises(upstream_call.TooLarge, match="max-body-size"):
        await upstream_call.read_capped(big, 4096)


async def test_a_refusal_is_cut_at_its_cap() -> None:
    huge = await fetch(endless(b"<html>" * 1000, 10_000), status=502)  # 60 MB of error page
    body = await upstream_call.read_refusal(huge)
    assert len(body) == upstream_call.ERROR_BODY_MAX
    small = await fetch(endless(b'{"error": "quota"}', 1), status=429)
    assert await upstream_call.read_refusal(small) == b'{"error": "quota"}'


def test_the_timeouts_are_the_configs() -> None:
    settings = Settings.model_validate({"timeouts": {"upstream-connect": 3, "upstream-idle": 40}})
    t = upstream_call.timeout(settings)
    assert (t.connect, t.read, t.write, t.pool) == (3, 40, 40, 3)
