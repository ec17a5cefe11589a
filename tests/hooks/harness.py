"""The addon chain of addons/chain.py, in-process: mitmproxy's test master (taddons.context), flows
made with tflow, every hook run through the whole chain in order, as mitmproxy runs it.

No mitmdump: the `request` hooks run, then, for a flow the chain sent upstream, `forward()` does
what mitmproxy's server side would (the re-targeted request over HTTP, to a loopback fake) and the
`responseheaders` / `response` hooks run. Hook exceptions are not swallowed (mitmproxy would log
them; a test must see them).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cliproxy.addons.chain import build_chain
from cliproxy.addons.settings import Endpoints
from cliproxy.addons.settings import Settings
from cliproxy.addons.startup import Startup
from cliproxy.addons.state import State
from cliproxy.addons.streamer import Streamer
from mitmproxy import connection
from mitmproxy import hooks
from mitmproxy import http
from mitmproxy.proxy.layers.http._hooks import HttpConnectUpstreamHook
from mitmproxy.proxy.layers.http._hooks import HttpRequestHook
from mitmproxy.proxy.layers.http._hooks import HttpResponseHeadersHook
from mitmproxy.proxy.layers.http._hooks import HttpResponseHook
from mitmproxy.test import taddons
from mitmproxy.test import tflow

LOOPBACK = ("127.0.0.1", 50123)
LOOPBACK6 = ("::1", 50123, 0, 0)
REMOTE = ("203.0.113.7", 50123)  # TEST-NET-3: a non-loopback client
REMOTE6 = ("2001:db8::7", 50123, 0, 0)
PROXY_ORIGIN = "http://127.0.0.1:8317"  # the address a client used (never connected to)
NOWHERE = "http://127.0.0.1:9"  # an upstream nothing listens on: the request hooks never call it
DECODED = (b"content-encoding", b"transfer-encoding")  # httpx hands over the decoded body


def gemini_auth(
    auth_dir: Path, name: str, *, access: str, refresh: str, project: str, expires_in: timedelta
) -> Path:
    """A Gemini CLI auth file (docs/configuration.md "Auth files")."""
    expiry = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "type": "gemini",
        "email": f"{name}@example.com",
        "project_id": project,
        "token": {"access_token": access, "refresh_token": refresh, "expiry": expiry},
    }
    path = auth_dir / f"gemini-{name}.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def write_auth(auth_dir: Path, name: str, data: dict[str, Any]) -> Path:
    path = auth_dir / name
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def settings(auth_dir: Path, *, endpoints: dict[str, str] | None = None, **keys: Any) -> Settings:
    """Settings on `auth_dir`; every upstream and token endpoint is NOWHERE unless named."""
    urls = {name: NOWHERE for name in Endpoints.model_fields} | (endpoints or {})
    return Settings(auth_dir=str(auth_dir), endpoints=Endpoints(**urls), **keys)


def make_flow(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    peer: tuple[Any, ...] = LOOPBACK,
) -> http.HTTPFlow:
    """A client's request to the proxy, as the reverse-mode listener hands it to the hooks: the
    client's peer address, a server connection not yet opened (lazy connection strategy)."""
    content = b"" if body is None else json.dumps(body).encode()
    all_headers = {"content-type": "application/json"} if body is not None else {}
    all_headers |= headers or {}
    request = http.Request.make(method, PROXY_ORIGIN + path, content, all_headers)
    flow = tflow.tflow(req=request, server_conn=connection.Server(address=("127.0.0.1", 9)))
    flow.client_conn.peername = peer
    return flow


class Chain:
    """build_chain(state) minus Startup (whose job, State.apply, the test does itself) in a test
    master."""

    def __init__(self, state: State, ctx: taddons.context) -> None:
        self.state = state
        self.ctx = ctx

    async def _run(self, hook: hooks.Hook) -> None:
        for addon in self.ctx.master.addons.chain:
            await self.ctx.master.addons.invoke_addon(addon, hook)

    async def request(self, flow: http.HTTPFlow) -> http.HTTPFlow:
        await self._run(HttpRequestHook(flow))
        return flow

    async def connect_upstream(self, flow: http.HTTPFlow) -> http.HTTPFlow:
        await self._run(HttpConnectUpstreamHook(flow))
        return flow

    async def forward(self, flow: http.HTTPFlow) -> http.HTTPFlow:
        """mitmproxy's part for a flow the request hooks re-targeted: send it (one HTTP call,
        whole answer), then the response hooks."""
        assert flow.response is None, "the chain answered locally; nothing to forward"
        req = flow.request
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
            reply = await client.request(
                req.method, req.url, headers=list(req.headers.items()), content=req.content
            )
        headers = [(k, v) for k, v in reply.headers.raw if k.lower() not in DECODED]
        flow.response = http.Response.make(reply.status_code, reply.content, headers)
        await self._run(HttpResponseHeadersHook(flow))
        await self._run(HttpResponseHook(flow))
        return flow

    async def call(self, flow: http.HTTPFlow) -> http.HTTPFlow:
        """The whole exchange: request hooks, and the upstream call when they made one."""
        await self.request(flow)
        if flow.response is None:
            await self.forward(flow)
        return flow


@asynccontextmanager
async def running(config: Settings) -> AsyncIterator[Chain]:
    """The chain on a State built from `config` (auth-dir read as at start-up)."""
    state = State()
    state.apply(config)
    addons = [a for a in build_chain(state) if not isinstance(a, Startup)]
    streamer = next(a for a in addons if isinstance(a, Streamer))
    try:
        with taddons.context(*addons) as ctx:
            await streamer.running()  # as mitmproxy's `running` event would
            try:
                yield Chain(state, ctx)
            finally:
                await streamer.done()
    finally:
        await state.close()


def answer(flow: http.HTTPFlow) -> tuple[int, Any]:
    """(status, JSON body) of the flow's response."""
    assert flow.response is not None, "no response: the flow was sent upstream"
    return flow.response.status_code, json.loads(flow.response.content or b"null")


def went_to_streamer(flow: http.HTTPFlow) -> bool:
    """The request hooks handed the flow to the loopback streamer (addons/streamer.py)."""
    return (
        flow.response is None
        and flow.request.host == "127.0.0.1"
        and bool(flow.request.headers.get("x-cliproxy-exchange"))
    )


def went_upstream(flow: http.HTTPFlow, url_prefix: str) -> bool:
    """The request hooks left the flow unanswered and re-targeted at a URL `url_prefix` begins."""
    return flow.response is None and flow.request.url.startswith(url_prefix)


ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
GOOGLE_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}


def error_message(shape: str, status: int, body: Any) -> str:
    """The message of an error body, asserting it is `shape`'s error for `status`
    (docs/configuration.md "Error shapes")."""
    if shape == "openai":
        assert list(body) == ["error"] and body["error"]["type"] == ERROR_TYPES[status], body
        return body["error"]["message"]
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == ERROR_TYPES[status], body
        return body["error"]["message"]
    assert shape == "google", shape
    error = body["error"]
    assert (error["code"], error["status"]) == (status, GOOGLE_STATUS[status]), body
    return error["message"]
