"""The `/v1internal` relay for Gemini CLI (`CODE_ASSIST_ENDPOINT=http://127.0.0.1:8317`).

Gemini CLI then speaks Code Assist to us: set-up calls are answered as for an onboarded user whose
project is the serving account's, everything else but generation is forwarded with a pool
account's token (docs/upstreams.md, "The relay"). Generation (generateContent,
streamGenerateContent, countTokens) is the `code-assist` client dialect and goes through the
gateway's forward path like any other. The CLI's own Google token is neither needed nor forwarded.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from cliproxy.addons.accounts.gemini import GeminiAccount
from cliproxy.addons.accounts.pool import RefreshError
from cliproxy.addons.local import LocalAnswer
from cliproxy.addons.local import error_response
from cliproxy.addons.local import json_body
from cliproxy.addons.local import json_response
from cliproxy.addons.local import local_answers
from cliproxy.addons.retarget import retarget
from cliproxy.addons.routing import route_of
from cliproxy.addons.state import State
from cliproxy.addons.streamer import PlainCall
from cliproxy.addons.streamer import Streamer
from cliproxy.addons.upstreams import code_assist
from cliproxy.addons.webview import ATTEMPT_ACCOUNT
from mitmproxy import http

SETUP_METHODS = frozenset({"loadCodeAssist", "onboardUser"})
# What to answer when no Code Assist account exists to forward to (only AI Studio keys):
# the minimal bodies Gemini CLI accepts (docs/upstreams.md "Gemini CLI").
LOCAL_FALLBACKS: dict[str, Any] = {
    "retrieveUserQuota": {"buckets": []},
    "listExperiments": {"experimentIds": [], "flags": []},
    "recordCodeAssistMetrics": {},
}
FREE_TIER = {
    "id": "free-tier",
    "name": "Gemini Code Assist for individuals",
    "description": "Served through cliproxy's account pool",
    "userDefinedCloudaicompanionProject": False,
    "isDefault": True,
}
OPERATION_NAME = "operations/cliproxy-onboarded"
FORWARDED = "cliproxy_relay_forwarded"  # flow.metadata: the relay sent this flow upstream


def load_code_assist(project: str) -> dict[str, Any]:
    """An onboarded user: with `currentTier` Gemini CLI skips onboarding."""
    return {
        "currentTier": FREE_TIER,
        "allowedTiers": [FREE_TIER],
        "cloudaicompanionProject": project,
    }


def onboarded_operation(project: str) -> dict[str, Any]:
    return {
        "name": OPERATION_NAME,
        "done": True,
        "response": {"cloudaicompanionProject": {"id": project, "name": project}},
    }


def rewrite_project(body: Any, project: str) -> Any:
    """The CLI sends the project it was told earlier; the forwarding account's project
    replaces it wherever Code Assist bodies name one."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for key in ("project", "cloudaicompanionProject"):
        if isinstance(out.get(key), str):
            out[key] = project
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "duetProject" in metadata:
        out["metadata"] = {**metadata, "duetProject": project}
    return out


class Relay:
    def __init__(self, state: State, streamer: Streamer) -> None:
        self.state = state
        self.streamer = streamer

    @local_answers
    async def request(self, flow: http.HTTPFlow) -> None:
        route = route_of(flow)
        if route is None or route.action not in ("relay", "relay_operation"):
            return  # generation is the gateway's
        rpc = route.rpc or ""
        if route.action == "relay_operation" or rpc in SETUP_METHODS:
            project = self._project()
            if project is None:
                raise LocalAnswer(error_response("google", 503, self.state.no_account("gemini")))
            if rpc == "loadCodeAssist":
                raise LocalAnswer(json_response(200, load_code_assist(project)))
            raise LocalAnswer(json_response(200, onboarded_operation(project)))
        await self._forward(flow, rpc)

    def _project(self) -> str | None:
        """The project Gemini CLI is told it has: the first Code Assist account's (requests are
        re-addressed to whichever account serves them anyway)."""
        pool = self.state.pool
        accounts = pool.usable("gemini") if pool is not None else []
        for account in accounts:
            if isinstance(account, GeminiAccount) and account.project_id:
                return account.project_id
        return "cliproxy" if accounts else None

    async def _forward(self, flow: http.HTTPFlow, rpc: str) -> None:
        """Any other method (quota, experiments, metrics, settings): forwarded with a Code
        Assist account's token and project; answered locally when there is none."""
        pool = self.state.pool
        usable = pool.usable("gemini") if pool is not None else []
        account = next((a for a in usable if isinstance(a, GeminiAccount)), None)
        if account is not None and pool is not None:
            try:
                await pool.ensure_fresh(account)
            except RefreshError:
                account = None
        if account is None:
            raise LocalAnswer(json_response(200, LOCAL_FALLBACKS.get(rpc, {})))
        req = flow.request
        raw = req.get_content(strict=False) or b""
        # the client's own credentials (`key=`) never travel upstream with a pool token
        query = urlencode([(k, v) for k, v in req.query.items(multi=True) if k.lower() != "key"])
        url = code_assist.method_url(self.state.settings.endpoints.gemini_cli, rpc)
        content = raw
        if raw.strip():  # Code Assist methods take JSON: checked like every client body
            rewritten = rewrite_project(json_body(req), account.project_id)
            content = json.dumps(rewritten, separators=(",", ":")).encode()
        url += f"?{query}" if query else ""
        headers = code_assist.headers(account.access_token, False)
        flow.comment = f"relay {rpc} → code_assist · {account.label}"
        flow.metadata[FORWARDED] = True
        flow.metadata[ATTEMPT_ACCOUNT] = account  # Replay in mitmweb: a fresh token of this one
        if self.state.settings.proxy_url:  # every upstream byte through it: httpx's job
            call = PlainCall(req.method, url, headers, content, "Code Assist")
            self.streamer.take_call(flow, call)
            return
        retarget(flow, url, headers, content, method=req.method)

    def response(self, flow: http.HTTPFlow) -> None:
        """Code Assist answers JSON; an HTML page or a redirect (a captive portal, a login
        wall, a misconfigured endpoint) is no answer Gemini CLI can use: JSON 502 instead."""
        if not flow.metadata.get(FORWARDED) or flow.response is None:
            return
        resp = flow.response
        ctype = resp.headers.get("content-type", "").lower()
        if 300 <= resp.status_code < 400 or (resp.content and "json" not in ctype):
            what = f"a redirect ({resp.status_code})" if resp.status_code < 400 else "no JSON"
            flow.response = error_response(
                "google", 502, f"Code Assist answered {what} to {flow.request.path.split('?')[0]}"
            )
