"""SIGTERM and SIGINT turned into a `threading.Event`, without running Python code in the signal's context.

A Python signal handler runs in the main thread between two bytecodes, wherever that thread is: a handler
calling `Event.set()` deadlocks when the main thread is inside that event's own `wait()` holding its lock,
and a signal the kernel hands to another thread is not acted on while the main thread blocks in a lock
(CI saw `taskledger project` still running 60 s after SIGTERM, with nothing logged). Here the C-level handler
only writes the signal's number to a pipe (`signal.set_wakeup_fd`), which works from any thread, and a small
daemon thread reading that pipe sets the event like any other thread would.

After the stop, a process that has not exited within `LAST_RESORT` seconds prints every thread's stack to
stderr and exits 1 (`faulthandler`): a stuck stop is seen, with where it is stuck, instead of hanging until
the supervisor's SIGKILL.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Seconds each role's threads get to finish after the stop (every write is its own transaction).
GRACE = 10.0
# Seconds after the stop at which a process still running dumps its threads' stacks and exits 1.
LAST_RESORT = 45.0

log = logging.getLogger("taskledger")


def stop_on_signals(stopping: threading.Event) -> None:
    """From now on SIGTERM or SIGINT sets `stopping`; call from the main thread before starting other threads."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    for sig in SIGNALS:
        signal.signal(sig, _ignore)  # a Python handler must exist, or the default action ends the process
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def watch() -> None:
        while not stopping.is_set():
            try:
                received = os.read(read_end, 64)
            except InterruptedError:
                continue
            if any(number in received for number in SIGNALS):
                stopping.set()

    threading.Thread(target=watch, name="stop-signal", daemon=True).start()


def _ignore(signum: int, frame: object) -> None:
    """The wakeup pipe does the work; nothing runs here (see the module's docstring)."""


def last_resort() -> None:
    """A process still running LAST_RESORT seconds from now prints every thread's stack and exits 1."""
    faulthandler.dump_traceback_later(LAST_RESORT, exit=True, file=sys.stderr)


def join_within(threads: Sequence[threading.Thread], grace: float = GRACE) -> None:
    """Joins `threads` for `grace` seconds in all (not each)."""
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


def stopped(threads: Sequence[threading.Thread], grace: float = GRACE) -> int:
    """After the stop: `threads` get `grace` seconds in all. One still running then (or any other thread that
    would hold up the interpreter's exit) is named in the log and the process exits 0 at once rather than hang."""
    last_resort()
    join_within(threads, grace)
    stuck = [t.name for t in threads if t.is_alive()]
    stuck += [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
              and t.is_alive() and t.name not in stuck]
    if stuck:
        log.warning("threads still running %.0f s after the stop: %s; exiting anyway (nothing uncommitted is "
                    "kept)", grace, ", ".join(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
