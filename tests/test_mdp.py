"""Tests for ptdlib.mdp: exact planning, exact policy evaluation, factories, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import mdp


def two_state_mdp() -> tuple[np.ndarray, np.ndarray]:
    """Hand-solvable MDP: state 1 pays 1, action 1 ("switch") costs 0.1 and flips w.p. 0.8.

    Optimal: switch in state 0, stay in state 1. Then 0 -> 1 w.p. 0.8 and 1 -> 0 w.p. 0.1, so
    mu = (1/9, 8/9), J* = 8/9 - 0.1/9 = 79/90, and with h(0) = 0 the optimality equation in
    state 1, h1 = 1 - J* + 0.9 h1, gives h1 = 10 (1 - J*) = 11/9. The other three deterministic
    policies earn 1/2 (stay, stay), 1/2 - 0.1 (switch, switch) and, for (stay, switch),
    mu = (8/9, 1/9) times rewards (0, 0.9): 0.1.
    """
    P = np.zeros((1, 2, 2, 2))
    P[0, 0, 0] = [0.9, 0.1]
    P[0, 0, 1] = [0.2, 0.8]
    P[0, 1, 0] = [0.1, 0.9]
    P[0, 1, 1] = [0.8, 0.2]
    R = np.array([[[0.0, -0.1], [1.0, 0.9]]])
    return P, R


def random_mdps(rng: np.random.Generator, n_agents: int, n_states: int,
                n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    P = rng.dirichlet(np.ones(n_states), size=(n_agents, n_states, n_actions))
    return P, rng.normal(size=(n_agents, n_states, n_actions))


def stationary_by_eigenvector(P_pi: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eig(P_pi.T)
    v = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return v / v.sum()


# --------------------------------------------------------------------------- exact planning

def test_rvi_solves_the_two_state_example() -> None:
    P, R = two_state_mdp()
    result = mdp.relative_value_iteration(P, R)
    np.testing.assert_allclose(result.average_reward, [79 / 90], atol=1e-10)
    np.testing.assert_array_equal(result.policy, [[1, 0]])
    np.testing.assert_allclose(result.bias, [[0.0, 11 / 9]], atol=1e-9)


def test_lp_agrees_with_rvi_on_the_two_state_example() -> None:
    P, R = two_state_mdp()
    np.testing.assert_allclose(mdp.lp_average_reward(P, R), [79 / 90], atol=1e-8)


def test_every_deterministic_policy_of_the_two_state_example() -> None:
    P, R = two_state_mdp()
    expected = {(0, 0): 0.5, (1, 1): 0.4, (0, 1): 0.9 / 9, (1, 0): 79 / 90}
    for actions, J in expected.items():
        policy = mdp.deterministic_policy(np.array([actions]), 2)
        np.testing.assert_allclose(mdp.policy_average_reward(P, R, policy), [J], atol=1e-12)


def test_rvi_converges_when_the_optimal_chain_is_periodic() -> None:
    # Deterministic flips earn 1 and have period 2: plain value iteration oscillates, the
    # aperiodicity transform converges.
    P = np.zeros((1, 2, 2, 2))
    P[0, :, 0] = np.eye(2)
    P[0, :, 1] = np.eye(2)[::-1]
    R = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    result = mdp.relative_value_iteration(P, R)
    np.testing.assert_allclose(result.average_reward, [1.0], atol=1e-10)
    np.testing.assert_array_equal(result.policy, [[1, 1]])
    np.testing.assert_allclose(mdp.lp_average_reward(P, R), [1.0], atol=1e-8)


def test_rvi_reports_non_convergence_on_a_multichain_mdp() -> None:
    # Two absorbing states with different rewards: the optimal gain depends on the start state.
    P = np.zeros((1, 2, 1, 2))
    P[0, :, 0] = np.eye(2)
    R = np.array([[[0.0], [1.0]]])
    with pytest.raises(ValueError, match="did not converge in max_iter=50"):
        mdp.relative_value_iteration(P, R, max_iter=50)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_states=st.integers(2, 6), n_actions=st.integers(1, 4))
def test_rvi_and_lp_agree_and_greedy_policy_attains_the_optimum(seed: int, n_states: int,
                                                                 n_actions: int) -> None:
    rng = np.random.default_rng(seed)
    P, R = random_mdps(rng, 2, n_states, n_actions)
    result = mdp.relative_value_iteration(P, R)
    np.testing.assert_allclose(mdp.lp_average_reward(P, R), result.average_reward, atol=1e-8)
    np.testing.assert_allclose(mdp.greedy_average_reward(P, R, result.q), result.average_reward,
                               atol=1e-10)
    # No deterministic policy beats the optimum.
    actions = rng.integers(n_actions, size=(5, 2, n_states))
    J = mdp.policy_average_reward(P, R, mdp.deterministic_policy(actions, n_actions))
    assert np.all(result.average_reward + 1e-10 >= J)
    # (J*, q) solves the optimality equation q = R - J + P max q.
    rhs = R - result.average_reward[:, None, None] + np.einsum(
        "nsat,nt->nsa", P, result.q.max(axis=-1))
    np.testing.assert_allclose(result.q, rhs, atol=1e-9)


# --------------------------------------------------------------------------- exact evaluation

def test_policy_average_reward_equals_a_direct_stationary_computation() -> None:
    rng = np.random.default_rng(7)
    P, R = random_mdps(rng, 3, 5, 3)
    policy = rng.dirichlet(np.ones(3), size=(3, 5))
    J = mdp.policy_average_reward(P, R, policy)
    for i in range(3):
        P_pi = np.array([[sum(policy[i, s, a] * P[i, s, a, t] for a in range(3))
                          for t in range(5)] for s in range(5)])
        r_pi = np.array([policy[i, s] @ R[i, s] for s in range(5)])
        assert J[i] == pytest.approx(stationary_by_eigenvector(P_pi) @ r_pi, abs=1e-12)


def test_policy_action_values_solve_the_policy_bellman_equation() -> None:
    rng = np.random.default_rng(8)
    P, R = random_mdps(rng, 2, 4, 3)
    policy = mdp.epsilon_greedy_policy(rng.normal(size=(2, 4, 3)), 0.3)
    values = mdp.policy_action_values(P, R, policy)
    P_pi, _ = mdp.induced_chain(P, R, policy)
    mu = np.array([stationary_by_eigenvector(Pi) for Pi in P_pi])
    next_value = np.einsum("nsat,nt->nsa", P, np.sum(policy * values.q, axis=-1))
    np.testing.assert_allclose(values.q, R - values.average_reward[:, None, None] + next_value,
                               atol=1e-12)
    np.testing.assert_allclose(np.sum(mu * values.bias, axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(values.average_reward, mdp.policy_average_reward(P, R, policy),
                               atol=1e-14)


def test_evaluation_accepts_leading_batch_axes() -> None:
    rng = np.random.default_rng(9)
    P, R = random_mdps(rng, 2, 4, 2)
    q = rng.normal(size=(3, 2, 4, 2))
    batched = mdp.greedy_average_reward(P, R, q)
    assert batched.shape == (3, 2)
    for k in range(3):
        np.testing.assert_allclose(batched[k], mdp.greedy_average_reward(P, R, q[k]), rtol=0,
                                   atol=1e-14)


def test_behaviour_policies_known_values() -> None:
    q = np.array([[1.0, 3.0, 2.0]])
    np.testing.assert_allclose(mdp.epsilon_greedy_policy(q, 0.3), [[0.1, 0.8, 0.1]])
    np.testing.assert_allclose(mdp.epsilon_greedy_policy(q, 0.0), [[0.0, 1.0, 0.0]])
    z = np.exp([1.0, 3.0, 2.0])
    np.testing.assert_allclose(mdp.softmax_policy(q, 1.0), [z / z.sum()])
    np.testing.assert_array_equal(mdp.greedy_actions(q), [1])


# --------------------------------------------------------------------------- planted problems

def test_planted_action_values_are_optimal_and_realisable() -> None:
    problem = mdp.shared_structure_mdps(4, 8, 3, 6, 2, heterogeneity=0.7, rng=3)
    q_star = np.einsum("sad,dr,nr->nsa", problem.features, problem.B_star, problem.heads_star)
    # The RVI differential values equal the planted ones up to a constant per agent.
    offset = problem.optimal.q - q_star
    np.testing.assert_allclose(offset, offset[:, :1, :1] * np.ones_like(offset), atol=1e-9)
    # J_i* = R - q + P max q is the same for every (s, a) and equals the RVI gain.
    J = problem.rewards - q_star + np.einsum("nsat,nt->nsa", problem.P, q_star.max(axis=-1))
    np.testing.assert_allclose(J, problem.optimal.average_reward[:, None, None]
                               * np.ones_like(J), atol=1e-10)
    np.testing.assert_allclose(mdp.lp_average_reward(problem.P, problem.rewards),
                               problem.optimal.average_reward, atol=1e-8)
    assert np.max(mdp.realisability_residual(problem.optimal.q, problem.features,
                                             problem.B_star)) < 1e-9


def test_planted_features_are_centred_and_bounded() -> None:
    problem = mdp.shared_structure_mdps(3, 6, 3, 5, 2, heterogeneity=0.5, rng=4)
    Psi = problem.features.reshape(-1, 5)
    np.testing.assert_allclose(Psi.sum(axis=0), 0.0, atol=1e-12)
    assert np.max(np.linalg.norm(Psi, axis=1)) == pytest.approx(1.0, abs=1e-12)


def test_heterogeneity_zero_gives_identical_agents_and_draws_are_shared_across_h() -> None:
    same = mdp.shared_structure_mdps(3, 5, 2, 4, 2, heterogeneity=0.0, rng=5)
    np.testing.assert_array_equal(same.P, np.broadcast_to(same.P[0], same.P.shape))
    np.testing.assert_allclose(same.heads_star, np.broadcast_to(same.heads_star[0], (3, 2)))
    np.testing.assert_array_equal(same.optimal.policy, np.broadcast_to(same.optimal.policy[0],
                                                                       (3, 5)))
    other = mdp.shared_structure_mdps(3, 5, 2, 4, 2, heterogeneity=0.6, rng=5)
    np.testing.assert_array_equal(same.features, other.features)
    np.testing.assert_array_equal(same.B_star, other.B_star)
    assert not np.allclose(same.P, other.P)


def test_first_agents_do_not_depend_on_n_agents() -> None:
    small = mdp.shared_structure_mdps(2, 5, 2, 4, 2, heterogeneity=0.5, rng=6)
    large = mdp.shared_structure_mdps(5, 5, 2, 4, 2, heterogeneity=0.5, rng=6)
    np.testing.assert_array_equal(small.P, large.P[:2])
    np.testing.assert_array_equal(small.rewards, large.rewards[:2])
    np.testing.assert_array_equal(small.heads_star, large.heads_star[:2])


def test_subset_keeps_the_first_agents() -> None:
    problem = mdp.shared_structure_mdps(5, 5, 2, 4, 2, heterogeneity=0.5, rng=6)
    small = problem.subset(2)
    np.testing.assert_array_equal(small.P, problem.P[:2])
    np.testing.assert_array_equal(small.optimal.q, problem.optimal.q[:2])
    assert small.n_agents == 2 and small.rank == 2
    with pytest.raises(ValueError, match="n_agents must be <= 5"):
        problem.subset(6)


def test_problem_arrays_are_read_only() -> None:
    problem = mdp.shared_structure_mdps(2, 4, 2, 3, 1, heterogeneity=0.5, rng=0)
    with pytest.raises(ValueError, match="read-only"):
        problem.P[0, 0, 0, 0] = 1.0


def test_realisability_residual_known_cases() -> None:
    rng = np.random.default_rng(1)
    features = mdp.random_state_action_features(4, 3, 5, rng)
    B = np.linalg.qr(rng.normal(size=(5, 2)))[0]
    inside = np.einsum("sad,dr,r->sa", features, B, [1.0, -2.0]) + 3.0
    assert mdp.realisability_residual(inside, features, B) < 1e-12
    assert mdp.realisability_residual(np.full((4, 3), 2.0), features) == 0.0
    outside = mdp.realisability_residual(rng.normal(size=(7, 4, 3)), features, B)
    assert outside.shape == (7,) and np.all((outside > 0.1) & (outside <= 1.0))


# --------------------------------------------------------------------------- gridworlds

def test_gridworld_kernels_are_stochastic_and_optimal_policy_heads_to_the_goal() -> None:
    problem = mdp.gridworld_mdps(3, 4, 5, goals=[[0, 0], [3, 4], [2, 1]], slip=0.1)
    mdp.check_kernels(problem.P)
    layout = problem.layout
    rows, cols = np.divmod(np.arange(20), 5)
    for i, (goal_row, goal_col) in enumerate(layout.goal_positions()):
        distance = np.abs(rows - goal_row) + np.abs(cols - goal_col)
        move = mdp.ACTION_OFFSETS[problem.optimal.policy[i]]
        new_distance = np.abs(rows + move[:, 0] - goal_row) + np.abs(cols + move[:, 1] - goal_col)
        away = distance > 0
        np.testing.assert_array_equal(new_distance[away], distance[away] - 1)
    # Reaching the goal faster is worth more: a goal in the corner is slower to reach on average.
    J = problem.optimal.average_reward
    assert J[2] > J[0] and J[2] > J[1]


def test_gridworld_known_transition_rows() -> None:
    problem = mdp.gridworld_mdps(2, 3, 3, goals=[[1, 1], [0, 2]], wind=[0.0, 0.3], slip=0.2)
    # Goal cell: uniform restart whatever the action; acting there pays 1.
    np.testing.assert_allclose(problem.P[0, 4], np.full((4, 9), 1 / 9))
    np.testing.assert_array_equal(problem.rewards[1].sum(axis=1), 4 * np.eye(9)[2])
    # Agent 0 in cell 7 = (2, 1) takes "up": the intended cell 4 w.p. 0.8 + 0.2 / 4; right (8),
    # left (6) and down (a wall: stay in 7) w.p. 0.05 each.
    expected = np.zeros(9)
    expected[[4, 8, 7, 6]] = [0.85, 0.05, 0.05, 0.05]
    np.testing.assert_allclose(problem.P[0, 7, 0], expected, atol=1e-15)
    # Agent 1 then is pushed one row up w.p. 0.3 (4 -> 1, 8 -> 5, 7 -> 4, 6 -> 3).
    expected = np.zeros(9)
    expected[[4, 1, 8, 5, 7, 6, 3]] = [0.85 * 0.7 + 0.05 * 0.3, 0.85 * 0.3, 0.035, 0.015,
                                       0.035, 0.035, 0.015]
    np.testing.assert_allclose(problem.P[1, 7, 0], expected, atol=1e-15)


def test_gridworld_arrows_mark_goals_and_use_action_offsets() -> None:
    problem = mdp.gridworld_mdps(2, 2, 3, goals=[[0, 0], [1, 2]])
    d_row, d_col = problem.layout.arrows(problem.optimal.policy)
    assert d_row.shape == d_col.shape == (2, 2, 3)
    assert np.isnan(d_row[0, 0, 0]) and np.isnan(d_col[1, 1, 2])
    assert np.sum(np.isnan(d_row)) == 2
    with pytest.raises(ValueError, match="actions must be integers of shape"):
        problem.layout.arrows(np.zeros((2, 5), dtype=int))


def test_gridworld_random_goals_are_reproducible() -> None:
    a = mdp.gridworld_mdps(3, 3, 3, rng=11)
    b = mdp.gridworld_mdps(3, 3, 3, rng=11)
    np.testing.assert_array_equal(a.layout.goals, b.layout.goals)
    assert len(set(a.layout.goals.tolist())) == 3


# --------------------------------------------------------------------------- bad input

def good_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    P, R = two_state_mdp()
    return P, R, np.full((2, 2, 1), 0.5)


@pytest.mark.parametrize(("change", "message"), [
    (lambda P, R, F: (P[0], R, F), r"P must be 4-dimensional; got shape \(2, 2, 2\)"),
    (lambda P, R, F: (P[:, :, :, :1], R, F), "P must have shape"),
    (lambda P, R, F: (P * 1.01, R, F), r"P must be stochastic.*within 1e-10; P\[0, 0, 0\]"),
    (lambda P, R, F: (P - 0.2, R, F), "P must be non-negative"),
    # finiteness of P and rewards: as_float_array's rule (tests/test_validation.py), called here
    # as the 4-dimensional rule above shows
    (lambda P, R, F: (P, R[:, :1], F), r"rewards must have shape .* \(1, 2, 2\)"),
    (lambda P, R, F: (P, R, F[:1]), "features must have shape"),
    (lambda P, R, F: (P, R, 3 * F), r"features must have \|\|psi\(s, a\)\|\| <= 1; got 1.5"),
])
def test_check_mdp_rejects_bad_arrays(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        mdp.check_mdp(*change(*good_arrays()))


def test_row_sum_tolerance_is_1e_10() -> None:
    P, R, F = good_arrays()
    P[0, 0, 0] = [0.9 + 5e-11, 0.1]
    mdp.check_mdp(P, R, F)
    P[0, 0, 0] = [0.9 + 5e-10, 0.1]
    with pytest.raises(ValueError, match=r"sums to 1\.0000000005"):
        mdp.check_mdp(P, R, F)


def test_from_arrays_validates_and_requires_both_planted_fields() -> None:
    P, R, F = good_arrays()
    problem = mdp.ControlProblem.from_arrays(P, R, F)
    assert problem.optimal.average_reward[0] == pytest.approx(79 / 90)
    with pytest.raises(ValueError, match="B_star and heads_star must be given together"):
        mdp.ControlProblem.from_arrays(P, R, F, B_star=np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"B_star must be \(dim, rank\)"):
        mdp.ControlProblem.from_arrays(P, R, F, B_star=np.array([[1.0], [0.0]]),
                                       heads_star=np.ones((1, 1)))
    with pytest.raises(ValueError, match="B_star must have orthonormal columns"):
        mdp.ControlProblem.from_arrays(P, R, F, B_star=[[2.0]], heads_star=[[1.0]])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: mdp.epsilon_greedy_policy(np.zeros((2, 2)), 1.5),
     r"epsilon must lie in \[0.0, 1.0\]; got 1.5"),
    (lambda: mdp.softmax_policy(np.zeros((2, 2)), 0.0), "temperature must lie in"),
    (lambda: mdp.greedy_actions(np.zeros(3)), "q must have shape"),
    (lambda: mdp.deterministic_policy(np.array([0, 2]), 2),
     r"actions must be integers in \[0, 2\)"),
    (lambda: mdp.induced_chain(*two_state_mdp(), np.full((1, 2, 2), 0.6)),
     "policy rows must be probability vectors"),
    (lambda: mdp.relative_value_iteration(*two_state_mdp(), aperiodicity=1.0),
     "aperiodicity must lie in"),
    (lambda: mdp.shared_structure_mdps(2, 4, 2, 8, 2, heterogeneity=0.5),
     "dim must be < n_states"),
    (lambda: mdp.shared_structure_mdps(2, 4, 2, 3, 4, heterogeneity=0.5), "rank must be <= dim"),
    (lambda: mdp.shared_structure_mdps(2, 4, 2, 3, 2, heterogeneity=1.5),
     "heterogeneity must lie in"),
    (lambda: mdp.shared_structure_mdps(2, 4, 2, 3, 2, teleport=0.0), "teleport must lie in"),
    (lambda: mdp.gridworld_mdps(2, 3, 3, slip=0.0), "slip must lie in"),
    (lambda: mdp.gridworld_mdps(2, 3, 3, wind=[0.1, 1.0]), "wind must be"),
    (lambda: mdp.gridworld_mdps(2, 3, 3, goals=[[0, 0], [3, 0]]), "goals must be"),
    (lambda: mdp.gridworld_mdps(1, 1, 1), "at least 2 cells"),
])
def test_bad_arguments_raise(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()
