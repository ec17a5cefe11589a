"""`GET /metrics`: Prometheus counters and histograms of one proxy process (docs/configuration.md
"Observability").

The official `prometheus_client` library renders the exposition; each `Metrics` has its own
CollectorRegistry, so a script reload (a new chain) starts clean instead of colliding with the
global registry. Account labels are emails (or an AI Studio key's masked name), never tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator

from cliproxy.addons.accesslog import Outcome
from cliproxy.addons.accesslog import account_name
from cliproxy.addons.accounts.pool import AccountPool
from cliproxy.addons.statestore.base import Rest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds. Generations run from a fraction of a second to minutes; the first byte of a stream
# usually arrives within a few seconds.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


class RestingCollector(Collector):
    """cliproxy_account_resting{account,model}: read from the pool's cooldowns at scrape time,
    so it is right even when nothing else happened since the rest began or ended."""

    def __init__(self, pool: Callable[[], AccountPool | None]) -> None:
        self.pool = pool
        # the rests of every replica, read from the shared store just before a scrape
        # (docs/replicas.md): this gauge alone shows the cluster's state
        self.shared: list[Rest] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "cliproxy_account_resting",
            "1 while the account rests for the model after a refusal (quota, auth, errors)",
            labels=["account", "model"],
        )
        pool = self.pool()
        now = time.time()
        accounts = pool.accounts if pool is not None else []
        values: dict[tuple[str, str], float] = {}
        for account in accounts:
            for model in account.cooldowns:
                resting = account.cooling(model, now) > 0
                values[account_name(account), model] = 1.0 if resting else 0.0
        names = {account.name: account_name(account) for account in accounts}
        for rest in self.shared:
            if rest.until > now:
                values[names.get(rest.account, rest.account), rest.model] = 1.0
        for (account, model), value in sorted(values.items()):
            gauge.add_metric([account, model], value)
        yield gauge


class Metrics:
    def __init__(self, pool: Callable[[], AccountPool | None]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cliproxy_requests",
            "Client requests by dialect, upstream, model and HTTP status",
            ["dialect", "upstream", "model", "status"],
            registry=r,
        )
        self.attempts = Counter(
            "cliproxy_upstream_attempts",
            "Upstream calls (retries on other accounts included) by upstream status",
            ["upstream", "account", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "cliproxy_tokens",
            "Tokens as the upstream counted them",
            ["direction", "model", "account"],
            registry=r,
        )
        self.duration = Histogram(
            "cliproxy_request_duration_seconds",
            "Client request duration, until the last byte of the answer",
            ["dialect", "upstream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "cliproxy_time_to_first_byte_seconds",
            "Time until the first byte of the answer went to the client",
            ["dialect", "upstream"],
            buckets=TTFB_BUCKETS,
            registry=r,
        )
        self.refreshes = Counter(
            "cliproxy_token_refreshes",
            "OAuth token refreshes by provider and result (ok, transient, permanent)",
            ["provider", "result"],
            registry=r,
        )
        self.resting = RestingCollector(pool)
        r.register(self.resting)

    def observe(self, o: Outcome) -> None:
        self.requests.labels(o.dialect, o.upstream, o.model, str(o.status)).inc()
        self.duration.labels(o.dialect, o.upstream).observe(o.duration)
        if o.ttfb is not None:
            self.ttfb.labels(o.dialect, o.upstream).observe(o.ttfb)
        for attempt in o.attempts:
            name = account_name(attempt.account)
            self.attempts.labels(attempt.upstream, name, str(attempt.status)).inc()
        if o.input_tokens or o.output_tokens:
            self.tokens.labels("input", o.model, o.account).inc(o.input_tokens)
            self.tokens.labels("output", o.model, o.account).inc(o.output_tokens)

    def refreshed(self, provider: str, result: str) -> None:
        self.refreshes.labels(provider, result).inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
