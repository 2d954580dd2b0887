"""The taste arm's pool (Variant.taste): the genre-taste model and the per-title outcome posterior as serving
reads them, each the newest fit in the artifact directory, reloaded when its file changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from config.reloading import VersionedSnapshot
from recommendations.ml import sources, taste
from recommendations.ml.candidate_pipeline import TOTAL_CANDIDATES, CandidateSet
from recommendations.ml.candidates import MergedCandidates, merge_candidates
from recommendations.ml.catalog import GENRE_BITS

TASTE = "taste"  # the taste pool's one source
_rng = np.random.default_rng()
_newest_fits: dict[str, VersionedSnapshot] = {}  # file name -> its newest fit, rebuilt when the file changes


def taste_directory() -> Path:
    return Path(settings.RECO_ARTIFACT_DIR) / "taste"


def _stamp(name: str) -> tuple[str, int] | None:
    path = taste_directory() / name
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError:
        return None


def _newest(name: str, load):
    """The object in the taste directory's file `name`, read again only when the file changes (a stat a call)."""
    fit = _newest_fits.get(name)
    if fit is None:
        fit = _newest_fits.setdefault(
            name,
            VersionedSnapshot(
                f"taste fit {name}",
                read_version=lambda: _stamp(name),
                build=lambda stamp, _previous: None if stamp is None else load(taste_directory()),
                check_seconds=0.0,
            ),
        )
    return fit.get()


def taste_model(slots: int) -> taste.GenreTaste:
    """The fitted genre-taste model; the identity prior before any fit."""
    return _newest(taste.WEIGHTS_FILE, taste.GenreTaste.load) or taste.identity(slots)


def title_outcomes() -> taste.TitleOutcomes | None:
    return _newest(taste.OUTCOMES_FILE, taste.TitleOutcomes.load)


def taste_candidates(state, models, *, explore: float, total: int = TOTAL_CANDIDATES) -> CandidateSet | None:
    """The allowed, unwatched titles the genre-taste model rates highest for the profile, each moved by a Thompson
    draw of its attractiveness (explore: the draw's weight, in units of the taste scores' spread; 0: taste alone).
    None without a genre mix (no history and no onboarding genres): the caller serves the standard candidates."""
    catalog = models.catalog
    rows, known = catalog.positions(state.history_title_ids)
    watched = rows[known]
    shares = taste.viewer_shares(catalog.genre_indicator(watched))
    if shares is None and len(state.onboarding_genre_ids):
        mask = catalog.genre_mask_of(np.asarray(state.onboarding_genre_ids, np.int64))
        shares = taste.viewer_shares(_mask_bits(mask))
    if shares is None:
        return None
    allowed = catalog.allowed(tier=state.tier, country=state.country, maturity_cap=state.maturity_cap)
    scores = taste_model(len(shares)).score(shares, catalog.genre_indicator(np.arange(len(catalog.content_ids))))
    outcomes = title_outcomes() if explore > 0 else None
    if outcomes is not None:
        spread = float(scores[allowed].std()) if allowed.any() else 0.0
        scores += explore * spread * (outcomes.draw(catalog.content_ids, _rng) - 1.0)
    picked, values = sources.top_rows(scores, total, allowed=allowed, exclude=np.unique(watched))
    merged = merge_candidates({TASTE: (picked, values)}, {TASTE: len(picked)}, len(picked))
    history_rows, first = np.unique(watched, return_index=True)
    return CandidateSet(
        merged.content_ids,
        MergedCandidates(catalog.content_ids[merged.content_ids], merged.sources, merged.proposed, merged.scores),
        history_rows[np.argsort(first)],
        0,
        not state.has_history,
    )


def _mask_bits(mask) -> np.ndarray:
    return ((np.uint32(mask) >> np.arange(GENRE_BITS, dtype=np.uint32)) & np.uint32(1)).astype(np.float32)[None, :]
