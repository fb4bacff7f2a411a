"""scripts/audit, scripts/replay and scripts/verify are thin: they run the CLI's own subcommands."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.scripts.conftest import Workload

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("audit", "replay", "verify")


def _wired() -> bool:
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "taskledger"), "--help"], capture_output=True, text=True)
    return all(f"    {tool}" in done.stdout for tool in TOOLS)


pytestmark = pytest.mark.skipif(not _wired(), reason="taskledger/cli.py does not register the tools yet "
                                                     "(taskledger.tools.commands.register)")


def _sandboxed(tmp_path: Path, tool: str) -> Path:
    """The real script next to a _setup.sh that only enters the repository (no venv install in tests)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "_setup.sh").write_text(f'cd "{ROOT}"\n')
    shutil.copy2(ROOT / "scripts" / tool, scripts / tool)
    return scripts / tool


@pytest.mark.parametrize("tool", TOOLS)
def test_each_script_passes_its_arguments_to_the_cli_subcommand(tool: str, tmp_path: Path) -> None:
    done = subprocess.run([str(_sandboxed(tmp_path, tool)), "--help"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: taskledger {tool} ") and "example:" in done.stdout


def test_scripts_verify_checks_the_database_it_is_pointed_at(workload: Callable[..., Workload],
                                                             tmp_path: Path) -> None:
    w = workload(n=3)

    done = subprocess.run([str(_sandboxed(tmp_path, "verify")), "--quiet"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TASKLEDGER_DATABASE_URL": w.url})

    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: consistent" in done.stdout
