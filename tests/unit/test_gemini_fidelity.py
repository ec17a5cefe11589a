"""Issue 10 at the Gemini translator: a nameless functionResponse gets its call's name (as
gemini-cli does), on the pass-through and through the IR."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cliproxy.translators import gemini
from cliproxy.translators import ir


def _history(call_ids: tuple[str | None, str | None], names: tuple[str, str]) -> dict[str, Any]:
    calls, answers = [], []
    for name, cid, given in zip(("read_file", "glob"), call_ids, names, strict=True):
        call: dict[str, Any] = {"name": name, "args": {}}
        answer: dict[str, Any] = {"name": given, "response": {"output": name}}
        if cid is not None:
            call["id"] = answer["id"] = cid
        calls.append({"functionCall": call})
        answers.append({"functionResponse": answer})
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": calls},
            {"role": "user", "parts": answers},
        ]
    }


@pytest.mark.parametrize("ids", [("c1", "c2"), (None, None)])
def test_passthrough_fills_empty_names_from_the_calls(ids: tuple[str | None, str | None]) -> None:
    body = _history(ids, ("", ""))
    before = copy.deepcopy(body)
    out = gemini.prepare_passthrough(body)
    answers = [p["functionResponse"]["name"] for p in out["contents"][2]["parts"]]
    assert answers == ["read_file", "glob"]
    assert body == before  # the client's body is not mutated


def test_passthrough_by_id_beats_position_and_keeps_given_names() -> None:
    body = _history(("c1", "c2"), ("", ""))
    parts = body["contents"][2]["parts"]
    parts.reverse()  # answers in the other order: the ids say which is which
    parts[0]["functionResponse"]["name"] = "glob"
    out = gemini.prepare_passthrough(body)
    assert [p["functionResponse"]["name"] for p in out["contents"][2]["parts"]] == [
        "glob",
        "read_file",
    ]


@pytest.mark.parametrize("ids", [("c1", "c2"), (None, None)])
def test_ir_binds_a_nameless_response_to_its_call(ids: tuple[str | None, str | None]) -> None:
    req = gemini.parse_request(_history(ids, ("", "")), "gpt-5")
    calls = [p for p in req.messages[1].parts if isinstance(p, ir.ToolCallPart)]
    results = [p for p in req.messages[2].parts if isinstance(p, ir.ToolResultPart)]
    assert [r.call_id for r in results] == [c.id for c in calls]
    assert [r.name for r in results] == ["read_file", "glob"]
