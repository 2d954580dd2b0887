"""ranking.ml.bandit: feature builders, the policy contract (true propensities), learning, persistence, IPS."""

from __future__ import annotations

import numpy as np
import pytest

from ranking.ml.bandit import (
    CONTEXT_DENSE_WIDTH,
    CONTEXT_WIDTH,
    GENRE_SLOTS,
    ITEM_DENSE_WIDTH,
    ITEM_POPULARITY,
    ITEM_RANKER_SCORE,
    ITEM_RECENCY,
    ITEM_WIDTH,
    BanditPolicy,
    EpsilonGreedy,
    FixedLinearSoftmax,
    LinUCBSoftmax,
    UniformRandom,
    bandit_context,
    bandit_item_features,
    exploration_slots,
    interaction_features,
    interaction_width,
    ips_estimate,
    percentile_among,
    policy_from_bytes,
    policy_to_bytes,
    snips_estimate,
)

# A small world for the policy contract: 3 context columns (1, a, b), 2 item columns (1, x) plus 2 shared slots.
SMALL = {"context_width": 5, "item_width": 4, "shared_width": 2}


def small_policies() -> list[BanditPolicy]:
    return [
        UniformRandom(**SMALL),
        LinUCBSoftmax(alpha=0.5, temperature=0.2, floor=0.1, **SMALL),
        EpsilonGreedy(epsilon=0.3, **SMALL),
        FixedLinearSoftmax(
            weights=np.linspace(-1, 1, interaction_width(5, 4, 2)), temperature=0.5, floor=0.05, **SMALL
        ),
    ]


def small_request(rng: np.random.Generator, m: int = 6) -> tuple[np.ndarray, np.ndarray]:
    context = np.concatenate([[1.0], rng.random(2), rng.random(2)])
    items = np.column_stack([np.ones(m), rng.random(m), rng.random((m, 2))])
    return context, items


def trained(policy: BanditPolicy, rng: np.random.Generator) -> BanditPolicy:
    """Fold some observations so that learned policies have non-flat scores."""
    for _ in range(5):
        context, items = small_request(rng, 8)
        policy.update(context, items, items[:, 1] * context[1])
    return policy


# --- feature builders -----------------------------------------------------------------------------
def test_context_one_hots_device_and_daypart_and_normalises_affinity():
    affinity = np.zeros(GENRE_SLOTS)
    affinity[[2, 5]] = [0.6, 0.8]

    context = bandit_context(2, 21, affinity)

    assert context.shape == (CONTEXT_WIDTH,)
    assert context[0] == 1.0
    assert context[1:6].tolist() == [0, 1, 0, 0, 0]  # mobile
    assert context[6:10].tolist() == [0, 0, 0, 1]  # evening
    assert np.linalg.norm(context[CONTEXT_DENSE_WIDTH:]) == pytest.approx(1.0)
    assert context[CONTEXT_DENSE_WIDTH + 5] == pytest.approx(0.8)


@pytest.mark.parametrize(("hour", "daypart"), [(0, 0), (5, 0), (6, 1), (12, 2), (17, 2), (18, 3), (23, 3)])
def test_context_dayparts(hour, daypart):
    assert bandit_context(1, hour, np.zeros(GENRE_SLOTS))[6:10].argmax() == daypart


def test_context_of_a_new_profile_on_an_unknown_device():
    context = bandit_context(9, 10, np.zeros(GENRE_SLOTS))
    assert context[1:6].sum() == 0 and context[CONTEXT_DENSE_WIDTH:].sum() == 0


def test_context_rejects_a_wrong_affinity_width():
    with pytest.raises(ValueError, match="genre_affinity must have 32 values"):
        bandit_context(1, 10, np.zeros(18))


def test_item_features_are_percentiles_recency_and_normalised_genres():
    genres = np.zeros((3, GENRE_SLOTS))
    genres[0, [1, 2]] = 1
    genres[1, 3] = 1

    items = bandit_item_features(
        genres, np.array([10.0, 500.0, 10.0]), np.array([0.0, 30.0, np.nan]), np.array([0.1, np.nan, 0.9])
    )

    assert items.shape == (3, ITEM_WIDTH)
    assert items[:, 0].tolist() == [1, 1, 1]
    assert items[:, ITEM_POPULARITY].tolist() == [0.25, 1.0, 0.25]  # ties share the mean rank
    assert items[:, ITEM_RECENCY] == pytest.approx([1.0, np.exp(-1), 0.0])
    assert items[:, ITEM_RANKER_SCORE].tolist() == [0.0, 0.5, 1.0]  # NaN is neutral
    assert items[0, ITEM_DENSE_WIDTH + 1] == pytest.approx(1 / np.sqrt(2))
    assert items[2, ITEM_DENSE_WIDTH:].sum() == 0


def test_item_features_reject_misaligned_columns():
    with pytest.raises(ValueError, match="popularity must have shape"):
        bandit_item_features(np.zeros((3, GENRE_SLOTS)), np.zeros(2), np.zeros(3), np.zeros(3))


def test_percentile_of_a_single_value_is_neutral():
    assert percentile_among(np.array([7.0])).tolist() == [0.5]


def test_interaction_features_are_the_outer_product_and_the_genre_match():
    context = np.array([1.0, 2.0, 0.5, 0.25])  # dense (1, 2) + shared (0.5, 0.25)
    items = np.array([[1.0, 3.0, 1.0, 0.0], [1.0, -1.0, 0.0, 1.0]])

    features = interaction_features(context, items, shared_width=2)

    assert features.shape == (2, interaction_width(4, 4, 2)) == (2, 6)
    assert features[0].tolist() == [1.0, 3.0, 2.0, 6.0, 0.5, 0.0]
    assert features[1].tolist() == [1.0, -1.0, 2.0, -2.0, 0.0, 0.25]
    per_row = interaction_features(np.stack([context, context]), items, shared_width=2)
    assert np.array_equal(per_row, features)


def test_exploration_slots_spread_over_the_page():
    assert exploration_slots(20, 0.15).tolist() == [2, 10, 19]
    assert len(exploration_slots(40, 0.2)) == 8
    assert exploration_slots(2, 0.15).tolist() == []


# --- the policy contract ------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", small_policies(), ids=lambda p: p.kind)
def test_probabilities_are_a_distribution_over_the_available(policy):
    rng = np.random.default_rng(1)
    trained(policy, rng)
    context, items = small_request(rng)

    probabilities = policy.probabilities(context, items, excluded=np.array([1, 4]))

    assert probabilities.shape == (6,)
    assert probabilities.sum() == pytest.approx(1.0)
    assert probabilities[[1, 4]].tolist() == [0.0, 0.0]
    assert (probabilities >= 0).all()


@pytest.mark.parametrize("policy", small_policies(), ids=lambda p: p.kind)
def test_select_returns_distinct_picks_with_their_slot_probabilities(policy):
    rng = np.random.default_rng(2)
    trained(policy, rng)
    context, items = small_request(rng)

    chosen, propensities = policy.select(context, items, 3, np.random.default_rng(3))

    assert chosen.shape == propensities.shape == (3,)
    assert len(set(chosen.tolist())) == 3
    for slot in range(3):
        expected = policy.probabilities(context, items, excluded=chosen[:slot])[chosen[slot]]
        assert propensities[slot] == pytest.approx(expected)


@pytest.mark.parametrize("policy", small_policies(), ids=lambda p: p.kind)
def test_propensities_are_the_true_pick_frequencies(policy):
    """Over many draws, how often each candidate lands in each of two slots matches the logged propensities."""
    rng = np.random.default_rng(4)
    trained(policy, rng)
    context, items = small_request(rng, 5)
    draws = 6000
    generator = np.random.default_rng(5)
    picks = np.array([policy.select(context, items, 2, generator)[0] for _ in range(draws)])

    first = policy.probabilities(context, items)
    assert np.bincount(picks[:, 0], minlength=5) / draws == pytest.approx(first, abs=0.02)
    after = picks[picks[:, 0] == first.argmax(), 1]  # the second slot, given the likeliest first pick
    second = policy.probabilities(context, items, excluded=[first.argmax()])
    assert np.bincount(after, minlength=5) / len(after) == pytest.approx(second, abs=0.03)


def test_select_caps_k_at_the_number_of_candidates():
    context, items = small_request(np.random.default_rng(6), 3)
    chosen, propensities = UniformRandom(**SMALL).select(context, items, 10, np.random.default_rng(0))
    assert sorted(chosen.tolist()) == [0, 1, 2]
    assert propensities.tolist() == pytest.approx([1 / 3, 1 / 2, 1.0])


def test_floor_bounds_every_propensity():
    policy = LinUCBSoftmax(alpha=0.0, temperature=0.001, floor=0.1, **SMALL)
    rng = np.random.default_rng(7)
    trained(policy, rng)
    context, items = small_request(rng, 10)
    assert policy.probabilities(context, items).min() >= 0.1 / 10 - 1e-12


def test_epsilon_greedy_ties_share_the_greedy_mass():
    context, items = small_request(np.random.default_rng(8), 4)
    probabilities = EpsilonGreedy(epsilon=0.2, **SMALL).probabilities(context, items)  # untrained: all tie
    assert probabilities.tolist() == pytest.approx([0.25] * 4)


def test_inputs_are_checked_at_the_boundary():
    policy = LinUCBSoftmax(**SMALL)
    context, items = small_request(np.random.default_rng(9))
    with pytest.raises(ValueError, match="context must have shape"):
        policy.select(context[:3], items, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="item_features must be"):
        policy.select(context, items[:, :2], 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rewards for"):
        policy.update(context, items, np.zeros(2))


def test_update_is_vectorised_and_order_free():
    rng = np.random.default_rng(10)
    contexts = np.stack([small_request(rng)[0] for _ in range(50)])
    items = np.stack([small_request(rng, 1)[1][0] for _ in range(50)])
    rewards = rng.random(50)
    batch, one_by_one = LinUCBSoftmax(**SMALL), LinUCBSoftmax(**SMALL)

    batch.update(contexts, items, rewards)
    for i in reversed(range(50)):
        one_by_one.update(contexts[i], items[i : i + 1], rewards[i : i + 1])

    assert np.allclose(batch.posterior()[0], one_by_one.posterior()[0])
    assert batch.impressions_seen == one_by_one.impressions_seen == 50


# --- learning a planted preference -------------------------------------------------------------------
def planted_world(seed: int):
    """Contexts prefer one of 4 genres; the reward is 1 with probability 0.7 on a match, 0.1 otherwise."""
    rng = np.random.default_rng(seed)

    def request():
        liked = rng.integers(0, 4)
        affinity = np.zeros(GENRE_SLOTS)
        affinity[liked] = 1.0
        context = bandit_context(int(rng.integers(1, 6)), int(rng.integers(0, 24)), affinity)
        genres = np.zeros((8, GENRE_SLOTS))
        genres[np.arange(8), rng.integers(0, 4, 8)] = 1
        items = bandit_item_features(genres, rng.random(8), rng.random(8) * 100, rng.random(8))
        means = np.where(genres[:, liked] == 1, 0.7, 0.1)
        return context, items, means

    return rng, request


def mean_reward(policy: BanditPolicy, seed: int, rounds: int = 1500) -> float:
    rng, request = planted_world(seed)
    total = 0.0
    for _ in range(rounds):
        context, items, means = request()
        chosen, _ = policy.select(context, items, 1, rng)
        reward = float(rng.random() < means[chosen[0]])
        policy.update(context, items[chosen], np.array([reward]))
        total += reward
    return total / rounds


def test_linucb_learns_a_planted_preference():
    bandit, random = mean_reward(LinUCBSoftmax(), seed=11), mean_reward(UniformRandom(), seed=11)
    assert random == pytest.approx(0.25 * 0.7 + 0.75 * 0.1, abs=0.04)  # a quarter of the titles match
    assert bandit > random + 0.25  # the best of 8 matches 90 % of the time: 0.64 at best


def test_epsilon_greedy_learns_too():
    assert mean_reward(EpsilonGreedy(epsilon=0.1), seed=12) > mean_reward(UniformRandom(), seed=12) + 0.2


# --- persistence ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [*small_policies(), LinUCBSoftmax()], ids=lambda p: p.kind)
def test_round_trip_through_bytes_keeps_the_policy(policy):
    rng = np.random.default_rng(13)
    if policy.context_width == SMALL["context_width"]:
        trained(policy, rng)
        context, items = small_request(rng)
    else:
        context = bandit_context(1, 20, rng.random(GENRE_SLOTS))
        items = bandit_item_features(
            (rng.random((6, GENRE_SLOTS)) < 0.1).astype(float), rng.random(6), rng.random(6) * 90, rng.random(6)
        )
        policy.update(context, items[:3], np.array([0.0, 0.4, 1.0]))

    restored = policy_from_bytes(policy_to_bytes(policy))

    assert type(restored) is type(policy)
    assert restored.impressions_seen == policy.impressions_seen
    assert np.allclose(restored.probabilities(context, items), policy.probabilities(context, items))


def test_stored_arrays_hold_no_pickles():
    import io

    blob = policy_to_bytes(LinUCBSoftmax())
    with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
        assert set(arrays.files) == {"kind", "widths", "counters", "params", "gram", "moment"}


def test_unknown_kind_is_refused():
    arrays = UniformRandom().to_arrays() | {"kind": np.array("thompson")}
    with pytest.raises(ValueError, match="unknown bandit policy kind 'thompson'"):
        BanditPolicy.from_arrays(arrays)


# --- off-policy estimates --------------------------------------------------------------------------------
def synthetic_log(rng: np.random.Generator, n: int):
    """A logging policy over 4 actions with known mean rewards; returns the log and a target's true value."""
    means = np.array([0.1, 0.3, 0.5, 0.2])
    logging = np.array([0.4, 0.3, 0.2, 0.1])
    target = np.array([0.1, 0.2, 0.6, 0.1])
    actions = rng.choice(4, size=n, p=logging)
    rewards = (rng.random(n) < means[actions]).astype(float)
    return rewards, logging[actions], target[actions], float(target @ means)


def test_ips_is_unbiased_and_its_interval_covers_the_truth():
    rng = np.random.default_rng(14)
    covered, estimates = 0, []
    for _ in range(200):
        rewards, logged, target, truth = synthetic_log(rng, 2000)
        estimate = ips_estimate(rewards, logged, target)
        covered += estimate.ci_low <= truth <= estimate.ci_high
        estimates.append(estimate.value)
    assert np.mean(estimates) == pytest.approx(truth, abs=0.005)  # 200 × 2000 draws: sd of the mean ≈ 0.0015
    assert 0.9 <= covered / 200 <= 0.99


def test_snips_covers_the_truth_with_a_narrower_interval():
    rewards, logged, target, truth = synthetic_log(np.random.default_rng(15), 20_000)
    ips, snips = ips_estimate(rewards, logged, target), snips_estimate(rewards, logged, target)
    assert snips.ci_low <= truth <= snips.ci_high
    assert snips.ci_high - snips.ci_low <= ips.ci_high - ips.ci_low


def test_estimates_by_hand():
    rewards, logged, target = np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.25, 0.5]), np.array([1.0, 0.5, 0.25])
    ips = ips_estimate(rewards, logged, target)
    snips = snips_estimate(rewards, logged, target)
    weights = np.array([2.0, 2.0, 0.5])
    assert ips.value == pytest.approx((2.0 + 0.0 + 0.5) / 3)
    assert snips.value == pytest.approx(2.5 / 4.5)
    assert ips.effective_sample_size == pytest.approx(weights.sum() ** 2 / (weights**2).sum())
    assert ips.ci_high - ips.value == pytest.approx(1.959964 * np.std(weights * rewards, ddof=1) / np.sqrt(3), rel=1e-5)


def test_estimates_refuse_impossible_propensities():
    with pytest.raises(ValueError, match="logged propensities must be in"):
        ips_estimate(np.ones(3), np.array([0.5, 0.0, 0.5]), np.ones(3))
    with pytest.raises(ValueError, match="differ in length"):
        snips_estimate(np.ones(3), np.ones(2), np.ones(3))
