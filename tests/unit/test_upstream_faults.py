"""What an upstream refusal means for the pool, and how long an account rests.

addons/upstreams/code_assist.py and codex.py classify (docs/upstreams.md "Code Assist errors",
"AI Studio", "Codex errors and usage limits"); addons/accounts/cooldown.py and runtime.py turn a
classification into a rest.
"""

from __future__ import annotations

import math

import pytest
from cliproxy.addons.accounts import runtime as runtime_module
from cliproxy.addons.accounts.cooldown import AUTH_REST
from cliproxy.addons.accounts.cooldown import BACKOFF_CAP
from cliproxy.addons.accounts.cooldown import FORBIDDEN_REST
from cliproxy.addons.accounts.cooldown import HINT_CAP
from cliproxy.addons.accounts.cooldown import SERVER_REST_CAP
from cliproxy.addons.accounts.cooldown import rest_seconds
from cliproxy.addons.accounts.runtime import Runtime
from cliproxy.addons.upstreams import ai_studio
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.upstreams import codex
from cliproxy.translators import codex_errors
from cliproxy.translators import google_errors
from cliproxy.translators.fault import Fault

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []}


def error_info(reason: str, **metadata: str) -> dict:
    return {
        "@type": ERROR_INFO,
        "reason": reason,
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": metadata,
    }


def retry_info(delay: str) -> dict:
    return {"@type": RETRY_INFO, "retryDelay": delay}


# ---------------------------------------------------------------- Go durations

DURATIONS = [
    ("40s", 40.0),
    ("0.5s", 0.5),
    ("0.539477544s", 0.539477544),
    ("539.477544ms", 0.539477544),
    ("1h2m3s", 3723.0),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("1m30.5s", 90.5),
    ("250us", 0.00025),
    ("250µs", 0.00025),
    ("100ns", 1e-7),
    (" 40s ", 40.0),  # surrounding blanks are harmless
    ("0s", 0.0),
    ("", None),
    ("40", None),  # no unit
    ("s", None),
    ("40 s", None),
    ("forty seconds", None),
    ("1h2x", None),
    ("-5s", None),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_parse_duration(text: str, seconds: float | None) -> None:
    result = google_errors.parse_duration(text)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


# ---------------------------------------------------------------- retry delay

# docs/upstreams.md "Code Assist errors" sample
QUOTA_MESSAGE = "You have exhausted your capacity on this model. Your quota will reset after 0s."
RETRY_DELAYS = [
    (
        "RetryInfo wins over quotaResetDelay and the message",
        "Your quota will reset after 9s.",
        [error_info("QUOTA_EXHAUSTED", quotaResetDelay="539.477544ms"), retry_info("0.5s")],
        0.5,
    ),
    (
        "quotaResetDelay when there is no RetryInfo",
        QUOTA_MESSAGE,
        [error_info("QUOTA_EXHAUSTED", quotaResetDelay="539.477544ms")],
        0.539477544,
    ),
    ("reset after in the message", "Your quota will reset after 1h2m3s.", [], 3723.0),
    ("Please retry in (AI Studio)", "… Please retry in 40.02s.", [], 40.02),
    ("retry in with a long fraction", "Please retry in 40.025771073s.", [], 40.025771073),
    (
        "an unreadable RetryInfo falls through to the next source",
        "Please retry in 7s.",
        [retry_info("soon"), error_info("RATE_LIMIT_EXCEEDED")],
        7.0,
    ),
    (
        "details that are not objects are skipped",
        "",
        ["junk", 3, None, retry_info("12s")],
        12.0,
    ),
    ("nothing to go on", "Resource has been exhausted (e.g. check quota).", [], None),
    ("a RetryInfo without retryDelay", "", [{"@type": RETRY_INFO}], None),
]


@pytest.mark.parametrize(
    ("message", "details", "seconds"),
    [c[1:] for c in RETRY_DELAYS],
    ids=[c[0] for c in RETRY_DELAYS],
)
def test_retry_delay(message: str, details: list, seconds: float | None) -> None:
    result = google_errors.retry_delay(message, details)
    assert result == (pytest.approx(seconds) if seconds is not None else None)


def test_error_reason_is_the_first_error_info_reason() -> None:
    details = [retry_info("1s"), error_info("QUOTA_EXHAUSTED"), error_info("OTHER")]
    assert google_errors.error_reason(details) == "QUOTA_EXHAUSTED"
    assert google_errors.error_reason([retry_info("1s")]) is None
    assert google_errors.error_reason([{"@type": ERROR_INFO, "reason": 5}]) is None
    assert google_errors.error_reason([]) is None


# ---------------------------------------------------------------- Google classification

AI_STUDIO_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. "
    "Please retry in 40.025771073s."
)
GOOGLE_CASES = [
    (
        "429 with RetryInfo (Code Assist sample)",
        429,
        QUOTA_MESSAGE,
        [
            error_info("QUOTA_EXHAUSTED", quotaResetDelay="539.477544ms"),
            retry_info("0.539477544s"),
        ],
        Fault("quota", 0.539477544),
    ),
    (
        "429 with quotaResetDelay only",
        429,
        "quota",
        [error_info("QUOTA_EXHAUSTED", quotaResetDelay="1h")],
        Fault("quota", 3600.0),
    ),
    (
        "429 reset after 1h2m3s",
        429,
        "Your quota will reset after 1h2m3s.",
        [],
        Fault("quota", 3723.0),
    ),
    ("429 Please retry in 40.02s", 429, "Please retry in 40.02s.", [], Fault("quota", 40.02)),
    (
        "AI Studio 429: RetryInfo 40s beats the message's 40.03 s",
        429,
        AI_STUDIO_QUOTA,
        [QUOTA_FAILURE, retry_info("40s")],
        Fault("quota", 40.0),
    ),
    (
        "limit: 0 means no quota at all",
        429,
        "Quota exceeded for metric: generate_content_free_tier_requests, limit: 0, "
        "model: gemini-2.5-pro",
        [retry_info("40s")],
        Fault("quota", math.inf),
    ),
    (
        "limit: 10 is an ordinary quota",
        429,
        "limit: 10, Please retry in 3s",
        [],
        Fault("quota", 3.0),
    ),
    ("429 without any hint", 429, "Resource has been exhausted", [], Fault("quota", None)),
    (
        "RATE_LIMIT_EXCEEDED is a quota rest",
        429,
        "rate",
        [error_info("RATE_LIMIT_EXCEEDED"), retry_info("2s")],
        Fault("quota", 2.0),
    ),
    (
        "MODEL_CAPACITY_EXHAUSTED on 429 is the model, not the account",
        429,
        "No capacity available for model gemini-2.5-pro on the server",
        [error_info("MODEL_CAPACITY_EXHAUSTED"), retry_info("5s")],
        Fault("server"),
    ),
    (
        "MODEL_CAPACITY_EXCEEDED",
        429,
        "busy",
        [error_info("MODEL_CAPACITY_EXCEEDED")],
        Fault("server"),
    ),
    (
        "MODEL_CAPACITY_EXHAUSTED on 503",
        503,
        "busy",
        [error_info("MODEL_CAPACITY_EXHAUSTED")],
        Fault("server"),
    ),
    ("499 is treated like 429", 499, "The operation was cancelled.", [], Fault("quota", None)),
    (
        "503 is treated like 429",
        503,
        "The service is currently unavailable.",
        [],
        Fault("quota", None),
    ),
    (
        "API_KEY_INVALID (AI Studio 400)",
        400,
        "API key not valid. Please pass a valid API key.",
        [error_info("API_KEY_INVALID")],
        Fault("unusable", reason="the AI Studio API key is not valid"),
    ),
    ("401", 401, "Request had invalid authentication credentials.", [], Fault("auth")),
    (
        "403 (e.g. VALIDATION_REQUIRED)",
        403,
        "Verify your account to continue.",
        [error_info("VALIDATION_REQUIRED")],
        Fault("forbidden"),
    ),
    ("500", 500, "Internal error encountered.", [], Fault("server")),
    ("502", 502, "Bad Gateway", [], Fault("server")),
    ("504", 504, "Deadline exceeded", [], Fault("server")),
    ("400 is the request's fault", 400, "Invalid JSON payload received.", [], Fault("request")),
    ("404 model not found", 404, "Requested entity was not found.", [], Fault("request")),
    ("400 with another reason", 400, "bad", [error_info("BAD_THING")], Fault("request")),
]


@pytest.mark.parametrize(
    ("status", "message", "details", "fault"),
    [c[1:] for c in GOOGLE_CASES],
    ids=[c[0] for c in GOOGLE_CASES],
)
def test_google_classify(status: int, message: str, details: list, fault: Fault) -> None:
    got = google_errors.classify(status, message, details)
    assert (got.kind, got.reason) == (fault.kind, fault.reason)
    if fault.retry_after is None:
        assert got.retry_after is None
    else:
        assert got.retry_after == pytest.approx(fault.retry_after)


# ---------------------------------------------------------------- Codex classification

CODEX_CASES = [
    (
        "usage_limit_reached with a reset",
        429,
        "usage_limit_reached",
        17778.0,
        None,
        Fault("quota", 17778.0),
    ),
    ("the reset beats retry-after", 429, "usage_limit_reached", 600.0, 30.0, Fault("quota", 600.0)),
    ("a reset of 0 is still the reset", 429, "usage_limit_reached", 0.0, 30.0, Fault("quota", 0.0)),
    (
        "usage_not_included: the plan has no Codex",
        429,
        "usage_not_included",
        None,
        None,
        Fault("unusable", reason="this ChatGPT plan does not include Codex"),
    ),
    ("429 with only retry-after", 429, None, None, 30.0, Fault("quota", 30.0)),
    ("429 with nothing", 429, "rate_limit_exceeded", None, None, Fault("quota", None)),
    ("401 token_invalidated", 401, "token_invalidated", None, None, Fault("auth")),
    ("403", 403, None, None, None, Fault("forbidden")),
    ("400 {detail}", 400, None, None, None, Fault("request")),
    ("404", 404, None, None, None, Fault("request")),
    ("500", 500, "server_error", None, None, Fault("server")),
    ("503", 503, None, None, 5.0, Fault("server")),
]


@pytest.mark.parametrize(
    ("status", "code", "resets", "retry_after", "fault"),
    [c[1:] for c in CODEX_CASES],
    ids=[c[0] for c in CODEX_CASES],
)
def test_codex_classify(
    status: int, code: str | None, resets: float | None, retry_after: float | None, fault: Fault
) -> None:
    assert codex_errors.classify(status, code, resets, retry_after) == fault


def test_codex_headers() -> None:
    h = codex.headers("eyJ.token", "acct-123", "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    assert h == {
        "authorization": "Bearer eyJ.token",
        "chatgpt-account-id": "acct-123",
        "content-type": "application/json",
        "accept": "text/event-stream",
        "accept-encoding": "identity",
        "openai-beta": "responses=experimental",
        "originator": "codex_cli_rs",
        "session_id": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "user-agent": codex.USER_AGENT,
    }


def test_codex_headers_make_a_fresh_session_id_per_request() -> None:
    a = codex.headers("t", "acct")["session_id"]
    b = codex.headers("t", "acct")["session_id"]
    assert a != b
    assert len(a) == 36 and a.count("-") == 4


def test_codex_url() -> None:
    base = "https://chatgpt.com/backend-api/codex"
    assert codex.responses_url(base) == "https://chatgpt.com/backend-api/codex/responses"


# ---------------------------------------------------------------- Code Assist / AI Studio wire


@pytest.mark.parametrize(
    ("method", "stream", "url"),
    [
        (
            "generateContent",
            False,
            "https://cloudcode-pa.googleapis.com/v1internal:generateContent",
        ),
        (
            "streamGenerateContent",
            True,
            "https://cloudcode-pa.googleapis.com/v1internal:streamGenerateContent?alt=sse",
        ),
        ("countTokens", False, "https://cloudcode-pa.googleapis.com/v1internal:countTokens"),
    ],
)
def test_code_assist_method_url(method: str, stream: bool, url: str) -> None:
    assert code_assist.method_url("https://cloudcode-pa.googleapis.com", method, stream) == url


@pytest.mark.parametrize(
    ("stream", "accept"), [(True, "text/event-stream"), (False, "application/json")]
)
def test_code_assist_headers(stream: bool, accept: str) -> None:
    assert code_assist.headers("ya29.tok", stream) == {
        "authorization": "Bearer ya29.tok",
        "content-type": "application/json",
        "user-agent": code_assist.USER_AGENT,
        "accept-encoding": "identity",  # the stream is translated chunk by chunk
        "accept": accept,
    }


@pytest.mark.parametrize(
    ("method", "stream", "url"),
    [
        ("generateContent", False, "https://g.test/v1beta/models/gemini-2.5-pro:generateContent"),
        (
            "streamGenerateContent",
            True,
            "https://g.test/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        ),
        ("countTokens", False, "https://g.test/v1beta/models/gemini-2.5-pro:countTokens"),
    ],
)
def test_ai_studio_method_url(method: str, stream: bool, url: str) -> None:
    assert ai_studio.method_url("https://g.test", "gemini-2.5-pro", method, stream) == url


def test_ai_studio_headers_carry_the_key_not_a_bearer() -> None:
    h = ai_studio.headers("AIzaSyKey", stream=True)
    assert h == {
        "x-goog-api-key": "AIzaSyKey",
        "content-type": "application/json",
        "accept-encoding": "identity",
        "accept": "text/event-stream",
    }
    assert ai_studio.headers("k", stream=False)["accept"] == "application/json"


def test_ai_studio_count_tokens_body_counts_system_and_tools() -> None:
    request = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "f"}]}],
    }
    assert ai_studio.count_tokens_body(request, "gemini-2.5-flash") == {
        "generateContentRequest": {"model": "models/gemini-2.5-flash", **request}
    }


def test_preview_models_are_previews_of_served_models() -> None:
    assert set(code_assist.PREVIEW_MODELS) <= set(code_assist.MODELS)
    for model, previews in code_assist.PREVIEW_MODELS.items():
        assert previews, model
        for preview in previews:
            assert preview.startswith(model + "-preview-"), preview
            assert preview not in code_assist.MODELS  # a fallback, never a served name
    assert code_assist.PREVIEW_MODELS["gemini-2.5-pro"] == (
        "gemini-2.5-pro-preview-05-06",
        "gemini-2.5-pro-preview-06-05",
    )
    assert "gemini-3-pro-preview" not in code_assist.PREVIEW_MODELS  # no older preview to try


# ---------------------------------------------------------------- rests

REST_CASES = [
    ("quota, first refusal, no hint", "quota", 1, None, 1.0),
    ("quota backoff doubles", "quota", 2, None, 2.0),
    ("quota backoff doubles again", "quota", 3, None, 4.0),
    ("quota backoff 11th", "quota", 11, None, 1024.0),
    ("quota backoff is capped at 30 min", "quota", 12, None, BACKOFF_CAP),
    ("quota backoff stays capped", "quota", 60, None, BACKOFF_CAP),
    ("the upstream's hint wins", "quota", 5, 40.0, 40.0),
    ("a sub-second hint rests 1 s", "quota", 1, 0.539477544, 1.0),
    ("a zero hint rests 1 s", "quota", 1, 0.0, 1.0),
    ("a Codex weekly reset is capped at 6 h", "quota", 1, 5 * 86400.0, HINT_CAP),
    ("limit: 0 (inf) rests as long as allowed", "quota", 1, math.inf, HINT_CAP),
    ("auth after a fresh token", "auth", 1, None, AUTH_REST),
    ("auth ignores hints", "auth", 3, 10.0, AUTH_REST),
    ("forbidden", "forbidden", 1, None, FORBIDDEN_REST),
    ("one 5xx is noise", "server", 1, None, 0.0),
    ("a second 5xx rests 2 s", "server", 2, None, 2.0),
    ("a third rests 4 s", "server", 3, None, 4.0),
    ("5xx rests are capped at 60 s", "server", 7, None, SERVER_REST_CAP),
    ("and stay capped", "server", 40, None, SERVER_REST_CAP),
]


@pytest.mark.parametrize(
    ("kind", "failures", "hint", "seconds"),
    [c[1:] for c in REST_CASES],
    ids=[c[0] for c in REST_CASES],
)
def test_rest_seconds(kind: str, failures: int, hint: float | None, seconds: float) -> None:
    assert rest_seconds(kind, failures, hint) == seconds  # type: ignore[arg-type]


def test_rest_constants() -> None:
    assert (BACKOFF_CAP, HINT_CAP, AUTH_REST, FORBIDDEN_REST, SERVER_REST_CAP) == (
        1800.0,
        21600.0,
        300.0,
        600.0,
        60.0,
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(runtime_module.time, "time", clock)
    return clock


def test_cool_rests_for_the_hint_and_reports_it(clock: Clock) -> None:
    rt = Runtime()
    assert rt.cool("gemini-2.5-pro", "quota", 40.0, "HTTP 429: quota") == 40.0
    assert rt.cooling("gemini-2.5-pro") == 40.0
    assert rt.cooling("gemini-2.5-flash") == 0.0  # per model
    cd = rt.cooldowns["gemini-2.5-pro"]
    assert (cd.until, cd.failures, cd.reason) == (1_000_040.0, 1, "HTTP 429: quota")
    clock.now += 39.5
    assert rt.cooling("gemini-2.5-pro") == pytest.approx(0.5)
    clock.now += 1
    assert rt.cooling("gemini-2.5-pro") == 0.0


def test_cool_keeps_the_later_deadline(clock: Clock) -> None:
    rt = Runtime()
    rt.cool("gpt-5", "quota", 17778.0, "usage limit")
    clock.now += 10
    # a later, shorter refusal (e.g. a retry-after of 5 s) must not shorten the rest
    rest = rt.cool("gpt-5", "quota", 5.0, "rate limited")
    assert rest == pytest.approx(17768.0)
    cd = rt.cooldowns["gpt-5"]
    assert cd.until == 1_000_000.0 + 17778.0
    assert cd.failures == 2
    assert cd.reason == "rate limited"  # the latest refusal is what /healthz shows


def test_cool_extends_to_a_later_deadline(clock: Clock) -> None:
    rt = Runtime()
    rt.cool("m", "quota", 5.0, "a")
    assert rt.cool("m", "quota", 100.0, "b") == 100.0
    assert rt.cooldowns["m"].until == 1_000_100.0


def test_cool_without_hints_backs_off_exponentially(clock: Clock) -> None:
    rt = Runtime()
    rests = []
    for _ in range(4):
        rests.append(rt.cool("m", "quota", None, "429"))
        clock.now = rt.cooldowns["m"].until  # the account is back, and refused again
    assert rests == [1.0, 2.0, 4.0, 8.0]


def test_server_errors_rest_only_from_the_second(clock: Clock) -> None:
    rt = Runtime()
    assert rt.cool("m", "server", None, "HTTP 500") == 0.0
    assert rt.cooling("m") == 0.0
    assert rt.cool("m", "server", None, "HTTP 500") == 2.0


def test_success_clears_the_rest_and_the_error(clock: Clock) -> None:
    rt = Runtime()
    rt.cool("m", "quota", 60.0, "HTTP 429")
    rt.cool("other", "quota", 60.0, "HTTP 429")
    rt.last_error = "HTTP 429"
    rt.succeeded("m")
    assert rt.cooling("m") == 0.0
    assert "m" not in rt.cooldowns
    assert rt.cooling("other") == 60.0  # other models keep resting
    assert rt.last_error is None
    # the backoff starts over after a success
    assert rt.cool("m", "quota", None, "429") == 1.0


def test_cooling_takes_an_explicit_now(clock: Clock) -> None:
    rt = Runtime()
    rt.cool("m", "auth", None, "401")
    assert rt.cooling("m", now=1_000_000.0 + 100) == AUTH_REST - 100
    assert rt.cooling("m", now=1_000_000.0 + AUTH_REST + 1) == 0.0


def test_take_over_keeps_running_state(clock: Clock) -> None:
    old = Runtime(requests_served=7, last_error="HTTP 429")
    old.cool("m", "quota", 30.0, "429")
    new = Runtime()
    new.take_over(old)
    assert (new.requests_served, new.last_error, new.cooling("m")) == (7, "HTTP 429", 30.0)
    assert new.disabled is None  # a re-read file gets a fresh chance
