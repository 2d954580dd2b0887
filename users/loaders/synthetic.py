"""A deterministic synthetic streaming world: catalog, audience with hidden tastes, and viewing history.

Everything is vectorised numpy, so 100K titles, 1M profiles and 50M events take minutes. The same
`SyntheticConfig` (seed and as-of date included) always gives the same data. The hidden latent factors
that drive every choice are returned as `GroundTruth`, for simulations that need true affinities.

How a viewing is drawn: a profile picks a genre from its taste mix, draws four titles of that genre by
popularity (Zipf-like), and watches the one with the highest affinity (profile · title factors plus
Gumbel noise). Sessions group consecutive events; a session that opens on a series binges its episodes.
Device follows the profile's main device; the hour follows that device's daily pattern.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from users.loaders.dataset import COMPLETED_AT, Dataset, EventChunk
from users.loaders.naming import distinct_title_names

SOURCE = "syn"
PROFILES_PER_EVENT_CHUNK = 20_000  # part of the data's identity: changing it changes the generated events
CANDIDATES_PER_VIEW = 4
AFFINITY_SHARPNESS = 5.0
SESSION_CONTINUES = 0.55  # chance that the next event of a profile belongs to the same session
HISTORY_DAYS = 730
ONBOARDING_SHARE = 0.4  # profiles that picked genres at sign-up
ONBOARDING_GENRES = 3
CATALOG_DAYS = 3650

GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Anime",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "Horror",
    "International",
    "Kids",
    "Musical",
    "Mystery",
    "Reality",
    "Romance",
    "Sci-Fi",
    "Stand-up",
    "Thriller",
    "War",
    "Western",
]
GENRE_WEIGHTS = np.array([9, 5, 4, 3, 10, 6, 4, 12, 4, 4, 5, 6, 4, 2, 4, 3, 6, 5, 2, 7, 2, 1], dtype=float)
KIDS_GENRES = ["Animation", "Family", "Kids"]
MATURE_GENRES = ["Horror", "Crime", "Thriller", "War"]
COUNTRIES = [
    ("US", "United States", 30),
    ("BR", "Brazil", 8),
    ("GB", "United Kingdom", 7),
    ("MX", "Mexico", 6),
    ("IN", "India", 6),
    ("DE", "Germany", 5),
    ("FR", "France", 5),
    ("CA", "Canada", 5),
    ("JP", "Japan", 4),
    ("KR", "South Korea", 4),
    ("ES", "Spain", 4),
    ("IT", "Italy", 3),
    ("AU", "Australia", 3),
    ("AR", "Argentina", 2),
    ("CO", "Colombia", 2),
    ("PL", "Poland", 2),
    ("NL", "Netherlands", 2),
    ("SE", "Sweden", 1),
    ("TR", "Turkey", 1),
    ("ZA", "South Africa", 1),
]
# DeviceType values 1..5: TV, mobile, tablet, web, console.
DEVICE_WEIGHTS = np.array([0.45, 0.25, 0.10, 0.15, 0.05])
_HOURS = np.arange(24)
DEVICE_HOURS = np.stack(
    [
        np.exp(-0.5 * ((_HOURS - 21) / 2.0) ** 2) + 0.03,  # TV: evenings
        np.exp(-0.5 * ((_HOURS - 8) / 1.2) ** 2)
        + np.exp(-0.5 * ((_HOURS - 18) / 1.5) ** 2)
        + 0.6 * np.exp(-0.5 * ((_HOURS - 23) / 1.5) ** 2)
        + 0.05,  # mobile: commutes and late night
        np.exp(-0.5 * ((_HOURS - 20) / 2.5) ** 2) + 0.05,  # tablet: evenings, wider
        np.exp(-0.5 * ((_HOURS - 14) / 3.5) ** 2) + 0.05,  # web: daytime
        np.exp(-0.5 * ((_HOURS - 22.5) / 2.0) ** 2) + 0.02,  # console: late evenings
    ]
)
DEVICE_HOUR_CDF = np.cumsum(DEVICE_HOURS / DEVICE_HOURS.sum(axis=1, keepdims=True), axis=1)
ADJECTIVES = (
    "Silent Hidden Broken Golden Last Crimson Endless Wild Midnight Lost Bright Frozen Burning Secret Hollow "
    "Electric Quiet Savage Distant Velvet Iron Paper Glass Northern Little Restless Final Twisted Lucky Pale"
).split()
NOUNS = (
    "Harbor Kingdom River Signal Garden Empire Witness Storm Frontier Mirror Island Machine Promise Detective "
    "Summer Circuit Orchard Lantern Voyage Heist Academy Station Crown Tide Canyon Engine Letter Shadow Bridge Code"
).split()
FIRST_NAMES = (
    "Ana Ben Chloe Diego Emma Farid Grace Hiro Ines Jonas Kira Liam Maya Noah Olga Pablo Quinn Rosa Sami Tara "
    "Uma Victor Wen Ximena Yusuf Zoe Arjun Bea Carlos Dana Elif Femi Gita Hugo Ivy Jae Lena Marco Nia Omar"
).split()
LAST_NAMES = (
    "Silva Smith Kim Garcia Müller Rossi Tanaka Novak Khan Dubois Okafor Larsen Haddad Costa Ivanova Park "
    "Moreau Nguyen Santos Schmidt Sato Ali Kowalski Jensen Mendes Reyes Chen Ortiz Weber Yilmaz"
).split()


@dataclass(frozen=True)
class SyntheticConfig:
    titles: int = 100_000
    accounts: int = 400_000
    events: int = 50_000_000
    seed: int = 42
    as_of: dt.date = dt.date(2026, 1, 1)
    latent_dim: int = 16

    def __post_init__(self) -> None:
        if self.titles < 10 or self.accounts < 1 or self.events < 0:
            raise ValueError("need at least 10 titles, 1 account and a non-negative number of events")


@dataclass
class GroundTruth:
    """The hidden variables the world was drawn from; rows align with the dataset's titles and profiles."""

    config: SyntheticConfig
    genre_factors: np.ndarray  # (genres, k) float32
    title_factors: np.ndarray  # (titles, k) float32
    title_popularity: np.ndarray  # (titles,) float64, sums to 1
    profile_factors: np.ndarray  # (profiles, k) float32
    profile_genre_taste: np.ndarray  # (profiles, genres) float32, rows sum to 1
    profile_device: np.ndarray  # (profiles,) int16, DeviceType values
    title_external_ids: np.ndarray  # (titles,) str
    profile_account_external_ids: np.ndarray  # (profiles,) str
    profile_slots: np.ndarray  # (profiles,) int16

    def affinity(self, profile_rows: np.ndarray, title_rows: np.ndarray) -> np.ndarray:
        """True affinity (dot product of factors) for aligned profile and title row positions."""
        return np.einsum("ij,ij->i", self.profile_factors[profile_rows], self.title_factors[title_rows])

    def save(self, directory: str | Path) -> Path:
        """Writes `ground_truth.npz` (no pickles) and `ground_truth.json` (the config) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        arrays["title_external_ids"] = arrays["title_external_ids"].astype(str)
        arrays["profile_account_external_ids"] = arrays["profile_account_external_ids"].astype(str)
        np.savez(directory / "ground_truth.npz", **arrays)
        config = asdict(self.config) | {"as_of": self.config.as_of.isoformat(), "genres": GENRES}
        (directory / "ground_truth.json").write_text(json.dumps(config, indent=2))
        return directory / "ground_truth.npz"

    @classmethod
    def load(cls, directory: str | Path) -> GroundTruth:
        directory = Path(directory)
        raw = json.loads((directory / "ground_truth.json").read_text())
        raw.pop("genres")
        config = SyntheticConfig(**(raw | {"as_of": dt.date.fromisoformat(raw["as_of"])}))
        with np.load(directory / "ground_truth.npz", allow_pickle=False) as arrays:
            return cls(config=config, **{name: arrays[name] for name in arrays.files})


def generate(config: SyntheticConfig) -> tuple[Dataset, GroundTruth]:
    """The synthetic dataset (events are produced lazily, chunk by chunk) and its ground truth."""
    rng = np.random.default_rng([config.seed, 0])
    k = config.latent_dim
    genre_factors = (rng.standard_normal((len(GENRES), k)) / np.sqrt(k)).astype(np.float32)
    catalog = _catalog(rng, config, genre_factors)
    audience = _audience(rng, config, genre_factors)
    truth = GroundTruth(
        config=config,
        genre_factors=genre_factors,
        title_factors=catalog.factors,
        title_popularity=catalog.popularity,
        profile_factors=audience.factors,
        profile_genre_taste=audience.taste,
        profile_device=audience.device,
        title_external_ids=catalog.titles["external_id"].to_numpy(dtype=str),
        profile_account_external_ids=audience.accounts["external_id"].to_numpy(dtype=str)[
            audience.profiles["account_index"].to_numpy()
        ],
        profile_slots=audience.profiles["slot"].to_numpy(dtype=np.int16),
    )
    dataset = Dataset(
        source=SOURCE,
        countries=pd.DataFrame({"code": [c for c, _, _ in COUNTRIES], "name": [n for _, n, _ in COUNTRIES]}),
        genres=list(GENRES),
        titles=catalog.titles,
        title_genres=catalog.title_genres,
        title_countries=catalog.title_countries,
        people=catalog.people,
        credits=catalog.credits,
        accounts=audience.accounts,
        profiles=audience.profiles,
        events=_events(config, catalog, audience),
        expected_events=config.events,
        # A stream of its own: the rest of the world stays what it was before profiles had onboarding genres.
        profile_genres=_onboarding_genres(np.random.default_rng([config.seed, 2]), audience.taste),
    )
    return dataset, truth


def _onboarding_genres(rng: np.random.Generator, taste: np.ndarray) -> pd.DataFrame:
    """ONBOARDING_SHARE of the profiles pick ONBOARDING_GENRES genres, drawn by their taste without replacement."""
    picking = np.flatnonzero(rng.random(len(taste)) < ONBOARDING_SHARE)
    keys = np.log(np.maximum(taste[picking], 1e-12)) + rng.gumbel(size=(len(picking), taste.shape[1]))
    picked = np.argsort(-keys, axis=1)[:, :ONBOARDING_GENRES]  # Gumbel top-k: a weighted draw without replacement
    return pd.DataFrame(
        {
            "profile_index": np.repeat(picking, picked.shape[1]),
            "genre": np.asarray(GENRES, dtype=object)[picked.ravel()],
        }
    )


@dataclass
class _Catalog:
    titles: pd.DataFrame
    title_genres: pd.DataFrame
    title_countries: pd.DataFrame
    people: pd.DataFrame
    credits: pd.DataFrame
    factors: np.ndarray
    popularity: np.ndarray
    genre_matrix: np.ndarray  # (titles, genres) bool
    added_day: np.ndarray  # days before as_of the title was added (>= 1)
    minutes: np.ndarray
    is_series: np.ndarray
    maturity: np.ndarray
    tiers: np.ndarray
    worldwide: np.ndarray


@dataclass
class _Audience:
    accounts: pd.DataFrame
    profiles: pd.DataFrame
    factors: np.ndarray
    taste: np.ndarray
    device: np.ndarray
    activity: np.ndarray  # events per profile
    account_of: np.ndarray
    country_index: np.ndarray  # per profile, into COUNTRIES
    tier: np.ndarray  # per profile
    kids: np.ndarray


def _catalog(rng: np.random.Generator, config: SyntheticConfig, genre_factors: np.ndarray) -> _Catalog:
    n, g = config.titles, len(GENRES)
    primary = rng.choice(g, size=n, p=GENRE_WEIGHTS / GENRE_WEIGHTS.sum())
    genre_matrix = np.zeros((n, g), dtype=bool)
    genre_matrix[np.arange(n), primary] = True
    extra = rng.random(n)
    for threshold in (0.55, 0.85):  # about half the titles get a second genre, 15 % a third
        pick = extra < threshold
        genre_matrix[np.nonzero(pick)[0], rng.integers(0, g, pick.sum())] = True
    is_series = rng.random(n) < 0.3
    is_original = rng.random(n) < 0.12
    # Added-days skewed recent, originals mostly in the last four years; day 1 is the newest possible.
    added_day = 1 + np.floor(CATALOG_DAYS * rng.random(n) ** 1.3).astype(np.int64)
    added_day[is_original] = 1 + np.floor(1460 * rng.random(is_original.sum()) ** 1.2).astype(np.int64)
    licence_lag = np.where(is_original, rng.integers(0, 3, n), rng.exponential(5 * 365, n).clip(0, 60 * 365))
    as_of = np.datetime64(config.as_of, "D")
    added = as_of - added_day.astype("timedelta64[D]")
    released = added - licence_lag.astype(np.int64).astype("timedelta64[D]")
    minutes = np.where(is_series, rng.integers(22, 61, n), rng.normal(105, 18, n).clip(70, 200)).astype(np.int64)
    episodes = np.where(is_series, rng.integers(6, 61, n), 1)

    kids_cols = [GENRES.index(x) for x in KIDS_GENRES]
    mature_cols = [GENRES.index(x) for x in MATURE_GENRES]
    maturity = rng.choice([13, 16, 18], size=n, p=[0.45, 0.35, 0.2])
    maturity[genre_matrix[:, mature_cols].any(axis=1)] = rng.choice([16, 18], size=n)[
        genre_matrix[:, mature_cols].any(axis=1)
    ]
    kid_titles = genre_matrix[:, kids_cols].any(axis=1)
    maturity[kid_titles] = rng.choice([0, 7], size=n)[kid_titles]
    tier_draw = rng.random(n)
    tiers = np.select([tier_draw < 0.06, tier_draw < 0.12], [0b100, 0b110], 0b111)
    tiers[kid_titles] = 0b111
    worldwide = rng.random(n) >= 0.2
    has_4k = rng.random(n) < np.where(is_original, 0.8, 0.3)
    has_hdr = has_4k & (rng.random(n) < 0.6)

    # Tastes: a title's factors are its genres' factors plus its own twist.
    counts = genre_matrix.sum(axis=1, keepdims=True)
    factors = (genre_matrix @ genre_factors) / counts + 0.6 * rng.standard_normal(genre_factors.shape[1] * n).reshape(
        n, -1
    ) / np.sqrt(genre_factors.shape[1])
    factors = factors.astype(np.float32)
    # Popularity: Zipf over a random order, a push for originals and for titles added in the last 60 days.
    rank = rng.permutation(n) + 1
    popularity = (1.0 / (rank + 5.0) ** 1.05) * np.where(is_original, 2.0, 1.0)
    popularity *= 1.0 + 3.0 * np.exp(-added_day / 20.0)
    popularity /= popularity.sum()

    names = distinct_title_names(_title_names(rng, n, is_series))
    synopsis = (
        "A "
        + pd.Series(np.asarray(GENRES, dtype=object)[primary]).str.lower()
        + " "
        + np.where(is_series, "series", "film")
        + " about "
        + pd.Series(names).str.lower()
        + "."
    )
    titles = pd.DataFrame(
        {
            "external_id": pd.Series(np.arange(n)).map(lambda i: f"{SOURCE}:t{i}"),
            "kind": np.where(is_series, "series", "movie"),
            "name": names,
            "synopsis": synopsis,
            "release_date": pd.Series(released).dt.strftime("%Y-%m-%d"),
            "date_added": pd.Series(added).dt.strftime("%Y-%m-%d"),
            "duration_minutes": minutes,
            "episode_count": episodes,
            "maturity_rating": maturity,
            "is_original": is_original,
            "available_tiers": tiers,
            "has_4k": has_4k,
            "has_hdr": has_hdr,
        }
    )
    title_rows, genre_cols = np.nonzero(genre_matrix)
    title_genres = pd.DataFrame({"title_index": title_rows, "genre": np.asarray(GENRES, dtype=object)[genre_cols]})
    restricted = np.nonzero(~worldwide)[0]
    per_title = rng.integers(3, 11, len(restricted))
    country_weights = np.array([w for _, _, w in COUNTRIES], dtype=float)
    country_rows = np.repeat(restricted, per_title)
    country_picks = rng.choice(len(COUNTRIES), size=len(country_rows), p=country_weights / country_weights.sum())
    title_countries = pd.DataFrame(
        {"title_index": country_rows, "country": np.asarray([c for c, _, _ in COUNTRIES])[country_picks]}
    ).drop_duplicates()
    people, credits = _people_and_credits(rng, n)
    return _Catalog(
        titles=titles,
        title_genres=title_genres,
        title_countries=title_countries,
        people=people,
        credits=credits,
        factors=factors,
        popularity=popularity,
        genre_matrix=genre_matrix,
        added_day=added_day,
        minutes=minutes,
        is_series=is_series,
        maturity=maturity,
        tiers=tiers,
        worldwide=worldwide,
    )


def _title_names(rng: np.random.Generator, n: int, is_series: np.ndarray) -> np.ndarray:
    adjectives = np.asarray(ADJECTIVES, dtype=object)[rng.integers(0, len(ADJECTIVES), n)]
    nouns = np.asarray(NOUNS, dtype=object)[rng.integers(0, len(NOUNS), n)]
    other = np.asarray(NOUNS, dtype=object)[rng.integers(0, len(NOUNS), n)]
    pattern = rng.integers(0, 3, n)
    names = np.where(pattern == 0, "The " + adjectives + " " + nouns, adjectives + " " + nouns)
    names = np.where(pattern == 2, nouns + " of the " + other, names)
    sequel = (rng.random(n) < 0.08) & ~is_series
    names = np.where(sequel, names + " " + rng.choice(np.array(["II", "III", "Returns"], dtype=object), n), names)
    return names.astype(object)


def _people_and_credits(rng: np.random.Generator, n_titles: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_people = max(20, int(n_titles * 0.6))
    n_directors = max(5, n_people // 10)  # the first tenth of the people direct; the rest act
    first = np.asarray(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), n_people)]
    last = np.asarray(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n_people)]
    people = pd.DataFrame(
        {"external_id": pd.Series(np.arange(n_people)).map(lambda i: f"{SOURCE}:p{i}"), "name": first + " " + last}
    )
    # Stars are shared across many titles: Zipf-like odds of being cast.
    actor_odds = 1.0 / (np.arange(n_people - n_directors) + 10.0)
    director_odds = 1.0 / (np.arange(n_directors) + 10.0)
    cast_size = rng.integers(3, 7, n_titles)
    cast_titles = np.repeat(np.arange(n_titles), cast_size)
    cast_people = n_directors + rng.choice(n_people - n_directors, len(cast_titles), p=actor_odds / actor_odds.sum())
    billing = np.arange(len(cast_titles)) - np.repeat(np.cumsum(cast_size) - cast_size, cast_size)
    credits = pd.concat(
        [
            pd.DataFrame(
                {
                    "title_index": np.arange(n_titles),
                    "person_index": rng.choice(n_directors, n_titles, p=director_odds / director_odds.sum()),
                    "role": "director",
                    "billing_order": 0,
                }
            ),
            pd.DataFrame(
                {"title_index": cast_titles, "person_index": cast_people, "role": "cast", "billing_order": billing}
            ),
        ],
        ignore_index=True,
    ).drop_duplicates(subset=["title_index", "person_index", "role"])
    return people, credits


def _audience(rng: np.random.Generator, config: SyntheticConfig, genre_factors: np.ndarray) -> _Audience:
    a, g = config.accounts, len(GENRES)
    country_weights = np.array([w for _, _, w in COUNTRIES], dtype=float)
    account_country = rng.choice(len(COUNTRIES), size=a, p=country_weights / country_weights.sum())
    account_tier = rng.choice([1, 2, 3], size=a, p=[0.3, 0.45, 0.25])
    as_of = np.datetime64(config.as_of, "s")
    account_created = as_of - rng.integers(HISTORY_DAYS * 86400, 6 * 365 * 86400, a).astype("timedelta64[s]")
    accounts = pd.DataFrame(
        {
            "external_id": pd.Series(np.arange(a)).map(lambda i: f"{SOURCE}:a{i}"),
            "country": np.asarray([c for c, _, _ in COUNTRIES])[account_country],
            "subscription_tier": account_tier,
            "created_at": pd.to_datetime(account_created).tz_localize("UTC"),
        }
    )
    per_account = rng.choice([1, 2, 3, 4, 5], size=a, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    account_of = np.repeat(np.arange(a), per_account)
    p = len(account_of)
    slot = (np.arange(p) - np.repeat(np.cumsum(per_account) - per_account, per_account) + 1).astype(np.int16)
    kids = (slot >= 2) & (rng.random(p) < 0.25)
    maturity_cap = np.where(kids, 7, rng.choice([16, 18], size=p, p=[0.1, 0.9]))
    # Tastes: a sparse mix of genres; kids profiles lean on kids' genres.
    taste = rng.dirichlet(np.full(g, 0.3), size=p).astype(np.float32)
    kids_mask = np.zeros(g, dtype=bool)
    kids_mask[[GENRES.index(x) for x in KIDS_GENRES]] = True
    taste[kids] = 0.15 * taste[kids] + 0.85 * (kids_mask / kids_mask.sum())
    factors = (
        taste @ genre_factors
        + 0.5 * rng.standard_normal((p, genre_factors.shape[1])).astype(np.float32) / np.sqrt(genre_factors.shape[1])
    ).astype(np.float32)
    device = (rng.choice(len(DEVICE_WEIGHTS), size=p, p=DEVICE_WEIGHTS) + 1).astype(np.int16)
    activity_weight = rng.lognormal(0.0, 1.0, p)
    activity = rng.multinomial(config.events, activity_weight / activity_weight.sum()) if p else np.zeros(0, int)
    profiles = pd.DataFrame(
        {
            "account_index": account_of,
            "slot": slot,
            "name": np.where(kids, "Kids", np.asarray(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), p)]),
            "is_kids": kids,
            "maturity_cap": maturity_cap,
            "created_at": accounts["created_at"].to_numpy()[account_of],
        }
    )
    profiles["created_at"] = pd.to_datetime(profiles["created_at"], utc=True)
    return _Audience(
        accounts=accounts,
        profiles=profiles,
        factors=factors,
        taste=taste,
        device=device,
        activity=activity,
        account_of=account_of,
        country_index=account_country[account_of],
        tier=account_tier[account_of],
        kids=kids,
    )


class _TitleSampler:
    """Draws titles by popularity within a genre, for many events at once (one searchsorted)."""

    def __init__(self, catalog: _Catalog, allowed: np.ndarray | None = None) -> None:
        genre_matrix = catalog.genre_matrix if allowed is None else catalog.genre_matrix & allowed[:, None]
        titles_by_genre, cdfs = [], []
        for g in range(genre_matrix.shape[1]):
            members = np.nonzero(genre_matrix[:, g])[0]
            if len(members) == 0:  # an empty genre falls back to the whole allowed catalog
                members = np.nonzero(allowed)[0] if allowed is not None else np.arange(len(genre_matrix))
            weights = np.cumsum(catalog.popularity[members])
            titles_by_genre.append(members)
            cdfs.append(g + weights / weights[-1] * (1 - 1e-9))
        self.titles = np.concatenate(titles_by_genre)
        self.cdf = np.concatenate(cdfs)

    def draw(self, genres: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        position = np.searchsorted(self.cdf, genres + uniforms).clip(0, len(self.titles) - 1)
        return self.titles[position]


def _events(config: SyntheticConfig, catalog: _Catalog, audience: _Audience) -> Iterator[EventChunk]:
    sampler = _TitleSampler(catalog)
    kid_safe = (catalog.maturity <= 7) & catalog.worldwide & (catalog.tiers == 0b111)
    safe = catalog.worldwide & (catalog.tiers == 0b111)
    kids_sampler = _TitleSampler(catalog, kid_safe if kid_safe.any() else safe)
    safe_sampler = _TitleSampler(catalog, safe if safe.any() else np.ones(len(safe), dtype=bool))
    available = _country_availability(catalog)
    taste_cdf = np.cumsum(audience.taste, axis=1)
    n_profiles = len(audience.activity)
    for chunk_index, first in enumerate(range(0, n_profiles, PROFILES_PER_EVENT_CHUNK)):
        rows = np.arange(first, min(first + PROFILES_PER_EVENT_CHUNK, n_profiles))
        rng = np.random.default_rng([config.seed, 1, chunk_index])
        chunk = _chunk_events(
            rng, config, catalog, audience, rows, taste_cdf, sampler, kids_sampler, safe_sampler, available
        )
        if len(chunk):
            yield chunk


def _country_availability(catalog: _Catalog) -> np.ndarray:
    """(titles, countries) bool: worldwide titles everywhere, restricted ones where listed."""
    available = np.repeat(catalog.worldwide[:, None], len(COUNTRIES), axis=1)
    code_index = {c: i for i, (c, _, _) in enumerate(COUNTRIES)}
    links = catalog.title_countries
    available[links["title_index"].to_numpy(), links["country"].map(code_index).to_numpy()] = True
    return available


def _chunk_events(
    rng: np.random.Generator,
    config: SyntheticConfig,
    catalog: _Catalog,
    audience: _Audience,
    rows: np.ndarray,
    taste_cdf: np.ndarray,
    sampler: _TitleSampler,
    kids_sampler: _TitleSampler,
    safe_sampler: _TitleSampler,
    available: np.ndarray,
) -> EventChunk:
    counts = audience.activity[rows]
    profile = np.repeat(rows, counts)
    n = len(profile)
    if n == 0:
        return EventChunk({})
    # Genre from the profile's taste, then the best of a few popular titles of that genre.
    genre = (taste_cdf[profile] < rng.random(n)[:, None]).sum(axis=1).clip(0, taste_cdf.shape[1] - 1)
    candidates = sampler.draw(np.repeat(genre, CANDIDATES_PER_VIEW), rng.random(n * CANDIDATES_PER_VIEW))
    candidates = candidates.reshape(n, CANDIDATES_PER_VIEW)
    affinity = np.einsum("ik,ijk->ij", audience.factors[profile], catalog.factors[candidates])
    utility = AFFINITY_SHARPNESS * affinity + rng.gumbel(size=affinity.shape)
    title = candidates[np.arange(n), utility.argmax(axis=1)]

    # What the profile may not watch (maturity, tier, country) is replaced by an always-allowed title.
    kids = audience.kids[profile]
    allowed = (
        (catalog.maturity[title] <= np.where(kids, 7, 18))
        & ((catalog.tiers[title] >> (audience.tier[profile] - 1)) & 1).astype(bool)
        & available[title, audience.country_index[profile]]
    )
    redo = np.nonzero(~allowed)[0]
    if len(redo):
        kid_redo = kids[redo]
        title[redo[kid_redo]] = kids_sampler.draw(genre[redo[kid_redo]], rng.random(kid_redo.sum()))
        title[redo[~kid_redo]] = safe_sampler.draw(genre[redo[~kid_redo]], rng.random((~kid_redo).sum()))

    # Sessions: consecutive events of a profile; a session opened by a series binges that series.
    starts_profile = np.ones(n, dtype=bool)
    starts_profile[1:] = profile[1:] != profile[:-1]
    new_session = starts_profile | (rng.random(n) > SESSION_CONTINUES)
    session = np.cumsum(new_session) - 1
    session_first = np.nonzero(new_session)[0]
    anchor = title[session_first][session]
    binge = catalog.is_series[anchor]
    title = np.where(binge, anchor, title)

    # Watch share: liked titles get finished more often; binged episodes mostly run to the end.
    true_affinity = np.einsum("ik,ik->i", audience.factors[profile], catalog.factors[title])
    finish_odds = 1.0 / (1.0 + np.exp(-(2.5 * true_affinity + np.where(binge, 1.0, -0.2))))
    finished = rng.random(n) < finish_odds
    percentage = np.where(finished, rng.uniform(COMPLETED_AT, 1.0, n), rng.uniform(0.02, COMPLETED_AT, n))
    percentage = np.round(percentage, 4)
    watch_seconds = (percentage * catalog.minutes[title] * 60).astype(np.int32)

    # Time: an hour typical of the session's device.
    device = np.where(rng.random(n) < 0.75, audience.device[profile], rng.choice(5, size=n, p=DEVICE_WEIGHTS) + 1)
    device = device.astype(np.int16)
    session_device = device[session_first][session]
    # Days before as_of: a session falls after every one of its titles joined the catalog.
    newest_day = np.minimum(np.minimum.reduceat(catalog.added_day[title], session_first), HISTORY_DAYS)
    day_back = 1 + np.floor(rng.random(len(session_first)) * newest_day).astype(np.int64)
    hour_draw = rng.random(len(session_first))
    hour = (DEVICE_HOUR_CDF[session_device[session_first] - 1] < hour_draw[:, None]).sum(axis=1).clip(0, 23)
    as_of = np.datetime64(config.as_of, "s")
    session_start = (
        as_of
        - (day_back * 86400).astype("timedelta64[s]")
        + (hour * 3600 + rng.integers(0, 3600, len(session_first))).astype("timedelta64[s]")
    )
    gap = watch_seconds.astype(np.int64) + rng.integers(30, 600, n)  # the next event starts after a break
    offset = np.cumsum(gap) - gap
    offset -= offset[session_first][session]
    pause = np.where(finished, 0, rng.integers(0, 900, n))
    # A late session that would run past as_of starts earlier, but not before its newest title arrived.
    duration = np.maximum.reduceat(offset + watch_seconds + pause, session_first).astype("timedelta64[s]")
    newest_added = as_of - (newest_day * 86400).astype("timedelta64[s]")
    session_start = np.maximum(np.minimum(session_start, as_of - duration), newest_added)
    started = session_start[session] + offset.astype("timedelta64[s]")
    last_watched = started + (watch_seconds + pause).astype("timedelta64[s]")

    # (profile, title, start) is unique in the database: drop the rare exact repeats, and the very rare end
    # of a binge longer than the time since its title arrived.
    order = np.lexsort((started.astype(np.int64), title, profile))
    repeat = np.zeros(n, dtype=bool)
    repeat[order[1:]] = (
        (profile[order[1:]] == profile[order[:-1]])
        & (title[order[1:]] == title[order[:-1]])
        & (started[order[1:]] == started[order[:-1]])
    )
    keep = ~repeat & (last_watched <= as_of)
    return EventChunk(
        {
            "profile_index": profile[keep],
            "title_index": title[keep],
            "started_at": started[keep].astype("datetime64[us]"),
            "last_watched_at": last_watched[keep].astype("datetime64[us]"),
            "watch_seconds": watch_seconds[keep],
            "watch_percentage": percentage[keep],
            "device_type": session_device[keep],
            "completed": percentage[keep] >= COMPLETED_AT,
        }
    )
