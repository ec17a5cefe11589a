"""Start-up: options, config loading, listen mode and port, quiet logs, JSON error pages.

mitmproxy fixes its server list before a script's `load()` runs, so the reverse mode on the
configured port is set in `running()` (docs/mitmproxy.md "Start-up and the :8080 server"). While the
default mode is still pending, the `errorcheck` addon is removed so that a busy :8080 cannot abort
start-up; this addon then stops mitmproxy itself when the config is invalid.
"""

from __future__ import annotations

import json
import logging
import sys

from cliproxy.addons.retarget import masked_proxy
from cliproxy.addons.settings import Settings
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import config_path
from cliproxy.addons.settings import load_settings
from cliproxy.addons.state import State
from mitmproxy import ctx
from mitmproxy import http
from mitmproxy.addonmanager import Loader
from mitmproxy.net.http.http1 import assemble_response
from mitmproxy.proxy.layers.http import _http1

logger = logging.getLogger(__name__)

# The reverse target is a placeholder: every flow is re-targeted by the gateway.
PLACEHOLDER_TARGET = "reverse:http://127.0.0.1:9"


def json_error_response(status_code: int, message: str = "") -> bytes:
    """Replacement for mitmproxy's HTML error page (docs/mitmproxy.md "Error pages"): a body the
    openai, anthropic and google-genai SDKs all parse as an error."""
    body = {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": f"proxy error: {message}" if message else "proxy error",
            "code": status_code,
            "status": "UNAVAILABLE" if status_code >= 500 else "INVALID_ARGUMENT",
        },
    }
    resp = http.Response.make(
        status_code,
        json.dumps(body).encode(),
        {"content-type": "application/json", "connection": "close"},
    )
    return assemble_response(resp)


class Startup:
    def __init__(self, state: State) -> None:
        self.state = state
        self.fatal: str | None = None
        self.started = False
        self.managed: dict[str, object] | None = None  # log options we quiet (user left them)
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
            # The default :8080 server is about to be replaced by ours in running(); a failure to
            # bind it must not abort start-up (docs/mitmproxy.md "Start-up and the :8080 server").
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
            listen = f"@{host}:{port}" if host else f"@{port}"
            updates["mode"] = [PLACEHOLDER_TARGET + listen]
        if settings.api_keys and not ctx.options.has_changed("block_global"):
            updates["block_global"] = False  # remote clients with a key must reach us
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
