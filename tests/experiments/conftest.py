"""Every experiments test starts with empty in-process caches and the real Operators group."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import Group

from events.models import EventType
from experiments.bandit_state import bandit_cache, bandit_load, exploration_log
from experiments.services import experiments_cache
from ranking.ml.bandit import GENRE_SLOTS, bandit_context, bandit_item_features
from tests.factories.auth import UserFactory
from tests.factories.catalog import TitleFactory
from tests.factories.events import ApiClientFactory, EventFactory
from tests.factories.users import ProfileFactory


@pytest.fixture(autouse=True)
def fresh_experiment_caches(settings):
    settings.RECO_EXPERIMENTS_CHECK_SECONDS = 0
    experiments_cache.__init__()
    bandit_cache.clear()
    yield
    experiments_cache.__init__()
    bandit_cache.clear()


@pytest.fixture
def operator(db):
    """A staff user in the Operators group that experiments migration 0002 creates."""
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    return user


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def api_client_app(db):
    """The app that reported the events (events.Event.client)."""
    return ApiClientFactory()


def serve(profile, titles, request_id: str, rng: np.random.Generator, k: int = 2):
    """What the engine does on a response with exploration slots: select with the bandit, log the picks."""
    bandit = bandit_load()
    affinity = np.zeros(GENRE_SLOTS)
    affinity[1] = 1.0
    context = bandit_context(1, 21, affinity)
    genres = np.zeros((len(titles), GENRE_SLOTS))
    genres[np.arange(len(titles)), np.arange(len(titles)) % 3] = 1
    items = bandit_item_features(
        genres, np.arange(len(titles), dtype=float), np.full(len(titles), 10.0), np.linspace(0, 1, len(titles))
    )
    chosen, propensities = bandit.policy.select(context, items, k, rng)
    exploration_log(
        request_id=request_id,
        profile_id=profile.pk,
        bandit=bandit,
        title_ids=[titles[i].pk for i in chosen],
        positions=[3 + 7 * slot for slot in range(k)],
        propensities=propensities,
        context=context,
        item_features=items[chosen],
        candidate_count=len(titles),
    )
    return [titles[i] for i in chosen], propensities


@pytest.fixture
def served(api_client_app):
    """Three responses with two bandit picks each, their impressions, and a click + play on one pick."""
    profile = ProfileFactory()
    titles = TitleFactory.create_batch(6)
    rng = np.random.default_rng(0)
    shown = []
    for n in range(3):
        picks, propensities = serve(profile, titles, f"req{n}", rng)
        for title, propensity in zip(picks, propensities, strict=True):
            EventFactory(
                client=api_client_app,
                profile=profile,
                type=EventType.IMPRESSION,
                request_id=f"req{n}",
                title=title,
                policy="bandit",
                propensity=float(propensity),
            )
            shown.append((f"req{n}", title))
    request_id, title = shown[0]
    EventFactory(client=api_client_app, profile=profile, type=EventType.CLICK, request_id=request_id, title=title)
    EventFactory(client=api_client_app, profile=profile, type=EventType.PLAY, request_id=request_id, title=title)
    return shown
