"""The access log, /metrics, /usage and `cliproxy usage` through a real mitmdump
(docs/configuration.md "Observability")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.google import FakeGoogle
from tests.fakes.google import rate_limited
from tests.integration.conftest import PROJECT
from tests.integration.conftest import PROJECT_B
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import two_accounts

CLIPROXY = str(Path(sys.executable).parent / "cliproxy")
SECRETS = ("ya29.valid-a", "ya29.valid-b", "1//refresh-a", "1//refresh-b", "k-secret-key-42")


@pytest.fixture(scope="module", autouse=True)
def _second_account(fake: FakeGoogle) -> Iterator[None]:
    fake.add_account("ya29.valid-b", "1//refresh-b", PROJECT_B, email="b@example.com")
    yield


@pytest.fixture(autouse=True)
def _no_queued_replies(fake: FakeGoogle) -> None:
    for credential in (PROJECT, PROJECT_B):
        fake.clear_for(credential)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_access_log_metrics_and_usage(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    proxy = proxy_factory(config={"api-keys": ["k-secret-key-42"]}, auth_files=two_accounts())
    key = {"authorization": "Bearer k-secret-key-42"}
    client = openai.OpenAI(
        base_url=proxy.base_url + "/v1", api_key="k-secret-key-42", max_retries=0
    )
    msg = [{"role": "user", "content": "count my tokens please"}]
    resp = client.chat.completions.create(model="gemini-2.5-flash", messages=msg)
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    # a streamed answer, after a 429 on the first account: failover, logged with the account
    fake.enqueue(rate_limited("2s", "RATE_LIMIT_EXCEEDED", "gemini-2.5-flash"))
    chunks = list(
        client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=msg,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # a plain stream on one attempt (the resting account is skipped)
    streamed = list(
        client.chat.completions.create(model="gemini-2.5-flash", messages=msg, stream=True)
    )
    assert streamed
    # unauthorised: /metrics and /usage follow the API's access rule
    assert httpx.get(proxy.base_url + "/metrics").status_code == 401
    assert httpx.get(proxy.base_url + "/usage").status_code == 401
    assert httpx.get(proxy.base_url + "/usage?since=soon", headers=key).status_code == 400

    metrics_reply = httpx.get(proxy.base_url + "/metrics", headers=key)
    assert metrics_reply.status_code == 200
    assert metrics_reply.headers["content-type"].startswith("text/plain")
    m = samples(metrics_reply.text)
    ok = {"dialect": "openai-chat", "upstream": "code_assist", "model": "gemini-2.5-flash"}
    assert value(m, "cliproxy_requests_total", **ok, status="200") == 3
    assert value(m, "cliproxy_requests_total", dialect="-", upstream="local", model="",
                 status="401") == 2  # fmt: skip
    attempts_429 = sum(
        v for (name, labels), v in m.items()
        if name == "cliproxy_upstream_attempts_total" and ("status", "429") in labels
    )  # fmt: skip
    assert attempts_429 == 1
    tokens_in = sum(
        v for (name, labels), v in m.items()
        if name == "cliproxy_tokens_total" and ("direction", "input") in labels
    )  # fmt: skip
    assert tokens_in >= 3 * resp.usage.prompt_tokens
    hist = {"dialect": "openai-chat", "upstream": "code_assist"}
    assert value(m, "cliproxy_request_duration_seconds_count", **hist) == 3
    assert value(m, "cliproxy_time_to_first_byte_seconds_count", **hist) == 3
    resting = [(labels, v) for (name, labels), v in m.items() if name == "cliproxy_account_resting"]
    assert len(resting) == 1 and resting[0][1] == 1.0
    assert ("model", "gemini-2.5-flash") in resting[0][0]
    assert all("ya29" not in line for line in metrics_reply.text.splitlines())

    usage = httpx.get(proxy.base_url + "/usage?since=7d", headers=key).json()["usage"]
    assert sum(r["requests"] for r in usage) == 3
    assert {r["account"] for r in usage} <= {"a@example.com", "b@example.com"}
    assert sum(r["input_tokens"] for r in usage) == tokens_in
    assert all(r["model"] == "gemini-2.5-flash" and r["errors"] == 0 for r in usage)

    log = proxy.log()
    lines = [line for line in log.splitlines() if "POST /v1/chat/completions" in line]
    assert len([line for line in lines if "status=200" in line]) == 3, log
    first = next(line for line in lines if "status=200" in line)
    assert "openai-chat → code_assist" in first and "model=gemini-2.5-flash" in first
    assert "account=" in first and "@example.com" in first and "attempts=1" in first
    assert any("attempts=2" in line for line in lines), log
    assert "127.0.0.1 GET /metrics" in log and "status=401" in log
    refused = [line for line in log.splitlines() if "refused attempt 1/2" in line]
    assert refused and "status=429" in refused[0] and "@example.com" in refused[0], log
    for secret in SECRETS:
        assert secret not in log

    # the history survives a restart and is read by `cliproxy usage` without the proxy
    proxy.stop()
    env = {**os.environ, "CLIPROXY_CONFIG": ""}
    out = subprocess.run(
        [CLIPROXY, "usage", "--since", "1d", "--json", "--config", str(proxy.config_path)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["usage"] == usage
    table = subprocess.run(
        [CLIPROXY, "usage", "--config", str(proxy.config_path)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "gemini-2.5-flash" in table
    assert all(r["account"] in table for r in usage) and "total: requests 3" in table
    assert (proxy.config_path.parent / "usage.sqlite").exists()


def test_usage_db_off_and_hot_reload(proxy_factory: Callable[..., Proxy]) -> None:
    proxy = proxy_factory(config={"usage-db": ""}, auth_files=two_accounts())
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0)
    client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "a"}]
    )
    assert httpx.get(proxy.base_url + "/usage").json() == {"usage": []}
    assert not (proxy.config_path.parent / "usage.sqlite").exists()
    # hot reload turns it on (an absolute path this time); the proxy keeps serving
    db = proxy.config_path.parent / "history" / "u.db"
    cfg = proxy.config_path.read_text().replace("usage-db: ''", f"usage-db: {db}")
    proxy.config_path.write_text(cfg)
    wait_for(lambda: "config reloaded" in proxy.log())
    client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "b"}]
    )
    rows = httpx.get(proxy.base_url + "/usage").json()["usage"]
    assert [r["requests"] for r in rows] == [1] and db.exists()


def test_token_refreshes_are_counted(proxy_factory: Callable[..., Proxy]) -> None:
    near_expiry = {
        "gemini-a.json": gemini_auth(
            "a@example.com", PROJECT, "ya29.stale-a", "1//refresh-a", timedelta(minutes=1)
        )
    }
    proxy = proxy_factory(auth_files=near_expiry)
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0)
    client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "a"}]
    )
    m = samples(httpx.get(proxy.base_url + "/metrics").text)
    assert value(m, "cliproxy_token_refreshes_total", provider="gemini", result="ok") == 1
    assert value(m, "cliproxy_token_refreshes_total", provider="gemini", result="permanent") == 0


def test_request_log_files_are_private_summarised_and_keep_stream_bodies(
    proxy_factory: Callable[..., Proxy],
) -> None:
    proxy = proxy_factory(auth_files=two_accounts(), config={"request-log": True})
    logs = proxy.config_path.parent / "logs"
    wait_for(lambda: logs.is_dir())  # wait_ready's /healthz is logged too
    logs.chmod(0o755)  # an existing, too-open folder is tightened
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "stream me"}],
            stream=True,
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def chat() -> list[Path]:
        return [p for p in logs.glob("*.json") if "/v1/chat/completions" in p.read_text()]

    wait_for(lambda: bool(chat()))
    (path,) = chat()
    assert (logs.stat().st_mode & 0o777) == 0o700
    assert (path.stat().st_mode & 0o777) == 0o600
    entry = json.loads(path.read_text())
    summary = entry["summary"]
    assert summary["account"] in ("a@example.com", "b@example.com")
    assert summary["model"] == "gemini-2.5-flash" and summary["status"] == 200
    assert summary["duration_ms"] >= 0 and summary["input_tokens"] > 0
    assert summary["attempts"] == [
        {"upstream": "code_assist", "account": summary["account"], "status": 200}
    ]
    body = entry["client_response"]["body"]
    assert isinstance(body, str) and "data: " in body and "[DONE]" in body
    assert text and all(word in body for word in text.split())
