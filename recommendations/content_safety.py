"""Content-safety audit of one served response: does any part of it show or name a title above a maturity cap?

Used by the tests and by bench/kids_safety.py over whole worlds. It checks everything a client can draw: the
items and every row's items (by id), the row keys that carry a catalog row ("because_you_watched:<row>"), and
every reason and row title by the title names they mention. A text is either one of the fixed phrases the
engine writes (ranking.ml.postprocess, the genre names), or "Because you watched <name>" (the name after the
phrase is looked up), or anything else, where every run of whole words is looked up as a title name. A name
that belongs only to titles within the cap is safe; one shared with a title above the cap is safe only when
the profile watched a within-cap title of that name (the reason may be about that one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ranking.ml import postprocess
from recommendations.ml.catalog import CatalogIndex
from recommendations.serving.engine import Recommendations

BECAUSE_PHRASES = (postprocess.REASON_BECAUSE, "Because You Watched ")  # a reason's, a row title's
FIXED_TEXTS = frozenset(
    {
        postprocess.REASON_CONTINUE,
        postprocess.REASON_NEW,
        postprocess.REASON_TRENDING,
        postprocess.REASON_TOP_PICK,
        "Continue Watching",
        "Top Picks for You",
        "Trending Now",
        "New Releases",
    }
)
MAX_WORDS_SCANNED = 40  # a longer free text is scanned on its first words only (no engine text comes close)


@dataclass(frozen=True)
class Leak:
    where: str  # item, row_item, row_key, reason, row_title
    text: str  # the item's title, the key or the text that names the title
    content_id: int  # the title above the cap (for a name: one of the titles of that name above it)
    maturity: int


class NameIndex:
    """Every title name of a catalog with its ids and maturities, for looking up the names a text mentions."""

    def __init__(self, catalog: CatalogIndex) -> None:
        self.catalog = catalog
        order = np.argsort(catalog.names.astype(str), kind="stable")
        names = catalog.names[order].astype(str)
        starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]]) if len(names) else np.empty(0, np.int64)
        ends = np.r_[starts[1:], len(names)]
        self._rows = {str(names[s]): order[s:e] for s, e in zip(starts, ends, strict=True)}
        self.genre_names = frozenset(catalog.genre_names)

    def rows_named(self, name: str) -> np.ndarray | None:
        return self._rows.get(name)


def response_leaks(
    response: Recommendations,
    *,
    maturity_cap: int,
    names: NameIndex,
    watched_ids: Iterable[int] | None = None,
) -> list[Leak]:
    """Every place where `response` shows or names a title above `maturity_cap` (empty: the response is safe).

    watched_ids: the profile's viewed titles. Reasons name only watched titles, so with it a name shared by a
    title above the cap and a within-cap one is safe only if the profile watched the within-cap one; without
    it, any within-cap title of that name makes the name safe."""
    catalog = names.catalog
    history_known = watched_ids is not None
    watched_rows, known = catalog.positions(np.fromiter(watched_ids or (), np.int64))
    watched_safe = {str(catalog.names[r]) for r in watched_rows[known] if catalog.maturity[r] <= maturity_cap}
    leaks: list[Leak] = []

    def check_items(items, where: str) -> None:
        ids = np.array([item.content_id for item in items], np.int64)
        rows, found = catalog.positions(ids)
        for item, row, present in zip(items, rows, found, strict=True):
            if present and catalog.maturity[row] > maturity_cap:
                leaks.append(Leak(where, item.title, item.content_id, int(catalog.maturity[row])))
            leaks.extend(_text_leaks(item.reason, "reason", maturity_cap, names, watched_safe, history_known))

    check_items(response.items, "item")
    for row in response.rows:
        check_items(row.items, "row_item")
        leaks.extend(_text_leaks(row.title, "row_title", maturity_cap, names, watched_safe, history_known))
        if row.key.startswith(f"{postprocess.BECAUSE_YOU_WATCHED}:"):
            anchor = int(row.key.split(":", 1)[1])
            if not 0 <= anchor < len(catalog) or catalog.maturity[anchor] > maturity_cap:
                maturity = int(catalog.maturity[anchor]) if 0 <= anchor < len(catalog) else -1
                content_id = int(catalog.content_ids[anchor]) if 0 <= anchor < len(catalog) else -1
                leaks.append(Leak("row_key", row.key, content_id, maturity))
    return leaks


def _text_leaks(
    text: str, where: str, cap: int, names: NameIndex, watched_safe: set[str], history_known: bool
) -> list[Leak]:
    if text in FIXED_TEXTS or text in names.genre_names:
        return []
    for phrase in BECAUSE_PHRASES:
        if text.startswith(phrase):
            mentioned = [text[len(phrase) :]]
            break
    else:  # free text: every run of whole words may be a name
        words = text.split()[:MAX_WORDS_SCANNED]
        mentioned = [" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]
    leaks = []
    for name in mentioned:
        rows = names.rows_named(name)
        if rows is None or name in watched_safe:
            continue
        above = rows[names.catalog.maturity[rows] > cap]
        if not len(above) or (len(above) < len(rows) and not history_known):
            continue
        row = int(above[0])
        leaks.append(Leak(where, text, int(names.catalog.content_ids[row]), int(names.catalog.maturity[row])))
    return leaks
