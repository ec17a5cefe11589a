"""Usage store, `since` parsing, the access-log line, the stream tee, usage from answers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from cliproxy.addons.accesslog import Outcome
from cliproxy.addons.accesslog import access_line
from cliproxy.addons.observe import Tee
from cliproxy.addons.usage import SQLiteUsageStore
from cliproxy.addons.usage import UsageRecord
from cliproxy.addons.usage import parse_since
from cliproxy.addons.usage import query_file
from cliproxy.addons.usage import usage_db_path
from cliproxy.translators import usage as usage_of
from cliproxy.translators.pipeline import GeminiPassthrough
from cliproxy.translators.pipeline import ResponsesRelay

DAY = 86400.0
NOW = 1_800_000_000.0  # 2027-01-15


def rec(t: float, account: str = "a@x", model: str = "gemini-2.5-pro", status: int = 200,
        i: int = 10, o: int = 5) -> UsageRecord:  # fmt: skip
    return UsageRecord(t, account, model, "openai-chat", "code_assist", status, i, o)


def test_store_aggregates_per_day_account_model_and_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "u.sqlite"
    store = SQLiteUsageStore(db)
    for r in (rec(NOW), rec(NOW + 1), rec(NOW, status=429, i=0, o=0), rec(NOW - 2 * DAY),
              rec(NOW, account="b@x"), rec(NOW, model="gemini-2.5-flash")):  # fmt: skip
        store.record(r)
    rows = store.query(NOW - DAY)
    store.close()
    assert rows[0] == {
        "day": "2027-01-15", "account": "a@x", "model": "gemini-2.5-flash",
        "requests": 1, "errors": 0, "input_tokens": 10, "output_tokens": 5,
    }  # fmt: skip
    pro = next(r for r in rows if r["account"] == "a@x" and r["model"] == "gemini-2.5-pro")
    assert (pro["requests"], pro["errors"], pro["input_tokens"], pro["output_tokens"]) == (
        3,
        1,
        20,
        10,
    )
    assert len(rows) == 3
    # reopened (a restart): the history is there, the old day too
    assert len(query_file(db, None)) == 4
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_writes_a_large_batch_whole(tmp_path: Path) -> None:
    """More rows than one statement takes (a busy second): every row lands, each counted."""
    db = tmp_path / "u.sqlite"
    store = SQLiteUsageStore(db)
    for n in range(2345):
        store.record(rec(NOW + n % 60, account=f"acct-{n % 7}", i=n, o=1))
    rows = store.query(None)
    store.close()
    assert sum(r["requests"] for r in rows) == 2345
    assert sum(r["input_tokens"] for r in rows) == sum(range(2345))
    assert {r["account"] for r in rows} == {f"acct-{k}" for k in range(7)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", NOW - 7 * DAY), ("12h", NOW - 12 * 3600), ("30m", NOW - 1800), ("2w", NOW - 14 * DAY),
     ("90s", NOW - 90), ("2027-01-01", 1798761600.0), (None, None), ("", None)],
)  # fmt: skip
def test_parse_since(text: str | None, expected: float | None) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["7", "d7", "7y", "yesterday", "2027-13-01", "-1d"])
def test_parse_since_refuses_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="7d"):
        parse_since(text, NOW)


def test_usage_db_path_is_beside_the_config(tmp_path: Path) -> None:
    assert usage_db_path("usage.sqlite", tmp_path / "config.yaml") == tmp_path / "usage.sqlite"
    assert usage_db_path("/abs/u.db", tmp_path / "config.yaml") == Path("/abs/u.db")
    assert usage_db_path("", tmp_path / "config.yaml") is None


def test_access_line_has_the_fields_and_no_query() -> None:
    o = Outcome("10.0.0.7", "POST", "/v1beta/models/gemini-2.5-pro:generateContent",
                "gemini-api", "code_assist", "gemini-2.5-pro", "a@example.com", 200, 1.2346,
                0.2, 11, 22)  # fmt: skip
    line = access_line(o)
    assert line == (
        "10.0.0.7 POST /v1beta/models/gemini-2.5-pro:generateContent gemini-api → code_assist "
        "model=gemini-2.5-pro account=a@example.com status=200 1235ms tokens=11/22 attempts=0"
    )


def test_tee_keeps_a_bounded_copy_and_the_first_byte_time() -> None:
    tee = Tee(lambda chunk: [chunk.upper()] if chunk else [b"END"], limit=5)
    before = time.time()
    assert tee(b"abc") == [b"ABC"]
    assert tee(b"defg") == [b"DEFG"]
    assert tee(b"") == [b"END"]
    assert tee.first is not None and tee.first >= before
    assert tee.kept() == b"ABCDE\n\xe2\x80\xa6 <10 bytes in all>"
    assert tee.usage is None


def test_usage_of_answers() -> None:
    gemini = {"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3,
                                "thoughtsTokenCount": 2}}  # fmt: skip
    u = usage_of.of_answer(gemini)
    assert u is not None and (u.input_tokens, u.output_tokens) == (7, 5)
    u = usage_of.of_answer({"response": gemini})
    assert u is not None and u.input_tokens == 7
    u = usage_of.of_answer({"id": "r", "usage": {"input_tokens": 4, "output_tokens": 9}})
    assert u is not None and (u.input_tokens, u.output_tokens) == (4, 9)
    assert usage_of.of_answer({"candidates": []}) is None


def test_passthrough_streams_expose_the_upstreams_usage() -> None:
    relay = ResponsesRelay()
    relay(b'event: response.created\ndata: {"type":"response.created","response":{"id":"r"}}\n\n')
    assert relay.usage is None
    relay(b'event: response.completed\ndata: {"type":"response.completed","response":'
          b'{"id":"r","usage":{"input_tokens":12,"output_tokens":34}}}\n\n')  # fmt: skip
    assert relay.usage is not None and (relay.usage.input_tokens, relay.usage.output_tokens) == (
        12,
        34,
    )
    gp = GeminiPassthrough(unwrap=True)
    gp(
        b'data: {"response":{"candidates":[{"content":{"parts":[{"text":"hi"}]},'
        b'"finishReason":"STOP"}],'
        b'"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1}}}\n\n'
    )
    assert gp.usage is not None and (gp.usage.input_tokens, gp.usage.output_tokens) == (5, 1)


def test_request_log_prune_keeps_the_newest_within_both_caps(tmp_path: Path) -> None:
    import os

    from cliproxy.addons.reqlog import prune

    for i in range(8):
        f = tmp_path / f"{i:02d}.json"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1000 + i, 1000 + i))
    (tmp_path / "keep.txt").write_text("not a log")
    prune(tmp_path, max_files=5, max_bytes=10_000)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{i:02d}.json" for i in range(3, 8)]
    prune(tmp_path, max_files=500, max_bytes=250)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["06.json", "07.json"]
    assert (tmp_path / "keep.txt").exists()


def test_mask_keeps_only_the_last_four_characters_and_is_idempotent() -> None:
    from cliproxy.addons.masking import mask
    from cliproxy.addons.masking import mask_request
    from mitmproxy.test import tutils

    assert mask("Bearer ya29.a0AfH6SMBlongtoken1234") == "Bearer …1234"
    assert mask(mask("Bearer ya29.a0AfH6SMBlongtoken1234")) == "Bearer …1234"
    assert mask("AIzaSyD-short") == "…hort"
    assert mask("tiny") == "…"
    req = tutils.treq(path=b"/v1beta/models/m:generateContent?key=AIzaSyVeryLongKey9876")
    req.headers["x-goog-api-key"] = "AIzaSyVeryLongKey9876"
    req.headers["chatgpt-account-id"] = "acc-0123456789abcdef"
    mask_request(req)
    assert req.query["key"] == "…9876" and req.headers["x-goog-api-key"] == "…9876"
    assert req.headers["chatgpt-account-id"] == "…cdef"


def test_gemini_login_asks_for_a_project_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from cliproxy.cli import login_gemini
    from cliproxy.cli.code_assist_setup import ProjectRequired

    err = ProjectRequired("this account needs a project: pass --project-id", ["proj-a"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "  my-proj-123 ")
    assert login_gemini.ask_project(err) == "my-proj-123"
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert login_gemini.ask_project(err) is None
