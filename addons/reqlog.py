"""`request-log: true`: each exchange written as one JSON file under logs/ (beside config.yaml).

Two hooks: the client's request is copied before the gateway rewrites it (this addon runs first
in `request`), and the pair is written once the answer is known. Credentials are redacted; a
streamed answer is logged without its body (it went to the client chunk by chunk).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

from cliproxy.addons.state import State
from mitmproxy import http

logger = logging.getLogger(__name__)

KEY = "cliproxy_reqlog"
KEY_URL = "cliproxy_reqlog_url"  # the client's URL, to tell whether the flow went upstream
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie", "set-cookie"}
)
MAX_BODY = 256 * 1024  # per body: enough to debug, bounded on disk
_counter = itertools.count()


def _headers(headers: http.Headers) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def _url(request: http.Request) -> str:
    if "key" not in request.query:
        return request.pretty_url
    copy = request.copy()
    copy.query["key"] = "<redacted>"
    return copy.pretty_url


def _body(message: http.Message, streamed: bool = False) -> Any:
    if streamed:
        return "<streamed to the client>"
    raw = message.get_content(strict=False) or b""
    if len(raw) > MAX_BODY:
        return raw[:MAX_BODY].decode("utf-8", "replace") + f"… <{len(raw)} bytes>"
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _request(request: http.Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "url": _url(request),
        "headers": _headers(request.headers),
        "body": _body(request),
    }


def _response(response: http.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "headers": _headers(response.headers),
        "body": _body(response, streamed=bool(response.stream)),
    }


class RequestLog:
    """Runs before the gateway: copies what the client sent, and what the upstream answered
    before the gateway translates it."""

    def __init__(self, state: State) -> None:
        self.state = state

    def request(self, flow: http.HTTPFlow) -> None:
        if self.state.settings.request_log:
            flow.metadata[KEY] = {"time": time.time(), "client_request": _request(flow.request)}
            flow.metadata[KEY_URL] = flow.request.url

    def response(self, flow: http.HTTPFlow) -> None:
        entry = flow.metadata.get(KEY)
        sent_upstream = flow.request.url != flow.metadata.get(KEY_URL)
        if entry is not None and flow.response is not None and sent_upstream:
            entry["upstream_request"] = _request(flow.request)
            entry["upstream_response"] = _response(flow.response)


class RequestLogWriter:
    """Runs after the gateway: adds what the client got and writes the file."""

    def __init__(self, state: State) -> None:
        self.state = state

    def _dir(self) -> Path:
        base = self.state.config_path.parent if self.state.config_path else Path.cwd()
        return base / "logs"

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._write(flow)

    async def error(self, flow: http.HTTPFlow) -> None:
        await self._write(flow)

    async def _write(self, flow: http.HTTPFlow) -> None:
        entry = flow.metadata.pop(KEY, None)
        if entry is None:
            return
        if flow.response is not None:
            entry["client_response"] = _response(flow.response)
        if flow.error is not None:
            entry["error"] = flow.error.msg
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(_counter):06d}.json"
        try:
            await asyncio.to_thread(_save, self._dir() / name, entry)
        except OSError as e:
            logger.warning("request-log: cannot write %s: %s", name, e)


def _save(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, indent=2, ensure_ascii=False), encoding="utf-8")
