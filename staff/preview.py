"""The homepage preview: a profile's page as an app would draw it, with why each title is there.

Calls RecommendationEngine as documented (no response cache, explanations on), then adds what a page needs
and the engine does not return: each title's genres and originals flag, and the rules that match it, named.
Without `show_details` (users.view_profile_details: operators and superusers; never editors) the page shows
nothing of the viewing history or the account: no titles in progress, no watched title named by a "Because
you watched" reason or row, no account id, home country or tier.

`preview_query_parse` reads the page's query string: a value that is not valid is ignored and said why.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Prefetch, Q
from django.utils import timezone

from catalog.models import Country, MaturityRating, SubscriptionTier
from ranking.ml.postprocess import BECAUSE_YOU_WATCHED, CONTINUE_WATCHING, REASON_BECAUSE
from ranking.models import Boost, Suppression, TargetKind, TierRule
from recommendations.ml.sources import CONTINUE_WATCHING as IN_PROGRESS_SOURCE
from recommendations.serving.catalog_cache import catalog_cache
from recommendations.serving.context import ProfileHead, UserContext, profile_head_load
from recommendations.serving.engine import RecommendationEngine, Recommendations, Variant
from users.models import DeviceType, Profile

N_TOP = 20  # the top list the engine ranks; rows are drawn from its wider ordering
HIDDEN_REASON = "Because you watched a title in this profile's history"
HIDDEN_ROW_TITLE = "Because You Watched … (a title in the viewing history)"
MAX_ID = 2**63 - 1  # PostgreSQL bigint
MAX_QUERY_LENGTH = 50  # the longest profile name (users.Profile.name)

COMPARE_CHOICES = {
    "": "—",
    "no_diversify": "without diversification",
    "no_rules": "without business rules",
}
COMPARE_VARIANTS = {"no_diversify": Variant(diversify=False), "no_rules": Variant(rules=False)}


@dataclass(frozen=True)
class PreviewRequest:
    profile_id: int
    device_type: int = DeviceType.TV
    time_of_day: int | None = None  # None: the server's current UTC hour, as the engine does
    country: str | None = None  # None: the account's country
    compare: str = ""  # a COMPARE_CHOICES key
    show_details: bool = False  # viewing history and account details (users.view_profile_details)


@dataclass(frozen=True)
class PreviewQuery:
    """The preview page's query string, validated: every field is usable as it is; `problems` says what of the
    request was ignored, and why."""

    query: str = ""
    profile_id: int | None = None
    device: int = DeviceType.TV
    hour: int | None = None
    country: str | None = None
    compare: str = ""
    after: int = 0
    problems: tuple[str, ...] = ()


def preview_query_parse(params: Any, *, country_codes: Iterable[str]) -> PreviewQuery:
    """Validate the preview's GET parameters (a QueryDict or dict of str); a bad value is dropped with a problem."""
    problems: list[str] = []

    def text(name: str) -> str:
        value = str(params.get(name, "") or "").strip()
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
            problems.append(f"Ignored {name}: it contains control characters.")
            return ""
        return value

    def number(name: str, *, low: int, high: int, label: str) -> int | None:
        value = text(name)
        if not value:
            return None
        # ASCII digits only: int() also reads other scripts' digits, isdigit() also passes "²" that int() refuses.
        if not (value.isascii() and value.isdigit() and len(value) <= len(str(high)) and low <= int(value) <= high):
            problems.append(f"Ignored {name} {_shown(value)}: {label}.")
            return None
        return int(value)

    query = text("q")
    if len(query) > MAX_QUERY_LENGTH:
        problems.append(f"No profile name is longer than {MAX_QUERY_LENGTH} characters: the search was not run.")
        query = ""
    profile_id = number("profile", low=1, high=MAX_ID, label="not a profile id")
    device = number("device", low=0, high=MAX_ID, label="not a device")
    if device is not None and device not in DeviceType.values:
        problems.append(f"Ignored device {device}: not a device.")
        device = None
    hour = number("hour", low=0, high=23, label="an hour is 0 to 23")
    country = text("country").upper() or None
    if country is not None and country not in set(country_codes):
        problems.append(f"Ignored country {_shown(country)}: not a country of the catalog.")
        country = None
    compare = text("compare")
    if compare not in COMPARE_CHOICES:
        problems.append(f"Ignored compare {_shown(compare)}: not a comparison this page offers.")
        compare = ""
    after = number("after", low=0, high=MAX_ID, label="not a profile id")
    return PreviewQuery(
        query,
        profile_id,
        DeviceType.TV if device is None else device,
        hour,
        country,
        compare,
        after or 0,
        tuple(problems),
    )


def _shown(value: str) -> str:
    """A rejected value as the message quotes it: short, and escapes visible."""
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


@dataclass(frozen=True)
class Tile:
    content_id: int
    title: str
    genres: tuple[str, ...]
    is_original: bool
    reason: str
    rank: int
    score: float
    sources: tuple[str, ...]
    hue: int  # the generated artwork's colour, stable per main genre
    boosted: bool = False
    only_here: bool = False  # not anywhere on the other page of a side-by-side comparison


@dataclass(frozen=True)
class RowView:
    key: str
    title: str
    tiles: tuple[Tile, ...]
    hidden: int = 0  # titles from the viewing history left out (no users.view_profile_details)


@dataclass(frozen=True)
class PageView:
    label: str
    rows: tuple[RowView, ...]
    timings_ms: dict[str, float]
    degraded: tuple[str, ...]
    summary: dict[str, Any]

    @property
    def server_ms(self) -> float:
        return round(sum(self.timings_ms.values()), 1)

    @property
    def content_ids(self) -> set[int]:
        return {tile.content_id for row in self.rows for tile in row.tiles}


@dataclass(frozen=True)
class HomepagePreview:
    profile: dict[str, Any]
    context: dict[str, Any]
    page: PageView
    compare: PageView | None
    model_versions: dict[str, str]
    rules_version: str
    why: dict[str, dict[str, Any]] = field(default_factory=dict)  # by content id (as text, for JSON)


def preview_contexts() -> dict[str, Any]:
    """The choices of the preview's context form: devices, hours, countries (a small table), comparisons."""
    return {
        "devices": DeviceType.choices,
        "hours": list(range(24)),
        "countries": list(Country.objects.order_by("code").values_list("code", "name")),
        "compare_choices": list(COMPARE_CHOICES.items()),
    }


def homepage_preview(*, request: PreviewRequest, engine: RecommendationEngine | None = None) -> HomepagePreview:
    """The profile's homepage for this context, and the comparison page when asked; Profile.DoesNotExist
    (the engine's ProfileNotFound) when the profile is unknown."""
    engine = engine or RecommendationEngine(use_cache=False)
    head = profile_head_load(profile_id=request.profile_id)
    country = request.country or head.country
    context = UserContext(
        profile_id=head.profile_id, country=country, device_type=request.device_type, time_of_day=request.time_of_day
    )
    result = engine.recommend(context=context, n=N_TOP, variant=Variant(), explain=True)
    other = None
    if request.compare in COMPARE_VARIANTS:
        # No explanations on the comparison: it only has to show what changes, and explaining costs ~50 ms.
        other = engine.recommend(context=context, n=N_TOP, variant=COMPARE_VARIANTS[request.compare])

    shown = _shown_ids(result) | (_shown_ids(other) if other else set())
    titles = _titles(shown)
    now = timezone.now()
    rules = rules_matching(titles=titles, head=head, country=country, now=now)
    explanations = result.explanations or {}
    other_ids = _shown_ids(other) if other else None
    details = request.show_details
    page = _page_view("As served", result, titles, explanations, other_ids, details)
    compare = (
        _page_view(f"Served {COMPARE_CHOICES[request.compare]}", other, titles, {}, _shown_ids(result), details)
        if other
        else None
    )
    visible = page.content_ids | (compare.content_ids if compare else set())
    why = {}
    for content_id, info in titles.items():
        if content_id not in visible:
            continue
        explained = explanations.get(content_id, {})
        why[str(content_id)] = {
            "title": info.name,
            "genres": list(info.genres),
            "is_original": info.is_original,
            "maturity": info.maturity_label,
            "sources": explained.get("sources", {}),
            "ranker_score": explained.get("ranker_score"),
            "final_score": explained.get("final_score"),
            "boosted": explained.get("boosted", False),
            "rank_by_relevance": explained.get("rank_by_relevance"),
            "top_features": explained.get("top_features", []),
            "rules": rules.get(content_id, []),
            "explained": content_id in explanations,
        }
    profile = Profile.objects.only("id", "name").get(pk=head.profile_id)
    summary = {"id": head.profile_id, "name": profile.name, "is_kids": head.is_kids, "maturity_cap": head.maturity_cap}
    if details:
        summary.update(account_id=head.account_id, country=head.country, tier=SubscriptionTier(head.tier).label)
    return HomepagePreview(
        profile=summary,
        # Without details an unchosen country stays unnamed: it is the account's home country.
        context={
            "country": country if details or request.country else None,
            "device": DeviceType(request.device_type).label,
            "time_of_day": request.time_of_day,
            "compare": request.compare,
        },
        page=page,
        compare=compare,
        model_versions=result.model_versions,
        rules_version=result.rules_version,
        why=why,
    )


@dataclass(frozen=True)
class TitleInfo:
    content_id: int
    name: str
    is_original: bool
    maturity_rating: int
    maturity_label: str
    genres: tuple[str, ...]
    genre_ids: frozenset[int]


def _titles(ids: Iterable[int]) -> dict[int, TitleInfo]:
    """Names, genres and flags of the shown titles from the catalog arrays every serving process holds (the
    engine has just refreshed them): no query, whatever the catalog's size."""
    catalog = catalog_cache.current()
    wanted = np.fromiter(ids, dtype=np.int64)
    rows, known = catalog.positions(wanted)
    slots = np.arange(len(catalog.genre_ids), dtype=np.uint32)
    out = {}
    for content_id, row in zip(wanted[known].tolist(), rows[known].tolist(), strict=True):
        present = (catalog.genre_masks[row] >> slots) & np.uint32(1) == 1
        maturity = int(catalog.maturity[row])
        out[content_id] = TitleInfo(
            content_id,
            str(catalog.names[row]),
            bool(catalog.is_original[row]),
            maturity,
            MaturityRating(maturity).label if maturity in MaturityRating.values else str(maturity),
            tuple(name for name, on in zip(catalog.genre_names, present, strict=True) if on),
            frozenset(catalog.genre_ids[present].tolist()),
        )
    return out


def _shown_ids(result: Recommendations | None) -> set[int]:
    if result is None:
        return set()
    return {i.content_id for i in result.items} | {i.content_id for row in result.rows for i in row.items}


def _hue(genres: tuple[str, ...], content_id: int) -> int:
    base = zlib.crc32((genres[0] if genres else "none").encode()) % 360
    return (base + content_id % 7 * 6) % 360  # titles of one genre share a colour family, not one colour


def _page_view(
    label: str,
    result: Recommendations,
    titles: dict[int, TitleInfo],
    explanations: dict,
    other_ids: set[int] | None,
    show_history: bool = True,
) -> PageView:
    """The rows as tiles; without show_history, titles in progress are left out (counted) and the watched titles
    that "Because you watched" names are not named (nor numbered: the row key carries the title's catalog row)."""
    rows = []
    because = 0
    for row in result.rows:
        tiles = []
        hidden = 0
        for item in row.items:
            if not show_history and (row.key == CONTINUE_WATCHING or IN_PROGRESS_SOURCE in item.sources):
                hidden += 1
                continue
            reason = item.reason
            if not show_history and reason.startswith(REASON_BECAUSE):
                reason = HIDDEN_REASON
            info = titles.get(item.content_id)
            genres = info.genres if info else ()
            tiles.append(
                Tile(
                    content_id=item.content_id,
                    title=item.title,
                    genres=genres,
                    is_original=bool(info and info.is_original),
                    reason=reason,
                    rank=item.rank,
                    score=item.score,
                    sources=item.sources,
                    hue=_hue(genres, item.content_id),
                    boosted=bool(explanations.get(item.content_id, {}).get("boosted")),
                    only_here=other_ids is not None and item.content_id not in other_ids,
                )
            )
        key, title = row.key, row.title
        if not show_history and key.startswith(f"{BECAUSE_YOU_WATCHED}:"):
            because += 1
            key, title = f"{BECAUSE_YOU_WATCHED}:{because}", HIDDEN_ROW_TITLE
        rows.append(RowView(key, title, tuple(tiles), hidden))
    overall = explanations.get(-1, {})
    shown = {tile.content_id for row in rows for tile in row.tiles}
    summary = {
        "candidates": overall.get("candidates"),
        "removed": overall.get("removed_by_rules_or_watched"),
        "boosted": overall.get("boosted"),
        "titles": len(shown),
        "originals": sum(1 for i in shown if i in titles and titles[i].is_original),
        "top_originals": sum(1 for i in result.items if i.content_id in titles and titles[i.content_id].is_original),
        "differs": None if other_ids is None else len(shown - other_ids),
    }
    return PageView(label, tuple(rows), dict(result.timings_ms), tuple(result.degraded), summary)


def rules_matching(
    *, titles: dict[int, TitleInfo], head: ProfileHead, country: str, now: dt.datetime
) -> dict[int, list[str]]:
    """Per title, the business rules that match it for this profile and country, in words: boosts (which one
    counts), tier rules (and whether they hide it from the profile's tier), suppressions and the kids cap.
    Rules are small, editor-made tables: five queries whatever the catalog's size."""
    in_window = (Q(starts_at__isnull=True) | Q(starts_at__lte=now)) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))
    codes = Prefetch("countries", queryset=Country.objects.only("id", "code"))
    boosts = [
        b
        for b in Boost.objects.filter(in_window, is_active=True)
        .select_related("genre", "title")
        .prefetch_related(codes)
        if _in_country(b.countries.all(), country)
    ]
    tier_rules = list(TierRule.objects.filter(is_active=True).select_related("genre", "title"))
    suppressions = [
        s
        for s in Suppression.objects.filter(in_window, is_active=True, title_id__in=list(titles)).prefetch_related(
            codes
        )
        if _in_country(s.countries.all(), country)
    ]
    tier_bit = SubscriptionTier.bit(head.tier)
    tier_label = SubscriptionTier(head.tier).label
    out: dict[int, list[str]] = {}
    for content_id, info in titles.items():
        notes = []
        matching = [b for b in boosts if _matches(b, info)]
        top = max((b.priority for b in matching), default=None)
        for boost in sorted(matching, key=lambda b: -b.priority):
            counts = "applies" if boost.priority == top else "outranked by a higher priority"
            notes.append(
                f"Boost “{boost.name}” ×{_multiplier(boost.multiplier)} on {boost.target_label} "
                f"(priority {boost.priority}, {counts})"
            )
        for rule in tier_rules:
            if _matches(rule, info):
                allowed = ", ".join(t.label for t in rule.tiers)
                verdict = "visible to" if rule.allowed_tiers & tier_bit else "hidden from"
                notes.append(f"Tier rule on {rule.target_label}: only {allowed} ({verdict} {tier_label})")
        notes.extend(f"Suppressed: {s.reason}" for s in suppressions if s.title_id == content_id)
        if head.is_kids and info.maturity_rating > head.maturity_cap:
            notes.append(f"Above the kids maturity cap ({info.maturity_label})")
        if notes:
            out[content_id] = notes
    return out


def _in_country(countries: Iterable[Country], country: str) -> bool:
    codes = {c.code for c in countries}
    return not codes or country in codes


def _matches(rule: Boost | TierRule, info: TitleInfo) -> bool:
    if rule.target_kind == TargetKind.ORIGINALS:
        return info.is_original
    if rule.target_kind == TargetKind.GENRE:
        return rule.genre_id in info.genre_ids
    return rule.title_id == info.content_id


def _multiplier(value: Decimal) -> str:
    return f"{value.normalize():f}"
