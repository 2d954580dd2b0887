"""The oracle arm and the closed loop on the small serving world: real serving, events, jobs and gate."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from catalog.models import MaturityRating, Title
from events.models import Event
from experiments.closed_loop import LoopConfig, SimulatedWorld, default_arms, loop_run
from experiments.ml.closed_loop import VisitModel
from features.services import content_features_refresh
from features.store import FeatureStore
from recommendations.models import ModelKind, ModelVersion
from recommendations.serving.context import UserContext
from recommendations.serving.engine import RecommendationEngine, Variant
from recommendations.serving.state import serving_state
from tests.conftest import SERVING_NOW
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import ViewingEvent

ORACLE = Variant(experiment="sim", arm="oracle", oracle=True)


def _engine(scorer) -> RecommendationEngine:
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    content_features_refresh(as_of=SERVING_NOW, store=store)
    return RecommendationEngine(store=store, use_cache=False, oracle_scorer=scorer)


def test_the_oracle_arm_orders_allowed_titles_by_its_scorer_under_the_same_rules(serving_world):
    by_id = lambda profile_id, ids: -np.asarray(ids, float)  # noqa: E731 (the lowest ids are the best)
    engine = _engine(by_id)
    account = AccountFactory()
    kids = ProfileFactory(account=account, slot=3, is_kids=True, maturity_cap=MaturityRating.AGE_7)
    catalog = serving_state.models().catalog
    allowed = np.sort(
        catalog.content_ids[
            catalog.allowed(tier=account.subscription_tier, country=account.country, maturity_cap=MaturityRating.AGE_7)
        ]
    ).tolist()
    assert (
        len(allowed) > 11
        and Title.objects.filter(pk__in=allowed, maturity_rating__gt=MaturityRating.AGE_7).count() == 0
    )
    ViewingEventFactory(
        profile=kids, title=Title.objects.get(pk=allowed[0]), watch_percentage=1.0
    )  # completed: never again

    result = engine.recommend(context=UserContext(profile_id=kids.pk), n=10, with_rows=False, variant=ORACLE)

    shown = [item.content_id for item in result.items]
    assert shown == allowed[1:11]
    assert all(item.policy == "oracle" for item in result.items) and result.arm == "oracle"
    with pytest.raises(ValueError, match="oracle_scorer"):
        _engine(None).recommend(context=UserContext(profile_id=kids.pk), n=5, variant=ORACLE)


def test_the_closed_loop_serves_ingests_retrains_and_measures_every_arm_against_the_oracle(serving_world, tmp_path):
    world = SimulatedWorld.load(tmp_path / "truth")
    history = ViewingEvent.objects.count()
    mf_versions = ModelVersion.objects.filter(kind=ModelKind.MATRIX_FACTORIZATION).count()
    days = []

    figures = loop_run(
        world,
        default_arms(),
        LoopConfig(days=2, seed=3, visits=VisitModel(daily_share=0.3)),
        head=world.rows_of_titles(np.arange(1, 60)),
        on_day=lambda day, run: days.append(run),
    )

    assert len(figures.days) == 2 and len(days) == 2
    for day in figures.days:
        assert set(day) == {"popularity", "production", "oracle"} and all(f["visits"] > 0 for f in day.values())
        assert day["oracle"]["share_of_oracle"] == 1.0
        assert day["oracle"]["engagement"] > day["popularity"]["engagement"]
    assert set(Event.objects.filter(type="impression").values_list("arm", flat=True)) == {"popularity", "production"}
    assert ViewingEvent.objects.count() > history  # the plays reached history through the events service
    assert ModelVersion.objects.filter(kind=ModelKind.MATRIX_FACTORIZATION).count() == mf_versions + 2  # daily
    assert {"features", "bandit", "train_mf", "train_content", "train_taste"} <= set(days[0].seconds)
    from recommendations.serving.taste_arm import title_outcomes

    outcomes = title_outcomes()  # the impressions' clicks, per title, for the taste arm's exploration
    assert outcomes is not None and outcomes.examinations.sum() > 0 and 0 < outcomes.mean < 1
    assert np.isfinite(days[0].request_ms).all()


def test_ab_test_reads_each_arm_against_the_oracle_served_in_shadow(serving_world, tmp_path, capsys):
    from django.core.management import call_command

    from tests.conftest import serving_caches_reset

    serving_caches_reset()
    call_command(
        "ab_test",
        "--users",
        "80",
        "--seed",
        "4",
        "--ground-truth-dir",
        str(tmp_path / "truth"),
        "--plot",
        str(tmp_path / "ab.png"),
    )

    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("oracle"))
    assert "baseline" in line and "new_ranking_model" in line
    assert not Event.objects.filter(arm="oracle").exists() and not Event.objects.filter(policy="oracle").exists()


def test_label_debiasing_weights_the_training_labels_and_is_recorded_with_the_version(serving_world):
    from recommendations import selectors
    from recommendations.training.jobs import LABEL_DEBIAS, debiased_labels, model_train

    history = selectors.training_interactions()[["user_id", "content_id", "rating"]]
    weighted = debiased_labels(history, power=0.5)
    views = history["content_id"].map(history["content_id"].value_counts())
    ratio = weighted["rating"] / history["rating"].where(history["rating"] > 0)
    assert ratio[views == views.max()].mean() < ratio[views == views.min()].mean()  # rarely shown: heavier

    result = model_train(kind=ModelKind.MATRIX_FACTORIZATION, params={LABEL_DEBIAS: 0.5}, activation="never")
    assert result.version.params[LABEL_DEBIAS] == 0.5 and "n_factors" in result.version.params


def test_the_taste_arm_serves_unwatched_allowed_titles_of_the_viewers_genres_from_the_fitted_model(serving_world):
    from recommendations.ml.taste import WEIGHTS_FILE
    from recommendations.serving.taste_arm import TASTE, taste_directory
    from recommendations.training.taste_fit import taste_train

    engine = _engine(None)
    viewer = ViewingEvent.objects.values_list("profile_id", flat=True).first()
    finished = set(
        ViewingEvent.objects.filter(profile_id=viewer, watch_percentage__gte=0.9).values_list("title_id", flat=True)
    )
    greedy = Variant(experiment="sim", arm="taste", taste=True, taste_explore=0.0)
    before = engine.recommend(context=UserContext(profile_id=viewer), n=10, with_rows=False, variant=greedy)

    model = taste_train()

    assert model.viewings == ViewingEvent.objects.count() and (taste_directory() / WEIGHTS_FILE).exists()
    after = engine.recommend(context=UserContext(profile_id=viewer), n=10, with_rows=False, variant=greedy)
    for page in (before, after):
        assert len(page.items) == 10 and all(item.sources == (TASTE,) for item in page.items)
        assert not finished & {item.content_id for item in page.items}
    from recommendations.ml.taste import title_outcomes

    title_outcomes(np.array([viewer]), np.array([1]), np.array([True])).save(taste_directory())  # all: the prior
    explored = Variant(experiment="sim", arm="taste", taste=True, taste_explore=3.0)
    pages = {
        tuple(i.content_id for i in engine.recommend(context=UserContext(profile_id=viewer), n=10, variant=explored))
        for _ in range(3)
    }
    assert len(pages) > 1  # Thompson draws: each visit another page
    newcomer = ProfileFactory()  # no history and no onboarding genres: the standard candidates
    page = engine.recommend(context=UserContext(profile_id=newcomer.pk), n=5, with_rows=False, variant=greedy)
    assert page.items and all(item.sources != (TASTE,) for item in page.items)
