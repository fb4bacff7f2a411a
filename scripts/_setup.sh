# Sourced by scripts/serve and scripts/test: creates .venv if needed and installs taskledger into it.
# Usage: source scripts/_setup.sh [extras]   (extras: "test" adds the test tools, and Debian's chromium for
# the browser tests in tests/browser when /usr/bin/chromium is missing)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXTRAS="${1:-}"

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  PY="$(find_python)" || { echo "taskledger needs Python 3.11 or newer on PATH (or set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  echo "creating virtual environment in .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi

spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
stamp=".venv/.installed-$( (cat setup.cfg pyproject.toml; echo "$EXTRAS") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing taskledger${EXTRAS:+ with $EXTRAS extras} into .venv (the first run downloads dependencies)..."
  .venv/bin/python -m pip install --disable-pip-version-check -q --upgrade pip
  .venv/bin/python -m pip install --disable-pip-version-check -q -e "$spec"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"

# Debian packages the test suite needs: quiet when COMMAND is there; installed with apt-get as root or through
# passwordless sudo; otherwise the set-up fails with HELP (what to install) and apt-get's last lines.
# apt_install COMMAND HELP WHAT PACKAGE...
apt_install() {
  local command="$1" help="$2" what="$3" sudo=() log
  shift 3
  command -v "$command" >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$help" >&2; exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "$help (not root, and no passwordless sudo to do it here)" >&2; exit 1
    fi
  fi
  echo "installing Debian's $what (apt-get; once per machine)..."
  log="$(mktemp)"
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
           || { "${sudo[@]}" apt-get update -q && \
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; }
       } >"$log" 2>&1 || ! command -v "$command" >/dev/null 2>&1; then
    tail -n 20 "$log" >&2; rm -f "$log"
    echo "$help" >&2; exit 1
  fi
  rm -f "$log"
}

# The browser tests drive the system Chromium through Playwright (Playwright's own browser download is never
# used); TASKLEDGER_CHROMIUM may name another Chromium binary instead, which is then never installed.
ensure_chromium() {
  local browser="${TASKLEDGER_CHROMIUM:-/usr/bin/chromium}"
  local help="the browser tests (tests/browser) need Chromium at $browser: install Debian's package as root ('apt-get install chromium'), or set TASKLEDGER_CHROMIUM to a Chromium binary"
  if [ -n "${TASKLEDGER_CHROMIUM:-}" ] && ! command -v "$browser" >/dev/null 2>&1; then
    echo "$help" >&2; exit 1
  fi
  apt_install "$browser" "$help" "chromium for the browser tests" chromium
}

# The failover test (tests/e2e/test_failover.py) runs a pg_auto_failover formation.
ensure_pg_autoctl() {
  local packages=(postgresql-15-auto-failover pg-auto-failover-cli)
  apt_install pg_autoctl \
    "the failover test (tests/e2e/test_failover.py) needs pg_autoctl: install Debian's packages as root ('apt-get install ${packages[*]}')" \
    "pg_auto_failover for the failover test" "${packages[@]}"
}
if [ "$EXTRAS" = "test" ]; then
  ensure_chromium
  ensure_pg_autoctl
fi
