"""gunicorn settings for the web tier: `gunicorn -c config/gunicorn.py config.wsgi`.

The master imports Django and loads the catalog and the active models once, before it forks the workers
(preload_app and `when_ready`), so the workers share those pages copy-on-write (and the memory-mapped arrays
of the artifacts' private copies in any case). Every process then runs a monitor thread
(recommendations/serving/monitor.py) that re-verifies the served artifacts and publishes what the process
serves to the cache (the staff health page lists them). The master's monitor also notices a newly activated
version: it loads it and sends the master a SIGHUP, so that `on_reload` warms up again and fresh workers
share the new models, while the old workers finish their requests; until then each worker has already
switched by itself (its monitor refreshes its registry every RECO_REGISTRY_CHECK_SECONDS, off the request
path). No manual SIGHUP is needed. With the artifacts on a shared store (RECO_ARTIFACT_URL, or an NFS
RECO_ARTIFACT_DIR) every host's master does this by itself: each downloads the version into its own
RECO_SERVING_CACHE_DIR and re-forks its own workers.

Metrics (config/observability): every process writes its values under PROMETHEUS_MULTIPROC_DIR (default: a
directory of this master's own under the system's temporary one, removed on exit) and /metrics adds them up;
`child_exit` drops a dead worker's live gauges, stale files of an earlier run are removed at start.

Every value is read through the typed helpers of config/settings/env.py: GUNICORN_PRELOAD=0/false/off turns
preloading off (each worker then imports the app and loads the models itself), a malformed value stops
gunicorn with ImproperlyConfigured instead of being guessed at.
"""

import glob
import os
import shutil
import signal
import tempfile

from config.settings.env import env_bool, env_int, env_str

bind = env_str("GUNICORN_BIND", "127.0.0.1:8000")
workers = env_int("WEB_CONCURRENCY", 2)  # about one per core: a request is CPU-bound
worker_class = "sync"
timeout = env_int("GUNICORN_TIMEOUT", 60)
preload_app = env_bool("GUNICORN_PRELOAD", default=True)
_own_metrics_dir = os.path.join(tempfile.gettempdir(), f"reco-prometheus-{os.getpid()}")  # this master's
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or _own_metrics_dir
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={_metrics_dir}"]  # set before the app is imported (preloaded or not)


def _reload_master() -> None:
    os.kill(os.getpid(), signal.SIGHUP)  # handled by gunicorn's main loop: reload, on_reload, fresh workers


def on_starting(server) -> None:
    """Files a previous run's processes left in a reused directory would add their old counts to ours."""
    for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
        if not path.endswith(f"_{os.getpid()}.db"):
            os.remove(path)


def child_exit(server, worker) -> None:
    """In the master, after a worker exited: its live gauges (the versions it served) go; its counts stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def when_ready(server) -> None:
    """After the app is imported in the master, before any worker is forked."""
    if server.cfg.preload_app:  # otherwise the workers import the app themselves, after the fork
        from recommendations.serving.monitor import serving_monitor
        from recommendations.serving.state import warm_up

        warm_up()
        serving_monitor.start(role="master", on_models_changed=_reload_master)


def on_reload(server) -> None:
    """On SIGHUP (sent by the master's monitor after an activation, or by hand), in the master, before the
    new workers are forked: they inherit today's models."""
    if server.cfg.preload_app:
        from recommendations.serving.monitor import serving_monitor
        from recommendations.serving.state import warm_up

        warm_up()
        serving_monitor.models_shared()
        if not serving_monitor.running:  # preloading was off when the master started
            serving_monitor.start(role="master", on_models_changed=_reload_master)


def post_worker_init(worker) -> None:
    """In each worker, once it has the app: its own monitor (the parent's thread did not survive the fork).
    Without preloading the worker loads the models now, not on its first request."""
    from recommendations.serving.monitor import serving_monitor

    if not worker.cfg.preload_app:
        from recommendations.serving.state import warm_up

        warm_up()

    serving_monitor.start(role="worker", refresh_models=True)  # no request waits for a model download


def worker_exit(server, worker) -> None:
    """In the worker, as it exits: take its status off the list."""
    try:
        from recommendations.serving.monitor import serving_monitor
    except Exception:
        return
    serving_monitor.stop()


def on_exit(server) -> None:
    if _metrics_dir == _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
    if server.cfg.preload_app:
        from recommendations.serving.monitor import serving_monitor

        serving_monitor.stop()
