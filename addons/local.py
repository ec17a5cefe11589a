"""Answers made here, without an upstream: JSON bodies, errors in the caller's shape, and the one
way any hook ends an exchange locally (raise LocalAnswer; `local_answers` turns it, a client's
bad input and an internal fault into a response)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

from cliproxy.addons.jsoncheck import MAX_DEPTH
from cliproxy.addons.jsoncheck import check_json
from cliproxy.addons.routing import shape_of
from cliproxy.translators import ir
from cliproxy.translators.registry import SHAPES
from cliproxy.translators.registry import AnswerShape
from mitmproxy import http

logger = logging.getLogger(__name__)

JSON_HEADERS = {"content-type": "application/json"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(body, ensure_ascii=False).encode(),
        {**JSON_HEADERS, **(headers or {})},
    )


def error_response(
    shape: AnswerShape, status: int, message: str, headers: dict[str, str] | None = None
) -> http.Response:
    return json_response(status, SHAPES[shape].error_body(status, message), headers)


class LocalAnswer(Exception):
    """Ends the exchange here with `response`: raised wherever the answer becomes known."""

    def __init__(self, response: http.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def local_error(flow: http.HTTPFlow, status: int, message: str) -> LocalAnswer:
    return LocalAnswer(error_response(shape_of(flow), status, message))


type Hook[Addon] = Callable[[Addon, http.HTTPFlow], Awaitable[None]]


def local_answers[Addon](hook: Hook[Addon]) -> Hook[Addon]:
    """A `request` hook that skips answered flows and never lets an exception escape: a
    LocalAnswer becomes the response, a client's bad input a 4xx, anything else a 500 in the
    caller's shape (mitmproxy's own error page must never reach a client)."""

    @functools.wraps(hook)
    async def wrapper(self: Addon, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or flow.is_replay:
            return  # answered already, or a replay of an upstream flow (addons/webview.py)
        try:
            await hook(self, flow)
        except LocalAnswer as answer:
            flow.response = answer.response
        except ir.RequestError as e:
            message = e.message
            if e.param and e.param not in message:
                message = f"{e.param}: {message}"
            flow.response = error_response(shape_of(flow), e.status, message)
        except Exception:
            logger.exception("internal error while handling %s", flow.request.path)
            flow.response = error_response(
                shape_of(flow), 500, "internal proxy error (see the proxy's log)"
            )

    return wrapper


def json_body(req: http.Request) -> Any:
    """The client's JSON body; a RequestError naming what is wrong with it."""
    raw = req.get_content(strict=False) or b""
    if not raw.strip():
        raise ir.RequestError("the request body is empty; a JSON object is required")
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ir.RequestError(f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise ir.RequestError(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    problem = check_json(body)
    if problem is not None:
        raise ir.RequestError(f"the request body cannot be used: {problem}")
    return body
