"""translators/tokens.py: the local token estimate for upstreams without countTokens (Codex).

Clients such as Claude Code compact the conversation on this number, so everything the model
reads must count: system prompt, tool schemas, images, tool calls and results, thinking.
"""

from __future__ import annotations

import json

import pytest
from cliproxy.translators import ir
from cliproxy.translators.tokens import CHARS_PER_TOKEN
from cliproxy.translators.tokens import IMAGE_TOKENS
from cliproxy.translators.tokens import PER_MESSAGE_TOKENS
from cliproxy.translators.tokens import estimate_tokens
from hypothesis import given
from hypothesis import strategies as st

PNG = ir.ImagePart("image/png", data="iVBORw0KGgo=")
SHELL = ir.Tool(
    "shell",
    "Runs a shell command",
    {"type": "object", "properties": {"command": {"type": "string"}}},
)


def request(*messages: ir.Message, system: list[str] | None = None, tools=()) -> ir.Request:
    return ir.Request(
        model="gpt-5-codex", messages=list(messages), system=system or [], tools=list(tools)
    )


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message("user", list(parts))


def assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message("assistant", list(parts))


SHELL_CHARS = len("shell") + len("Runs a shell command") + len(json.dumps(SHELL.parameters))

CASES = [
    ("nothing at all", request(), 0),
    ("four characters are one token", request(user(ir.TextPart("abcd"))), 1 + 3),
    ("a partial token rounds up", request(user(ir.TextPart("abcde"))), 2 + 3),
    ("every message costs a little", request(user(), assistant(), user()), 3 * 3),
    ("the system prompt counts", request(system=["x" * 40]), 10),
    ("several system texts add up", request(system=["x" * 6, "y" * 6]), 3),
    ("tool schemas count", request(tools=[SHELL]), -(-SHELL_CHARS // 4)),
    ("an image is a flat cost", request(user(PNG)), IMAGE_TOKENS + 3),
    ("a remote image too", request(user(ir.ImagePart("image/jpeg", url="https://x/y.jpg"))), 261),
    ("two images", request(user(PNG, PNG)), 2 * IMAGE_TOKENS + 3),
    ("thinking text counts", request(assistant(ir.ThinkingPart("t" * 8, "sig"))), 2 + 3),
    (
        "a tool call counts its name and JSON arguments",
        request(assistant(ir.ToolCallPart("call_1", "shell", {"command": "ls"}))),
        -(-(len("shell") + len('{"command": "ls"}')) // 4) + 3,
    ),
    (
        "a tool result counts its text and images",
        request(
            user(
                ir.ToolResultPart("call_1", [ir.TextPart("12345678"), PNG], name="shell"),
            )
        ),
        2 + IMAGE_TOKENS + 3,
    ),
    (
        "characters of every source are pooled before rounding",
        request(user(ir.TextPart("ab")), system=["c"], tools=[ir.Tool("d")]),
        -(-(2 + 1 + 1 + len("{}")) // 4) + 3,
    ),
]


@pytest.mark.parametrize(("req", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_estimate_table(req: ir.Request, expected: int) -> None:
    assert estimate_tokens(req) == expected


def test_constants_are_the_documented_rule_of_thumb() -> None:
    assert (CHARS_PER_TOKEN, IMAGE_TOKENS, PER_MESSAGE_TOKENS) == (4, 258, 3)


def test_a_claude_code_sized_prompt_is_in_the_right_range() -> None:
    system = ["You are Claude Code. " * 500]  # ~10.5 k characters
    tools = [SHELL] * 20
    messages = [user(ir.TextPart("fix the bug in main.py " * 10)) for _ in range(10)]
    n = estimate_tokens(request(*messages, system=system, tools=tools))
    chars = len(system[0]) + 20 * SHELL_CHARS + 10 * len("fix the bug in main.py " * 10)
    assert n == -(-chars // 4) + 10 * 3


def test_each_kind_of_content_raises_the_estimate() -> None:
    base = estimate_tokens(request(user(ir.TextPart("hello"))))
    assert estimate_tokens(request(user(ir.TextPart("hello")), system=["ssss"])) == base + 1
    assert estimate_tokens(request(user(ir.TextPart("hello"), PNG))) == base + IMAGE_TOKENS
    with_tool = estimate_tokens(request(user(ir.TextPart("hello")), tools=[SHELL]))
    assert with_tool == -(-(5 + SHELL_CHARS) // 4) + 3


_text = st.text(max_size=50)
_leaf = st.one_of(
    _text.map(ir.TextPart),
    st.just(PNG),
    st.builds(ir.ThinkingPart, _text),
    st.builds(
        ir.ToolCallPart,
        _text,
        _text,
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    ),
)
_part = st.one_of(
    _leaf,
    st.builds(ir.ToolResultPart, _text, st.lists(st.one_of(_text.map(ir.TextPart), st.just(PNG)))),
)


@given(
    messages=st.lists(
        st.builds(ir.Message, st.sampled_from(["user", "assistant", "system"]), st.lists(_part)),
        max_size=5,
    ),
    system=st.lists(_text, max_size=3),
)
def test_estimate_is_a_non_negative_int_bounded_by_the_content(
    messages: list[ir.Message], system: list[str]
) -> None:
    req = ir.Request(model="m", messages=messages, system=system)
    n = estimate_tokens(req)
    assert isinstance(n, int)
    assert n >= PER_MESSAGE_TOKENS * len(messages)
    # never more than one token per character plus the flat costs
    text = json.dumps([repr(m) for m in messages]) + "".join(system)
    images = sum(repr(m).count("ImagePart(") for m in messages)
    assert n <= len(text) + images * IMAGE_TOKENS + PER_MESSAGE_TOKENS * len(messages) + 1
