"""Start-up: options, config loading, listen mode and port, quiet logs, JSON error pages.

mitmproxy fixes its server list before a script's `load()` runs, so the reverse mode on the
configured port is set in `running()` (docs/mitmproxy.md "Start-up and the :8080 server"). While the
default mode is still pending, the `errorcheck` addon is removed so that a busy :8080 cannot abort
start-up; this addon then stops mitmproxy itself when the config is invalid.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys

from cliproxy.addons.limits import error_page
from cliproxy.addons.retarget import masked_proxy
from cliproxy.addons.settings import CONFIG_ENV
from cliproxy.addons.settings import Settings
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import config_path
from cliproxy.addons.settings import load_settings
from cliproxy.addons.state import State
from mitmproxy import connection
from mitmproxy import ctx
from mitmproxy.addonmanager import Loader
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.mode_specs import ReverseMode

logger = logging.getLogger(__name__)

# The reverse target is a placeholder: every flow is re-targeted by the gateway.
PLACEHOLDER_TARGET = "reverse:http://127.0.0.1:9"


def json_error_response(status_code: int, message: str = "") -> bytes:
    """Replacement for mitmproxy's HTML error page (docs/mitmproxy.md "Error pages"): the
    caller's shape when the failing flow is known (addons/limits.py), else a body the openai,
    anthropic and google-genai SDKs all parse as an error."""
    return error_page(status_code, message)


def hold_default_server() -> bool:
    """Stop mitmproxy from ever binding its default `*:8080` regular proxy.

    Scripts load while `setup_servers` (started by `Master.run`) is still resolving the
    listen address, before it binds (docs/mitmproxy.md "Start-up and the :8080 server").
    Cancelling that task leaves no server at all until `running()` sets our reverse mode. The
    task is known by its coroutine, not its name: mitmproxy adds to task names under pytest."""
    held = False
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no event loop: nothing is being set up
        return False
    for task in tasks:
        code = getattr(task.get_coro(), "cr_code", None)
        if code is Proxyserver.setup_servers.__code__ and not task.done():
            task.cancel()
            held = True
    return held


def port_busy(host: str, port: int) -> str | None:
    """Why the proxy could not listen on host:port, or None when it can (checked before mitmproxy
    tries, so the message can name the config key instead of a bare errno)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host or "", port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return e.strerror or str(e)
    return None


class Startup:
    def __init__(self, state: State) -> None:
        self.state = state
        self.fatal: str | None = None
        self.started = False
        self.managed: dict[str, object] | None = None  # log options we quiet (user left them)
        self.own_mode = False  # the listen mode is ours to set (no --mode on the command line)
        state.listeners.append(self.settings_changed)

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "cliproxy_config",
            str,
            "",
            """
            Path of cliproxy's config.yaml (default: $CLIPROXY_CONFIG, else ./config.yaml).
            """,
        )
        _http1.make_error_response = json_error_response  # type: ignore[attr-defined]
        if not ctx.options.has_changed("mode"):
            self.own_mode = True
            if hold_default_server():
                logger.debug("mitmproxy's default :8080 server held back")
            # Should the default :8080 server come up anyway, a failure to bind it must not abort
            # start-up (docs/mitmproxy.md "Start-up and the :8080 server").
            errorcheck = ctx.master.addons.get("errorcheck")
            if errorcheck is not None:
                ctx.master.addons.remove(errorcheck)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)

    def configure(self, updated: set[str]) -> None:
        if "cliproxy_config" not in updated and self.started:
            return
        path = config_path(ctx.options.cliproxy_config or None)
        if self.started and not path.exists():
            logger.error("%s does not exist (the previous config stays in force)", path)
            return
        named = ctx.options.cliproxy_config or os.environ.get(CONFIG_ENV)
        if not self.started and named and not path.is_file():
            # a typo in --set cliproxy_config / $CLIPROXY_CONFIG must not start on defaults
            self.fatal = f"{path}: no such config file"
            logger.error("%s", self.fatal)
            return
        try:
            settings = load_settings(path)
        except SettingsError as e:
            if not self.started:
                self.fatal = str(e)
                logger.error("%s", e)
                return
            logger.error("%s (the previous config stays in force)", e)
            return
        if self.started:  # `set cliproxy_config` while running: a reload, state kept
            self.state.config_path = path
            self.state.update(settings)
            return
        self.state.apply(settings, path)
        self.started = True  # before _quiet: its option update re-enters configure
        self._quiet(settings.debug)
        logger.info("config: %s", path if path.exists() else "defaults (no config file)")

    def _quiet(self, debug: bool) -> None:
        """Quiet by default, verbose with `debug: true` (also when it changes while running).
        Options the user set on the command line, and options this tool lacks (mitmweb has no
        flow_detail), are left alone."""
        if self.managed is None:
            quiet: dict[str, object] = {"flow_detail": 0}
            if "web_port" not in ctx.options:
                # mitmweb prints no per-request lines; its info log carries the UI's token URL
                quiet["termlog_verbosity"] = "warn"
            self.managed = {
                name: value
                for name, value in quiet.items()
                if name in ctx.options and not ctx.options.has_changed(name)
            }
        updates = {
            name: (ctx.options.default(name) if debug else value)
            for name, value in self.managed.items()
        }
        if updates:
            ctx.options.update(**updates)

    def settings_changed(self, old: Settings, new: Settings) -> None:
        if old.debug != new.debug:
            self._quiet(new.debug)

    def client_connected(self, client: connection.Client) -> None:
        """Only our reverse listener serves: a client of any other server (mitmproxy's default
        forward proxy, should it ever have been bound) is turned away before any byte."""
        if self.own_mode and not isinstance(client.proxy_mode, ReverseMode):
            client.error = "not cliproxy's listener"

    async def running(self) -> None:
        if self.fatal is not None:
            print(f"cliproxy: {self.fatal}", file=sys.stderr)
            ctx.master.shutdown()
            sys.exit(2)
        settings = self.state.settings
        updates: dict[str, object] = {"connection_strategy": "lazy"}
        if not ctx.options.has_changed("mode"):
            port = (
                ctx.options.listen_port if ctx.options.has_changed("listen_port") else settings.port
            )
            host = settings.host
            # mitmproxy's own default server already holds listen_port (-p, else 8080)
            mine = port == ctx.options.listen_port
            if not mine and (busy := port_busy(host, port)) is not None:
                self.fatal = (
                    f"port {port} is already in use ({busy}): change `port` in "
                    f"{self.state.config_path or 'config.yaml'} or pass -p PORT"
                )
                print(f"cliproxy: {self.fatal}", file=sys.stderr)
                ctx.master.shutdown()
                sys.exit(2)
            listen = f"@{host}:{port}" if host else f"@{port}"
            updates["mode"] = [PLACEHOLDER_TARGET + listen]
        if settings.api_keys and not ctx.options.has_changed("block_global"):
            updates["block_global"] = False  # remote clients with a key must reach us
        if self.own_mode:
            # the default server held back in load() never started: nothing to stop
            ps = ctx.master.addons.get("proxyserver")
            servers = getattr(getattr(ps, "servers", None), "_instances", None)
            if isinstance(servers, dict):
                for spec, instance in list(servers.items()):
                    if not instance.is_running:
                        del servers[spec]
        ctx.options.update(**updates)
        self.state.start_watching()
        if settings.proxy_url:
            logger.warning(
                "proxy-url %s: every upstream call goes through it (the loopback streamer)",
                masked_proxy(settings.proxy_url),
            )
        mode = ctx.options.mode[0] if ctx.options.mode else ""
        logger.warning(
            "cliproxy: %d account(s); serving %s",
            len(self.state.pool.accounts if self.state.pool else []),
            mode.split("@")[-1] if "@" in mode else mode,
        )

    async def done(self) -> None:
        await self.state.close()
