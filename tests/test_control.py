"""Tests for ptdlib.control: the SARSA learners, their random-number protocol and the experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ptdlib import control, markov, mdp, schedules


@pytest.fixture(scope="module")
def planted() -> mdp.ControlProblem:
    """Small planted family: 8 agents (= 4 r), 10 states, 3 actions, dim 12, rank 2."""
    return mdp.shared_structure_mdps(8, 10, 3, 12, 2, heterogeneity=1.0, rng=0)


@pytest.fixture(scope="module")
def grid() -> mdp.ControlProblem:
    return mdp.gridworld_mdps(4, 4, 4, slip=0.1, rng=0)


def quick(**changes) -> control.ControlConfig:
    return control.ControlConfig(**({"steps": 40, "record_every": 10} | changes))


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize(("changes", "message"), [
    # one bad value per field; the other bad values of each validator: test_validation.py
    ({"epsilon": 1.5}, r"epsilon must lie in \[0.0, 1.0\]; got 1.5"),
    ({"steps": 0}, "steps must be an integer >= 1; got 0"),
    ({"record_every": 2.5}, "record_every must be an integer"),
    ({"alpha": -0.1}, r"alpha must lie in \(0.0, inf\); got -0.1"),
    ({"exploration": "boltzmann"}, "exploration must be one of"),
    ({"temperature": 0.0}, "temperature must lie in"),
    ({"rank": 0}, "rank must be an integer >= 1; got 0"),
    ({"c_B": 0.0}, "c_B must lie in"),
    ({"c_eta": -1.0}, "c_eta must lie in"),
    ({"rebase_heads": 1}, "rebase_heads must be a bool"),
])
def test_config_rejects_bad_values(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        quick(**changes)


def test_config_accepts_a_schedule() -> None:
    assert quick(alpha=schedules.inverse_time(1.0, 10.0)).alpha.kind == "inverse_time"


@pytest.mark.parametrize(("args", "message"), [
    (("greedy",), "learner must be one of"),
    (("independent", "not a config"), "config must be a ControlConfig"),
    (("independent", None, [1, 1]), "distinct"),
    (("independent", None, [-1]), "seeds"),
    (("personalized", quick(rank=13)), r"needs 1 <= rank <= dim = 12"),
])
def test_run_learner_rejects_bad_arguments(planted, args, message) -> None:
    learner, config, seeds = (*args, None, None)[:3]
    with pytest.raises(ValueError, match=message):
        control.run_learner(planted, learner, config or quick(), [0] if seeds is None else seeds)


def test_personalized_needs_a_rank_on_problems_without_one(grid) -> None:
    with pytest.raises(ValueError, match="needs 1 <= rank"):
        control.run_learner(grid, "personalized", quick(), [0])
    assert control.run_learner(grid, "personalized", quick(rank=3), [0]).B.shape == (1, 64, 3)


def test_not_a_problem_is_rejected() -> None:
    with pytest.raises(ValueError, match="problem must be a ControlProblem"):
        control.run_learner("problem", "independent", quick(), [0])


def test_divergence_is_reported_with_its_step(planted) -> None:
    with pytest.raises(control.LearnerDiverged,
                       match=r"independent learner diverged at step \d+"):
        control.run_learner(planted, "independent", quick(alpha=200.0, steps=200), [0])


# --------------------------------------------------------------------------- steps and protocol

def test_differential_gain_step_known_value() -> None:
    eta = control.differential_gain_step(np.array([1.0, 0.0]), np.array([2.0, -1.0]), 0.1, 0.5)
    np.testing.assert_allclose(eta, [1.1, -0.05], atol=1e-15)


def test_first_step_follows_the_documented_random_number_protocol(planted) -> None:
    config = quick(steps=1, record_every=1, alpha=0.3, c_eta=0.5)
    trace = control.run_learner(planted, "independent", config, [5])
    tables = markov.alias_tables(np.swapaxes(planted.P, 1, 2).reshape(-1, 10, 10))
    for i in range(planted.n_agents):
        gen = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(i,)))
        u0, u1 = gen.random(2), gen.random((1, 2))[0]
        s = int(u0[0] * 10)
        # At Q = 0 every action ties; argmax picks action 0: pi = (0.1/3 + 0.9, 0.1/3, 0.1/3).
        a = int(np.searchsorted(np.cumsum([0.1 / 3 + 0.9, 0.1 / 3, 0.1 / 3]), u0[1], "right"))
        s_next = markov.sample_next_states(tables, i * 3 + a, s, u1[0])
        assert 0 <= s_next < 10
        delta = planted.rewards[i, s, a]  # r - eta + (psi' - psi)^T theta with eta = theta = 0
        np.testing.assert_allclose(trace.theta[0, i], 0.3 * delta * planted.features[s, a],
                                   atol=1e-15)
        assert trace.eta[0, i] == pytest.approx(0.5 * 0.3 * delta, abs=1e-15)


@pytest.mark.parametrize("learner", control.LEARNERS)
def test_learners_are_deterministic_given_the_seed(planted, learner) -> None:
    config = quick(steps=120, record_every=40)
    first = control.run_learner(planted, learner, config, [3, 4])
    again = control.run_learner(planted, learner, config, [3, 4])
    np.testing.assert_array_equal(first.average_reward, again.average_reward)
    np.testing.assert_array_equal(first.theta, again.theta)
    other = control.run_learner(planted, learner, config, [5, 6])
    assert not np.array_equal(first.theta, other.theta)


def test_softmax_exploration_is_deterministic_and_differs_from_epsilon_greedy(planted) -> None:
    config = quick(exploration="softmax", temperature=0.5)
    first = control.run_learner(planted, "independent", config, [0])
    np.testing.assert_array_equal(first.theta,
                                  control.run_learner(planted, "independent", config, [0]).theta)
    assert not np.array_equal(first.theta,
                              control.run_learner(planted, "independent", quick(), [0]).theta)


def test_common_random_numbers_across_n(planted) -> None:
    # Independent agents do not interact, so with agent streams that do not depend on N the
    # first two agents of a 2-agent and an 8-agent run are the same computation.
    config = quick(steps=200, record_every=50)
    small = control.run_learner(planted.subset(2), "independent", config, [0, 1])
    large = control.run_learner(planted, "independent", config, [0, 1])
    np.testing.assert_array_equal(small.theta, large.theta[:, :2])
    np.testing.assert_array_equal(small.average_reward, large.average_reward[:, :, :2])


def test_structural_invariants_of_the_learners(planted) -> None:
    config = quick(steps=200, record_every=100)
    personal = control.run_learner(planted, "personalized", config, [0, 1])
    B = personal.B
    np.testing.assert_allclose(np.swapaxes(B, 1, 2) @ B, np.broadcast_to(np.eye(2), (2, 2, 2)),
                               atol=1e-12)
    # theta_i = B w_i lies in span(B).
    residual = personal.theta - np.einsum("kdr,ker,kne->knd", B, B, personal.theta)
    assert np.max(np.abs(residual)) < 1e-12
    federated = control.run_learner(planted, "federated", config, [0])
    np.testing.assert_allclose(federated.theta, np.broadcast_to(federated.theta[:, :1],
                                                                federated.theta.shape), atol=0)
    assert control.run_learner(planted, "independent", config, [0]).B is None


def test_gaps_are_exact_and_non_negative(planted) -> None:
    trace = control.run_learner(planted, "independent", quick(), [0, 1])
    assert trace.steps.tolist() == [0, 10, 20, 30, 40]
    assert np.all(trace.gap >= -1e-12)
    # Before learning Q = 0 and the greedy policy takes action 0 everywhere.
    always_0 = mdp.deterministic_policy(np.zeros((8, 10), dtype=np.int64), 3)
    np.testing.assert_allclose(trace.average_reward[:, 0],
                               np.broadcast_to(mdp.policy_average_reward(
                                   planted.P, planted.rewards, always_0), (2, 8)), atol=1e-14)


# --------------------------------------------------------------------------- learning

def test_greedy_actions_reproduce_the_last_record(grid) -> None:
    trace = control.run_learner(grid, "independent", quick(steps=300, record_every=300), [0])
    actions = trace.greedy_actions(grid.features)
    assert actions.shape == (1, 4, 16)
    J = mdp.policy_average_reward(grid.P, grid.rewards, mdp.deterministic_policy(actions, 4))
    np.testing.assert_allclose(J, trace.average_reward[:, -1], atol=1e-14)
    assert grid.layout.arrows(actions[0])[0].shape == (4, 4, 4)


def test_independent_tabular_learners_reduce_the_gap(grid) -> None:
    # Centred one-hot features on a 4 x 4 gridworld (64 state-action pairs), 2000 steps. On
    # four gridworld draws the tail gap, averaged over 3 seeds, fell to 0.06-0.24 of the
    # initial gap (about 0.26); requiring a halving leaves a factor-2 margin.
    trace = control.run_learner(grid, "independent", control.ControlConfig(
        steps=2000, alpha=0.3, record_every=250), [0, 1, 2])
    gap = trace.gap.mean(axis=2)
    assert gap[:, -3:].mean() < 0.5 * gap[:, 0].mean()


def test_personalized_learner_reduces_the_gap(planted) -> None:
    # Default config (alpha 0.4, c_B 0.05) from a Haar-random B. On four problem draws the tail
    # gap, averaged over 4 seeds, was 0.015-0.06 of the initial gap (0.6-1.1) and the
    # seed-mean curve kept falling; 0.2 leaves more than a factor-3 margin. A second,
    # weaker check: the tail is below the early phase (records 1-2), i.e. learning continues.
    trace = control.run_learner(planted, "personalized", control.ControlConfig(
        steps=2000, record_every=250), [0, 1, 2, 3])
    gap = trace.gap.mean(axis=2).mean(axis=0)
    assert gap[-3:].mean() < 0.2 * gap[0]
    assert gap[-3:].mean() < gap[1:3].mean()


# --------------------------------------------------------------------------- experiment tables

@pytest.fixture(scope="module")
def experiment() -> pd.DataFrame:
    spec = control.MDPSpec(n_states=6, n_actions=2, dim=4, rank=1, seed=2)
    return control.run_experiment(spec, quick(steps=60, record_every=20), n_agents=[1, 2],
                                  heterogeneity=[0.0, 1.0], seeds=[0, 1])


def test_experiment_frame_is_tidy(experiment) -> None:
    assert list(experiment.columns) == ["learner", "n_agents", "heterogeneity", "seed", "step",
                                        "average_reward", "optimal_average_reward", "gap"]
    assert len(experiment) == 3 * 2 * 2 * 2 * 4
    assert np.all(experiment["gap"] >= -1e-12)
    np.testing.assert_allclose(experiment["gap"], experiment["optimal_average_reward"]
                               - experiment["average_reward"], atol=1e-15)
    # Same start (Q = 0) for every learner: equal gaps at step 0 within each condition and seed.
    start = experiment[experiment["step"] == 0]
    assert start.groupby(["n_agents", "heterogeneity", "seed"])["gap"].nunique().max() == 1


def test_summarise_gives_intervals_around_the_mean(experiment) -> None:
    summary = control.summarise(experiment)
    assert len(summary) == 3 * 2 * 2 * 4 and set(summary["n_seeds"]) == {2}
    assert np.all(summary["gap_low"] <= summary["gap"] + 1e-15)
    assert np.all(summary["gap"] <= summary["gap_high"] + 1e-15)
    # every row recomputed from the raw per-seed values: mean +- t_{0.975, n-1} sd / sqrt(n)
    for _, row in summary.iterrows():
        seeds = experiment[(experiment["learner"] == row["learner"])
                           & (experiment["n_agents"] == row["n_agents"])
                           & (experiment["heterogeneity"] == row["heterogeneity"])
                           & (experiment["step"] == row["step"])]
        for column in ("gap", "average_reward"):
            x = seeds[column].to_numpy()
            half = scipy_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
            # O(1) values, two seeds: agreement to round-off
            assert row[column] == pytest.approx(x.mean(), rel=1e-12, abs=1e-14)
            assert row[f"{column}_low"] == pytest.approx(x.mean() - half, rel=1e-12, abs=1e-14)
            assert row[f"{column}_high"] == pytest.approx(x.mean() + half, rel=1e-12, abs=1e-14)


def _tail_gaps_by_hand(experiment: pd.DataFrame, tail: float) -> dict[tuple, float]:
    """Per (learner, n_agents, heterogeneity, seed): mean gap over steps >= (1 - tail) * last."""
    gaps: dict[tuple, float] = {}
    for row in experiment[["learner", "n_agents", "heterogeneity", "seed"]].drop_duplicates(
            ).itertuples(index=False):
        rows = experiment[(experiment["learner"] == row.learner)
                          & (experiment["n_agents"] == row.n_agents)
                          & (experiment["heterogeneity"] == row.heterogeneity)
                          & (experiment["seed"] == row.seed)]
        steps, gap = rows["step"].to_numpy(), rows["gap"].to_numpy()
        gaps[tuple(row)] = float(gap[steps >= (1 - tail) * steps.max()].mean())
    return gaps


def test_final_gaps_and_paired_differences(experiment) -> None:
    tail = 0.5
    by_hand = _tail_gaps_by_hand(experiment, tail)
    final = control.final_gaps(experiment, tail=tail)
    assert len(final) == len(by_hand) == 3 * 2 * 2 * 2
    for row in final.itertuples(index=False):
        # the same few additions in another order: equal to round-off
        assert row.gap == pytest.approx(by_hand[(row.learner, row.n_agents, row.heterogeneity,
                                                 row.seed)], rel=1e-12, abs=1e-15)
    diff = control.paired_difference(experiment, "independent", "personalized", tail=tail)
    assert list(diff.columns) == ["n_agents", "heterogeneity", "difference", "low", "high",
                                  "n_seeds"]
    assert len(diff) == 4
    # Recomputed from the raw per-seed gaps: d_s = tail gap(independent) - tail gap(personalized)
    # for each seed s, then mean(d) +- t_{0.975, n-1} sd(d) / sqrt(n), with numpy and scipy.
    for row in diff.itertuples(index=False):
        seeds = sorted(experiment["seed"].unique())
        d = np.array([by_hand[("independent", row.n_agents, row.heterogeneity, s)]
                      - by_hand[("personalized", row.n_agents, row.heterogeneity, s)]
                      for s in seeds])
        half = scipy_stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
        assert row.n_seeds == d.size == 2
        # differences of O(1) gaps: agreement to round-off, 1e-12 of the scale
        assert row.difference == pytest.approx(d.mean(), rel=1e-12, abs=1e-14)
        assert row.low == pytest.approx(d.mean() - half, rel=1e-12, abs=1e-14)
        assert row.high == pytest.approx(d.mean() + half, rel=1e-12, abs=1e-14)
    assert np.any(diff["high"] > diff["low"])  # the seeds differ: a real interval, not a point
    with pytest.raises(ValueError, match="worse and better must be learners"):
        control.paired_difference(experiment, "oracle", "personalized")
    with pytest.raises(ValueError, match="tail must lie in"):
        control.final_gaps(experiment, tail=0.0)


def test_run_experiment_rejects_bad_arguments() -> None:
    spec = control.MDPSpec(n_states=4, n_actions=2, dim=3, rank=1)
    with pytest.raises(ValueError, match="spec must be an MDPSpec"):
        control.run_experiment("spec", quick(), n_agents=[1], heterogeneity=[0.0], seeds=[0])
    with pytest.raises(ValueError, match="learners a subset of"):
        control.run_experiment(spec, quick(), n_agents=[1], heterogeneity=[0.0], seeds=[0],
                               learners=["oracle"])
    with pytest.raises(ValueError, match="heterogeneity must lie in"):
        control.run_experiment(spec, quick(), n_agents=[1], heterogeneity=[2.0], seeds=[0])
