"""The account pool through a real mitmdump: round robin, quota failover, cooldowns, AI Studio
keys, refresh-on-401, and hot reload of config.yaml and auth-dir."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import anthropic
import httpx
import openai
import pytest
import yaml
from google import genai
from google.genai import errors
from google.genai import types

from tests.fakes.codex import FakeCodex
from tests.fakes.codex import UsageLimit
from tests.fakes.google import FakeGoogle
from tests.fakes.google import ai_studio_rate_limited
from tests.fakes.google import rate_limited
from tests.integration.conftest import PROJECT
from tests.integration.conftest import PROJECT_B
from tests.integration.conftest import Proxy
from tests.integration.conftest import gemini_auth
from tests.integration.conftest import two_accounts

KEY = "AIzaSy-test-key-0001"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module", autouse=True)
def second_account(fake: FakeGoogle) -> None:
    fake.add_account("ya29.valid-b", "1//refresh-b", PROJECT_B, email="b@example.com")
    fake.add_api_key(KEY)


@pytest.fixture(autouse=True)
def _clear_credentials(fake: FakeGoogle) -> Iterator[None]:
    yield
    for credential in (PROJECT, PROJECT_B, KEY):
        fake.clear_for(credential)


def oai(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="x", max_retries=0)


def served_by(fake: FakeGoogle, rpc: str = "generateContent") -> list[str | None]:
    return [r.credential for r in fake.calls(rpc) if r.status == 200]


def test_round_robin_alternates(proxy_factory: Callable[..., Proxy], fake: FakeGoogle) -> None:
    client = oai(proxy_factory(auth_files=two_accounts()))
    for _ in range(4):
        client.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    used = served_by(fake)
    assert sorted(used) == sorted([PROJECT, PROJECT_B] * 2)
    assert used[0] != used[1] and used[1] != used[2] and used[2] != used[3]


@pytest.mark.parametrize("stream", [False, True])
def test_quota_on_one_account_fails_over_and_rests_it(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle, stream: bool
) -> None:
    proxy = proxy_factory(auth_files=two_accounts())
    client = oai(proxy)
    # whichever account is asked first refuses with a 2 s RetryInfo; the other serves
    fake.enqueue(rate_limited("2s", "RATE_LIMIT_EXCEEDED", "gemini-2.5-flash"))
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="gemini-2.5-flash",
                messages=[{"role": "user", "content": "fail over"}],
                stream=True,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        resp = client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "fail over"}]
        )
        text = resp.choices[0].message.content or ""
    assert text == "Echo: fail over"
    rpc = "streamGenerateContent" if stream else "generateContent"
    refused = fake.calls(rpc)[0]
    assert refused.status == 429
    resting = refused.credential
    assert served_by(fake, rpc) == [PROJECT_B if resting == PROJECT else PROJECT]
    # the resting account is not asked again while its delay runs…
    for _ in range(3):
        client.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert resting not in served_by(fake)
    health = httpx.get(proxy.base_url + "/healthz").json()["accounts"]
    rest = next(a for a in health.values() if a["project"] == resting)
    assert 0 < rest["cooldowns"]["gemini-2.5-flash"]["seconds_left"] <= 2
    assert "429" in rest["last_error"]
    # …and serves again once it has passed
    time.sleep(2.2)
    for _ in range(2):
        client.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert resting in served_by(fake)[-2:]


def test_codex_usage_limit_fails_over(
    proxy_factory: Callable[..., Proxy], tmp_path_factory: pytest.TempPathFactory
) -> None:
    with FakeCodex() as codex:
        one = codex.add_account("acct-1", email="one@example.com")
        two = codex.add_account("acct-2", email="two@example.com")
        proxy = proxy_factory(
            codex=codex,
            auth_files={"codex-one.json": one.auth_file(), "codex-two.json": two.auth_file()},
        )
        codex.enqueue(UsageLimit(600, use_resets_at=True))
        resp = oai(proxy).chat.completions.create(model="gpt-5", messages=MSG)
        assert resp.choices[0].message.content == "Echo: hi"
        first, second = codex.responses_requests
        assert first.status == 429 and second.status == 200
        assert first.headers["chatgpt-account-id"] != second.headers["chatgpt-account-id"]
        for _ in range(2):
            oai(proxy).chat.completions.create(model="gpt-5", messages=MSG)
        later = {r.headers["chatgpt-account-id"] for r in codex.responses_requests[2:]}
        assert later == {second.headers["chatgpt-account-id"]}


def test_all_accounts_limited_is_429_with_retry_after_in_each_dialect(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    proxy = proxy_factory(auth_files=two_accounts())
    model = "gemini-3-pro-preview"  # no preview variants to fall back on
    fake.always_for(PROJECT, rate_limited("40s", "QUOTA_EXHAUSTED", model))
    fake.always_for(PROJECT_B, rate_limited("20s", "QUOTA_EXHAUSTED", model))
    with pytest.raises(openai.RateLimitError) as o:
        oai(proxy).chat.completions.create(model=model, messages=MSG)
    assert o.value.response.headers["retry-after"] in ("19", "20")
    assert model in o.value.message
    assert len(fake.calls("generateContent")) == 2  # each account asked once
    # now both rest: answered by the proxy without asking upstream
    a = anthropic.Anthropic(base_url=proxy.base_url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as an:
        a.messages.create(model=model, max_tokens=10, messages=MSG)
    assert an.value.response.headers["retry-after"] in ("19", "20")
    assert an.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    g = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=proxy.base_url))
    with pytest.raises(errors.ClientError) as ge:
        g.models.generate_content(model=model, contents="x")
    assert ge.value.code == 429 and ge.value.status == "RESOURCE_EXHAUSTED"
    assert len(fake.calls("generateContent")) == 2


def test_preview_fallback(proxy_factory: Callable[..., Proxy], fake: FakeGoogle) -> None:
    proxy = proxy_factory(auth_files=two_accounts())
    fake.enqueue(
        rate_limited("60s", "QUOTA_EXHAUSTED", "gemini-2.5-pro"),
        rate_limited("60s", "QUOTA_EXHAUSTED", "gemini-2.5-pro"),
    )
    resp = oai(proxy).chat.completions.create(model="gemini-2.5-pro", messages=MSG)
    assert resp.choices[0].message.content == "Echo: hi"
    models = [r.body["model"] for r in fake.calls("generateContent")]
    assert models == ["gemini-2.5-pro", "gemini-2.5-pro", "gemini-2.5-pro-preview-05-06"]


def test_preview_fallback_can_be_switched_off(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    proxy = proxy_factory(
        auth_files=two_accounts(), config={"quota-exceeded": {"switch-preview-model": False}}
    )
    fake.enqueue(rate_limited("60s"), rate_limited("60s"))
    with pytest.raises(openai.RateLimitError):
        oai(proxy).chat.completions.create(model="gemini-2.5-pro", messages=MSG)
    assert len(fake.calls("generateContent")) == 2


def test_switch_project_off_returns_the_first_429(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    proxy = proxy_factory(
        auth_files=two_accounts(), config={"quota-exceeded": {"switch-project": False}}
    )
    fake.enqueue(rate_limited("5s"))
    with pytest.raises(openai.RateLimitError):
        oai(proxy).chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert len(fake.calls("generateContent")) == 1


def test_ai_studio_key_path(proxy_factory: Callable[..., Proxy], fake: FakeGoogle) -> None:
    proxy = proxy_factory(
        config={
            "generative-language-api-key": [KEY],
            "endpoints": {
                "gemini-cli": fake.base_url,
                "google-token": fake.token_url,
                "ai-studio": fake.ai_studio_url,
            },
        }
    )
    client = oai(proxy)
    resp = client.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert resp.choices[0].message.content == "Echo: hi"
    (call,) = fake.calls("ai_studio:generateContent")
    assert call.headers["x-goog-api-key"] == KEY and "authorization" not in call.headers
    assert call.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert "project" not in call.body and "request" not in call.body  # no envelope
    chunks = list(
        client.chat.completions.create(model="gemini-2.5-flash", messages=MSG, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hi"
    g = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=proxy.base_url))
    assert g.models.generate_content(model="gemini-2.5-flash", contents="k").text == "Echo: k"
    streamed = list(g.models.generate_content_stream(model="gemini-2.5-flash", contents="a b"))
    assert "".join(c.text or "" for c in streamed) == "Echo: a b"
    counted = anthropic.Anthropic(base_url=proxy.base_url, api_key="x").messages.count_tokens(
        model="gemini-2.5-flash", system="system text", messages=MSG
    )
    assert counted.input_tokens > 0
    health = httpx.get(proxy.base_url + "/healthz").text
    assert KEY not in health and KEY[-4:] in health


def test_ai_studio_quota_fails_over_to_oauth_account(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    auth = {"gemini-a.json": two_accounts()["gemini-a.json"]}
    proxy = proxy_factory(
        auth_files=auth,
        config={
            "generative-language-api-key": [KEY],
            "endpoints": {
                "gemini-cli": fake.base_url,
                "google-token": fake.token_url,
                "ai-studio": fake.ai_studio_url,
            },
        },
    )
    fake.always_for(KEY, ai_studio_rate_limited("40s"))
    for _ in range(3):
        resp = oai(proxy).chat.completions.create(model="gemini-2.5-flash", messages=MSG)
        assert resp.choices[0].message.content == "Echo: hi"
    assert len(fake.calls("ai_studio:generateContent")) == 1  # refused once, then resting
    assert len(served_by(fake)) == 3


def test_401_refreshes_once_and_retries(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    fake.add_account("ya29.revoked-c", "1//refresh-c", "proj-charlie", email="c@example.com")
    fake.expire("ya29.revoked-c")  # the file still says it is valid for an hour
    auth = gemini_auth(
        "c@example.com", "proj-charlie", "ya29.revoked-c", "1//refresh-c", timedelta(hours=1)
    )
    proxy = proxy_factory(auth_files={"gemini-c.json": auth})
    resp = oai(proxy).chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert resp.choices[0].message.content == "Echo: hi"
    first, second = fake.calls("generateContent")
    assert first.status == 401 and second.status == 200
    assert len(fake.token_requests) == 1
    saved = json.loads((proxy.auth_dir / "gemini-c.json").read_text())
    assert second.headers["authorization"] == "Bearer " + saved["token"]["access_token"]


def test_fifty_concurrent_requests_spread_fairly(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    client = oai(proxy_factory(auth_files=two_accounts()))
    with ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(
                lambda i: client.chat.completions.create(
                    model="gemini-2.5-flash", messages=[{"role": "user", "content": f"q{i}"}]
                ),
                range(50),
            )
        )
    assert sorted(a.choices[0].message.content for a in answers) == sorted(
        f"Echo: q{i}" for i in range(50)
    )
    counts = Counter(served_by(fake))
    assert set(counts) == {PROJECT, PROJECT_B}
    assert abs(counts[PROJECT] - counts[PROJECT_B]) <= 2


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_hot_reload_while_a_slow_stream_is_in_flight(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle
) -> None:
    accounts = two_accounts()
    proxy = proxy_factory(auth_files={"gemini-a.json": accounts["gemini-a.json"]})
    client = oai(proxy)
    fake.event_delay = 0.4
    streamed: list[str] = []

    def slow_stream() -> None:
        for chunk in client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "a slow stream of several words"}],
            stream=True,
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                streamed.append(chunk.choices[0].delta.content)

    try:
        worker = threading.Thread(target=slow_stream)
        worker.start()
        # add an account file: used within seconds
        (proxy.auth_dir / "gemini-b.json").write_text(json.dumps(accounts["gemini-b.json"]))
        wait_for(lambda: len(httpx.get(proxy.base_url + "/healthz").json()["accounts"]) == 2)
        # remove the first: it stops being used (the stream it serves goes on)
        (proxy.auth_dir / "gemini-a.json").unlink()
        wait_for(lambda: len(httpx.get(proxy.base_url + "/healthz").json()["accounts"]) == 1)
        # edit api-keys: enforced at once
        cfg = yaml.safe_load(proxy.config_path.read_text())
        cfg["api-keys"] = ["k-new"]
        proxy.config_path.write_text(yaml.safe_dump(cfg))
        wait_for(lambda: httpx.get(proxy.base_url + "/v1/models").status_code == 401)
        # an invalid config is refused; the previous one stays in force
        proxy.config_path.write_text("port: [broken\n")
        time.sleep(1.5)
        assert httpx.get(proxy.base_url + "/v1/models").status_code == 401
        ok = httpx.get(proxy.base_url + "/v1/models", headers={"authorization": "Bearer k-new"})
        assert ok.status_code == 200
        worker.join(timeout=30)
    finally:
        fake.event_delay = 0.0
    assert "".join(streamed) == "Echo: a slow stream of several words"  # undisturbed
    assert "the previous config stays in force" in proxy.log()
    keyed = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k-new", max_retries=0)
    fake.reset()
    for _ in range(2):
        keyed.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert served_by(fake) == [PROJECT_B, PROJECT_B]


def test_cliproxy_accounts_shows_live_cooldowns(
    proxy_factory: Callable[..., Proxy], fake: FakeGoogle, capsys: pytest.CaptureFixture[str]
) -> None:
    from cliproxy.cli.cli import main

    proxy = proxy_factory(auth_files=two_accounts(), config={"api-keys": ["k-live"]})
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k-live", max_retries=0)
    fake.enqueue(rate_limited("30s", "QUOTA_EXHAUSTED", "gemini-2.5-flash"))
    client.chat.completions.create(model="gemini-2.5-flash", messages=MSG)
    assert main(["accounts", "--config", str(proxy.config_path)]) == 0
    out = capsys.readouterr().out
    assert f"live state of the proxy on port {proxy.port}" in out
    assert re.search(r"resting for gemini-2\.5-flash: (29|30) s left \(HTTP 429", out), out
    assert "requests served: 1" in out and "last error: HTTP 429" in out
    assert "k-live" not in out and "ya29" not in out
