"""Tests for ptdlib.envs: gymnasium's tables as continuing MDPs and MRPs, and the families."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.toy_text.frozen_lake import generate_random_map
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import envs, markov, mdp, td
from ptdlib.problems import Problem

# Exact quantities (hand-computed tables, identities) hold up to round-off of O(n) operations.
EXACT = 1e-12
# FrozenLake actions.
LEFT, DOWN, RIGHT, UP = range(4)


def frozenlake(desc: list[str], success_rate: float | None = None) -> gym.Env:
    if success_rate is None:
        return gym.make("FrozenLake-v1", desc=desc, is_slippery=False)
    return gym.make("FrozenLake-v1", desc=desc, is_slippery=True, success_rate=success_rate)


def uniform(n_states: int, n_actions: int = 4) -> np.ndarray:
    return np.full((n_states, n_actions), 1.0 / n_actions)


# ------------------------------------------------------------------------ known answers, 2 x 2

# The map  S F    cells 0 1    moves: LEFT, DOWN, RIGHT, UP; walls keep the agent in place.
#          F G          2 3
# Deterministic moves: 0 -> (L 0, D 2, R 1, U 0); 1 -> (L 0, D 3, R 1, U 1);
# 2 -> (L 2, D 2, R 3, U 0). Entering the goal 3 pays 1 and ends the episode; the next step is the
# reset 3 -> 0 (reward 0, whatever the action). Under the uniform policy:
#   P_pi = [[1/2, 1/4, 1/4, 0], [1/4, 1/2, 0, 1/4], [1/4, 0, 1/2, 1/4], [1, 0, 0, 0]],
#   r_pi = (0, 1/4, 1/4, 0).
# Balance: mu_3 = mu_1 / 4 + mu_2 / 4 and mu_1 = mu_0 / 4 + mu_1 / 2, with mu_1 = mu_2 by symmetry:
# mu_0 = 2 mu_1, mu_3 = mu_1 / 2, so mu = (4, 2, 2, 1) / 9 and J = mu^T r_pi = 1/9 = mu_3 (the rate
# of entering the goal).
TWO_BY_TWO = ["SF", "FG"]
P_UNIFORM_2X2 = np.array([[2, 1, 1, 0], [1, 2, 0, 1], [1, 0, 2, 1], [4, 0, 0, 0]]) / 4
R_UNIFORM_2X2 = np.array([0, 1, 1, 0]) / 4


def test_deterministic_2x2_table_by_hand() -> None:
    P, R = envs.mdp_from_gymnasium(frozenlake(TWO_BY_TWO))
    moves = [[0, 2, 1, 0], [0, 3, 1, 1], [2, 2, 3, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(P, np.eye(4)[moves])
    np.testing.assert_array_equal(R, [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(envs.terminal_states(frozenlake(TWO_BY_TWO)), [3])


def test_slippery_2x2_row_by_hand() -> None:
    # RIGHT from 0 with success rate 1/3: right -> 1, up (a wall) -> 0, down -> 2, 1/3 each.
    P, R = envs.mdp_from_gymnasium(frozenlake(TWO_BY_TWO, success_rate=1 / 3))
    np.testing.assert_allclose(P[0, RIGHT], [1 / 3, 1 / 3, 1 / 3, 0], rtol=0, atol=EXACT)
    # DOWN from 1 with success rate 0.8: down -> goal (0.8), left -> 0 and right -> 1 (0.1 each).
    P, R = envs.mdp_from_gymnasium(frozenlake(TWO_BY_TWO, success_rate=0.8))
    np.testing.assert_allclose(P[1, DOWN], [0.1, 0.1, 0, 0.8], rtol=0, atol=EXACT)
    assert R[1, DOWN] == pytest.approx(0.8, abs=EXACT)


def test_uniform_mrp_2x2_by_hand() -> None:
    P_pi, r_pi = envs.mrp_from_gymnasium(frozenlake(TWO_BY_TWO), uniform(4))
    np.testing.assert_allclose(P_pi, P_UNIFORM_2X2, rtol=0, atol=EXACT)
    np.testing.assert_allclose(r_pi, R_UNIFORM_2X2, rtol=0, atol=EXACT)
    np.testing.assert_allclose(markov.stationary_distribution(P_pi), np.array([4, 2, 2, 1]) / 9,
                               rtol=0, atol=EXACT)
    assert td.average_reward(P_pi, r_pi) == pytest.approx(1 / 9, abs=EXACT)


@pytest.mark.parametrize("success_rate", [0.0, 1 / 3, 0.8, 1.0])
def test_slip_is_invisible_under_the_uniform_policy(success_rate: float) -> None:
    # Action a moves a, a - 1 or a + 1 (mod 4); averaged over uniform a, each direction has 1/4.
    P_pi, r_pi = envs.mrp_from_gymnasium(frozenlake(TWO_BY_TWO, success_rate), uniform(4))
    np.testing.assert_allclose(P_pi, P_UNIFORM_2X2, rtol=0, atol=EXACT)
    np.testing.assert_allclose(r_pi, R_UNIFORM_2X2, rtol=0, atol=EXACT)


def test_restart_mixes_rows_with_the_uniform_law() -> None:
    eps = 0.1
    P, R = envs.mdp_from_gymnasium(frozenlake(TWO_BY_TWO))
    P_eps, R_eps = envs.mdp_from_gymnasium(frozenlake(TWO_BY_TWO), restart=eps)
    np.testing.assert_allclose(P_eps, (1 - eps) * P + eps / 4, rtol=0, atol=EXACT)
    np.testing.assert_allclose(R_eps, (1 - eps) * R, rtol=0, atol=EXACT)
    P_pi, r_pi = envs.mrp_from_gymnasium(frozenlake(TWO_BY_TWO), uniform(4), restart=eps)
    np.testing.assert_allclose(P_pi, (1 - eps) * P_UNIFORM_2X2 + eps / 4, rtol=0, atol=EXACT)
    np.testing.assert_allclose(r_pi, (1 - eps) * R_UNIFORM_2X2, rtol=0, atol=EXACT)


def test_terminal_states_of_the_three_environments() -> None:
    # FrozenLake 4x4: holes 5, 7, 11, 12 and the goal 15; CliffWalking: the goal (3, 11) = 47;
    # Taxi: the passenger delivered at R, G, Y, B (taxi there, passenger = destination).
    np.testing.assert_array_equal(envs.terminal_states(gym.make("FrozenLake-v1")),
                                  [5, 7, 11, 12, 15])
    np.testing.assert_array_equal(envs.terminal_states(gym.make("CliffWalking-v1")), [47])
    taxi = gym.make("Taxi-v4").unwrapped
    np.testing.assert_array_equal(
        envs.terminal_states(taxi),
        sorted(taxi.encode(*loc, d, d) for d, loc in enumerate(taxi.locs)))


def test_terminal_rows_reset_whatever_gymnasium_tabulates() -> None:
    # CliffWalking's goal row in gymnasium is an ordinary move; the continuing chain resets.
    P, R = envs.mdp_from_gymnasium(gym.make("CliffWalking-v1"))
    np.testing.assert_array_equal(P[47], np.tile(np.eye(48)[36], (4, 1)))
    np.testing.assert_array_equal(R[47], 0.0)
    # Entering the goal pays gymnasium's -1 (RIGHT from (3, 10) is the cliff; DOWN from (2, 11)).
    assert P[35, 2, 47] == 1.0 and R[35, 2] == -1.0


def test_rainy_taxi_at_probability_one_is_the_dry_taxi() -> None:
    dry = envs.mdp_from_gymnasium(gym.make("Taxi-v4"))
    rainy = envs.mdp_from_gymnasium(gym.make("Taxi-v4", is_rainy=True, rainy_probability=1.0))
    for a, b in zip(dry, rainy, strict=True):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(size=st.integers(2, 5), p=st.floats(0.6, 1.0), success_rate=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**31 - 1))
def test_tables_of_random_maps(size: int, p: float, success_rate: float, seed: int) -> None:
    desc = generate_random_map(size=size, p=p, seed=seed)
    env = frozenlake(desc, success_rate)
    P, R = envs.mdp_from_gymnasium(env)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=0, atol=EXACT)
    terminal = envs.terminal_states(env)
    letters = np.array(list("".join(desc)))
    np.testing.assert_array_equal(terminal, np.flatnonzero(np.isin(letters, ["H", "G"])))
    reset = np.broadcast_to(np.arange(size * size) == 0, (terminal.size, 4, size * size))
    np.testing.assert_array_equal(P[terminal], reset)
    # Reward 1 exactly for entering the goal: R(s, a) = Pr(s -> goal), 0 from terminal states.
    from_open_cells = ~np.isin(np.arange(size * size), terminal)[:, None]
    np.testing.assert_allclose(R, P[:, :, -1] * from_open_cells, rtol=0, atol=EXACT)


class TableEnv:
    """A bare environment with a hand-written table (one action per state)."""

    def __init__(self, table: dict, rho: list[float]) -> None:
        self.P = {s: {0: outcomes} for s, outcomes in table.items()}
        self.initial_state_distrib = np.array(rho)
        self.observation_space = gym.spaces.Discrete(len(table))
        self.action_space = gym.spaces.Discrete(1)


def test_ambiguous_terminal_state_is_rejected() -> None:
    # State 1 is entered from 0 with terminated=True and from 2 with terminated=False.
    env = TableEnv({0: [(0.5, 1, 1.0, True), (0.5, 2, 0.0, False)],
                    1: [(1.0, 1, 0.0, True)], 2: [(1.0, 1, 0.0, False)]}, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"enters terminal state 1 with terminated=False from "
                                         r"state 2, action 0"):
        envs.mdp_from_gymnasium(env)


def test_table_rows_must_be_distributions() -> None:
    env = TableEnv({0: [(0.5, 1, 0.0, False)], 1: [(1.0, 0, 0.0, False)]}, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"env.unwrapped.P\[0\]\[0\] must be a distribution"):
        envs.mdp_from_gymnasium(env)
    env = TableEnv({0: [(1.0, 1, 0.0, False)], 1: [(1.0, 0, 0.0, False)]}, [0.5, 0.6])
    with pytest.raises(ValueError, match=r"initial_state_distrib must be a distribution"):
        envs.mdp_from_gymnasium(env)


# ---------------------------------------------------------------------------- planning answers

# Deterministic moves, reward 1 for entering the goal, and the reset as one step: the best cycle is
# a shortest path to the goal (L moves) plus the reset, so J* = 1 / (L + 1). 2x2: L = 2 (right,
# down), J* = 1/3. 3x3 with a hole in the centre: L = 4 around it, J* = 1/5. 8x8 (gymnasium's
# map): L = 14, J* = 1/15. CliffWalking: 13 moves (up, 11 right, down) of reward -1, then the
# reset of reward 0, J* = -13/14.
@pytest.mark.parametrize(("env", "gain"), [
    (lambda: frozenlake(TWO_BY_TWO), 1 / 3),
    (lambda: frozenlake(["SFF", "FHF", "FFG"]), 1 / 5),
    (lambda: gym.make("FrozenLake-v1", map_name="8x8", is_slippery=False), 1 / 15),
    (lambda: gym.make("CliffWalking-v1"), -13 / 14),
])
def test_optimal_gain_of_deterministic_maps(env, gain: float) -> None:
    P, R = envs.mdp_from_gymnasium(env())
    result = mdp.relative_value_iteration(P[None], R[None])
    assert result.average_reward[0] == pytest.approx(gain, abs=1e-9)


# ----------------------------------------------------------------- against gymnasium's own step


def empirical_transitions(env: gym.Env, policy: np.ndarray, steps: int,
                          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(state, next state, reward) of ``steps`` steps of step(); if terminated: reset().

    The reset is its own step (reward 0), so each terminal observation is a state of the chain.
    Actions and the environment use independent streams: gymnasium seeds its np_random exactly
    like np.random.default_rng(seed), so one seed for both would correlate them.
    """
    base = env.unwrapped
    action_seed, env_seed = np.random.SeedSequence(seed).spawn(2)
    u = np.random.default_rng(action_seed).random(steps)
    cdf = np.cumsum(policy, axis=1)
    s, _ = base.reset(seed=int(env_seed.generate_state(1)[0]))
    out = np.empty((steps, 3))
    terminated = False
    for t in range(steps):
        if terminated:
            nxt, reward = base.reset()[0], 0.0
            terminated = False
        else:
            a = min(int(np.searchsorted(cdf[s], u[t], side="right")), policy.shape[1] - 1)
            nxt, reward, terminated, _, _ = base.step(a)
        out[t] = s, nxt, reward
        s = nxt
    return out[:, 0].astype(int), out[:, 1].astype(int), out[:, 2]


# Per state s, the next states after its first k visits are k i.i.d. draws from P_pi(s, .)
# (strong Markov property: think of one pre-drawn stack of draws per state). With m the size of
# the support of P_pi(s, .), Bretagnolle-Huber-Carol gives
#     Pr(TV(empirical, P_pi(s, .)) >= eps) <= 2^m exp(-2 k eps^2),
# and Hoeffding for rewards in [0, 1]: Pr(|mean - r_pi(s)| >= t) <= 2 exp(-2 k t^2).
# k is the largest power of 2 <= min(visits, 4096), at least 64: a union bound over the 7
# possible k, the n states and the two checks gives each bound the false-alarm probability
# DELTA / (14 n), so the test fails by chance with probability <= DELTA = 1e-9. At k = 4096,
# eps ~ 0.06; a wrong reading (a dropped slip, a skipped or missing reset step) moves whole rows
# by 0.1 to 1, and leaving the support (e.g. a terminal row not resetting) fails outright.
DELTA = 1e-9
MIN_VISITS, MAX_VISITS = 64, 4096


@pytest.mark.parametrize(("env", "steps"), [
    (lambda: gym.make("FrozenLake-v1", success_rate=0.6), 150_000),
    (lambda: frozenlake(["SFF", "FHF", "FFG"]), 60_000),
])
def test_mrp_matches_gymnasium_step_and_reset(env, steps: int) -> None:
    env = env()
    n = env.observation_space.n
    # Far from uniform, every action possible: the uniform policy would hide the slip.
    policy = 0.5 / 4 + 0.5 * np.random.default_rng(1).dirichlet(np.ones(4), size=n)
    P_pi, r_pi = envs.mrp_from_gymnasium(env, policy)
    s, nxt, reward = empirical_transitions(env, policy, steps, seed=11)
    n_sizes = int(np.log2(MAX_VISITS // MIN_VISITS)) + 1
    log_alarm = np.log(2 * n_sizes * n / DELTA)
    for state in range(n):
        visits = np.flatnonzero(s == state)
        assert visits.size >= MIN_VISITS, f"state {state} visited {visits.size} times"
        k = 2 ** int(np.log2(min(visits.size, MAX_VISITS)))
        first = visits[:k]
        support = P_pi[state] > 0
        counts = np.bincount(nxt[first], minlength=n)
        assert not np.any(counts[~support]), f"state {state} moved outside the support of P_pi"
        eps = np.sqrt((support.sum() * np.log(2) + log_alarm) / (2 * k))
        tv = 0.5 * np.abs(counts / k - P_pi[state]).sum()
        assert tv < eps, f"state {state}: TV {tv:.3f} >= {eps:.3f} after {k} visits"
        t = np.sqrt((np.log(2) + log_alarm) / (2 * k))
        assert abs(reward[first].mean() - r_pi[state]) < t


# --------------------------------------------------------------------------------- bad input


def test_env_without_a_table() -> None:
    with pytest.raises(ValueError, match=r"env must expose a transition table.*CartPoleEnv"):
        envs.mdp_from_gymnasium(gym.make("CartPole-v1"))


def test_fickle_taxi_is_rejected() -> None:
    with pytest.raises(ValueError, match="fickle_passenger"):
        envs.mdp_from_gymnasium(gym.make("Taxi-v4", fickle_passenger=True))


@pytest.mark.parametrize(("policy", "match"), [
    (np.full((4, 3), 1 / 3), r"policy must have shape \(n_states, n_actions\) = \(4, 4\)"),
    (np.full((4, 4), 0.2), r"policy rows must be probability vectors.*row 0"),
    (np.tile([1.5, -0.5, 0.0, 0.0], (4, 1)), r"policy rows must be probability vectors"),
])
def test_bad_policy(policy: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        envs.mrp_from_gymnasium(frozenlake(TWO_BY_TWO), policy)


@pytest.mark.parametrize("restart", [-0.1, 1.0, np.nan])
def test_bad_restart(restart: float) -> None:
    with pytest.raises(ValueError, match=r"restart must lie in \[0.0, 1.0\)"):
        envs.mdp_from_gymnasium(frozenlake(TWO_BY_TWO), restart=restart)
    with pytest.raises(ValueError, match=r"restart must lie in \[0.0, 1.0\)"):
        envs.frozenlake_problem(2, 3, restart=restart, rank=1, dim=3, rng=0)


def test_unreachable_cell_with_restart_zero() -> None:
    # The goal (1, 1) has only holes next to it: no step enters it.
    env = frozenlake(["SH", "HG"])
    with pytest.raises(ValueError, match=r"start cannot reach.*3 \(1, 1\).*restart > 0"):
        envs.mrp_from_gymnasium(env, uniform(4))
    P_pi, _ = envs.mrp_from_gymnasium(env, uniform(4), restart=0.05)
    markov.check_ergodic(P_pi)


def test_state_that_never_returns() -> None:
    # Cell 1 always bumps UP into the wall: once there, the chain stays.
    policy = uniform(4)
    policy[1] = np.eye(4)[UP]
    with pytest.raises(ValueError, match=r"never return to the start under this policy: "
                                         r"1 \(0, 1\)"):
        envs.mrp_from_gymnasium(frozenlake(TWO_BY_TWO), policy)


def test_periodic_chain() -> None:
    # 1 x 2 map, always RIGHT: S -> G (reward 1) -> reset to S: period 2.
    with pytest.raises(ValueError, match="periodic with period 2"):
        envs.mrp_from_gymnasium(frozenlake(["SG"]), np.tile(np.eye(4)[RIGHT], (2, 1)))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"size": 1}, r"size must be an integer >= 2; got 1"),
    ({"p": 0.0}, r"p must lie in \(0.0, 1.0\]; got 0.0"),
    ({"p": 1.5}, r"p must lie in \(0.0, 1.0\]; got 1.5"),
    ({"success_rate": [0.5, 0.5, 0.5]}, r"success_rate must be a float or a sequence of "
                                        r"n_agents = 2 values in \[0, 1\]"),
    ({"success_rate": 1.2}, r"success_rate must be"),
    ({"policy": "greedy"}, r"policy must be one of \('uniform', 'epsilon_greedy'\); got 'greedy'"),
    ({"epsilon": -0.1}, r"epsilon must lie in \[0.0, 1.0\]"),
    ({"dim": 9}, r"dim must be <= n_states - 1 = 8"),
])
def test_bad_frozenlake_family_arguments(kwargs: dict, match: str) -> None:
    arguments = {"size": 3, "rank": 1, "dim": 3, "rng": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        envs.frozenlake_problem(2, **arguments)


def test_bad_knobs_of_the_other_families() -> None:
    with pytest.raises(ValueError, match=r"slip must be a float or a sequence"):
        envs.cliffwalking_problem(2, slip=-0.5, rank=1, dim=4, rng=0)
    with pytest.raises(ValueError, match=r"rainy_probability must be a float or a sequence"):
        envs.taxi_problem(2, rainy_probability=[0.9], rank=1, dim=4, rng=0)


def test_epsilon_zero_can_leave_the_chain_reducible() -> None:
    # The greedy policy never visits most cells of the lake, so the evaluation needs a restart.
    with pytest.raises(ValueError, match=r"agent 0 of FrozenLake-v1 .* is not ergodic: states the "
                                         r"start cannot reach"):
        envs.frozenlake_problem(1, 4, success_rate=1.0, epsilon=0.0, rank=1, dim=3, rng=0)


# ----------------------------------------------------------------------------------- features


@pytest.mark.parametrize("dim", [1, 5, 15])
def test_fourier_features_satisfy_the_feature_assumptions(dim: int) -> None:
    X = np.stack(np.divmod(np.arange(16), 4), axis=1)
    Phi = envs.fourier_features(X, dim, rng=0)
    assert Phi.shape == (16, dim)
    assert np.max(np.linalg.norm(Phi, axis=1)) == pytest.approx(1.0, abs=EXACT)
    np.testing.assert_allclose(Phi.sum(axis=0), 0.0, atol=EXACT)  # 1 is orthogonal to the span
    assert td.constant_in_span_residual(Phi) == pytest.approx(1.0, abs=1e-9)
    gram = Phi.T @ Phi
    np.testing.assert_allclose(gram, gram[0, 0] * np.eye(dim), atol=EXACT)  # orthogonal columns
    td.check_features(Phi)
    np.testing.assert_array_equal(Phi, envs.fourier_features(X, dim, rng=0))


def test_fourier_features_reject_a_dim_without_room_for_the_constant() -> None:
    with pytest.raises(ValueError, match=r"dim must be <= n_states - 1 = 3 .*; got dim=4"):
        envs.fourier_features(np.arange(8).reshape(4, 2), 4, rng=0)


# ----------------------------------------------------------------------------------- families


@pytest.fixture(scope="module")
def lakes() -> envs.EnvFamily:
    return envs.frozenlake_problem(4, 3, success_rate=[0.2, 0.5, 0.8, 1.0], rank=2, dim=5,
                                   rng=5)


def test_frozenlake_family_is_the_mrp_of_each_agents_map(lakes: envs.EnvFamily) -> None:
    problem = lakes.problem
    assert isinstance(problem, Problem)
    assert (problem.n_agents, problem.n_states, problem.dim, problem.rank) == (4, 9, 5, 2)
    np.testing.assert_array_equal(lakes.states, np.arange(9))
    assert lakes.knob == "success_rate"
    np.testing.assert_array_equal(lakes.knob_values, [0.2, 0.5, 0.8, 1.0])
    assert [list(m) for m in lakes.maps] == envs.frozenlake_maps(4, 3, rng=5)
    for i, desc in enumerate(lakes.maps):
        env = frozenlake(list(desc), lakes.knob_values[i])
        P_pi, r_pi = envs.mrp_from_gymnasium(env, lakes.policy[i])
        np.testing.assert_allclose(problem.P[i], P_pi, rtol=0, atol=EXACT)
        np.testing.assert_allclose(problem.rewards[i], r_pi, rtol=0, atol=EXACT)
        # epsilon-greedy around the agent's own optimum: 1 - eps + eps / 4 on the greedy action
        P, R = envs.mdp_from_gymnasium(env)
        greedy = mdp.relative_value_iteration(P[None], R[None]).policy[0]
        np.testing.assert_allclose(lakes.policy[i, np.arange(9), greedy], 0.9 + 0.1 / 4)


def test_family_problem_fields_come_from_td(lakes: envs.EnvFamily) -> None:
    problem = lakes.problem
    np.testing.assert_allclose(td.td_fixed_point(problem.P, problem.rewards, problem.features),
                               problem.theta_star, rtol=0, atol=1e-9)
    np.testing.assert_allclose(problem.average_reward, td.average_reward(problem.P,
                                                                          problem.rewards))
    assert np.max(np.linalg.norm(problem.features, axis=1)) <= 1 + EXACT
    assert td.constant_in_span_residual(problem.features) > 1 - 1e-9
    sigma = np.linalg.svd(problem.theta_star, compute_uv=False)
    assert envs.misspecification(problem) == pytest.approx(sigma[2] / sigma[0])
    assert lakes.misspecification == pytest.approx(problem.singular_value_ratio)
    assert envs.misspecification(problem, 4) == 0.0  # r >= min(dim, N)
    B = problem.B_star
    residual = problem.theta_star.T - B @ (B.T @ problem.theta_star.T)
    assert lakes.projection_floor == pytest.approx(np.sum(residual**2) / 4, rel=1e-9)
    assert envs.projection_floor(problem, 1) > envs.projection_floor(problem, 2) > 0


def test_every_map_has_every_cell_reachable() -> None:
    for desc in envs.frozenlake_maps(20, 4, p=0.7, rng=1):
        P_pi, _ = envs.mrp_from_gymnasium(frozenlake(desc), uniform(16))
        markov.check_ergodic(P_pi)


def test_families_are_reproducible_and_share_their_first_agents() -> None:
    small = envs.frozenlake_problem(2, 3, rank=1, dim=4, rng=9)
    again = envs.frozenlake_problem(2, 3, rank=1, dim=4, rng=np.random.default_rng(9))
    large = envs.frozenlake_problem(3, 3, rank=1, dim=4, rng=9)
    for field in ("P", "rewards", "features", "theta_star"):
        np.testing.assert_array_equal(getattr(small.problem, field), getattr(again.problem, field))
    np.testing.assert_array_equal(small.problem.P, large.problem.P[:2])
    np.testing.assert_array_equal(small.problem.features, large.problem.features)
    assert small.maps == large.maps[:2]


def test_cliffwalking_family() -> None:
    cliffs = envs.cliffwalking_problem(3, slip=[0.0, 0.5, 1.0], rank=2, dim=6, rng=0)
    assert cliffs.problem.n_states == 38  # 48 cells minus the 10 cliff cells no step enters
    assert not np.any(np.isin(cliffs.states, np.arange(37, 47)))
    # Slip 1 is gymnasium's slippery cliff; epsilon-greedy differs between the agents.
    slippery = gym.make("CliffWalking-v1", is_slippery=True)
    P, R = envs.mdp_from_gymnasium(slippery)
    keep = cliffs.states
    P_pi = np.einsum("sa,sat->st", cliffs.policy[2], P[keep][:, :, keep])
    np.testing.assert_allclose(cliffs.problem.P[2], P_pi, rtol=0, atol=EXACT)
    # Rewards in units of r_max = 100, the cliff's: |r| <= 1, theta* scaled alike.
    assert cliffs.reward_scale == 100.0
    r_pi = np.einsum("sa,sa->s", cliffs.policy[2], R[keep])
    np.testing.assert_allclose(cliffs.problem.rewards[2] * 100, r_pi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cliffs.action_rewards[2] * 100, R[keep], rtol=0, atol=1e-12)
    assert np.abs(cliffs.action_rewards).max() <= 1
    assert cliffs.misspecification > 0
    # Under the uniform policy the slip is invisible: every agent has the same chain.
    uniform_cliffs = envs.cliffwalking_problem(3, slip=[0.0, 0.5, 1.0], policy="uniform",
                                               rank=1, dim=6, rng=0)
    np.testing.assert_allclose(uniform_cliffs.problem.P, uniform_cliffs.problem.P[[0, 0, 0]],
                               rtol=0, atol=EXACT)


def test_taxi_family() -> None:
    taxis = envs.taxi_problem(2, rainy_probability=[0.7, 1.0], policy="uniform", rank=1, dim=8,
                              rng=0)
    assert taxis.problem.n_states == 404  # 500 minus the 96 "delivered" states never visited
    # (row, column, passenger, destination): state 0 is the passenger delivered at R, terminal.
    assert taxis.labels[0] == (0, 0, 0, 0) and taxis.states[0] == 0
    dry = gym.make("Taxi-v4")
    P, R = envs.mdp_from_gymnasium(dry)
    keep = taxis.states
    np.testing.assert_allclose(taxis.problem.P[1], P[keep][:, :, keep].mean(axis=1), atol=EXACT)
    # Rewards are in units of r_max = 20, the dropoff's reward.
    assert taxis.reward_scale == 20.0
    np.testing.assert_allclose(taxis.problem.rewards[1] * 20, R[keep].mean(axis=1), atol=EXACT)


def test_control_problem_has_one_copy_of_the_state_features_per_action() -> None:
    family = envs.frozenlake_problem(3, 3, success_rate=0.8, restart=0.02, rank=2, dim=4, rng=5)
    problem = envs.control_problem(family)
    Phi = np.asarray(family.problem.features)
    assert problem.features.shape == (9, 4, 16)
    for a in range(4):
        np.testing.assert_array_equal(problem.features[:, a, 4 * a:4 * a + 4], Phi)
        assert not np.delete(problem.features[:, a], np.s_[4 * a:4 * a + 4], axis=1).any()
    assert np.linalg.norm(problem.features, axis=2).max() <= 1 + 1e-12
    # The optimal gains are those of the family's own continuing MDPs.
    planned = mdp.relative_value_iteration(family.kernels, family.action_rewards)
    np.testing.assert_allclose(problem.optimal.average_reward, planned.average_reward, atol=1e-12)
    with pytest.raises(ValueError, match="family must be an EnvFamily"):
        envs.control_problem(family.problem)
