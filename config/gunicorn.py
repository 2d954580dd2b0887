"""gunicorn settings for the web tier: `gunicorn -c config/gunicorn.py config.wsgi`.

The master imports Django and loads the catalog and the active models once, before it forks the workers
(preload_app and `when_ready`), so the workers share those pages copy-on-write: the memory-mapped factor
matrices are shared in any case, and preloading also shares the interpreter, Django and the catalog arrays.
A worker builds its own copy when a model is activated or the catalog changes; `kill -HUP <master>` then makes
the master load the new state once and replace the workers (the old ones finish their requests), which share
it again. GUNICORN_PRELOAD=0 turns preloading off: each worker then imports the app and loads the models itself.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # about one per core: a request is CPU-bound
worker_class = "sync"
timeout = 60
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"


def when_ready(server) -> None:  # noqa: ANN001
    """After the app is imported in the master, before any worker is forked."""
    if server.cfg.preload_app:  # otherwise the workers import the app themselves, after the fork
        from recommendations.serving import warm_up

        warm_up()


def on_reload(server) -> None:  # noqa: ANN001
    """On SIGHUP, in the master, before the new workers are forked: they inherit today's models."""
    when_ready(server)
