"""gunicorn's master builds the serving state once before forking its workers (config/gunicorn.py)."""

from __future__ import annotations

import gc

from django.db import connections

from recommendations.serving.context import UserContext
from recommendations.serving.engine import RecommendationEngine
from recommendations.serving.state import serving_state, warm_up
from tests.forking import in_forked_child
from users.models import ViewingEvent


def test_the_warm_up_builds_the_serving_state_and_leaves_no_connection_open(committed_serving_world):
    gc.unfreeze()
    models = warm_up()
    assert models is not None and len(models.versions) == 3  # popularity, MF and content
    assert all(connection.connection is None for connection in connections.all())  # nothing crosses a fork
    assert gc.get_freeze_count() > 10_000
    gc.unfreeze()


def test_a_forked_worker_serves_from_the_inherited_state_without_rebuilding_it(committed_serving_world):
    profile_id = ViewingEvent.objects.values_list("profile_id", flat=True).order_by("-profile_id").first()
    models = warm_up()

    def worker() -> str:
        result = RecommendationEngine().recommend(context=UserContext(profile_id=profile_id), n=10)
        return f"{serving_state.models() is models} {len(result.items)}"

    assert in_forked_child(worker) == "True 10"
    assert serving_state.models() is models  # the parent's state is untouched too


def test_a_failed_warm_up_is_logged_and_never_keeps_the_server_from_starting(transactional_db, monkeypatch, caplog):
    def broken() -> None:
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(serving_state, "models", broken)
    assert warm_up() is None
    assert "warm-up skipped" in caplog.text and "artifact store unreachable" in caplog.text
    assert all(connection.connection is None for connection in connections.all())
