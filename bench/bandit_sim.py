#!/usr/bin/env python
"""Exploration bandits in a simulated world with known tastes (issue: contextual bandits, item 4).

    .venv/bin/python bench/bandit_sim.py                      # 50,000 impressions per policy, about a minute
    .venv/bin/python bench/bandit_sim.py --impressions 200000 --seed 7

The world is users/loaders/synthetic.py's (no database): titles with genres, popularity and hidden latent
factors, profiles with hidden factors, genre tastes and a main device. Each impression is one exploration slot:
a profile on a device at an hour (the device's daily pattern), 40 candidates drawn by popularity, and a click
model from the true affinity (profile · title factors), with new titles more attractive on evening TV. A click
may lead to a play, a play to a completion; the reward is the engagement score 0.1·click + 0.3·play +
0.6·complete. What the policies see is what serving sees: ranking.ml.bandit's context (device, daypart, the
genre affinity observed from 20 past viewings) and item features (genres, popularity, recency, and a ranker
score that is the true affinity plus noise). Learning policies are refitted every 500 impressions, as the
Celery task folds batches of events. Every policy sees the same requests and the same random draws.

Then the IPS and SNIPS estimates of two other policies (the ranker's order softened, uniform random), computed
from the bandit's log alone, are compared with those policies' values when run in the same world.
Prints a table; writes --json and --png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ranking.ml.bandit import (  # noqa: E402
    GENRE_SLOTS,
    BanditPolicy,
    EpsilonGreedy,
    FixedLinearSoftmax,
    LinUCBSoftmax,
    UniformRandom,
    bandit_context,
    bandit_item_features,
    ips_estimate,
    snips_estimate,
)
from users.loaders.synthetic import DEVICE_HOUR_CDF, GENRES, SyntheticConfig, generate  # noqa: E402

CANDIDATES = 40
HISTORY_VIEWS = 20  # the observed genre affinity is the share of this many past viewings per genre
RANKER_NOISE = 1.0  # sd of the ranker's error on the standardised affinity (correlation ≈ 0.7)
CHUNK = 1000  # requests generated at a time (same seeds for every policy)
UPDATE_EVERY = 500
ENGAGEMENT = (0.1, 0.3, 0.6)  # click, play, complete


@dataclass
class World:
    title_factors: np.ndarray
    genre_indicator: np.ndarray  # (titles, GENRE_SLOTS)
    popularity: np.ndarray
    recency_days: np.ndarray
    profile_factors: np.ndarray
    profile_taste: np.ndarray  # (profiles, GENRE_SLOTS)
    profile_device: np.ndarray
    affinity_mean: float
    affinity_sd: float


@dataclass
class Requests:
    """CHUNK requests: what the policies see and what the click model knows."""

    contexts: np.ndarray  # (r, CONTEXT_WIDTH)
    items: np.ndarray  # (r, m, ITEM_WIDTH)
    expected: np.ndarray  # (r, m) expected engagement of each candidate
    click: np.ndarray  # (r, m) P(click)
    play: np.ndarray  # (r, m) P(play | click)
    complete: np.ndarray  # (r, m) P(complete | play)
    uniforms: np.ndarray  # (r, 4): the pick and the three outcome draws


def build_world(seed: int, titles: int, accounts: int) -> World:
    dataset, truth = generate(SyntheticConfig(titles=titles, accounts=accounts, events=0, seed=seed))
    genre_indicator = np.zeros((titles, GENRE_SLOTS))
    slots = dataset.title_genres["genre"].map({name: i for i, name in enumerate(GENRES)}).to_numpy()
    genre_indicator[dataset.title_genres["title_index"].to_numpy(), slots] = 1.0
    added = np.asarray(dataset.titles["date_added"], dtype="datetime64[D]")
    recency_days = (np.datetime64(truth.config.as_of, "D") - added).astype(np.float64)
    taste = np.zeros((len(truth.profile_factors), GENRE_SLOTS))
    taste[:, : len(GENRES)] = truth.profile_genre_taste
    rng = np.random.default_rng([seed, 1])
    sample = np.einsum(
        "ij,ij->i",
        truth.profile_factors[rng.integers(0, len(taste), 100_000)],
        truth.title_factors[rng.integers(0, titles, 100_000)],
    )
    return World(
        title_factors=truth.title_factors.astype(np.float64),
        genre_indicator=genre_indicator,
        popularity=truth.title_popularity,
        recency_days=recency_days,
        profile_factors=truth.profile_factors.astype(np.float64),
        profile_taste=taste,
        profile_device=truth.profile_device.astype(np.int64),
        affinity_mean=float(sample.mean()),
        affinity_sd=float(sample.std()),
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_requests(world: World, seed: int, chunk: int) -> Requests:
    rng = np.random.default_rng([seed, 2, chunk])
    r, m = CHUNK, CANDIDATES
    profiles = rng.integers(0, len(world.profile_factors), r)
    devices = np.where(rng.random(r) < 0.8, world.profile_device[profiles], rng.integers(1, 6, r))
    hours = (DEVICE_HOUR_CDF[devices - 1] < rng.random(r)[:, None]).sum(axis=1).clip(0, 23)
    # Candidates by popularity without replacement (Gumbel top-m).
    keys = np.log(world.popularity)[None, :] + rng.gumbel(size=(r, len(world.popularity)))
    candidates = np.argpartition(-keys, m, axis=1)[:, :m]

    affinity = np.einsum("rk,rmk->rm", world.profile_factors[profiles], world.title_factors[candidates])
    standardised = (affinity - world.affinity_mean) / world.affinity_sd
    recency = np.exp(-world.recency_days[candidates] / 30.0)
    evening_tv = ((devices == 1) & (hours >= 18))[:, None]
    click = sigmoid(-3.5 + 1.1 * standardised + 1.2 * recency * evening_tv)
    play = sigmoid(0.3 + 0.8 * standardised)
    complete = sigmoid(-0.3 + 1.0 * standardised)
    expected = click * (ENGAGEMENT[0] + play * (ENGAGEMENT[1] + complete * ENGAGEMENT[2]))

    observed = np.stack(
        [rng.multinomial(HISTORY_VIEWS, taste / taste.sum()) for taste in world.profile_taste[profiles]]
    )
    ranker = standardised + RANKER_NOISE * rng.standard_normal((r, m))
    contexts = np.stack([bandit_context(d, h, a) for d, h, a in zip(devices, hours, observed, strict=True)])
    items = np.stack(
        [
            bandit_item_features(world.genre_indicator[c], world.popularity[c], world.recency_days[c], s)
            for c, s in zip(candidates, ranker, strict=True)
        ]
    )
    return Requests(contexts, items, expected, click, play, complete, rng.random((r, 4)))


def engagement(requests: Requests, row: int, pick: int) -> tuple[float, bool]:
    """The realised reward of showing candidate `pick` in request `row`, and whether it was clicked."""
    u = requests.uniforms[row]
    clicked = u[1] < requests.click[row, pick]
    played = clicked and u[2] < requests.play[row, pick]
    completed = played and u[3] < requests.complete[row, pick]
    return ENGAGEMENT[0] * clicked + ENGAGEMENT[1] * played + ENGAGEMENT[2] * completed, bool(clicked)


class Oracle:
    """Knows the expected reward: the ceiling for regret."""


def run_policy(
    world: World,
    policy: BanditPolicy | Oracle,
    *,
    impressions: int,
    seed: int,
    targets: dict[str, BanditPolicy] | None = None,
) -> dict:
    """One pass over the requests; with `targets`, also logs what an off-policy estimate needs."""
    rewards, expected, clicks = np.empty(impressions), np.empty(impressions), np.empty(impressions, bool)
    logged = np.empty(impressions)
    target_propensities = {name: np.empty(impressions) for name in targets or {}}
    pending: list[tuple[np.ndarray, np.ndarray, float]] = []
    started = time.perf_counter()
    for chunk in range((impressions + CHUNK - 1) // CHUNK):
        requests = make_requests(world, seed, chunk)
        for row in range(min(CHUNK, impressions - chunk * CHUNK)):
            i = chunk * CHUNK + row
            context, items = requests.contexts[row], requests.items[row]
            if isinstance(policy, Oracle):
                pick, propensity = int(requests.expected[row].argmax()), 1.0
            else:
                # The pick's draw is shared by every policy (common random numbers).
                probabilities = policy.probabilities(context, items)
                pick = int(min(np.searchsorted(np.cumsum(probabilities), requests.uniforms[row, 0]), len(items) - 1))
                propensity = float(probabilities[pick])
            rewards[i], clicks[i] = engagement(requests, row, pick)
            expected[i], logged[i] = requests.expected[row, pick], propensity
            for name, target in (targets or {}).items():
                target_propensities[name][i] = target.probabilities(context, items)[pick]
            if not isinstance(policy, Oracle):
                pending.append((context, items[pick], rewards[i]))
                if len(pending) == UPDATE_EVERY:
                    contexts, shown, batch_rewards = (np.array(column) for column in zip(*pending, strict=True))
                    policy.update(contexts, shown, batch_rewards)
                    pending.clear()
    return {
        "rewards": rewards,
        "expected": expected,
        "clicks": clicks,
        "logged": logged,
        "target_propensities": target_propensities,
        "seconds": time.perf_counter() - started,
    }


def summarise(name: str, run: dict, oracle_total: float) -> dict:
    rewards, expected = run["rewards"], run["expected"]
    n = len(rewards)
    return {
        "policy": name,
        "impressions": n,
        "cumulative_reward": round(float(rewards.sum()), 1),
        "mean_reward": round(float(rewards.mean()), 5),
        "mean_reward_ci95": round(1.96 * float(rewards.std(ddof=1)) / np.sqrt(n), 5),
        "expected_reward": round(float(expected.sum()), 1),
        "expected_reward_per_impression_last_10k": round(float(expected[-10_000:].mean()), 5),
        "ctr": round(float(run["clicks"].mean()), 5),
        "regret_vs_oracle": round(oracle_total - float(expected.sum()), 1),
        "seconds": round(run["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=50_000, help="per policy (default 50,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--titles", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=2000)
    defaults = LinUCBSoftmax()
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="LinUCB's confidence width multiplier")
    parser.add_argument("--temperature", type=float, default=defaults.temperature, help="softmax temperature")
    parser.add_argument("--floor", type=float, default=defaults.floor, help="uniform share of each pick")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/bandit_sim.json")
    parser.add_argument("--png", type=Path, default=ROOT / "bench/results/bandit_sim.png")
    args = parser.parse_args()
    if args.impressions < 1000:
        parser.error("--impressions must be at least 1000")

    world = build_world(args.seed, args.titles, args.accounts)
    targets = {
        "ranker softmax (τ 0.1)": FixedLinearSoftmax.ranker_softmax(temperature=0.1),
        "uniform random": UniformRandom(),
    }
    learners = {
        "LinUCB softmax (bandit)": LinUCBSoftmax(alpha=args.alpha, temperature=args.temperature, floor=args.floor),
        "epsilon-greedy (ε 0.1)": EpsilonGreedy(epsilon=0.1),
        "uniform random": UniformRandom(),
    }
    runs = {"oracle (knows the truth)": run_policy(world, Oracle(), impressions=args.impressions, seed=args.seed)}
    for name, policy in learners.items():
        runs[name] = run_policy(
            world,
            policy,
            impressions=args.impressions,
            seed=args.seed,
            targets=targets if policy.kind == "linucb_softmax" else None,
        )
        print(f"{name}: {runs[name]['seconds']:.0f}s", flush=True)
    runs["ranker softmax (τ 0.1)"] = run_policy(
        world, targets["ranker softmax (τ 0.1)"], impressions=args.impressions, seed=args.seed
    )

    oracle_total = float(runs["oracle (knows the truth)"]["expected"].sum())
    table = [summarise(name, run, oracle_total) for name, run in runs.items()]
    bandit = runs["LinUCB softmax (bandit)"]
    estimates = []
    for name in targets:
        truth = runs[name] if name in runs else runs["uniform random"]
        for estimator in (ips_estimate, snips_estimate):
            estimate = estimator(bandit["rewards"], bandit["logged"], bandit["target_propensities"][name])
            simulated = float(truth["rewards"].mean())
            expected = float(truth["expected"].mean())
            estimates.append(
                {
                    "target": name,
                    "method": estimate.method,
                    "estimate": round(estimate.value, 5),
                    "ci95": [round(estimate.ci_low, 5), round(estimate.ci_high, 5)],
                    "effective_sample_size": round(estimate.effective_sample_size),
                    "simulated_value": round(simulated, 5),
                    "expected_value": round(expected, 5),
                    "simulated_value_in_ci": bool(estimate.ci_low <= simulated <= estimate.ci_high),
                    "expected_value_in_ci": bool(estimate.ci_low <= expected <= estimate.ci_high),
                }
            )

    print(
        f"\n{args.impressions:,} impressions per policy, seed {args.seed}, {args.titles:,} titles, "
        f"{len(world.profile_factors):,} profiles, {CANDIDATES} candidates per slot\n"
    )
    print(f"{'policy':<28}{'cumulative':>12}{'per impr.':>11}{'± 95 %':>9}{'E last 10K':>11}{'CTR':>8}{'regret':>9}")
    for row in table:
        print(
            f"{row['policy']:<28}{row['cumulative_reward']:>12,.1f}{row['mean_reward']:>11.4f}"
            f"{row['mean_reward_ci95']:>9.4f}{row['expected_reward_per_impression_last_10k']:>11.4f}{row['ctr']:>8.4f}"
            f"{row['regret_vs_oracle']:>9,.0f}"
        )
    print("\nOff-policy estimates from the bandit's log (mean reward per impression):")
    print(f"{'target':<24}{'method':>7}{'estimate':>10}{'95 % CI':>20}{'ESS':>8}{'simulated':>11}{'in CI':>7}")
    for row in estimates:
        ci = f"[{row['ci95'][0]:.4f}, {row['ci95'][1]:.4f}]"
        print(
            f"{row['target']:<24}{row['method']:>7}{row['estimate']:>10.4f}{ci:>20}"
            f"{row['effective_sample_size']:>8,}{row['simulated_value']:>11.4f}{'yes' if row['simulated_value_in_ci'] else 'NO':>7}"
        )

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "config": {
                    "impressions": args.impressions,
                    "seed": args.seed,
                    "titles": args.titles,
                    "profiles": len(world.profile_factors),
                    "candidates": CANDIDATES,
                    "update_every": UPDATE_EVERY,
                    "ranker_noise_sd": RANKER_NOISE,
                    "bandit": learners["LinUCB softmax (bandit)"].to_arrays()["params"].tolist(),
                },
                "policies": table,
                "off_policy": estimates,
            },
            indent=2,
        )
        + "\n"
    )
    plot(runs, estimates, args.png)
    print(f"\nwrote {args.json} and {args.png}")


def plot(runs: dict, estimates: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for name, run in runs.items():
        style = "--" if name.startswith("oracle") else ":" if name.startswith("ranker") else "-"
        left.plot(np.cumsum(run["rewards"]), style, label=name)
    left.set(xlabel="impressions", ylabel="cumulative engagement reward", title="Cumulative reward per policy")
    left.legend(loc="upper left", fontsize=8)
    left.grid(alpha=0.3)
    for offset, row in enumerate(estimates):
        y = len(estimates) - offset
        right.errorbar(
            row["estimate"],
            y,
            xerr=[[row["estimate"] - row["ci95"][0]], [row["ci95"][1] - row["estimate"]]],
            fmt="o",
            capsize=4,
            label=None,
        )
        right.plot(row["simulated_value"], y, "kx")
        right.text(row["ci95"][0], y + 0.18, f"{row['target']} · {row['method']}", fontsize=8)
    right.set(
        xlabel="mean reward per impression",
        yticks=[],
        ylim=(0.3, len(estimates) + 0.8),
        title="Off-policy estimate (95 % CI) vs simulated value (x)",
    )
    right.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
