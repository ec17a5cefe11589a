"""The `cliproxy` command: proxy launchers, browser logins, imports of CLI logins, accounts.

The seed's (CLIProxyAPI's) spellings keep working: `cliproxy --login` is `cliproxy login gemini`,
`cliproxy --codex-login` is `cliproxy login codex`, and `--project_id`, `--no-browser`, `--config`
go with them; Go's single-dash forms (`-login`, `-project_id ID`, ...) are accepted too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from cliproxy import addons as addon_package
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import config_path
from cliproxy.addons.settings import load_settings
from cliproxy.addons.startup import PLACEHOLDER_TARGET
from cliproxy.cli import accounts
from cliproxy.cli import importer
from cliproxy.cli import login_codex
from cliproxy.cli import login_gemini
from cliproxy.cli import usage
from cliproxy.cli.oauth import LoginError
from cliproxy.cli.oauth import Saved

ADDON = str(Path(addon_package.__file__).resolve().parent / "cliproxy.py")
COMMANDS = ("serve", "web", "login", "import", "accounts", "usage")
SEED_LOGINS = {"--login": ["login", "gemini"], "--codex-login": ["login", "codex"]}
GO_FLAGS = ("login", "codex-login", "no-browser", "project_id", "config")


def _launch_args(config: Path, extra: list[str]) -> list[str]:
    """mitmdump/mitmweb arguments that never bind :8080
    (docs/mitmproxy.md "Start-up and the :8080 server")."""
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
    return accounts.run(load_settings(config_path(ns.config)))


def cmd_usage(ns: argparse.Namespace, extra: list[str]) -> int:
    config = config_path(ns.config)
    return usage.run(load_settings(config), config, ns.since, ns.json)


def _report(label: str, verb: str, action: Callable[[], Saved]) -> int:
    """Run a login/import: one stderr line and a non-zero code on failure, never a token."""
    try:
        saved = action()
    except LoginError as e:
        print(f"cliproxy {label}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ncliproxy {label}: interrupted; nothing was saved", file=sys.stderr)
        return 130
    print(f"{verb} {saved.account}")
    print(f"{'Replaced' if saved.replaced else 'Wrote'} {saved.path}")
    return 0


def cmd_login(ns: argparse.Namespace, extra: list[str]) -> int:
    settings = load_settings(config_path(ns.config))
    if ns.provider == "gemini":
        return _report(
            "login gemini",
            "Logged in:",
            lambda: login_gemini.login(
                settings,
                project_id=ns.project_id,
                no_browser=ns.no_browser,
                callback_port=ns.callback_port,
            ),
        )
    return _report(
        "login codex",
        "Logged in:",
        lambda: login_codex.login(
            settings, no_browser=ns.no_browser, callback_port=ns.callback_port
        ),
    )


def cmd_import(ns: argparse.Namespace, extra: list[str]) -> int:
    settings = load_settings(config_path(ns.config))
    path = Path(ns.path) if ns.path else None
    if ns.source == "gemini-cli":
        return _report(
            "import gemini-cli",
            "Imported:",
            lambda: importer.import_gemini_cli(settings, path, project_id=ns.project_id),
        )
    print(
        "cliproxy import codex: warning: the Codex CLI and this proxy now share one refresh "
        "token, and OpenAI lets it be used once; whichever refreshes second is logged out. "
        "`cliproxy login codex` gives the proxy a login of its own.",
        file=sys.stderr,
    )
    return _report("import codex", "Imported:", lambda: importer.import_codex(settings, path))


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value!r}")
    return port


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default: $CLIPROXY_CONFIG or ./config.yaml)")
    parser = argparse.ArgumentParser(
        prog="cliproxy",
        description=__doc__.splitlines()[0],
        epilog="Seed spellings: `cliproxy --login [--project_id ID] [--no-browser]` = "
        "`cliproxy login gemini`, `cliproxy --codex-login` = `cliproxy login codex`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, handler, help_text in (
        ("serve", cmd_serve, "run the proxy (mitmdump); extra arguments go to mitmdump"),
        ("web", cmd_web, "run the proxy with mitmweb's traffic UI"),
        ("accounts", cmd_accounts, "list the accounts in auth-dir"),
    ):
        p = sub.add_parser(name, help=help_text, parents=[common])
        p.set_defaults(handler=handler)
    use = sub.add_parser(
        "usage",
        help="requests, errors and tokens per account, model and day (from usage-db)",
        parents=[common],
    )
    use.add_argument("--since", metavar="AGE", help="e.g. 7d, 12h, 2w or 2026-12-01 (default: all)")
    use.add_argument("--json", action="store_true", help="the JSON of GET /usage")
    use.set_defaults(handler=cmd_usage)

    login = sub.add_parser(
        "login", help="sign in with a browser and write an auth file to auth-dir"
    )
    providers = login.add_subparsers(dest="provider", required=True, metavar="PROVIDER")
    gemini = providers.add_parser(
        "gemini",
        parents=[common],
        help="Google account for Gemini CLI / Code Assist (callback port 8085)",
        description="Google OAuth with the Gemini CLI client, then Code Assist onboarding; "
        "writes gemini-<email>-<project>.json.",
    )
    gemini.add_argument(
        "--project-id",
        "--project_id",
        dest="project_id",
        metavar="ID",
        help="Google Cloud project for Code Assist (needed by Workspace and paid accounts; "
        "free accounts get one from Google)",
    )
    codex = providers.add_parser(
        "codex",
        parents=[common],
        help="ChatGPT account for Codex (callback port 1455)",
        description="OpenAI OAuth with PKCE and the Codex CLI client; writes codex-<email>.json.",
    )
    for p, port in ((gemini, login_gemini.DEFAULT_CALLBACK_PORT), (codex, 1455)):
        p.add_argument(
            "--no-browser",
            action="store_true",
            help="do not open a browser: print the URL (open it anywhere) and wait for the "
            "callback",
        )
        p.add_argument(
            "--callback-port",
            type=_port,
            default=port,
            metavar="N",
            help=f"local port the browser is sent back to (default {port})",
        )
        p.set_defaults(handler=cmd_login)

    imp = sub.add_parser("import", help="adopt an existing gemini-cli or Codex CLI login")
    sources = imp.add_subparsers(dest="source", required=True, metavar="SOURCE")
    gemini_cli = sources.add_parser(
        "gemini-cli",
        parents=[common],
        help="from gemini-cli's oauth_creds.json (then runs the Code Assist set-up)",
    )
    gemini_cli.add_argument(
        "path", nargs="?", metavar="PATH", help="credentials (default ~/.gemini/oauth_creds.json)"
    )
    gemini_cli.add_argument(
        "--project-id", "--project_id", dest="project_id", metavar="ID", help="as for login"
    )
    codex_cli = sources.add_parser("codex", parents=[common], help="from the Codex CLI's auth.json")
    codex_cli.add_argument(
        "path", nargs="?", metavar="PATH", help="auth.json (default $CODEX_HOME or ~/.codex)"
    )
    for p in (gemini_cli, codex_cli):
        p.set_defaults(handler=cmd_import)
    return parser


def seed_args(argv: list[str]) -> list[str]:
    """`--login` / `--codex-login` (and Go's single-dash flags) -> `login gemini|codex ...`."""
    if not argv or argv[0] in COMMANDS:
        return argv
    args = [
        "-" + a if any(a == f"-{f}" or a.startswith(f"-{f}=") for f in GO_FLAGS) else a
        for a in argv
    ]
    logins = [a for a in args if a in SEED_LOGINS]
    if len(logins) != 1:
        return args  # none (argparse explains) or both (login_conflict)
    rest = [a for a in args if a not in SEED_LOGINS]
    return [*SEED_LOGINS[logins[0]], *rest]


def main(argv: list[str] | None = None) -> int:
    args = seed_args(list(sys.argv[1:] if argv is None else argv))
    if sum(a in SEED_LOGINS for a in args) > 1:
        print("cliproxy: --login and --codex-login cannot be combined", file=sys.stderr)
        return 2
    ns, extra = build_parser().parse_known_args(args)
    if extra and ns.command not in ("serve", "web"):
        print(f"cliproxy {ns.command}: unknown arguments {' '.join(extra)}", file=sys.stderr)
        return 2
    explicit = getattr(ns, "config", None)
    if explicit and not Path(explicit).is_file():
        print(f"cliproxy: {explicit}: no such config file", file=sys.stderr)
        return 2
    try:
        return ns.handler(ns, extra)
    except SettingsError as e:
        print(f"cliproxy: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
