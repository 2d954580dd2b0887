"""Small MovieLens-format directories written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

GENRE_FLAGS = 19


def _item_line(movie_id: int, title: str, date: str, genres: set[int]) -> str:
    flags = "|".join("1" if i in genres else "0" for i in range(GENRE_FLAGS))
    return f"{movie_id}|{title}|{date}||http://example.invalid/{movie_id}|{flags}"


def write_ml100k(directory: Path, *, ratings: list[str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    items = [
        _item_line(1, "Toy Story (1995)", "01-Jan-1995", {3, 4, 5}),
        _item_line(2, "Usual Suspects, The (1995)", "14-Aug-1995", {6, 16}),
        _item_line(3, "Nadja (1994)", "01-Jan-1994", {8, 11}),
    ]
    (directory / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    (directory / "u.user").write_text("1|24|M|technician|85711\n2|10|F|student|94043\n", encoding="latin-1")
    ratings = (
        ratings
        if ratings is not None
        else [
            "1\t1\t5\t881250949",
            "1\t2\t3\t881250960",
            "2\t1\t4\t891717742",
            "2\t3\t1\t878887116",
        ]
    )
    (directory / "u.data").write_text("\n".join(ratings) + "\n", encoding="latin-1")
    return directory


def write_ml1m(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "movies.dat").write_text(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure|Children's|Fantasy\n",
        encoding="latin-1",
    )
    (directory / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n", encoding="latin-1")
    (directory / "ratings.dat").write_text(
        "1::1::5::978300760\n1::2::3::978302109\n2::2::4::978301968\n", encoding="latin-1"
    )
    return directory


@pytest.fixture
def ml100k_dir(tmp_path: Path) -> Path:
    return write_ml100k(tmp_path / "ml-100k")


@pytest.fixture
def ml1m_dir(tmp_path: Path) -> Path:
    return write_ml1m(tmp_path / "ml-1m")
