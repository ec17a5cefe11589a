"""Several replicas as one (docs/replicas.md): real mitmdumps sharing one auth-dir and one real
redis-server (`state-store`), driven concurrently: global round robin, shared rests, one token
refresh per account across replicas (with refresh tokens that are single use), and a Redis that is
stopped and started again while requests keep being served."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakes.codex import FakeCodex
from tests.fakes.google import FakeGoogle
from tests.fakes.google import rate_limited
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.redis_server import redis_server  # noqa: F401  (fixture)
from tests.integration.conftest import PROJECT
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import start_proxy

MODEL = "gemini-2.5-flash"
PROJECTS = {"a": PROJECT, "b": "proj-bravo-222", "c": "proj-charlie-333"}


@pytest.fixture(scope="module", autouse=True)
def accounts(fake: FakeGoogle) -> None:
    fake.add_account("ya29.valid-b", "1//refresh-b", PROJECTS["b"], email="b@example.com")
    fake.add_account("ya29.valid-c", "1//refresh-c", PROJECTS["c"], email="c@example.com")


@pytest.fixture(autouse=True)
def _clear_credentials(fake: FakeGoogle) -> Iterator[None]:
    yield
    for project in PROJECTS.values():
        fake.clear_for(project)


def gemini_files(*names: str) -> dict[str, dict]:
    return {
        f"gemini-{n}.json": gemini_auth(
            f"{n}@example.com", PROJECTS[n], f"ya29.valid-{n}", f"1//refresh-{n}",
            timedelta(hours=1),
        )
        for n in names
    }  # fmt: skip


@pytest.fixture
def replicas(
    fake: FakeGoogle,
    codex: FakeCodex,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> Iterator[Callable[..., list[Proxy]]]:
    """`replicas(n, files)`: n mitmdumps with one auth-dir (holding `files`) and one Redis."""
    started: list[Proxy] = []

    def start(n: int, files: dict[str, dict]) -> list[Proxy]:
        auth_dir = tmp_path / "shared-auth"
        auth_dir.mkdir(mode=0o700)
        for name, content in files.items():
            (auth_dir / name).write_text(json.dumps(content))
            (auth_dir / name).chmod(0o600)
        config = {"auth-dir": str(auth_dir), "state-store": redis_server.url}
        for i in range(n):
            started.append(start_proxy(tmp_path / f"r{i}", fake, codex=codex, config=config))
        return started

    yield start
    for p in started:
        p.stop()


def chat(proxy: Proxy, model: str = MODEL, text: str = "hi") -> httpx.Response:
    return httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def drive(proxies: list[Proxy], n: int, model: str = MODEL) -> list[httpx.Response]:
    """n requests at once, spread evenly over the replicas."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: chat(proxies[i % len(proxies)], model), range(n)))


def served(fake: FakeGoogle) -> Counter[str | None]:
    return Counter(r.credential for r in fake.calls("generateContent") if r.status == 200)


def test_round_robin_is_global(replicas: Callable[..., list[Proxy]], fake: FakeGoogle) -> None:
    proxies = replicas(3, gemini_files("a", "b", "c"))
    answers = drive(proxies, 30)
    assert [r.status_code for r in answers] == [200] * 30
    # one cursor for all: exactly 10 each (per-replica cursors would give 12/9/9)
    assert served(fake) == {project: 10 for project in PROJECTS.values()}


def test_usage_totals_are_the_same_on_every_replica(
    replicas: Callable[..., list[Proxy]], fake: FakeGoogle
) -> None:
    proxies = replicas(3, gemini_files("a", "b"))
    # uneven load: 5, 2 and 0 requests on the three replicas
    answers = [chat(proxies[0]) for _ in range(5)] + [chat(proxies[1]) for _ in range(2)]
    assert [r.status_code for r in answers] == [200] * 7
    deadline = time.monotonic() + 10
    while True:  # the shared usage write runs in the background of each request
        views = [httpx.get(p.base_url + "/usage?since=1d").json()["usage"] for p in proxies]
        total = sum(row["requests"] for row in views[2])
        if total == 7 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert views[0] == views[1] == views[2], views
    assert total == 7
    by_account = {row["account"]: row["requests"] for row in views[2]}
    assert sum(by_account.values()) == 7 and len(by_account) == 2  # both accounts served
    assert all(row["input_tokens"] > 0 and row["output_tokens"] > 0 for row in views[2])


def test_a_rest_learned_on_one_replica_is_honoured_by_the_others(
    replicas: Callable[..., list[Proxy]], fake: FakeGoogle
) -> None:
    first, *others = replicas(3, gemini_files("a", "b"))
    fake.always_for(PROJECTS["a"], rate_limited("60s", "RATE_LIMIT_EXCEEDED", MODEL))
    # two turns of the global cursor on one replica: `a` is asked once and refuses
    assert [chat(first).status_code for _ in range(2)] == [200, 200]
    refused = [r for r in fake.calls("generateContent") if r.status == 429]
    assert [r.credential for r in refused] == [PROJECTS["a"]]
    # a replica that has served nothing yet shows the shared rest in its metrics
    metrics = httpx.get(others[1].base_url + "/metrics").text
    resting = [ln for ln in metrics.splitlines() if ln.startswith("cliproxy_account_resting{")]
    assert any("a@example.com" in ln and MODEL in ln and ln.endswith(" 1.0") for ln in resting), (
        resting
    )
    fake.reset()
    answers = drive(others, 12)
    assert [r.status_code for r in answers] == [200] * 12
    assert served(fake) == {PROJECTS["b"]: 12}
    assert [r for r in fake.calls("generateContent") if r.credential == PROJECTS["a"]] == []
    for proxy in others:  # and each shows the shared rest
        health = httpx.get(proxy.base_url + "/healthz").json()["accounts"]
        assert 50 < health["gemini-a.json"]["cooldowns"][MODEL]["seconds_left"] <= 60


def test_one_refresh_per_account_across_replicas(
    replicas: Callable[..., list[Proxy]], fake: FakeGoogle, codex: FakeCodex
) -> None:
    """8 concurrent requests per provider over 3 replicas, every token expired, refresh tokens
    single use on both fakes: exactly one refresh per account, and every request served."""
    fake.add_account("ya29.unused", "1//rotating-g", "proj-golf-777", email="g@example.com")
    expired_google = gemini_auth(
        "g@example.com", "proj-golf-777", "ya29.long-gone", "1//rotating-g", timedelta(minutes=-5)
    )
    tokens = codex.add_account("acct-rr-1", email="x@example.com", expires_in=60)
    fake.rotate_refresh_tokens, fake.token_delay, codex.token_delay = True, 0.5, 0.5
    try:
        proxies = replicas(3, {"gemini-g.json": expired_google, "codex-x.json": tokens.auth_file()})
        with ThreadPoolExecutor(16) as pool:
            jobs = [
                pool.submit(chat, proxies[i % 3], model)
                for i in range(8)
                for model in (MODEL, "gpt-5")
            ]
            answers = [j.result() for j in jobs]
    finally:
        fake.rotate_refresh_tokens, fake.token_delay, codex.token_delay = False, 0.0, 0.0
    assert [r.status_code for r in answers] == [200] * 16, [r.text for r in answers]
    assert len(fake.token_requests) == 1
    assert len(codex.token_requests) == 1
    auth_dir = proxies[0].config_path.parent.parent / "shared-auth"
    saved_google = json.loads((auth_dir / "gemini-g.json").read_text())
    saved_codex = json.loads((auth_dir / "codex-x.json").read_text())
    assert saved_google["token"]["refresh_token"].startswith("1//rotated-")
    assert saved_codex["refresh_token"] != tokens.refresh_token
    for proxy in proxies:
        assert "needs re-login" not in proxy.log() and "refresh failed" not in proxy.log()


def wait_for_log(proxy: Proxy, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in proxy.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{proxy.log()}"
        time.sleep(0.1)


def test_redis_stopped_and_started_mid_run(
    replicas: Callable[..., list[Proxy]],
    fake: FakeGoogle,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    proxies = replicas(2, gemini_files("a", "b"))
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:  # steady traffic on both replicas through the whole outage
        i = 0
        while not stop.is_set() and i < 2000:
            statuses.append(chat(proxies[i % 2]).status_code)
            i += 1

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.5)
        redis_server.stop()
        for proxy in proxies:
            wait_for_log(proxy, "unreachable")
        time.sleep(0.5)  # served with in-process state meanwhile
        redis_server.start()  # same port, every key gone (no persistence)
        for proxy in proxies:
            wait_for_log(proxy, "is back: shared state rejoined")
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert len(statuses) > 20 and set(statuses) == {200}
    for proxy in proxies:
        assert proxy.log().count("unreachable") == 1  # one line per outage, not per request
    # rejoined: a rest learned on one replica is honoured by the other again
    fake.reset()
    fake.always_for(PROJECTS["a"], rate_limited("60s", "RATE_LIMIT_EXCEEDED", MODEL))
    assert [chat(proxies[0]).status_code for _ in range(2)] == [200, 200]
    fake.reset()
    assert [chat(proxies[1]).status_code for _ in range(6)] == [200] * 6
    assert served(fake) == {PROJECTS["b"]: 6}
