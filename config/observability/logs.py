"""JSON log lines carrying the request id (web) or the task and the request that sent it (Celery), with
secrets masked. LOG_FORMAT=plain gives the old one-line text instead."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("reco_request_id", default="")
task_var: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("reco_task", default=("", ""))

_CREDENTIALS_IN_URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]+@", re.IGNORECASE)
_SECRET_FIELD = re.compile(
    r"((?:x-api-key|api[_-]?key|authorization|password|passwd|secret|token)[\"']?\s*[:=]\s*"
    r"[\"']?)(?:bearer\s+)?[^\s\"',;&]+",
    re.IGNORECASE,
)
_SECRET_SETTINGS = ("SECRET_KEY", "RECO_METRICS_TOKEN", "AWS_SECRET_ACCESS_KEY")
role = {"name": ""}  # "celery" once a worker starts; else RECO_PROCESS ("web" in config/wsgi.py)
_BUILTIN = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Passwords in URLs, `key=value` / `Header: value` secrets and the configured secret values, masked."""
    text = _CREDENTIALS_IN_URL.sub(r"\1:***@", text)
    text = _SECRET_FIELD.sub(r"\1***", text)
    for value in _secret_values():
        text = text.replace(value, "***")
    return text


def _secret_values() -> list[str]:
    values = [os.environ.get(name, "") for name in _SECRET_SETTINGS]
    try:
        from django.conf import settings

        values += [str(getattr(settings, name, "") or "") for name in _SECRET_SETTINGS]
    except Exception:  # settings not configured yet: the environment's values only
        pass
    return [value for value in set(values) if len(value) >= 8]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "pid": record.process,
        }
        if process := role["name"] or os.environ.get("RECO_PROCESS"):
            line["process"] = process
        if request_id := request_id_var.get():
            line["request_id"] = request_id
        task, task_id = task_var.get()
        if task:
            line["task"], line["task_id"] = task, task_id
        for name, value in vars(record).items():  # what a caller passed as `extra=`
            if name not in _BUILTIN and not name.startswith("_"):
                line[name] = value if isinstance(value, int | float | bool) or value is None else redact(str(value))
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
