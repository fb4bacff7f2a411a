"""CPU-bound calls that release the GIL (argon2) run off the gevent hub, so other requests go on meanwhile."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def offloaded(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in gevent's thread pool when gunicorn's gevent worker patched this process, else here.

    Under gevent every request of a worker shares one OS thread: a 100 ms argon2 verify run inline would
    stall them all (docs/serving.md). argon2-cffi releases the GIL, so in the pool it costs the others nothing.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent

        return gevent.get_hub().threadpool.apply(fn, args)  # type: ignore[no-any-return]
    return fn(*args)
