"""addons/startup.py: JSON error pages and config loading at start-up and while running.

json_error_response replaces mitmproxy's HTML error page (docs/mitmproxy.md "Error pages"): the
bytes must be a valid HTTP/1.1 response whose JSON body the openai, anthropic and google-genai SDKs
all turn into their own error with the message. configure() behaviour runs in mitmproxy's test
context: a bad config at start-up is fatal (start-up stops with one line), a bad config later keeps
the settings in force (docs/configuration.md "Keys").
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from cliproxy.addons import startup as startup_module
from cliproxy.addons.startup import PLACEHOLDER_TARGET
from cliproxy.addons.startup import Startup
from cliproxy.addons.startup import json_error_response
from cliproxy.addons.state import State
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from mitmproxy import options as mitm_options
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.test import taddons

# ---------------------------------------------------------------- the bytes


def parse_http1(raw: bytes) -> tuple[str, int, str, dict[str, str], bytes]:
    """(version, status, reason, lower-cased headers, body) of one HTTP/1.1 response."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "no end of headers"
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, code, reason = status_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        assert colon and name == name.strip(), line
        assert name.lower() not in headers, f"duplicate header {name}"
        headers[name.lower()] = value.strip()
    return version, int(code), reason, headers, body


ERROR_PAGES = [
    (400, "HTTP/1.1 request could not be parsed", "Bad Request", "INVALID_ARGUMENT"),
    (404, "", "Not Found", "INVALID_ARGUMENT"),
    (408, "request timed out", "Request Time-out", "INVALID_ARGUMENT"),
    (413, "body too large", "Payload Too Large", "INVALID_ARGUMENT"),
    (500, "internal", "Internal Server Error", "UNAVAILABLE"),
    (502, "Connection refused", "Bad Gateway", "UNAVAILABLE"),
    (503, "", "Service Unavailable", "UNAVAILABLE"),
    (504, "upstream timed out", "Gateway Time-out", "UNAVAILABLE"),
]


@pytest.mark.parametrize(("status", "message", "reason", "status_name"), ERROR_PAGES)
def test_json_error_response_is_valid_http1_with_a_json_body(
    status: int, message: str, reason: str, status_name: str
) -> None:
    version, code, got_reason, headers, body = parse_http1(json_error_response(status, message))
    assert (version, code, got_reason) == ("HTTP/1.1", status, reason)
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert "transfer-encoding" not in headers
    text = f"proxy error: {message}" if message else "proxy error"
    assert json.loads(body) == {
        "type": "error",  # Anthropic's shape…
        "error": {
            "type": "api_error",
            "message": text,  # …read by all three SDKs…
            "code": status,  # …and Google's code/status
            "status": status_name,
        },
    }


def test_json_error_response_is_not_html() -> None:
    raw = json_error_response(502, "<script>alert(1)</script>")
    _, _, _, headers, body = parse_http1(raw)
    assert b"<html" not in raw.lower()
    assert "text/html" not in headers["content-type"]
    assert json.loads(body)["error"]["message"] == "proxy error: <script>alert(1)</script>"


class OneShotServer:
    """A TCP server that answers every request with the same raw bytes, then closes."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._read_request(conn)
                self.requests += 1
                conn.sendall(self.raw)

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def error_page(request: pytest.FixtureRequest) -> Iterator[OneShotServer]:
    status, message = request.param
    server = OneShotServer(json_error_response(status, message))
    yield server
    server.close()


SDK_CASES = [(502, "Connection refused"), (400, "bad request line"), (504, "")]


@pytest.mark.parametrize("error_page", SDK_CASES, indirect=True)
def test_openai_sdk_reads_the_error_page(error_page: OneShotServer) -> None:
    client = openai.OpenAI(api_key="sk-test", base_url=error_page.url + "/v1", max_retries=0)
    status = int(json.loads(parse_http1(error_page.raw)[4])["error"]["code"])
    message = json.loads(parse_http1(error_page.raw)[4])["error"]["message"]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    err = caught.value
    assert err.status_code == status
    assert isinstance(err, openai.BadRequestError if status == 400 else openai.InternalServerError)
    assert message in str(err)
    assert err.type == "api_error"
    assert err.code == str(status)
    assert error_page.requests == 1


@pytest.mark.parametrize("error_page", SDK_CASES, indirect=True)
def test_anthropic_sdk_reads_the_error_page(error_page: OneShotServer) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=error_page.url, max_retries=0)
    body = json.loads(parse_http1(error_page.raw)[4])
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
    err = caught.value
    assert err.status_code == body["error"]["code"]
    assert err.api_message == body["error"]["message"]
    assert err.type == "api_error"


@pytest.mark.parametrize("error_page", SDK_CASES, indirect=True)
def test_google_genai_sdk_reads_the_error_page(error_page: OneShotServer) -> None:
    client = genai.Client(
        api_key="AIza-test",
        http_options=genai_types.HttpOptions(
            base_url=error_page.url,
            api_version="v1beta",
            retry_options=genai_types.HttpRetryOptions(attempts=1),
        ),
    )
    body = json.loads(parse_http1(error_page.raw)[4])
    with pytest.raises(genai_errors.APIError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    err = caught.value
    status = body["error"]["code"]
    assert isinstance(err, genai_errors.ClientError if status < 500 else genai_errors.ServerError)
    assert err.code == status
    assert err.status == body["error"]["status"]
    assert err.message == body["error"]["message"]


# ---------------------------------------------------------------- configure() in mitmproxy


class HostOptions:
    """The options mitmdump's own addons define (termlog, dumper, block, proxyserver), which a
    bare test context lacks."""

    def load(self, loader: Loader) -> None:
        loader.add_option("termlog_verbosity", str, "info", "Log verbosity.")
        loader.add_option("flow_detail", int, 1, "Flow detail.")
        loader.add_option("block_global", bool, True, "Block global.")
        loader.add_option("connection_strategy", str, "eager", "Connection strategy.")


class ErrorCheck:
    """Stands in for mitmproxy's errorcheck addon (found by name)."""

    name = "errorcheck"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # load() swaps mitmproxy's HTML error page globally: put it back after each test; never
    # read the repository's config.yaml or create ~/.cli-proxy-api
    monkeypatch.setattr(_http1, "make_error_response", _http1.make_error_response)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLIPROXY_CONFIG", raising=False)


def write_config(path: Path, text: str, auth: Path | None = None) -> Path:
    auth = auth or path.parent / "auth"
    path.write_text(f"auth-dir: {json.dumps(str(auth))}\n{text}")
    return path


def started(
    tmp_path: Path, text: str = "", *, options: mitm_options.Options | None = None
) -> tuple[Startup, Any]:
    """A Startup loaded and configured in a test context from config.yaml in tmp_path."""
    write_config(tmp_path / "config.yaml", text)
    startup = Startup(State())
    tctx = taddons.context(HostOptions(), startup, options=options)
    tctx.configure(startup)
    return startup, tctx


def test_load_installs_the_json_error_page(tmp_path: Path) -> None:
    started(tmp_path)
    assert _http1.make_error_response is json_error_response


def test_good_config_at_start_up(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "gemini-a.json").write_text(
        json.dumps({"type": "gemini", "project_id": "p", "token": {"access_token": "ya29.x"}})
    )
    startup, _ = started(tmp_path, "request-retry: 4\nport: 9123\n")
    assert startup.fatal is None
    assert startup.started is True
    state = startup.state
    assert (state.settings.request_retry, state.settings.port) == (4, 9123)
    assert state.config_path == Path("config.yaml")
    assert state.pool is not None
    assert [a.name for a in state.pool.accounts] == ["gemini-a.json"]


def test_quiet_logs_unless_debug(tmp_path: Path) -> None:
    _, tctx = started(tmp_path)
    assert (tctx.options.termlog_verbosity, tctx.options.flow_detail) == ("warn", 0)


def test_debug_keeps_mitmproxys_own_logs(tmp_path: Path) -> None:
    _, tctx = started(tmp_path, "debug: true\n")
    assert (tctx.options.termlog_verbosity, tctx.options.flow_detail) == ("info", 1)


def test_debug_toggled_by_a_reload(tmp_path: Path) -> None:
    startup, tctx = started(tmp_path)
    state = startup.state
    state.update(state.settings.model_copy(update={"debug": True}))
    assert (tctx.options.termlog_verbosity, tctx.options.flow_detail) == ("info", 1)
    state.update(state.settings.model_copy(update={"debug": False}))
    assert (tctx.options.termlog_verbosity, tctx.options.flow_detail) == ("warn", 0)


def test_command_line_log_options_win(tmp_path: Path) -> None:
    write_config(tmp_path / "config.yaml", "")
    startup = Startup(State())
    tctx = taddons.context(HostOptions(), startup)
    tctx.options.update(termlog_verbosity="debug")
    tctx.configure(startup)
    assert tctx.options.termlog_verbosity == "debug"
    assert tctx.options.flow_detail == 0


class WebOptions:
    """What mitmweb defines instead: a web_port, and no flow_detail."""

    def load(self, loader: Loader) -> None:
        loader.add_option("termlog_verbosity", str, "info", "Log verbosity.")
        loader.add_option("web_port", int, 8081, "Web UI port.")


def test_mitmweb_keeps_its_info_log_and_lacks_flow_detail(tmp_path: Path) -> None:
    # the info log carries the web UI's address with its token; there is no flow_detail
    write_config(tmp_path / "config.yaml", "")
    startup = Startup(State())
    tctx = taddons.context(WebOptions(), startup)
    tctx.configure(startup)
    assert startup.fatal is None
    assert startup.started is True
    assert tctx.options.termlog_verbosity == "info"
    assert "flow_detail" not in tctx.options


def test_missing_config_file_means_defaults(tmp_path: Path) -> None:
    startup = Startup(State())
    tctx = taddons.context(HostOptions(), startup)
    tctx.configure(startup)
    assert startup.fatal is None
    assert startup.state.settings.port == 8317
    assert startup.state.settings.auth_path == tmp_path / "home" / ".cli-proxy-api"
    assert startup.state.settings.auth_path.is_dir()  # created 0700 (docs/configuration.md "Keys")
    assert startup.state.settings.auth_path.stat().st_mode & 0o777 == 0o700


def test_config_named_by_the_option_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    via_env = write_config(tmp_path / "env.yaml", "request-retry: 7\n")
    monkeypatch.setenv("CLIPROXY_CONFIG", str(via_env))
    startup = Startup(State())
    tctx = taddons.context(HostOptions(), startup)
    tctx.configure(startup)
    assert startup.state.settings.request_retry == 7

    via_option = write_config(tmp_path / "opt.yaml", "request-retry: 8\n")
    other = Startup(State())
    tctx2 = taddons.context(HostOptions(), other)
    tctx2.options.update(cliproxy_config=str(via_option))  # wins over the environment
    assert other.state.settings.request_retry == 8
    assert other.state.config_path == via_option


BAD_AT_START = [
    ("unknown key", "request-retyr: 3\n", "request-retyr: unknown key"),
    ("wrong type", "port: http\n", "port"),
    ("port out of range", "port: 70000\n", "port"),
    ("not YAML", "port: [\n", "cannot be read as YAML"),
]


@pytest.mark.parametrize(
    ("text", "named"), [c[1:] for c in BAD_AT_START], ids=[c[0] for c in BAD_AT_START]
)
def test_bad_config_at_start_up_is_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, named: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="cliproxy.addons.startup"):
        startup, _ = started(tmp_path, text)
    assert startup.fatal is not None
    assert named in startup.fatal
    assert "config.yaml" in startup.fatal
    assert "\n" not in startup.fatal  # one clear line
    assert startup.started is False
    assert startup.state.pool is None  # nothing was set up from a bad file
    assert startup.fatal in caplog.text


def test_bad_config_later_keeps_the_old_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    startup, tctx = started(tmp_path, "request-retry: 4\n")
    settings, pool = startup.state.settings, startup.state.pool
    bad = tmp_path / "bad.yaml"
    bad.write_text("request-retry: lots\n")
    with caplog.at_level(logging.ERROR, logger="cliproxy.addons.startup"):
        tctx.options.update(cliproxy_config=str(bad))  # `set cliproxy_config=…` while running
    assert startup.fatal is None  # never fatal once running
    assert startup.state.settings is settings
    assert startup.state.pool is pool
    assert "request-retry" in caplog.text
    assert "the previous config stays in force" in caplog.text


def test_good_config_later_is_a_reload_with_state_kept(tmp_path: Path) -> None:
    startup, tctx = started(tmp_path, "request-retry: 4\n")
    pool = startup.state.pool
    new = write_config(tmp_path / "new.yaml", "request-retry: 6\n")
    tctx.options.update(cliproxy_config=str(new))
    assert startup.state.settings.request_retry == 6
    assert startup.state.config_path == new  # the watcher follows the new file
    assert startup.state.pool is pool  # same auth-dir: accounts keep their state


def test_other_option_changes_do_not_reread_the_config(tmp_path: Path) -> None:
    startup, tctx = started(tmp_path, "request-retry: 4\n")
    write_config(tmp_path / "config.yaml", "request-retry: 9\n")
    tctx.options.update(flow_detail=3)
    assert startup.state.settings.request_retry == 4  # the file watcher's job, not configure's


class Script:
    """Holds addons as mitmproxy's script loader does (`-s addons/cliproxy.py`): registered
    while the default addons, errorcheck among them, are already in the chain."""

    def __init__(self, *addons: Any) -> None:
        self.addons = list(addons)


def load_as_script(tctx: Any, *addons: Any) -> None:
    script = Script(*addons)
    tctx.master.addons.register(script)
    tctx.master.addons.chain.append(script)


@pytest.mark.parametrize(("mode", "kept"), [(None, False), (["regular@8080"], True)])
def test_load_drops_errorcheck_only_while_the_default_mode_is_pending(
    tmp_path: Path, mode: list[str] | None, kept: bool
) -> None:
    # a busy :8080 (the default server, replaced in running()) must not abort start-up; an
    # explicit --mode is the user's own and its errors stay fatal
    write_config(tmp_path / "config.yaml", "")
    opts = mitm_options.Options(**({"mode": mode} if mode else {}))
    tctx = taddons.context(HostOptions(), ErrorCheck(), options=opts)
    startup = Startup(State())
    load_as_script(tctx, startup)
    assert (tctx.master.addons.get("errorcheck") is not None) is kept
    tctx.options.update(cliproxy_config="config.yaml")
    assert startup.started is True


# ---------------------------------------------------------------- running()


async def test_running_with_a_fatal_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path / "config.yaml", "bogus: 1\n")
    startup = Startup(State())
    with taddons.context(HostOptions(), startup) as tctx:
        tctx.configure(startup)
        assert startup.fatal == "config.yaml: bogus: unknown key"
        with pytest.raises(SystemExit) as caught:
            await startup.running()
    assert caught.value.code == 2
    assert capsys.readouterr().err == "cliproxy: config.yaml: bogus: unknown key\n"


@pytest.mark.parametrize(
    ("text", "mode", "block_global"),
    [
        ("port: 9123\n", f"{PLACEHOLDER_TARGET}@9123", True),
        ('host: "127.0.0.1"\nport: 9124\n', f"{PLACEHOLDER_TARGET}@127.0.0.1:9124", True),
        ("api-keys: [sk-1]\n", f"{PLACEHOLDER_TARGET}@8317", False),  # remote key holders
    ],
)
async def test_running_serves_reverse_mode_on_the_configured_port(
    tmp_path: Path, text: str, mode: str, block_global: bool
) -> None:
    write_config(tmp_path / "config.yaml", text)
    startup = Startup(State())
    with taddons.context(HostOptions(), startup) as tctx:
        tctx.configure(startup)
        await startup.running()
        try:
            assert tctx.options.mode == [mode]
            assert tctx.options.connection_strategy == "lazy"
            assert tctx.options.block_global is block_global
        finally:
            await startup.done()


async def test_running_keeps_an_explicit_mode(tmp_path: Path) -> None:
    write_config(tmp_path / "config.yaml", "port: 9125\n")
    startup = Startup(State())
    opts = mitm_options.Options(mode=["regular@8081"])
    with taddons.context(HostOptions(), startup, options=opts) as tctx:
        tctx.configure(startup)
        await startup.running()
        try:
            assert tctx.options.mode == ["regular@8081"]  # -p / --mode on the command line win
        finally:
            await startup.done()


def test_placeholder_target_is_never_a_real_upstream() -> None:
    assert startup_module.PLACEHOLDER_TARGET == "reverse:http://127.0.0.1:9"
