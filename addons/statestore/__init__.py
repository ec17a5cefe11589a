"""The state shared by several replicas (docs/replicas.md): `state-store` in config.yaml.

`open_store("")` is None and imports nothing; only a `redis://` URL imports the Redis client
(`redis.asyncio`), so a single replica pays no import cost for a feature it does not use.
"""

from __future__ import annotations

from cliproxy.addons.statestore.base import Rest
from cliproxy.addons.statestore.base import StateStore
from cliproxy.addons.statestore.base import UsageRow
from cliproxy.addons.statestore.url import StoreURL
from cliproxy.addons.statestore.url import parse_store_url

__all__ = ["Rest", "StateStore", "StoreURL", "UsageRow", "open_store", "parse_store_url"]


def open_store(url: str) -> StateStore | None:
    """The store named by `state-store`, or None for "" (in-process state). No I/O here: the
    connection is made on first use, inside the event loop."""
    if not url:
        return None
    from cliproxy.addons.statestore.redis_store import RedisStore  # lazy: imports redis

    return RedisStore(parse_store_url(url))
