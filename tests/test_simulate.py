"""Tests for ptdlib.simulate (and its kernels): agreement with the plain reference loop on the
same random draws, reproducibility, common random numbers, convergence on small planted
problems, divergence handling, the Trace, and every bad input."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmarks.reference_loop import reference_run
from ptdlib import (
    _kernels,
    markov,
    problems,
    schedules,
    simulate,
    stability,
    steps,
    subspace,
    td,
)
from ptdlib import stats as ptd_stats


@pytest.fixture(scope="module")
def small() -> problems.Problem:
    """4 agents, 6 states, d = 4, r = 2, with reward noise (exercises the noise streams)."""
    return problems.shared_subspace_problem(4, 6, 4, 2, heterogeneity=0.5, reward_noise=0.1,
                                            rng=1)


@pytest.fixture(scope="module")
def planted32() -> problems.Problem:
    return problems.shared_subspace_problem(32, 10, 6, 2, heterogeneity=0.3, rng=0)


def _pool(n_agents: int) -> problems.Problem:
    base = problems.shared_subspace_problem(8, 6, 4, 2, heterogeneity=0.5, rng=2)
    return problems.Problem.from_pool(base, n_agents)


# ------------------------------------------------------------------ agreement with the reference

CASES = [(alg, sampling, K, rebase)
         for alg, sampling, K, rebase in itertools.product(
             simulate.ALGORITHMS, ("markov", "iid"), (1, 5), (False, True))
         if not rebase or alg in ("personalized", "fedrep")]


def _assert_agree(trace: simulate.Trace, k: int, ref, atol: float = 1e-10) -> None:
    np.testing.assert_allclose(trace.theta[k], ref.theta, rtol=0, atol=atol)
    np.testing.assert_allclose(trace.eta[k], ref.eta, rtol=0, atol=atol)
    np.testing.assert_allclose(trace.parameter_error[k], ref.parameter_error, rtol=0, atol=atol)
    np.testing.assert_allclose(trace.gain_error[k], ref.gain_error, rtol=0, atol=atol)
    assert trace.diverged[k] == ref.diverged
    if ref.B is not None:
        np.testing.assert_allclose(trace.B[k], ref.B, rtol=0, atol=atol)
        np.testing.assert_allclose(trace.heads[k], ref.heads, rtol=0, atol=atol)
        np.testing.assert_allclose(trace.subspace_distance[k], ref.subspace_distance, rtol=0,
                                   atol=atol)


@pytest.mark.parametrize(("algorithm", "sampling", "K", "rebase"), CASES)
def test_simulator_agrees_with_the_reference_loop(small, algorithm, sampling, K, rebase) -> None:
    options = {"steps": 30, "step_size": 0.3, "sampling": sampling, "communication_period": K,
                   "rebase_heads": rebase, "tau": 2, "c_eta": 0.5, "c_B": 2.0}
    trace = simulate.run(small, algorithm, seeds=[3, 11], record_every=10, **options)
    for k, seed in enumerate((3, 11)):
        ref = reference_run(small, algorithm, seed=seed, record_steps=list(trace.record_steps),
                            **options)
        _assert_agree(trace, k, ref)


#: Each reading of docs/algorithm.md ("Readings") on its own, and the FedRep-like combination,
#: with the algorithms it applies to (simulate.READING_SCOPE; re-basing: the retracting ones).
RADIUS = 0.4  # below most heads' norms after 30 steps (0.3 to 1.0): the projection acts
SHARED = ("personalized", "fedrep", "oracle")
READINGS = {
    "heads_first": ({"update_order": "heads_first"}, ("personalized",)),
    "td_gain": ({"gain_update": "td"}, simulate.ALGORITHMS),
    "head_radius": ({"head_radius": RADIUS}, SHARED),
    "head_radius_rebased": ({"head_radius": RADIUS, "rebase_heads": True}, SHARED[:2]),
    "polar": ({"retraction": "polar"}, SHARED[:2]),
    "polar_rebased": ({"retraction": "polar", "rebase_heads": True}, SHARED[:2]),
    "two_timescales": ({"representation_step_size": schedules.inverse_time(1.5, 5.0),
                        "c_B": 1.0}, SHARED[:2]),
    "fedrep_like": ({"update_order": "heads_first", "retraction": "polar",
                     "rebase_heads": True}, ("personalized",)),
}
SWITCHES = ("update_order", "gain_update", "head_radius", "retraction",
            "representation_step_size")
READING_CASES = [(name, alg, sampling, K) for name, (_, algorithms) in READINGS.items()
                 for alg in algorithms for sampling in ("markov", "iid") for K in (1, 5)]


@pytest.mark.parametrize(("reading", "algorithm", "sampling", "K"), READING_CASES)
def test_every_reading_agrees_with_the_reference_loop(small, reading, algorithm, sampling,
                                                      K) -> None:
    options = {"steps": 30, "step_size": 0.3, "sampling": sampling, "communication_period": K,
               "tau": 2, "c_eta": 0.5, "c_B": 2.0, **READINGS[reading][0]}
    trace = simulate.run(small, algorithm, seeds=[3, 11], record_every=10, **options)
    for k, seed in enumerate((3, 11)):
        ref = reference_run(small, algorithm, seed=seed, record_steps=list(trace.record_steps),
                            **options)
        _assert_agree(trace, k, ref)
    default = {k: v for k, v in options.items() if k not in SWITCHES}
    plain = simulate.run(small, algorithm, seeds=[3, 11], record_every=10, **default)
    # the switch changed the run (the basis, at least: polar_rebased keeps theta, see below)
    changed = [np.max(np.abs(getattr(trace, name) - getattr(plain, name)))
               for name in ("theta", "B") if getattr(trace, name) is not None]
    assert max(changed) > 1e-6
    if "head_radius" in options:  # the projection acted: some head ends on the sphere
        norms = np.linalg.norm(trace.heads, axis=-1)
        assert norms.max() == pytest.approx(RADIUS, rel=1e-12)


@pytest.mark.parametrize("algorithm", ["personalized", "lowrank_svd"])
def test_agreement_with_a_schedule_and_a_given_initial_basis(small, algorithm) -> None:
    B0 = subspace.haar_orthonormal(4, 2, 99) if algorithm == "personalized" else None
    options = {"steps": 40, "step_size": schedules.inverse_time(2.0, 4.0), "init_subspace": B0}
    trace = simulate.run(small, algorithm, seeds=[5], record_every=8, **options)
    ref = reference_run(small, algorithm, seed=5, record_steps=list(trace.record_steps),
                        **options)
    _assert_agree(trace, 0, ref)


def test_agreement_when_agents_share_chains_and_run_in_parallel_blocks() -> None:
    # N = 1040 >= AGENT_PARALLEL_MIN: one seed runs the agents' blocks in parallel, and the pool
    # makes agents share alias tables; two seeds take the seed-parallel kernel instead.
    problem = _pool(1040)
    trace_one = simulate.run(problem, steps=3, step_size=0.3, seeds=[7], record_every=1)
    trace_two = simulate.run(problem, steps=3, step_size=0.3, seeds=[7, 8], record_every=1)
    for name in ("theta", "eta", "B", "heads", "parameter_error", "subspace_distance"):
        np.testing.assert_array_equal(getattr(trace_one, name)[0], getattr(trace_two, name)[0])
    ref = reference_run(problem, seed=7, steps=3, step_size=0.3, record_steps=[0, 1, 2, 3])
    _assert_agree(trace_one, 0, ref)


def test_divergence_step_agrees_with_the_reference(small) -> None:
    options = {"steps": 200, "step_size": 40.0, "divergence_threshold": 1e3}
    trace = simulate.run(small, seeds=[1], record_every=1, **options)
    ref = reference_run(small, seed=1, record_steps=[], **options)
    assert trace.diverged[0] == ref.diverged > 0


# ------------------------------------------------------------------ running (Polyak-Ruppert) mean

AVERAGE_CASES = [(alg, sampling, K) for alg, sampling, K in itertools.product(
    simulate.ALGORITHMS, ("markov", "iid"), (1, 5))]


@pytest.mark.parametrize(("algorithm", "sampling", "K"), AVERAGE_CASES)
def test_running_average_agrees_with_the_reference_loop(small, algorithm, sampling, K) -> None:
    options = {"steps": 30, "step_size": 0.3, "sampling": sampling, "communication_period": K,
               "tau": 2, "c_eta": 0.5, "c_B": 2.0, "average_from": 7}
    trace = simulate.run(small, algorithm, seeds=[3, 11], record_every=10, **options)
    plain = simulate.run(small, algorithm, seeds=[3, 11], record_every=10,
                         **{k: v for k, v in options.items() if k != "average_from"})
    for name in ("theta", "eta", "B", "heads", "parameter_error", "subspace_distance"):
        if getattr(plain, name) is not None:  # the average does not perturb the run
            np.testing.assert_array_equal(getattr(trace, name), getattr(plain, name))
    assert plain.averaged_theta is None and plain.averaged_parameter_error is None
    for k, seed in enumerate((3, 11)):
        ref = reference_run(small, algorithm, seed=seed, record_steps=list(trace.record_steps),
                            **options)
        np.testing.assert_allclose(trace.averaged_theta[k], ref.averaged_theta, rtol=0,
                                   atol=1e-10)
        error = np.mean(np.sum((ref.averaged_theta - small.theta_star) ** 2, axis=1))
        assert trace.averaged_parameter_error[k] == pytest.approx(error, abs=1e-10)
    assert trace.settings["average_from"] == 7 and plain.settings["average_from"] is None


@pytest.mark.parametrize("reading", ["heads_first", "polar_rebased", "two_timescales"])
def test_running_average_honours_the_readings(small, reading) -> None:
    options = {"steps": 30, "step_size": 0.3, "communication_period": 5, "average_from": 0,
               **READINGS[reading][0]}
    trace = simulate.run(small, seeds=[3], record_every=10, **options)
    ref = reference_run(small, seed=3, record_steps=list(trace.record_steps), **options)
    np.testing.assert_allclose(trace.averaged_theta[0], ref.averaged_theta, rtol=0, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["personalized", "fedtd"])
def test_running_average_on_the_mean_path_is_the_average_of_the_prefix_runs(small,
                                                                             algorithm) -> None:
    # With K = 1 the run of t steps is the first t steps of a longer run (the mean path draws
    # nothing but B_0), so theta_t is the final theta of run(steps=t); theta_0 = 0.
    steps, start = 12, 4
    trace = simulate.run(small, algorithm, steps=steps, step_size=0.3, seeds=[2],
                         sampling="expected", average_from=start)
    iterates = np.stack([np.zeros_like(small.theta_star)] + [
        simulate.run(small, algorithm, steps=t, step_size=0.3, seeds=[2],
                     sampling="expected").theta[0] for t in range(1, steps + 1)])
    expected = ptd_stats.polyak_ruppert_average(np.arange(steps + 1), iterates, start)
    np.testing.assert_allclose(trace.averaged_theta[0], expected, rtol=0, atol=1e-12)
    from_zero = simulate.run(small, algorithm, steps=steps, step_size=0.3, seeds=[2],
                             sampling="expected", average_from=0)
    np.testing.assert_allclose(from_zero.averaged_theta[0], iterates.mean(axis=0), atol=1e-12)


def test_running_average_with_parallel_agent_blocks() -> None:
    # One seed with N >= AGENT_PARALLEL_MIN sums B w_i over the agents' blocks in parallel.
    problem = _pool(1040)
    one = simulate.run(problem, steps=3, step_size=0.3, seeds=[7], average_from=1)
    two = simulate.run(problem, steps=3, step_size=0.3, seeds=[7, 8], average_from=1)
    np.testing.assert_array_equal(one.averaged_theta[0], two.averaged_theta[0])
    ref = reference_run(problem, seed=7, steps=3, step_size=0.3, average_from=1)
    np.testing.assert_allclose(one.averaged_theta[0], ref.averaged_theta, rtol=0, atol=1e-10)


def test_running_average_of_a_diverged_seed_is_nan(small) -> None:
    trace = simulate.run(small, steps=200, step_size=40.0, divergence_threshold=1e3, seeds=[1],
                         average_from=0)
    assert trace.diverged[0] > 0
    assert np.all(np.isnan(trace.averaged_theta[0]))
    assert np.isnan(trace.averaged_parameter_error[0])


@pytest.mark.parametrize("value", [10, -1, 2.5, True, "3"])
def test_average_from_outside_the_run_raises(small, value) -> None:
    with pytest.raises(ValueError, match=r"^average_from must be None or an integer in "
                                         r"\[0, steps = 10\); got "):
        simulate.run(small, steps=10, step_size=0.1, seeds=1, average_from=value)


# ------------------------------------------------------------------ kernels against the library

def test_kernel_alias_draw_is_the_rule_of_markov_sample_next_states() -> None:
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.full(7, 0.3), size=(3, 7))
    tables = markov.alias_tables(P)
    table = np.stack([tables.prob, tables.alias], axis=-1).astype(np.float64)
    edges = np.concatenate([np.arange(7) / 7, np.nextafter(np.arange(1, 8) / 7, 0),
                            [0.0, np.nextafter(1.0, 0)]])
    u = np.concatenate([rng.random(3000), np.tile(edges, 20)])
    agent, state = rng.integers(0, 3, u.size), rng.integers(0, 7, u.size)
    expected = markov.sample_next_states(tables, agent, state, u)
    got = [_kernels.alias_draw(table, a, s, x) for a, s, x in zip(agent, state, u, strict=True)]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_kernel_qr_retraction_matches_subspace_qr_retraction(scale: float) -> None:
    rng = np.random.default_rng(1)
    B_tilde = subspace.haar_orthonormal(9, 4, 2) + scale * rng.standard_normal((9, 4))
    Q, R = subspace.qr_retraction(B_tilde)
    BT, R_kernel = np.ascontiguousarray(B_tilde.T), np.empty((4, 4))
    assert _kernels.qr_retract(BT, R_kernel)
    np.testing.assert_allclose(BT.T, Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(R_kernel, R, rtol=1e-12, atol=1e-12 * scale)


def test_kernel_qr_retraction_reports_rank_deficiency() -> None:
    B_tilde = np.ones((5, 2))
    assert not _kernels.qr_retract(np.ascontiguousarray(B_tilde.T), np.empty((2, 2)))


# ------------------------------------------------------------------ reproducibility and streams

def test_same_seed_gives_bit_identical_traces(small) -> None:
    runs = [simulate.run(small, steps=300, step_size=0.2, seeds=[4, 2], record_every=30)
            for _ in range(2)]
    for field in dataclasses.fields(simulate.Trace):
        a, b = getattr(runs[0], field.name), getattr(runs[1], field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)


def test_a_seed_gives_the_same_run_whatever_else_runs_with_it(small) -> None:
    alone = simulate.run(small, steps=200, step_size=0.2, seeds=[9], record_every=20)
    together = simulate.run(small, steps=200, step_size=0.2, seeds=[1, 9, 5], record_every=20)
    np.testing.assert_array_equal(alone.theta[0], together.theta[1])
    np.testing.assert_array_equal(alone.parameter_error[0], together.parameter_error[1])


def test_results_do_not_depend_on_the_chunking_of_the_draws(small, monkeypatch) -> None:
    options = {"steps": 250, "step_size": 0.2, "seeds": 2, "record_every": 25, "sampling": "iid"}
    whole = simulate.run(small, **options)
    monkeypatch.setattr(simulate, "DRAW_BUDGET", 7 * 2 * 4)  # chunks of 7 iterations
    chunked = simulate.run(small, **options)
    np.testing.assert_array_equal(whole.theta, chunked.theta)
    np.testing.assert_array_equal(whole.subspace_distance, chunked.subspace_distance)


@pytest.mark.parametrize("sampling", ["markov", "iid"])
def test_common_random_numbers_across_the_number_of_agents(small, sampling) -> None:
    # local TD does not couple agents, so equal final parameters mean equal sampled states and
    # rewards: agent i's draws depend on (seed, i) only, not on N.
    options = {"steps": 150, "step_size": 0.2, "seeds": [6], "sampling": sampling}
    full = simulate.run(small, "local", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", problems.NotIdentifiableWarning)
        first_two = simulate.run(small.subset(2), "local", **options)
    np.testing.assert_array_equal(full.theta[0, :2], first_two.theta[0])
    np.testing.assert_array_equal(full.eta[0, :2], first_two.eta[0])


def test_agent_streams_are_children_of_the_seed_sequence() -> None:
    transitions, noise = simulate._agent_streams(12, 3, noise=True)
    child = np.random.SeedSequence(12).spawn(3)[2]
    assert transitions[2].random() == np.random.default_rng(child).random()
    assert noise[2].random() == np.random.default_rng(child.spawn(1)[0]).random()


def test_initial_markov_states_follow_mu() -> None:
    # 4000 copies of one agent; after one local-TD iteration from eta = 0, eta_i = alpha r(s_0^i),
    # which identifies s_0^i (the rewards of the states are distinct).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", problems.NotIdentifiableWarning)
        one = problems.shared_subspace_problem(2, 6, 4, 2, rng=2).subset(1)
        problem = problems.Problem.from_pool(one, 4000)
    trace = simulate.run(problem, "local", steps=1, step_size=0.5, seeds=[3])
    rewards = one.rewards[0]
    states = np.argmin(np.abs(trace.eta[0][:, None] / 0.5 - rewards[None, :]), axis=1)
    np.testing.assert_allclose(rewards[states], trace.eta[0] / 0.5, rtol=0, atol=1e-12)
    counts = np.bincount(states, minlength=6)
    assert 4000 * one.mu[0].min() >= 5  # every expected count >= 5: the chi-square law applies
    # Pearson goodness of fit of the 4000 independent draws to mu at significance level 1e-3:
    # correct sampling fails with probability 1e-3 per seed (the seed is fixed, so the outcome
    # is deterministic), while a bias of 0.04 in one frequency fails (its term alone is
    # 4000 * 0.04^2 / mu_s >= 29 for mu_s <= 0.22, above the chi2_5 0.999-quantile 20.5).
    assert stats.chisquare(counts, 4000 * one.mu[0]).pvalue > 1e-3


# ------------------------------------------------------------------ convergence (seeded)

def test_mean_path_recovers_the_subspace_to_round_off() -> None:
    problem = problems.shared_subspace_problem(8, 5, 3, 2, heterogeneity=0.3, rng=3)
    trace = simulate.run(problem, steps=4000, step_size=2.0, c_eta=0.25, seeds=3,
                         sampling="expected", record_every=1000)
    # Noise-free linear-rate convergence: measured ~5e-9 at 4000 steps from every start.
    assert np.all(trace.subspace_distance[:, -1] < 1e-8)
    assert np.all(trace.gain_error[:, -1] < 1e-20)


def test_personalized_recovers_the_subspace_and_nearly_matches_the_oracle(planted32) -> None:
    options = {"steps": 200_000, "step_size": 0.2, "c_eta": 0.25, "seeds": 4, "record_every": 2000}
    trace = simulate.run(planted32, **options)
    oracle = simulate.run(planted32, "oracle", **options)
    tail = slice(-25, None)  # the last 50k iterations: the constant-step floor
    dist2 = np.mean(trace.subspace_distance[:, tail] ** 2, axis=1)
    ratio = np.mean(trace.parameter_error[:, tail]) / np.mean(oracle.parameter_error[:, tail])
    # Issue bar: dist^2 < 0.05 and within 2x of the oracle; measured dist^2 ~0.019 on every seed
    # and a ratio ~1.65 (the extra is the subspace part of the floor, ~alpha / N).
    assert np.all(dist2 < 0.05)
    assert ratio < 2.0
    assert np.all(trace.diverged == -1)


def test_local_converges_to_each_fixed_point(planted32) -> None:
    exact = simulate.run(planted32, "local", steps=4000, step_size=1.0, seeds=1,
                         sampling="expected")
    np.testing.assert_allclose(exact.theta[0], planted32.theta_star, rtol=0, atol=1e-12)
    noisy = simulate.run(planted32, "local", steps=200_000,
                         step_size=schedules.inverse_time(10.0, 100.0), seeds=2)
    # Markov sampling, 1/t steps: measured relative error ~0.04 per seed at T = 2e5; a wrong
    # fixed point would be O(1) (fedtd's bias below is ~1).
    assert np.all(noisy.relative_parameter_error[:, -1] < 0.1)


def test_fedtd_converges_to_the_averaged_fixed_point_and_is_biased(planted32) -> None:
    A, b = td.td_matrices(planted32.P, planted32.rewards, planted32.features)
    theta_bar = np.linalg.solve(A.sum(axis=0), -b.sum(axis=0))
    exact = simulate.run(planted32, "fedtd", steps=4000, step_size=1.0, seeds=1,
                         sampling="expected")
    np.testing.assert_allclose(exact.theta[0], np.broadcast_to(theta_bar, (32, 6)), rtol=0,
                               atol=1e-12)
    noisy = simulate.run(planted32, "fedtd", steps=200_000,
                         step_size=schedules.inverse_time(10.0, 100.0), seeds=2)
    # measured max |theta - theta_bar| ~0.03 (entries of theta* are O(0.5))
    assert np.max(np.abs(noisy.theta - theta_bar)) < 0.1
    # heterogeneous heads: the common parameter misses every agent, error ~ ||theta_i*||^2 = 1
    assert np.all(noisy.relative_parameter_error[:, -1] > 0.5)


def test_gain_estimates_converge_to_the_average_rewards(planted32) -> None:
    trace = simulate.run(planted32, "local", steps=100_000,
                         step_size=schedules.inverse_time(10.0, 100.0), seeds=2)
    # eta_t is an average of ~T rewards: measured (eta - J)^2 ~ 3e-6 against J^2 ~ 0.35.
    assert np.all(trace.gain_error[:, -1] < 1e-4)
    np.testing.assert_allclose(trace.eta, np.broadcast_to(planted32.average_reward, (2, 32)),
                               atol=0.03)


# ------------------------------------------------------------------ mean path = the steps by hand

def test_one_mean_path_iteration_is_the_composition_of_the_steps(small) -> None:
    B0 = subspace.haar_orthonormal(4, 2, 5)
    trace = simulate.run(small, steps=1, step_size=0.3, seeds=1, sampling="expected",
                         init_subspace=B0, rebase_heads=True)
    # From w = 0, eta = 0: z = b + J Phi^T mu, the heads move, G = z w^T = 0, so B~ = B.
    Phi_mu = small.mu @ small.features
    z = steps.expected_td_direction(small.A, small.b, Phi_mu, small.average_reward,
                                    np.zeros(4), np.zeros((4, 4)))
    w = steps.head_step(np.zeros((4, 2)), B0, z, 0.3)
    out = steps.retraction_step(steps.server_average(B0, np.zeros((4, 4, 2)), 0.3), w,
                                rebase_heads=True)
    np.testing.assert_allclose(trace.heads[0], out.w, rtol=0, atol=1e-14)
    np.testing.assert_allclose(trace.B[0], out.B, rtol=0, atol=1e-14)
    np.testing.assert_allclose(trace.eta[0], 0.3 * small.average_reward, rtol=0, atol=1e-15)


@pytest.mark.parametrize("reading", [name for name, (_, algorithms) in READINGS.items()
                                     if "personalized" in algorithms
                                     and name != "two_timescales"])
def test_the_mean_path_honours_every_reading(small, reading) -> None:
    # simulate's mean path (seed by seed, agents' copies, fedrep, oracle) against the batched
    # map of ptdlib.stability: two compositions of the same steps.
    switches = READINGS[reading][0]
    B0 = subspace.haar_orthonormal(4, 2, 5)
    trace = simulate.run(small, steps=25, step_size=0.3, seeds=1, sampling="expected",
                         init_subspace=B0, c_eta=0.5, c_B=2.0, **switches)
    x = stability.MeanPathState(B0, np.zeros((4, 2)), np.zeros(4))
    for _ in range(25):
        x = stability.mean_path_step(small, x, 0.3, c_eta=0.5, c_B=2.0, **switches)
    np.testing.assert_allclose(trace.B[0], x.B, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.heads[0], x.W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.eta[0], x.eta, rtol=0, atol=1e-14)


def test_the_mean_path_with_a_basis_schedule_is_the_composition_of_the_steps(small) -> None:
    B0, beta = subspace.haar_orthonormal(4, 2, 5), schedules.inverse_time(1.5, 5.0)
    trace = simulate.run(small, steps=2, step_size=0.3, seeds=1, sampling="expected",
                         init_subspace=B0, representation_step_size=beta)
    mean = (small.A, small.b, small.mu @ small.features, small.average_reward)
    B, w, eta = B0, np.zeros((4, 2)), np.zeros(4)
    for t in range(2):
        z = steps.expected_td_direction(*mean, eta, steps.shared_parameter(B, w))
        G = steps.representation_gradient(z, w)
        w, eta = steps.head_step(w, B, z, 0.3), steps.gain_step(eta, small.average_reward, 0.3)
        out = steps.retraction_step(steps.server_average(B, G, beta(t), 1.0), w,
                                    rebase_heads=False)
        B, w = out.B, out.w
    np.testing.assert_allclose(trace.B[0], B, rtol=0, atol=1e-14)
    np.testing.assert_allclose(trace.heads[0], w, rtol=0, atol=1e-14)


@pytest.mark.parametrize("sampling", simulate.SAMPLINGS)
@pytest.mark.parametrize("algorithm", simulate.ALGORITHMS)
def test_switches_at_their_defaults_give_bit_identical_traces(small, algorithm,
                                                              sampling) -> None:
    options = {"steps": 40, "step_size": 0.3, "seeds": [2, 9], "record_every": 10,
               "sampling": sampling, "communication_period": 2, "c_eta": 0.5}
    plain = simulate.run(small, algorithm, c_B=2.0, **options)
    explicit = simulate.run(small, algorithm, c_B=2.0, update_order="simultaneous",
                            gain_update="reward", head_radius=None, retraction="qr",
                            representation_step_size=None, **options)
    shared = algorithm in simulate.SHARED_ALGORITHMS and algorithm != "oracle"
    # beta_t = c_B alpha_t given as its own schedule: 2 * 0.3 is exact, so the same bits
    beta = simulate.run(small, algorithm, representation_step_size=0.6, **options) \
        if shared else plain
    for field in dataclasses.fields(simulate.Trace):
        a = getattr(plain, field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, getattr(explicit, field.name))
            np.testing.assert_array_equal(a, getattr(beta, field.name))


@pytest.mark.parametrize("algorithm", ["personalized", "local"])
def test_the_two_gain_updates_coincide_on_the_mean_path(small, algorithm) -> None:
    # E[delta] = J - eta: differential TD and the reward average are the same map there
    options = {"steps": 30, "step_size": 0.3, "seeds": 1, "sampling": "expected"}
    reward = simulate.run(small, algorithm, **options)
    td_gain = simulate.run(small, algorithm, gain_update="td", **options)
    np.testing.assert_array_equal(reward.theta, td_gain.theta)
    np.testing.assert_array_equal(reward.eta, td_gain.eta)


def test_polar_runs_keep_an_orthonormal_basis_and_heads_in_the_ball(small) -> None:
    for sampling, K in itertools.product(simulate.SAMPLINGS, (1, 3)):
        trace = simulate.run(small, "fedrep", steps=24, step_size=0.3, seeds=[4], tau=2,
                             communication_period=K, sampling=sampling, retraction="polar",
                             rebase_heads=True, head_radius=RADIUS,
                             representation_step_size=schedules.inverse_time(1.0, 2.0))
        B = trace.B[0]
        np.testing.assert_allclose(B.T @ B, np.eye(2), rtol=0, atol=1e-13)
        assert np.all(np.linalg.norm(trace.heads[0], axis=-1) <= RADIUS * (1 + 1e-14))


@pytest.mark.parametrize("K", [1, 4])
def test_with_rebased_heads_the_retraction_only_rotates_the_basis(small, K) -> None:
    # The update is equivariant under (B, w_i) -> (B O, O^T w_i), O orthogonal, and with
    # re-basing both retractions keep B~ w_i: Q R = (U V^T)(V S V^T). So QR and polar runs
    # differ by a rotation of the basis only, and theta = B w is the same.
    options = {"steps": 40, "step_size": 0.3, "seeds": [1], "rebase_heads": True,
               "communication_period": K, "update_order": "heads_first", "head_radius": RADIUS}
    qr = simulate.run(small, retraction="qr", **options)
    polar = simulate.run(small, retraction="polar", **options)
    np.testing.assert_allclose(polar.theta, qr.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(polar.subspace_distance, qr.subspace_distance, rtol=0, atol=1e-12)
    rotation = polar.B[0].T @ qr.B[0]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(qr.heads[0], polar.heads[0] @ rotation, rtol=0, atol=1e-12)
    assert np.max(np.abs(rotation - np.eye(2))) > 1e-3  # and the bases do differ


def test_trace_settings_record_the_reading(small) -> None:
    trace = simulate.run(small, steps=4, step_size=0.1, seeds=1, update_order="heads_first",
                         gain_update="td", head_radius=2.0, retraction="polar",
                         representation_step_size=schedules.inverse_time(1.0, 5.0))
    assert {k: trace.settings[k] for k in ("update_order", "gain_update", "head_radius",
                                            "retraction", "representation_step_size")} == {
        "update_order": "heads_first", "gain_update": "td", "head_radius": 2.0,
        "retraction": "polar", "representation_step_size": "inverse_time(1.0, t0=5.0)"}
    plain = simulate.run(small, steps=4, step_size=0.1, seeds=1)
    assert plain.settings["representation_step_size"] is None
    assert plain.settings["retraction"] == "qr" and plain.settings["head_radius"] is None


# ------------------------------------------------------------------ the trace

def test_trace_shapes_and_records(small) -> None:
    trace = simulate.run(small, steps=105, step_size=0.1, seeds=3, record_every=10)
    S, N, d, r = 3, 4, 4, 2
    np.testing.assert_array_equal(trace.record_steps, [*range(0, 101, 10), 105])
    R = trace.record_steps.size
    for name in simulate.METRICS:
        assert getattr(trace, name).shape == (S, R)
    assert trace.theta.shape == (S, N, d) and trace.eta.shape == (S, N)
    assert trace.B.shape == (S, d, r) and trace.heads.shape == (S, N, r)
    np.testing.assert_array_equal(trace.seeds, [0, 1, 2])
    np.testing.assert_allclose(np.einsum("sdr,snr->snd", trace.B, trace.heads), trace.theta)
    # record 0: heads and gains start at 0
    np.testing.assert_allclose(trace.parameter_error[:, 0],
                               np.mean(np.sum(small.theta_star**2, axis=1)))
    assert trace.settings["record_every"] == 10 and trace.settings["steps"] == 105


def test_parameter_error_splits_into_head_and_subspace_parts(small) -> None:
    trace = simulate.run(small, steps=60, step_size=0.2, seeds=2, record_every=60)
    coefficients = np.einsum("sdr,nd->snr", trace.B, small.theta_star)  # B^T theta_i*
    projected = np.einsum("sdr,snr->snd", trace.B, coefficients)
    subspace_part = np.mean(np.sum((small.theta_star - projected) ** 2, axis=-1), axis=1)
    np.testing.assert_allclose(trace.parameter_error[:, -1],
                               trace.head_error[:, -1] + subspace_part, rtol=1e-12)


def test_relative_error_and_theta_based_subspace_fields(small) -> None:
    trace = simulate.run(small, "local", steps=50, step_size=0.2, seeds=1, record_every=25)
    assert np.isnan(trace.subspace_distance[0, 0])  # Theta = 0: no top-r subspace yet
    assert np.all(np.isfinite(trace.subspace_distance[0, 1:]))
    basis = steps.lowrank_projection(trace.theta[0], 2).basis
    assert trace.subspace_distance[0, -1] == pytest.approx(
        subspace.principal_angle_distance(basis, small.B_star), abs=1e-10)
    assert trace.head_error is None and trace.heads is None
    norms = np.sum(small.theta_star**2, axis=1)
    errors = np.sum((trace.theta[0] - small.theta_star) ** 2, axis=1)
    assert trace.relative_parameter_error[0, -1] == pytest.approx(np.mean(errors / norms))
    fed = simulate.run(small, "fedtd", steps=50, step_size=0.2, seeds=1, record_every=25)
    u = fed.theta[0, 0] / np.linalg.norm(fed.theta[0, 0])
    line = np.linalg.norm(u - small.B_star @ (small.B_star.T @ u))
    assert fed.subspace_distance[0, -1] == pytest.approx(line, abs=1e-12)
    assert fed.B is None


def test_divergence_stops_the_seed_and_to_frame_drops_later_records(small) -> None:
    trace = simulate.run(small, steps=300, step_size=40.0, seeds=2, record_every=10)
    assert np.all(trace.diverged > 0)
    valid = trace.valid
    np.testing.assert_array_equal(valid, trace.record_steps[None] < trace.diverged[:, None])
    assert np.all(np.isnan(trace.parameter_error[~valid]))
    assert np.all(np.isfinite(trace.parameter_error[valid]))
    frame = trace.to_frame()
    assert len(frame) == valid.sum()
    assert frame["diverged"].all()
    assert frame[simulate.METRICS[2]].notna().all()
    assert set(frame.columns) >= {"algorithm", "seed", "step", *simulate.METRICS}


def test_to_frame_of_a_healthy_run_keeps_every_record(small) -> None:
    trace = simulate.run(small, steps=40, step_size=0.1, seeds=[2, 5], record_every=20)
    frame = trace.to_frame()
    assert len(frame) == 2 * 3 and not frame["diverged"].any()
    assert list(frame["seed"]) == [2, 2, 2, 5, 5, 5]
    assert list(frame["step"]) == [0, 20, 40] * 2


def test_to_frame_long_has_one_row_per_metric(small) -> None:
    trace = simulate.run(small, "local", steps=40, step_size=0.1, seeds=1, record_every=20)
    frame = trace.to_frame(long=True)
    metrics = [m for m in simulate.METRICS if m != "head_error"]  # local has no heads
    assert sorted(frame["metric"].unique()) == sorted(metrics)
    assert len(frame) == 3 * len(metrics)
    wide = trace.to_frame()
    np.testing.assert_array_equal(frame.loc[frame["metric"] == "gain_error", "value"],
                                  wide["gain_error"])


@settings(max_examples=25, deadline=None)
@given(algorithm=st.sampled_from(["personalized", "fedrep", "oracle"]),
       K=st.sampled_from([1, 2, 3]), rebase=st.booleans(), seed=st.integers(0, 2**31),
       sampling=st.sampled_from(["markov", "iid"]))
def test_shared_runs_keep_an_orthonormal_basis_and_theta_equal_to_B_w(small, algorithm, K,
                                                                       rebase, seed,
                                                                       sampling) -> None:
    trace = simulate.run(small, algorithm, steps=12, step_size=0.3, seeds=[seed],
                         communication_period=K, rebase_heads=rebase, sampling=sampling)
    B = trace.B[0]
    np.testing.assert_allclose(B.T @ B, np.eye(2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.theta[0], trace.heads[0] @ B.T, rtol=0, atol=1e-14)
    assert np.all(trace.valid) and np.all(np.isfinite(trace.parameter_error))
    assert np.all((trace.subspace_distance >= 0) & (trace.subspace_distance <= 1 + 1e-12))
    if algorithm == "oracle":
        np.testing.assert_array_equal(B, small.B_star)


def test_progress_bar_runs(small, capsys) -> None:
    simulate.run(small, steps=20, step_size=0.1, seeds=1, progress=True)
    assert "step" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"algorithm": "fedavg"}, "algorithm must be one of"),
    ({"sampling": "random"}, "sampling must be one of"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"step_size": 0.0}, "step_size"),
    ({"step_size": -0.1}, "step_size"),
    ({"step_size": float("nan")}, "step_size"),
    ({"step_size": float("inf")}, "step_size"),
    ({"step_size": "big"}, "step_size"),
    ({"step_size": lambda t: -1.0}, r"alpha_t = -1\.0 at t = 0"),
    ({"seeds": 0}, "seeds must be an integer >= 1"),
    ({"seeds": []}, "seeds must be a non-empty sequence"),
    ({"seeds": [1, 1]}, "distinct"),
    ({"seeds": [-1]}, "every seed value"),
    ({"seeds": "ab"}, "seeds must be a count"),
    ({"record_every": 0}, "record_every"),
    ({"record_every": 11}, r"record_every must lie in \[1, steps = 10\]"),
    ({"record_every": 4, "communication_period": 3}, "multiple of communication_period"),
    ({"communication_period": 0}, "communication_period must be an integer >= 1"),
    ({"rank": 3}, "rank must equal the rank of problem.B_star"),
    ({"init_subspace": np.ones((4, 2))}, "init_subspace must have orthonormal columns"),
    ({"init_subspace": np.eye(4)[:, :3]}, r"init_subspace must have shape \(dim, rank\)"),
    ({"init_subspace": np.eye(4)[:, :2], "algorithm": "local"}, "init_subspace applies"),
    ({"tau": 0}, "tau must be an integer >= 1"),
    ({"c_eta": 0.0}, "c_eta"),
    ({"c_B": float("nan")}, "c_B"),
    ({"divergence_threshold": -1.0}, "divergence_threshold"),
    ({"update_order": "alternating"}, "update_order must be one of 'simultaneous', "
                                      "'heads_first'; got 'alternating'"),
    ({"gain_update": "sarsa"}, "gain_update must be one of 'reward', 'td'; got 'sarsa'"),
    ({"retraction": "cayley"}, "retraction must be one of 'qr', 'polar'; got 'cayley'"),
    ({"retraction": None}, "retraction must be one of 'qr', 'polar'; got None"),
    ({"head_radius": 0.0}, r"head_radius must lie in \(0\.0, inf\); got 0\.0"),
    ({"head_radius": -1.0}, r"head_radius must lie in .*; got -1\.0"),
    ({"head_radius": float("inf")}, "head_radius must lie in"),
    ({"representation_step_size": 0.0}, r"representation_step_size must lie in .*; got 0\.0"),
    ({"representation_step_size": "slow"}, "representation_step_size must be a positive number"),
    ({"representation_step_size": lambda t: -1.0},
     r"representation_step_size must be finite and > 0 at every step; .* beta_t = -1\.0 at t = 0"),
    ({"representation_step_size": 0.1, "c_B": 2.0},
     r"c_B must be 1\.0 with representation_step_size .*; got c_B=2\.0"),
    ({"head_radius": 1.0, "algorithm": "local"},
     "head_radius=1.0 applies to 'personalized', 'fedrep', 'oracle' only; got it with "
     "algorithm 'local'"),
    ({"retraction": "polar", "algorithm": "local"}, "retraction='polar' applies to"),
    ({"retraction": "polar", "algorithm": "oracle"}, "got it with algorithm 'oracle'"),
    ({"update_order": "heads_first", "algorithm": "fedrep"},
     "update_order='heads_first' applies to 'personalized' only; got it with algorithm 'fedrep'"),
    ({"representation_step_size": 0.1, "algorithm": "fedtd"},
     r"representation_step_size=constant\(0\.1\) applies to 'personalized', 'fedrep' only"),
])
def test_bad_arguments_raise_naming_the_argument(small, kwargs, match) -> None:
    options = {"steps": 10, "step_size": 0.1, "seeds": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate.run(small, **options)


def test_oracle_and_rank_need_a_subspace(small) -> None:
    bare = problems.Problem.from_arrays(small.P, small.rewards, small.features)
    with pytest.raises(ValueError, match="'oracle' needs a problem with B_star"):
        simulate.run(bare, "oracle", steps=5, step_size=0.1, seeds=1, rank=2)
    with pytest.raises(ValueError, match="rank must be given"):
        simulate.run(bare, steps=5, step_size=0.1, seeds=1)
    with pytest.raises(ValueError, match=r"problem must be a ptdlib\.problems\.Problem"):
        simulate.run(object(), steps=5, step_size=0.1, seeds=1)
    trace = simulate.run(bare, steps=5, step_size=0.1, seeds=1, rank=2)
    assert trace.subspace_distance is None and trace.head_error is not None


# ------------------------------------------------------------------ pause: the state at step t

def test_pause_holds_the_run_state_and_the_next_draws_of_every_stream(small) -> None:
    t, seed = 37, 5
    options = {"step_size": 0.05, "rebase_heads": True}
    paused = simulate.pause(small, steps=t, seed=seed, **options)
    full = simulate.run(small, steps=t, seeds=[seed], **options)
    np.testing.assert_array_equal(paused.trace.B, full.B)
    np.testing.assert_array_equal(paused.trace.heads, full.heads)
    # Replay each agent's documented streams: one uniform for s_0, one per transition, one
    # normal per iteration; the pause must leave exactly the draws of iteration t.
    N, n = small.n_agents, small.n_states
    transitions, noise = simulate._agent_streams(seed, N, noise=True)
    mu_rows = markov.alias_tables(np.repeat(small.mu[:, None, :], n, axis=1))
    states = np.array([markov.sample_next_states(mu_rows, i, 0, g.random())
                       for i, g in enumerate(transitions)])
    tables = markov.alias_tables(small.P)
    for _ in range(t):
        states = markov.sample_next_states(tables, np.arange(N), states,
                                           np.array([g.random() for g in transitions]))
        for g in noise:
            g.standard_normal()
    np.testing.assert_array_equal(paused.states, states)
    np.testing.assert_array_equal(paused.uniforms, [g.random() for g in transitions])
    np.testing.assert_array_equal(paused.noise, [g.standard_normal() for g in noise])


def test_pause_takes_the_readings(small) -> None:
    options = {"step_size": 0.05, "rebase_heads": True, "update_order": "heads_first",
               "retraction": "polar", "gain_update": "td", "head_radius": RADIUS,
               "representation_step_size": schedules.inverse_time(1.0, 10.0)}
    paused = simulate.pause(small, steps=30, seed=5, **options)
    full = simulate.run(small, steps=30, seeds=[5], **options)
    for name in ("B", "heads", "eta"):
        np.testing.assert_array_equal(getattr(paused.trace, name), getattr(full, name))
    assert dict(paused.trace.settings) == {**full.settings, "record_every": 30}


def test_pause_without_reward_noise_reports_zero_noise(planted32) -> None:
    paused = simulate.pause(planted32, steps=3, step_size=0.1, seed=0)
    assert paused.noise.shape == (planted32.n_agents,) and not paused.noise.any()


def test_pause_refuses_a_seed_that_diverged_before_it(small) -> None:
    with pytest.raises(ValueError, match="seed 1 diverged after"):
        simulate.pause(small, steps=200, step_size=40.0, seed=1, divergence_threshold=1e3)


def test_reading_for_keeps_the_switches_a_learner_takes(small) -> None:
    reading = {"update_order": "heads_first", "gain_update": "td", "head_radius": 5.0,
               "retraction": "polar", "rebase_heads": True}
    assert simulate.reading_for("personalized", reading) == reading
    assert simulate.reading_for("oracle", reading) == {"gain_update": "td", "head_radius": 5.0}
    assert simulate.reading_for("fedtd", reading) == {"gain_update": "td"}
    # what it keeps, run accepts
    kept = simulate.reading_for("fedrep", reading)
    assert kept == {"gain_update": "td", "head_radius": 5.0, "retraction": "polar",
                    "rebase_heads": True}
    simulate.run(small, "fedrep", steps=4, step_size=0.05, seeds=1, **kept)


def test_every_reading_switch_is_a_keyword_of_run_and_of_pause_with_one_default() -> None:
    run, pause = (inspect.signature(f).parameters for f in (simulate.run, simulate.pause))
    for name in simulate.READING_SWITCHES:
        assert run[name].kind is pause[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert run[name].default == pause[name].default


def test_reading_for_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        simulate.reading_for("personalised", {})
    with pytest.raises(ValueError, match="unknown switches"):
        simulate.reading_for("personalized", {"update_order": "heads_first", "order": 1})
