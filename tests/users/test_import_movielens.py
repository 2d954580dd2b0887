"""import_movielens: both formats, idempotence, and bad files that change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Genre, Title
from tests.users.conftest import write_ml100k
from users.models import Account, DeviceType, Profile, ViewingEvent

ML100K = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-100k"


def _counts() -> tuple[int, int, int, int]:
    return Title.objects.count(), Account.objects.count(), Profile.objects.count(), ViewingEvent.objects.count()


def test_imports_100k_format(db, ml100k_dir):
    call_command("import_movielens", str(ml100k_dir), verbosity=0)

    assert _counts() == (3, 2, 2, 4)
    suspects = Title.objects.get(external_id="ml100k:2")
    assert suspects.name == "The Usual Suspects"
    assert suspects.release_date == dt.date(1995, 8, 14)
    assert sorted(suspects.genres.values_list("name", flat=True)) == ["Crime", "Thriller"]
    view = ViewingEvent.objects.get(profile__account__external_id="ml100k:1", title=suspects)
    assert view.watch_percentage == pytest.approx(3 / 5)
    assert view.started_at == dt.datetime.fromtimestamp(881250960, tz=dt.UTC)
    assert view.last_watched_at == view.started_at + dt.timedelta(seconds=view.watch_seconds)
    assert view.device_type == DeviceType.WEB
    assert not view.completed
    assert ViewingEvent.objects.get(profile__account__external_id="ml100k:1", title__external_id="ml100k:1").completed


def test_imports_1m_format(db, ml1m_dir):
    call_command("import_movielens", str(ml1m_dir), verbosity=0)

    assert _counts() == (2, 2, 2, 3)
    toy_story = Title.objects.get(external_id="ml1m:1")
    assert toy_story.release_date == dt.date(1995, 1, 1)
    assert set(toy_story.genres.values_list("name", flat=True)) == {"Animation", "Children's", "Comedy"}


def test_young_user_gets_a_kids_profile(db, ml100k_dir):
    call_command("import_movielens", str(ml100k_dir), verbosity=0)

    child = Profile.objects.get(account__external_id="ml100k:2")
    assert child.is_kids and child.maturity_cap == 7


def test_importing_twice_creates_no_duplicates(db, ml100k_dir):
    call_command("import_movielens", str(ml100k_dir), verbosity=0)
    first = _counts()
    call_command("import_movielens", str(ml100k_dir), verbosity=0)

    assert _counts() == first
    assert Genre.objects.filter(name="Crime").count() == 1


@pytest.mark.parametrize(
    ("ratings", "where", "message"),
    [
        (["1\t1\t5\t881250949", "1\t2\t3"], "u.data:2", "expected 4 fields"),
        (["1\t1\t5\t881250949", "1\t2\t3\t881250960\t9"], "u.data:2", "expected 4 fields"),
        (["1\t1\t5\t881250949", "2\t3\t1\t878887116", "1\t2\t7\t881250960"], "u.data:3", "rating must be 1 to 5"),
        (["1\t1\tfive\t881250949"], "u.data:1", "rating is not an integer"),
        (["1\t99\t5\t881250949"], "u.data:1", "movie id not in the movies file"),
        (["7\t1\t5\t881250949"], "u.data:1", "user id not in the users file"),
    ],
)
def test_bad_ratings_file_names_line_and_changes_nothing(db, tmp_path, ratings, where, message):
    call_command("import_movielens", str(write_ml100k(tmp_path / "good")), verbosity=0)
    before = _counts()
    bad = write_ml100k(tmp_path / "bad", ratings=ratings)

    with pytest.raises(CommandError) as error:
        call_command("import_movielens", str(bad), verbosity=0)

    assert where in str(error.value) and message in str(error.value)
    assert "nothing was imported" in str(error.value)
    assert _counts() == before


def test_truncated_item_file_is_reported(db, ml100k_dir):
    item_file = ml100k_dir / "u.item"
    item_file.write_text(item_file.read_text(encoding="latin-1")[:-40], encoding="latin-1")

    with pytest.raises(CommandError, match=r"u\.item:3: expected 24 fields"):
        call_command("import_movielens", str(ml100k_dir), verbosity=0)
    assert _counts() == (0, 0, 0, 0)


def test_directory_without_movielens_files_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="no MovieLens files here"):
        call_command("import_movielens", str(tmp_path), verbosity=0)


@pytest.mark.slow
def test_imports_the_real_ml100k(db):
    assert ML100K.is_dir(), f"MovieLens 100k is expected at {ML100K}"
    call_command("import_movielens", str(ML100K), verbosity=0)

    assert _counts() == (1682, 943, 943, 100_000)
    assert Genre.objects.count() == 18


def test_repeated_movie_id_is_reported_at_its_second_line(db, ml100k_dir):
    item_file = ml100k_dir / "u.item"
    lines = item_file.read_text(encoding="latin-1").splitlines()
    item_file.write_text("\n".join([*lines, lines[0]]) + "\n", encoding="latin-1")

    with pytest.raises(CommandError, match=r"u\.item:4: movie id '1' appears more than once"):
        call_command("import_movielens", str(ml100k_dir), verbosity=0)


def write_ml_latest(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Children|Comedy\n2,"Heat, The (1995)",Action|Crime\n'
        "3,Nothing Known (2001),(no genres listed)\n",
        encoding="utf-8",
    )
    (directory / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n2,2,0.5,964982224\n", encoding="utf-8"
    )
    return directory


def test_imports_the_latest_csv_layout_with_its_children_genre(db, tmp_path):
    call_command("import_movielens", str(write_ml_latest(tmp_path / "ml-latest-small")), verbosity=0)

    assert _counts() == (3, 2, 2, 3)
    toy_story = Title.objects.get(external_id="mllatest:1")
    assert toy_story.maturity_rating == 0  # "Children" (the CSV releases' spelling) is for everyone
    assert Title.objects.get(external_id="mllatest:2").name == "The Heat"
    assert not Genre.objects.filter(name="(no genres listed)").exists()
    assert not Title.objects.get(external_id="mllatest:3").genres.exists()
    view = ViewingEvent.objects.get(profile__account__external_id="mllatest:1", title=toy_story)
    assert view.watch_percentage == pytest.approx(4.0 / 5)


def test_imports_a_plain_csv_of_ratings(db, tmp_path):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating,timestamp\n1,10,1,100\n2,11,2,200\n2,10,2,300\n")
    call_command("import_movielens", str(ratings), verbosity=0)

    assert _counts() == (2, 2, 2, 3)
    assert ViewingEvent.objects.get(profile__account__external_id="csv:2", title__external_id="csv:11").completed
