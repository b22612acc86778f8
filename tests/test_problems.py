"""Tests for ptdlib.problems: planted problems, Problem records and textbook chains."""

import dataclasses
import json
import pickle
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import _kernels, markov, subspace, td, theory
from ptdlib._validation import check_row_stochastic
from ptdlib.problems import (
    HEAD_NORM,
    MAX_HYPERCUBE_DIM,
    NotIdentifiableWarning,
    Problem,
    _residual_orthogonal_to_features,
    cluster_labels,
    hypercube_hamming_lumped,
    lazy_cycle,
    lazy_hypercube,
    metastable_chain,
    metastable_problem,
    product_chain_problem,
    random_dense_chain,
    random_features,
    shared_subspace_problem,
    two_state_chain,
)

# Exactly planted quantities hold up to floating-point round-off of O(n d) operations.
EXACT = 1e-10


@pytest.fixture(scope="module")
def planted() -> Problem:
    return shared_subspace_problem(12, 9, 5, 2, heterogeneity=0.6, laziness=0.2, rng=7)


@pytest.fixture(scope="module")
def misspecified() -> Problem:
    return shared_subspace_problem(12, 9, 5, 2, heterogeneity=0.6, laziness=0.2,
                                   misspecification=0.3, rng=7)


def _assert_well_posed(problem: Problem) -> None:
    """The invariants every problem satisfies: docs/setting.md and the environments notebook."""
    A, b = td.td_matrices(problem.P, problem.rewards, problem.features)
    theta = problem.theta_star
    np.testing.assert_allclose(problem.A, A, rtol=0, atol=EXACT)
    assert np.max(np.abs(np.einsum("ijk,ik->ij", A, theta) + b)) < EXACT
    np.testing.assert_allclose(td.td_fixed_point(problem.P, problem.rewards, problem.features),
                               theta, rtol=0, atol=EXACT)
    assert np.all(theory.negative_definiteness_margin(A) > 0)
    np.testing.assert_allclose(np.sum(problem.mu * problem.rewards, axis=1),
                               problem.average_reward, rtol=0, atol=EXACT)
    np.testing.assert_allclose(np.einsum("in,inm->im", problem.mu, problem.P), problem.mu,
                               rtol=0, atol=EXACT)
    assert np.max(np.linalg.norm(problem.features, axis=1)) <= 1 + 1e-12
    assert td.constant_in_span_residual(problem.features) > 1e-8
    if problem.rank is not None:
        B = problem.B_star
        np.testing.assert_allclose(B.T @ B, np.eye(problem.rank), rtol=0, atol=1e-12)
        np.testing.assert_allclose(problem.heads_star, theta @ B, rtol=0, atol=EXACT)


# --------------------------------------------------------------------------- planted problems

def test_planted_problem_is_well_posed(planted: Problem) -> None:
    _assert_well_posed(planted)
    assert planted.P.shape == (12, 9, 9) and planted.theta_star.shape == (12, 5)
    assert (planted.n_agents, planted.n_states, planted.dim, planted.rank) == (12, 9, 5, 2)


def test_planted_theta_is_exactly_rank_r(planted: Problem) -> None:
    # Built by the compiled product (the same bits on every machine), equal to BLAS's to round-off.
    np.testing.assert_array_equal(planted.theta_star,
                                  _kernels.matmul(planted.heads_star, planted.B_star.T))
    np.testing.assert_allclose(planted.theta_star, planted.heads_star @ planted.B_star.T,
                               rtol=0, atol=1e-15)
    assert planted.singular_value_ratio < EXACT
    assert np.linalg.matrix_rank(planted.theta_star, tol=1e-10) == 2
    np.testing.assert_allclose(np.linalg.norm(planted.heads_star, axis=1), HEAD_NORM, atol=1e-14)


def test_planted_bias_is_phi_theta_up_to_a_constant(planted: Problem) -> None:
    h = td.poisson_solution(planted.P, planted.rewards)
    gap = h - planted.theta_star @ planted.features.T
    assert np.max(np.ptp(gap, axis=1)) < EXACT
    np.testing.assert_allclose(np.sum(planted.mu * h, axis=1), 0.0, atol=EXACT)


def test_mu_matches_stationary_distribution(planted: Problem) -> None:
    for i in range(planted.n_agents):
        np.testing.assert_allclose(planted.mu[i], markov.stationary_distribution(planted.P[i]),
                                   rtol=0, atol=1e-14)


def test_random_instance_is_misaligned_and_diverse(planted: Problem) -> None:
    # docs/setting.md: random instances have chi > 0; lambda_w <= HEAD_NORM^2 / r by the trace.
    assert planted.misalignment > 1e-6
    assert 0 < planted.head_diversity <= HEAD_NORM**2 / planted.rank + 1e-15
    np.testing.assert_allclose(planted.head_diversity, theory.head_diversity(planted.heads_star))


def test_head_diversity_approaches_its_limit_for_many_agents() -> None:
    # N = 2000, r = 4: sigma_min^2 / N concentrates near (1 - sqrt(r / N))^2 / r ~ 0.91 / r
    # (Marchenko-Pastur edge); 0.8 / r leaves several standard deviations of slack.
    problem = shared_subspace_problem(2000, 6, 5, 4, rng=0)
    assert 0.8 / 4 < problem.head_diversity <= 1 / 4


def test_misspecified_problem_is_well_posed(misspecified: Problem) -> None:
    _assert_well_posed(misspecified)
    assert misspecified.singular_value_ratio > 1e-3
    assert np.linalg.matrix_rank(misspecified.theta_star, tol=1e-10) > 2


def test_misspecification_pushes_theta_orthogonally(planted: Problem,
                                                    misspecified: Problem) -> None:
    # Same seed: the draws before the misspecification directions are shared bit for bit.
    for name in ("P", "features", "mu", "average_reward"):
        np.testing.assert_array_equal(getattr(planted, name), getattr(misspecified, name))
    shift = misspecified.theta_star - planted.theta_star
    np.testing.assert_allclose(shift @ planted.B_star, 0.0, atol=EXACT)
    np.testing.assert_allclose(np.linalg.norm(shift, axis=1), 0.3 * HEAD_NORM, atol=EXACT)
    np.testing.assert_allclose(np.sum(misspecified.mu * misspecified.rewards, axis=1),
                               planted.average_reward, atol=EXACT)


def test_misspecification_ratio_grows_with_m() -> None:
    ratios = [shared_subspace_problem(10, 8, 6, 2, misspecification=m, rng=3).singular_value_ratio
              for m in (0.0, 0.05, 0.2, 0.8)]
    assert ratios[0] < EXACT
    assert np.all(np.diff(ratios) > 0)


def test_zero_heterogeneity_gives_identical_kernels() -> None:
    problem = shared_subspace_problem(5, 6, 3, 2, heterogeneity=0.0, rng=1)
    for i in range(1, 5):
        np.testing.assert_array_equal(problem.P[i], problem.P[0])


def test_heterogeneity_knob_keeps_common_random_numbers() -> None:
    low = shared_subspace_problem(6, 6, 3, 2, heterogeneity=0.1, rng=2)
    high = shared_subspace_problem(6, 6, 3, 2, heterogeneity=0.9, rng=2)
    for name in ("features", "B_star", "heads_star", "average_reward", "theta_star"):
        np.testing.assert_array_equal(getattr(low, name), getattr(high, name))
    spread = [np.max(np.abs(p.P - p.P.mean(axis=0))) for p in (low, high)]
    assert spread[0] < spread[1]


def test_laziness_raises_the_diagonal_and_slows_mixing() -> None:
    brisk = shared_subspace_problem(3, 8, 3, 2, laziness=0.0, rng=4)
    lazy = shared_subspace_problem(3, 8, 3, 2, laziness=0.9, rng=4)
    index = np.arange(8)
    np.testing.assert_allclose(lazy.P[:, index, index], 0.9 + 0.1 * brisk.P[:, index, index],
                               atol=1e-15)
    np.testing.assert_allclose(lazy.mu, brisk.mu, atol=1e-13)
    np.testing.assert_array_equal(lazy.theta_star, brisk.theta_star)
    for i in range(3):
        assert markov.mixing_time(lazy.P[i]) > markov.mixing_time(brisk.P[i])


def test_same_seed_same_problem_bit_for_bit() -> None:
    kwargs = {"heterogeneity": 0.3, "laziness": 0.1, "misspecification": 0.2}
    first = shared_subspace_problem(4, 7, 4, 2, rng=11, **kwargs)
    second = shared_subspace_problem(4, 7, 4, 2, rng=np.random.default_rng(11), **kwargs)
    other = shared_subspace_problem(4, 7, 4, 2, rng=12, **kwargs)
    for field in dataclasses.fields(Problem):
        np.testing.assert_array_equal(getattr(first, field.name), getattr(second, field.name))
    assert not np.array_equal(first.P, other.P)
    assert not np.array_equal(first.theta_star, other.theta_star)


def test_reward_noise_is_stored(planted: Problem) -> None:
    noisy = shared_subspace_problem(12, 9, 5, 2, heterogeneity=0.6, laziness=0.2,
                                    reward_noise=0.5, rng=7)
    assert noisy.reward_noise == 0.5 and planted.reward_noise == 0.0
    np.testing.assert_array_equal(noisy.rewards, planted.rewards)


# --------------------------------------------------------------------------- Problem record

def test_problem_is_immutable(planted: Problem) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        planted.rank = 3  # type: ignore[misc]
    for name in ("P", "rewards", "features", "mu", "average_reward", "theta_star", "B_star",
                 "heads_star"):
        array = getattr(planted, name)
        assert array.dtype == np.float64 and not array.flags.writeable
    assert not planted.A.flags.writeable and not planted.b.flags.writeable


def test_cached_td_matrices_are_computed_once(planted: Problem) -> None:
    assert planted.A is planted.A and planted.b is planted.b
    assert planted.A.shape == (12, 5, 5) and planted.b.shape == (12, 5)


def test_from_arrays_copies_and_leaves_inputs_writeable(planted: Problem) -> None:
    P, rewards, features = planted.P.copy(), planted.rewards.copy(), planted.features.copy()
    problem = Problem.from_arrays(P, rewards, features, rank=2)
    assert P.flags.writeable and rewards.flags.writeable
    rewards[0, 0] += 1.0
    assert problem.rewards[0, 0] == planted.rewards[0, 0]


def test_from_arrays_recovers_a_planted_problem(planted: Problem) -> None:
    problem = Problem.from_arrays(planted.P, planted.rewards, planted.features, rank=2,
                                  reward_noise=0.1)
    _assert_well_posed(problem)
    np.testing.assert_allclose(problem.theta_star, planted.theta_star, atol=EXACT)
    np.testing.assert_allclose(problem.average_reward, planted.average_reward, atol=EXACT)
    assert subspace.principal_angle_distance(problem.B_star, planted.B_star) < 1e-8
    np.testing.assert_allclose(problem.head_diversity, planted.head_diversity, rtol=1e-8)
    assert problem.reward_noise == 0.1


def test_from_arrays_without_rank_has_no_subspace(planted: Problem) -> None:
    problem = Problem.from_arrays(planted.P, planted.rewards, planted.features)
    assert problem.rank is None and problem.B_star is None and problem.heads_star is None
    for attribute in ("head_diversity", "singular_value_ratio", "misalignment"):
        with pytest.raises(ValueError, match="rank"):
            getattr(problem, attribute)
    assert "head_diversity" not in problem.describe()


def test_describe_reports_plain_numbers(planted: Problem) -> None:
    summary = planted.describe()
    json.dumps(summary)
    assert summary["rank"] == 2 and summary["n_agents"] == 12
    assert summary["singular_value_ratio"] < EXACT
    assert summary["min_negative_definiteness_margin"] > 0
    assert summary["misalignment"] == planted.misalignment
    assert abs(summary["max_feature_norm"] - 1.0) < 1e-12


def test_pickle_round_trip_refreezes(planted: Problem) -> None:
    copy = pickle.loads(pickle.dumps(planted))
    np.testing.assert_array_equal(copy.theta_star, planted.theta_star)
    assert not copy.P.flags.writeable and copy.rank == planted.rank


def test_constructor_checks_shapes(planted: Problem) -> None:
    with pytest.raises(ValueError, match="theta_star must have shape"):
        dataclasses.replace(planted, theta_star=planted.theta_star[:, :3])
    with pytest.raises(ValueError, match="need rank"):
        dataclasses.replace(planted, rank=None)
    with pytest.raises(ValueError, match="B_star must have orthonormal columns"):
        dataclasses.replace(planted, B_star=2 * planted.B_star)


def test_subset_is_the_first_agents_without_copies(planted: Problem) -> None:
    small = planted.subset(5)
    assert small.n_agents == 5 and np.shares_memory(small.P, planted.P)
    for name in ("P", "rewards", "mu", "average_reward", "theta_star", "heads_star"):
        np.testing.assert_array_equal(getattr(small, name), getattr(planted, name)[:5])
    np.testing.assert_array_equal(small.B_star, planted.B_star)
    np.testing.assert_allclose(small.A, planted.A[:5], atol=1e-15)
    with pytest.raises(ValueError, match="n_agents must be <= 12"):
        planted.subset(13)
    with pytest.raises(ValueError, match="n_agents"):
        planted.subset(0)


def test_from_pool_replicates_agents_and_keeps_head_diversity(planted: Problem) -> None:
    pool = planted.subset(4)
    big = Problem.from_pool(pool, 10)
    assert big.n_agents == 10
    for i in range(10):
        np.testing.assert_array_equal(big.P[i], pool.P[i % 4])
        np.testing.assert_array_equal(big.theta_star[i], pool.theta_star[i % 4])
    # With N a multiple of M, W*^T W* / N equals the pool's: lambda_w does not move with N.
    np.testing.assert_allclose(Problem.from_pool(pool, 12).head_diversity, pool.head_diversity,
                               rtol=1e-12)
    with pytest.raises(ValueError, match="pool must be a Problem"):
        Problem.from_pool(planted.P, 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- identifiability

def test_fewer_agents_than_rank_warns_and_checks_raise() -> None:
    with pytest.warns(NotIdentifiableWarning, match="n_agents = 2 < rank = 3"):
        problem = shared_subspace_problem(2, 6, 4, 3, rng=0)
    assert problem.head_diversity == 0.0
    with pytest.raises(ValueError, match="identifiable"):
        problem.require_identifiable()
    with pytest.raises(ValueError, match="identifiable"):
        _ = problem.misalignment
    assert problem.describe()["misalignment"] is None


def test_subset_and_from_arrays_warn_below_rank(planted: Problem) -> None:
    with pytest.warns(NotIdentifiableWarning):
        planted.subset(1)
    with pytest.warns(NotIdentifiableWarning):
        Problem.from_pool(planted, 1)
    with pytest.warns(NotIdentifiableWarning):
        Problem.from_arrays(planted.P[:1], planted.rewards[:1], planted.features, rank=2)


def test_require_identifiable_passes_on_a_diverse_problem(planted: Problem) -> None:
    planted.require_identifiable()


def test_collinear_heads_are_not_identifiable(planted: Problem) -> None:
    # Every agent's rewards are agent 0's scaled: Theta* has rank 1 < rank = 2.
    P = np.broadcast_to(planted.P[0], planted.P.shape)
    rewards = planted.rewards[0] * np.arange(1, 13)[:, None]
    problem = Problem.from_arrays(P, rewards, planted.features, rank=2)
    with pytest.raises(ValueError, match="do not span"):
        problem.require_identifiable()


# --------------------------------------------------------------------------- features

@given(n_states=st.integers(2, 30), data=st.data())
@settings(max_examples=40, deadline=None)
def test_random_features_properties(n_states: int, data: st.DataObject) -> None:
    dim = data.draw(st.integers(1, n_states - 1))
    Phi = random_features(n_states, dim, data.draw(st.integers(0, 2**32 - 1)))
    assert Phi.shape == (n_states, dim)
    np.testing.assert_allclose(np.max(np.linalg.norm(Phi, axis=1)), 1.0, rtol=1e-14)
    np.testing.assert_allclose(Phi.sum(axis=0), 0.0, atol=1e-12)
    # Columns orthogonal to 1: the distance of 1 / sqrt(n) from span(Phi) is 1.
    np.testing.assert_allclose(td.constant_in_span_residual(Phi), 1.0, atol=1e-10)
    assert np.linalg.matrix_rank(Phi) == dim


# One bad value per argument and each rule of problems' own once; the other bad values of the
# shared validators (non-integers, NaN, other ends of an interval) are tests/test_validation.py.
@pytest.mark.parametrize(("n_states", "dim", "match"), [
    (1, 1, r"^n_states must be an integer >= 2; got 1$"),
    (5, 0, r"^dim must be an integer >= 1; got 0$"),
    (5, 5, r"^dim must be <= n_states - 1 = 4 .*; got dim=5, n_states=5$"),
])
def test_random_features_bad_input(n_states: int, dim: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        random_features(n_states, dim, 0)


# --------------------------------------------------------------------------- bad input

THREE_STATE_FEATURES = np.array([[0.5], [0.0], [-0.5]])
THREE_STATE_REWARDS = np.array([[1.0, 0.0, 0.5]])
GOOD_P = np.full((1, 3, 3), 1 / 3)


# P: the stack rule is problems' own; one non-stochastic stack shows check_row_stochastic is
# called (its other rules: tests/test_validation.py); reducible and periodic agents (check_ergodic)
# are the next test.
@pytest.mark.parametrize(("P", "match"), [
    (np.full((3, 3), 1 / 3), r"^P must be a stack \(n_agents, n_states, n_states\)"),
    (np.full((1, 3, 3), 0.3), r"^P must be row-stochastic .* row \(0, 0\) sums to 0\.9"),
])
def test_from_arrays_rejects_bad_chains(P: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Problem.from_arrays(P, THREE_STATE_REWARDS, THREE_STATE_FEATURES)


def test_from_arrays_names_reducible_and_periodic_agents() -> None:
    periodic = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    reducible = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    for bad, match in ((periodic, r"P\[1\] is periodic with period 3"),
                       (reducible, r"P\[1\] is reducible: communicating classes")):
        with pytest.raises(ValueError, match=match):
            Problem.from_arrays(np.stack([GOOD_P[0], bad]), np.ones((2, 3)), THREE_STATE_FEATURES)


@pytest.mark.parametrize(("rewards", "features", "kwargs", "match"), [
    (np.ones((2, 3)), THREE_STATE_FEATURES, {}, "rewards must have shape"),
    (np.ones(3), THREE_STATE_FEATURES, {}, "rewards must be 2-dimensional"),
    (THREE_STATE_REWARDS, np.ones((4, 1)) * 0.1, {}, "features must have n_states = 3 rows"),
    (THREE_STATE_REWARDS, np.eye(3) * 0.5, {}, "features: dim must be <= n_states - 1"),
    # td.check_features' rules (span, norm, rank) are tests/test_td.py; one shows the call
    (THREE_STATE_REWARDS, np.array([[0.3, 0.5], [0.3, 0.0], [0.3, -0.5]]), {},
     "features: .*constant vector"),
    (THREE_STATE_REWARDS, THREE_STATE_FEATURES, {"rank": 2}, "rank must be <= dim"),
    (THREE_STATE_REWARDS, THREE_STATE_FEATURES, {"rank": 0},
     r"^rank must be an integer >= 1; got 0$"),
    (THREE_STATE_REWARDS, THREE_STATE_FEATURES, {"reward_noise": -1.0},
     r"^reward_noise must lie in \[0\.0, inf\); got -1\.0$"),
])
def test_from_arrays_rejects_bad_rewards_features_rank(rewards: np.ndarray, features: np.ndarray,
                                                       kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Problem.from_arrays(GOOD_P, rewards, features, **kwargs)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((0, 5, 2, 1), {}, r"^n_agents must be an integer >= 1; got 0$"),
    ((2, 1, 1, 1), {}, r"^n_states must be an integer >= 2; got 1$"),
    ((2, 5, 0, 1), {}, r"^dim must be an integer >= 1; got 0$"),
    ((2, 5, 2, 0), {}, r"^rank must be an integer >= 1; got 0$"),
    ((2, 5, 2, 3), {}, "rank must be <= dim"),
    ((2, 5, 5, 1), {}, "dim must be <= n_states - 1"),
    ((2, 5, 2, 1), {"heterogeneity": 1.5}, r"^heterogeneity must lie in \[0\.0, 1\.0\]; got 1\.5$"),
    ((2, 5, 2, 1), {"laziness": 1.0}, r"^laziness must lie in \[0\.0, 1\.0\); got 1\.0$"),
    ((2, 5, 2, 1), {"reward_noise": -0.5}, r"^reward_noise must lie in \[0\.0, inf\); got -0\.5$"),
    ((2, 5, 2, 1), {"misspecification": -0.1},
     r"^misspecification must lie in \[0\.0, inf\); got -0\.1$"),
    ((2, 5, 2, 2), {"misspecification": 0.1}, "misspecification > 0 needs rank < dim"),
])
def test_shared_subspace_problem_bad_input(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        shared_subspace_problem(*args, rng=0, **kwargs)


# --------------------------------------------------------------------------- property tests

@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_shared_subspace_problem_properties(data: st.DataObject) -> None:
    n_states = data.draw(st.integers(2, 8), label="n_states")
    dim = data.draw(st.integers(1, n_states - 1), label="dim")
    rank = data.draw(st.integers(1, dim), label="rank")
    n_agents = data.draw(st.integers(rank, rank + 4), label="n_agents")
    misspecification = data.draw(st.sampled_from([0.0, 0.5]) if rank < dim else st.just(0.0))
    problem = shared_subspace_problem(
        n_agents, n_states, dim, rank,
        heterogeneity=data.draw(st.floats(0.0, 1.0), label="heterogeneity"),
        laziness=data.draw(st.floats(0.0, 0.95), label="laziness"),
        misspecification=misspecification, rng=data.draw(st.integers(0, 2**32 - 1)))
    _assert_well_posed(problem)
    check_row_stochastic(problem.P)
    # lambda_min(W^T W / N) <= trace(W^T W / N) / r = mean ||w_i*||^2 / r (HEAD_NORM^2 if planted).
    mean_square = np.mean(np.sum(problem.heads_star**2, axis=1))
    assert problem.head_diversity <= mean_square / rank * (1 + 1e-12)
    if misspecification == 0.0:
        np.testing.assert_allclose(mean_square, HEAD_NORM**2, rtol=1e-14)
        assert problem.singular_value_ratio < EXACT


# --------------------------------------------------------------------------- textbook chains

@pytest.mark.parametrize(("p", "q"), [(0.3, 0.6), (1.0, 0.2), (0.05, 1.0), (0.5, 0.5)])
def test_two_state_chain_known_answers(p: float, q: float) -> None:
    P = two_state_chain(p, q)
    np.testing.assert_array_equal(P, [[1 - p, p], [q, 1 - q]])
    np.testing.assert_allclose(markov.stationary_distribution(P), [q / (p + q), p / (p + q)],
                               atol=1e-15)
    markov.check_ergodic(P)


@pytest.mark.parametrize(("p", "q", "match"), [
    (0.0, 0.5, r"^p must lie in \(0\.0, 1\.0\]; got 0\.0$"),
    (0.5, 0.0, r"^q must lie in \(0\.0, 1\.0\]; got 0\.0$"),
    (1.0, 1.0, "period"),
])
def test_two_state_chain_bad_input(p: float, q: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        two_state_chain(p, q)


@pytest.mark.parametrize("n", [3, 4, 7, 20])
def test_lazy_cycle_spectrum(n: int) -> None:
    P = lazy_cycle(n)
    check_row_stochastic(P)
    markov.check_ergodic(P)
    eigenvalues = np.sort(np.linalg.eigvalsh(P))[::-1]  # symmetric matrix
    expected = np.sort(0.5 + 0.5 * np.cos(2 * np.pi * np.arange(n) / n))[::-1]
    np.testing.assert_allclose(eigenvalues, expected, atol=1e-12)
    np.testing.assert_allclose(eigenvalues, theory.lazy_cycle_eigenvalues(n), atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_lazy_hypercube_and_lumped_spectra(k: int) -> None:
    P = lazy_hypercube(k)
    check_row_stochastic(P)
    markov.check_ergodic(P)
    eigenvalues = np.sort(np.linalg.eigvalsh(P))[::-1]
    expected = np.repeat(1 - np.arange(k + 1) / k, [comb(k, j) for j in range(k + 1)])
    np.testing.assert_allclose(eigenvalues, expected, atol=1e-12)
    lumped = hypercube_hamming_lumped(k)
    check_row_stochastic(lumped)
    spectrum = theory.lazy_hypercube_eigenvalues(k)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(lumped).real)[::-1],
                               spectrum.eigenvalues, atol=1e-10)
    binomial = np.array([comb(k, w) for w in range(k + 1)]) / 2**k
    np.testing.assert_allclose(markov.stationary_distribution(lumped), binomial, atol=1e-14)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_lumped_tv_equals_hypercube_tv_from_zero(k: int) -> None:
    cube, lumped = lazy_hypercube(k), hypercube_hamming_lumped(k)
    uniform = np.full(2**k, 2.0**-k)
    binomial = np.array([comb(k, w) for w in range(k + 1)]) / 2**k
    t_max = 4 * k + 4
    cube_row, lumped_row = np.eye(2**k)[0], np.eye(k + 1)[0]
    worst_start = markov.tv_curve(cube, t_max)
    for t in range(t_max + 1):
        tv_cube = 0.5 * np.abs(cube_row - uniform).sum()
        tv_lumped = 0.5 * np.abs(lumped_row - binomial).sum()
        assert tv_cube == pytest.approx(tv_lumped, abs=1e-13)
        # Vertex transitivity: every start is as far from uniform as 0...0.
        assert worst_start[t] == pytest.approx(tv_cube, abs=1e-12)
        cube_row, lumped_row = cube_row @ cube, lumped_row @ lumped


def test_random_dense_chain_is_positive_and_reproducible() -> None:
    P = random_dense_chain(6, 5)
    check_row_stochastic(P)
    assert np.all(P > 0)
    np.testing.assert_array_equal(P, random_dense_chain(6, 5))
    assert not np.array_equal(P, random_dense_chain(6, 6))


@pytest.mark.parametrize(("factory", "arg", "match"), [
    (lazy_cycle, 2, r"^n must be an integer >= 3; got 2$"),
    (lazy_hypercube, 0, r"^k must be an integer >= 1; got 0$"),
    (lazy_hypercube, MAX_HYPERCUBE_DIM + 1, "hypercube_hamming_lumped"),
    (hypercube_hamming_lumped, 0, r"^k must be an integer >= 1; got 0$"),
])
def test_textbook_chain_bad_input(factory, arg: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory(arg)


def test_random_dense_chain_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1; got 0$"):
        random_dense_chain(0, 1)


# --------------------------------------------------------------------------- head spread

def test_head_spread_one_is_the_default_draw_bit_for_bit() -> None:
    default = shared_subspace_problem(6, 8, 4, 3, heterogeneity=0.3, misspecification=0.2, rng=3)
    explicit = shared_subspace_problem(6, 8, 4, 3, heterogeneity=0.3, misspecification=0.2,
                                       head_spread=1.0, rng=3)
    for field in dataclasses.fields(Problem):
        np.testing.assert_array_equal(getattr(default, field.name),
                                      getattr(explicit, field.name))


def test_head_spread_zero_gives_identical_heads_on_e1() -> None:
    problem = shared_subspace_problem(5, 8, 4, 3, head_spread=0.0, rng=4)
    np.testing.assert_allclose(problem.heads_star,
                               np.tile([HEAD_NORM, 0.0, 0.0], (5, 1)), rtol=0, atol=1e-15)
    # Identical heads in R^3 span one direction only: lambda_w = 0 (B* not identifiable).
    assert problem.head_diversity < EXACT
    with pytest.raises(ValueError, match="not identifiable"):
        problem.require_identifiable()


@pytest.mark.parametrize("spread", [0.1, 0.5, 0.9])
def test_head_spread_adds_a_common_head(spread: float) -> None:
    free = shared_subspace_problem(7, 8, 4, 2, heterogeneity=0.4, rng=5)
    mixed = shared_subspace_problem(7, 8, 4, 2, heterogeneity=0.4, head_spread=spread, rng=5)
    # Known answer (module docstring): HEAD_NORM (sqrt(1 - s^2) e_1 + s z_i), z_i the free heads.
    expected = spread * free.heads_star + HEAD_NORM * np.array([np.sqrt(1 - spread**2), 0.0])
    np.testing.assert_allclose(mixed.heads_star, expected, rtol=0, atol=1e-14)
    # No extra draw: everything else is shared with the free problem (common random numbers).
    for name in ("features", "B_star", "average_reward", "P", "mu"):
        np.testing.assert_array_equal(getattr(mixed, name), getattr(free, name))
    _assert_well_posed(mixed)


def test_head_spread_scales_the_dispersion_of_the_fixed_points() -> None:
    # theta_i* - mean_j theta_j* = s (B* z_i - mean_j B* z_j): the dispersion is s^2 times that of
    # the free heads, on common random numbers.
    def dispersion(theta: np.ndarray) -> float:
        return float(np.mean(np.sum((theta - theta.mean(axis=0))**2, axis=1)))

    free = dispersion(shared_subspace_problem(9, 8, 4, 3, rng=6).theta_star)
    for s in (0.0, 0.3, 0.7):
        theta = shared_subspace_problem(9, 8, 4, 3, head_spread=s, rng=6).theta_star
        assert abs(dispersion(theta) - s**2 * free) < EXACT


def test_head_spread_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^head_spread must lie in \[0\.0, 1\.0\]; got 1\.5$"):
        shared_subspace_problem(3, 5, 2, 1, head_spread=1.5, rng=0)


# --------------------------------------------------------------------------- balanced heads

@pytest.mark.parametrize("n_agents", [4, 9, 64])
def test_balanced_heads_fix_the_head_diversity_at_its_limit(n_agents: int) -> None:
    problem = shared_subspace_problem(n_agents, 10, 6, 4, balanced_heads=True, rng=8)
    W = problem.heads_star
    # W^T W / N = (HEAD_NORM^2 / r) I exactly (to round-off), hence lambda_w = HEAD_NORM^2 / r.
    np.testing.assert_allclose(W.T @ W / n_agents, HEAD_NORM**2 / 4 * np.eye(4), atol=1e-14)
    assert problem.head_diversity == pytest.approx(HEAD_NORM**2 / 4, rel=1e-12)
    # Known answer: the heads' Gaussian draw G (after the features and B*, module docstring)
    # = Q R with diag R > 0, and W = HEAD_NORM sqrt(N / r) Q. Everything else is shared with
    # the random heads' problem.
    gen = np.random.default_rng(8)
    gen.standard_normal((10, 6))
    gen.standard_normal((6, 4))
    Q, R = np.linalg.qr(gen.standard_normal((n_agents, 4)))
    Q *= np.sign(np.diag(R))
    np.testing.assert_allclose(W, HEAD_NORM * np.sqrt(n_agents / 4) * Q, atol=1e-12)
    free = shared_subspace_problem(n_agents, 10, 6, 4, rng=8)
    for name in ("features", "B_star", "average_reward", "P", "mu"):
        np.testing.assert_array_equal(getattr(problem, name), getattr(free, name))
    _assert_well_posed(problem)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"balanced_heads": True, "head_spread": 0.5}, "head_spread = 1"),
    ({"balanced_heads": "yes"}, "balanced_heads must be a bool"),
])
def test_balanced_heads_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        shared_subspace_problem(6, 10, 6, 4, rng=0, **kwargs)


def test_balanced_heads_need_as_many_agents_as_the_rank() -> None:
    with pytest.raises(ValueError, match="n_agents >= rank"):
        shared_subspace_problem(3, 10, 6, 4, balanced_heads=True, rng=0)


# --- product_chain_problem: the misalignment family -------------------------------------------

PRODUCT = {"n_agents": 5, "n_states": 24, "dim": 6, "rank": 2, "signal_states": 4}


@pytest.mark.parametrize("heterogeneity", [0.0, 0.5, 1.0])
def test_product_chains_without_coupling_keep_span_b_star_invariant(heterogeneity: float) -> None:
    # chi = 0 exactly in theory (the parts are independent): round-off only, against chi > 0
    # for the coupled kernel of the same draw.
    free = product_chain_problem(**PRODUCT, heterogeneity=heterogeneity, rng=4)
    coupled = product_chain_problem(**PRODUCT, coupling=1.0, heterogeneity=heterogeneity, rng=4)
    scale = max(np.linalg.norm(A, 2) for A in coupled.A)
    assert free.misalignment < EXACT * scale
    assert coupled.misalignment > 1e-3 * scale


def test_product_chain_misalignment_grows_with_the_coupling() -> None:
    chi = [product_chain_problem(**PRODUCT, coupling=c, rng=5).misalignment
           for c in (0.0, 0.1, 0.4, 1.0)]
    assert np.all(np.diff(chi) > 0)


def test_product_chain_kernel_is_a_product_at_every_coupling() -> None:
    # P[(x, y), (x', y')] = X_i[x, x'] Y[y, y']: the nuisance part moves alike from every x and
    # in every agent (Y is shared), the signal part alike from every y; the coupling is in the
    # features only.
    problem = product_chain_problem(**PRODUCT, coupling=0.7, rng=6)
    n_x, n_y = 4, 6
    P = problem.P.reshape(5, n_x, n_y, n_x, n_y)
    Y = P.sum(axis=3)  # (agent, x, y, y')
    assert np.allclose(Y, Y[:1, :1], atol=EXACT)
    X = P.sum(axis=4)  # (agent, x, y, x')
    assert np.allclose(X, X[:, :, :1], atol=EXACT)
    assert not np.allclose(X[0], X[1])  # heterogeneous signal kernels (h = 0.5)
    assert np.allclose(P, np.einsum("nax,by->nabxy", X[:, :, 0], Y[0, 0]), atol=EXACT)


def test_product_chain_is_planted_exactly() -> None:
    problem = product_chain_problem(**PRODUCT, coupling=0.3, reward_noise=0.2, rng=7)
    solved = td.td_fixed_point(problem.P, problem.rewards, problem.features)
    assert np.allclose(solved, problem.theta_star, atol=EXACT)
    assert np.allclose(problem.theta_star, problem.heads_star @ problem.B_star.T, atol=EXACT)
    assert np.allclose(td.average_reward(problem.P, problem.rewards), problem.average_reward,
                       atol=EXACT)
    assert problem.head_diversity == pytest.approx(HEAD_NORM**2 / 2)
    assert np.max(np.linalg.norm(problem.features, axis=1)) == pytest.approx(1.0)
    assert problem.reward_noise == 0.2


def test_product_chain_common_random_numbers_across_the_knobs() -> None:
    base = product_chain_problem(**PRODUCT, rng=8)
    for knobs, same in (({"coupling": 0.7}, ("P", "B_star", "heads_star", "average_reward")),
                        ({"heterogeneity": 1.0}, ("features", "B_star", "heads_star",
                                                  "average_reward")),
                        ({"reward_noise": 1.0}, ("P", "rewards", "features", "B_star"))):
        other = product_chain_problem(**PRODUCT, **knobs, rng=8)
        for name in same:
            assert np.array_equal(getattr(base, name), getattr(other, name)), (knobs, name)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_states": 25}, "n_states = signal_states"),
    ({"signal_states": 2, "n_states": 12}, "signal_states >= rank"),
    ({"signal_states": 6, "n_states": 24}, "nuisance states >= dim - rank"),
    ({"rank": 6}, "rank < dim"),
    ({"n_agents": 1}, "n_agents must be >= rank"),
    ({"coupling": 1.5}, "coupling"),
    ({"heterogeneity": -0.1}, "heterogeneity"),
])
def test_product_chain_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        product_chain_problem(**(PRODUCT | kwargs), rng=0)



# --------------------------------------------------------------------------- metastable chains

def _brute_force_mixing_time(P: np.ndarray, eps: float) -> int:
    """The least t with max_s TV(P^t(s, .), mu) <= eps, by one matrix product per step."""
    mu = markov.stationary_distribution(P)
    Pt, t = np.eye(P.shape[0]), 0
    while 0.5 * np.abs(Pt - mu).sum(axis=1).max() > eps:
        Pt, t = Pt @ P, t + 1
    return t


def test_cluster_labels_split_as_equally_as_possible() -> None:
    np.testing.assert_array_equal(cluster_labels(7, 3), [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(cluster_labels(6, 2, [1, 5]), [0, 1, 1, 1, 1, 1])


@pytest.mark.parametrize(("sizes", "k", "q"), [
    ((3, 3), 2, 0.1), ((2, 2, 2), 3, 0.05), ((1, 2, 4), 3, 0.3), ((4, 4, 4, 4), 4, 0.6),
])
def test_metastable_chain_known_answers(sizes: tuple, k: int, q: float) -> None:
    n = sum(sizes)
    P = metastable_chain(n, k, q, cluster_sizes=sizes)
    check_row_stochastic(P)
    markov.check_ergodic(P)
    labels = cluster_labels(n, k, sizes)
    m = np.array(sizes)[labels]
    # Uniform inside a cluster: stay in the cluster w.p. 1 - q, each other cluster q / (k - 1).
    stay = labels[:, None] == labels[None, :]
    np.testing.assert_allclose(P[stay], ((1 - q) / m[:, None] * np.ones(n))[stay], atol=1e-15)
    np.testing.assert_allclose(P[~stay].sum(), n * q, atol=1e-12)
    # mu(s) = 1 / (k m_c(s)): uniform over clusters and uniform within each.
    np.testing.assert_allclose(markov.stationary_distribution(P), 1.0 / (k * m), atol=1e-14)
    # Spectrum: 1, lambda_q = 1 - k q / (k - 1) (k - 1 times), 0 for the rest.
    lam = 1 - k * q / (k - 1)
    expected = np.sort(np.concatenate([[1.0], np.full(k - 1, lam), np.zeros(n - k)]))
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(P).real), expected, atol=1e-10)
    assert np.max(np.abs(np.linalg.eigvals(P).imag)) < 1e-10
    assert theory.metastable_eigenvalue(k, q) == pytest.approx(lam, abs=1e-15)
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(abs(lam), abs=1e-10)
    # d(t) = (1 - 1/k) |lambda_q|^t for t >= 1, from matrix powers.
    t = np.arange(1, 12)
    exact = [markov.tv_to_stationarity(P, int(u)) for u in t]
    np.testing.assert_allclose(exact, theory.metastable_tv(k, q, t), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(("n", "k", "q", "eps", "expected"), [
    # by hand: t_mix = min{t >= 1 : (1 - 1/k) |1 - k q / (k - 1)|^t <= eps}
    (4, 2, 0.25, 0.25, 1),   # (1/2) (1/2)^1 = 1/4
    (6, 2, 0.1, 0.25, 4),    # (1/2) 0.8^3 = 0.256, (1/2) 0.8^4 = 0.2048
    (6, 3, 0.05, 0.25, 13),  # (2/3) 0.925^t <= 1/4 iff t >= log(3/8) / log(0.925) = 12.6
    (8, 4, 0.02, 0.1, 75),   # (3/4) (1 - 0.08/3)^t <= 0.1 iff t >= 74.5
])
def test_metastable_mixing_time_is_exact(n: int, k: int, q: float, eps: float,
                                         expected: int) -> None:
    P = metastable_chain(n, k, q)
    by_hand = next(t for t in range(1, 10_000)
                   if (1 - 1 / k) * abs(1 - k * q / (k - 1)) ** t <= eps)
    assert by_hand == expected
    assert markov.mixing_time(P, eps) == by_hand
    assert _brute_force_mixing_time(P, eps) == by_hand
    assert theory.metastable_mixing_time(k, q, eps) == by_hand


def test_metastable_chain_takes_a_stack_of_within_kernels() -> None:
    n, k, q = 9, 3, 0.05
    gen = np.random.default_rng(5)
    same = cluster_labels(n, k)[:, None] == cluster_labels(n, k)[None, :]
    W = gen.random((4, n, n)) * same
    W /= W.sum(axis=-1, keepdims=True)
    stacked = metastable_chain(n, k, q, within=W)
    assert stacked.shape == (4, n, n)
    for agent in range(4):
        np.testing.assert_array_equal(stacked[agent], metastable_chain(n, k, q, within=W[agent]))
    with pytest.raises(ValueError, match=r"^within must keep every cluster"):
        metastable_chain(n, k, q, within=np.stack([W[0], np.full((n, n), 1 / n)]))


def test_tau_mix_grows_like_one_over_q_with_the_clusters_dynamics_fixed() -> None:
    n, k = 9, 3
    gen = np.random.default_rng(3)  # a random kernel inside each of the three clusters
    same = cluster_labels(n, k)[:, None] == cluster_labels(n, k)[None, :]
    W = gen.random((n, n)) * same
    W /= W.sum(axis=1, keepdims=True)
    times = []
    for q in (0.04, 0.02, 0.01, 0.005):
        P = metastable_chain(n, k, q, within=W)
        # Spectrum: 1, lambda_q (k - 1 times), and (1 - q) times the blocks' non-unit eigenvalues.
        blocks = [np.sort_complex(np.linalg.eigvals(W[s:s + 3, s:s + 3]))[:-1]  # drop the 1
                  for s in (0, 3, 6)]
        expected = np.concatenate([[1.0], np.full(k - 1, theory.metastable_eigenvalue(k, q)),
                                   (1 - q) * np.concatenate(blocks)])
        np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(P)),
                                   np.sort_complex(expected), atol=1e-10)
        times.append(markov.mixing_time(P))
    # q halves -> t_mix doubles, to within the rounding of a ceiling and the fast transient.
    ratios = np.array(times[1:]) / np.array(times[:-1])
    np.testing.assert_allclose(ratios, 2.0, atol=0.1)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((6, 1, 0.1), {}, r"^n_clusters must be an integer >= 2; got 1$"),
    ((6, 7, 0.1), {}, r"^n_clusters must be <= n_states = 6 .*; got n_clusters=7$"),
    ((6, 2, 0.0), {}, r"^switch_probability must lie in \(0\.0, 1\.0\); got 0\.0$"),
    ((6, 2, 1.0), {}, r"^switch_probability must lie in \(0\.0, 1\.0\); got 1\.0$"),
    ((6, 2, 0.1), {"cluster_sizes": [2, 3]},
     r"^cluster_sizes must be n_clusters = 2 integers >= 1 summing to n_states = 6; "
     r"got \[2, 3\]$"),
    ((6, 2, 0.1), {"cluster_sizes": [0, 6]}, "cluster_sizes must be"),
    ((6, 2, 0.1), {"cluster_sizes": [1, 2, 3]}, "cluster_sizes must be"),
    ((6, 2, 0.1), {"within": np.full((6, 6), 1 / 6)},
     r"^within must keep every cluster .*; got 0\.167 at index \(0, 3\)$"),
    ((6, 2, 0.1), {"within": np.eye(5)}, r"^within must be \(n_states, n_states\)"),
])
def test_metastable_chain_bad_input(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metastable_chain(*args, **kwargs)


@pytest.fixture(scope="module")
def metastable() -> Problem:
    return metastable_problem(10, 12, 5, 2, n_clusters=3, switch_probability=0.02,
                              heterogeneity=0.6, rng=7)


def test_metastable_problem_is_planted_exactly(metastable: Problem) -> None:
    _assert_well_posed(metastable)
    assert metastable.P.shape == (10, 12, 12)
    np.testing.assert_array_equal(metastable.theta_star,
                                  _kernels.matmul(metastable.heads_star, metastable.B_star.T))
    np.testing.assert_allclose(td.td_fixed_point(metastable.P, metastable.rewards,
                                                 metastable.features),
                               metastable.heads_star @ metastable.B_star.T, rtol=0, atol=EXACT)
    assert metastable.singular_value_ratio < EXACT
    # Every chain switches cluster w.p. exactly q, and has the switching eigenvalue.
    labels = cluster_labels(12, 3)
    leave = metastable.P * (labels[:, None] != labels[None, :])
    np.testing.assert_allclose(leave.sum(axis=2), 0.02, atol=1e-15)
    for P in metastable.P:
        assert np.min(np.abs(np.linalg.eigvals(P) - theory.metastable_eigenvalue(3, 0.02))) < 1e-10


def test_metastable_problem_shares_everything_but_q_across_a_sweep(metastable: Problem) -> None:
    slow = metastable_problem(10, 12, 5, 2, n_clusters=3, switch_probability=0.005,
                              heterogeneity=0.6, rng=7)
    for name in ("features", "B_star", "heads_star", "average_reward", "theta_star"):
        np.testing.assert_array_equal(getattr(slow, name), getattr(metastable, name))
    labels = cluster_labels(12, 3)
    same = labels[:, None] == labels[None, :]
    # The dynamics inside the clusters are the same W_i: P_i = (1 - q) W_i on the blocks.
    np.testing.assert_allclose(slow.P * same / (1 - 0.005), metastable.P * same / (1 - 0.02),
                               rtol=1e-14, atol=0)
    assert markov.mixing_time(slow.P[0]) > 3 * markov.mixing_time(metastable.P[0])
    # Same seed and sizes: the parts drawn before the kernels are shared_subspace_problem's.
    plain = shared_subspace_problem(10, 12, 5, 2, heterogeneity=0.6, rng=7)
    for name in ("features", "B_star", "heads_star", "average_reward", "theta_star"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(metastable, name))


def test_metastable_problem_heterogeneity_and_misspecification() -> None:
    same = metastable_problem(4, 8, 3, 2, heterogeneity=0.0, rng=1)
    for P in same.P[1:]:
        np.testing.assert_array_equal(P, same.P[0])
    off = metastable_problem(6, 8, 4, 2, misspecification=0.3, reward_noise=0.1, rng=1)
    _assert_well_posed(off)
    assert off.singular_value_ratio > 1e-3 and off.reward_noise == 0.1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_clusters": 1}, r"^n_clusters must be an integer >= 2; got 1$"),
    ({"n_clusters": 13}, r"^n_clusters must be <= n_states = 12"),
    ({"switch_probability": 0.0}, r"^switch_probability must lie in \(0\.0, 1\.0\); got 0\.0$"),
    ({"switch_probability": 1.5}, r"^switch_probability must lie in \(0\.0, 1\.0\); got 1\.5$"),
    ({"cluster_sizes": [6, 5]}, r"^cluster_sizes must be n_clusters = 2 integers >= 1 summing "
                                r"to n_states = 12; got \[6, 5\]$"),
    ({"heterogeneity": 2.0}, r"^heterogeneity must lie in \[0\.0, 1\.0\]; got 2\.0$"),
    ({"reward_noise": -1.0}, "reward_noise must lie in"),
    ({"balanced_heads": 1}, "balanced_heads must be a bool"),
])
def test_metastable_problem_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metastable_problem(4, 12, 5, 2, rng=0, **kwargs)


# ------------------------------------------------------------------ planted Bellman residual

RESIDUAL_FACTORIES = {
    "shared_subspace": lambda **kw: shared_subspace_problem(8, 12, 5, 2, heterogeneity=0.6,
                                                            laziness=0.3, rng=11, **kw),
    "metastable": lambda **kw: metastable_problem(8, 12, 5, 2, n_clusters=3,
                                                  switch_probability=0.05, rng=11, **kw),
}


def _statewise_bellman_residual(problem: Problem) -> np.ndarray:
    """eps_i(s) = r_i(s) - J_i + (P_i Phi theta_i*)(s) - phi(s)^T theta_i*, shape (N, n)."""
    return td.bellman_residual(problem.P, problem.rewards, problem.features, problem.theta_star)


@pytest.mark.parametrize("factory", RESIDUAL_FACTORIES.values(), ids=RESIDUAL_FACTORIES.keys())
def test_bellman_residual_keeps_gains_and_fixed_points_planted(factory) -> None:
    plain, residual = factory(), factory(bellman_residual=0.3)
    np.testing.assert_allclose(residual.average_reward, plain.average_reward, rtol=0, atol=EXACT)
    np.testing.assert_allclose(residual.theta_star, plain.theta_star, rtol=0, atol=EXACT)
    _assert_well_posed(residual)  # td.td_fixed_point and mu^T r = J on the new rewards
    solved = Problem.from_arrays(residual.P, residual.rewards, residual.features, rank=2)
    np.testing.assert_allclose(solved.theta_star, plain.theta_star, rtol=0, atol=EXACT)
    np.testing.assert_allclose(solved.average_reward, plain.average_reward, rtol=0, atol=EXACT)
    # The residual draw comes last: every field but the rewards keeps its bits.
    for field in dataclasses.fields(Problem):
        if field.name != "rewards":
            assert np.array_equal(getattr(residual, field.name), getattr(plain, field.name)), \
                field.name


@pytest.mark.parametrize("factory", RESIDUAL_FACTORIES.values(), ids=RESIDUAL_FACTORIES.keys())
def test_bellman_residual_is_the_planted_eps_with_the_asked_rms(factory) -> None:
    plain, residual = factory(), factory(bellman_residual=0.3)
    eps = residual.rewards - plain.rewards
    # Planted problems have no Bellman residual; with sigma > 0 it is eps, state by state.
    assert np.max(np.abs(_statewise_bellman_residual(plain))) < EXACT
    np.testing.assert_allclose(_statewise_bellman_residual(residual), eps, rtol=0, atol=EXACT)
    np.testing.assert_allclose(np.sqrt(np.sum(residual.mu * eps**2, axis=1)), 0.3,
                               rtol=0, atol=EXACT)
    assert np.all(np.abs(eps) > 0)  # non-zero state by state (almost surely)
    # Orthogonal to the constant and to the features in each mu_i-weighted inner product.
    np.testing.assert_allclose(np.sum(residual.mu * eps, axis=1), 0.0, rtol=0, atol=EXACT)
    np.testing.assert_allclose(np.einsum("is,sd->id", residual.mu * eps, residual.features), 0.0,
                               rtol=0, atol=EXACT)


@pytest.mark.parametrize("factory", RESIDUAL_FACTORIES.values(), ids=RESIDUAL_FACTORIES.keys())
def test_bellman_residual_zero_is_the_default_draw_bit_for_bit(factory) -> None:
    default, zero = factory(), factory(bellman_residual=0.0)
    for field in dataclasses.fields(Problem):
        assert np.array_equal(getattr(zero, field.name), getattr(default, field.name)), field.name


@pytest.mark.parametrize("factory", [
    lambda dim, **kw: shared_subspace_problem(4, 6, dim, 2, rng=0, **kw),
    lambda dim, **kw: metastable_problem(4, 6, dim, 2, n_clusters=2, switch_probability=0.1,
                                         rng=0, **kw)], ids=["shared_subspace", "metastable"])
def test_bellman_residual_needs_a_direction_outside_one_and_the_features(factory) -> None:
    # d = n - 1: [1, Phi] spans every function of the state, nothing is left to plant.
    with pytest.raises(ValueError, match=r"^bellman_residual > 0 needs dim <= n_states - 2 = 4"):
        factory(5, bellman_residual=0.3)
    factory(5)  # without the residual d = n - 1 is allowed
    residual = factory(4, bellman_residual=0.3)
    np.testing.assert_allclose(np.sqrt(np.sum(residual.mu * _statewise_bellman_residual(residual)
                                              ** 2, axis=1)), 0.3, rtol=0, atol=EXACT)


def test_residual_projection_known_answer() -> None:
    # mu uniform on 3 states, Phi = (1, -1, 0)^T: span([1, Phi])^perp is spanned by (1, 1, -2),
    # whose uniform RMS is sqrt(2); z has a positive component along it.
    mu = np.full((1, 3), 1 / 3)
    Phi = np.array([[1.0], [-1.0], [0.0]])
    eps = _residual_orthogonal_to_features(mu, Phi, np.array([[0.3, 0.7, -1.0]]))
    np.testing.assert_allclose(eps[0], np.array([1.0, 1.0, -2.0]) / np.sqrt(2), rtol=0,
                               atol=1e-15)


@pytest.mark.parametrize("factory", RESIDUAL_FACTORIES.values(), ids=RESIDUAL_FACTORIES.keys())
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), "big"])
def test_bellman_residual_bad_input(factory, value: object) -> None:
    with pytest.raises(ValueError, match=r"^bellman_residual must (lie in \[0\.0, inf\)|be a real "
                                         r"number); got "):
        factory(bellman_residual=value)
