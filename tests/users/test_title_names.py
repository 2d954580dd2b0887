"""Synthetic title names are distinct (issue #18: 788 repeats in the demo world, three "Machine of the Lantern"),
and naming them so changes nothing else of a seeded world."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from users.loaders import synthetic
from users.loaders.naming import SUBTITLES, distinct_title_names
from users.loaders.synthetic import SyntheticConfig, generate

DEMO = SyntheticConfig(titles=3_000, accounts=200, events=5_000, seed=42, as_of=dt.date(2026, 6, 1))


def test_the_demo_worlds_titles_have_distinct_names():
    dataset, _ = generate(DEMO)
    assert dataset.titles["name"].is_unique


def test_only_the_names_and_the_synopses_that_quote_them_change(monkeypatch):
    dataset, truth = generate(DEMO)
    monkeypatch.setattr(synthetic, "distinct_title_names", lambda names: names)  # the names as drawn before
    drawn, drawn_truth = generate(DEMO)

    renamed = dataset.titles["name"] != drawn.titles["name"]
    assert renamed.sum() > 0 and drawn.titles["name"].duplicated().sum() == renamed.sum()
    pd.testing.assert_frame_equal(
        dataset.titles.drop(columns=["name", "synopsis"]), drawn.titles.drop(columns=["name", "synopsis"])
    )
    for name in ("title_genres", "title_countries", "people", "credits", "accounts", "profiles"):
        pd.testing.assert_frame_equal(getattr(dataset, name), getattr(drawn, name))
    events = pd.concat([pd.DataFrame(c.columns) for c in dataset.events], ignore_index=True)
    drawn_events = pd.concat([pd.DataFrame(c.columns) for c in drawn.events], ignore_index=True)
    pd.testing.assert_frame_equal(events, drawn_events)
    np.testing.assert_array_equal(truth.title_factors, drawn_truth.title_factors)


def test_repeats_get_a_subtitle_each_and_the_first_keeps_its_name():
    names = np.array(["Silent Harbor", "Lost River", "Silent Harbor", "Silent Harbor"], dtype=object)
    out = distinct_title_names(names)
    assert out[0] == "Silent Harbor" and out[1] == "Lost River"
    assert out[2].startswith("Silent Harbor: ") and out[3].startswith("Silent Harbor: ") and out[2] != out[3]
    many = distinct_title_names(np.array(["Code"] * (len(SUBTITLES) + 5), dtype=object))
    assert len(set(many)) == len(many) and many[-1].endswith(", Part 2")
