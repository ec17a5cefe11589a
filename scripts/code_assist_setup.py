"""Code Assist set-up after a Google login, as gemini-cli's `code_assist/setup.ts` does it
(docs/upstreams.md "Code Assist onboarding"): `loadCodeAssist`; with no current tier, `onboardUser`
with the default tier and poll the long-running operation until `done`; the project comes from the
user or the backend.

Decisions beyond gemini-cli:
- The operation poll is bounded (`POLL_TIMEOUT`); gemini-cli polls forever.
- An unfinished operation without a `name` is re-POSTed (CLIProxyAPI does that for every poll).
- A user who must name a project is told which projects the Resource Manager lists for them. That
  call goes to cloudresourcemanager.googleapis.com, or — when `endpoints.google-userinfo` points
  elsewhere (a mirror, a test fake) — to `/v1/projects` on that same origin. It is best effort:
  any failure just leaves the list out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cliproxy.addons.settings import Endpoints
from cliproxy.addons.settings import Settings
from cliproxy.cli.oauth import LoginError

METADATA = {
    "ideType": "IDE_UNSPECIFIED",
    "platform": "PLATFORM_UNSPECIFIED",
    "pluginType": "GEMINI",
}
FREE_TIER = "free-tier"
LEGACY_TIER = "legacy-tier"
STANDARD_TIER = "standard-tier"
# gemini-cli polls every 5 s; tests set these lower.
POLL_INTERVAL = 5.0
POLL_TIMEOUT = 300.0
USER_AGENT = "google-api-nodejs-client/9.15.1"  # what CLIProxyAPI sends; no requirement known
RESOURCE_MANAGER_PROJECTS = "https://cloudresourcemanager.googleapis.com/v1/projects"
MAX_LISTED_PROJECTS = 20


class ProjectRequired(LoginError):
    """The account has no Code Assist project of its own: the user must name one."""

    def __init__(self, message: str, projects: list[str]) -> None:
        super().__init__(message)
        self.projects = projects


@dataclass(frozen=True)
class SetupResult:
    project_id: str
    tier: str


def projects_url_for(settings: Settings) -> str:
    userinfo = settings.endpoints.google_userinfo
    if userinfo == Endpoints().google_userinfo:
        return RESOURCE_MANAGER_PROJECTS
    parts = urlsplit(userinfo)
    return f"{parts.scheme}://{parts.netloc}/v1/projects"


class CodeAssistSetup:
    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        access_token: str,
        *,
        poll_interval: float | None = None,
        poll_timeout: float | None = None,
        projects_url: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self.poll_interval = POLL_INTERVAL if poll_interval is None else poll_interval
        self.poll_timeout = POLL_TIMEOUT if poll_timeout is None else poll_timeout
        self.projects_url = projects_url
        self.sleep = sleep or time.sleep

    # ---- the flow of setup.ts
    def run(self, project_id: str | None = None) -> SetupResult:
        load = self.load(project_id)
        current = _tier_id(load.get("currentTier"))
        if current:
            tier = _tier_id(load.get("paidTier")) or current
            project = _project_of(load.get("cloudaicompanionProject")) or project_id
            if not project:
                self._project_required(load)
            return SetupResult(project, tier)

        tier = _default_tier(load)
        request: dict[str, Any] = {"tierId": tier, "metadata": dict(METADATA)}
        if tier != FREE_TIER and project_id:
            # gemini-cli sends no project on a free-tier onboarding ("Precondition Failed")
            request["cloudaicompanionProject"] = project_id
            request["metadata"]["duetProject"] = project_id
        operation = self.onboard(request)
        project = _project_of((operation.get("response") or {}).get("cloudaicompanionProject"))
        project = project or project_id
        if not project:
            self._project_required(load)
        return SetupResult(project, tier)

    def load(self, project_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": dict(METADATA)}
        if project_id:
            body["cloudaicompanionProject"] = project_id
            body["metadata"]["duetProject"] = project_id
        try:
            return self._call("POST", ":loadCodeAssist", "loadCodeAssist", json=body)
        except _RpcError as e:
            if "SECURITY_POLICY_VIOLATED" in e.reasons:
                # gemini-cli: VPC-SC blocks the check; such users are on the standard tier
                return {"currentTier": {"id": STANDARD_TIER}}
            raise LoginError(e.message) from None

    def onboard(self, request: dict[str, Any]) -> dict[str, Any]:
        """onboardUser, then the operation polled until done (bounded by poll_timeout)."""
        operation = self._rpc("onboardUser", request)
        started, waited = time.monotonic(), 0.0
        while not operation.get("done"):
            # slow answers count too, not only the waits between polls
            elapsed = max(waited, time.monotonic() - started)
            if elapsed + self.poll_interval > self.poll_timeout:
                raise LoginError(
                    f"Code Assist onboarding did not finish within {self.poll_timeout:g} s; "
                    "run the login again later"
                )
            self.sleep(self.poll_interval)
            waited += self.poll_interval
            name = operation.get("name")
            if isinstance(name, str) and name:
                operation = self._call("GET", f"/{name}", "onboarding status")
            else:
                operation = self._rpc("onboardUser", request)
        error = operation.get("error")
        if isinstance(error, dict):
            raise LoginError(f"Code Assist onboarding failed: {error.get('message') or error}")
        return operation

    # ---- failures
    def _project_required(self, load: dict[str, Any]) -> None:
        reasons = [
            str(t.get("reasonMessage") or t.get("reasonCode"))
            for t in load.get("ineligibleTiers") or []
            if isinstance(t, dict) and (t.get("reasonMessage") or t.get("reasonCode"))
        ]
        projects = self.list_projects()
        message = (
            "this Google account needs a Google Cloud project for Gemini Code Assist (Workspace "
            "or paid accounts): run the login again with --project-id PROJECT_ID"
        )
        if reasons:
            message += f" (Google says: {'; '.join(reasons)})"
        if projects:
            message += f"; your projects: {', '.join(projects)}"
        raise ProjectRequired(message, projects)

    def list_projects(self) -> list[str]:
        if not self.projects_url:
            return []
        try:
            resp = self.http.get(
                self.projects_url,
                params={"filter": "lifecycleState:ACTIVE", "pageSize": str(MAX_LISTED_PROJECTS)},
                headers={k: v for k, v in self.headers.items() if k != "Content-Type"},
                timeout=10.0,
            )
            items = resp.json().get("projects") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return []
        ids = [p["projectId"] for p in items or [] if isinstance(p, dict) and p.get("projectId")]
        return [str(i) for i in ids[:MAX_LISTED_PROJECTS]]

    # ---- HTTP
    def _rpc(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call("POST", f":{method}", method, json=body)
        except _RpcError as e:
            raise LoginError(e.message) from None

    def _call(self, verb: str, suffix: str, what: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base}/v1internal{suffix}"
        try:
            resp = self.http.request(verb, url, headers=self.headers, **kwargs)
        except httpx.HTTPError as e:
            raise LoginError(f"Code Assist {what}: cannot reach {self.base}: {e}") from None
        if resp.status_code >= 400:
            raise _RpcError.of(what, resp)
        return request_json_body(resp, f"Code Assist {what}")


class _RpcError(Exception):
    def __init__(self, message: str, reasons: set[str]) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = reasons

    @classmethod
    def of(cls, what: str, resp: httpx.Response) -> _RpcError:
        try:
            err = resp.json().get("error")
        except (ValueError, AttributeError):
            err = None
        err = err if isinstance(err, dict) else {}
        reasons = {
            str(d.get("reason"))
            for d in err.get("details") or []
            if isinstance(d, dict) and d.get("reason")
        }
        label = err.get("status") or ""
        text = err.get("message") or resp.reason_phrase
        return cls(f"Code Assist {what} failed: HTTP {resp.status_code} {label}: {text}", reasons)


def request_json_body(resp: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginError(f"{what}: the answer is not a JSON object")
    return body


def _tier_id(tier: Any) -> str:
    return str(tier.get("id") or "") if isinstance(tier, dict) else ""


def _project_of(value: Any) -> str:
    """`cloudaicompanionProject` is a string in loadCodeAssist, `{id, name}` in the operation."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _default_tier(load: dict[str, Any]) -> str:
    for tier in load.get("allowedTiers") or []:
        if isinstance(tier, dict) and tier.get("isDefault") and tier.get("id"):
            return str(tier["id"])
    return LEGACY_TIER
