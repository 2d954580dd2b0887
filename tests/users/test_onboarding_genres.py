"""Synthetic profiles pick onboarding genres by their taste, and loading writes them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from users.loaders.synthetic import GENRES, ONBOARDING_GENRES, SyntheticConfig, generate

CONFIG = SyntheticConfig(titles=200, accounts=600, events=2_000, seed=4, as_of=dt.date(2026, 6, 1))


def test_a_share_of_profiles_picks_three_genres_it_likes():
    dataset, truth = generate(CONFIG)
    picks = dataset.profile_genres
    per_profile = picks.groupby("profile_index")["genre"].agg(list)
    assert 0.3 < len(per_profile) / len(dataset.profiles) < 0.5
    assert all(len(set(genres)) == ONBOARDING_GENRES for genres in per_profile)
    favourite = np.asarray(GENRES)[truth.profile_genre_taste[per_profile.index.to_numpy()].argmax(axis=1)]
    assert np.mean([f in genres for f, genres in zip(favourite, per_profile, strict=True)]) > 0.5  # at random: 0.14

    again, _ = generate(CONFIG)
    pd.testing.assert_frame_equal(picks, again.profile_genres)


def test_loading_the_world_writes_the_onboarding_genres(serving_world):
    from users.models import Profile

    picked = Profile.onboarding_genres.through.objects.values_list("profile_id", flat=True)
    assert 0.3 < len(set(picked)) / Profile.objects.count() < 0.5
    assert len(picked) == ONBOARDING_GENRES * len(set(picked))
