"""Optional py-spy sampling of the service while it is measured, summarised as top frames."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


class PySpy:
    """`py-spy record` on each given process for the length of one measurement."""

    def __init__(self, py_spy: str, folder: Path, key: str, pids: dict[int, str], seconds: float,
                 rate: int = 50) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.outputs: dict[str, list[Path]] = {}
        self.children: list[subprocess.Popen[bytes]] = []
        for pid, role in pids.items():
            out = folder / f"{key}-{role}-{pid}.txt"
            self.outputs.setdefault(role, []).append(out)
            self.children.append(subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
                 "--format", "raw", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def wait(self, timeout: float = 60) -> None:
        for child in self.children:
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.terminate()
                child.wait(timeout=10)

    def summary(self, top: int = 16) -> dict[str, dict[str, dict[str, float]]]:
        """Per role: the frames (file:function) found in the most samples, as % of that role's samples."""
        return {role: top_frames(files, top) for role, files in self.outputs.items()}


SKIP = ("threading.py:", "concurrent/futures/", "gunicorn/", "<frozen", "contextlib.py:", "selectors.py:")


def top_frames(files: list[Path], top: int) -> dict[str, dict[str, float]]:
    """Share of samples (%) per frame: `inclusive` (frame anywhere on the stack) and `self` (the leaf).

    py-spy records running threads only, but counts a thread waiting inside psycopg's C wait loop as
    running, so time waiting on PostgreSQL shows up under psycopg's `Connection.wait`.
    """
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_short(f) for f in stack.split(";")]
            total += count
            leaf[frames[-1]] += count
            for frame in dict.fromkeys(frames):
                inclusive[frame] += count
    if not total:
        return {}
    kept = [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common() if not f.startswith(SKIP)]
    return {"inclusive": dict(kept[:top]),
            "self": {f: round(100 * c / total, 1) for f, c in leaf.most_common(top // 2)}}


def _short(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match.group("file")
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{file}:{match.group('func')}"

