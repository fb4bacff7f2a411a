# Sourced by scripts/serve and scripts/test: creates .venv if needed and installs taskledger into it.
# Usage: source scripts/_setup.sh [extras]   (extras: "test" adds the test tools)
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
