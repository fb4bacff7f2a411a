"""Progress bars for long work: on standard error, with rate and ETA, never mixed into output."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def bar(total: int | None, desc: str, unit: str = "event", enabled: bool = True) -> tqdm[Any]:
    """A tqdm bar on stderr; `enabled=False` makes it silent (library calls, tests, --quiet)."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, disable=not enabled)
