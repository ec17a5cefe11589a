"""Schema cleaner and function-name sanitiser (docs/upstreams.md "Tool schemas", "Pitfalls")."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from cliproxy.translators.schema import ALLOWED_KEYS
from cliproxy.translators.schema import clean_for_gemini
from cliproxy.translators.schema import sanitize_function_name
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

# Claude Code's Read tool, as sent in /v1/messages (zod -> JSON Schema draft 2020-12).
CLAUDE_READ = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "file_path": {"description": "The absolute path to the file to read", "type": "string"},
        "offset": {
            "description": "The line number to start reading from",
            "type": "integer",
            "exclusiveMinimum": 0,
            "maximum": 9007199254740991,
        },
        "limit": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["file_path"],
    "additionalProperties": False,
}

# An MCP / pydantic style schema with $defs, Optional[...] and a recursive model.
PYDANTIC = {
    "$defs": {
        "Node": {
            "title": "Node",
            "type": "object",
            "properties": {
                "name": {"title": "Name", "type": "string"},
                "children": {
                    "title": "Children",
                    "type": "array",
                    "items": {"$ref": "#/$defs/Node"},
                },
            },
            "required": ["name"],
        },
        "Color": {"enum": ["red", "green", 3, None], "title": "Color"},
    },
    "title": "Args",
    "type": "object",
    "properties": {
        "root": {"$ref": "#/$defs/Node"},
        "color": {"anyOf": [{"$ref": "#/$defs/Color"}, {"type": "null"}], "default": None},
        "when": {"type": ["string", "null"], "format": "date-time"},
        "url": {"type": "string", "format": "uri"},
        "count": {"type": "integer", "format": "int32", "minimum": 0},
        "mode": {"const": "fast"},
        "flag": {"const": True},
    },
    "required": ["root", "missing"],
}


def test_claude_code_read_tool() -> None:
    original = copy.deepcopy(CLAUDE_READ)
    assert clean_for_gemini(CLAUDE_READ) == {
        "type": "object",
        "properties": {
            "file_path": {"description": "The absolute path to the file to read", "type": "string"},
            "offset": {
                "description": "The line number to start reading from",
                "type": "integer",
                "maximum": 9007199254740991,
            },
            "limit": {"type": "number"},
        },
        "required": ["file_path"],
    }
    assert original == CLAUDE_READ  # input untouched


def test_pydantic_defs_refs_nullable_const() -> None:
    original = copy.deepcopy(PYDANTIC)
    out = clean_for_gemini(PYDANTIC)
    assert original == PYDANTIC
    assert out == {
        "title": "Args",
        "type": "object",
        "properties": {
            "root": {
                "title": "Node",
                "type": "object",
                "properties": {
                    "name": {"title": "Name", "type": "string"},
                    "children": {
                        "title": "Children",
                        "type": "array",
                        "items": {"type": "object"},  # the recursive $ref is cut
                    },
                },
                "required": ["name"],
            },
            "color": {
                "nullable": True,
                "default": None,
                "title": "Color",
                "enum": ["red", "green", "3"],
                "type": "string",
            },
            "when": {"nullable": True, "type": "string", "format": "date-time"},
            "url": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "mode": {"enum": ["fast"], "type": "string"},
            "flag": {"enum": ["true"], "type": "string"},
        },
        "required": ["root"],
    }


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, {"type": "object", "properties": {}}),
        ("junk", {"type": "object", "properties": {}}),
        ([1, 2], {"type": "object", "properties": {}}),
        ({}, {}),
        ({"type": "object"}, {"type": "object"}),
        ({"type": "OBJECT", "properties": {}}, {"type": "object", "properties": {}}),
        ({"type": "STRING", "enum": ["a"]}, {"type": "string", "enum": ["a"]}),
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"type": ["null"]}, {"nullable": True}),
        ({"type": "null"}, {"type": "null"}),
        ({"type": "wat"}, {}),
        # type arrays with several types become anyOf, each branch with its own keys
        (
            {
                "type": ["string", "integer", "null"],
                "minLength": 2,
                "minimum": 1,
                "description": "d",
            },
            {
                "nullable": True,
                "description": "d",
                "anyOf": [{"type": "string", "minLength": 2}, {"type": "integer", "minimum": 1}],
            },
        ),
        # oneOf -> anyOf, a null branch -> nullable, a single branch is merged
        (
            {"oneOf": [{"type": "string"}, {"type": "number"}]},
            {"anyOf": [{"type": "string"}, {"type": "number"}]},
        ),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"nullable": True, "type": "integer"}),
        # allOf merges properties and required
        (
            {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "integer"}}, "required": ["b", "zz"]},
                ]
            },
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        ),
        # enum values become strings, the type follows
        ({"type": "integer", "enum": [1, 2, 2]}, {"type": "string", "enum": ["1", "2"]}),
        ({"enum": "notalist"}, {}),
        # keys outside the whitelist are dropped
        (
            {
                "type": "string",
                "$id": "x",
                "$comment": "c",
                "deprecated": True,
                "examples": ["a"],
                "readOnly": True,
                "writeOnly": True,
                "contentEncoding": "base64",
                "if": {},
                "then": {},
                "not": {},
                "exclusiveMaximum": 5,
                "example": "e",
                "pattern": "^a",
                "maxLength": 9,
            },
            {"type": "string", "example": "e", "pattern": "^a", "maxLength": 9},
        ),
        # object keys and array keys
        (
            {
                "type": "object",
                "properties": {"x": True, "y": {"type": "array", "items": [{"type": "string"}]}},
                "patternProperties": {"^a": {}},
                "propertyNames": {"pattern": "a"},
                "minProperties": 1,
                "maxProperties": -3,
                "propertyOrdering": ["y", "nope", "x"],
                "required": "x",
            },
            {
                "type": "object",
                "properties": {"x": {}, "y": {"type": "array", "items": {"type": "string"}}},
                "minProperties": 1,
                "propertyOrdering": ["y", "x"],
            },
        ),
        (
            {
                "type": "array",
                "prefixItems": [{"type": "number"}],
                "minItems": 1,
                "uniqueItems": True,
            },
            {"type": "array", "items": {"type": "number"}, "minItems": 1},
        ),
        # inferred types
        (
            {"properties": {"a": {"type": "boolean"}}},
            {"type": "object", "properties": {"a": {"type": "boolean"}}},
        ),
        ({"items": {"type": "string"}}, {"type": "array", "items": {"type": "string"}}),
        # $ref with siblings: the siblings win
        (
            {
                "$defs": {"S": {"type": "string", "description": "inner"}},
                "$ref": "#/$defs/S",
                "description": "outer",
            },
            {"type": "string", "description": "outer"},
        ),
        (
            {
                "definitions": {"S": {"type": "string"}},
                "properties": {"s": {"$ref": "#/definitions/S"}},
            },
            {"type": "object", "properties": {"s": {"type": "string"}}},
        ),
        # dangling and remote refs
        ({"$ref": "#/$defs/Nope"}, {"type": "object"}),
        ({"$ref": "https://example.com/schema.json"}, {"type": "object"}),
        # recursion via the root
        (
            {"type": "object", "properties": {"self": {"$ref": "#"}}},
            {
                "type": "object",
                "properties": {
                    "self": {"type": "object", "properties": {"self": {"type": "object"}}}
                },
            },
        ),
    ],
)
def test_clean_table(schema: Any, expected: dict[str, Any]) -> None:
    assert clean_for_gemini(schema) == expected


def test_deep_nesting_is_capped() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"a": schema}}
    out = clean_for_gemini(schema)
    depth = 0
    node = out
    while "properties" in node:
        node = node["properties"]["a"]
        depth += 1
    assert 30 <= depth <= 40
    assert node == {"type": "object"}


def test_ref_dag_blowup_is_bounded() -> None:
    # each level references the next one twice: 2**40 nodes if fully inlined
    defs = {
        f"L{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/L{i + 1}"}, "b": {"$ref": f"#/$defs/L{i + 1}"}},
        }
        for i in range(40)
    }
    defs["L40"] = {"type": "string"}
    out = clean_for_gemini({"$defs": defs, "$ref": "#/$defs/L0"})
    assert out["type"] == "object"
    assert len(repr(out)) < 2_000_000


def _assert_whitelisted(node: Any) -> None:
    assert isinstance(node, dict)
    assert set(node) <= ALLOWED_KEYS, set(node) - ALLOWED_KEYS
    if "type" in node:
        assert isinstance(node["type"], str)
    if "properties" in node:
        assert isinstance(node["properties"], dict)
        for sub in node["properties"].values():
            _assert_whitelisted(sub)
        for r in node.get("required", []):
            assert r in node["properties"]
    else:
        assert "required" not in node
    if "items" in node:
        _assert_whitelisted(node["items"])
    for sub in node.get("anyOf", []):
        _assert_whitelisted(sub)
    if "enum" in node:
        assert all(isinstance(v, str) for v in node["enum"])


_KEYS = st.sampled_from(
    [
        "type",
        "properties",
        "items",
        "required",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
        "enum",
        "const",
        "format",
        "nullable",
        "additionalProperties",
        "$schema",
        "description",
        "default",
        "minimum",
        "minItems",
        "prefixItems",
        "propertyOrdering",
        "not",
        "examples",
        "title",
        "pattern",
        "x",
    ]
)
_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "string",
            "object",
            "array",
            "null",
            "integer",
            "#",
            "#/$defs/a",
            "#/definitions/b",
            "a",
            "date-time",
        ]
    )
)
_JSON = st.recursive(
    _LEAF,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.sampled_from(["a", "b"]), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_clean_never_raises_and_is_whitelisted(schema: Any) -> None:
    before = copy.deepcopy(schema)
    out = clean_for_gemini(schema)
    _assert_whitelisted(out)
    assert schema == before or schema != schema  # not mutated (NaN-free by construction)


NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("read_file", "read_file"),
        ("mcp__github__create_issue", "mcp__github__create_issue"),
        ("ns.tool:v1-beta", "ns.tool:v1-beta"),
        ("mcp/server tool", "mcp_server_tool"),
        ("1tool", "_1tool"),
        ("-x", "_-x"),
        ("", "_"),
        ("héllo wörld", "h_llo_w_rld"),
        ("a" * 64, "a" * 64),
    ],
)
def test_sanitize_function_name(name: str, expected: str) -> None:
    assert sanitize_function_name(name) == expected


def test_sanitize_long_names_stay_distinct() -> None:
    a = sanitize_function_name("x" * 70 + "a")
    b = sanitize_function_name("x" * 70 + "b")
    assert a != b
    assert len(a) == len(b) == 64
    assert sanitize_function_name("x" * 70 + "a") == a  # deterministic


@given(st.text(max_size=100))
def test_sanitize_always_valid(name: str) -> None:
    out = sanitize_function_name(name)
    assert NAME_RE.fullmatch(out)
    assert sanitize_function_name(name) == out
    if NAME_RE.fullmatch(name):
        assert out == name
