"""SIGTERM stops a taskledger process wherever the signal lands and whatever its threads are doing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _process(body: str) -> subprocess.Popen[str]:
    script = textwrap.dedent("""
        import signal, sys, threading, time
        sys.path.insert(0, {root!r})
        from taskledger.stopsignal import stop_on_signals, stopped
        stopping = threading.Event()
        stop_on_signals(stopping)
    """).format(root=str(ROOT)) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _ended(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"still running {timeout} s after SIGTERM; stderr: {err[-2000:]}") from None
    return process.returncode, out, err


def test_a_sigterm_the_kernel_hands_to_another_thread_still_stops_the_main_thread() -> None:
    # A Python-level handler runs only in the main thread, and only once that thread runs bytecode again:
    # one blocked in Event.wait() never did (the process ran until the next signal).
    process = _process("""
        def other():
            time.sleep(0.2)
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            time.sleep(60)
        threading.Thread(target=other, daemon=True).start()
        stopping.wait()
        print("stopped", flush=True)
    """)
    code, out, err = _ended(process, timeout=15)
    assert (code, out.strip()) == (0, "stopped"), err


def test_sigterm_stops_a_main_thread_that_waits_in_short_steps() -> None:
    # The main thread keeps entering and leaving the event's lock; the handler must not need that lock.
    for _ in range(5):
        process = _process("""
            print("ready", flush=True)
            while not stopping.wait(0.00001):
                pass
            print("stopped", flush=True)
        """)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        code, out, err = _ended(process, timeout=15)
        assert (code, out.strip()) == (0, "stopped"), err


def test_a_thread_that_does_not_finish_is_named_and_the_process_exits_anyway() -> None:
    process = _process("""
        def stuck():
            while True:
                time.sleep(0.1)
        threads = [threading.Thread(target=stuck, name="projection-stuck", daemon=True)]
        threads[0].start()
        print("ready", flush=True)
        stopping.wait()
        sys.exit(stopped(threads, grace=0.5))
    """)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, _out, err = _ended(process, timeout=15)
    assert code == 0, err
    assert "projection-stuck" in err and "exiting anyway" in err
    assert time.monotonic() - started < 10


def test_a_stop_stuck_past_the_last_resort_prints_every_threads_stack_and_exits_1() -> None:
    process = _process("""
        import taskledger.stopsignal as stopsignal
        stopsignal.LAST_RESORT = 0.5
        print("ready", flush=True)
        stopping.wait()
        stopsignal.last_resort()
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()  # a stop that never ends
    """)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    code, _out, err = _ended(process, timeout=15)
    assert code == 1
    assert "Timeout" in err and "most recent call first" in err
