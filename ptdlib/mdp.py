"""Finite MDPs for the control experiment: records, exact planning and exact policy evaluation.

Primer
------
N agents share a finite state space (``n_states``), action set (``n_actions``) and state-action
features psi(s, a) in R^dim with ||psi(s, a)|| <= 1 [``features[s, a]``]; agent i has its own
kernel P_i(s' | s, a) [``P[i, s, a, s']``] and expected reward R_i(s, a) [``rewards[i, s, a]``].

A stationary policy pi [``policy[..., i, s, a]`` = pi_i(a | s)] induces the Markov chain
P_pi(s, s') = sum_a pi(a | s) P(s' | s, a) with reward r_pi(s) = sum_a pi(a | s) R(s, a). When
P_pi is irreducible its gain is J(pi) = mu_pi^T r_pi and its differential action values are
q_pi(s, a) = R(s, a) - J(pi) + sum_s' P(s' | s, a) h_pi(s'), h_pi the bias of (P_pi, r_pi)
(Poisson equation), unique up to a constant. Evaluation here is exact: mu_pi by GTH elimination
(`ptdlib.markov`), never from sampled returns.

Optimality. If (J, q) solves the average-reward optimality equation

    q(s, a) = R(s, a) - J + sum_s' P(s' | s, a) max_a' q(s', a'),

then J is the optimal gain from every state and every policy greedy in q is optimal (Puterman
1994, Thm 8.4.1). `relative_value_iteration` solves it on the aperiodicity transform
P_tau = tau P + (1 - tau) I, R_tau = tau R (same optimal policies and bias, gain tau J; Puterman
Section 8.5.4), which makes RVI converge even when optimal chains are periodic. `lp_average_reward`
cross-checks J* by the dual linear program over stationary state-action frequencies (Puterman
Section 8.8); both need an optimal gain that does not depend on the start state, which holds for
every factory here because every policy induces an irreducible chain.

Planted shared structure (`shared_structure_mdps`). Choose B* (dim x rank, orthonormal), heads
w_i*, gains J_i* and kernels P_i, put q_i* = Psi B* w_i* (Psi the (n_states n_actions) x dim
feature matrix), v_i*(s) = max_a q_i*(s, a), and define the rewards

    R_i(s, a) = J_i* + q_i*(s, a) - sum_s' P_i(s' | s, a) v_i*(s').

Then (J_i*, q_i*) solves agent i's optimality equation: J_i* is its optimal gain and the optimal
differential action values lie exactly in span(Psi B*), rank r across agents. What is NOT
planted: on-policy SARSA with epsilon-greedy exploration estimates the values of its
epsilon-greedy behaviour policy, which leave span(Psi B*) for epsilon > 0, and its linear
semi-gradient fixed point is not a projection. `realisability_residual` reports the first gap.

Knobs. heterogeneity h in [0, 1] moves both ingredients together: kernels
P_i = (1 - h) P_base + h Q_i (Dirichlet rows, as in `ptdlib.problems`) and heads
w_i* = cos(pi h / 2) w_bar + sin(pi h / 2) u_i (common w_bar, own u_i; the mean squared head norm
does not change with h). h = 0: identical agents; h = 1: independent kernels and heads. Every
row is then mixed with a uniform ``teleport`` floor so that every policy's chain is irreducible
and aperiodic (exact evaluation needs an irreducible chain). Problems drawn from one seed with
different h share every random draw (common random numbers across a heterogeneity sweep), and
each agent's own draws come from its own child stream, so problems drawn with different N share
their first agents (common random numbers across N; `ControlProblem.subset` gives the same).

References
----------
Puterman, M. L. (1994). Markov Decision Processes. Wiley. Chapter 8.
Sutton, R. S. & Barto, A. G. (2018). Reinforcement Learning: An Introduction, 2nd ed., Section 10.3.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from ptdlib import markov, subspace, td
from ptdlib._validation import (
    STOCHASTIC_ATOL,
    FloatArray,
    IntArray,
    RngLike,
    as_float_array,
    check_in_range,
    check_orthonormal,
    check_positive_int,
)

#: Largest allowed ||psi(s, a)||, with round-off slack.
FEATURE_NORM_BOUND = 1.0 + 1e-12
#: Gridworld actions in order, as (row, column) offsets: up, right, down, left.
ACTION_OFFSETS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])


def _read_only(x: ArrayLike, dtype: type = np.float64) -> np.ndarray:
    view = np.asarray(x, dtype=dtype).view()
    view.setflags(write=False)
    return view


@dataclasses.dataclass(frozen=True)
class PlanningResult:
    """Exact solution of every agent's average-reward optimality equation.

    Attributes
    ----------
    average_reward : (n_agents,) optimal gains J_i*.
    q : (n_agents, n_states, n_actions) differential action values R - J + P h.
    bias : (n_agents, n_states) optimal bias h_i, normalised h_i(0) = 0.
    policy : (n_agents, n_states) greedy (optimal) actions, ties to the lowest index.
    iterations : number of RVI sweeps used.
    """

    average_reward: FloatArray
    q: FloatArray
    bias: FloatArray
    policy: IntArray
    iterations: int


@dataclasses.dataclass(frozen=True, eq=False)
class GridLayout:
    """Geometry of a gridworld family: state s is cell (s // width, s % width).

    Attributes
    ----------
    height, width : grid size.
    goals : (n_agents,) goal cell of each agent (state index).
    wind : (n_agents,) probability of an extra push one row up after every move.
    slip : probability that the move goes in a uniformly random direction instead.
    """

    height: int
    width: int
    goals: IntArray
    wind: FloatArray
    slip: float

    def goal_positions(self) -> IntArray:
        """(n_agents, 2) goal (row, column) of each agent."""
        return np.stack(np.divmod(self.goals, self.width), axis=-1)

    def arrows(self, actions: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Arrow components (d_row, d_col), each (..., n_agents, height, width), of policies.

        ``actions`` (..., n_agents, n_states) are action indices (see ACTION_OFFSETS); goal
        cells, where the action does not matter, get NaN so a quiver plot leaves them empty.
        """
        actions = np.asarray(actions)
        n_agents, n_states = self.goals.size, self.height * self.width
        if (actions.ndim < 2 or actions.shape[-2:] != (n_agents, n_states)
                or not np.issubdtype(actions.dtype, np.integer)):
            raise ValueError(f"actions must be integers of shape (..., n_agents, n_states) = "
                             f"(..., {n_agents}, {n_states}); got {actions.dtype} {actions.shape}")
        offsets = ACTION_OFFSETS[actions].astype(np.float64)
        offsets[..., np.arange(n_agents), self.goals, :] = np.nan
        grid = (*actions.shape[:-1], self.height, self.width)
        return offsets[..., 0].reshape(grid), offsets[..., 1].reshape(grid)


@dataclasses.dataclass(frozen=True, eq=False)
class ControlProblem:
    """N finite MDPs on common states, actions and features (immutable, read-only arrays).

    Attributes
    ----------
    P : (n_agents, n_states, n_actions, n_states) kernels P_i(s' | s, a).
    rewards : (n_agents, n_states, n_actions) expected rewards R_i(s, a).
    features : (n_states, n_actions, dim) psi(s, a), ||psi(s, a)|| <= 1.
    optimal : PlanningResult from relative value iteration.
    B_star : (dim, rank) planted orthonormal basis, or None.
    heads_star : (n_agents, rank) planted heads (q_i* = Psi B* w_i*), or None.
    layout : GridLayout for gridworlds, else None.

    Notes
    -----
    Build with `ControlProblem.from_arrays` or a factory, which validate and plan.
    """

    P: FloatArray
    rewards: FloatArray
    features: FloatArray
    optimal: PlanningResult
    B_star: FloatArray | None = None
    heads_star: FloatArray | None = None
    layout: GridLayout | None = None

    def __post_init__(self) -> None:
        for name in ("P", "rewards", "features", "B_star", "heads_star"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _read_only(value))

    @property
    def n_agents(self) -> int:
        """Number of agents N."""
        return self.P.shape[0]

    @property
    def n_states(self) -> int:
        """Number of states."""
        return self.P.shape[1]

    @property
    def n_actions(self) -> int:
        """Number of actions."""
        return self.P.shape[2]

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return self.features.shape[2]

    @property
    def rank(self) -> int | None:
        """Planted rank r, or None."""
        return None if self.B_star is None else self.B_star.shape[1]

    @classmethod
    def from_arrays(cls, P: ArrayLike, rewards: ArrayLike, features: ArrayLike, *,
                    B_star: ArrayLike | None = None, heads_star: ArrayLike | None = None,
                    layout: GridLayout | None = None) -> ControlProblem:
        """Validate the MDP arrays (copied) and solve every agent's MDP exactly by RVI.

        Parameters
        ----------
        P : (n_agents, n_states, n_actions, n_states)
            Kernels; each P[i, s, a] a distribution (non-negative, sums to 1 within 1e-10).
        rewards : (n_agents, n_states, n_actions)
            Expected rewards.
        features : (n_states, n_actions, dim)
            State-action features with ||psi(s, a)|| <= 1.
        B_star, heads_star : (dim, rank) and (n_agents, rank), optional
            Planted structure, recorded for reference (both or neither).
        layout : GridLayout, optional
            Gridworld geometry for drawing.
        """
        P, rewards, features = check_mdp(P, rewards, features)
        if (B_star is None) != (heads_star is None):
            raise ValueError("B_star and heads_star must be given together; got only "
                             f"{'B_star' if heads_star is None else 'heads_star'}")
        if B_star is not None:
            B_star = check_orthonormal(B_star, "B_star")
            heads_star = as_float_array(heads_star, "heads_star", ndim=2)
            if B_star.shape[0] != features.shape[2] or heads_star.shape != (
                    P.shape[0], B_star.shape[1]):
                raise ValueError(f"B_star must be (dim, rank) and heads_star (n_agents, rank) "
                                 f"with dim = {features.shape[2]}, n_agents = {P.shape[0]}; "
                                 f"got {B_star.shape} and {heads_star.shape}")
        optimal = relative_value_iteration(P, rewards)
        return cls(P=P.copy(), rewards=rewards.copy(), features=features.copy(),
                   optimal=optimal, B_star=B_star, heads_star=heads_star, layout=layout)

    def subset(self, n_agents: int) -> ControlProblem:
        """The first ``n_agents`` agents (for common random numbers across N)."""
        n_agents = check_positive_int(n_agents, "n_agents")
        if n_agents > self.n_agents:
            raise ValueError(f"n_agents must be <= {self.n_agents} (the problem's agents); "
                             f"got {n_agents}")
        keep = slice(0, n_agents)
        opt = self.optimal
        layout = None
        if self.layout is not None:
            layout = dataclasses.replace(self.layout, goals=self.layout.goals[keep],
                                         wind=self.layout.wind[keep])
        return dataclasses.replace(
            self, P=self.P[keep], rewards=self.rewards[keep], layout=layout,
            heads_star=None if self.heads_star is None else self.heads_star[keep],
            optimal=PlanningResult(opt.average_reward[keep], opt.q[keep], opt.bias[keep],
                                   opt.policy[keep], opt.iterations))

    def describe(self) -> dict[str, Any]:
        """Key numbers as plain Python scalars (stable to print in notebooks)."""
        q = self.optimal.q
        top2 = np.sort(q, axis=-1)[..., -2:] if self.n_actions > 1 else np.zeros((*q.shape[:-1], 2))
        summary: dict[str, Any] = {
            "n_agents": self.n_agents, "n_states": self.n_states,
            "n_actions": self.n_actions, "dim": self.dim, "rank": self.rank,
            "max_feature_norm": float(np.max(np.linalg.norm(self.features, axis=-1))),
            "optimal_gain_min": float(self.optimal.average_reward.min()),
            "optimal_gain_max": float(self.optimal.average_reward.max()),
            "median_action_gap": float(np.median(top2[..., 1] - top2[..., 0])),
            "optimal_q_residual_full_features": float(np.max(
                realisability_residual(q, self.features))),
        }
        if self.B_star is not None:
            summary["optimal_q_residual_planted_subspace"] = float(np.max(
                realisability_residual(q, self.features, self.B_star)))
        return summary


def check_mdp(P: ArrayLike, rewards: ArrayLike,
              features: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate (P, rewards, features) of N MDPs; return them as float64 arrays.

    Raises ValueError naming the argument for a wrong shape, NaN/inf, a negative probability, a
    row P[i, s, a] whose sum differs from 1 by more than STOCHASTIC_ATOL = 1e-10, or a feature
    vector with norm above 1 (+1e-12).
    """
    P = check_kernels(P)
    n_agents, n_states, n_actions = P.shape[:3]
    rewards = as_float_array(rewards, "rewards", ndim=3)
    if rewards.shape != (n_agents, n_states, n_actions):
        raise ValueError(f"rewards must have shape (n_agents, n_states, n_actions) = "
                         f"{(n_agents, n_states, n_actions)} to match P; got {rewards.shape}")
    features = as_float_array(features, "features", ndim=3)
    if features.shape[:2] != (n_states, n_actions) or features.shape[2] == 0:
        raise ValueError(f"features must have shape (n_states, n_actions, dim) = "
                         f"({n_states}, {n_actions}, dim >= 1); got {features.shape}")
    norms = np.linalg.norm(features, axis=-1)
    if np.any(norms > FEATURE_NORM_BOUND):
        s, a = np.unravel_index(np.argmax(norms), norms.shape)
        raise ValueError(f"features must have ||psi(s, a)|| <= 1; got {norms[s, a]:.6g} at "
                         f"(s, a) = ({s}, {a})")
    return P, rewards, features


def check_kernels(P: ArrayLike) -> FloatArray:
    """Validate kernels P (n_agents, n_states, n_actions, n_states); see `check_mdp`."""
    P = as_float_array(P, "P", ndim=4)
    if min(P.shape) == 0 or P.shape[1] != P.shape[3]:
        raise ValueError(f"P must have shape (n_agents, n_states, n_actions, n_states) with "
                         f"all sizes >= 1; got {P.shape}")
    if np.any(P < 0):
        idx = tuple(int(i) for i in np.argwhere(P < 0)[0])
        raise ValueError(f"P must be non-negative; got {P[idx]:.3g} at index {idx}")
    error = np.abs(P.sum(axis=-1) - 1.0)
    if np.any(error > STOCHASTIC_ATOL):
        idx = tuple(int(i) for i in np.argwhere(error > STOCHASTIC_ATOL)[0])
        raise ValueError(f"P must be stochastic: each P[agent, state, action] sums to 1 within "
                         f"{STOCHASTIC_ATOL:g}; P{list(idx)} sums to {P[idx].sum():.12g}")
    return P


def relative_value_iteration(P: ArrayLike, rewards: ArrayLike, *, aperiodicity: float = 0.5,
                             tol: float = 1e-11, max_iter: int = 100_000) -> PlanningResult:
    """Optimal gain, bias and policy of every agent by relative value iteration.

    Parameters
    ----------
    P : (n_agents, n_states, n_actions, n_states)
        Kernels (validated as in `check_mdp`).
    rewards : (n_agents, n_states, n_actions)
        Expected rewards.
    aperiodicity : float in (0, 1)
        tau of the transform P_tau = tau P + (1 - tau) I, R_tau = tau R.
    tol : float > 0
        Stop when span(T h - h) / tau <= tol; the gain is then exact to tol / 2.
    max_iter : int
        ValueError if not converged within this many sweeps.

    Notes
    -----
    h_{k+1} = T h_k - (T h_k)(0) 1,  T h(s) = max_a [R_tau(s, a) + sum_s' P_tau(s'|s, a) h(s')];
    min(T h - h) <= tau J* <= max(T h - h).

    References
    ----------
    Puterman (1994), Sections 8.5.4-8.5.5 and Thm 8.5.5 (span bounds).
    """
    P = check_kernels(P)
    rewards = as_float_array(rewards, "rewards", ndim=3)
    if rewards.shape != P.shape[:3]:
        raise ValueError(f"rewards must have shape {P.shape[:3]} to match P; got {rewards.shape}")
    tau = check_in_range(aperiodicity, "aperiodicity", 0.0, 1.0, low_open=True, high_open=True)
    tol = check_in_range(tol, "tol", 0.0, np.inf, low_open=True, high_open=True)
    max_iter = check_positive_int(max_iter, "max_iter")
    h = np.zeros(P.shape[:2])
    iterations = 0
    while True:
        iterations += 1
        # T_tau h = tau (R + P h) + (1 - tau) h: the self-loop of the transform, applied per action.
        Th = tau * np.max(rewards + _expected_next(P, h), axis=-1) + (1 - tau) * h
        diff = Th - h
        span = float(np.max(diff.max(axis=1) - diff.min(axis=1))) / tau
        if span <= tol:
            break
        if iterations == max_iter:
            raise ValueError(f"relative value iteration did not converge in max_iter={max_iter} "
                             f"sweeps (span {span:.3g} > tol={tol:g}); the MDP may be "
                             "multichain, or raise max_iter")
        h = Th - Th[:, :1]
    gain = 0.5 * (diff.max(axis=1) + diff.min(axis=1)) / tau
    q = rewards - gain[:, None, None] + _expected_next(P, h)
    return PlanningResult(average_reward=_read_only(gain), q=_read_only(q), bias=_read_only(h),
                          policy=_read_only(greedy_actions(q), np.int64), iterations=iterations)


def _expected_next(P: FloatArray, h: FloatArray) -> FloatArray:
    """sum_s' P_i(s' | s, a) h_i(s'): P (N, S, A, S), h (N, S) -> (N, S, A)."""
    return np.einsum("nsat,nt->nsa", P, h)


def lp_average_reward(P: ArrayLike, rewards: ArrayLike) -> FloatArray:
    """Optimal gains J_i* by the dual linear program (one HiGHS solve per agent).

    Parameters
    ----------
    P : (n_agents, n_states, n_actions, n_states)
        Kernels.
    rewards : (n_agents, n_states, n_actions)
        Expected rewards.

    Returns
    -------
    (n_agents,) ndarray
        max_x sum_{s,a} x(s, a) R(s, a) over stationary state-action frequencies x.

    Notes
    -----
    max R.x s.t. sum_a x(s', a) = sum_{s,a} P(s'|s, a) x(s, a) for all s', sum x = 1, x >= 0.

    References
    ----------
    Puterman (1994), Section 8.8 (unichain models; also exact for communicating ones).
    """
    P = check_kernels(P)
    rewards = as_float_array(rewards, "rewards", ndim=3)
    if rewards.shape != P.shape[:3]:
        raise ValueError(f"rewards must have shape {P.shape[:3]} to match P; got {rewards.shape}")
    n_agents, n_states, n_actions = rewards.shape
    outflow = np.kron(np.eye(n_states), np.ones((1, n_actions)))
    gains = np.empty(n_agents)
    for i in range(n_agents):
        balance = outflow - P[i].reshape(n_states * n_actions, n_states).T
        A_eq = np.vstack([balance, np.ones((1, n_states * n_actions))])
        b_eq = np.append(np.zeros(n_states), 1.0)
        result = scipy.optimize.linprog(
            -rewards[i].ravel(), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs",
            options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
        if result.status != 0:
            raise ValueError(f"the linear program for agent {i} failed: {result.message}")
        gains[i] = -result.fun
    return gains


def _check_q(q: ArrayLike, name: str = "q") -> FloatArray:
    q = as_float_array(q, name)
    if q.ndim < 2 or 0 in q.shape[-2:]:
        raise ValueError(f"{name} must have shape (..., n_states, n_actions); got {q.shape}")
    return q


def greedy_actions(q: ArrayLike) -> IntArray:
    """argmax_a q(s, a) for every state: q (..., n_states, n_actions) -> (..., n_states).

    Ties go to the lowest action index (np.argmax), so the result is deterministic.
    """
    return np.argmax(_check_q(q), axis=-1)


def deterministic_policy(actions: ArrayLike, n_actions: int) -> FloatArray:
    """One-hot policy table (..., n_states, n_actions) of integer ``actions`` (..., n_states)."""
    n_actions = check_positive_int(n_actions, "n_actions")
    actions = np.asarray(actions)
    if not np.issubdtype(actions.dtype, np.integer) or np.any(
            (actions < 0) | (actions >= n_actions)):
        raise ValueError(f"actions must be integers in [0, {n_actions}); got dtype "
                         f"{actions.dtype} with range [{actions.min()}, {actions.max()}]")
    return (actions[..., None] == np.arange(n_actions)).astype(np.float64)


def epsilon_greedy_policy(q: ArrayLike, epsilon: float) -> FloatArray:
    """pi(a | s) = epsilon / n_actions + (1 - epsilon) [a = argmax_a' q(s, a')].

    Parameters
    ----------
    q : (..., n_states, n_actions)
        Action values.
    epsilon : float in [0, 1]
        Exploration rate.

    References
    ----------
    Sutton & Barto (2018), Section 5.4.
    """
    q = _check_q(q)
    epsilon = check_in_range(epsilon, "epsilon", 0.0, 1.0)
    n_actions = q.shape[-1]
    return (epsilon / n_actions
            + (1.0 - epsilon) * deterministic_policy(np.argmax(q, axis=-1), n_actions))


def softmax_policy(q: ArrayLike, temperature: float) -> FloatArray:
    """pi(a | s) proportional to exp(q(s, a) / temperature), temperature > 0.

    References
    ----------
    Sutton & Barto (2018), Section 13.1 (soft-max in action preferences).
    """
    q = _check_q(q)
    temperature = check_in_range(temperature, "temperature", 0.0, np.inf, low_open=True,
                                 high_open=True)
    z = np.exp((q - q.max(axis=-1, keepdims=True)) / temperature)
    return z / z.sum(axis=-1, keepdims=True)


def induced_chain(P: ArrayLike, rewards: ArrayLike,
                  policy: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The Markov chain and reward a policy induces in each agent's MDP.

    Parameters
    ----------
    P : (n_agents, n_states, n_actions, n_states)
        Kernels.
    rewards : (n_agents, n_states, n_actions)
        Expected rewards.
    policy : (..., n_agents, n_states, n_actions)
        Action probabilities pi_i(a | s) (rows sum to 1 within 1e-10); any leading batch axes.

    Returns
    -------
    P_pi : (..., n_agents, n_states, n_states)
    r_pi : (..., n_agents, n_states)

    Notes
    -----
    P_pi(s, s') = sum_a pi(a | s) P(s' | s, a),  r_pi(s) = sum_a pi(a | s) R(s, a).
    """
    P = check_kernels(P)
    rewards = as_float_array(rewards, "rewards", ndim=3)
    policy = as_float_array(policy, "policy")
    if rewards.shape != P.shape[:3] or policy.shape[-3:] != P.shape[:3]:
        raise ValueError(f"rewards and policy must end in (n_agents, n_states, n_actions) = "
                         f"{P.shape[:3]}; got {rewards.shape} and {policy.shape}")
    row_error = np.abs(policy.sum(axis=-1) - 1.0)
    if np.any(policy < 0) or np.any(row_error > STOCHASTIC_ATOL):
        raise ValueError(f"policy rows must be probability vectors (non-negative, summing to 1 "
                         f"within {STOCHASTIC_ATOL:g}); worst row sum error {row_error.max():.3g},"
                         f" min entry {policy.min():.3g}")
    return (np.einsum("...nsa,nsat->...nst", policy, P),
            np.einsum("...nsa,nsa->...ns", policy, rewards))


def policy_average_reward(P: ArrayLike, rewards: ArrayLike, policy: ArrayLike) -> FloatArray:
    """Exact gain J_i(pi) = mu_pi^T r_pi of each agent's policy, shape (..., n_agents).

    Raises ValueError (from `ptdlib.markov`) when an induced chain is not irreducible.
    """
    P_pi, r_pi = induced_chain(P, rewards, policy)
    mu = markov.stationary_distributions(P_pi.reshape(-1, *P_pi.shape[-2:]))
    return np.sum(mu.reshape(r_pi.shape) * r_pi, axis=-1)


def greedy_average_reward(P: ArrayLike, rewards: ArrayLike, q: ArrayLike) -> FloatArray:
    """Exact gain of the greedy policy of ``q`` (..., n_agents, n_states, n_actions)."""
    q = _check_q(q)
    return policy_average_reward(P, rewards,
                                 deterministic_policy(np.argmax(q, axis=-1), q.shape[-1]))


@dataclasses.dataclass(frozen=True)
class PolicyValues:
    """Exact gain, bias (mu_pi^T h = 0) and differential action values of a policy."""

    average_reward: FloatArray
    bias: FloatArray
    q: FloatArray


def policy_action_values(P: ArrayLike, rewards: ArrayLike, policy: ArrayLike) -> PolicyValues:
    """Differential action values q_pi of each agent's policy.

    Returns
    -------
    PolicyValues
        average_reward (..., n_agents), bias (..., n_agents, n_states),
        q (..., n_agents, n_states, n_actions).

    Notes
    -----
    q_pi(s, a) = R(s, a) - J(pi) + sum_s' P(s' | s, a) h_pi(s'),  h_pi = r_pi - J 1 + P_pi h_pi.

    References
    ----------
    Puterman (1994), Section 8.2 (Poisson equation); Sutton & Barto (2018), Section 10.3.
    """
    P = check_kernels(P)
    P_pi, r_pi = induced_chain(P, rewards, policy)
    n_states = P.shape[1]
    chains, chain_rewards = P_pi.reshape(-1, n_states, n_states), r_pi.reshape(-1, n_states)
    gain = np.asarray(td.average_reward(chains, chain_rewards)).reshape(r_pi.shape[:-1])
    bias = td.poisson_solution(chains, chain_rewards).reshape(r_pi.shape)
    q = np.asarray(rewards) - gain[..., None, None] + np.einsum("nsat,...nt->...nsa", P, bias)
    return PolicyValues(average_reward=gain, bias=bias, q=q)


def realisability_residual(q: ArrayLike, features: ArrayLike,
                           B: ArrayLike | None = None) -> FloatArray:
    """Relative distance of action values from span(Psi B) (or span(Psi)) modulo constants.

    Parameters
    ----------
    q : (..., n_states, n_actions)
        Differential action values (defined up to a constant).
    features : (n_states, n_actions, dim)
        psi(s, a).
    B : (dim, rank), optional
        Basis of a feature subspace; None means the full span of the features.

    Returns
    -------
    (...) ndarray
        min_{x, c} ||q - Psi B x - c 1|| / ||q - mean(q) 1|| (0 for constant q), in [0, 1].
    """
    q = _check_q(q)
    features = as_float_array(features, "features", ndim=3)
    if features.shape[:2] != q.shape[-2:]:
        raise ValueError(f"features must have shape (n_states, n_actions, dim) = "
                         f"{(*q.shape[-2:], 'dim')}; got {features.shape}")
    Psi = features.reshape(-1, features.shape[-1])
    if B is not None:
        Psi = Psi @ as_float_array(B, "B", ndim=2)
    design = np.column_stack([Psi, np.ones(Psi.shape[0])])
    targets = q.reshape(*q.shape[:-2], -1).reshape(-1, Psi.shape[0]).T
    coef = np.linalg.lstsq(design, targets, rcond=None)[0]
    residual = np.linalg.norm(targets - design @ coef, axis=0)
    spread = np.linalg.norm(targets - targets.mean(axis=0), axis=0)
    ratio = np.divide(residual, spread, out=np.zeros_like(residual), where=spread > 0)
    return ratio.reshape(q.shape[:-2])


def random_state_action_features(n_states: int, n_actions: int, dim: int,
                                 rng: RngLike) -> FloatArray:
    """Gaussian features psi(s, a) in R^dim, centred over all (s, a) and scaled to max norm 1.

    Notes
    -----
    Psi = (G - 1 mean(G)) / max_{s,a} ||row||, G_ij ~ N(0, 1), Psi of shape
    (n_states n_actions) x dim. The columns are orthogonal to 1, so no weight vector represents
    a constant: the differential TD error is blind to constant offsets of Q (they cancel in
    Q(s', a') - Q(s, a)), and a constant inside or near span(Psi) would be a (nearly) undamped
    direction of the semi-gradient dynamics. One global factor keeps 1^T Psi = 0.
    """
    n_states = check_positive_int(n_states, "n_states")
    n_actions = check_positive_int(n_actions, "n_actions")
    dim = check_positive_int(dim, "dim")
    if dim >= n_states * n_actions:
        raise ValueError(f"dim must be < n_states * n_actions = {n_states * n_actions}; "
                         f"got {dim}")
    G = np.random.default_rng(rng).standard_normal((n_states * n_actions, dim))
    G -= G.mean(axis=0)
    G /= np.max(np.linalg.norm(G, axis=1))
    return G.reshape(n_states, n_actions, dim)


def shared_structure_mdps(n_agents: int, n_states: int, n_actions: int, dim: int, rank: int,
                          *, heterogeneity: float = 0.5, rng: RngLike = None,
                          value_scale: float = 1.0, concentration: float = 1.0,
                          teleport: float = 0.05) -> ControlProblem:
    """N MDPs whose optimal differential action values are q_i* = Psi B* w_i* exactly.

    Parameters
    ----------
    n_agents, n_states, n_actions, dim, rank : int
        N >= 1, n_states >= 2, n_actions >= 2, rank <= dim < n_states n_actions.
    heterogeneity : float in [0, 1]
        h: kernels (1 - h) P_base + h Q_i, heads cos(pi h / 2) w_bar + sin(pi h / 2) u_i.
    rng : int, SeedSequence, Generator or None
        One Generator draws features, B*, w_bar, P_base, then an entropy e; agent i draws
        (u_i, J_i*, Q_i) from SeedSequence(e, spawn_key=(i,)), so problems built from one
        seed with different n_agents share their first agents.
    value_scale : float > 0
        Root-mean-square size of the planted q_i*(s, a).
    concentration : float > 0
        Dirichlet parameter of the kernel rows (small = sparse, action-dependent moves).
    teleport : float in (0, 1]
        Weight of the uniform floor on every kernel row (every policy ergodic).

    Notes
    -----
    R_i(s, a) = J_i* + q_i*(s, a) - sum_s' P_i(s' | s, a) max_a' q_i*(s', a'), see module primer.
    Heads are value_scale sqrt(dim / (rank m2)) g, g ~ N(0, I_r), m2 = mean ||psi(s, a)||^2:
    for isotropic features E (psi^T B* g)^2 = m2 rank / dim, so q_i* has RMS about value_scale.
    """
    n_agents = check_positive_int(n_agents, "n_agents")
    n_states = check_positive_int(n_states, "n_states", minimum=2)
    n_actions = check_positive_int(n_actions, "n_actions", minimum=2)
    dim = check_positive_int(dim, "dim")
    rank = check_positive_int(rank, "rank")
    if rank > dim:
        raise ValueError(f"rank must be <= dim = {dim}; got {rank}")
    h = check_in_range(heterogeneity, "heterogeneity", 0.0, 1.0)
    value_scale = check_in_range(value_scale, "value_scale", 0.0, np.inf, low_open=True,
                                 high_open=True)
    concentration = check_in_range(concentration, "concentration", 0.0, np.inf, low_open=True,
                                   high_open=True)
    teleport = check_in_range(teleport, "teleport", 0.0, 1.0, low_open=True)
    gen = np.random.default_rng(rng)
    features = random_state_action_features(n_states, n_actions, dim, gen)
    B_star = subspace.haar_orthonormal(dim, rank, gen)
    w_bar = gen.standard_normal(rank)
    P_base = gen.dirichlet(np.full(n_states, concentration), size=(n_states, n_actions))
    # Agent i draws from its own child stream, so the first agents do not depend on n_agents.
    agent_entropy = int(gen.integers(2**63))
    u = np.empty((n_agents, rank))
    J = np.empty(n_agents)
    Q = np.empty((n_agents, n_states, n_actions, n_states))
    for i in range(n_agents):
        agent_gen = np.random.default_rng(np.random.SeedSequence(agent_entropy, spawn_key=(i,)))
        u[i] = agent_gen.standard_normal(rank)
        J[i] = agent_gen.uniform(0.0, 1.0)
        Q[i] = agent_gen.dirichlet(np.full(n_states, concentration), size=(n_states, n_actions))

    angle = 0.5 * np.pi * h
    m2 = np.mean(np.sum(features**2, axis=-1))
    heads = value_scale * np.sqrt(dim / (rank * m2)) * (np.cos(angle) * w_bar + np.sin(angle) * u)
    P = (1.0 - teleport) * ((1.0 - h) * P_base + h * Q) + teleport / n_states
    q = np.einsum("sad,dr,nr->nsa", features, B_star, heads)
    rewards = J[:, None, None] + q - _expected_next(P, q.max(axis=-1))
    return ControlProblem.from_arrays(P, rewards, features, B_star=B_star, heads_star=heads)


def _grid_moves(height: int, width: int) -> IntArray:
    """Destination cell of each (cell, action); moves off the grid stay put. (S, 4)."""
    rows, cols = np.divmod(np.arange(height * width), width)
    dest_rows = np.clip(rows[:, None] + ACTION_OFFSETS[:, 0], 0, height - 1)
    dest_cols = np.clip(cols[:, None] + ACTION_OFFSETS[:, 1], 0, width - 1)
    return dest_rows * width + dest_cols


def gridworld_mdps(n_agents: int, height: int, width: int, *, goals: ArrayLike | None = None,
                   wind: float | ArrayLike = 0.0, slip: float = 0.1, dim: int | None = None,
                   rng: RngLike = None) -> ControlProblem:
    """Gridworlds with one goal cell per agent (and optional upward wind), continuing task.

    Actions up, right, down, left (ACTION_OFFSETS). A move goes the intended way with
    probability 1 - slip and in a uniformly random direction otherwise (walls: stay put); then,
    with probability wind_i, the agent is pushed one row up. Acting in the goal earns reward 1
    and restarts in a uniformly random cell; all other rewards are 0, so J_i(pi) is the rate of
    reaching the goal. slip > 0 and the uniform restart make every policy's chain irreducible
    and aperiodic.

    Parameters
    ----------
    n_agents, height, width : int
        N >= 1 and a grid of at least 2 cells.
    goals : (n_agents, 2) int array_like of (row, column), optional
        Default: drawn uniformly (distinct while there are enough cells).
    wind : float or (n_agents,) array_like in [0, 1)
        Probability of the upward push per agent.
    slip : float in (0, 1]
        Probability of a random direction.
    dim : int, optional
        None: tabular features (centred one-hot in (s, a), dim = 4 height width); else random
        centred features of this dimension (`random_state_action_features`).
    rng : int, SeedSequence, Generator or None
        Draws the goals (if not given), then the features (if dim is given).
    """
    n_agents = check_positive_int(n_agents, "n_agents")
    height = check_positive_int(height, "height")
    width = check_positive_int(width, "width")
    n_cells = height * width
    if n_cells < 2:
        raise ValueError(f"the grid must have at least 2 cells; got {height} x {width}")
    slip = check_in_range(slip, "slip", 0.0, 1.0, low_open=True)
    wind = as_float_array(np.broadcast_to(wind, (n_agents,)) if np.ndim(wind) == 0 else wind,
                          "wind", ndim=1)
    if wind.shape != (n_agents,) or np.any((wind < 0) | (wind >= 1)):
        raise ValueError(f"wind must be a float or an (n_agents,) = ({n_agents},) array in "
                         f"[0, 1); got {wind}")
    gen = np.random.default_rng(rng)
    goal_cells = _goal_cells(goals, n_agents, height, width, gen)
    moves = _grid_moves(height, width)
    onehot = np.eye(n_cells)
    M = (1.0 - slip) * onehot[moves] + slip * onehot[moves].mean(axis=1, keepdims=True)
    push = wind[:, None, None] * onehot[moves[:, 0]] + (1.0 - wind[:, None, None]) * onehot
    P = np.einsum("sat,ntu->nsau", M, push)
    P[np.arange(n_agents), goal_cells] = 1.0 / n_cells
    rewards = np.zeros((n_agents, n_cells, 4))
    rewards[np.arange(n_agents), goal_cells] = 1.0
    if dim is None:
        # Centred one-hot rows e_(s,a) - 1 / (4 n_cells): 1 is orthogonal to their span.
        features = (np.eye(4 * n_cells) - 1.0 / (4 * n_cells)).reshape(n_cells, 4, 4 * n_cells)
    else:
        features = random_state_action_features(n_cells, 4, dim, gen)
    layout = GridLayout(height=height, width=width, goals=_read_only(goal_cells, np.int64),
                        wind=_read_only(wind), slip=slip)
    return ControlProblem.from_arrays(P, rewards, features, layout=layout)


def _goal_cells(goals: ArrayLike | None, n_agents: int, height: int, width: int,
                gen: np.random.Generator) -> IntArray:
    n_cells = height * width
    if goals is None:
        return gen.choice(n_cells, size=n_agents, replace=n_agents > n_cells)
    goals = np.asarray(goals)
    if (goals.shape != (n_agents, 2) or not np.issubdtype(goals.dtype, np.integer)
            or np.any((goals < 0) | (goals >= [height, width]))):
        raise ValueError(f"goals must be an (n_agents, 2) = ({n_agents}, 2) integer array of "
                         f"(row, column) inside the {height} x {width} grid; got {goals.tolist()}")
    return goals[:, 0] * width + goals[:, 1]
