"""Answers made here, without an upstream: errors in the caller's dialect, model lists, /healthz."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cliproxy.addons.routing import Dialect
from cliproxy.translators import anthropic
from cliproxy.translators import gemini
from cliproxy.translators import openai_chat
from mitmproxy import http

JSON_HEADERS = {"content-type": "application/json"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(body, ensure_ascii=False).encode(),
        {**JSON_HEADERS, **(headers or {})},
    )


def error_body(dialect: Dialect, status: int, message: str) -> dict:
    if dialect == "anthropic":
        return anthropic.error_body(status, message)
    if dialect == "gemini":
        return gemini.error_body(status, message)
    return openai_chat.error_body(status, message)


def error_response(
    dialect: Dialect, status: int, message: str, headers: dict[str, str] | None = None
) -> http.Response:
    return json_response(status, error_body(dialect, status, message), headers)


def models_response(dialect: Dialect, models: Iterable[str]) -> http.Response:
    ids = list(models)
    if dialect == "anthropic":
        return json_response(200, anthropic.models_list(ids))
    if dialect == "gemini":
        return json_response(200, gemini.models_list(ids))
    return json_response(200, openai_chat.models_list(ids))


def model_response(dialect: Dialect, model: str, available: Iterable[str]) -> http.Response:
    if model not in set(available):
        return error_response(dialect, 404, f"model {model!r} is not served by this proxy")
    if dialect == "gemini":
        return json_response(200, gemini.model_object(model))
    if dialect == "anthropic":
        return json_response(200, anthropic.models_list([model])["data"][0])
    return json_response(200, openai_chat.models_list([model])["data"][0])
