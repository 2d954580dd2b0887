"""Load a rating data set (MovieLens 100k, 1M, latest CSVs, or a plain CSV) into the catalog, accounts and
viewing history."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from config.partitions import vacuum_newest
from users.loaders.dataset import DatasetFormatError
from users.loaders.movielens import read_movielens
from users.management.commands._progress import progress_bar
from users.services import EVENTS_TABLE, dataset_load


class Command(BaseCommand):
    help = (
        "Import MovieLens ratings as titles, one account and profile per user, and one viewing event per "
        "rating (watch_percentage = rating / 5). The format (100k: u.data/u.item/u.user, 1M: "
        "ratings.dat/movies.dat/users.dat, latest: ratings.csv/movies.csv, or PATH a CSV file of "
        "user,item,rating,timestamp) is detected from PATH. The whole import is one "
        "transaction: a malformed file is reported with its line number and nothing is written. "
        "Importing the same files again adds nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="MovieLens directory (e.g. ../shared/data/ml-100k) or CSV file")

    def handle(self, *args, path: str, verbosity: int, **options) -> None:
        try:
            dataset = read_movielens(path)
        except DatasetFormatError as error:
            raise CommandError(f"{error} (nothing was imported)") from None
        with progress_bar(total=dataset.expected_events, desc="viewing events", verbosity=verbosity) as bar:
            summary = dataset_load(dataset=dataset, on_events=bar.update)
        vacuum_newest(EVENTS_TABLE)  # recent views index-only at once, not after autovacuum
        self.stdout.write(self.style.SUCCESS(summary.line()))
