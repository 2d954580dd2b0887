"""The closed loop's pure parts (numpy only): who visits on a simulated day, and each arm's figures for it.

A day's impressions of every arm are one flat `Served` batch; `day_figures` turns it into the design's online
metrics per arm (the same definitions as experiments.selectors: CTR per impression, play rate per click,
completion per play, engagement 0.1·click + 0.3·play + 0.6·complete per impression, minutes per visit,
long-tail share of plays outside the head, discovery = share of the catalog played since day 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.ml.metrics import engagement_score


@dataclass(frozen=True)
class VisitModel:
    """How often profiles come: a lognormal activity per profile, scaled so that `daily_share` of them visit on an
    average day; a visiting profile comes back `repeat_mean` more times that day on average (Poisson)."""

    daily_share: float = 0.2
    repeat_mean: float = 0.5
    spread: float = 1.0  # sigma of the log-activity: a few profiles visit nearly daily, many rarely
    most: float = 0.95  # nobody visits with certainty

    def rates(self, n_profiles: int, rng: np.random.Generator) -> np.ndarray:
        """P(visit on a day) per profile, float64 (n_profiles,)."""
        weight = rng.lognormal(0.0, self.spread, n_profiles)
        scale = float(self.daily_share / weight.mean())
        for _ in range(20):  # the clipped profiles' lost share goes to the others
            rates = np.clip(scale * weight, 0.0, self.most)
            scale *= self.daily_share / max(rates.mean(), 1e-12)
        return np.asarray(np.clip(scale * weight, 0.0, self.most), np.float64)

    def visits(self, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One day's visits as profile positions (a position repeats for each visit of the day), shuffled."""
        came = np.flatnonzero(rng.random(len(rates)) < rates)
        visits = np.repeat(came, 1 + rng.poisson(self.repeat_mean, len(came)))
        return visits[rng.permutation(len(visits))]


@dataclass
class Served:
    """One day's impressions, all arms flattened: each row is a title shown in a visit and what came of it."""

    arm: np.ndarray  # int (m,) arm index
    visit: np.ndarray  # int (m,) the visit's number within the day
    title: np.ndarray  # int (m,) title row (ground truth = catalog position of the simulation)
    clicked: np.ndarray  # bool (m,)
    played: np.ndarray  # bool (m,) nested: played implies clicked
    completed: np.ndarray  # bool (m,) nested: completed implies played
    minutes: np.ndarray  # float (m,) minutes watched


class LoopFigures:
    """Accumulates the per-day figures of each arm; `discovered` remembers what each arm's viewers played."""

    def __init__(self, arms: list[str], n_titles: int, head: np.ndarray) -> None:
        self.arms = list(arms)
        self.n_titles = n_titles
        self.head = np.zeros(n_titles, bool)
        self.head[np.asarray(head, np.int64)] = True
        self.discovered = np.zeros((len(arms), n_titles), bool)
        self.days: list[dict[str, dict[str, float]]] = []

    def add_day(
        self, served: Served, visits_per_arm: np.ndarray, oracle: str | None = "oracle"
    ) -> dict[str, dict[str, float]]:
        """The day's figures per arm (and each one's engagement as a share of the oracle arm's, when present)."""
        day: dict[str, dict[str, float]] = {}
        for number, name in enumerate(self.arms):
            mine = served.arm == number
            clicked, played, completed = served.clicked[mine], served.played[mine], served.completed[mine]
            titles = served.title[mine]
            impressions, clicks, plays = int(mine.sum()), int(clicked.sum()), int(played.sum())
            self.discovered[number, titles[played]] = True
            visits = int(visits_per_arm[number])
            day[name] = {
                "visits": visits,
                "impressions": impressions,
                "clicks": clicks,
                "plays": plays,
                "completions": int(completed.sum()),
                "ctr": _share(clicks, impressions),
                "play_rate": _share(plays, clicks),
                "completion_rate": _share(int(completed.sum()), plays),
                "engagement": float(engagement_score(clicked, played, completed).mean()) if impressions else np.nan,
                "minutes_per_visit": float(served.minutes[mine].sum() / visits) if visits else np.nan,
                "long_tail_share": _share(int((played & ~self.head[titles]).sum()), plays),
                "discovery": float(self.discovered[number].mean()),
                "coverage": float(len(np.unique(titles)) / self.n_titles),
            }
        if oracle in day and day[oracle]["engagement"]:
            for figures in day.values():
                figures["share_of_oracle"] = figures["engagement"] / day[oracle]["engagement"]
        self.days.append(day)
        return day

    def curve(self, arm: str, metric: str) -> np.ndarray:
        return np.array([day[arm].get(metric, np.nan) for day in self.days], np.float64)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")
