"""`request-log: true`: each exchange written as one JSON file under logs/ (beside config.yaml).

Two hooks: the client's request is copied before the gateway rewrites it (this addon runs first
in `request`), and the pair is written once the answer is known, with the account, duration and
usage that addons/observe.py worked out. Credentials are redacted. A streamed answer is written
as the client received it, up to MAX_BODY (addons/observe.py keeps a copy as it goes out).

The files can hold prompts: 0600 in a 0700 folder, and the folder is capped (MAX_FILES,
MAX_BYTES; the oldest files go first) so a busy proxy cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
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
MAX_FILES = 500  # the folder keeps the newest files within both limits
MAX_BYTES = 200 * 1024 * 1024
OUTCOME = "cliproxy_outcome"  # addons/observe.py: the finished request
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
    except (ValueError, RecursionError):  # not JSON, or nested past what json can read
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
        # a streamed body is empty unless addons/observe.py kept the copy the client got
        "body": _body(response, streamed=bool(response.stream) and not response.raw_content),
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
        outcome = flow.metadata.get(OUTCOME)
        if outcome is not None:
            entry["summary"] = {
                "dialect": outcome.dialect,
                "upstream": outcome.upstream,
                "model": outcome.model,
                "account": outcome.account,
                "status": outcome.status,
                "duration_ms": round(outcome.duration * 1000),
                "input_tokens": outcome.input_tokens,
                "output_tokens": outcome.output_tokens,
                "attempts": [
                    {"upstream": a.upstream, "account": a.account.email or a.account.name,
                     "status": a.status}
                    for a in outcome.attempts
                ],
            }  # fmt: skip
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(_counter):06d}.json"
        try:
            await asyncio.to_thread(_save, self._dir() / name, entry)
        except OSError as e:
            logger.warning("request-log: cannot write %s: %s", name, e)


def _save(path: Path, entry: dict[str, Any]) -> None:
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)  # an older, wider folder is tightened
    data = json.dumps(entry, indent=2, ensure_ascii=False).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    prune(folder)


def prune(folder: Path, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> None:
    """Remove the oldest request-log files beyond `max_files` or `max_bytes` in all."""
    files = []
    for entry in os.scandir(folder):
        if entry.name.endswith(".json") and entry.is_file():
            st = entry.stat()
            files.append((st.st_mtime, entry.name, st.st_size))
    files.sort()
    total = sum(size for _, _, size in files)
    while files and (len(files) > max_files or total > max_bytes):
        _, name, size = files.pop(0)
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
        total -= size
