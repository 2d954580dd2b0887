"""The evaluation's outputs: the terminal table, the bar plot and JSON values (pure: no Django)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

# Rows published for this protocol on ml-100k (Recommenders' benchmark notebook) and targets set in the issue.
REFERENCE = {
    "BiVAE (published)": {"map": 0.146, "ndcg": 0.475, "precision": 0.412, "recall": 0.219},
    "BPR (published)": {"map": 0.132, "ndcg": 0.442, "precision": 0.388, "recall": 0.213},
    "NCF (published)": {"map": 0.108, "ndcg": 0.396, "precision": 0.347, "recall": 0.181},
    "SAR (published)": {"map": 0.111, "ndcg": 0.382, "precision": 0.331, "recall": 0.176},
}
TARGETS = {"MF-ALS": {"ndcg": 0.46, "precision": 0.40}, "NCF": REFERENCE["NCF (published)"]}


class EvaluationError(RuntimeError):
    """The evaluation cannot run as asked (e.g. a plot without matplotlib)."""


def format_table(result: dict[str, Any]) -> str:
    """The terminal table: one line per model (test split), then the merged candidates and their sources."""
    header = (
        f"{'model':22s} {'MAP':>6s} {'NDCG@10':>8s} {'P@10':>6s} {'R@10':>6s} {'cover':>6s} {'novel':>6s} "
        f"{'ILD':>6s} {'genres20':>8s} {'R@500':>6s} {'fit s':>7s}"
    )
    lines = [header, "-" * len(header)]
    for row in result["rows"]:
        m = row["metrics"]
        lines.append(
            f"{row['name']:22s} {m['map']:6.3f} {m['ndcg']:8.3f} {m['precision']:6.3f} {m['recall']:6.3f} "
            f"{m['coverage']:6.3f} {m['novelty']:6.2f} {m['ild']:6.3f} {m['genres_top20']:8.2f} "
            f"{m['recall_at_500']:6.3f} {row['fit_seconds']:7.2f}"
        )
    c = result["candidates"]
    dash = "—"
    lines.append(
        f"{'merged candidates':22s} {dash:>6s} {dash:>8s} {dash:>6s} {dash:>6s} {c['coverage']:6.3f} "
        f"{c['novelty']:6.2f} {dash:>6s} {dash:>8s} {c['recall_at_500']:6.3f} {c['fit_seconds']:7.2f}"
    )
    lines.append(
        f"  merged candidates: recall@500 {c['recall_at_500']:.3f} (target {c['target']:.2f}), "
        f"{c['mean_candidates_per_user']:.0f} per user, {c['generate_and_merge_ms_per_user']:.1f} ms per "
        f"user; cover/novel over the 500; serving's quotas {json.dumps(c['quotas'])}"
    )
    lines.append(f"  {'source':20s} {'served':>6s} {'listed':>7s} {'R(listed)':>9s}")
    for name, s in c["per_source"].items():
        lines.append(f"  {name:20s} {s['users_served']:6d} {s['listed_share']:7.3f} {s['recall_of_listed']:9.3f}")
    if result["training_time"]:
        lines.append(
            "median fit seconds, ours vs implicit: "
            + json.dumps({k: round(v, 2) for k, v in result["training_time"]["median_fit_seconds"].items()})
        )
    return "\n".join(lines)


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EvaluationError("the plot needs matplotlib (a dev dependency: pip install -e '.[dev]')") from None


def write_plot(result: dict[str, Any], path: Path) -> None:
    """Bar plot: MAP/NDCG/P/R@10 of every row and the published references; recall@500 beside it."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    reference = result.get("reference") or {}
    names = [row["name"] for row in rows] + list(reference)
    values = [row["metrics"] for row in rows] + list(reference.values())
    keys = [("map", "MAP"), ("ndcg", "NDCG@10"), ("precision", "P@10"), ("recall", "R@10")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 5.8), gridspec_kw={"width_ratios": [2.6, 1]})
    width = 0.8 / len(keys)
    x = np.arange(len(names))
    for offset, (key, label) in enumerate(keys):
        left.bar(x + offset * width - 0.4 + width / 2, [value[key] for value in values], width, label=label)
    left.set_xticks(x, names, rotation=35, ha="right")
    left.set_title(
        f"{result.get('layout', 'ml-100k')}, Recommenders protocol (item-stratified 75/25, seed 42): test split"
    )
    left.axvline(len(rows) - 0.5, color="grey", linestyle=":")
    left.legend()
    left.grid(axis="y", alpha=0.3)

    candidates = result["candidates"]
    recall_names = [row["name"] for row in rows] + ["merged candidates"]
    recall = [row["metrics"]["recall_at_500"] for row in rows] + [candidates["recall_at_500"]]
    colors = ["tab:blue"] * len(rows) + ["tab:red"]
    right.barh(recall_names[::-1], recall[::-1], color=colors[::-1])
    right.axvline(candidates["target"], color="grey", linestyle="--", label=f"target {candidates['target']:.2f}")
    right.set_xlim(0, 1)
    right.set_title("recall@500 (candidate lists)")
    right.legend(loc="lower right")
    right.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
