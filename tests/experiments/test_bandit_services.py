"""The bandit's state: picks logged with what the policy saw, rewards folded from events once, kept across restarts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from events.models import Event, EventType
from experiments.bandit_state import (
    BANDIT_HOMEPAGE,
    bandit_cache,
    bandit_load,
    bandit_update_from_events,
    exploration_log,
    exploration_logs_prune,
)
from experiments.models import BanditState, ExplorationLog
from ranking.ml.bandit import GENRE_SLOTS, bandit_context, bandit_item_features
from tests.factories.catalog import TitleFactory
from tests.factories.events import EventFactory
from tests.factories.experiments import ExplorationLogFactory

pytestmark = pytest.mark.django_db
NO_SETTLE = dt.timedelta(0)


def test_exploration_log_keeps_what_the_policy_saw(served):
    row = ExplorationLog.objects.get(request_id=served[0][0], title=served[0][1])
    assert row.bandit == BANDIT_HOMEPAGE and row.bandit_version == 0 and row.position in (3, 10)
    assert 0 < row.propensity <= 1
    assert np.frombuffer(bytes(row.context), np.float32)[0] == 1.0
    assert ExplorationLog.objects.count() == 6


def test_logging_the_same_response_twice_adds_nothing(served):
    row = ExplorationLog.objects.first()
    again = exploration_log(
        request_id=row.request_id,
        profile_id=row.profile_id,
        bandit=bandit_load(),
        title_ids=[row.title_id],
        positions=[row.position],
        propensities=[row.propensity],
        context=np.frombuffer(bytes(row.context), np.float32),
        item_features=np.frombuffer(bytes(row.item_features), np.float32)[None, :],
        candidate_count=row.candidate_count,
    )
    assert ExplorationLog.objects.count() == 6
    assert again <= 1  # bulk_create with ignore_conflicts cannot tell how many were skipped


def test_update_folds_each_impression_once_with_its_engagement(served):
    update = bandit_update_from_events(settle=NO_SETTLE)

    assert (update.folded, update.reward_sum, update.version) == (6, pytest.approx(0.4), 1)
    state = BanditState.objects.get(name=BANDIT_HOMEPAGE)
    assert (state.impressions_seen, state.reward_sum, state.version) == (6, pytest.approx(0.4), 1)

    again = bandit_update_from_events(settle=NO_SETTLE)
    assert (again.folded, again.version) == (0, 1)
    state.refresh_from_db()
    assert (state.impressions_seen, state.version) == (6, 1)


def test_impressions_still_settling_wait_for_a_later_run(served):
    assert bandit_update_from_events().folded == 0  # received just now, settle is 3 hours
    first_event = Event.objects.order_by("id").values_list("id", flat=True).first()
    assert BanditState.objects.get().last_event_id < first_event  # the cursor stops before unsettled events
    later = timezone.now() + dt.timedelta(hours=4)
    assert bandit_update_from_events(now=later).folded == 6


def test_state_survives_a_restart(served):
    before = bandit_load()
    bandit_update_from_events(settle=NO_SETTLE)
    bandit_cache.clear()  # a new process

    after = bandit_load()

    assert (before.version, after.version) == (0, 1)
    assert after.policy.impressions_seen == 6
    stored = BanditState.objects.get()
    assert stored.policy_kind == "linucb_softmax" and stored.last_event_id > 0
    context = bandit_context(1, 21, np.eye(GENRE_SLOTS)[1])
    items = bandit_item_features(np.eye(GENRE_SLOTS)[:4], np.arange(4.0), np.full(4, 10.0), np.linspace(0, 1, 4))
    assert not np.allclose(after.policy.probabilities(context, items), before.policy.probabilities(context, items))


def test_the_cache_reloads_only_a_new_version(served, settings, django_assert_num_queries):
    bandit_update_from_events(settle=NO_SETTLE)
    loaded = bandit_load()
    with django_assert_num_queries(1):  # the version check, not the arrays
        assert bandit_load() is loaded
    settings.RECO_EXPERIMENTS_CHECK_SECONDS = 3600
    with django_assert_num_queries(0):
        assert bandit_load() is loaded


def test_impressions_without_a_log_row_are_skipped_but_passed(api_client_app):
    title = TitleFactory()
    EventFactory(client=api_client_app, type=EventType.IMPRESSION, request_id="nolog", title=title, policy="bandit")
    update = bandit_update_from_events(settle=NO_SETTLE)
    assert update.folded == 0 and update.last_event_id > 0


def test_since_id_only_skips_forward(served):
    first_ids = bandit_update_from_events(settle=NO_SETTLE, batch_size=2)
    assert first_ids.folded == 2
    assert bandit_update_from_events(since_id=0, settle=NO_SETTLE, batch_size=100).folded == 4  # not the first 2 again


def test_old_log_rows_are_pruned():
    ExplorationLogFactory(created_at=timezone.now() - dt.timedelta(days=40))
    kept = ExplorationLogFactory()
    assert exploration_logs_prune(older_than=timezone.now() - dt.timedelta(days=30)) == 1
    assert list(ExplorationLog.objects.all()) == [kept]
