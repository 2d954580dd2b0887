"""Log lines are JSON objects naming the request (web) or the task and the request that sent it (Celery),
and secrets never reach them (#18)."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest
from django.test import Client

from config.observability.logs import JsonFormatter, PlainFormatter, request_id_var

ROOT = Path(__file__).resolve().parent.parent.parent


def _line(message: str, *args: object, exc: bool = False, **extra: object) -> dict:
    record = logging.LogRecord("reco.test", logging.WARNING, __file__, 1, message, args, None)
    if exc:
        try:
            raise RuntimeError(message % args if args else message)
        except RuntimeError:
            import sys

            record.exc_info = sys.exc_info()
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_a_line_is_one_json_object_with_level_logger_message_and_request_id(monkeypatch):
    monkeypatch.setenv("RECO_PROCESS", "web")  # config/wsgi.py sets it after the logging module is imported
    token = request_id_var.set("a" * 32)
    try:
        line = _line("served %d items", 20, profile_id=7)
    finally:
        request_id_var.reset(token)
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "reco.test", "served 20 items")
    assert line["request_id"] == "a" * 32 and line["profile_id"] == 7 and line["time"].endswith("+00:00")
    assert line["process"] == "web"
    assert "request_id" not in _line("outside any request")


def test_secrets_are_masked_in_messages_extras_and_tracebacks(settings):
    settings.SECRET_KEY = "the-django-secret-key-" + "z" * 40
    settings.RECO_METRICS_TOKEN = "metrics-token-987654321"
    leaks = ("s3cr3t-pw", settings.SECRET_KEY, settings.RECO_METRICS_TOKEN, "live-api-key-0123")
    line = _line(
        "connecting to postgres://reco:s3cr3t-pw@db:5432/reco with X-Api-Key: live-api-key-0123 and key %s, token=%s",
        settings.SECRET_KEY,
        settings.RECO_METRICS_TOKEN,
        exc=True,
        url="redis://:s3cr3t-pw@cache:6379/0",
    )
    text = json.dumps(line)
    assert not [leak for leak in leaks if leak in text], text
    assert "postgres://reco:***@db:5432/reco" in line["message"] and "redis://:***@cache" in line["url"]
    plain = PlainFormatter("%(message)s").format(logging.makeLogRecord({"msg": "password=hunter2-hunter2"}))
    assert "hunter2" not in plain


@pytest.mark.django_db
def test_every_line_a_request_logs_carries_the_id_its_response_names():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("django.request")  # logs the 404 after the middleware chain has answered
    logger.addHandler(handler)
    try:
        response = Client().get("/no-such-page")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert response.status_code == 404 and lines
    assert {line["request_id"] for line in lines} == {response["X-Request-Id"]}
    assert request_id_var.get() == ""


def test_a_celery_task_logs_its_name_id_and_the_request_that_sent_it(transactional_db, celery_worker_process):
    from tasks.maintenance import mark_lost_job_runs

    token = request_id_var.set("b" * 32)
    try:
        sent = mark_lost_job_runs.delay()
    finally:
        request_id_var.reset(token)
    sent.get(timeout=60)
    log = ROOT / "var" / f"{celery_worker_process}.log"
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(text) for text in log.read_text().splitlines() if text.startswith("{")]
        mine = [line for line in lines if line.get("task_id") == sent.id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mine, log.read_text()[-3000:]
    assert all(
        line["task"] == "tasks.maintenance.mark_lost_job_runs"
        and line["request_id"] == "b" * 32
        and line["process"] == "celery"
        for line in mine
    )
