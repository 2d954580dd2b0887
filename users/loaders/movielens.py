"""Reads MovieLens 100k (`u.data`, `u.item`, `u.user`) and 1M (`ratings.dat`, `movies.dat`, `users.dat`).

Each rating becomes a viewing event with `watch_percentage = rating / 5`. What MovieLens does not know
is filled with documented, deterministic stand-ins (see the constants below).
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from users.loaders.dataset import COMPLETED_AT, Dataset, DatasetFormatError, EventChunk

EVENT_CHUNK_ROWS = 25_000  # small enough for a live progress bar, large enough for COPY
ENCODING = "latin-1"  # MovieLens files are ISO-8859-1
DEFAULT_MOVIE_MINUTES = 105  # MovieLens has no runtimes; a typical feature length
WEB = 4  # users.models.DeviceType.WEB: MovieLens ratings were given on a website
ALL_TIERS_MASK = 0b111
BASIC, STANDARD, PREMIUM = 1, 2, 3
MATURITY_ALL, MATURITY_7, MATURITY_13, MATURITY_16, MATURITY_18 = 0, 7, 13, 16, 18
GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")
_ARTICLE_SUFFIX = re.compile(r"^(?P<rest>.*), (?P<article>The|A|An|Les|La|Le|Il|El|Das|Der|Die)$")


def detect_format(path: Path) -> str:
    """'100k' or '1m', from the files present in `path`."""
    if (path / "u.data").is_file():
        return "100k"
    if (path / "ratings.dat").is_file():
        return "1m"
    raise DatasetFormatError(str(path), None, "no MovieLens files here: expected u.data (100k) or ratings.dat (1M)")


def read_movielens(path: str | Path) -> Dataset:
    """Parse the MovieLens directory `path` into a Dataset; raises DatasetFormatError naming file and line."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetFormatError(str(path), None, "not a directory")
    if detect_format(path) == "100k":
        return _read_100k(path)
    return _read_1m(path)


def _read_100k(path: Path) -> Dataset:
    items = _read_table(path / "u.item", "|", 5 + len(GENRES_100K))
    movie_ids = _integers(items, 0, path / "u.item", "movie id")
    _unique(movie_ids, "movie id", items, path / "u.item")
    flags = items.iloc[:, 5:].apply(lambda col: _integers(items, col.name, path / "u.item", "genre flag"))
    genre_matrix = flags.to_numpy(dtype=bool)
    released = pd.to_datetime(items[2], format="%d-%b-%Y", errors="coerce")
    _first_bad(items, items[2].ne("") & released.isna(), path / "u.item", "release date is not like 01-Jan-1995")
    users = _read_table(path / "u.user", "|", 5)
    user_ids = _integers(users, 0, path / "u.user", "user id")
    _unique(user_ids, "user id", users, path / "u.user")
    ages = _integers(users, 1, path / "u.user", "age")
    ratings = _read_table(path / "u.data", "\t", 4)
    return _assemble(
        source="ml100k",
        ratings=ratings,
        ratings_file=path / "u.data",
        movie_ids=movie_ids,
        names=items[1],
        released=released,
        genre_names=GENRES_100K,
        genre_matrix=genre_matrix,
        user_ids=user_ids,
        kids=ages < 13,
    )


def _read_1m(path: Path) -> Dataset:
    movies = _read_table(path / "movies.dat", "::", 3)
    movie_ids = _integers(movies, 0, path / "movies.dat", "movie id")
    _unique(movie_ids, "movie id", movies, path / "movies.dat")
    year = movies[1].str.extract(_YEAR_SUFFIX, expand=False)
    released = pd.to_datetime(year + "-01-01", format="%Y-%m-%d", errors="coerce")
    genre_lists = movies[2].str.split("|")
    genre_names = sorted({g for genres in genre_lists for g in genres if g})
    genre_matrix = np.zeros((len(movies), len(genre_names)), dtype=bool)
    position = {g: i for i, g in enumerate(genre_names)}
    rows = np.repeat(np.arange(len(movies)), genre_lists.str.len().to_numpy())
    cols = np.array([position[g] for genres in genre_lists for g in genres], dtype=np.int64)
    genre_matrix[rows, cols] = True
    users = _read_table(path / "users.dat", "::", 5)
    user_ids = _integers(users, 0, path / "users.dat", "user id")
    _unique(user_ids, "user id", users, path / "users.dat")
    age_group = _integers(users, 2, path / "users.dat", "age group")
    ratings = _read_table(path / "ratings.dat", "::", 4)
    return _assemble(
        source="ml1m",
        ratings=ratings,
        ratings_file=path / "ratings.dat",
        movie_ids=movie_ids,
        names=movies[1],
        released=released,
        genre_names=genre_names,
        genre_matrix=genre_matrix,
        user_ids=user_ids,
        kids=np.zeros(len(users), dtype=bool),  # 1M's youngest group is "under 18": no kids profiles
        age_groups=age_group,
    )


def _assemble(
    *,
    source: str,
    ratings: pd.DataFrame,
    ratings_file: Path,
    movie_ids: np.ndarray,
    names: pd.Series,
    released: pd.Series,
    genre_names: list[str],
    genre_matrix: np.ndarray,
    user_ids: np.ndarray,
    kids: np.ndarray,
    age_groups: np.ndarray | None = None,
) -> Dataset:
    names, released = names.reset_index(drop=True), released.reset_index(drop=True)
    rating_users = _integers(ratings, 0, ratings_file, "user id")
    rating_items = _integers(ratings, 1, ratings_file, "movie id")
    stars = _integers(ratings, 2, ratings_file, "rating")
    timestamps = _integers(ratings, 3, ratings_file, "timestamp")
    _first_bad(ratings, (stars < 1) | (stars > 5), ratings_file, "rating must be 1 to 5")
    _first_bad(ratings, timestamps < 0, ratings_file, "timestamp must be seconds since 1970")
    profile_index = _positions(user_ids, rating_users, ratings, ratings_file, "user id not in the users file")
    title_index = _positions(movie_ids, rating_items, ratings, ratings_file, "movie id not in the movies file")

    started = timestamps.astype("datetime64[s]").astype("datetime64[us]")
    percentage = stars / 5.0
    watch_seconds = np.rint(percentage * DEFAULT_MOVIE_MINUTES * 60).astype(np.int32)
    events = EventChunk(
        {
            "profile_index": profile_index,
            "title_index": title_index,
            "started_at": started,
            "last_watched_at": started + watch_seconds.astype("timedelta64[s]"),
            "watch_seconds": watch_seconds,
            "watch_percentage": percentage,
            "device_type": np.full(len(stars), WEB, dtype=np.int16),
            "completed": percentage >= COMPLETED_AT,
        }
    )
    first_rating = pd.Series(timestamps).groupby(title_index).min()
    first_by_user = pd.Series(timestamps).groupby(profile_index).min()

    genre_positions = [i for i, g in enumerate(genre_names) if g != "unknown"]
    titles = _titles(source, movie_ids, names, released, first_rating, genre_matrix, genre_names)
    title_rows, genre_cols = np.nonzero(genre_matrix[:, genre_positions])
    title_genres = pd.DataFrame(
        {"title_index": title_rows, "genre": np.asarray(genre_names, dtype=object)[genre_positions][genre_cols]}
    )
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
        maturity = np.where(age_groups == 1, MATURITY_16, maturity)
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
        genres=[genre_names[i] for i in genre_positions],
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
    maturity[has("Horror") | has("Film-Noir") | has("Crime")] = MATURITY_16
    maturity[has("Children's") | has("Animation")] = MATURITY_ALL
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


def _read_table(file: Path, separator: str, n_fields: int) -> pd.DataFrame:
    """All fields as strings, indexed by 1-based line number; a line with the wrong field count raises."""
    if not file.is_file():
        raise DatasetFormatError(str(file), None, "file is missing")
    text = file.read_text(encoding=ENCODING)
    if len(separator) > 1:
        text = text.replace(separator, "\x1f")
        separator = "\x1f"
    lines = pd.Series(text.split("\n"))
    lines.index = pd.RangeIndex(1, len(lines) + 1)
    lines = lines[lines.str.strip() != ""]
    fields = lines.str.count(re.escape(separator)) + 1
    _first_bad(lines.to_frame(), fields != n_fields, file, f"expected {n_fields} fields, found {{value}}",
               fields=fields)  # fmt: skip
    frame = pd.read_csv(
        io.StringIO("\n".join(lines)),
        sep=separator,
        header=None,
        names=range(n_fields),
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )
    frame.index = lines.index
    return frame


def _integers(frame: pd.DataFrame, column, file: Path, what: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    _first_bad(frame, values.isna() | (values % 1 != 0), file, f"{what} is not an integer: {{value}}", column=column)
    return values.to_numpy(dtype=np.int64)


def _first_bad(frame: pd.DataFrame, bad, file: Path, message: str, column=None, fields=None) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        position = int(np.argmax(bad))
        line = int(frame.index[position])
        if fields is not None:
            value = int(fields.iloc[position])
        else:
            value = repr(frame.iloc[position][column]) if column is not None else None
        raise DatasetFormatError(str(file), line, message.format(value=value))


def _positions(known: np.ndarray, wanted: np.ndarray, frame: pd.DataFrame, file: Path, message: str) -> np.ndarray:
    order = np.argsort(known)
    slot = np.searchsorted(known, wanted, sorter=order).clip(0, len(known) - 1)
    positions = order[slot]
    _first_bad(frame, known[positions] != wanted, file, message)
    return positions


def _unique(ids: np.ndarray, what: str, frame: pd.DataFrame, file: Path) -> None:
    repeated = pd.Series(ids).duplicated().to_numpy()
    _first_bad(frame, repeated, file, f"{what} {{value}} appears more than once", column=0)
