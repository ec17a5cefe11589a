"""The shared login machinery (scripts/oauth.py): PKCE, state, the loopback callback server
(state check, provider errors, timeout, port in use), browser opening, error texts, and the
scripted browser + config helpers the Gemini and Codex login tests use."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import socket
import threading
import webbrowser
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from cliproxy.addons.settings import Settings
from cliproxy.cli import cli
from cliproxy.cli import oauth
from cliproxy.cli.oauth import CallbackServer
from cliproxy.cli.oauth import LoginError

# ---------------------------------------------------------------- helpers for the login tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def unserved_port() -> Iterator[int]:
    """A loopback port held bound but never listening while the block runs: connecting to it is
    refused, so `cliproxy accounts` with a config naming it finds no running proxy (whatever
    listens on the default 8317) and reads auth-dir."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def write_config(tmp: Path, endpoints: dict[str, str], **extra: Any) -> Path:
    cfg = {"auth-dir": str(tmp / "auth"), "endpoints": endpoints, **extra}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class ScriptedBrowser:
    """Stands in for scripts.oauth.open_browser. For each authorization URL it calls
    `script(url)` (which asserts the query and registers a code with the fake provider) and,
    like the provider after consent, sends the browser to redirect_uri with what the script
    returned. Runs in a thread: the login waits on its callback meanwhile."""

    def __init__(self, script: Callable[[str], dict[str, str] | None]) -> None:
        self.script = script
        self.urls: list[str] = []
        self.pages: list[httpx.Response] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def __call__(self, url: str) -> bool:
        self.urls.append(url)
        thread = threading.Thread(target=self._follow, args=(url,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return True

    def _follow(self, url: str) -> None:
        try:
            answer = self.script(url)
            if answer is None:
                return  # the user never finishes signing in
            redirect = query_of(url)["redirect_uri"]
            self.pages.append(httpx.get(f"{redirect}?{urlencode(answer)}", timeout=10))
        except BaseException as e:  # surfaced by join()
            self.errors.append(e)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)
        if self.errors:
            raise self.errors[0]


class StdoutWatcher:
    """sys.stdout replacement that hands every printed http URL to `on_url` (--no-browser)."""

    def __init__(self, on_url: Callable[[str], bool]) -> None:
        self.on_url = on_url
        self.text = ""

    def write(self, data: str) -> int:
        self.text += data
        for url in re.findall(r"https?://\S+\?\S+", data):
            self.on_url(url)
        return len(data)

    def flush(self) -> None:
        pass


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- PKCE and state


def test_pkce_pair_is_s256_of_the_verifier() -> None:
    verifier, challenge = oauth.pkce_pair()
    assert len(verifier) == 86 and re.fullmatch(r"[A-Za-z0-9_-]+", verifier)  # 64 bytes, no pad
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    # RFC 7636 appendix B
    assert (
        oauth.code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert oauth.pkce_pair()[0] != verifier


def test_state_is_random_and_url_safe() -> None:
    states = {oauth.new_state() for _ in range(20)}
    assert len(states) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", s) for s in states)


# ---------------------------------------------------------------- callback server


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    with CallbackServer(free_port(), "/cb", "the-state", provider="Test") as s:
        yield s


def get(server: CallbackServer, path: str, **query: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.port}{path}?{urlencode(query)}", timeout=5)


def test_callback_with_code_and_state(server: CallbackServer) -> None:
    resp = get(server, "/cb", code="4/abc", state="the-state", scope="x")
    assert resp.status_code == 200
    assert "text/html" in resp.headers["content-type"]
    assert "authorization received" in resp.text and "close this tab" in resp.text
    assert server.wait(1) == "4/abc"
    # the login is decided: later requests change nothing
    again = get(server, "/cb", code="4/other", state="the-state")
    assert "already finished" in again.text
    assert server.wait(1) == "4/abc"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"code": "4/abc", "state": "forged"}, "state that does not belong to this login"),
        ({"code": "4/abc"}, "state that does not belong to this login"),
        ({"state": "the-state"}, "no authorization code"),
        (
            {"error": "access_denied", "state": "the-state"},
            "the sign-in was refused or cancelled in the browser",
        ),
        (
            {"error": "invalid_scope", "error_description": "bad", "state": "the-state"},
            "the provider answered invalid_scope: bad",
        ),
    ],
)
def test_callback_failures(server: CallbackServer, query: dict[str, str], message: str) -> None:
    resp = get(server, "/cb", **query)
    assert resp.status_code == 400
    assert "login failed" in resp.text
    with pytest.raises(LoginError, match=re.escape(message)):
        server.wait(1)


def test_other_paths_do_not_decide(server: CallbackServer) -> None:
    assert get(server, "/favicon.ico").status_code == 404
    with pytest.raises(LoginError, match=r"no answer from the browser within 0\.2 seconds"):
        server.wait(0.2)


def test_extra_route_ends_the_login() -> None:
    routes = {"/cancel": "the login was cancelled in the browser"}
    with CallbackServer(free_port(), "/cb", "s", provider="X", extra_routes=routes) as s:
        assert get(s, "/cancel").status_code == 200
        with pytest.raises(LoginError, match="cancelled in the browser"):
            s.wait(1)


def test_error_page_escapes_html() -> None:
    with CallbackServer(free_port(), "/cb", "s", provider="X") as s:
        resp = get(s, "/cb", state="s", error="<script>", error_description="<b>x</b>")
        assert "<script>" not in resp.text and "&lt;script&gt;" in resp.text


def test_listens_on_loopback_only(server: CallbackServer) -> None:
    assert server._server is not None
    assert server._server.server_address[0] == "127.0.0.1"


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LoginError) as info:
            CallbackServer(port, "/cb", "s", provider="X", port_hint="hint").start()
    assert str(info.value) == (
        f"port {port} on 127.0.0.1 is already in use (another login running?); free it or pass "
        "--callback-port with another port (hint)"
    )


def test_port_free_again_after_close() -> None:
    port = free_port()
    for _ in range(2):
        with CallbackServer(port, "/cb", "s", provider="X") as s:
            get(s, "/cb", state="s", code="c")
            assert s.wait(1) == "c"


def test_timeout_message_in_minutes() -> None:
    assert oauth._duration(300) == "5 minutes"
    assert oauth._duration(60) == "1 minute"
    assert oauth._duration(0.5) == "0.5 seconds"
    assert oauth.CALLBACK_TIMEOUT == 300


# ---------------------------------------------------------------- browser and announce


class _Console(webbrowser.GenericBrowser):
    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        raise AssertionError("a console browser must not be started")


class _Gui(webbrowser.BaseBrowser):
    def __init__(self) -> None:
        super().__init__("gui")
        self.opened: list[str] = []
        self.event = threading.Event()

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        self.event.set()
        return True


def test_open_browser_skips_console_browsers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webbrowser, "get", lambda: _Console("w3m"))
    assert oauth.open_browser("http://x") is False
    gui = _Gui()
    monkeypatch.setattr(webbrowser, "get", lambda: gui)
    assert oauth.open_browser("http://x/y") is True
    assert gui.event.wait(2) and gui.opened == ["http://x/y"]


def test_open_browser_without_any_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    def none() -> webbrowser.BaseBrowser:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", none)
    assert oauth.open_browser("http://x") is False


@pytest.mark.parametrize(
    ("no_browser", "opened", "first_line"),
    [
        (True, None, "Open this URL in a browser to sign in:"),
        (False, True, "Your browser has been opened to sign in. If it did not open, visit:"),
        (False, False, "No browser could be opened here; open this URL in a browser:"),
    ],
)
def test_announce_always_prints_the_url(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_browser: bool,
    opened: bool | None,
    first_line: str,
) -> None:
    calls: list[str] = []

    def opener(url: str) -> bool:
        calls.append(url)
        return bool(opened)

    monkeypatch.setattr(oauth, "open_browser", opener)
    oauth.announce("https://auth.example/x?a=1", no_browser=no_browser, port=8085)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == first_line
    assert "  https://auth.example/x?a=1" in out
    assert "ssh -L 8085:localhost:8085" in out[-1]
    assert calls == ([] if no_browser else ["https://auth.example/x?a=1"])


# ---------------------------------------------------------------- HTTP helpers and saving


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"error": "invalid_grant", "error_description": "Bad code"}, " invalid_grant: Bad code"),
        ({"error": "invalid_grant"}, " invalid_grant"),
        (
            {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}},
            " PERMISSION_DENIED: denied",
        ),
        ({"error": {"message": "m", "type": "t", "code": "token_expired"}}, " token_expired: m"),
        ({"detail": "x"}, ""),
        (None, ""),
    ],
)
def test_error_text(body: Any, text: str) -> None:
    assert oauth._error_text(body) == text


def test_request_json_unreachable() -> None:
    port = free_port()
    with httpx.Client() as client, pytest.raises(LoginError) as info:
        oauth.request_json(client, "POST", f"http://127.0.0.1:{port}/token", "the exchange")
    assert str(info.value).startswith(f"the exchange: cannot reach http://127.0.0.1:{port}:")


def test_http_client_with_socks_needs_the_extra() -> None:
    settings = Settings(proxy_url="socks5://127.0.0.1:1080")
    try:
        import socksio  # noqa: F401
    except ImportError:
        with pytest.raises(LoginError, match=r"pip install 'httpx\[socks\]'"):
            oauth.http_client(settings)
    else:
        oauth.http_client(settings).close()


@pytest.mark.parametrize(
    ("part", "safe"),
    [
        ("a.b+c@example.com", "a.b+c@example.com"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("proj/x y", "proj_x_y"),
        ("", "_"),
    ],
)
def test_safe_name(part: str, safe: str) -> None:
    assert oauth.safe_name(part) == safe


def test_save_auth_file_is_0600_and_reports_replacement(tmp_path: Path) -> None:
    settings = Settings(auth_dir=str(tmp_path / "auth"))
    path, replaced = oauth.save_auth_file(settings, "x.json", {"a": 1})
    assert not replaced and path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "auth").stat().st_mode & 0o777 == 0o700
    path, replaced = oauth.save_auth_file(settings, "x.json", {"a": 2})
    assert replaced and path.read_text() == '{\n  "a": 2\n}\n'
    assert sorted(p.name for p in (tmp_path / "auth").iterdir()) == ["x.json"]


# ---------------------------------------------------------------- seed spellings


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--login"], ["login", "gemini"]),
        (
            ["--login", "--project_id", "p", "--no-browser"],
            ["login", "gemini", "--project_id", "p", "--no-browser"],
        ),
        (["-login", "-project_id", "p"], ["login", "gemini", "--project_id", "p"]),
        (["--no-browser", "--codex-login"], ["login", "codex", "--no-browser"]),
        (["-codex-login", "-config=c.yaml"], ["login", "codex", "--config=c.yaml"]),
        (["accounts", "--config", "x"], ["accounts", "--config", "x"]),
        (["login", "gemini", "--login"], ["login", "gemini", "--login"]),
    ],
)
def test_seed_args(argv: list[str], expected: list[str]) -> None:
    assert cli.seed_args(argv) == expected


def test_both_seed_logins_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--login", "--codex-login"], capsys)
    assert code == 2 and "cannot be combined" in err


def test_bad_callback_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["login", "gemini", "--callback-port", "70000"])
    assert info.value.code == 2
    assert "not a TCP port: '70000'" in capsys.readouterr().err
