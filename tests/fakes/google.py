"""FakeGoogle: Code Assist (`/v1internal:*`), AI Studio (`/v1beta/models…`, API keys) and Google
OAuth (`/token`, userinfo) on one loopback HTTP/1.1 server, as strict as the real services
(docs/upstreams.md "Code Assist", "AI Studio", "Google OAuth"; docs/architecture.md "Tests").

Layout: the request rules live in `google_rules.py` (spec tables, proto-JSON checker, semantic
checks, token count; re-exported here); this module has the scripted replies (`Text`, `Calls`,
`Error`, `Raw`, `CutStream`) and their wire shapes, then the `FakeGoogle` state and the thin HTTP
handler. Decisions beyond docs/upstreams.md:
- `streamGenerateContent` without `?alt=sse` answers one JSON array of wrappers (what the public API
  does, docs/upstreams.md "AI Studio"); a stream cut (`CutStream`) on such a call or on
  `generateContent` drops the connection.
- Sending both spellings of one field (`topK` and `top_k`) is a 400, like protobuf's JSON parser.
- A content without `role` is a 400 (the real API defaults it; the proxy must always set one).
- `parametersJsonSchema` rejects `$schema`, `additionalProperties` and type arrays at any depth
  (`strict_json_schema`), stricter than the API reference, as the issue tracker demands.
- The thoughtSignature rules apply to every model (`enforce_signatures`), not only Gemini 3: the
  first functionCall of each model turn in the tool loop is signed, and every signature is one
  this fake issued (since its last reset) or the sentinel, else 400 "Corrupted thought
  signature." (a signature from another model or upstream).
- Onboarding (`onboarding`): "onboarded" (default: loadCodeAssist answers a current free tier and
  the account's project), "new-user" (no current tier; free tier is the default; onboardUser
  returns the account's project), "project-required" (no current tier; the default standard tier
  needs `cloudaicompanionProject`, which must be the account's project; without one the operation
  ends with no project), "standard-onboarded" (current standard tier; the project is returned only
  when the request names the account's). `onboard_pending` operations answers say `done: false`
  before the one that finishes (onboardUser's own answer counts). Once onboarded, an account gets
  a current tier from loadCodeAssist whatever the mode.
- An authorization code registered with a PKCE challenge needs the matching S256 `code_verifier`.
- `GET /v1/projects` is the Resource Manager project list (`cloud_projects`), same origin.
AI Studio (`ai_studio_url` is `base_url`):
- Only `/v1beta/…` is served (`/v1/…` is a 404). Unknown paths/methods are a JSON 404 before the key
  is looked at. The key comes from `x-goog-api-key`, else `?key=`; a Bearer token is not a key.
  Missing → 403 PERMISSION_DENIED, unknown (`add_api_key` registers keys) → 400 API_KEY_INVALID
  with the real ErrorInfo + LocalizedMessage details.
- The body is the Code Assist `request` object alone, checked by the same rules; `sessionId` and
  the envelope keys (`model`, `project`, `user_prompt_id`, `request`) are unknown names (400). The
  model is the path's; an unknown one is a 404.
- countTokens takes exactly one of `contents` / `generateContentRequest` (whose `model` must be
  `models/<the path's model>`); the latter counts systemInstruction and tools too
  (`count_request_tokens`) and is checked like a generate request except for the signature rule.
  The answer is `{"totalTokens": N}`.
- Replies are bare GenerateContentResponses, each (every SSE event too) with one `responseId`;
  `GET /v1beta/models` pages with `pageSize` (default 50) / `pageToken`.
- Recorded requests: AI Studio calls have `rpc` "ai_studio:<method>" ("ai_studio:generateContent",
  "ai_studio:models.list", "ai_studio:models.get"), so `calls("generateContent")` stays Code Assist
  only. `Recorded.credential` is the project (Code Assist, userinfo…) or the API key that the
  request was authenticated as.
Scripted replies: `enqueue` feeds one shared queue that whichever generate endpoint (Code Assist
or AI Studio, stream or not) is called next consumes. `enqueue_for(project_or_key, …)` and
`always_for(project_or_key, reply)` script one credential: a generate call takes, in order, the
next reply of its credential's queue, its `always_for` reply, the next reply of the shared queue,
the default reply. Only requests that pass every check consume replies.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.google_rules import AI_STUDIO_MODEL_MISSING
from tests.fakes.google_rules import B64_RE
from tests.fakes.google_rules import BAD_NAME
from tests.fakes.google_rules import BUDGETS
from tests.fakes.google_rules import ENUMS
from tests.fakes.google_rules import KNOWN_MODELS
from tests.fakes.google_rules import MESSAGES
from tests.fakes.google_rules import NAME_RE
from tests.fakes.google_rules import PART_DATA
from tests.fakes.google_rules import RESPONSE_COUNT
from tests.fakes.google_rules import SCALAR_TYPES
from tests.fakes.google_rules import SENTINEL
from tests.fakes.google_rules import SIGNATURE_MISSING
from tests.fakes.google_rules import TYPE_PREFIX
from tests.fakes.google_rules import GoogleError
from tests.fakes.google_rules import budget_limits
from tests.fakes.google_rules import check_ai_studio_model
from tests.fakes.google_rules import check_contents
from tests.fakes.google_rules import check_message
from tests.fakes.google_rules import check_model
from tests.fakes.google_rules import check_parts
from tests.fakes.google_rules import check_request
from tests.fakes.google_rules import check_schema
from tests.fakes.google_rules import check_signatures
from tests.fakes.google_rules import check_system
from tests.fakes.google_rules import check_thinking
from tests.fakes.google_rules import check_tools
from tests.fakes.google_rules import check_turns
from tests.fakes.google_rules import count_request_tokens
from tests.fakes.google_rules import count_tokens
from tests.fakes.google_rules import dumps
from tests.fakes.google_rules import invalid
from tests.fakes.google_rules import json_schema_errors
from tests.fakes.google_rules import parse_or_raise
from tests.fakes.google_rules import snake
from tests.fakes.google_rules import validate_ai_studio_count
from tests.fakes.google_rules import validate_ai_studio_generate
from tests.fakes.google_rules import validate_count
from tests.fakes.google_rules import validate_generate
from tests.fakes.http import Answer
from tests.fakes.http import FakeHandler
from tests.fakes.http import LoopbackServer
from tests.fakes.http import loads

__all__ = [  # the rules are re-exported: tests import everything from tests.fakes.google
    "AI_STUDIO_MODEL_MISSING", "AUTH_INVALID", "AUTH_MISSING", "B64_RE", "BAD_NAME", "BUDGETS",
    "CLIENT_ID", "CLIENT_SECRET", "ENUMS", "KEY_INVALID", "KEY_MISSING", "KNOWN_MODELS",
    "MESSAGES", "NAME_RE", "PART_DATA", "RESPONSE_COUNT", "SCALAR_TYPES", "SCOPES", "SENTINEL",
    "SIGNATURE_MISSING", "TYPE_PREFIX", "WWW_AUTHENTICATE", "Calls", "CutStream", "Error",
    "FakeGoogle", "GoogleError", "Raw", "Recorded", "Reply", "Stall", "Text",
    "ai_studio_rate_limited",
    "budget_limits", "check_ai_studio_model", "check_contents", "check_message", "check_model",
    "check_parts", "check_request", "check_schema", "check_signatures", "check_system",
    "check_thinking", "check_tools", "check_turns", "count_request_tokens", "count_tokens",
    "default_reply", "dumps", "invalid", "json_schema_errors", "model_info", "parse_or_raise",
    "plan", "rate_limited", "response_body", "snake", "split_text", "usage_for",
    "validate_ai_studio_count", "validate_ai_studio_generate", "validate_count",
    "validate_generate", "wrapper",
]  # fmt: skip

CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform "
    "https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"
)
AUTH_INVALID = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
AUTH_MISSING = AUTH_INVALID.replace(
    "Request had invalid authentication credentials.",
    "Request is missing required authentication credential.",
)
WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
KEY_MISSING = (
    "Method doesn't allow unregistered callers (callers without established identity). Please "
    "use API Key or other form of API consumer identity to call this API."
)
KEY_INVALID = "API key not valid. Please pass a valid API key."
AI_STUDIO_PREFIX = "/v1beta/models"
AI_STUDIO_RPCS = ("generateContent", "streamGenerateContent", "countTokens")
RPC_TYPE = "type.googleapis.com/google.rpc."


# ---------------------------------------------------------------- scripted replies


@dataclass(frozen=True)
class Text:
    text: str
    thought: str | None = None
    finish: str = "STOP"


@dataclass(frozen=True)
class Calls:
    """functionCall parts (whole, in one event); the first carries a fresh thoughtSignature."""

    calls: list[tuple[str, dict]]
    text_before: str | None = None


@dataclass(frozen=True)
class Error:
    status: int
    body: dict | str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Raw:
    """Exact parts: one stream event per part, all of them in a non-stream reply."""

    parts: list[dict]
    finish: str = "STOP"


@dataclass(frozen=True)
class CutStream:
    """Send `after_events` events of `reply` (default: the default reply), then drop the socket."""

    after_events: int
    reply: Text | Calls | Raw | None = None


@dataclass(frozen=True)
class Stall:
    """Accept the call, then send nothing for `seconds` and drop the socket: before the status
    line, or after `after_events` events of `reply` (default: the default reply)."""

    seconds: float
    after_events: int | None = None
    reply: Text | Calls | Raw | None = None


Reply = Text | Calls | Error | Raw | CutStream | Stall


def rate_limited(delay: str = "1s", reason: str = "RATE_LIMIT_EXCEEDED", model: str = "") -> Error:
    """A 429 RESOURCE_EXHAUSTED shaped like docs/upstreams.md "Code Assist errors"."""
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "cloudcode-pa.googleapis.com",
            "metadata": {"model": model, "quotaResetDelay": delay}}  # fmt: skip
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
    msg = f"You have exhausted your capacity on this model. Your quota will reset after {delay}."
    return Error(429, GoogleError(429, "RESOURCE_EXHAUSTED", msg, [info, retry]).body())


def ai_studio_rate_limited(
    delay: str = "40s", model: str = "gemini-2.5-pro", *, limit: int = 10000,
    retry_in: str | None = None,
) -> Error:  # fmt: skip
    """AI Studio's 429 RESOURCE_EXHAUSTED (docs/upstreams.md "AI Studio"): QuotaFailure, Help and
    RetryInfo(`delay`) details; the message ends "Please retry in <retry_in>." (default: `delay` +
    0.025771073 s, as precise as the real one). `limit=0` is the "no quota at all for this model"
    variant."""
    if retry_in is None:
        whole = re.fullmatch(r"(\d+)s", delay)
        retry_in = f"{whole.group(1)}.025771073s" if whole else delay
    metric = "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count"
    msg = ("You exceeded your current quota, please check your plan and billing details. For more "
           "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
           "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n"
           f"* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
           f"Please retry in {retry_in}.")  # fmt: skip
    quota = {
        "@type": RPC_TYPE + "QuotaFailure",
        "violations": [
            {
                "quotaMetric": metric,
                "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": str(limit),
            }
        ],
    }
    links = [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ]
    retry = {"@type": RPC_TYPE + "RetryInfo", "retryDelay": delay}
    details = [quota, {"@type": RPC_TYPE + "Help", "links": links}, retry]
    return Error(429, GoogleError(429, "RESOURCE_EXHAUSTED", msg, details).body())  # fmt: skip


def split_text(text: str) -> list[str]:
    """2 or 3 chunks cut after spaces (one chunk for a single word)."""
    words = re.findall(r"\S*\s*", text)[:-1] or [text]
    n = min(3, len(words))
    size = -(-len(words) // n)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def default_reply(req: dict) -> Text:
    contents = req.get("contents") or []
    last = next((c for c in reversed(contents) if c["role"] == "user"), {"parts": []})
    answers = [p["functionResponse"].get("response", {}) for p in last["parts"]
               if "functionResponse" in p]  # fmt: skip
    user_text = "\n".join(p["text"] for p in last["parts"] if "text" in p and not p.get("thought"))
    text = "Tool said: " + dumps(answers) if answers else "Echo: " + user_text
    config = req.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        text = dumps({"echo": user_text})
    thinking = (config.get("thinkingConfig") or {}).get("includeThoughts")
    return Text(text, "Thinking about the answer." if thinking else None)


def plan(reply: Text | Calls | Raw, sign: Any) -> tuple[list[list[dict]], list[dict], str]:
    """(stream events as part lists, the whole parts for a non-stream reply, finishReason)."""
    if isinstance(reply, Raw):
        return [[p] for p in reply.parts] or [[]], list(reply.parts), reply.finish
    events: list[list[dict]] = []
    whole: list[dict] = []
    if isinstance(reply, Text) and reply.thought is not None:
        thought = {"thought": True, "text": reply.thought, "thoughtSignature": sign()}
        events.append([thought])
        whole.append(thought)
    text = reply.text if isinstance(reply, Text) else reply.text_before
    if text is not None:
        events += [[{"text": chunk}] for chunk in split_text(text)]
        whole.append({"text": text})
    if isinstance(reply, Calls):
        calls = [{"functionCall": {"name": n, "args": a}} for n, a in reply.calls]
        if calls:
            calls[0]["thoughtSignature"] = sign()
            events.append(calls)
            whole += calls
    return events or [[]], whole, reply.finish if isinstance(reply, Text) else "STOP"


def response_body(
    parts: list[dict], model: str, usage: dict, finish: str | None, response_id: str | None = None
) -> dict:
    """A bare GenerateContentResponse (AI Studio's reply; Code Assist wraps it)."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    resp: dict[str, Any] = {"candidates": [candidate], "usageMetadata": usage,
                            "modelVersion": model}  # fmt: skip
    if response_id is not None:
        resp["responseId"] = response_id
    return resp


def wrapper(parts: list[dict], model: str, usage: dict, finish: str | None, trace: str) -> dict:
    """Code Assist's `{"response": …, "traceId": …}`
    (docs/upstreams.md "Code Assist responses and SSE")."""
    return {"response": response_body(parts, model, usage, finish), "traceId": trace}


def model_info(name: str) -> dict[str, Any]:
    """One entry of AI Studio's model list (docs/upstreams.md "Model lists")."""
    gemma = name.startswith("gemma")
    return {"name": f"models/{name}", "version": "001",
            "displayName": " ".join(w.capitalize() for w in name.split("-")),
            "description": f"FakeGoogle's {name}",
            "inputTokenLimit": 131072 if gemma else 1048576,
            "outputTokenLimit": 8192 if gemma else 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2,
            "thinking": not gemma}  # fmt: skip


def usage_for(req: dict, whole: list[dict]) -> dict[str, int]:
    system = req.get("systemInstruction")
    prompt = count_tokens((req.get("contents") or []) + ([system] if system else []))
    thoughts = count_tokens([{"parts": [p for p in whole if p.get("thought")]}])
    out = count_tokens([{"parts": [p for p in whole if not p.get("thought")]}])
    return {"promptTokenCount": prompt, "candidatesTokenCount": out,
            "totalTokenCount": prompt + out + thoughts, "thoughtsTokenCount": thoughts}  # fmt: skip


# ---------------------------------------------------------------- state and routing


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None  # parsed JSON (form fields for /token), None when not parseable
    # Code Assist method name, e.g. "streamGenerateContent"; AI Studio: "ai_studio:<method>"
    rpc: str | None = None
    status: int = 0  # what the fake answered (0 = connection dropped before a status line)
    credential: str | None = None  # the account's project, or the API key, once authenticated


@dataclass
class _Account:
    project: str
    email: str


FREE = {
    "id": "free-tier",
    "name": "Gemini Code Assist for individuals",
    "userDefinedCloudaicompanionProject": False,
}
STANDARD = {
    "id": "standard-tier",
    "name": "Gemini Code Assist",
    "userDefinedCloudaicompanionProject": True,
}
ONBOARD_TIERS = {  # allowedTiers of loadCodeAssist for an account not yet onboarded
    "new-user": [{**FREE, "isDefault": True}, STANDARD],
    "project-required": [{**STANDARD, "isDefault": True}],
}  # fmt: skip
RPCS = ("generateContent", "streamGenerateContent", "countTokens", "loadCodeAssist", "onboardUser",
        "retrieveUserQuota", "listExperiments", "recordCodeAssistMetrics")  # fmt: skip


class FakeGoogle(LoopbackServer):
    """Code Assist + AI Studio + Google OAuth on 127.0.0.1:<ephemeral>. Use as a context manager
    or start()/stop(). Attributes tests may set: token_delay, rotate_refresh_tokens, event_delay,
    crlf, enforce_signatures, strict_json_schema (both APIs)."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[_Account, bool]] = {}  # access token -> (account, expired)
        self._refresh: dict[str, _Account] = {}
        self._codes: dict[str, tuple[str, str, _Account, str | None, str | None]] = {}
        self.onboarding = "onboarded"
        self.onboard_pending = 0
        self.cloud_projects: list[str] = []
        self._onboarded: dict[str, str] = {}  # email -> tier, onboarded while the fake runs
        self._operations: dict[str, list[Any]] = {}  # name -> [answers left undone, final LRO]
        self._models = set(KNOWN_MODELS)
        self._queue: deque[Reply] = deque()
        self._queues: dict[str, deque[Reply]] = {}  # project or API key -> its own replies
        self._always: dict[str, Reply] = {}  # project or API key -> reply on every call
        self._keys: set[str] = set()  # valid AI Studio API keys
        self.requests: list[Recorded] = []
        self.token_requests: list[dict[str, str]] = []
        self.issued_signatures: list[str] = []
        self.token_delay = 0.0
        # Google keeps a refresh token valid across refreshes, except for clients with refresh
        # token rotation; with this on, each refresh returns a new one and the old one is spent
        # (invalid_grant on reuse), so a double refresh across replicas fails loudly.
        self.rotate_refresh_tokens = False
        self.event_delay = 0.0
        self.crlf = False
        self.enforce_signatures = True
        self.strict_json_schema = True

    # ---- addresses (start()/stop(): LoopbackServer)
    @property
    def base_url(self) -> str:
        return self.origin

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def ai_studio_url(self) -> str:
        """`endpoints.ai-studio`: the same server (paths under /v1beta/models)."""
        return self.base_url

    # ---- scripting
    def add_account(
        self, access_token: str, refresh_token: str, project: str, *, email: str = "a@example.com",
        expired: bool = False,
    ) -> None:  # fmt: skip
        account = _Account(project, email)
        with self._lock:
            self._tokens[access_token] = (account, expired)
            self._refresh[refresh_token] = account

    def add_auth_code(
        self, code: str, access_token: str, refresh_token: str, project: str, *,
        email: str = "a@example.com", redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> None:  # fmt: skip
        """A one-time authorization code for grant_type=authorization_code; with
        `code_challenge` (S256) the exchange must send the matching `code_verifier`."""
        account = _Account(project, email)
        with self._lock:
            self._codes[code] = (access_token, refresh_token, account, redirect_uri,
                                 code_challenge)  # fmt: skip

    def add_api_key(self, key: str) -> None:
        """A valid AI Studio API key; its credential (for `enqueue_for`…) is the key itself."""
        with self._lock:
            self._keys.add(key)

    def revoke_api_key(self, key: str) -> None:
        with self._lock:
            self._keys.discard(key)

    def add_model(self, name: str) -> None:
        with self._lock:
            self._models.add(name)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh.pop(refresh_token, None)

    def expire(self, access_token: str) -> None:
        with self._lock:
            self._tokens[access_token] = (self._tokens[access_token][0], True)

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def enqueue_for(self, credential: str, *replies: Reply) -> None:
        """Replies for one credential (an account's project, or an API key), served to its
        generate calls before `always_for` and the shared queue."""
        with self._lock:
            self._queues.setdefault(credential, deque()).extend(replies)

    def always_for(self, credential: str, reply: Reply) -> None:
        """`credential` answers `reply` on every generate call (once its own queue is empty)
        until `clear_for`."""
        with self._lock:
            self._always[credential] = reply

    def clear_for(self, credential: str) -> None:
        """Drop `credential`'s queue and `always_for` reply."""
        with self._lock:
            self._queues.pop(credential, None)
            self._always.pop(credential, None)

    def calls(self, rpc: str) -> list[Recorded]:
        """Recorded requests of one method: "generateContent" is Code Assist's,
        "ai_studio:generateContent" AI Studio's."""
        with self._lock:
            return [r for r in self.requests if r.rpc == rpc]

    def reset(self) -> None:
        """Forget requests and every scripted reply (accounts, keys and models stay)."""
        with self._lock:
            self._queue.clear()
            self._queues.clear()
            self._always.clear()
            self.requests.clear()
            self.token_requests.clear()
            self.issued_signatures.clear()
            self.peer_closed.clear()
            self.connections.clear()

    def _next_reply(self, credential: str) -> Reply | None:
        with self._lock:
            own = self._queues.get(credential)
            if own:
                return own.popleft()
            if credential in self._always:
                return self._always[credential]
            return self._queue.popleft() if self._queue else None

    def _sign(self) -> str:
        sig = "sig-" + secrets.token_hex(8)
        with self._lock:
            self.issued_signatures.append(sig)
        return sig

    # ---- request handling (called from handler threads)
    def serve(self, rec: Recorded, raw: bytes, content_type: str) -> Answer:
        with self._lock:
            self.requests.append(rec)
        try:
            out = self._route(rec, raw, content_type)
        except GoogleError as e:
            out = Answer(e.code, e.body(), e.headers)
        except Exception as e:  # a fake bug must show up as such, not as a dropped connection
            out = Answer(500, GoogleError(500, "INTERNAL", f"FakeGoogle bug: {e!r}").body())
        rec.status = 0 if out.drop else out.status
        return out

    def _route(self, rec: Recorded, raw: bytes, content_type: str) -> Answer:
        path = rec.path
        if path == "/token" and rec.method == "POST":
            return self._token(rec, raw, content_type)
        rec.body = loads(raw)  # recorded even when the request is rejected below
        if path in ("/oauth2/v1/userinfo", "/oauth2/v2/userinfo") and rec.method == "GET":
            account = self._account(rec, "userinfo")
            return Answer(body={"id": "1" + str(abs(hash(account.email)))[:20],
                              "email": account.email, "verified_email": True})  # fmt: skip
        if path.startswith("/v1internal/operations/") and rec.method == "GET":
            account = self._account(rec, "GetOperation")
            return Answer(body=self._poll(path.removeprefix("/v1internal/"), account))
        if path == AI_STUDIO_PREFIX or path.startswith(AI_STUDIO_PREFIX + "/"):
            return self._ai_studio(rec, content_type)
        if path == "/v1/projects" and rec.method == "GET":
            self._account(rec, "ListProjects")
            with self._lock:
                projects = [{"projectId": p, "name": p, "projectNumber": str(100000 + i),
                             "lifecycleState": "ACTIVE"}
                            for i, p in enumerate(self.cloud_projects)]  # fmt: skip
            return Answer(body={"projects": projects} if projects else {})
        rpc = path.removeprefix("/v1internal:")
        if rpc == path or rpc not in RPCS or rec.method != "POST":
            raise GoogleError(404, "NOT_FOUND", f"Method not found: {rec.method} {path}")
        rec.rpc = rpc
        account = self._account(rec, rpc)
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise invalid(f"Invalid Content-Type {content_type!r}: expected application/json.")
        if rec.body is None:
            raise invalid("Invalid JSON payload received. Unexpected token.")
        return self._rpc(rpc, rec, account)

    def _account(self, rec: Recorded, method: str) -> _Account:
        auth = rec.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        with self._lock:
            found = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found and not found[1]:
            rec.credential = found[0].project
            return found[0]
        reason = "ACCESS_TOKEN_EXPIRED" if found else (
            "ACCESS_TOKEN_TYPE_UNSUPPORTED" if auth else "CREDENTIALS_MISSING")  # fmt: skip
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "cloudcode-pa.googleapis.com",
                             "method": method}}  # fmt: skip
        hdr = {"WWW-Authenticate": WWW_AUTHENTICATE}
        msg = AUTH_INVALID if auth else AUTH_MISSING
        raise GoogleError(401, "UNAUTHENTICATED", msg, [info], hdr)

    def _rpc(self, rpc: str, rec: Recorded, account: _Account) -> Answer:
        body = rec.body
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received. Root element must be a message.")
        if rpc in ("generateContent", "streamGenerateContent"):
            return self._generate(rec, account)
        with self._lock:
            models = set(self._models)
        if rpc == "countTokens":
            contents = validate_count(body, models)["contents"]
            return Answer(body={"totalTokens": count_tokens(contents)})
        if rpc in ("retrieveUserQuota", "listExperiments"):
            if not body.get("project"):
                raise invalid("Request contains an invalid argument: 'project' is required.")
            if body["project"] != account.project:
                raise GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission")
        if rpc == "loadCodeAssist":
            return Answer(body=self._load_code_assist(body, account))
        if rpc == "onboardUser":
            return Answer(body=self._onboard(body, account))
        answers = {"retrieveUserQuota": {"buckets": []},
                   "listExperiments": {"experimentIds": [], "flags": []}}  # fmt: skip
        return Answer(body=answers.get(rpc, {}))

    def _mode(self, account: _Account) -> tuple[str, str | None]:
        with self._lock:
            return self.onboarding, self._onboarded.get(account.email)

    def _load_code_assist(self, body: dict, account: _Account) -> dict:
        mode, tier = self._mode(account)
        if mode == "onboarded" or tier:
            return {"currentTier": {"id": tier or "free-tier"},
                    "cloudaicompanionProject": account.project}  # fmt: skip
        if mode == "standard-onboarded":
            out: dict[str, Any] = {"currentTier": {"id": "standard-tier"}}
            if body.get("cloudaicompanionProject") == account.project:
                out["cloudaicompanionProject"] = account.project
            return out
        return {"allowedTiers": ONBOARD_TIERS[mode]}

    def _onboard(self, body: dict, account: _Account) -> dict:
        tier = body.get("tierId")
        if tier == "free-tier" and "cloudaicompanionProject" in body:
            raise GoogleError(400, "FAILED_PRECONDITION", "Precondition Failed")
        mode, onboarded = self._mode(account)
        if mode in ("onboarded", "standard-onboarded") or onboarded:
            return _lro("operations/x", account.project)
        tiers = {t["id"]: t for t in ONBOARD_TIERS[mode]}
        if tier not in tiers:
            raise invalid(f"Invalid tier id: {tier!r}.")
        response: dict[str, Any] = {}
        if tiers[tier]["userDefinedCloudaicompanionProject"]:
            project = body.get("cloudaicompanionProject")
            if project is not None and project != account.project:
                raise GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission")
            if project is not None:
                response = {"cloudaicompanionProject": {"id": project, "name": project}}
        else:
            response = {"cloudaicompanionProject": {"id": account.project,
                                                    "name": account.project}}  # fmt: skip
        name = "operations/onboard-" + secrets.token_hex(4)
        final = {"name": name, "done": True, "response": response}
        with self._lock:
            self._operations[name] = [self.onboard_pending, final, account.email, tier]
        return self._poll(name, account)

    def _poll(self, name: str, account: _Account) -> dict:
        with self._lock:
            op = self._operations.get(name)
            if op is None:
                return _lro(name, account.project)
            if op[0] > 0:
                op[0] -= 1
                return {"name": name, "done": False}
            del self._operations[name]
            if op[1]["response"]:
                self._onboarded[op[2]] = op[3]
            return op[1]

    def _generate(self, rec: Recorded, account: _Account) -> Answer:
        with self._lock:
            models, issued = set(self._models), set(self.issued_signatures)
        env = validate_generate(rec.body, account.project, models,
                                enforce_signatures=self.enforce_signatures,
                                strict_json_schema=self.strict_json_schema,
                                issued=issued)  # fmt: skip
        return self._answer(rec, env.get("request") or {}, env["model"], account.project)

    def _answer(
        self, rec: Recorded, req: dict, model: str, credential: str, *, bare: bool = False
    ) -> Answer:
        """Serve the next scripted (or the default) reply to a validated generate call, as Code
        Assist wrappers or, `bare`, as AI Studio's GenerateContentResponses."""
        reply = self._next_reply(credential)
        if isinstance(reply, Error):
            body = reply.body if isinstance(reply.body, dict) else reply.body.encode()
            return Answer(reply.status, body, dict(reply.headers or {}))
        if isinstance(reply, Stall) and reply.after_events is None:
            return Answer(stall=reply.seconds)
        stall = reply.seconds if isinstance(reply, Stall) else 0.0
        cut = reply.after_events if isinstance(reply, CutStream | Stall) else None
        if isinstance(reply, CutStream | Stall):
            reply = reply.reply
        events, whole, finish = plan(reply or default_reply(req), self._sign)
        usage = usage_for(req, whole)
        early = {k: v for k, v in usage.items() if k != "candidatesTokenCount"}
        early["totalTokenCount"] = usage["promptTokenCount"] + usage["thoughtsTokenCount"]
        trace = secrets.token_urlsafe(16) if bare else secrets.token_hex(8)

        def shape(parts: list[dict], usage: dict, finish: str | None) -> dict:
            if bare:
                return response_body(parts, model, usage, finish, trace)
            return wrapper(parts, model, usage, finish, trace)

        chunks = [
            shape(parts, usage if i == len(events) - 1 else early,
                  finish if i == len(events) - 1 else None)
            for i, parts in enumerate(events)
        ]  # fmt: skip
        method = (rec.rpc or "").removeprefix("ai_studio:")
        if method == "streamGenerateContent" and rec.query.get("alt") == "sse":
            return Answer(events=chunks, cut_after=cut, stall=stall)
        if cut is not None:
            return Answer(stall=stall) if stall else Answer(drop=True)
        if method == "streamGenerateContent":
            return Answer(body=chunks)
        single = shape(whole, usage, finish)
        if not bare:
            single["response"]["responseId"] = trace
        return Answer(body=single)

    # ---- AI Studio (docs/upstreams.md "AI Studio")
    def _ai_studio(self, rec: Recorded, content_type: str) -> Answer:
        model, method = self._ai_studio_target(rec)
        key = self._api_key(rec)
        with self._lock:
            models = set(self._models)
        if method == "models.list":
            return Answer(body=self._list_models(rec.query, sorted(models)))
        if method == "models.get":
            if model not in models:
                raise GoogleError(
                    404, "NOT_FOUND", f"Model is not found: models/{model} for api version v1beta"
                )
            return Answer(body=model_info(model))
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise invalid(f"Invalid Content-Type {content_type!r}: expected application/json.")
        if rec.body is None:
            raise invalid("Invalid JSON payload received. Unexpected token.")
        if not isinstance(rec.body, dict):
            raise invalid("Invalid JSON payload received. Root element must be a message.")
        if method == "countTokens":
            body = validate_ai_studio_count(
                rec.body, model, models, strict_json_schema=self.strict_json_schema
            )
            gen = body.get("generateContentRequest")
            total = count_request_tokens(gen) if gen is not None else count_tokens(
                body["contents"])  # fmt: skip
            return Answer(body={"totalTokens": total})
        req = validate_ai_studio_generate(
            rec.body,
            model,
            models,
            method=method,
            enforce_signatures=self.enforce_signatures,
            strict_json_schema=self.strict_json_schema,
            issued=set(self.issued_signatures),
        )
        return self._answer(rec, req, model, key, bare=True)

    def _ai_studio_target(self, rec: Recorded) -> tuple[str, str]:
        """(model, method) of an AI Studio path; records `rec.rpc`; unknown paths are a 404."""
        rest = rec.path.removeprefix(AI_STUDIO_PREFIX)
        model, _, method = rest.removeprefix("/").partition(":")
        if rest == "" and rec.method == "GET":
            method = "models.list"
        elif rest.startswith("/") and model and "/" not in model and not method:
            method = "models.get" if rec.method == "GET" else ""
        elif not (rest.startswith("/") and model and "/" not in model
                  and method in AI_STUDIO_RPCS and rec.method == "POST"):  # fmt: skip
            method = ""
        if not method:
            raise GoogleError(404, "NOT_FOUND", f"Method not found: {rec.method} {rec.path}")
        rec.rpc = "ai_studio:" + method
        return model, method

    def _api_key(self, rec: Recorded) -> str:
        key = rec.headers.get("x-goog-api-key") or rec.query.get("key")
        if not key:  # an OAuth Bearer token is no API key
            raise GoogleError(403, "PERMISSION_DENIED", KEY_MISSING)
        with self._lock:
            known = key in self._keys
        if not known:
            info = {
                "@type": RPC_TYPE + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            localized = {"@type": RPC_TYPE + "LocalizedMessage", "locale": "en-US",
                         "message": KEY_INVALID}  # fmt: skip
            raise GoogleError(400, "INVALID_ARGUMENT", KEY_INVALID, [info, localized])
        rec.credential = key
        return key

    @staticmethod
    def _list_models(query: dict[str, str], models: list[str]) -> dict[str, Any]:
        size_text, token = query.get("pageSize", ""), query.get("pageToken", "")
        if size_text and not size_text.isdigit():
            raise invalid(f"Invalid value at 'page_size' (TYPE_INT32), \"{size_text}\"")
        size = min(int(size_text or 0) or 50, 1000)
        if token and not (token.startswith("page-") and token[5:].isdigit()):
            raise invalid("Invalid page token.")
        start = int(token[5:]) if token else 0
        out: dict[str, Any] = {"models": [model_info(m) for m in models[start : start + size]]}
        if start + size < len(models):
            out["nextPageToken"] = f"page-{start + size}"
        return out

    def _token(self, rec: Recorded, raw: bytes, content_type: str) -> Answer:
        form: dict[str, str] = {}
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        rec.body = form
        with self._lock:
            self.token_requests.append(form)
        if self.token_delay:
            time.sleep(self.token_delay)
        grant = form.get("grant_type", "")
        if grant not in ("refresh_token", "authorization_code"):
            return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        if form.get("client_id") != CLIENT_ID:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if form.get("client_secret") != CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", "Unauthorized")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if "refresh_token" not in form:
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        with self._lock:  # check and spend atomically: of two racing rotations one wins
            account = self._refresh.get(form["refresh_token"])
            rotated = None
            if account is not None and self.rotate_refresh_tokens:
                del self._refresh[form["refresh_token"]]
                rotated = "1//rotated-" + secrets.token_urlsafe(24)
                self._refresh[rotated] = account
        if account is None:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        access = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access] = (account, False)
        body = {"access_token": access, "expires_in": 3599, "scope": SCOPES, "token_type": "Bearer"}
        if rotated is not None:
            body["refresh_token"] = rotated
        return Answer(body=body)

    def _exchange_code(self, form: dict[str, str]) -> Answer:
        with self._lock:
            entry = self._codes.pop(form.get("code", ""), None)
        if entry is None:
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        access, refresh, account, redirect, challenge = entry
        if redirect is not None and form.get("redirect_uri") != redirect:
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier:
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        with self._lock:
            self._tokens[access] = (account, False)
            self._refresh[refresh] = account
        claims = base64.urlsafe_b64encode(dumps({"email": account.email}).encode()).rstrip(b"=")
        return Answer(body={"access_token": access, "expires_in": 3599, "refresh_token": refresh,
                          "scope": SCOPES, "token_type": "Bearer",
                          "id_token": f"eyJhbGciOiJub25lIn0.{claims.decode()}."})  # fmt: skip


def _lro(name: str, project: str) -> dict:
    return {"name": name, "done": True,
            "response": {"cloudaicompanionProject": {"id": project, "name": project}}}  # fmt: skip


def _oauth_error(status: int, error: str, description: str) -> Answer:
    return Answer(status, {"error": error, "error_description": description})


# ---------------------------------------------------------------- HTTP


class _Handler(FakeHandler):
    def serve(
        self, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        rec = Recorded(self.command, path, query, headers)
        return self.fake.serve(rec, body, self.headers.get("Content-Type", ""))

    def encode_body(self, body: Any) -> tuple[bytes, str]:
        if isinstance(body, str):
            body = body.encode()
        if isinstance(body, bytes):
            html = body.lstrip().startswith(b"<")
            return body, "text/html; charset=UTF-8" if html else "text/plain"
        return dumps(body).encode(), "application/json; charset=UTF-8"

    def encode_event(self, event: dict) -> bytes:
        end = b"\r\n\r\n" if self.fake.crlf else b"\n\n"
        return b"data: " + dumps(event).encode() + end
