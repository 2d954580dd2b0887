"""Offline evaluation of a rating data set (Microsoft Recommenders protocol): table, JSON and plot."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommendations.ml.evaluation import DatasetError, EvaluationConfig, EvaluationError, format_table, run_evaluation

DEFAULT_DATA_DIR = Path(settings.BASE_DIR).parent / "shared" / "data" / "ml-100k"
DEFAULT_OUTPUT_DIR = Path(settings.RECO_DATA_DIR) / "evaluation"


class Command(BaseCommand):
    help = (
        "Run the Microsoft Recommenders protocol (item-stratified 75/25 split, seed 42) on a data set (MovieLens "
        "100k, 1M, the latest CSVs, or a CSV file of user,item,rating,timestamp): tune "
        "on a validation split carved out of train, refit, and score popularity, MF (ALS, BPR, SGD; implicit's "
        "ALS/BPR directly), NCF, content similarity, EASE and the merged candidates of serving's own pipeline "
        "on test. Prints a table (MAP, NDCG/P/R@10, coverage, novelty, intra-list diversity, distinct genres in "
        "the top 20, recall@500) and writes --json and --png. The full run takes minutes; --quick skips tuning "
        "and uses the last full run's choices (well under a minute)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dataset",
            "--data-dir",
            dest="dataset",
            type=Path,
            default=DEFAULT_DATA_DIR,
            help="a MovieLens directory (100k, 1M, latest) or a CSV file of "
            f"user,item,rating,timestamp (default {DEFAULT_DATA_DIR})",
        )
        parser.add_argument(
            "--tune-seconds",
            type=float,
            default=60.0,
            help="time box of each model family's grid on validation, NCF x2.5 (default 60; 0 = no tuning, as --quick)",
        )
        parser.add_argument("--quick", action="store_true", help="skip tuning and the fit-time comparison")
        parser.add_argument(
            "--json",
            type=Path,
            default=DEFAULT_OUTPUT_DIR / "ml100k_eval.json",
            help="where to write the results (default %(default)s)",
        )
        parser.add_argument(
            "--png",
            type=Path,
            default=DEFAULT_OUTPUT_DIR / "ml100k_eval.png",
            help="where to write the plot, needs matplotlib (default %(default)s)",
        )
        parser.add_argument("--threads", type=int, default=2, help="implicit's threads (default 2)")
        parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)")

    def handle(
        self,
        *args,
        dataset: Path,
        tune_seconds: float,
        quick: bool,
        json: Path,
        png: Path,
        threads: int,
        torch_threads: int,
        verbosity: int,
        **options,
    ) -> None:
        if tune_seconds < 0:
            raise CommandError("--tune-seconds must be 0 or more.")
        config = EvaluationConfig(
            dataset=dataset,
            json_path=json,
            png_path=png,
            tune_seconds=tune_seconds,
            quick=quick,
            threads=threads,
            torch_threads=torch_threads,
            show_progress=verbosity > 0,
            log=(lambda line: self.stdout.write(line)) if verbosity > 0 else (lambda line: None),
        )
        try:
            result = run_evaluation(config)
        except (DatasetError, EvaluationError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(format_table(result))
        self.stdout.write(
            self.style.SUCCESS(
                f"{result['layout']}: merged candidates recall@500 {result['candidates']['recall_at_500']:.3f}; wrote {json} and "
                f"{png} in {result['total_seconds']:.0f} s"
            )
        )
