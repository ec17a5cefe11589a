#!/usr/bin/env bash
# Install the pinned real clients (docs/upstreams.md "Driving real clients offline") into a cache
# dir, reusing an install that already has the pinned versions. Usage: install_clients.sh [DIR]
# DIR defaults to $CLIPROXY_CLIENTS, then ~/.cache/cliproxy-clients. Prints the dir on success.
set -euo pipefail

DIR=${1:-${CLIPROXY_CLIENTS:-$HOME/.cache/cliproxy-clients}}
PINS=("@anthropic-ai/claude-code@2.1.197" "@google/gemini-cli@0.61.0" "@openai/codex@0.169.0")

installed_version() {  # version in node_modules/<pkg>/package.json, or nothing
  local f="$DIR/node_modules/$1/package.json"
  [ -f "$f" ] && node -e 'process.stdout.write(require(process.argv[1]).version || "")' "$f" || true
}

pins_present() {
  local pin pkg ver
  for pin in "${PINS[@]}"; do
    pkg=${pin%@*}; ver=${pin##*@}
    [ "$(installed_version "$pkg")" = "$ver" ] || return 1
  done
}

claude_ready() {  # npm 11 skips claude-code's postinstall: bin/claude.exe stays a placeholder
  local home rc=0
  home=$(mktemp -d)  # a throwaway HOME: the check leaves nothing in the user's
  HOME=$home "$DIR/node_modules/.bin/claude" --version >/dev/null 2>&1 || rc=$?
  rm -rf "$home"
  return $rc
}

mkdir -p "$DIR"
cd "$DIR"
if pins_present; then
  echo "clients: pinned versions already in $DIR" >&2
else
  echo "clients: npm install ${PINS[*]} into $DIR" >&2
  [ -f package.json ] || npm init -y >/dev/null
  npm install --no-audit --no-fund "${PINS[@]}" >&2
  pins_present || { echo "clients: pinned versions missing after npm install" >&2; exit 1; }
fi
if ! claude_ready; then
  echo "clients: running claude-code install.cjs" >&2
  (cd node_modules/@anthropic-ai/claude-code && node install.cjs) >&2
  claude_ready || { echo "clients: claude --version still fails after install.cjs" >&2; exit 1; }
fi
echo "$DIR"
