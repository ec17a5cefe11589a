"""Client JSON Schemas -> the Schema subset Gemini function declarations accept; tool names.

Gemini's `parameters` is an OpenAPI-3.0-subset proto: any key outside the whitelist fails the
whole request with `400 Invalid JSON payload received. Unknown name "$schema"`
(docs/upstreams.md "Tool schemas", "Pitfalls"). Claude Code, MCP servers and pydantic
emit `$schema`, `$ref`/`$defs`, `additionalProperties`, type arrays, `const`, `oneOf`/`allOf`, … —
all rewritten or dropped here, in this one place.

The cleaner never raises and never mutates its input: recursion is bounded by depth, by a node
budget (a DAG of `$ref`s can otherwise blow up exponentially) and by `$ref` cycle detection.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# Keys the Gemini Schema proto knows (docs/upstreams.md "Tool schemas").
ALLOWED_KEYS: frozenset[str] = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "anyOf",
        "propertyOrdering",
    }
)

_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_STRING_FORMATS = frozenset({"enum", "date-time"})
_INT_KEYS = ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength")
_NUM_KEYS = ("minimum", "maximum")
# keys that belong to one type: distributed over the branches when a type array has several types
_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "object": ("properties", "required", "minProperties", "maxProperties", "propertyOrdering"),
    "array": ("items", "minItems", "maxItems"),
    "string": ("minLength", "maxLength", "pattern", "format", "enum"),
    "number": ("minimum", "maximum"),
    "integer": ("minimum", "maximum"),
}

MAX_DEPTH = 32  # nesting levels kept; deeper sub-schemas become {"type": "object"}
MAX_NODES = 5000  # schema nodes produced per call; beyond it sub-schemas become {"type": "object"}
_OPAQUE: dict[str, Any] = {"type": "object"}


class _Ctx:
    __slots__ = ("nodes", "root")

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.nodes = 0


def clean_for_gemini(schema: object) -> dict[str, Any]:
    """A new schema containing only keys Gemini accepts (see the module docstring)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    try:
        return _clean(schema, _Ctx(schema), 0, ())
    except RecursionError:  # pragma: no cover - bounded by MAX_DEPTH, kept as a last guard
        return {"type": "object", "properties": {}}


# ---------------------------------------------------------------- $ref / allOf


def _lookup(root: dict[str, Any], ref: str) -> Any:
    """Resolve a local JSON pointer (`#/$defs/X`, `#/definitions/X`, `#/properties/a/items`)."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for raw in ref[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def _deref(
    node: dict[str, Any], ctx: _Ctx, refs: tuple[str, ...]
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """Follow `$ref` chains; sibling keys of a `$ref` override the target's. Returns (None, …)
    for a cycle or a reference that cannot be resolved."""
    seen = refs
    while isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            return None, seen
        target = _lookup(ctx.root, ref)
        if not isinstance(target, dict):
            return None, seen
        seen = (*seen, ref)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings}
    return node, seen


def _merge_all_of(
    node: dict[str, Any], ctx: _Ctx, refs: tuple[str, ...], level: int = 0
) -> dict[str, Any]:
    """Fold `allOf` branches into the node: properties and required are unioned, other keys
    keep the first value seen (the node's own keys first)."""
    branches = node.get("allOf")
    merged = {k: v for k, v in node.items() if k != "allOf"}
    if not isinstance(branches, list):
        return merged
    props = dict(merged["properties"]) if isinstance(merged.get("properties"), dict) else {}
    required = list(merged["required"]) if isinstance(merged.get("required"), list) else []
    for branch in branches[:64]:
        if not isinstance(branch, dict):
            continue
        branch, _ = _deref(branch, ctx, refs)
        if branch is None:
            continue
        if "allOf" in branch and level < 8:
            branch = _merge_all_of(branch, ctx, refs, level + 1)
        for key, value in branch.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    props.setdefault(name, sub)
            elif key == "required" and isinstance(value, list):
                required.extend(r for r in value if r not in required)
            elif key != "allOf":
                merged.setdefault(key, value)
    if props:
        merged["properties"] = props
    if required:
        merged["required"] = required
    return merged


# ---------------------------------------------------------------- the cleaner


def _clean(node: dict[str, Any], ctx: _Ctx, depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
    ctx.nodes += 1
    if depth > MAX_DEPTH or ctx.nodes > MAX_NODES:
        return dict(_OPAQUE)
    resolved, refs = _deref(node, ctx, refs)
    if resolved is None:  # recursive or dangling $ref
        return dict(_OPAQUE)
    if "allOf" in resolved:
        resolved = _merge_all_of(resolved, ctx, refs)
    node = resolved

    out: dict[str, Any] = {}
    types, nullable = _types(node.get("type"))
    if nullable or node.get("nullable") is True:
        out["nullable"] = True
    for key in ("title", "description"):
        if isinstance(node.get(key), str):
            out[key] = node[key]
    for key in ("default", "example"):
        if key in node:
            out[key] = node[key]
    _object_keys(node, out, ctx, depth, refs)
    if "properties" in out and not types:
        types = ["object"]
    _array_keys(node, out, ctx, depth, refs)
    if "items" in out and not types:
        types = ["array"]
    enum = _enum(node)
    if enum is not None:
        values, enum_nullable = enum
        out["enum"] = values
        if enum_nullable:
            out["nullable"] = True
        types = ["string"]  # Gemini enums are string-only (google-genai converts int enums too)
    _scalar_keys(node, out, types)
    branches = _any_of(node, ctx, depth, refs)
    if branches is not None:
        _apply_any_of(out, branches)
    _apply_types(out, types)
    return out


def _object_keys(
    node: dict[str, Any], out: dict[str, Any], ctx: _Ctx, depth: int, refs: tuple[str, ...]
) -> None:
    props_in = node.get("properties")
    if not isinstance(props_in, dict):
        return
    props = {str(name): _sub(sub, ctx, depth, refs) for name, sub in props_in.items()}
    out["properties"] = props
    if isinstance(node.get("required"), list):
        names: list[str] = []
        for r in node["required"]:
            if isinstance(r, str) and r in props and r not in names:
                names.append(r)
        if names:
            out["required"] = names
    if isinstance(node.get("propertyOrdering"), list):
        order = [p for p in node["propertyOrdering"] if isinstance(p, str) and p in props]
        if order:
            out["propertyOrdering"] = order
    for key in ("minProperties", "maxProperties"):
        _copy_count(node, out, key)


def _array_keys(
    node: dict[str, Any], out: dict[str, Any], ctx: _Ctx, depth: int, refs: tuple[str, ...]
) -> None:
    items = node.get("items")
    if not isinstance(items, dict | list):
        items = node.get("prefixItems")
    if isinstance(items, list):  # tuple validation: the first item stands for all
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _sub(items, ctx, depth, refs)
    for key in ("minItems", "maxItems"):
        _copy_count(node, out, key)


def _scalar_keys(node: dict[str, Any], out: dict[str, Any], types: list[str]) -> None:
    for key in ("minLength", "maxLength"):
        _copy_count(node, out, key)
    for key in ("minimum", "maximum"):
        value = node.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
    if isinstance(node.get("pattern"), str):
        out["pattern"] = node["pattern"]
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _STRING_FORMATS and "string" in types:
        out["format"] = fmt


def _copy_count(node: dict[str, Any], out: dict[str, Any], key: str) -> None:
    value = node.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        out[key] = value


def _sub(node: object, ctx: _Ctx, depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(node, dict):
        return _clean(node, ctx, depth + 1, refs)
    return {}  # boolean schemas (`true`) and junk: "anything"


def _types(value: object) -> tuple[list[str], bool]:
    """The non-null types named by `type` (a string or an array) and whether null is allowed."""
    raw = value if isinstance(value, list) else [value]
    types: list[str] = []
    nullable = False
    for t in raw:
        if not isinstance(t, str):
            continue
        t = t.lower()
        if t == "null":
            nullable = True
        elif t in _TYPES and t not in types:
            types.append(t)
    if not types and nullable and not isinstance(value, list):
        return ["null"], False  # a bare {"type": "null"}: the proto has NULL
    return types, nullable


def _scalar_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _enum(node: dict[str, Any]) -> tuple[list[str], bool] | None:
    """(string values, whether null was among them) from `const` or `enum`."""
    if "const" in node:
        if node["const"] is None:
            return None
        return [_scalar_str(node["const"])], False
    values = node.get("enum")
    if not isinstance(values, list) or not values:
        return None
    out: list[str] = []
    has_null = False
    for v in values:
        if v is None:
            has_null = True  # null in an enum means "nullable", not the string "null"
            continue
        s = _scalar_str(v)
        if s not in out:
            out.append(s)
    return (out, has_null) if out else None


def _any_of(
    node: dict[str, Any], ctx: _Ctx, depth: int, refs: tuple[str, ...]
) -> list[dict[str, Any]] | None:
    raw: list[Any] = []
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            raw.extend(node[key])
    if not raw:
        return None
    return [_clean(b, ctx, depth + 1, refs) for b in raw[:64] if isinstance(b, dict)]


def _apply_any_of(out: dict[str, Any], branches: list[dict[str, Any]]) -> None:
    """`{"type":"null"}` branches become `nullable`; a single remaining branch is merged into
    the node (pydantic's Optional[X] shape); several stay as anyOf."""
    kept: list[dict[str, Any]] = []
    for b in branches:
        if b.get("type") == "null" and not (b.keys() - {"type", "title", "description"}):
            out["nullable"] = True
        else:
            kept.append(b)
    if len(kept) == 1:
        for key, value in kept[0].items():
            out.setdefault(key, value)
    elif kept:
        out["anyOf"] = kept


def _apply_types(out: dict[str, Any], types: list[str]) -> None:
    if len(types) == 1:
        out["type"] = types[0]  # the node's own type wins over a merged anyOf branch's
    elif len(types) > 1 and "anyOf" not in out:
        # ["string","number"]: one anyOf branch per type, each with the keys that belong to it
        branches: list[dict[str, Any]] = []
        for t in types:
            branch: dict[str, Any] = {"type": t}
            for key in _TYPE_KEYS.get(t, ()):
                if key in out:
                    branch[key] = out[key]
            branches.append(branch)
        for t in types:
            for key in _TYPE_KEYS.get(t, ()):
                out.pop(key, None)
        out.pop("type", None)
        out["anyOf"] = branches


# ---------------------------------------------------------------- function names

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.:\-]")
MAX_NAME = 64


def sanitize_function_name(name: str) -> str:
    """A valid Gemini function name for `name` (letters, digits, `_ . : -`, ≤ 64 chars, starting
    with a letter or `_`). Valid names are returned unchanged; the mapping is deterministic."""
    if not isinstance(name, str):
        name = str(name)
    out = _NAME_BAD.sub("_", name)
    if not out or not (out[0].isascii() and (out[0].isalpha() or out[0] == "_")):
        out = "_" + out
    if len(out) > MAX_NAME:
        # keep names that differ only at the end distinct
        digest = hashlib.sha1(name.encode("utf-8", "replace")).hexdigest()[:8]
        out = out[: MAX_NAME - 9] + "_" + digest
    return out
