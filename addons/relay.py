"""The `/v1internal` relay for Gemini CLI (`CODE_ASSIST_ENDPOINT=http://127.0.0.1:8317`).

Gemini CLI then speaks Code Assist to us: set-up calls are answered as for an onboarded user whose
project is the serving account's, generation goes through the pool, everything else is forwarded
with a pool account's token (docs/configuration.md "Endpoints",
docs/upstreams.md "The /v1internal relay"). The CLI's own Google token is neither needed nor
forwarded. This module holds the relay's local answers and body rewrites.
"""

from __future__ import annotations

from typing import Any

GENERATION_METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})
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


def envelope_parts(body: Any) -> tuple[str, dict[str, Any]]:
    """(model, request) of a generate/countTokens envelope; ValueError naming what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    request = body.get("request")
    if not isinstance(request, dict):
        raise ValueError("request is required and must be an object")
    model = body.get("model") or request.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model is required")
    return model.removeprefix("models/"), request
