"""What the browser logins share (docs/upstreams.md "Google OAuth", "OpenAI OAuth"): PKCE and
`state`, the loopback callback server, opening the browser, the HTTP client, and saving the auth
file.

The callback server listens on 127.0.0.1 only (in the Docker image: on every interface of the
container, `CLIPROXY_CALLBACK_HOST=0.0.0.0`, so the published port reaches it) and answers one
authorization: the first request on the callback path decides (a code with the right `state`, a
provider error, or a wrong `state`), every later one gets a "this login has finished" page.
Nothing is written to disk before the whole login has succeeded, so Ctrl-C or any failure leaves
no partial file.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import html
import os
import re
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx
from cliproxy.addons.accounts.authfile import AuthFileError
from cliproxy.addons.accounts.authfile import read_auth_file
from cliproxy.addons.accounts.authfile import write_auth_file
from cliproxy.addons.settings import Settings

# How long a login waits for the browser (tests set it lower).
CALLBACK_TIMEOUT = 300.0
# Browsers that would take over this terminal (webbrowser falls back to them without a display).
CONSOLE_BROWSERS = frozenset({"www-browser", "links", "links2", "elinks", "lynx", "w3m"})


class LoginError(Exception):
    """A login that cannot go on; str() is one line for the user and never contains a token."""


# ---------------------------------------------------------------- PKCE and state


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """S256: base64url-no-pad(SHA-256(verifier)) (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_pair(nbytes: int = 64) -> tuple[str, str]:
    """(verifier, challenge); Codex uses 64 random bytes, i.e. an 86-character verifier."""
    verifier = b64url(secrets.token_bytes(nbytes))
    return verifier, code_challenge(verifier)


def new_state() -> str:
    return b64url(secrets.token_bytes(32))


# ---------------------------------------------------------------- callback server

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}
h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


def page(title: str, message: str) -> bytes:
    return PAGE.format(title=html.escape(title), message=html.escape(message)).encode("utf-8")


@dataclass
class _Outcome:
    code: str | None = None
    error: str | None = None


ErrorDescriber = Callable[[str, str], str]


def describe_oauth_error(error: str, description: str) -> str:
    """The default wording of a `?error=` redirect."""
    if error == "access_denied":
        return "the sign-in was refused or cancelled in the browser" + (
            f" ({description})" if description else ""
        )
    return f"the provider answered {error}" + (f": {description}" if description else "")


class CallbackServer:
    """The loopback HTTP server the provider redirects the browser to."""

    def __init__(
        self,
        port: int,
        path: str,
        state: str,
        *,
        provider: str,
        describe_error: ErrorDescriber = describe_oauth_error,
        extra_routes: dict[str, str] | None = None,
        port_hint: str = "",
    ) -> None:
        self.requested_port = port
        self.path = path
        self.state = state
        self.provider = provider
        self.describe_error = describe_error
        # other paths that end the login with an error (Codex's /cancel)
        self.extra_routes = extra_routes or {}
        self.port_hint = f" ({port_hint})" if port_hint else ""
        self._outcome = _Outcome()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def start(self) -> CallbackServer:
        host = os.environ.get("CLIPROXY_CALLBACK_HOST") or "127.0.0.1"
        try:
            server = _Server((host, self.requested_port), _CallbackHandler)
        except OSError as e:
            if e.errno == errno.EACCES:
                raise LoginError(
                    f"not allowed to listen on port {self.requested_port}; pass --callback-port "
                    f"with another port{self.port_hint}"
                ) from None
            if e.errno == errno.EADDRINUSE:
                raise LoginError(
                    f"port {self.requested_port} on {host} is already in use (another login "
                    f"running?); free it or pass --callback-port with another port{self.port_hint}"
                ) from None
            raise LoginError(
                f"cannot listen on {host}:{self.requested_port}: {e.strerror or e}"
            ) from None
        server.callback = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="oauth-callback", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "callback server not started"
        return int(self._server.server_address[1])

    # ---- waiting
    def wait(self, timeout: float | None = None) -> str:
        """The authorization code, or LoginError (timeout, wrong state, provider error).

        Waits in short slices so Ctrl-C (KeyboardInterrupt) reaches the main thread at once.
        """
        limit = CALLBACK_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self._done.wait(max(0.0, min(0.2, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise LoginError(
                    f"no answer from the browser within {_duration(limit)}; run the login again "
                    "(with --no-browser, open the printed URL yourself)"
                )
        outcome = self._outcome
        if outcome.error is not None or outcome.code is None:
            raise LoginError(outcome.error or "the callback carried no authorization code")
        return outcome.code

    # ---- called from handler threads
    def decide(self, query: dict[str, str], path: str) -> tuple[int, bytes]:
        """(status, page) for one request; the first decisive one ends the login."""
        if self._done.is_set():
            return 200, page("Login finished", "This login has already finished; close this tab.")
        if path in self.extra_routes:
            return self._finish(None, self.extra_routes[path])
        if path != self.path:
            return 404, page("Not found", "This is the login callback of cliproxy.")
        if not hmac.compare_digest(query.get("state", ""), self.state):
            return self._finish(
                None,
                "the browser came back with a state that does not belong to this login (an old "
                "tab or a forged request); nothing was saved, run the login again",
                status=400,
            )
        if "error" in query:
            message = self.describe_error(query["error"], query.get("error_description", ""))
            return self._finish(None, message, status=400)
        code = query.get("code", "")
        if not code:
            return self._finish(None, "the callback carried no authorization code", status=400)
        return self._finish(code, None)

    def _finish(self, code: str | None, error: str | None, status: int = 200) -> tuple[int, bytes]:
        with self._lock:
            if not self._done.is_set():
                self._outcome = _Outcome(code, error)
                self._done.set()
        if error is not None:
            return status, page(f"{self.provider} login failed", error[0].upper() + error[1:] + ".")
        return status, page(
            f"{self.provider} login: authorization received",
            "You can close this tab and return to the terminal, where cliproxy finishes "
            "setting up the account.",
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # POSIX SO_REUSEADDR only skips TIME_WAIT (a live listener still blocks the bind); on Windows
    # it would let us steal a port another program listens on.
    allow_reuse_address = os.name != "nt"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser that hangs up is no reason to print a traceback in the user's terminal


class _CallbackHandler(BaseHTTPRequestHandler):
    server_version = "cliproxy-login"

    def log_message(self, format: str, *args: Any) -> None:  # the URL carries the code: no logs
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        callback: CallbackServer = self.server.callback  # type: ignore[attr-defined]
        status, body = callback.decide(query, url.path)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the browser went away; the outcome is recorded anyway
            pass
        self.close_connection = True


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"


# ---------------------------------------------------------------- browser


def open_browser(url: str) -> bool:
    """Try to open `url` in a graphical browser without blocking; False when there is none."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    name = os.path.basename(str(getattr(browser, "name", "")))
    if name in CONSOLE_BROWSERS:
        return False
    # some launchers wait for the browser to exit: never let them hold up the login
    threading.Thread(target=_open_quietly, args=(browser, url), daemon=True).start()
    return True


def _open_quietly(browser: webbrowser.BaseBrowser, url: str) -> None:
    with contextlib.suppress(Exception):  # the URL is printed anyway
        browser.open(url)


def announce(url: str, *, no_browser: bool, port: int) -> None:
    """Show the authorization URL; open a browser unless --no-browser."""
    if no_browser:
        print("Open this URL in a browser to sign in:", flush=True)
    elif open_browser(url):  # a module global: tests replace it
        print("Your browser has been opened to sign in. If it did not open, visit:", flush=True)
    else:
        print("No browser could be opened here; open this URL in a browser:", flush=True)
    print(f"\n  {url}\n", flush=True)
    print(
        f"Waiting for the browser to come back to http://localhost:{port}/ ... (signing in on "
        f"another machine? forward the port first: ssh -L {port}:localhost:{port} THIS_HOST)",
        flush=True,
    )


# ---------------------------------------------------------------- HTTP


def http_client(settings: Settings) -> httpx.Client:
    """httpx through `proxy-url` like every upstream call (docs/upstreams.md "Pitfalls"), no env
    proxies."""
    try:
        return httpx.Client(
            proxy=settings.proxy_url or None,
            timeout=httpx.Timeout(30.0, connect=10.0),
            trust_env=False,
        )
    except ImportError:
        raise LoginError(
            "proxy-url is a SOCKS proxy, which needs httpx's SOCKS support: "
            "pip install 'httpx[socks]'"
        ) from None


def request_json(
    client: httpx.Client, method: str, url: str, what: str, **kwargs: Any
) -> dict[str, Any]:
    """One call whose answer must be a JSON object; anything else becomes a LoginError naming
    `what` and the server's own error text (never the request, which may carry tokens)."""
    try:
        resp = client.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        raise LoginError(f"{what}: cannot reach {_origin(url)}: {e or type(e).__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code >= 400:
        raise LoginError(f"{what} failed: HTTP {resp.status_code}{_error_text(body)}")
    if not isinstance(body, dict):
        raise LoginError(f"{what}: the answer is not a JSON object")
    return body


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _error_text(body: Any) -> str:
    """`invalid_grant: Bad code` from OAuth errors, `PERMISSION_DENIED: msg` from Google RPCs."""
    if not isinstance(body, dict):
        return ""
    err = body.get("error")
    if isinstance(err, dict):
        label = err.get("status") or err.get("code") or err.get("type") or ""
        message = err.get("message") or ""
        return f" {label}: {message}".rstrip(": ") if label or message else ""
    if isinstance(err, str):
        desc = body.get("error_description")
        return f" {err}" + (f": {desc}" if isinstance(desc, str) and desc else "")
    return ""


# ---------------------------------------------------------------- saving


def _existing(auth_dir: Path, same_account: Callable[[dict[str, Any]], bool]) -> Path | None:
    for candidate in sorted(auth_dir.glob("*.json")) if auth_dir.is_dir() else []:
        try:
            if same_account(read_auth_file(candidate)):
                return candidate
        except AuthFileError:
            continue
    return None


_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def safe_name(part: str) -> str:
    """A file-name piece: emails and project ids keep their characters, anything else is `_`."""
    return _UNSAFE.sub("_", part).strip(".") or "_"


def save_auth_file(
    settings: Settings,
    name: str,
    data: dict[str, Any],
    same_account: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[Path, bool]:
    """Write the account's file in auth-dir atomically (0600); (path, True when it replaced one).

    The file is `name`, unless only another file holds the same account (`same_account`, e.g.
    one CLIProxyAPI named differently): that one is replaced in place, so a login never
    duplicates an account.
    """
    path = settings.auth_path / name
    if not path.exists() and same_account is not None:
        path = _existing(settings.auth_path, same_account) or path
    replaced = path.exists()
    try:
        write_auth_file(path, data)
    except OSError as e:
        raise LoginError(f"cannot write {path}: {e.strerror or e}") from None
    return path, replaced


@dataclass(frozen=True)
class Saved:
    """What a login or import wrote: the file and a one-line description of the account."""

    path: Path
    replaced: bool
    account: str
