"""translators/fields.py: one set of field checks, one message style, for every dialect."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cliproxy.translators import anthropic
from cliproxy.translators import fields
from cliproxy.translators import gemini
from cliproxy.translators import ir
from cliproxy.translators import openai_chat

HI = [{"role": "user", "content": "hi"}]


def refusal(check: Callable[[], object]) -> tuple[str, str | None]:
    with pytest.raises(ir.RequestError) as exc:
        check()
    return exc.value.message, exc.value.param


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: fields.number("1", "a.b"), "a.b must be a number"),
        (lambda: fields.number(True, "a.b"), "a.b must be a number"),
        (lambda: fields.number(10**400, "a.b"), "a.b must be a finite number"),
        (lambda: fields.integer(1.5, "a.b"), "a.b must be an integer"),
        (lambda: fields.integer(2.0, "a.b"), "a.b must be an integer"),
        (lambda: fields.integer(False, "a.b"), "a.b must be an integer"),
        (lambda: fields.integer(0, "a.b", 1), "a.b must be at least 1"),
        (lambda: fields.integer(2.5, "a.b", whole_floats=True), "a.b must be an integer"),
        (lambda: fields.boolean("true", "a.b"), "a.b must be a boolean"),
        (lambda: fields.string(None, "a.b"), "a.b must be a string"),
        (lambda: fields.optional_string(3, "a.b"), "a.b must be a string"),
    ],
)
def test_refusals_name_the_field(check: Callable[[], object], message: str) -> None:
    assert refusal(check) == (message, "a.b")


def test_accepted_values() -> None:
    assert fields.number(None, "x") is None
    assert fields.number(2, "x") == 2.0
    assert fields.integer(None, "x") is None
    assert fields.integer(3, "x", 3) == 3
    assert fields.integer(3.0, "x", whole_floats=True) == 3
    assert fields.boolean(None, "x") is None
    assert fields.boolean(False, "x") is False
    assert fields.string("", "x") == ""
    assert fields.optional_string(None, "x") is None
    assert (fields.is_int(1), fields.is_int(True), fields.is_int(1.0)) == (True, False, False)
    assert (fields.is_number(1.5), fields.is_number(False)) == (True, False)


def test_every_dialect_words_a_bad_field_the_same_way() -> None:
    assert refusal(
        lambda: anthropic.parse_request(
            {"model": "m", "max_tokens": 5, "messages": HI, "top_k": "3"}
        )
    ) == ("top_k must be an integer", "top_k")
    assert refusal(
        lambda: openai_chat.parse_request({"model": "m", "messages": HI, "seed": "3"})
    ) == ("seed must be an integer", "seed")
    assert refusal(
        lambda: gemini.parse_request(
            {"contents": "hi", "generationConfig": {"topK": "3"}}, "gemini-2.5-pro"
        )
    ) == ("generationConfig.topK must be an integer", "generationConfig.topK")
    assert refusal(
        lambda: anthropic.parse_request(
            {"model": "m", "max_tokens": 5, "messages": HI, "top_p": "x"}
        )
    ) == ("top_p must be a number", "top_p")
