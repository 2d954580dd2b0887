"""From a ranked, filtered candidate list to what a homepage shows: reasons and rows (pure numpy).

Reasons name what put the title there. Outside a row, first that applies: "Continue watching" (in progress),
"Because you watched X" (item similarity to X proposed it; X the watched title most similar to it), "Top pick
for you" (a personal source proposed it: collaborative, EASE, popular in its genres), "New release", "Trending
now", "Top pick for you". In the Trending Now, New Releases and "Because You Watched X" rows, the row's own.
Rows, in page order: Continue Watching, Top Picks, Trending Now, up to three "Because you watched X",
New Releases, then genre rows; a title appears in one row only. Only anchors the caller names (because_names)
are ever shown: one it leaves out (a title above the profile's maturity cap) gives neither a reason nor a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTINUE_WATCHING = "continue_watching"
TOP_PICKS = "top_picks"
TRENDING_NOW = "trending_now"
BECAUSE_YOU_WATCHED = "because_you_watched"
NEW_RELEASES = "new_releases"
GENRE = "genre"

REASON_CONTINUE = "Continue watching"
REASON_NEW = "New release"
REASON_TRENDING = "Trending now"
REASON_TOP_PICK = "Top pick for you"
REASON_BECAUSE = "Because you watched "  # followed by the watched title's name
MIN_ROW_ITEMS = 3  # a row with fewer titles is not worth a shelf


@dataclass(frozen=True, eq=False)
class PageInput:
    """Candidates in final order (best first), with the flags rows and reasons read.

    ordered: int (n,) positions into the arrays below, best first; names: title names (n,);
    in_progress / new_release / trending / similar: bool (n,); because_rows: int (n,) catalog row of
    the watched title most similar to each candidate (-1 none); because_names: name by catalog row of
    the anchors that may be named (dict; the others count as no anchor); genre_slot: int (n,) each title's main genre slot (-1 none); genre_names: name per slot;
    personal: bool (n,), a personal source proposed it (None: none did).
    """

    ordered: np.ndarray
    in_progress: np.ndarray
    new_release: np.ndarray
    trending: np.ndarray
    similar: np.ndarray
    because_rows: np.ndarray
    because_names: dict[int, str]
    genre_slot: np.ndarray
    genre_names: tuple[str, ...]
    personal: np.ndarray | None = None

    @property
    def named_similar(self) -> np.ndarray:
        """bool (n,): similar-to-watched candidates whose anchor may be named."""
        named = np.fromiter(self.because_names, np.int64, len(self.because_names))
        return self.similar & (self.because_rows >= 0) & np.isin(self.because_rows, named)


@dataclass(frozen=True)
class PageRow:
    key: str
    title: str
    positions: tuple[int, ...]  # positions into the candidate arrays, in display order


def reasons(page: PageInput, positions: np.ndarray, row_key: str = "") -> list[str]:
    """The reason shown beside each candidate at `positions` (in the row `row_key`, if any)."""
    at = np.asarray(positions, np.int64)
    in_progress = page.in_progress[at].tolist()  # the flags as Python values: one gather each, no per-item numpy
    if row_key in (TRENDING_NOW, NEW_RELEASES):
        fixed = REASON_TRENDING if row_key == TRENDING_NOW else REASON_NEW
        return [REASON_CONTINUE if busy else fixed for busy in in_progress]
    personal = page.personal[at].tolist() if page.personal is not None else [False] * len(at)
    names = page.because_names
    out = []
    for busy, similar, anchor, mine, new, trending in zip(
        in_progress,
        page.similar[at].tolist(),
        page.because_rows[at].tolist(),
        personal,
        page.new_release[at].tolist(),
        page.trending[at].tolist(),
        strict=True,
    ):
        name = names.get(anchor) if similar else None
        if busy:
            out.append(REASON_CONTINUE)
        elif name is not None:
            out.append(f"{REASON_BECAUSE}{name}")
        elif mine:
            out.append(REASON_TOP_PICK)
        elif new:
            out.append(REASON_NEW)
        elif trending:
            out.append(REASON_TRENDING)
        else:
            out.append(REASON_TOP_PICK)
    return out


def build_rows(
    page: PageInput, *, row_size: int = 20, top_picks: int = 20, because_rows: int = 3, genre_rows: int = 3
) -> list[PageRow]:
    """Homepage rows over the ordered candidates; no title repeats across rows.

    Works on the flags gathered once in page order (`ordered` holds each position once)."""
    ordered = np.asarray(page.ordered, np.int64)
    used = np.zeros(len(ordered), bool)  # by place in `ordered`
    rows: list[PageRow] = []

    def take(key: str, title: str, mask: np.ndarray, limit: int) -> None:
        places = np.flatnonzero(mask & ~used)[:limit]
        if len(places) >= (1 if key == CONTINUE_WATCHING else MIN_ROW_ITEMS):
            used[places] = True
            rows.append(PageRow(key, title, tuple(ordered[places].tolist())))

    in_progress = page.in_progress[ordered]
    take(CONTINUE_WATCHING, "Continue Watching", in_progress, row_size)
    take(TOP_PICKS, "Top Picks for You", ~in_progress, top_picks)
    take(TRENDING_NOW, "Trending Now", page.trending[ordered] & ~in_progress, row_size)
    named = page.named_similar[ordered]
    because = page.because_rows[ordered]
    anchors = because[named]
    if len(anchors):
        # Anchors by how many remaining candidates they explain; ties: the one explaining the better item.
        values, first, counts = np.unique(anchors, return_index=True, return_counts=True)
        for anchor in values[np.lexsort((first, -counts))][:because_rows].tolist():
            take(
                f"{BECAUSE_YOU_WATCHED}:{anchor}",
                f"Because You Watched {page.because_names[anchor]}",
                named & (because == anchor),
                row_size,
            )
    take(NEW_RELEASES, "New Releases", page.new_release[ordered] & ~in_progress, row_size)
    genre = page.genre_slot[ordered]
    slots = genre[(genre >= 0) & ~used]
    if len(slots):
        values, counts = np.unique(slots, return_counts=True)
        for slot in values[np.argsort(-counts, kind="stable")][:genre_rows].tolist():
            take(f"{GENRE}:{slot}", page.genre_names[slot], genre == slot, row_size)
    return rows
