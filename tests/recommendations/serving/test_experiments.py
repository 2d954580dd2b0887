"""Experiments on the serving path: arms assigned per profile, the popularity baseline, bandit exploration slots."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from experiments.models import ExplorationLog
from experiments.services import ArmSpec, experiment_create
from recommendations.models import ApiClient
from tests.conftest import serving_caches_reset
from users.models import ViewingEvent

KEY = "experiments-key-0123456789"


@pytest.fixture
def api(serving_world):
    experiment_create(
        name="homepage-test",
        status="running",
        salt="fixed-salt",
        arms=[
            ArmSpec("baseline", 0.5, is_baseline=True, popularity_only=True),
            ArmSpec("explore", 0.5, bandit_enabled=True),
        ],
    )
    serving_caches_reset()
    ApiClient.issue("experiments", key=KEY, rate="10000/min")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


def _profiles(n=12):
    return list(ViewingEvent.objects.order_by("profile_id").values_list("profile_id", flat=True).distinct()[:n])


def test_each_profile_gets_one_arm_every_time_and_arms_change_what_is_served(api):
    seen = {}
    for profile_id in _profiles():
        first = api.get("/api/recs", {"profile_id": profile_id, "n": 20, "rows": "false"}).json()
        second = api.get("/api/recs", {"profile_id": profile_id, "n": 20, "rows": "false"}).json()
        assert first["experiment"] == "homepage-test" and first["arm"] == second["arm"]
        seen.setdefault(first["arm"], []).append(first)
    assert set(seen) == {"baseline", "explore"}  # 12 profiles at 50/50: both arms (fixed salt)
    for body in seen["baseline"]:
        assert {item["policy"] for item in body["items"]} == {"popularity"}
    for body in seen["explore"]:
        shown = [item["content_id"] for item in body["items"]]
        assert len(shown) == 20 and len(set(shown)) == 20
        explored = [item for item in body["items"] if item["policy"] == "bandit"]
        assert explored and all(0 < item["propensity"] <= 1 for item in explored)
        logged = ExplorationLog.objects.filter(request_id=body["request_id"])
        assert {row.title_id for row in logged} == {item["content_id"] for item in explored}
        assert sorted(row.position for row in logged) == [item["rank"] for item in explored]
