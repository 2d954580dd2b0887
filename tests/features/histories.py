"""Hand-made viewing histories and the feature values worked out by hand from them.

Shared by the pure tests (tests/features/ml/test_compute.py) and the database tests, so the SQL path and
the pandas path must agree with the same arithmetic. Titles and genres are symbolic; each test maps
them to ids.
"""

from __future__ import annotations

import datetime as dt
import math

AS_OF = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
GENRES = ["drama", "comedy", "horror"]  # slot order = id order, so create them in this order
TITLES = {  # name: (kind, genres)
    "film": ("movie", ["drama"]),
    "sitcom": ("series", ["drama", "comedy"]),
    "slasher": ("movie", ["horror"]),
    "cartoon": ("series", ["comedy"]),
    "unseen": ("movie", ["comedy", "horror"]),
}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 1, day, hour, minute, tzinfo=dt.UTC)


# profile: [(title, started_at, last_watched_at, watch_seconds, watch_percentage, completed)]
USER_HISTORY = {
    # Sessions {film}, {sitcom x3: a binge, 10-minute breaks}, {slasher}; the last viewing is after AS_OF.
    "binger": [
        ("film", at(1, 20), at(1, 21, 40), 6000, 1.0, True),
        ("sitcom", at(2, 20), at(2, 20, 30), 1800, 0.95, True),
        ("sitcom", at(2, 20, 40), at(2, 21, 10), 1800, 0.95, True),
        ("sitcom", at(2, 21, 20), at(2, 21, 50), 1800, 0.95, True),
        ("slasher", at(3, 10), at(3, 10, 30), 1800, 0.3, False),
        ("film", at(11, 9), at(11, 10), 3600, 0.6, False),
    ],
    # A 30-minute break opens a session, 29 minutes does not: sessions {1}, {2, 3}; two episodes are no binge.
    "gaps": [
        ("cartoon", at(5, 8), at(5, 8, 20), 1200, 0.5, False),
        ("cartoon", at(5, 8, 50), at(5, 9, 10), 1200, 0.5, False),
        ("cartoon", at(5, 9, 39), at(5, 9, 59), 1200, 0.5, False),
    ],
    # A paused viewing runs to 14:00; the 14:20 start is within 30 minutes of that latest end: one session.
    "paused": [
        ("film", at(6, 10), at(6, 14), 3600, 0.6, False),
        ("slasher", at(6, 11), at(6, 11, 30), 1800, 1.0, True),
        ("film", at(6, 14, 20), at(6, 15), 2400, 0.4, False),
    ],
    "newcomer": [],
}

USER_EXPECTED = {
    "binger": {
        "total_watch_hours": 13200 / 3600,
        "avg_session_duration": 13200 / 60 / 3,
        "favorite_genres": ["drama", "comedy", "horror"],
        "completion_rate": 4 / 5,
        "binge_watching_score": 3 / 5,
        # drama 6000 + 5400/2, comedy 5400/2, horror 1800, over 13200 seconds.
        "genre_affinity": {"drama": 8700 / 13200, "comedy": 2700 / 13200, "horror": 1800 / 13200},
    },
    "gaps": {
        "total_watch_hours": 1.0,
        "avg_session_duration": 30.0,
        "favorite_genres": ["comedy", None, None],
        "completion_rate": 0.0,
        "binge_watching_score": 0.0,
        "genre_affinity": {"comedy": 1.0},
    },
    "paused": {
        "total_watch_hours": 7800 / 3600,
        "avg_session_duration": 130.0,
        "favorite_genres": ["drama", "horror", None],
        "completion_rate": 1 / 3,
        "binge_watching_score": 0.0,
        "genre_affinity": {"drama": 6000 / 7800, "horror": 1800 / 7800},
    },
    "newcomer": {
        "total_watch_hours": 0.0,
        "avg_session_duration": 0.0,
        "favorite_genres": [None, None, None],
        "completion_rate": math.nan,
        "binge_watching_score": 0.0,
        "genre_affinity": {},
    },
}

# title: [(started_at, watch_percentage, completed)] — views by assorted profiles.
CONTENT_HISTORY = {
    "film": [
        (AS_OF - dt.timedelta(days=1), 1.0, True),
        (AS_OF - dt.timedelta(days=3), 0.5, False),
        (AS_OF - dt.timedelta(days=10), 0.8, False),
        (AS_OF - dt.timedelta(days=400), 1.0, True),  # past the popularity horizon
        (AS_OF + dt.timedelta(days=1), 0.2, False),  # after AS_OF: ignored
    ],
    # Window edges: exactly 7 days old is this week, exactly 14 days old is last week.
    "sitcom": [
        (AS_OF - dt.timedelta(days=7), 0.9, True),
        (AS_OF - dt.timedelta(days=14), 0.4, False),
    ],
    "slasher": [],
}

CONTENT_EXPECTED = {
    "film": {
        "view_count_7d": 2,
        "popularity_score": 0.9 + 0.9**3 + 0.9**10,
        "trending_score": math.log(3) - math.log(2),
        "avg_completion_rate": 2 / 4,
        "avg_rating": (1.0 + 0.5 + 0.8 + 1.0) / 4 * 5,
        "genres": ["drama"],
    },
    "sitcom": {
        "view_count_7d": 1,
        "popularity_score": 0.9**7 + 0.9**14,
        "trending_score": 0.0,
        "avg_completion_rate": 0.5,
        "avg_rating": (0.9 + 0.4) / 2 * 5,
        "genres": ["drama", "comedy"],
    },
    "slasher": {
        "view_count_7d": 0,
        "popularity_score": 0.0,
        "trending_score": 0.0,
        "avg_completion_rate": math.nan,
        "avg_rating": math.nan,
        "genres": ["horror"],
    },
}
