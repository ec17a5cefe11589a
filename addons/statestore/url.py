"""`state-store` URLs: a redis-py URL plus our own `prefix` query parameter.

docs/configuration.md "Keys" names one key, `state-store`; the key prefix (default `cliproxy:`,
docs/replicas.md) rides in the URL as `?prefix=team-a:` rather than as a second config key.
redis-py would refuse the unknown parameter, so it is taken out here; every other parameter goes to
redis-py unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

DEFAULT_PREFIX = "cliproxy:"


@dataclass(frozen=True, slots=True)
class StoreURL:
    redis_url: str  # what redis-py's from_url gets
    prefix: str  # every key starts with it
    display: str  # for log lines: no password

    def __str__(self) -> str:
        return self.display


def parse_store_url(url: str) -> StoreURL:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    kept = []
    for name, value in query:
        if name == "prefix":
            prefix = value
        else:
            kept.append((name, value))
    redis_url = urlunsplit(parts._replace(query=urlencode(kept)))
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = "***@" + netloc  # a Redis password never reaches a log line
    display = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return StoreURL(redis_url, prefix, display)
