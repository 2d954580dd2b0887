"""What showing each title gave (impressions and their clicks), as the taste arm's per-title posterior."""

from __future__ import annotations

import numpy as np
import pandas as pd

from events.models import Event, EventType
from recommendations.ml import taste
from recommendations.serving.taste_arm import taste_directory

MAX_IMPRESSIONS = 2_000_000  # the newest impression rows a refresh reads


def title_outcomes_refresh(*, max_rows: int = MAX_IMPRESSIONS) -> taste.TitleOutcomes | None:
    """Refit the per-title attractiveness posterior from the logged impressions and clicks; save it for serving."""
    shown = pd.DataFrame(
        Event.objects.filter(type=EventType.IMPRESSION)
        .order_by("-occurred_at")
        .values_list("request_id", "title_id", "position", "occurred_at")[:max_rows],
        columns=["request_id", "title_id", "position", "occurred_at"],
    )
    if shown.empty:
        return None
    clicks = pd.DataFrame(
        Event.objects.filter(type=EventType.CLICK, occurred_at__gte=shown["occurred_at"].min())
        .values_list("request_id", "title_id")
        .distinct(),
        columns=["request_id", "title_id"],
    ).assign(clicked=True)
    rows = shown.merge(clicks, on=["request_id", "title_id"], how="left")
    outcomes = taste.title_outcomes(
        rows["title_id"].to_numpy(np.int64),
        rows["position"].fillna(1).to_numpy(np.float64),
        rows["clicked"].astype("boolean").fillna(False).to_numpy(bool),
    )
    if outcomes is not None:
        outcomes.save(taste_directory())
    return outcomes
