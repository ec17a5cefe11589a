"""Usage history (`usage-db`): one row per finished client request, aggregated per account by
model by day for `GET /usage` and `cliproxy usage` (docs/configuration.md "Usage history").

Storage sits behind a small `UsageStore` protocol so that a shared store (Redis, for replicas)
can stand in for the SQLite file. The SQLite store writes from one thread of its own, in
batches, so a hook never waits on the disk (docs/mitmproxy.md "Async hooks"); the file is in WAL
mode so `cliproxy usage` can read while the proxy writes.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Protocol

logger = logging.getLogger(__name__)

WRITE_EVERY = 0.25  # seconds a row may wait to be written with others


@dataclass(frozen=True, slots=True)
class UsageRecord:
    time: float  # epoch seconds when the request finished
    account: str  # email (or the masked name of an AI Studio key), never a token
    model: str
    dialect: str
    upstream: str
    status: int
    input_tokens: int
    output_tokens: int

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.time, UTC).strftime("%Y-%m-%d")


class UsageStore(Protocol):
    """Where finished requests are counted. `record` must not block the event loop; `query` may
    block (callers run it in a thread)."""

    def record(self, rec: UsageRecord) -> None: ...
    def query(self, since: float | None) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    account TEXT NOT NULL,
    model TEXT NOT NULL,
    dialect TEXT NOT NULL,
    upstream TEXT NOT NULL,
    status INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
"""

INSERT_ROW = "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?)"
ROWS_PER_INSERT = 1000  # 9 parameters a row: well under SQLite's 32766 per statement

AGGREGATE = """
SELECT day, account, model, COUNT(*), SUM(status >= 400 OR status = 0),
       SUM(input_tokens), SUM(output_tokens)
FROM requests WHERE ts >= ?
GROUP BY day, account, model ORDER BY day, account, model
"""


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
    conn.executescript(SCHEMA)
    return conn


def aggregate(conn: sqlite3.Connection, since: float | None) -> list[dict[str, Any]]:
    rows = conn.execute(AGGREGATE, (since or 0.0,)).fetchall()
    return [
        {
            "day": day,
            "account": account,
            "model": model,
            "requests": requests,
            "errors": errors or 0,
            "input_tokens": inp or 0,
            "output_tokens": out or 0,
        }
        for day, account, model, requests, errors, inp, out in rows
    ]


class SQLiteUsageStore:
    """Rows wait in a list and a thread of its own writes them every WRITE_EVERY seconds, one
    transaction each time: the event loop only appends (no lock, no thread wake-up per request;
    a queue's wake-ups cost a quarter of a millisecond per request under load, measured with
    scripts/bench.py). A crash loses at most the last WRITE_EVERY seconds of history."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(path)  # creates file and schema now: a bad path fails at start-up
        self._pending: list[UsageRecord] = []
        self._lock = threading.Lock()  # one writer at a time on the one connection
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="cliproxy-usage", daemon=True)
        self._thread.start()

    def record(self, rec: UsageRecord) -> None:
        self._pending.append(rec)

    def flush(self) -> None:
        """Write every recorded row now (blocking: call it off the event loop)."""
        with self._lock:
            # swap first: a row appended meanwhile lands in either list, never in neither
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                with self._conn:
                    for start in range(0, len(batch), ROWS_PER_INSERT):
                        rows = batch[start : start + ROWS_PER_INSERT]
                        # one statement for many rows: sqlite3 lets go of the GIL around each
                        # step, and a step per row made the event loop's thread wait for it
                        # (executemany cost 0.08 ms per request under load, scripts/bench.py)
                        self._conn.execute(
                            INSERT_ROW + ",(?,?,?,?,?,?,?,?,?)" * (len(rows) - 1),
                            [
                                value
                                for r in rows
                                for value in (r.time, r.day, r.account, r.model, r.dialect,
                                              r.upstream, r.status, r.input_tokens,
                                              r.output_tokens)
                            ],
                        )  # fmt: skip
            except sqlite3.Error as e:
                logger.warning("usage-db %s: %d row(s) lost: %s", self.path, len(batch), e)

    def query(self, since: float | None) -> list[dict[str, Any]]:
        self.flush()  # a request that just finished is in the answer
        with self._lock:
            return aggregate(self._conn, since)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
        with self._lock:
            self._conn.close()

    def _writer(self) -> None:
        while not self._stop.wait(WRITE_EVERY):
            self.flush()


def query_file(path: Path, since: float | None) -> list[dict[str, Any]]:
    """Read a usage-db without a running proxy (`cliproxy usage`)."""
    if not path.exists():
        return []
    conn = connect(path)
    try:
        return aggregate(conn, since)
    finally:
        conn.close()


_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """`7d`, `12h`, `30m`, `2w` or a date `2026-12-01` (UTC) → epoch seconds; None = all time.
    Raises ValueError with a message for anything else."""
    if text is None or not text.strip():
        return None
    now = time.time() if now is None else now
    match = _SINCE.match(text)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"since={text!r}: use a duration like 7d, 12h, 30m, 2w or a date like 2026-12-01"
        ) from None
    return day.timestamp()


def usage_db_path(setting: str, config_path: Path | None) -> Path | None:
    """`usage-db` as a path: relative to the config file's folder; "" = no history."""
    if not setting:
        return None
    path = Path(setting).expanduser()
    if path.is_absolute():
        return path
    base = config_path.parent if config_path is not None else Path.cwd()
    return base / path
