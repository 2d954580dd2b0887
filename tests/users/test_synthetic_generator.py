"""The synthetic world as plain numpy/pandas: deterministic and shaped like a streaming service."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from users.loaders.synthetic import GENRES, KIDS_GENRES, GroundTruth, SyntheticConfig, generate

CONFIG = SyntheticConfig(titles=3_000, accounts=800, events=120_000, seed=11, as_of=dt.date(2026, 6, 1))


@pytest.fixture(scope="module")
def world():
    dataset, truth = generate(CONFIG)
    events = pd.concat([pd.DataFrame(chunk.columns) for chunk in dataset.events], ignore_index=True)
    return dataset, truth, events


def _frames_equal(a, b) -> None:
    for name in ("titles", "title_genres", "title_countries", "people", "credits", "accounts", "profiles"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_same_config_gives_identical_data(world):
    dataset, truth, events = world
    again, again_truth = generate(CONFIG)
    again_events = pd.concat([pd.DataFrame(c.columns) for c in again.events], ignore_index=True)

    _frames_equal(dataset, again)
    pd.testing.assert_frame_equal(events, again_events)
    np.testing.assert_array_equal(truth.profile_factors, again_truth.profile_factors)


def test_another_seed_gives_other_data(world):
    dataset, _, events = world
    other, _ = generate(SyntheticConfig(**{**CONFIG.__dict__, "seed": 12}))
    other_events = pd.concat([pd.DataFrame(c.columns) for c in other.events], ignore_index=True)

    assert not dataset.titles["name"].equals(other.titles["name"])
    assert not np.array_equal(events["title_index"].to_numpy()[:1000], other_events["title_index"].to_numpy()[:1000])


def test_catalog_shape(world):
    dataset, _, _ = world
    titles = dataset.titles
    assert 0.10 <= titles["is_original"].mean() <= 0.15
    added = pd.to_datetime(titles["date_added"])
    as_of = pd.Timestamp(CONFIG.as_of)
    assert (added < as_of).all()
    assert (added >= as_of - pd.Timedelta(days=30)).sum() > 0, "a steady stream of new additions"
    assert (pd.to_datetime(titles["release_date"]) <= added).all()
    assert set(titles["kind"]) == {"movie", "series"}
    # Cast is shared: the busiest actor appears in many titles.
    assert dataset.credits[dataset.credits["role"] == "cast"]["person_index"].value_counts().iloc[0] >= 20


def test_audience_shape(world):
    dataset, _, _ = world
    per_account = dataset.profiles.groupby("account_index").size()
    assert per_account.min() >= 1 and per_account.max() <= 5
    assert 2.0 <= per_account.mean() <= 3.0
    kids = dataset.profiles[dataset.profiles["is_kids"]]
    assert len(kids) > 0 and (kids["maturity_cap"] <= 7).all()


def test_popularity_has_a_long_tail(world):
    _, _, events = world
    views = events["title_index"].value_counts()
    top_share = views.iloc[: len(views) // 100].sum() / len(events)
    assert top_share > 0.2, "the top 1 % of titles take a large share of views"
    assert (views == 1).sum() > 0, "and many titles are barely watched"


def test_viewing_respects_availability_and_maturity(world):
    dataset, _, events = world
    titles = dataset.titles
    profiles = dataset.profiles
    maturity = titles["maturity_rating"].to_numpy()[events["title_index"]]
    cap = profiles["maturity_cap"].to_numpy()[events["profile_index"]]
    kids = profiles["is_kids"].to_numpy()[events["profile_index"]]
    assert (maturity[kids] <= 7).all()
    tier = dataset.accounts["subscription_tier"].to_numpy()[profiles["account_index"].to_numpy()][
        events["profile_index"]
    ]
    mask = titles["available_tiers"].to_numpy()[events["title_index"]]
    assert ((mask >> (tier - 1)) & 1).all()
    added = pd.to_datetime(titles["date_added"]).to_numpy()[events["title_index"]]
    assert (events["started_at"].to_numpy() >= added).all()
    assert cap.min() >= 0


def test_history_has_partial_watches_binges_and_evening_tv(world):
    dataset, _, events = world
    in_progress = events["watch_percentage"].between(0.1, 0.9)
    assert 0.1 < in_progress.mean() < 0.7
    assert events["completed"].equals(events["watch_percentage"] >= 0.9)
    assert (events["last_watched_at"] >= events["started_at"]).all()

    series = dataset.titles["kind"].to_numpy()[events["title_index"]] == "series"
    same_as_previous = (events["title_index"].diff() == 0) & (events["profile_index"].diff() == 0)
    assert (same_as_previous & series).sum() > 1000, "series are binged episode after episode"

    tv_hours = events.loc[events["device_type"] == 1, "started_at"].dt.hour
    assert tv_hours.between(18, 23).mean() > 0.5


def test_taste_drives_choice(world):
    dataset, truth, events = world
    watched = truth.affinity(events["profile_index"].to_numpy(), events["title_index"].to_numpy())
    rng = np.random.default_rng(0)
    random_titles = rng.integers(0, len(dataset.titles), len(events))
    baseline = truth.affinity(events["profile_index"].to_numpy(), random_titles)
    assert watched.mean() > baseline.mean() + 0.5 * baseline.std()

    kids_genre = [GENRES.index(g) for g in KIDS_GENRES]
    kids = dataset.profiles["is_kids"].to_numpy()
    assert truth.profile_genre_taste[kids][:, kids_genre].sum(axis=1).mean() > 0.8


def test_ground_truth_round_trip(world, tmp_path):
    _, truth, _ = world
    truth.save(tmp_path)
    loaded = GroundTruth.load(tmp_path)

    assert loaded.config == truth.config
    np.testing.assert_array_equal(loaded.title_factors, truth.title_factors)
    np.testing.assert_array_equal(loaded.title_external_ids, truth.title_external_ids)
    assert len(loaded.profile_slots) == len(loaded.profile_factors)


def test_no_viewing_runs_past_as_of_and_starts_are_unique(world):
    _, _, events = world
    assert (events["last_watched_at"] <= pd.Timestamp(CONFIG.as_of)).all()
    assert not events.duplicated(subset=["profile_index", "title_index", "started_at"]).any()
