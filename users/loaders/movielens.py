"""Imports a rating data set (users.ml.datasets: MovieLens 100k, 1M, the `latest` CSVs, or a plain CSV).

Each rating becomes a viewing event with `watch_percentage = rating / scale` (5 stars for MovieLens). What
the data set does not know is filled with documented, deterministic stand-ins (see the constants below).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from users.loaders.dataset import COMPLETED_AT, Dataset, DatasetFormatError, EventChunk
from users.ml.datasets import DEFAULT_MOVIE_MINUTES, DatasetError, RatingsDataset, load_dataset, viewings

EVENT_CHUNK_ROWS = 25_000  # small enough for a live progress bar, large enough for COPY
WEB = 4  # users.models.DeviceType.WEB: MovieLens ratings were given on a website
ALL_TIERS_MASK = 0b111
BASIC, STANDARD, PREMIUM = 1, 2, 3
MATURITY_ALL, MATURITY_7, MATURITY_13, MATURITY_16, MATURITY_18 = 0, 7, 13, 16, 18
CHILDREN_GENRES = ("Children's", "Children", "Animation")  # "Children" in the CSV releases
ADULT_GENRES = ("Horror", "Film-Noir", "Crime")
KIDS_AGE = 13  # ml-100k ages under it get a kids profile
UNDER_18_GROUP = 1  # ml-1m's youngest age group
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")
_ARTICLE_SUFFIX = re.compile(r"^(?P<rest>.*), (?P<article>The|A|An|Les|La|Le|Il|El|Das|Der|Die)$")


def read_movielens(path: str | Path) -> Dataset:
    """Parse the data set at `path` into a Dataset; raises DatasetFormatError naming file and line."""
    try:
        ratings = load_dataset(path)
    except DatasetError as error:
        raise DatasetFormatError(error.path, error.line, error.message) from None
    return dataset_from_ratings(ratings)


def dataset_from_ratings(data: RatingsDataset) -> Dataset:
    users = data.users
    user_ids = users["user_id"].to_numpy(np.int64)
    if "age" in users:
        kids = users["age"].to_numpy() < KIDS_AGE
    else:
        kids = np.zeros(len(users), bool)  # 1M's youngest group is "under 18": no kids profiles
    age_groups = users["age_group"].to_numpy() if "age_group" in users else None
    frame = data.ratings
    profile_index = np.searchsorted(user_ids, frame["user_id"].to_numpy())
    title_ids = data.items["content_id"].to_numpy(np.int64)
    title_index = np.searchsorted(title_ids, frame["content_id"].to_numpy())
    return _assemble(
        source=data.source,
        ratings=frame,
        viewing=viewings(data),
        profile_index=profile_index,
        title_index=title_index,
        movie_ids=title_ids,
        names=data.items["title"],
        released=data.items["release_date"],
        genre_names=list(data.genre_names),
        genre_matrix=data.genre_flags,
        user_ids=user_ids,
        kids=kids,
        age_groups=age_groups,
    )


def _assemble(
    *,
    source: str,
    ratings: pd.DataFrame,
    viewing: tuple[np.ndarray, np.ndarray, np.ndarray],
    profile_index: np.ndarray,
    title_index: np.ndarray,
    movie_ids: np.ndarray,
    names: pd.Series,
    released: pd.Series,
    genre_names: list[str],
    genre_matrix: np.ndarray,
    user_ids: np.ndarray,
    kids: np.ndarray,
    age_groups: np.ndarray | None = None,
) -> Dataset:
    names, released = pd.Series(names).reset_index(drop=True), pd.Series(released).reset_index(drop=True)
    timestamps = ratings["timestamp"].to_numpy(np.int64)
    percentage, started, last_watched = viewing
    watch_seconds = ((last_watched - started) // np.timedelta64(1, "s")).astype(np.int32)
    events = EventChunk(
        {
            "profile_index": profile_index,
            "title_index": title_index,
            "started_at": started,
            "last_watched_at": last_watched,
            "watch_seconds": watch_seconds,
            "watch_percentage": percentage,
            "device_type": np.full(len(percentage), WEB, dtype=np.int16),
            "completed": percentage >= COMPLETED_AT,
        }
    )
    first_rating = pd.Series(timestamps).groupby(title_index).min()
    first_by_user = pd.Series(timestamps).groupby(profile_index).min()

    titles = _titles(source, movie_ids, names, released, first_rating, genre_matrix, genre_names)
    title_rows, genre_cols = np.nonzero(genre_matrix)
    title_genres = pd.DataFrame({"title_index": title_rows, "genre": np.asarray(genre_names, dtype=object)[genre_cols]})
    account_created = _utc(first_by_user.reindex(range(len(user_ids))).fillna(0).to_numpy(dtype=np.int64))
    accounts = pd.DataFrame(
        {
            "external_id": [f"{source}:{u}" for u in user_ids],
            "country": "US",
            "subscription_tier": _stand_in_tiers(user_ids),
            "created_at": account_created,
        }
    )
    maturity = np.where(kids, MATURITY_7, MATURITY_18)
    if age_groups is not None:
        maturity = np.where(age_groups == UNDER_18_GROUP, MATURITY_16, maturity)
    profiles = pd.DataFrame(
        {
            "account_index": np.arange(len(user_ids)),
            "slot": 1,
            "name": [f"User {u}" for u in user_ids],
            "is_kids": kids,
            "maturity_cap": maturity,
            "created_at": account_created,
        }
    )
    return Dataset(
        source=source,
        countries=pd.DataFrame({"code": ["US"], "name": ["United States"]}),
        genres=list(genre_names),
        titles=titles,
        title_genres=title_genres,
        accounts=accounts,
        profiles=profiles,
        events=events.split(EVENT_CHUNK_ROWS),
        expected_events=len(events),
    )


def _titles(
    source: str,
    movie_ids: np.ndarray,
    names: pd.Series,
    released: pd.Series,
    first_rating: pd.Series,
    genre_matrix: np.ndarray,
    genre_names: list[str],
) -> pd.DataFrame:
    first_seen = _utc(first_rating.reindex(range(len(movie_ids))).to_numpy(dtype="float64"))
    date_added = pd.Series(first_seen).fillna(pd.Series(released).dt.tz_localize("UTC")).dt.strftime("%Y-%m-%d")
    date_added = date_added.fillna("1998-01-01")  # neither rated nor dated: the data set's last year
    column = {g: i for i, g in enumerate(genre_names)}

    def has(genre: str) -> np.ndarray:
        return genre_matrix[:, column[genre]] if genre in column else np.zeros(len(movie_ids), dtype=bool)

    maturity = np.full(len(movie_ids), MATURITY_13)
    maturity[np.logical_or.reduce([has(genre) for genre in ADULT_GENRES])] = MATURITY_16
    maturity[np.logical_or.reduce([has(genre) for genre in CHILDREN_GENRES])] = MATURITY_ALL
    return pd.DataFrame(
        {
            "external_id": [f"{source}:{m}" for m in movie_ids],
            "kind": "movie",
            "name": [_display_name(n) for n in names],
            "synopsis": "",
            "release_date": released.dt.strftime("%Y-%m-%d"),
            "date_added": date_added,
            "duration_minutes": DEFAULT_MOVIE_MINUTES,
            "episode_count": 1,
            "maturity_rating": maturity,
            "is_original": False,
            "available_tiers": ALL_TIERS_MASK,
            "has_4k": False,
            "has_hdr": False,
        }
    )


def _display_name(raw: str) -> str:
    """'Usual Suspects, The (1995)' -> 'The Usual Suspects'."""
    name = _YEAR_SUFFIX.sub("", raw).strip()
    match = _ARTICLE_SUFFIX.match(name)
    if match:
        name = f"{match['article']} {match['rest']}"
    return name or raw.strip()


def _stand_in_tiers(user_ids: np.ndarray) -> np.ndarray:
    """MovieLens has no tiers: a fixed hash of the user id gives 25 % basic, 50 % standard, 25 % premium."""
    bucket = (user_ids.astype(np.uint64) * np.uint64(2654435761) % np.uint64(2**32)) % np.uint64(100)
    return np.select([bucket < 25, bucket < 75], [BASIC, STANDARD], PREMIUM)


def _utc(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
