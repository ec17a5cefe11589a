"""Is Redis reachable? One log line per outage, a background reconnect with backoff, and callbacks
when it is back.

While the link is down no request touches Redis at all (no connect timeout per request): the store
answers "nothing known" at once and the replica serves with its in-process state (docs/replicas.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable

logger = logging.getLogger(__name__)

BACKOFF_START = 0.25  # seconds before the first reconnect attempt
BACKOFF_CAP = 10.0  # a Redis back after a restart is noticed within this

Ping = Callable[[], Awaitable[object]]
Rejoin = Callable[[], Awaitable[None]]


class Link:
    def __init__(self, ping: Ping, name: str) -> None:
        self._ping = ping
        self._name = name
        self.up = True  # optimistic until the first failure: the first call finds out
        self._probe: asyncio.Task[None] | None = None
        self._rejoin: list[Rejoin] = []
        self.outages = 0  # how many times it went down (tests, /healthz)

    def on_rejoin(self, callback: Rejoin) -> None:
        self._rejoin.append(callback)

    def lost(self, error: BaseException) -> None:
        """A call failed: go down (logged once), probe in the background until Redis answers."""
        if not self.up:
            return
        self.up = False
        self.outages += 1
        logger.warning(
            "state-store %s unreachable (%s); serving with in-process state until it is back",
            self._name,
            type(error).__name__,
        )
        self._probe = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = BACKOFF_START
        while not self.up:
            await asyncio.sleep(delay)
            try:
                await self._ping()
            except Exception:  # any failure just means "not yet"
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            self.up = True
        logger.warning("state-store %s is back: shared state rejoined", self._name)
        for callback in self._rejoin:
            try:
                await callback()
            except Exception:  # a rejoin step must never take the proxy down
                logger.exception("state-store rejoin step failed")

    def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
