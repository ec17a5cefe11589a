"""`cliproxy usage [--since 7d] [--json]`: the usage history of `usage-db`, per account, model
and day, read straight from the SQLite file (the proxy need not run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cliproxy.addons.settings import Settings
from cliproxy.addons.usage import parse_since
from cliproxy.addons.usage import query_file
from cliproxy.addons.usage import usage_db_path

COLUMNS = ("day", "account", "model", "requests", "errors", "input_tokens", "output_tokens")


def table(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [[str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    numeric = {3, 4, 5, 6}
    lines = [
        "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(
            zip(row, widths, strict=True)
        )).rstrip()
        for row in cells
    ]  # fmt: skip
    totals = [sum(int(r[c]) for r in rows) for c in COLUMNS[3:]]
    lines.append(
        "total: " + ", ".join(f"{c} {t}" for c, t in zip(COLUMNS[3:], totals, strict=True))
    )
    return "\n".join(lines)


def run(settings: Settings, config: Path, since: str | None, as_json: bool) -> int:
    path = usage_db_path(settings.usage_db, config)
    if path is None:
        print(f"cliproxy usage: usage-db is off in {config}", file=sys.stderr)
        return 1
    try:
        start = parse_since(since)
    except ValueError as e:
        print(f"cliproxy usage: {e}", file=sys.stderr)
        return 2
    rows = query_file(path, start)
    if as_json:
        print(json.dumps({"usage": rows}, indent=2))
    elif not rows:
        print(f"no usage recorded in {path}" + (f" since {since}" if since else ""))
    else:
        print(table(rows))
    return 0
