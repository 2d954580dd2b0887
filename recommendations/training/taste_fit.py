"""The genre-taste fit (recommendations.ml.taste) over the viewing history, written where serving reads it."""

from __future__ import annotations

import numpy as np

from recommendations.ml import taste
from recommendations.serving.catalog_cache import catalog_index_build
from recommendations.serving.context import COMPLETED_SHARE
from recommendations.serving.taste_arm import taste_directory
from users.models import ViewingEvent


def taste_train(*, max_rows: int = taste.MAX_ROWS, ridge: float = taste.DEFAULT_RIDGE) -> taste.GenreTaste:
    """Fit W and the per-title residuals on the newest `max_rows` viewings; save them for serving."""
    rows = list(
        ViewingEvent.objects.order_by("-last_watched_at").values_list(
            "profile_id", "title_id", "watch_percentage", "completed"
        )[:max_rows]
    )
    catalog = catalog_index_build()
    data = np.array([r[:3] for r in rows], np.float64).reshape(-1, 3)
    finished = np.array([r[3] for r in rows], bool) | (data[:, 2] >= COMPLETED_SHARE)
    positions, known = catalog.positions(data[:, 1].astype(np.int64))
    model = taste.fit(
        data[known, 0].astype(np.int64),
        catalog.genre_indicator(positions[known]),
        finished[known],
        ridge=ridge,
    )
    model.save(taste_directory())
    return model
