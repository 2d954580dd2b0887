"""The feature sets as data: ordered names, dtypes, declared defaults and a schema version per entity type.

Pure Python and numpy (no Django): the ML code and the store both read it. Every value is stored as
float32 in the schema's order; `dtype` is the type readers get back. Defaults equal what an entity with
no viewings computes to, so a missing key and an empty history look the same to a model; rates with no
denominator are NaN, which LightGBM treats as missing.

Definitions (times in UTC; only viewings that started before `as_of` count):
- total_watch_hours: sum of watch_seconds / 3600.
- avg_session_duration: minutes watched per session. A session is a run of a profile's viewings, in
  start order, each starting less than SESSION_GAP_MINUTES after the latest end (last_watched_at) of the
  viewings before it in the run.
- favorite_genres: the 3 genre ids with the highest genre_affinity (ties: lower id first), -1 when fewer
  than 3 genres have any watch time.
- completion_rate: share of viewings marked completed.
- binge_watching_score: share of viewings that are part of a binge, i.e. a session with at least
  BINGE_MIN_EPISODES viewings of the same series.
- genre_affinity: watch time per genre slot (a title's watch time split evenly over its genres), divided
  by the total, so the vector sums to 1 (all zeros with no watch time). Slot i is the i-th genre by id.
- view_count_7d: viewings that started in [as_of - 7 days, as_of).
- popularity_score: sum over viewings of 0.9 ** days_old (fractional days), over the last
  POPULARITY_HORIZON_DAYS (older views weigh under 1e-16 each).
- trending_score: log(1 + views in the last 7 days) - log(1 + views in the 7 days before): 0 is flat,
  +0.69 doubled; the +1 keeps new and tiny titles from exploding.
- avg_completion_rate: share of the title's viewings completed (all time).
- avg_rating: mean watch_percentage * 5 (MovieLens ratings load as watch_percentage = rating / 5).
- genre_indicator: 1 in the slots of the title's genres (for the interaction genre_affinity).
Interaction features, computed at request time from the two sets above and the profile's history:
- has_watched (0/1), watch_percentage (max over the profile's viewings of the title), days_since_watched
  (from the latest last_watched_at; NaN if never), genre_affinity (cosine between the profile's affinity
  vector and the title's genre indicator, 0..1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

GENRE_SLOTS = 32  # MovieLens (18) plus synthetic (22) genres make 24; more needs a schema bump
SESSION_GAP_MINUTES = 30
BINGE_MIN_EPISODES = 3
POPULARITY_DECAY = 0.9
POPULARITY_HORIZON_DAYS = 365
TRENDING_WINDOW_DAYS = 7

USER = "user"
CONTENT = "content"
INTERACTION = "interaction"
NAN = float("nan")


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # what readers get back: "float32", "int32" or "bool"
    default: float  # per element
    width: int = 1  # > 1 for vectors


@dataclass(frozen=True)
class FeatureSet:
    entity_type: str
    schema_version: int
    features: tuple[Feature, ...]

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def width(self) -> int:
        return sum(f.width for f in self.features)

    @cached_property
    def slices(self) -> dict[str, slice]:
        """Where each feature sits in a row of the stored float32 vector."""
        offsets = np.cumsum([0] + [f.width for f in self.features])
        return {f.name: slice(int(offsets[i]), int(offsets[i + 1])) for i, f in enumerate(self.features)}

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Flat column names, one per stored float: vectors become `name_0`, `name_1`, ..."""
        return tuple(f.name if f.width == 1 else f"{f.name}_{i}" for f in self.features for i in range(f.width))

    @cached_property
    def defaults(self) -> np.ndarray:
        """The declared defaults as one float32 row in the stored order."""
        return np.concatenate([np.full(f.width, f.default, dtype=np.float32) for f in self.features])

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise ValueError(f"{self.entity_type} features have no {name!r}; known: {', '.join(self.names)}")


USER_FEATURES = FeatureSet(
    entity_type=USER,
    schema_version=1,
    features=(
        Feature("total_watch_hours", "float32", 0.0),
        Feature("avg_session_duration", "float32", 0.0),
        Feature("favorite_genres", "int32", -1.0, width=3),
        Feature("completion_rate", "float32", NAN),
        Feature("binge_watching_score", "float32", 0.0),
        Feature("genre_affinity", "float32", 0.0, width=GENRE_SLOTS),
    ),
)

CONTENT_FEATURES = FeatureSet(
    entity_type=CONTENT,
    schema_version=1,
    features=(
        Feature("view_count_7d", "int32", 0.0),
        Feature("popularity_score", "float32", 0.0),
        Feature("trending_score", "float32", 0.0),
        Feature("avg_completion_rate", "float32", NAN),
        Feature("avg_rating", "float32", NAN),
        Feature("genre_indicator", "float32", 0.0, width=GENRE_SLOTS),
    ),
)

# Not stored: computed per request; the version travels with ranker training data.
INTERACTION_FEATURES = FeatureSet(
    entity_type=INTERACTION,
    schema_version=1,
    features=(
        Feature("has_watched", "bool", 0.0),
        Feature("watch_percentage", "float32", 0.0),
        Feature("days_since_watched", "float32", NAN),
        Feature("genre_affinity", "float32", 0.0),
    ),
)

FEATURE_SETS: dict[str, FeatureSet] = {USER: USER_FEATURES, CONTENT: CONTENT_FEATURES}


def feature_set(entity_type: str) -> FeatureSet:
    """The stored feature set of `entity_type`; a ValueError names the known ones."""
    try:
        return FEATURE_SETS[entity_type]
    except KeyError:
        raise ValueError(f"unknown entity type {entity_type!r}; known: {', '.join(FEATURE_SETS)}") from None
