"""Ranker training from the database: a cutoff, labels after it, registration, and serving with the ranker."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
from django.core.management import call_command

from features import snapshots
from features.ml.compute import FeatureMatrix
from features.ml.definitions import USER, USER_FEATURES
from features.services import content_features_refresh
from features.store import FeatureStore
from recommendations.models import ModelKind, ModelVersion
from recommendations.serving.context import UserContext, profile_state_load
from recommendations.serving.engine import RecommendationEngine
from recommendations.serving.state import serving_state
from recommendations.training.ranker_fit import features_as_of, ranker_train
from tests.conftest import SERVING_NOW, serving_caches_reset
from users.models import ViewingEvent

CUTOFF = SERVING_NOW - dt.timedelta(days=21)


def test_a_ranker_trained_before_a_cutoff_is_registered_activated_and_served(serving_world):
    trained = ranker_train(cutoff=CUTOFF, label_days=21, profiles=400, params={"num_leaves": 15})
    serving_caches_reset()

    version = trained.version
    assert trained.activated and version.kind == ModelKind.RANKER and version.status == ModelVersion.Status.ACTIVE
    assert version.data_to == CUTOFF  # nothing after the cutoff went into its inputs
    metrics = version.metrics
    assert metrics["queries"] > 50 and metrics["positives"] > 0
    assert 0 < metrics["ndcg_at_10"] <= 1 and 0 <= metrics["baseline_ndcg_at_10"] <= 1
    assert set(metrics["features_source"]) == {"user", "content"}  # snapshot or computed, and which

    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    content_features_refresh(as_of=SERVING_NOW, store=store)
    profile_id = ViewingEvent.objects.order_by("-profile_id").values_list("profile_id", flat=True)[0]
    result = RecommendationEngine(store=store).recommend(context=UserContext(profile_id=profile_id), n=20)
    assert result.model_versions["ranker"] == version.version
    assert "no_ranker" not in result.degraded and "ranker_failed" not in result.degraded
    assert len(result.items) == 20 and np.isfinite([i.score for i in result.items]).all()
    assert serving_state.models().get(ModelKind.RANKER).model.backend == "lleaves"  # the compiled forest serves


def test_history_as_of_a_cutoff_sees_nothing_later(serving_world):
    viewing = ViewingEvent.objects.filter(last_watched_at__gte=CUTOFF).order_by("id").first()
    state = profile_state_load(profile_id=viewing.profile_id, before=CUTOFF)
    assert (state.history_last_watched < CUTOFF.timestamp()).all()
    later = set(
        ViewingEvent.objects.filter(profile_id=viewing.profile_id, last_watched_at__gte=CUTOFF).values_list(
            "started_at", flat=True
        )
    )
    assert (
        later
        and len(state.history_title_ids)
        == ViewingEvent.objects.filter(profile_id=viewing.profile_id, last_watched_at__lt=CUTOFF).count()
    )


def test_train_models_command_trains_the_ranker_too(serving_world, capsys):
    # 300 profiles: a quarter of them held out is above the gate's floor of 50 validation queries.
    call_command("train_models", "--kinds", "ranker", "--until", SERVING_NOW.isoformat(), "--ranker-profiles", "300")
    assert "ranker" in capsys.readouterr().out
    assert ModelVersion.objects.filter(kind=ModelKind.RANKER, status=ModelVersion.Status.ACTIVE).exists()


def test_clicks_logged_through_the_events_api_are_weak_positives(serving_world):
    from events.models import EventType
    from recommendations.training.ranker_fit import CLICK_RATING, _outcomes
    from tests.factories.events import EventFactory

    viewing = ViewingEvent.objects.order_by("id").first()
    EventFactory(
        type=EventType.CLICK,
        profile_id=viewing.profile_id,
        title_id=viewing.title_id,
        occurred_at=CUTOFF + dt.timedelta(days=1),
    )
    outcomes = _outcomes(CUTOFF, CUTOFF + dt.timedelta(days=21))
    clicked = outcomes[(outcomes["user_id"] == viewing.profile_id) & (outcomes["content_id"] == viewing.title_id)]
    assert CLICK_RATING in clicked["rating"].tolist()


def _hours(ids: list[int], hours: float) -> FeatureMatrix:
    values = np.tile(USER_FEATURES.defaults, (len(ids), 1))
    values[:, USER_FEATURES.slices["total_watch_hours"]] = hours
    return FeatureMatrix(USER_FEATURES, np.asarray(ids, np.int64), values)


def test_training_features_come_from_the_snapshot_before_the_cutoff_never_a_later_one(tmp_path):
    location = str(tmp_path / "offline")
    snapshots.snapshot_write(
        entity_type=USER, as_of=CUTOFF - dt.timedelta(days=1), chunks=[_hours([1, 2], 3.0)], location=location
    )
    snapshots.snapshot_write(
        entity_type=USER, as_of=CUTOFF + dt.timedelta(seconds=1), chunks=[_hours([1, 2], 999.0)], location=location
    )  # written after the cutoff: must not reach a training row

    def never() -> FeatureMatrix:
        raise AssertionError("a snapshot covers the cutoff: nothing is computed")

    matrix, source = features_as_of(USER, np.array([1, 2, 3]), CUTOFF, never, location=location)
    hours = matrix.column("total_watch_hours")
    assert hours.tolist() == [3.0, 3.0, USER_FEATURES.defaults[USER_FEATURES.slices["total_watch_hours"]][0]]
    assert 999.0 not in matrix.values
    assert source.startswith("offline snapshot as of") and "1 of 3 not in it" in source


def test_training_features_are_computed_when_no_snapshot_covers_the_cutoff(tmp_path):
    location = str(tmp_path / "offline")
    snapshots.snapshot_write(
        entity_type=USER, as_of=CUTOFF + dt.timedelta(days=1), chunks=[_hours([1], 999.0)], location=location
    )
    computed = _hours([1], 7.0)
    matrix, source = features_as_of(USER, np.array([1]), CUTOFF, lambda: computed, location=location)
    assert matrix is computed and source.startswith("computed as of the cutoff (no snapshot")
