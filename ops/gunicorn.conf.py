"""gunicorn settings for the taskledger API (used by `taskledger serve` and in production).

Every value comes from the environment so one file serves the all-in-one mode and production.
"""

import multiprocessing
import os

bind = f"{os.environ.get('TASKLEDGER_BIND', '127.0.0.1')}:{os.environ.get('TASKLEDGER_PORT', '8080')}"
# Each worker builds its own application, pools included, after the fork (and, with gevent, after the
# monkey-patching: nothing here may import psycopg, whose wait function is chosen when it is imported).
wsgi_app = "taskledger.wsgi:create_app()"
workers = int(os.environ.get("TASKLEDGER_WORKERS", str(min(8, 2 * multiprocessing.cpu_count()))))
# gevent: a connection costs a greenlet, not a thread, so slow clients (slowloris, slow bodies) and
# openLooKeng long polls cannot take every request thread; the CPU work is the same. docs/serving.md has
# the measurements; gthread (TASKLEDGER_THREADS threads per worker) stays available.
worker_class = os.environ.get("TASKLEDGER_WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("TASKLEDGER_WORKER_CONNECTIONS", "1000"))
threads = int(os.environ.get("TASKLEDGER_THREADS", "2"))
timeout = 60
graceful_timeout = 20
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
accesslog = os.environ.get("TASKLEDGER_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("TASKLEDGER_LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
proc_name = "taskledger-api"
# gunicorn's control socket lives in the user's home by default, shared by every instance of the
# same user; the service needs none.
control_socket_disable = True


def child_exit(server, worker):  # noqa: ANN001 -- gunicorn hook signature
    """Lets Prometheus multiprocess mode forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):  # noqa: ANN001 -- gunicorn hook signature
    """Workers may run at a lower CPU priority than the projections beside them (TASKLEDGER_API_NICE)."""
    nice = int(os.environ.get("TASKLEDGER_API_NICE", "0"))
    if nice:
        os.nice(nice)


def post_worker_init(worker):  # noqa: ANN001 -- gunicorn hook signature
    """The app is built: its long-lived objects leave the cyclic collector's generations (gc.freeze), and
    collections of the young generation come less often. Requests allocate many short-lived containers;
    collecting them every 700 allocations cost ~10% of a write's CPU (bench/run.py)."""
    import gc

    gc.freeze()
    gc.set_threshold(7000, 20, 20)
