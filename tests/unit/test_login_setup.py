"""CodeAssistSetup (gemini-cli's setup.ts, docs/upstreams.md "Code Assist onboarding") against
scripted answers: tier and project choice, onboarding bodies, the operation poll, and the failures a
user must understand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cliproxy.addons.settings import Settings
from cliproxy.cli.code_assist_setup import METADATA
from cliproxy.cli.code_assist_setup import RESOURCE_MANAGER_PROJECTS
from cliproxy.cli.code_assist_setup import CodeAssistSetup
from cliproxy.cli.code_assist_setup import ProjectRequired
from cliproxy.cli.code_assist_setup import SetupResult
from cliproxy.cli.code_assist_setup import projects_url_for
from cliproxy.cli.oauth import LoginError

BASE = "https://ca.test"
FREE = {"id": "free-tier", "isDefault": True, "userDefinedCloudaicompanionProject": False}
STANDARD = {"id": "standard-tier", "userDefinedCloudaicompanionProject": True}
DONE = {"name": "operations/o1", "done": True,
        "response": {"cloudaicompanionProject": {"id": "p-free", "name": "p-free"}}}  # fmt: skip


def run(
    answers: list[tuple[str, int, Any]], project: str | None = None,
    projects_url: str | None = None,
) -> tuple[SetupResult | BaseException, list[tuple[str, Any]]]:  # fmt: skip
    """Run the set-up against `answers` (expected "METHOD path", status, body), in order."""
    queue: Iterator[tuple[str, int, Any]] = iter(answers)
    seen: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        call = f"{request.method} {request.url.path}"
        body = json.loads(request.content) if request.content else None
        seen.append((call, body))
        expected, status, answer = next(queue)
        assert call == expected
        assert request.headers["authorization"] == "Bearer tok"
        return httpx.Response(status, json=answer)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        setup = CodeAssistSetup(http, BASE, "tok", poll_interval=0, poll_timeout=5,
                                projects_url=projects_url)  # fmt: skip
        try:
            result: SetupResult | BaseException = setup.run(project)
        except LoginError as e:
            result = e
    assert next(queue, None) is None, "not every scripted answer was asked for"
    return result, seen


LOAD = "POST /v1internal:loadCodeAssist"
ONBOARD = "POST /v1internal:onboardUser"


@pytest.mark.parametrize(("answers", "project", "result"), [
    # current tier: the backend's project; paidTier wins over currentTier
    ([(LOAD, 200, {"currentTier": {"id": "free-tier"}, "cloudaicompanionProject": "p1"})], None,
     SetupResult("p1", "free-tier")),
    ([(LOAD, 200, {"currentTier": {"id": "standard-tier"}, "paidTier": {"id": "g1-pro-tier"},
                   "cloudaicompanionProject": {"id": "p2"}})], None,
     SetupResult("p2", "g1-pro-tier")),
    # current tier without a project: the user's
    ([(LOAD, 200, {"currentTier": {"id": "standard-tier"}})], "mine-1",
     SetupResult("mine-1", "standard-tier")),
    # VPC-SC blocks loadCodeAssist: treated as the standard tier
    ([(LOAD, 403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "vpc",
                             "details": [{"reason": "SECURITY_POLICY_VIOLATED"}]}})], "mine-2",
     SetupResult("mine-2", "standard-tier")),
    # onboarding: done at once
    ([(LOAD, 200, {"allowedTiers": [FREE, STANDARD]}), (ONBOARD, 200, DONE)], None,
     SetupResult("p-free", "free-tier")),
    # onboarding without a name to poll: onboardUser again (CLIProxyAPI)
    ([(LOAD, 200, {"allowedTiers": [FREE]}), (ONBOARD, 200, {"done": False}),
      (ONBOARD, 200, DONE)], None, SetupResult("p-free", "free-tier")),
    # onboarding polled by name
    ([(LOAD, 200, {"allowedTiers": [FREE]}), (ONBOARD, 200, {"name": "operations/o1"}),
      ("GET /v1internal/operations/o1", 200, {"name": "operations/o1", "done": False}),
      ("GET /v1internal/operations/o1", 200, DONE)], None, SetupResult("p-free", "free-tier")),
    # no default tier: legacy-tier; the operation names no project: the user's
    ([(LOAD, 200, {"allowedTiers": [STANDARD]}), (ONBOARD, 200, {"done": True, "response": {}})],
     "mine-3", SetupResult("mine-3", "legacy-tier")),
])  # fmt: skip
def test_setup(answers: list[tuple[str, int, Any]], project: str | None, result: Any) -> None:
    assert run(answers, project)[0] == result


def test_bodies_for_free_and_standard_tiers() -> None:
    _, seen = run([(LOAD, 200, {"allowedTiers": [FREE]}), (ONBOARD, 200, DONE)], "given-1")
    with_project = {**METADATA, "duetProject": "given-1"}
    assert seen == [
        (LOAD, {"cloudaicompanionProject": "given-1", "metadata": with_project}),
        (ONBOARD, {"tierId": "free-tier", "metadata": METADATA}),  # never a project on free
    ]
    standard = {**STANDARD, "isDefault": True}
    _, seen = run([(LOAD, 200, {"allowedTiers": [standard]}), (ONBOARD, 200, DONE)], "given-1")
    assert seen[1] == (ONBOARD, {"tierId": "standard-tier", "cloudaicompanionProject": "given-1",
                                 "metadata": with_project})  # fmt: skip


@pytest.mark.parametrize(("answers", "message"), [
    ([(LOAD, 403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "nope"}})],
     "Code Assist loadCodeAssist failed: HTTP 403 PERMISSION_DENIED: nope"),
    ([(LOAD, 200, {"allowedTiers": [FREE]}),
      (ONBOARD, 200, {"done": True, "error": {"code": 9, "message": "region not supported"}})],
     "Code Assist onboarding failed: region not supported"),
    ([(LOAD, 200, {"currentTier": {"id": "standard-tier"},
                   "ineligibleTiers": [{"reasonCode": "RESTRICTED_AGE",
                                        "reasonMessage": "You must be 18"}]})],
     "run the login again with --project-id PROJECT_ID (Google says: You must be 18)"),
    ([(LOAD, 200, ["not", "an", "object"])],
     "Code Assist loadCodeAssist: the answer is not a JSON object"),
])  # fmt: skip
def test_failures(answers: list[tuple[str, int, Any]], message: str) -> None:
    error = run(answers)[0]
    assert isinstance(error, LoginError)
    assert message in str(error)


def test_project_required_lists_projects() -> None:
    answers = [(LOAD, 200, {"currentTier": {"id": "standard-tier"}}),
               ("GET /v1/projects", 200, {"projects": [{"projectId": "a-1"}, {"name": "x"},
                                                       {"projectId": "b-2"}]})]  # fmt: skip
    error, _ = run(answers, projects_url="https://crm.test/v1/projects")
    assert isinstance(error, ProjectRequired) and error.projects == ["a-1", "b-2"]
    assert str(error).endswith("; your projects: a-1, b-2")


def test_project_list_failure_is_not_fatal() -> None:
    answers = [(LOAD, 200, {"currentTier": {"id": "standard-tier"}}),
               ("GET /v1/projects", 403, {"error": {"code": 403}})]  # fmt: skip
    error, _ = run(answers, projects_url="https://crm.test/v1/projects")
    assert isinstance(error, ProjectRequired) and error.projects == []
    assert "your projects" not in str(error)


def test_poll_is_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("loadCodeAssist"):
            return httpx.Response(200, json={"allowedTiers": [FREE]})
        return httpx.Response(200, json={"name": "operations/slow", "done": False})

    slept: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        setup = CodeAssistSetup(http, BASE, "tok", poll_interval=5, poll_timeout=12,
                                sleep=slept.append)  # fmt: skip
        with pytest.raises(LoginError, match="did not finish within 12 s"):
            setup.run()
    assert slept == [5, 5]  # a third wait would pass the bound


def test_projects_url() -> None:
    assert projects_url_for(Settings()) == RESOURCE_MANAGER_PROJECTS
    mirror = Settings.model_validate(
        {"endpoints": {"google-userinfo": "http://127.0.0.1:9/oauth2/v1/userinfo"}}
    )
    assert projects_url_for(mirror) == "http://127.0.0.1:9/v1/projects"
