"""Reading and atomically writing auth files (docs/configuration.md "Auth files").

A write never leaves a half-written file: the JSON goes to a temp file in the same directory
(mode 0600 from creation), is fsynced, then renamed over the old one. Callers pass the whole
original mapping back, so keys this project does not know survive a refresh.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any


class AuthFileError(Exception):
    """An auth file that cannot be used; str() says why (never includes a token)."""


MAX_AUTH_FILE = 1 << 20  # real auth files are a few KiB; a bigger one is not read at all
# Longest token lifetime believed from a token endpoint; `expires_in: 1e30` is not a reason
# to overflow (or to never refresh again).
MAX_LIFETIME = timedelta(days=3650)


def read_auth_file(path: Path) -> dict[str, Any]:
    """A regular file of at most MAX_AUTH_FILE bytes, as a JSON object. O_NONBLOCK: a FIFO
    swapped in after the check can still never block the caller (it would block opening)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise AuthFileError(f"cannot be read ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuthFileError("is not a regular file")
        if st.st_size > MAX_AUTH_FILE:
            raise AuthFileError(f"is larger than {MAX_AUTH_FILE} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_AUTH_FILE + 1)
    except OSError as e:
        raise AuthFileError(f"cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_AUTH_FILE:
        raise AuthFileError(f"is larger than {MAX_AUTH_FILE} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise AuthFileError("is not valid JSON") from None
    if not isinstance(data, dict):
        raise AuthFileError("is not a JSON object")
    return data


def write_auth_file(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (Go writes 9-digit fractions and offsets; Python ≥ 3.12 parses both) or epoch."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # ms epochs (gemini-cli expiry_date)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, ValueError, OSError):  # 99999999999999999999, NaN
            return None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def lifetime(expires_in: object) -> timedelta | None:
    """A token endpoint's `expires_in` as a bounded duration; None when unusable."""
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        return None
    if not math.isfinite(expires_in) or expires_in <= 0:
        return None
    return min(timedelta(seconds=min(expires_in, MAX_LIFETIME.total_seconds())), MAX_LIFETIME)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text(mapping: dict[str, Any], key: str) -> str:
    """`mapping[key]` when it is a string, else "" (auth files from other tools vary)."""
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def file_signature(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of `path`, or None when it is gone: a cheap way to notice edits."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
