"""The in-memory shape every loader produces: catalog and audience frames plus viewing-event chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

COMPLETED_AT = 0.9  # watch share from which a viewing counts as completed

TITLE_COLUMNS = [
    "external_id",
    "kind",
    "name",
    "synopsis",
    "release_date",
    "date_added",
    "duration_minutes",
    "episode_count",
    "maturity_rating",
    "is_original",
    "available_tiers",
    "has_4k",
    "has_hdr",
]
ACCOUNT_COLUMNS = ["external_id", "country", "subscription_tier", "created_at"]
PROFILE_COLUMNS = ["account_index", "slot", "name", "is_kids", "maturity_cap", "created_at"]
EVENT_COLUMNS = {
    "profile_index": np.int64,
    "title_index": np.int64,
    "started_at": "datetime64[us]",
    "last_watched_at": "datetime64[us]",
    "watch_seconds": np.int32,
    "watch_percentage": np.float64,
    "device_type": np.int16,
    "completed": np.bool_,
}


class DatasetFormatError(ValueError):
    """A malformed input file; carries the file and 1-based line number for the operator."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


@dataclass
class EventChunk:
    """Viewing events as parallel arrays; profiles and titles are row positions in the dataset's frames."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["profile_index"])

    def split(self, rows: int) -> Iterator[EventChunk]:
        for start in range(0, len(self), rows):
            yield EventChunk({name: values[start : start + rows] for name, values in self.columns.items()})


@dataclass
class Dataset:
    """Everything one load writes. Frames reference each other by row position (`*_index`)."""

    source: str
    countries: pd.DataFrame  # code, name
    genres: list[str]
    titles: pd.DataFrame  # TITLE_COLUMNS
    title_genres: pd.DataFrame  # title_index, genre (name)
    accounts: pd.DataFrame  # ACCOUNT_COLUMNS
    profiles: pd.DataFrame  # PROFILE_COLUMNS
    events: Iterator[EventChunk]
    expected_events: int
    title_countries: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["title_index", "country"]))
    people: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["external_id", "name"]))
    credits: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["title_index", "person_index", "role", "billing_order"])
    )
    # Genres a profile picked at sign-up (cold start): profile_index, genre (name).
    profile_genres: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["profile_index", "genre"]))

    def __post_init__(self) -> None:
        for name, frame, columns in [
            ("titles", self.titles, TITLE_COLUMNS),
            ("accounts", self.accounts, ACCOUNT_COLUMNS),
            ("profiles", self.profiles, PROFILE_COLUMNS),
        ]:
            missing = set(columns) - set(frame.columns)
            if missing:
                raise ValueError(f"{name} needs columns {sorted(missing)}")
