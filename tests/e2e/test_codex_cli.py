"""Codex CLI 0.169.0 (`codex exec --json`) through the proxy's /v1/responses
(docs/upstreams.md "Codex CLI").

Codex sends developer messages, item ids, custom/namespace/tool_search/web_search tools and no
`instructions`; the strict fake Codex backend behind the proxy must still accept every request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Clients
from tests.e2e.conftest import Run
from tests.e2e.conftest import client_env
from tests.e2e.conftest import run_client
from tests.e2e.conftest import upstream_summary
from tests.fakes import codex as fake_codex
from tests.fakes.codex import FakeCodex
from tests.integration.conftest import Proxy

pytestmark = pytest.mark.e2e

FILE_TEXT = "hello from a file"
API_KEY = "sk-local-e2e"
CONFIG = """\
model = "gpt-5.5"
model_provider = "localproxy"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[model_providers.localproxy]
name = "Local proxy"
base_url = "{base_url}/v1"
env_key = "LOCALPROXY_API_KEY"
wire_api = "responses"
request_max_retries = 1
stream_max_retries = 1

[features]
plugins = false

[analytics]
enabled = false

[feedback]
enabled = false
"""


def codex_exec(clients: Clients, proxy: Proxy, prompt: str, home: Path, cwd: Path) -> Run:
    # docs/upstreams.md "Codex CLI": config in a throwaway CODEX_HOME, the key comes from env_key
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(CONFIG.format(base_url=proxy.base_url))
    env = client_env(home, CODEX_HOME=str(codex_home), LOCALPROXY_API_KEY=API_KEY)
    argv = [clients.bin("codex"), "exec", "--skip-git-repo-check", "--json", prompt]
    return run_client(argv, env, cwd)


def context(run: Run, proxy: Proxy, codex: FakeCodex) -> str:
    return (
        f"{run.report()}\n--- upstream ---\n{upstream_summary(codex=codex)}\n"
        f"--- proxy log ---\n{proxy.log()[-4000:]}"
    )


def items(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The completed items of one type, in order."""
    return [
        e["item"]
        for e in events
        if e.get("type") == "item.completed" and e.get("item", {}).get("type") == kind
    ]


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [e.get("type", "?") for e in events]


def test_plain_prompt(
    clients: Clients, proxy: Proxy, codex: FakeCodex, tmp_path: Path, workdir: Path
) -> None:
    run = codex_exec(clients, proxy, "say hi", tmp_path / "home", workdir)
    info = context(run, proxy, codex)
    events = run.jsonl()
    assert run.returncode == 0, info
    reqs = codex.responses_requests
    assert [r.status for r in reqs] == [200], info  # one request: no retry, no reconnect
    body = reqs[0].body
    assert body["model"] == "gpt-5.5" and body["stream"] is True, info
    messages = items(events, "agent_message")
    assert [m["text"] for m in messages] == [fake_codex.default_reply(body).text], info
    assert messages[0]["text"] == "Echo: say hi", info
    types = event_types(events)
    assert types[0] == "thread.started" and types[-1] == "turn.completed", info
    assert "turn.failed" not in types and not items(events, "error"), info
    assert events[-1]["usage"]["input_tokens"] > 0, info


def test_exec_command_round_trip(
    clients: Clients, proxy: Proxy, codex: FakeCodex, tmp_path: Path, workdir: Path
) -> None:
    (workdir / "hello.txt").write_text(FILE_TEXT + "\n")
    # with a reasoning item: its encrypted_content must come back verbatim in the next request
    call = fake_codex.Calls([("exec_command", {"cmd": "cat hello.txt"})], reasoning="Read it.")
    codex.enqueue(call)
    run = codex_exec(clients, proxy, "show hello.txt", tmp_path / "home", workdir)
    info = context(run, proxy, codex)
    events = run.jsonl()
    assert run.returncode == 0, info
    reqs = codex.responses_requests
    assert [r.status for r in reqs] == [200, 200], info
    commands = items(events, "command_execution")
    assert len(commands) == 1 and "cat hello.txt" in commands[0]["command"], info
    assert commands[0]["exit_code"] == 0, info
    assert FILE_TEXT in commands[0]["aggregated_output"], info
    assert event_types(events)[-1] == "turn.completed", info
    # the second upstream request answers the call with the command's output
    second = reqs[1].body["input"]
    calls = [i for i in second if i.get("type") == "function_call"]
    outputs = [i for i in second if i.get("type") == "function_call_output"]
    assert [c["name"] for c in calls] == ["exec_command"], info
    assert [o["call_id"] for o in outputs] == [calls[0]["call_id"]], info
    assert FILE_TEXT in fake_codex.output_text(outputs[0]["output"]), info
    assert second[-1] is outputs[0], info
    reasoning = [i for i in second if i.get("type") == "reasoning"]
    assert len(reasoning) == 1, info
    assert reasoning[0]["encrypted_content"] == codex.issued_reasoning[-1], info
    messages = items(events, "agent_message")
    assert [m["text"] for m in messages] == [fake_codex.default_reply(reqs[1].body).text], info
    assert FILE_TEXT in messages[0]["text"], info
