"""One reader of public rating data sets (pure: no Django): every MovieLens layout and a plain CSV.

Layouts, detected from the path:
- ml-100k: a directory with u.data and u.item (u.user optional: ages);
- ml-1m (and 10m): a directory with ratings.dat and movies.dat (users.dat optional: age groups);
- ml-latest (and ml-25m, ml-32m): a directory with ratings.csv and movies.csv (headers; half-star ratings);
- csv: a file of user,item,rating,timestamp rows (a header line naming them is optional; no titles).
Both the importer (users.loaders.movielens) and the offline evaluation read data sets through `load_dataset`.
A bad row raises DatasetError naming the file and its 1-based line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ENCODING = "latin-1"  # the older MovieLens files are ISO-8859-1
CSV_ENCODING = "utf-8"  # the CSV releases are UTF-8
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)  # (u.genre: the order of u.item's 19 flags)
NO_GENRE = frozenset({"unknown", "(no genres listed)", ""})  # markers of "no genre", never a genre
ITEM_FIELDS_100K = 5 + len(GENRES_100K)
PLAIN_COLUMNS = ("user", "item", "rating", "timestamp")
LAYOUTS = ("ml-100k", "ml-1m", "ml-latest", "csv")
DEFAULT_MOVIE_MINUTES = 105  # MovieLens has no runtimes; a typical feature length
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")


class DatasetError(ValueError):
    """A missing or malformed data set file; names the file and, where it applies, the 1-based line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{path}:{line}: {message}" if line is not None else f"{path}: {message}")


@dataclass(frozen=True, eq=False)
class RatingsDataset:
    """ratings: user_id, content_id (int64), rating (float64), timestamp (int64 seconds), one row per rating;
    items: content_id (ascending), title, release_date (datetime64, NaT when unknown), in genre_flags' order;
    genre_flags: bool (n_items, n_genres) over genre_names (no "unknown", no "(no genres listed)");
    users: user_id (ascending) plus `age` (ml-100k) or `age_group` (ml-1m) when the layout has a users file."""

    layout: str
    source: str  # the external-id prefix of the importer: ml100k, ml1m, mllatest, csv
    ratings: pd.DataFrame
    items: pd.DataFrame
    genre_names: tuple[str, ...]
    genre_flags: np.ndarray
    users: pd.DataFrame
    rating_scale: float  # the highest rating possible: watch_percentage = rating / rating_scale

    def item_genres(self) -> list[list[str]]:
        names = np.array(self.genre_names, dtype=object)
        return [list(names[row]) for row in self.genre_flags]

    def content_frame(self) -> pd.DataFrame:
        """ContentSimilarity's catalog frame: genres and a decade keyword (the metadata every layout has)."""
        years = self.items["release_date"].dt.year
        return pd.DataFrame(
            {
                "content_id": self.items["content_id"].to_numpy(np.int64),
                "genres": self.item_genres(),
                "keywords": [[f"decade:{int(year) // 10 * 10}"] if pd.notna(year) else [] for year in years],
            }
        )


def viewings(data: RatingsDataset, ratings: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratings (default: all of `data`'s) as viewings: watch_percentage = rating / scale, started_at = the
    rating's time, last_watched_at = started_at + that share of DEFAULT_MOVIE_MINUTES (datetime64[us]).

    The importer stores these and the evaluation builds its profiles' histories with them: one conversion."""
    frame = data.ratings if ratings is None else ratings
    percentage = frame["rating"].to_numpy(np.float64) / data.rating_scale
    watch_seconds = np.rint(percentage * DEFAULT_MOVIE_MINUTES * 60).astype(np.int64)
    started = frame["timestamp"].to_numpy(np.int64).astype("datetime64[s]").astype("datetime64[us]")
    return percentage, started, started + watch_seconds.astype("timedelta64[s]")


def detect_layout(path: Path) -> str:
    if path.is_file():
        return "csv"
    if (path / "u.data").is_file():
        return "ml-100k"
    if (path / "ratings.dat").is_file():
        return "ml-1m"
    if (path / "ratings.csv").is_file():
        return "ml-latest"
    raise DatasetError(
        path,
        None,
        "no MovieLens files here: expected u.data (100k), ratings.dat (1M), "
        "ratings.csv (latest) or a CSV file of user,item,rating,timestamp",
    )


def load_dataset(path: str | Path) -> RatingsDataset:
    """Read the data set at `path` (any of LAYOUTS); DatasetError names the file and line of a bad row."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, None, "is not a directory or file")
    layout = detect_layout(path)
    reader = {"ml-100k": _read_100k, "ml-1m": _read_1m, "ml-latest": _read_latest, "csv": _read_plain}[layout]
    return reader(path)


# --- layouts -------------------------------------------------------------------------------------------------


def _read_100k(path: Path) -> RatingsDataset:
    item_file = path / "u.item"
    items = _read_table(item_file, "|", ITEM_FIELDS_100K)
    movie_ids = _integers(items, 0, item_file, "movie id")
    _unique(movie_ids, "movie id", items, item_file)
    flags = np.column_stack([_integers(items, 5 + slot, item_file, "genre flag") for slot in range(len(GENRES_100K))])
    _first_bad(items, ((flags != 0) & (flags != 1)).any(axis=1), item_file, "a genre flag must be 0 or 1")
    released = pd.to_datetime(items[2], format="%d-%b-%Y", errors="coerce")
    _first_bad(items, items[2].ne("") & released.isna(), item_file, "release date is not like 01-Jan-1995")
    users = _read_users(path / "u.user", "|", age_field=1, age_column="age")
    ratings = _read_table(path / "u.data", "\t", 4)
    return _assemble(
        "ml-100k",
        "ml100k",
        ratings,
        path / "u.data",
        movie_ids,
        items[1],
        released,
        list(GENRES_100K),
        flags.astype(bool),
        users,
        integer_ratings=True,
    )


def _read_users(file: Path, separator: str, *, age_field: int, age_column: str) -> pd.DataFrame | None:
    """user_id and the age column of a users file (5 fields: u.user, users.dat), or None when there is none."""
    if not file.is_file():
        return None
    table = _read_table(file, separator, 5)
    users = pd.DataFrame(
        {
            "user_id": _integers(table, 0, file, "user id"),
            age_column: _integers(table, age_field, file, age_column.replace("_", " ")),
        }
    )
    _unique(users["user_id"].to_numpy(), "user id", table, file)
    return users


def _read_1m(path: Path) -> RatingsDataset:
    movie_file = path / "movies.dat"
    movies = _read_table(movie_file, "::", 3)
    movie_ids = _integers(movies, 0, movie_file, "movie id")
    _unique(movie_ids, "movie id", movies, movie_file)
    names, flags = _genre_matrix(movies[2])
    users = _read_users(path / "users.dat", "::", age_field=2, age_column="age_group")
    ratings = _read_table(path / "ratings.dat", "::", 4)
    return _assemble(
        "ml-1m",
        "ml1m",
        ratings,
        path / "ratings.dat",
        movie_ids,
        movies[1],
        _year_dates(movies[1]),
        names,
        flags,
        users,
        integer_ratings=True,
    )


def _read_latest(path: Path) -> RatingsDataset:
    movie_file = path / "movies.csv"
    movies = _read_csv(movie_file, ("movieId", "title", "genres"))
    movie_ids = _integers(movies, "movieId", movie_file, "movie id")
    _unique(movie_ids, "movie id", movies, movie_file, column="movieId")
    names, flags = _genre_matrix(movies["genres"])
    ratings = _read_csv(path / "ratings.csv", ("userId", "movieId", "rating", "timestamp"))
    ratings.columns = range(4)
    return _assemble(
        "ml-latest",
        "mllatest",
        ratings,
        path / "ratings.csv",
        movie_ids,
        movies["title"],
        _year_dates(movies["title"]),
        names,
        flags,
        None,
        integer_ratings=False,
    )


def _read_plain(file: Path) -> RatingsDataset:
    text = _read_text(file, CSV_ENCODING)
    first = text.split("\n", 1)[0].strip().lower().replace(" ", "")
    header = not re.match(r"^[-+\d.]", first)
    if header and tuple(first.split(",")) != PLAIN_COLUMNS:
        raise DatasetError(file, 1, f"the header must be {','.join(PLAIN_COLUMNS)}, found {first!r}")
    ratings = _split_lines(file, text, ",", 4, skip_header=header)
    item_ids = np.unique(_integers(ratings, 1, file, "item id"))
    no_dates = pd.Series(pd.NaT, index=range(len(item_ids)), dtype="datetime64[ns]")
    return _assemble(
        "csv",
        "csv",
        ratings,
        file,
        item_ids,
        pd.Series(item_ids.astype(str)),
        no_dates,
        [],
        np.zeros((len(item_ids), 0), bool),
        None,
        integer_ratings=False,
    )


def _assemble(
    layout: str,
    source: str,
    ratings: pd.DataFrame,
    ratings_file: Path,
    movie_ids: np.ndarray,
    names: pd.Series,
    released: pd.Series,
    genre_names: list[str],
    genre_flags: np.ndarray,
    users: pd.DataFrame | None,
    *,
    integer_ratings: bool,
) -> RatingsDataset:
    user_ids = _integers(ratings, 0, ratings_file, "user id")
    content_ids = _integers(ratings, 1, ratings_file, "movie id" if layout != "csv" else "item id")
    if integer_ratings:
        stars = _integers(ratings, 2, ratings_file, "rating").astype(np.float64)
        _first_bad(
            ratings,
            (stars < 1) | (stars > 5),
            ratings_file,
            "rating must be 1 to 5, got {value}",
            column=2,
            quote=False,
        )
    else:
        stars = _numbers(ratings, 2, ratings_file, "rating")
        _first_bad(ratings, ~(stars > 0), ratings_file, "rating must be above 0, got {value}", column=2, quote=False)
    timestamps = _integers(ratings, 3, ratings_file, "timestamp")
    _first_bad(ratings, timestamps < 0, ratings_file, "timestamp must be seconds since 1970")
    _first_bad(ratings, ~np.isin(content_ids, movie_ids), ratings_file, "movie id not in the movies file")
    if users is not None:
        _first_bad(
            ratings, ~np.isin(user_ids, users["user_id"].to_numpy()), ratings_file, "user id not in the users file"
        )
        users = users.sort_values("user_id", kind="stable").reset_index(drop=True)
    else:
        users = pd.DataFrame({"user_id": np.unique(user_ids)})
    keep = [i for i, name in enumerate(genre_names) if name not in NO_GENRE]
    order = np.argsort(movie_ids, kind="stable")
    items = pd.DataFrame(
        {
            "content_id": movie_ids[order],
            "title": names.to_numpy(object)[order],
            "release_date": pd.Series(released).to_numpy("datetime64[ns]")[order],
        }
    )
    scale = 5.0 if layout != "csv" else float(stars.max()) if len(stars) else 1.0
    return RatingsDataset(
        layout=layout,
        source=source,
        ratings=pd.DataFrame(
            {"user_id": user_ids, "content_id": content_ids, "rating": stars, "timestamp": timestamps}
        ),
        items=items,
        genre_names=tuple(genre_names[i] for i in keep),
        genre_flags=np.ascontiguousarray(genre_flags[order][:, keep]),
        users=users,
        rating_scale=scale,
    )


def _genre_matrix(column: pd.Series) -> tuple[list[str], np.ndarray]:
    """'Animation|Children's' lists as (sorted genre names, bool matrix)."""
    lists = column.fillna("").str.split("|")
    names = sorted({genre for genres in lists for genre in genres} - NO_GENRE)
    position = {genre: i for i, genre in enumerate(names)}
    flags = np.zeros((len(column), len(names)), bool)
    pairs = [(row, position[genre]) for row, genres in enumerate(lists) for genre in genres if genre in position]
    if pairs:
        rows, cols = np.array(pairs).T
        flags[rows, cols] = True
    return names, flags


def _year_dates(titles: pd.Series) -> pd.Series:
    """January 1st of the '(1995)' at the end of a title, NaT without one."""
    year = titles.str.extract(_YEAR_SUFFIX, expand=False)
    return pd.to_datetime(year + "-01-01", format="%Y-%m-%d", errors="coerce")


# --- parsing ---------------------------------------------------------------------------------------------------


def _read_text(file: Path, encoding: str) -> str:
    if not file.is_file():
        raise DatasetError(file, None, "file is missing")
    try:
        return file.read_text(encoding=encoding)
    except OSError as error:
        raise DatasetError(file, None, f"cannot be read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        line = file.read_bytes()[: error.start].count(b"\n") + 1
        raise DatasetError(file, line, f"is not {encoding} text") from None


def _read_table(file: Path, separator: str, n_fields: int) -> pd.DataFrame:
    """All fields as strings, indexed by 1-based line number; a line with the wrong field count raises."""
    return _split_lines(file, _read_text(file, ENCODING), separator, n_fields)


def _split_lines(file: Path, text: str, separator: str, n_fields: int, *, skip_header: bool = False) -> pd.DataFrame:
    if len(separator) > 1:
        text = text.replace(separator, "\x1f")
        separator = "\x1f"
    lines = pd.Series(text.split("\n"))
    lines.index = pd.RangeIndex(1, len(lines) + 1)
    lines = lines.str.rstrip("\r")
    if skip_header:
        lines = lines.iloc[1:]
    lines = lines[lines.str.strip() != ""]
    if lines.empty:
        raise DatasetError(file, None, "has no rows")
    fields = lines.str.count(re.escape(separator)) + 1
    _first_bad(
        lines.to_frame(), fields != n_fields, file, f"expected {n_fields} fields, found {{value}}", fields=fields
    )
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


def _read_csv(file: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A quoted CSV with a header naming `columns`; rows indexed by line number (no field spans two lines)."""
    text = _read_text(file, CSV_ENCODING)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise DatasetError(file, None, f"is not a CSV file: {error}") from None
    if tuple(frame.columns) != columns:
        raise DatasetError(file, 1, f"the header must be {','.join(columns)}, found {','.join(frame.columns)}")
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    frame = frame[(frame != "").any(axis=1)]
    if frame.empty:
        raise DatasetError(file, None, "has no rows")
    return frame


def _integers(frame: pd.DataFrame, column: object, file: Path, what: str) -> np.ndarray:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    _first_bad(frame, values.isna() | (values % 1 != 0), file, f"{what} is not an integer: {{value}}", column=column)
    return np.asarray(values.to_numpy(dtype=np.int64), np.int64)


def _numbers(frame: pd.DataFrame, column: object, file: Path, what: str) -> np.ndarray:
    values = np.asarray(pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(np.float64), np.float64)
    _first_bad(frame, ~np.isfinite(values), file, f"{what} is not a number: {{value}}", column=column)
    return values


def _first_bad(
    frame: pd.DataFrame,
    bad: object,
    file: Path,
    message: str,
    column: object = None,
    fields: pd.Series | None = None,
    *,
    quote: bool = True,
) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        position = int(np.argmax(bad))
        line = int(frame.index[position])
        if fields is not None:
            value: object = int(fields.iloc[position])
        else:
            raw = frame.iloc[position][column] if column is not None else None
            value = repr(raw) if quote and raw is not None else raw
        raise DatasetError(file, line, message.format(value=value))


def _unique(ids: np.ndarray, what: str, frame: pd.DataFrame, file: Path, column: object = 0) -> None:
    repeated = pd.Series(ids).duplicated().to_numpy()
    _first_bad(frame, repeated, file, f"{what} {{value}} appears more than once", column=column)
