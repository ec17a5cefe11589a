"""The Code Assist envelope (docs/upstreams.md "Code Assist envelope", §2.5): everything this
project knows about how
Code Assist (`/v1internal:*`, Gemini CLI's backend) wraps the plain Gemini body.

- requests: `{"model", "project", "request": <GenerateContentRequest>}` (wrap_request; a client's
  envelope is read back by envelope_parts), and countTokens' own `{"request": {model, contents}}`;
- answers and stream frames: `{"response": <GenerateContentResponse>, "traceId"}`
  (unwrap_response, wrap_response). Error bodies are never enveloped.

Pure functions over JSON values; the Gemini body inside is gemini.py's business. This module
imports no dialect, so gemini.py can use it on its hot path.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translators import ir
from cliproxy.translators.sse import dumps


def _bare(model: str) -> str:
    return model.strip().removeprefix("models/")


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """d[camel], else d[snake]: Gemini clients send either spelling."""
    return d[camel] if camel in d else d.get(snake)


# ---------------------------------------------------------------- requests


def wrap_request(
    body: dict[str, Any], model: str, project: str, session_id: str | None = None
) -> dict[str, Any]:
    """A GenerateContentRequest in the envelope: bare model id, the account's project. The body
    is not mutated."""
    request = {**body, "session_id": session_id} if session_id else body
    return {"model": _bare(model), "project": project, "request": request}


def envelope_parts(body: object) -> tuple[str, dict[str, Any]]:
    """(bare model, inner request) of a generate / countTokens envelope a client sent; an
    ir.RequestError naming the field that is wrong."""
    if not isinstance(body, dict):
        raise ir.RequestError("the request body must be a JSON object")
    request = body.get("request")
    if not isinstance(request, dict):
        raise ir.RequestError("request is required and must be an object", "request")
    model = body.get("model") or request.get("model")
    if not isinstance(model, str) or not model:
        raise ir.RequestError("model is required", "model")
    return model.removeprefix("models/"), request


def _texts_of_content(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, dict):
        return []
    parts = content.get("parts")
    if isinstance(parts, dict):
        parts = [parts]
    if not isinstance(parts, list):
        return []
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


def count_tokens_request(body: object, model: str) -> dict[str, Any]:
    """Code Assist countTokens body. The upstream takes contents only (docs/upstreams.md "Code
    Assist countTokens"), so the
    system instruction and the tool declarations are folded in as leading user text."""
    if not isinstance(body, dict):
        body = {}
    inner = _get(body, "generateContentRequest", "generate_content_request")
    if isinstance(inner, dict):  # the public API's way to count system + tools
        body = inner
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    elif isinstance(contents, str):
        contents = [{"role": "user", "parts": [{"text": contents}]}]
    elif not isinstance(contents, list):
        contents = []
    lead: list[dict[str, Any]] = []
    for text in _texts_of_content(_get(body, "systemInstruction", "system_instruction")):
        if text:
            lead.append({"text": text})
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        lead.append({"text": dumps(tools)})
    if lead:
        contents = [{"role": "user", "parts": lead}, *contents]
    return {"request": {"model": "models/" + _bare(model), "contents": contents}}


# ---------------------------------------------------------------- answers and stream frames


def wrap_response(response: dict[str, Any]) -> dict[str, Any]:
    """A GenerateContentResponse (whole answer or one stream chunk) as Code Assist sends it."""
    return {"response": response}


def unwrap_response(obj: object) -> dict[str, Any]:
    """The GenerateContentResponse inside a Code Assist wrapper ({} when there is none).
    `traceId` becomes `responseId` when the response has none (as gemini-cli does)."""
    if not isinstance(obj, dict):
        return {}
    response = obj.get("response")
    if not isinstance(response, dict):
        return {}
    trace = obj.get("traceId")
    if isinstance(trace, str) and trace and "responseId" not in response:
        return {**response, "responseId": trace}
    return response
