"""The Code Assist envelope (translators/code_assist.py): requests in, answers out, countTokens."""

from __future__ import annotations

import json

import pytest
from cliproxy.translators import code_assist
from cliproxy.translators import ir

from tests.unit.test_gemini import GEMINI_CLI_FOLLOWUP


def test_wrap_and_unwrap_code_assist() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert code_assist.wrap_request(body, "models/gemini-2.5-pro", "proj-1") == {
        "model": "gemini-2.5-pro",
        "project": "proj-1",
        "request": body,
    }
    wrapped = code_assist.wrap_request(body, "gemini-2.5-pro", "proj-1", session_id="sess")
    assert wrapped["request"] == {**body, "session_id": "sess"}
    assert "session_id" not in body
    assert code_assist.unwrap_response({"response": {"candidates": []}, "traceId": "t1"}) == {
        "candidates": [],
        "responseId": "t1",
    }
    assert code_assist.unwrap_response({"response": {"responseId": "r"}, "traceId": "t1"}) == {
        "responseId": "r"
    }
    assert code_assist.unwrap_response({"traceId": "t"}) == {}
    assert code_assist.unwrap_response([1]) == {}
    assert code_assist.unwrap_response({"response": "x"}) == {}


def test_count_tokens_request_folds_system_and_tools() -> None:
    body = GEMINI_CLI_FOLLOWUP["request"]
    out = code_assist.count_tokens_request(body, "gemini-2.5-flash")
    assert list(out) == ["request"]
    assert list(out["request"]) == ["model", "contents"]
    assert out["request"]["model"] == "models/gemini-2.5-flash"
    lead = out["request"]["contents"][0]
    assert lead["role"] == "user"
    assert lead["parts"][0] == {"text": "You are an interactive CLI agent..."}
    assert json.loads(lead["parts"][1]["text"]) == body["tools"]
    assert out["request"]["contents"][1:] == body["contents"]
    # plain countTokens body and the public generateContentRequest form
    assert code_assist.count_tokens_request({"contents": [{"parts": [{"text": "a"}]}]}, "m") == {
        "request": {"model": "models/m", "contents": [{"parts": [{"text": "a"}]}]}
    }
    out = code_assist.count_tokens_request(
        {
            "generateContentRequest": {
                "model": "models/m",
                "contents": [],
                "system_instruction": {"parts": [{"text": "S"}]},
            }
        },
        "models/m",
    )
    assert out == {
        "request": {"model": "models/m", "contents": [{"role": "user", "parts": [{"text": "S"}]}]}
    }


def test_wrap_response_is_what_unwrap_reads() -> None:
    response = {"candidates": [], "responseId": "r"}
    assert code_assist.wrap_response(response) == {"response": response}
    assert code_assist.unwrap_response(code_assist.wrap_response(response)) == response


def test_envelope_parts_reads_model_and_request() -> None:
    request = {"contents": []}
    body = {"model": "models/gemini-2.5-pro", "project": "p", "request": request}
    assert code_assist.envelope_parts(body) == ("gemini-2.5-pro", request)
    # countTokens names the model inside the request
    inner = {"model": "models/gemini-2.5-flash", "contents": []}
    assert code_assist.envelope_parts({"request": inner}) == ("gemini-2.5-flash", inner)


@pytest.mark.parametrize(
    ("body", "message", "param"),
    [
        ([], "the request body must be a JSON object", None),
        ({"model": "m"}, "request is required and must be an object", "request"),
        ({"model": "m", "request": "x"}, "request is required and must be an object", "request"),
        ({"request": {}}, "model is required", "model"),
        ({"model": "", "request": {"model": 3}}, "model is required", "model"),
    ],
)
def test_envelope_parts_names_what_is_wrong(body: object, message: str, param: str | None) -> None:
    with pytest.raises(ir.RequestError) as exc:
        code_assist.envelope_parts(body)
    assert (exc.value.message, exc.value.param, exc.value.status) == (message, param, 400)
