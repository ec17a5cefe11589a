"""The `cliproxy` command: launchers for the proxy and account listing.

Login and import subcommands arrive with their own issue; until then `cliproxy --help` lists only
what works.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from datetime import datetime
from pathlib import Path

import addons
from addons.accounts.pool import load_accounts
from addons.settings import SettingsError
from addons.settings import config_path
from addons.settings import load_settings
from addons.startup import PLACEHOLDER_TARGET

ADDON = str(Path(addons.__file__).resolve().parent / "cliproxy.py")


def _launch_args(config: Path, extra: list[str]) -> list[str]:
    """mitmdump/mitmweb arguments that never bind :8080 (MITMPROXY.md §2, option 1)."""
    settings = load_settings(config)
    args: list[str] = []
    if not any(
        a in ("--mode", "-m", "-p", "--listen-port") or a.startswith("--mode=") for a in extra
    ):
        listen = f"@{settings.host}:{settings.port}" if settings.host else f"@{settings.port}"
        args += ["--mode", PLACEHOLDER_TARGET + listen]
    args += ["--set", "connection_strategy=lazy", "--set", f"cliproxy_config={config.resolve()}"]
    return [*args, "-s", ADDON, *extra]


def cmd_serve(ns: argparse.Namespace, extra: list[str]) -> int:
    from mitmproxy.tools.main import mitmdump

    mitmdump(_launch_args(config_path(ns.config), extra))
    return 0


def cmd_web(ns: argparse.Namespace, extra: list[str]) -> int:
    from mitmproxy.tools.main import mitmweb

    mitmweb(_launch_args(config_path(ns.config), extra))
    return 0


def cmd_accounts(ns: argparse.Namespace, extra: list[str]) -> int:
    settings = load_settings(config_path(ns.config))
    accounts = load_accounts(settings.auth_path)
    if not accounts:
        print(
            f"no accounts in {settings.auth_path}: run `cliproxy login gemini` to add one",
            file=sys.stderr,
        )
        return 1
    now = datetime.now(UTC)
    for acc in accounts:
        expiry = acc.expiry
        left = f"{int((expiry - now).total_seconds() // 60)} min" if expiry else "unknown"
        print(f"{acc.provider:7} {acc.email or '-':30} {acc.project_id:30} token expires in {left}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cliproxy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, handler, help_text in (
        ("serve", cmd_serve, "run the proxy (mitmdump); extra arguments go to mitmdump"),
        ("web", cmd_web, "run the proxy with mitmweb's traffic UI"),
        ("accounts", cmd_accounts, "list the accounts in auth-dir"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="config file (default: $CLIPROXY_CONFIG or ./config.yaml)")
        p.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns, extra = build_parser().parse_known_args(argv)
    if extra and ns.command == "accounts":
        print(f"cliproxy accounts: unknown arguments {' '.join(extra)}", file=sys.stderr)
        return 2
    try:
        return ns.handler(ns, extra)
    except SettingsError as e:
        print(f"cliproxy: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
