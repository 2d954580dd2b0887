"""Celery's side of the log lines: each names its task and task id, and the id of the web request that sent
the task (a message header), so one request's lines can be followed into the jobs it started."""

from __future__ import annotations

from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init, worker_process_init

from config.observability.logs import request_id_var, role, task_var

HEADER = "reco_request_id"
_tokens: dict[str, tuple] = {}


@worker_init.connect
@worker_process_init.connect
def _celery_role(**_: object) -> None:
    role["name"] = "celery"


@before_task_publish.connect
def _send_request_id(headers: dict | None = None, **_: object) -> None:
    if headers is not None and (request_id := request_id_var.get()):
        headers.setdefault(HEADER, request_id)


@task_prerun.connect
def _task_started(task_id: str = "", task=None, **_: object) -> None:
    sent = getattr(task.request, HEADER, None) if task is not None else None
    request_token = request_id_var.set(sent) if sent else None
    _tokens[task_id] = (task_var.set((getattr(task, "name", ""), task_id)), request_token)


@task_postrun.connect
def _task_finished(task_id: str = "", **_: object) -> None:
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        task_var.reset(tokens[0])
        if tokens[1] is not None:
            request_id_var.reset(tokens[1])
