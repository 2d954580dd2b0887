"""Train models from the viewing history, register them, and activate those that pass the gate."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from recommendations.models import ModelKind
from recommendations.training.jobs import model_train

DEFAULT_KINDS = "popularity,mf,content,ncf,ranker"  # the ranker last: it trains on the others' candidates


class Command(BaseCommand):
    help = (
        "Train each kind on the viewing history (optionally only before --until), measure it on a held-out "
        "validation split, register it as a new model version, and activate it only if the validation rests "
        "on enough data (50 users or ranker queries, 200 positives), it beats popularity on the same split "
        "(collaborative kinds and the ranker) and, unless --activation always, it is not worse than the "
        "active version. A version that fails stays a candidate; its notes say why. "
        f"Kinds: {', '.join(ModelKind.values)} (default {DEFAULT_KINDS})."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--kinds", default=DEFAULT_KINDS, help=f"comma-separated (default {DEFAULT_KINDS})")
        parser.add_argument("--until", type=dt.datetime.fromisoformat, help="only history before this ISO time")
        parser.add_argument(
            "--activation",
            choices=["if-not-worse", "always", "never"],
            default="if-not-worse",
            help="when to activate a version that passes the data floor and the popularity baseline: if not worse "
            "than the active one (default), always, or never",
        )
        parser.add_argument("--ncf-epochs", type=int, help="override NCF's number of epochs (quick demos)")
        parser.add_argument("--ranker-profiles", type=int, help="profiles the ranker learns from (default 3,000)")

    def handle(
        self, *args, kinds: str, until, activation: str, ncf_epochs: int | None, ranker_profiles: int | None, **options
    ) -> None:
        chosen = [kind.strip() for kind in kinds.split(",") if kind.strip()]
        unknown = set(chosen) - set(ModelKind.values)
        if unknown:
            raise CommandError(f"Unknown kinds {sorted(unknown)}; choose from {', '.join(ModelKind.values)}.")
        if until and until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        activated, failed = 0, []
        for kind in chosen:
            params = {"n_epochs": ncf_epochs} if kind == ModelKind.NCF and ncf_epochs else None
            if kind == ModelKind.RANKER and ranker_profiles:
                params = {"profiles": ranker_profiles}
            try:
                result = model_train(kind=kind, until=until, params=params, activation=activation)
            except ValueError as error:  # this kind cannot be trained on this data; the others may
                failed.append(f"{kind}: {error}")
                self.stderr.write(f"{kind:<10} not trained: {error}")
                continue
            metrics = result.version.metrics
            activated += result.activated
            self.stdout.write(
                f"{kind:<10} {result.version.version}  NDCG@10 {metrics.get('ndcg_at_10', 0):.4f}  "
                f"P@10 {metrics.get('precision_at_10', 0):.4f}  {metrics.get('train_seconds', 0):.1f} s  "
                f"{result.reason}"
            )
        self.stdout.write(
            f"{activated} of {len(chosen)} activated; the others stay candidates (serving uses what is active)."
        )
        if failed:
            raise CommandError("; ".join(failed))
