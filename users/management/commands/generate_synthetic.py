"""Generate and load a deterministic synthetic catalog, audience and viewing history."""

from __future__ import annotations

import datetime as dt
import resource
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.partitions import vacuum_newest
from users.loaders.synthetic import SOURCE, SyntheticConfig, generate
from users.management.commands._progress import progress_bar
from users.services import EVENTS_TABLE, DatasetAlreadyLoaded, dataset_load, dataset_remove, dataset_source_present


class Command(BaseCommand):
    help = (
        "Generate a realistic synthetic streaming world (Zipf-like popularity, originals, recent releases, "
        "shared cast, 1-5 profiles per account, tastes from hidden latent factors, binge sessions, partial "
        "watches, device and time-of-day patterns) and load it in one transaction. The same --seed and "
        "--as-of always give the same data; the hidden factors are saved beside it as ground truth. "
        "Netflix scale: --titles 100000 --accounts 400000 (about 1M profiles) --events 50000000."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--titles", type=int, default=2_000, help="catalog size (default 2,000)")
        parser.add_argument(
            "--accounts", type=int, default=500, help="accounts; each has 1-5 profiles, 2.5 on average (default 500)"
        )
        parser.add_argument("--events", type=int, default=100_000, help="viewing events (default 100,000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            default=dt.datetime.now(dt.UTC).date(),
            help="the 'today' of the generated world, YYYY-MM-DD (default: today, UTC)",
        )
        parser.add_argument(
            "--ground-truth-dir",
            type=Path,
            default=None,
            help="where to save the hidden factors (default: RECO_DATA_DIR/synthetic/seed-SEED)",
        )
        parser.add_argument("--replace", action="store_true", help="delete previously loaded synthetic data first")

    def handle(self, *args, verbosity: int, **options) -> None:
        started = time.perf_counter()
        try:
            config = SyntheticConfig(
                titles=options["titles"],
                accounts=options["accounts"],
                events=options["events"],
                seed=options["seed"],
                as_of=options["as_of"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        if dataset_source_present(source=SOURCE):
            if not options["replace"]:
                raise CommandError("Synthetic data is already loaded; pass --replace to regenerate it.")
            self.stdout.write("Removing the previous synthetic data ...")
            dataset_remove(source=SOURCE)
        dataset, truth = generate(config)
        truth_dir = options["ground_truth_dir"] or Path(settings.RECO_DATA_DIR) / "synthetic" / f"seed-{config.seed}"
        with progress_bar(total=dataset.expected_events, desc="viewing events", verbosity=verbosity) as bar:
            try:
                summary = dataset_load(dataset=dataset, fresh_history=True, on_events=bar.update)
            except DatasetAlreadyLoaded as error:
                raise CommandError(str(error)) from None
        truth.save(truth_dir)
        vacuum_newest(EVENTS_TABLE)  # recent views index-only at once, not after autovacuum
        if verbosity >= 2:
            for phase, seconds in summary.phase_seconds.items():
                self.stdout.write(f"  {phase:<26} {seconds:8.1f} s")
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary.line()}; total {time.perf_counter() - started:.1f} s, peak memory {peak_gib:.2f} GiB; "
                f"ground truth in {truth_dir}"
            )
        )
