"""gunicorn settings for the taskledger API (used by `taskledger serve` and in production).

Every value comes from the environment, checked by taskledger.config like every other setting, so one file
serves the all-in-one mode and production.
"""

import os
import sys

from taskledger.config import ConfigError, load_settings, require_database_url

try:
    # Checked once here in the master, not only in each worker: several workers failing to boot at once end
    # gunicorn's master with a traceback of its own. All but the URL's syntax, which needs psycopg, and nothing
    # here may import psycopg before the gevent workers' monkey-patching (psycopg chooses its wait function
    # when it is imported); the workers check the URL.
    settings = require_database_url(load_settings(parse_url=False)).serving
except ConfigError as error:
    print(f"taskledger: {error}", file=sys.stderr)
    raise SystemExit(2) from None

bind = settings.bind
# Each worker builds its own application, pools included, after the fork.
wsgi_app = "taskledger.wsgi:create_app()"
workers = settings.workers
# gevent: a connection costs a greenlet, not a thread, so slow clients (slowloris, slow bodies) and
# openLooKeng long polls cannot take every request thread; the CPU work is the same. docs/serving.md has
# the measurements; gthread (TASKLEDGER_THREADS threads per worker) stays available.
worker_class = settings.worker_class
worker_connections = settings.worker_connections
threads = settings.threads
timeout = 60
graceful_timeout = 20
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
accesslog = settings.access_log
errorlog = "-"
loglevel = settings.log_level.lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
if settings.log_format == "json":
    # One JSON object per line for gunicorn's error log, the workers' own logs and the access log (which then
    # carries the request id and the authenticated user itself; access_log_format is not used).
    logger_class = "taskledger.logformat.GunicornLogger"
proc_name = "taskledger-api"
# gunicorn's control socket lives in the user's home by default, shared by every instance of the
# same user; the service needs none.
control_socket_disable = True


# /metrics sums every worker only in Prometheus multiprocess mode: in every mode (not only under `taskledger
# serve`) the workers get a directory for their metric files, a private one unless PROMETHEUS_MULTIPROC_DIR
# names one. Set here in the master, before any worker forks; kept across a reload (HUP) of this file.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="taskledger-metrics-")


def wipe_metrics_dir() -> None:
    """A previous run's metric files would be summed in (counters of dead workers): the directory starts empty."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def on_starting(server):  # noqa: ANN001 -- gunicorn hook signature
    """The metric files start empty (once: not on a reload, when the live workers' files are in use). Under
    `taskledger serve` (TASKLEDGER_PARENT_PID), the master stops when serve dies, even by SIGKILL: an orphaned
    gunicorn would keep the port and answer without projections."""
    wipe_metrics_dir()
    parent = os.environ.get("TASKLEDGER_PARENT_PID")
    if not parent:
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):  # not Linux: the parent is still checked once here
        pass
    if os.getppid() != int(parent):  # serve died before the line above
        raise SystemExit(0)


def child_exit(server, worker):  # noqa: ANN001 -- gunicorn hook signature
    """Lets Prometheus multiprocess mode forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):  # noqa: ANN001 -- gunicorn hook signature
    """Workers may run at a lower CPU priority than the projections beside them (TASKLEDGER_API_NICE)."""
    if settings.api_nice:
        os.nice(settings.api_nice)


def post_worker_init(worker):  # noqa: ANN001 -- gunicorn hook signature
    """The app is built: its long-lived objects leave the cyclic collector's generations (gc.freeze), and
    collections of the young generation come less often. Requests allocate many short-lived containers;
    collecting them every 700 allocations cost ~10% of a write's CPU (bench/run.py)."""
    import gc

    gc.freeze()
    gc.set_threshold(7000, 20, 20)
