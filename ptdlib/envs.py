"""Gymnasium's tabular environments as continuing average-reward problems.

Primer
------
Gymnasium's toy-text environments (FrozenLake, CliffWalking, Taxi) publish their dynamics as a
table ``env.unwrapped.P[s][a] = [(prob, next_state, reward, terminated), ...]`` and their start
law as ``env.unwrapped.initial_state_distrib``. They are *episodic*: an episode ends on a
transition with ``terminated=True`` and the next one starts from the start law. The average-reward
theory needs a *continuing* chain, so this module reads the table under one convention:

    step; if terminated: reset, and the reset is one time step.

The state after a terminating step is the observation that step returned (FrozenLake's hole or
goal, CliffWalking's goal cell, Taxi's "passenger delivered" state); from there the next step, under
any action, draws the next state from the start law and pays 0. Call a state *terminal* when some
entry of positive probability enters it with ``terminated=True`` (``terminal_states``). Then, for
an MDP kernel P (n, A, n) and expected reward R (n, A) [``P[s, a, s']``, ``R[s, a]``, the layout
of `ptdlib.mdp` with one agent],

    P(s' | s, a) = sum of gymnasium's probabilities of the entries (s, a) -> s',  s not terminal,
    P(s' | s, a) = rho(s'),  R(s, a) = 0,                                          s terminal,

with rho the start law and R(s, a) = sum_entries prob * reward (the reward of entering the goal is
gymnasium's: it sits on the transition *into* the goal). The chain of observed states of
``obs, reward, terminated = step(a); if terminated: obs = reset()`` with the reset as its own step
has exactly this law (tests/test_envs.py checks it against ``env.step`` empirically). Gymnasium's
own rows of terminal states (FrozenLake's absorbing self-loops, the moves out of CliffWalking's
goal) are never used. A table that enters a terminal state with ``terminated=False`` from a state
the chain can visit is rejected: the observation would then not say whether the episode ended.
Taxi has such entries only from states where the passenger already sits at the destination, which
``step``/``reset`` never visit; they are then treated as terminating. The time limit that
``gymnasium.make`` adds (truncation) is not part of a continuing task and is ignored.

Restart. ``restart`` = eps in [0, 1) replaces every step, with probability eps, by a jump to a
uniformly random state that pays 0: P <- (1 - eps) P + eps / n, R <- (1 - eps) R. With eps > 0
every policy's chain is ergodic; with eps = 0 a policy's chain must already be irreducible and
aperiodic, else `mrp_from_gymnasium` raises and names the states the start cannot reach.

Families. `frozenlake_problem`, `cliffwalking_problem` and `taxi_problem` build N variants of one
environment, one per agent, on a common state space with common features, evaluate a policy in
each (the uniform policy, or epsilon-greedy around the agent's own optimal policy from
`ptdlib.mdp.relative_value_iteration`) and return the `ptdlib.problems.Problem`
(``Problem.from_arrays``: theta_i* from `ptdlib.td`, B* the top-r left singular vectors of
Theta*) inside an `EnvFamily` record. Unlike the planted problems, nothing is low rank by design:
`misspecification` reports sigma_{r+1}(Theta*) / sigma_1(Theta*) and `projection_floor` the part
(1/N) ||(I - B* B*^T) Theta*||_F^2 of the error that no rank-r method can remove.

Rewards. A family divides every reward by r_max, the largest |reward| in its agents' tables
(``EnvFamily.reward_scale``: 1 for FrozenLake, 100 for CliffWalking's cliff, 20 for Taxi's
dropoff), so that |r| <= 1 as the theory assumes. Linear TD is equivariant under this change of
units (theta* and its iterates scale by 1/r_max at the same step), but the shared-basis update is
bilinear: its movement of B per step scales with ||w||^2 while the heads' does not, so which
steps are stable depends on the units (with gymnasium's raw rewards CliffWalking's ||theta_i*||
is about 60).
Multiply an error by r_max^2 (a gain by r_max) to return to gymnasium's units.

State spaces. A family keeps the states that some sequence of steps enters from the start: all
size^2 cells of FrozenLake (its maps are drawn with every cell reachable), 38 of CliffWalking's 48
cells (no step enters the cliff), 404 of Taxi's 500 states (of the 100 with the passenger at its
destination, only the 4 that a dropoff enters are visited). ``EnvFamily.states`` maps them
back to gymnasium's observations, and the restart is uniform over them. Every MDP of a family is
communicating (each kept state reaches every other under some policy, through a reset if need
be), so its optimal gain does not depend on the start state and relative value iteration applies
(Puterman, 1994, Section 8.3).

Features. One map for all agents of a family: random Fourier features of coordinates x(s) (grid
(row, column) in cells; for Taxi also scaled one-hot codes of the passenger and destination, so
the kernel is a product of a position kernel and two code kernels),

    phi(s) ~ (cos(w_j^T x(s) / ell + b_j))_{j=1..d},  w_j ~ N(0, I),  b_j ~ U[0, 2 pi)

(Rahimi & Recht, 2007), centred over the states (1 becomes orthogonal to span(Phi)), then given
orthonormal columns with the same span, and scaled to max_s ||phi(s)|| = 1 (`fourier_features`).
Orthonormal columns keep Theta* about value functions rather than about the conditioning of
nearly collinear cosines.

Randomness. A family draws from one Generator, in order: one integer e, then the features. Agent
i's own draws (its FrozenLake map, then its knob when drawn) come from a Generator on
SeedSequence(e, spawn_key=(i,)), so families
drawn from one seed with different N share their first agents (common random numbers across N)
and the features do not depend on N.

References
----------
Towers, M. et al. (2024). Gymnasium: a standard interface for reinforcement learning
environments. arXiv:2407.17032 (toy-text environments, version 1.4).
Puterman, M. L. (1994). Markov Decision Processes. Wiley. Section 8.3 (classification of MDPs).
Rahimi, A. & Recht, B. (2007). Random features for large-scale kernel machines. NeurIPS.
Sutton, R. S. & Barto, A. G. (2018). Reinforcement Learning: An Introduction, 2nd ed.,
Example 6.6 (cliff walking).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order

from ptdlib import markov, mdp
from ptdlib._validation import (
    STOCHASTIC_ATOL,
    FloatArray,
    IntArray,
    RngLike,
    as_float_array,
    check_in_range,
    check_positive_int,
)
from ptdlib.problems import Problem

#: Policies the families evaluate.
POLICIES = ("uniform", "epsilon_greedy")
#: Length scale ell of the Fourier features, in grid cells.
LENGTHSCALE = 2.0
#: Scale of Taxi's one-hot passenger and destination codes: two different codes are at distance
#: sqrt(2) TAXI_CODE_SCALE, so the code kernel exp(-|dx|^2 / (2 ell^2)) between them is 1 / e.
TAXI_CODE_SCALE = LENGTHSCALE
#: Smallest |R_jj| / max |R_jj| of the centred cosines: below it Q's last columns would be set by
#: round-off (about 1e4 eps: the directions stay accurate to about 1e-4).
FEATURE_RCOND = 1e-12
#: Maps drawn per agent before frozenlake_maps gives up finding one with every cell reachable.
MAX_MAP_DRAWS = 1000
#: States listed by name in an error message.
LISTED_STATES = 5


@dataclasses.dataclass(frozen=True, eq=False)
class EnvFamily:
    """N variants of a gymnasium environment as one evaluation problem (immutable record).

    Attributes
    ----------
    name : gymnasium id of the environment ("FrozenLake-v1", "CliffWalking-v1", "Taxi-v4").
    problem : the `Problem` (chains P_pi, rewards r_pi, shared features, theta*, B*).
    states : (n_states,) gymnasium observation of each problem state.
    labels : (n_states,) tuples naming each state, (row, column) or Taxi's
        (row, column, passenger, destination).
    maps : one tuple of map rows per agent (text, for drawing).
    knob : name of the per-agent parameter; knob_values (n_agents,) its values.
    policy : (n_agents, n_states, n_actions) the evaluated policies pi_i(a | s).
    kernels : (n_agents, n_states, n_actions, n_states) the agents' continuing MDPs P_i(s' | s, a)
        on the kept states, restart included (`control_problem` learns to act in them).
    action_rewards : (n_agents, n_states, n_actions) their expected rewards R_i(s, a).
    reward_scale : r_max, the largest |reward| in the agents' tables: every reward of the family
        (``problem.rewards``, ``action_rewards``) is gymnasium's divided by it, so |r| <= 1.
    """

    name: str
    problem: Problem
    states: IntArray
    labels: tuple[tuple[int, ...], ...]
    maps: tuple[tuple[str, ...], ...]
    knob: str
    knob_values: FloatArray
    policy: FloatArray
    kernels: FloatArray
    action_rewards: FloatArray
    reward_scale: float

    def __post_init__(self) -> None:
        for name in ("states", "knob_values", "policy"):
            view = np.asarray(getattr(self, name)).view()
            view.setflags(write=False)
            object.__setattr__(self, name, view)

    @property
    def misspecification(self) -> float:
        """sigma_{r+1}(Theta*) / sigma_1(Theta*) at the problem's rank."""
        return misspecification(self.problem)

    @property
    def projection_floor(self) -> float:
        """(1/N) ||(I - B* B*^T) Theta*||_F^2 at the problem's rank."""
        return projection_floor(self.problem)


# ------------------------------------------------------------------------ reading the tables


def _unwrapped(env: Any) -> Any:
    """The bare environment, after checking that it has a table and discrete spaces."""
    base = getattr(env, "unwrapped", env)
    table = getattr(base, "P", None)
    if not isinstance(table, Mapping):
        raise ValueError(f"env must expose a transition table env.unwrapped.P[s][a] = [(prob, "
                         f"next_state, reward, terminated), ...] (gymnasium's toy-text "
                         f"environments do); got {type(base).__name__} without one")
    n_states = getattr(getattr(base, "observation_space", None), "n", None)
    n_actions = getattr(getattr(base, "action_space", None), "n", None)
    if n_states is None or n_actions is None or len(table) != n_states:
        raise ValueError(f"env must have Discrete observation and action spaces matching "
                         f"env.unwrapped.P; got {len(table)} table states, observation_space "
                         f"{getattr(base, 'observation_space', None)}")
    if getattr(base, "fickle_passenger", False):
        raise ValueError("env has fickle_passenger=True: Taxi changes the destination inside "
                         "step(), outside env.unwrapped.P, so the table misstates the dynamics; "
                         "build it with fickle_passenger=False")
    return base


def _entries(base: Any) -> tuple[np.ndarray, ...]:
    """The table as flat arrays: source, action, next state, prob, reward, terminated."""
    rows = [(s, a, int(nxt), float(p), float(r), bool(done))
            for s, actions in base.P.items() for a, outcomes in actions.items()
            for p, nxt, r, done in outcomes if p > 0]
    s, a, nxt, p, r, done = (np.array(column) for column in zip(*rows, strict=True))
    return s, a, nxt, p, r, done.astype(bool)


def initial_distribution(env: Any) -> FloatArray:
    """Gymnasium's start law rho (n_states,): ``env.unwrapped.initial_state_distrib``.

    Raises ValueError when the environment has no such attribute or it is not a distribution.
    """
    base = _unwrapped(env)
    rho = getattr(base, "initial_state_distrib", None)
    if rho is None:
        raise ValueError(f"env must expose its start law env.unwrapped.initial_state_distrib; "
                         f"got {type(base).__name__} without one")
    rho = as_float_array(rho, "env.unwrapped.initial_state_distrib", ndim=1)
    if rho.shape != (len(base.P),) or np.any(rho < 0) or abs(rho.sum() - 1) > STOCHASTIC_ATOL:
        raise ValueError(f"env.unwrapped.initial_state_distrib must be a distribution over the "
                         f"{len(base.P)} states; got shape {rho.shape}, sum {rho.sum():.12g}")
    return rho


def terminal_states(env: Any) -> IntArray:
    """States entered by a terminating transition: {s' : prob > 0, terminated for some entry}.

    Notes
    -----
    FrozenLake: its holes and goal (gymnasium makes them absorbing, P[s][a] = [(1.0, s, 0, True)]);
    CliffWalking: the goal cell 47; Taxi: the four states with the passenger delivered.
    """
    _, _, nxt, _, _, done = _entries(_unwrapped(env))
    return np.unique(nxt[done])


def _reachable(graph: csr_array, sources: ArrayLike) -> np.ndarray:
    """Boolean mask of the states reachable from ``sources`` along the edges of ``graph``."""
    n = graph.shape[0]
    src = np.asarray(sources)
    # A virtual root n with an edge to every source: one breadth-first search.
    rows = np.concatenate([graph.nonzero()[0], np.full(src.size, n)])
    cols = np.concatenate([graph.nonzero()[1], src])
    extended = csr_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n + 1, n + 1))
    mask = np.zeros(n + 1, dtype=bool)
    mask[breadth_first_order(extended, n, directed=True, return_predecessors=False)] = True
    return mask[:n]


def _continuing_mdp(env: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(P (n, A, n), R (n, A), rho (n,)) under the continuing convention, without restart."""
    base = _unwrapped(env)
    rho = initial_distribution(base)
    n, n_actions = len(base.P), base.action_space.n
    s, a, nxt, p, r, done = _entries(base)
    terminal = np.zeros(n, dtype=bool)
    terminal[nxt[done]] = True
    P = np.zeros((n, n_actions, n))
    np.add.at(P, (s, a, nxt), p)
    R = np.zeros((n, n_actions))
    np.add.at(R, (s, a), p * r)
    error = np.abs(P.sum(axis=-1) - 1.0)
    if np.any(error > STOCHASTIC_ATOL):
        bad = tuple(int(i) for i in np.argwhere(error > STOCHASTIC_ATOL)[0])
        raise ValueError(f"env.unwrapped.P[{bad[0]}][{bad[1]}] must be a distribution (prob "
                         f"summing to 1 within {STOCHASTIC_ATOL:g}); got {P[bad].sum():.12g}")
    P[terminal] = rho
    R[terminal] = 0.0
    visited = _reachable(csr_array(P.sum(axis=1) > 0), np.flatnonzero(rho))
    ambiguous = visited[s] & ~terminal[s] & terminal[nxt] & ~done
    if np.any(ambiguous):
        k = int(np.argmax(ambiguous))
        raise ValueError(f"env.unwrapped.P enters terminal state {nxt[k]} with terminated=False "
                         f"from state {s[k]}, action {a[k]}: the state does not say whether the "
                         f"episode ended, so step-then-reset is not a chain on the observations")
    return P, R, rho


def _with_restart(P: FloatArray, R: FloatArray, restart: float) -> tuple[FloatArray, FloatArray]:
    """P <- (1 - eps) P + eps / n, R <- (1 - eps) R (a uniform jump that pays 0)."""
    return (1.0 - restart) * P + restart / P.shape[-1], (1.0 - restart) * R


def mdp_from_gymnasium(env: Any, *, restart: float = 0.0) -> tuple[FloatArray, FloatArray]:
    """The continuing MDP of a tabular gymnasium environment: kernel and expected rewards.

    Parameters
    ----------
    env : gymnasium environment with ``env.unwrapped.P`` and ``initial_state_distrib``
        (FrozenLake-v1, CliffWalking-v1, Taxi-v4 with fickle_passenger=False), wrapped or not.
    restart : float in [0, 1)
        eps, the probability that a step is replaced by a uniform jump paying 0.

    Returns
    -------
    P : (n_states, n_actions, n_states)
        P[s, a, s'], the layout of `ptdlib.mdp` for one agent (stack with ``P[None]``).
    R : (n_states, n_actions)
        Expected reward of the step from s under action a.

    Notes
    -----
    P(s' | s, a) = sum_{entries (p, s', r, done) of P[s][a]} p for s not terminal, rho(s') for s
    terminal; R(s, a) = sum p r (0 for s terminal); then P <- (1 - eps) P + eps / n,
    R <- (1 - eps) R. See the module primer for the convention (step; if terminated: reset).
    """
    restart = check_in_range(restart, "restart", 0.0, 1.0, high_open=True)
    P, R, _ = _continuing_mdp(env)
    return _with_restart(P, R, restart)


# ------------------------------------------------------------------------- policies and chains


def state_labels(env: Any) -> tuple[tuple[int, ...], ...]:
    """A name for every state: Taxi's (row, column, passenger, destination), a grid's
    (row, column), else (s,)."""
    base = _unwrapped(env)
    n = len(base.P)
    if hasattr(base, "decode"):
        return tuple(tuple(int(x) for x in base.decode(s)) for s in range(n))
    if hasattr(base, "ncol"):  # FrozenLake
        width = int(base.ncol)
    elif hasattr(base, "shape"):  # CliffWalking
        width = int(base.shape[1])
    else:
        return tuple((s,) for s in range(n))
    return tuple(divmod(s, width) for s in range(n))


def _named(states: np.ndarray, labels: Sequence[tuple[int, ...]]) -> str:
    listed = ", ".join(f"{int(s)} {labels[int(s)]}" for s in states[:LISTED_STATES])
    more = f" and {states.size - LISTED_STATES} more" if states.size > LISTED_STATES else ""
    return f"{listed}{more}"


def _chain_failure(P_pi: FloatArray, rho: FloatArray,
                   labels: Sequence[tuple[int, ...]]) -> str | None:
    """Why the chain P_pi is not ergodic (a message tail), or None when it is."""
    graph = csr_array(P_pi > 0)
    start = np.flatnonzero(rho)
    unreachable = np.flatnonzero(~_reachable(graph, start))
    if unreachable.size:
        return (f"states the start cannot reach under this policy: {_named(unreachable, labels)};"
                f" use restart > 0 or restrict the states")
    stuck = np.flatnonzero(~_reachable(graph.T.tocsr(), start))
    if stuck.size:
        return (f"states that never return to the start under this policy: "
                f"{_named(stuck, labels)}; use restart > 0 or a policy that leaves them")
    classes = markov.communicating_classes(P_pi)
    if len(classes) > 1:  # possible only when the start law has several states
        return (f"the start states fall in {len(classes)} communicating classes, the smallest "
                f"{_named(np.array(min(classes, key=len)), labels)}; use restart > 0")
    period = markov.period(P_pi)
    return f"the chain is periodic with period {period}; use restart > 0" if period > 1 else None


def _check_policy(policy: ArrayLike, n_states: int, n_actions: int) -> FloatArray:
    policy = as_float_array(policy, "policy", ndim=2)
    if policy.shape != (n_states, n_actions):
        raise ValueError(f"policy must have shape (n_states, n_actions) = ({n_states}, "
                         f"{n_actions}); got {policy.shape}")
    error = np.abs(policy.sum(axis=1) - 1.0)
    if np.any(policy < 0) or np.any(error > STOCHASTIC_ATOL):
        s = int(np.argmax(error)) if np.any(error > STOCHASTIC_ATOL) else int(
            np.argmin(policy.min(axis=1)))
        raise ValueError(f"policy rows must be probability vectors (non-negative, summing to 1 "
                         f"within {STOCHASTIC_ATOL:g}); row {s} is {policy[s].tolist()}")
    return policy


def mrp_from_gymnasium(env: Any, policy: ArrayLike, *,
                       restart: float = 0.0) -> tuple[FloatArray, FloatArray]:
    """The ergodic Markov reward process a policy induces in a tabular gymnasium environment.

    Parameters
    ----------
    env : gymnasium environment with a table (see `mdp_from_gymnasium`).
    policy : (n_states, n_actions)
        pi(a | s), rows non-negative and summing to 1 within 1e-10.
    restart : float in [0, 1)
        eps of the uniform restart.

    Returns
    -------
    P_pi : (n_states, n_states)
        Irreducible and aperiodic transition matrix.
    r_pi : (n_states,)
        Expected reward per state.

    Notes
    -----
    P_pi(s, s') = sum_a pi(a | s) P(s' | s, a),  r_pi(s) = sum_a pi(a | s) R(s, a), with (P, R)
    from `mdp_from_gymnasium`. ValueError names the states the start law cannot reach (or that
    never return to it), with their labels, or the period.
    """
    restart = check_in_range(restart, "restart", 0.0, 1.0, high_open=True)
    P, R, rho = _continuing_mdp(env)
    policy = _check_policy(policy, *R.shape)
    P, R = _with_restart(P, R, restart)
    P_pi, r_pi = np.einsum("sa,sat->st", policy, P), np.einsum("sa,sa->s", policy, R)
    failure = _chain_failure(P_pi, rho, state_labels(env))
    if failure is not None:
        raise ValueError(f"env with this policy and restart={restart} is not ergodic: {failure}")
    return P_pi, r_pi


# --------------------------------------------------------------------------------- features


def fourier_features(coordinates: ArrayLike, dim: int, *, lengthscale: float = LENGTHSCALE,
                     rng: RngLike = None) -> FloatArray:
    """Random Fourier features of state coordinates: centred, orthonormalised, max row norm 1.

    Parameters
    ----------
    coordinates : (n_states, k)
        x(s), e.g. grid (row, column) in cells.
    dim : int
        d, 1 <= d <= n_states - 1.
    lengthscale : float > 0
        ell of the Gaussian kernel exp(-|x - x'|^2 / (2 ell^2)) the features approximate.
    rng : int, SeedSequence, Generator or None
        Draws W (k, d) standard normal, then b (d,) uniform on [0, 2 pi).

    Returns
    -------
    (n_states, dim) ndarray
        Orthogonal columns of equal norm, max_s ||phi(s)|| = 1, 1^T Phi = 0 (1 is outside the
        span). ValueError when the centred cosines are numerically dependent.

    Notes
    -----
    Phi = Q / max_s ||row_s(Q)||, Q an orthonormal basis of span(C cos(X W / ell + 1 b^T)),
    C = I - 1 1^T / n: the centred cosines, orthonormalised (same span, 1 orthogonal to it).

    References
    ----------
    Rahimi & Recht (2007).
    """
    X = as_float_array(coordinates, "coordinates", ndim=2)
    dim = check_positive_int(dim, "dim")
    if dim > X.shape[0] - 1:
        raise ValueError(f"dim must be <= n_states - 1 = {X.shape[0] - 1} (full column rank "
                         f"with 1 outside the span); got dim={dim}")
    lengthscale = check_in_range(lengthscale, "lengthscale", 0.0, np.inf, low_open=True,
                                 high_open=True)
    gen = np.random.default_rng(rng)
    W = gen.standard_normal((X.shape[1], dim))
    b = gen.uniform(0.0, 2.0 * np.pi, size=dim)
    # Coordinates of the cosines in an orthonormal basis H of the complement of 1, then Q R: the
    # columns of H Q are orthonormal and orthogonal to 1 to round-off, however collinear the
    # cosines of a smooth kernel are (theta* in a collinear basis would be huge and cancelling).
    H = _complement_of_ones(X.shape[0])
    Q, upper = np.linalg.qr(H.T @ np.cos(X @ W / lengthscale + b))
    rcond = np.abs(np.diag(upper)).min() / np.abs(np.diag(upper)).max()
    if rcond < FEATURE_RCOND:
        raise ValueError(f"dim={dim} centred cosines are numerically dependent (smallest/largest "
                         f"|R_jj| = {rcond:.3g} < {FEATURE_RCOND:g}); lower dim")
    Phi = H @ Q
    return Phi / np.max(np.linalg.norm(Phi, axis=1))


def _complement_of_ones(n: int) -> FloatArray:
    """(n, n - 1) orthonormal basis of {x : 1^T x = 0}: the Householder reflection that maps e_1
    to 1 / sqrt(n), without its first column."""
    v = np.full(n, 1.0 / np.sqrt(n))
    v[0] -= 1.0
    return (np.eye(n) - 2.0 * np.outer(v, v) / (v @ v))[:, 1:]


# ---------------------------------------------------------------------------- diagnostics


def _theta_singular_values(problem: Problem, rank: int | None) -> tuple[FloatArray, int]:
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a Problem; got {type(problem).__name__}")
    rank = problem.rank if rank is None else check_positive_int(rank, "rank")
    if rank is None:
        raise ValueError("rank must be given for a problem built with rank=None")
    return np.linalg.svd(problem.theta_star, compute_uv=False), rank


def misspecification(problem: Problem, rank: int | None = None) -> float:
    """sigma_{r+1}(Theta*) / sigma_1(Theta*): how far the fixed points are from rank r.

    Parameters
    ----------
    problem : Problem
        Theta* = [theta_1* ... theta_N*] (dim x n_agents) from ``problem.theta_star``.
    rank : int, optional
        r >= 1; default the problem's rank.

    Returns
    -------
    float in [0, 1]; 0 when Theta* has rank <= r (or r >= min(dim, N)).
    """
    sigma, rank = _theta_singular_values(problem, rank)
    if rank >= sigma.size or sigma[0] == 0.0:
        return 0.0
    return float(sigma[rank] / sigma[0])


def projection_floor(problem: Problem, rank: int | None = None) -> float:
    """(1/N) min_B ||(I - B B^T) Theta*||_F^2 over rank-r bases: error no rank-r method removes.

    Parameters
    ----------
    problem : Problem
        Theta* from ``problem.theta_star``.
    rank : int, optional
        r >= 1; default the problem's rank, where the minimiser is the problem's B*.

    Returns
    -------
    float
        (1/N) sum_{k > r} sigma_k(Theta*)^2.

    Notes
    -----
    Eckart-Young: the minimum over orthonormal B (d x r) is attained by the top-r left singular
    vectors of Theta*, i.e. ``problem.B_star``, and equals the sum of the trailing sigma_k^2.
    """
    sigma, rank = _theta_singular_values(problem, rank)
    return float(np.sum(sigma[rank:] ** 2) / problem.n_agents)


# ----------------------------------------------------------------------------------- families


def _per_agent(value: float | Sequence[float] | None, name: str,
               streams: list[np.random.Generator], drawn: tuple[float, float]) -> FloatArray:
    """A knob in [0, 1] as (n_agents,): one float for all, one per agent, or None: agent i
    draws U[drawn] from its own stream."""
    n_agents = len(streams)
    if value is None:
        return np.array([g.uniform(*drawn) for g in streams])
    values = as_float_array(value, name)
    if values.ndim == 0:
        values = np.full(n_agents, float(values))
    if values.shape != (n_agents,) or np.any((values < 0) | (values > 1)):
        raise ValueError(f"{name} must be a float or a sequence of n_agents = {n_agents} values "
                         f"in [0, 1]; got {np.asarray(value).tolist()}")
    return values


def _agent_streams(gen: np.random.Generator, n_agents: int) -> list[np.random.Generator]:
    """Generator of agent i from SeedSequence(e, spawn_key=(i,)), e one draw of ``gen``."""
    entropy = int(gen.integers(2**63))
    return [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))
            for i in range(n_agents)]


def _common_states(mdps: list[tuple[FloatArray, FloatArray, FloatArray]]) -> IntArray:
    """States reachable from the start under some action sequence, the same for every agent."""
    masks = [_reachable(csr_array(P.sum(axis=1) > 0), np.flatnonzero(rho)) for P, _, rho in mdps]
    for i, mask in enumerate(masks):
        if not np.array_equal(mask, masks[0]):
            raise ValueError(f"agents 0 and {i} reach different states; a family needs one "
                             f"common state space")
    return np.flatnonzero(masks[0])


def _check_policy_choice(policy: str, epsilon: float) -> float:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}; got {policy!r}")
    return check_in_range(epsilon, "epsilon", 0.0, 1.0)


def _family_args(n_agents: int, policy: str, epsilon: float, restart: float, dim: int,
                 rng: RngLike) -> tuple[float, float, int, np.random.Generator,
                                        list[np.random.Generator]]:
    """The arguments every family shares, validated, with the family's Generator and the agents'
    streams drawn from it (module docstring, "Randomness")."""
    epsilon = _check_policy_choice(policy, epsilon)
    restart = check_in_range(restart, "restart", 0.0, 1.0, high_open=True)
    dim = check_positive_int(dim, "dim")
    gen = np.random.default_rng(rng)
    return epsilon, restart, dim, gen, _agent_streams(gen, n_agents)


def _family(name: str, agent_envs: list[Any], coordinates: FloatArray, *, knob: str,
            knob_values: FloatArray, maps: list[tuple[str, ...]], policy: str, epsilon: float,
            restart: float, rank: int | None, dim: int, gen: np.random.Generator) -> EnvFamily:
    """Shared assembly: tables -> common states -> restart -> policy -> chains -> Problem."""
    mdps = [_continuing_mdp(env) for env in agent_envs]
    keep = _common_states(mdps)
    reward_scale = max(float(np.abs(_entries(_unwrapped(env))[4]).max()) for env in agent_envs)
    P = np.stack([P_i[keep][:, :, keep] for P_i, _, _ in mdps])
    R = np.stack([R_i[keep] for _, R_i, _ in mdps]) / reward_scale
    P, R = _with_restart(P, R, restart)
    if policy == "uniform":
        pi = np.full(R.shape, 1.0 / R.shape[-1])
    else:
        pi = mdp.epsilon_greedy_policy(mdp.relative_value_iteration(P, R).q, epsilon)
    P_pi, r_pi = mdp.induced_chain(P, R, pi)
    all_labels = state_labels(agent_envs[0])
    labels = tuple(all_labels[s] for s in keep)
    for i, (P_i, (_, _, rho)) in enumerate(zip(P_pi, mdps, strict=True)):
        failure = _chain_failure(P_i, rho[keep], labels)
        if failure is not None:
            raise ValueError(f"agent {i} of {name} with policy={policy!r}, epsilon={epsilon}, "
                             f"restart={restart} is not ergodic: {failure}")
    Phi = fourier_features(coordinates[keep], dim, rng=gen)
    return EnvFamily(name=name, problem=Problem.from_arrays(P_pi, r_pi, Phi, rank=rank),
                     states=keep, labels=labels, maps=tuple(maps), knob=knob,
                     knob_values=knob_values, policy=pi, kernels=P, action_rewards=R,
                     reward_scale=reward_scale)


def control_problem(family: EnvFamily) -> mdp.ControlProblem:
    """The family's agents as control tasks: their MDPs and state-action features from Phi.

    Parameters
    ----------
    family : EnvFamily
        Its kernels and action rewards (restart included) and the shared features Phi (n, d).

    Returns
    -------
    ptdlib.mdp.ControlProblem
        psi(s, a) = phi(s) (x) e_a, of dimension d A (||psi(s, a)|| = ||phi(s)|| <= 1), and each
        agent's optimal gain J_i* by relative value iteration.

    Notes
    -----
    psi(s, a)[b d + j] = phi_j(s) 1{a = b}: one copy of the state features per action, so that
    Q(s, a) = psi(s, a)^T theta is any function of a and a Fourier function of s.
    """
    if not isinstance(family, EnvFamily):
        raise ValueError(f"family must be an EnvFamily; got {type(family).__name__}")
    Phi = np.asarray(family.problem.features)
    n_states, n_actions = family.action_rewards.shape[1:]
    psi = np.einsum("sd,ab->sabd", Phi, np.eye(n_actions)).reshape(n_states, n_actions, -1)
    return mdp.ControlProblem.from_arrays(family.kernels, family.action_rewards, psi)


def _grid_coordinates(height: int, width: int) -> FloatArray:
    return np.stack(np.divmod(np.arange(height * width), width), axis=1).astype(np.float64)


def _all_cells_reachable(desc: list[str]) -> bool:
    """Every cell of a FrozenLake map is entered from the start (holes and the goal end a path)."""
    from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv

    P, _, rho = _continuing_mdp(FrozenLakeEnv(desc=desc, is_slippery=False))
    return bool(_reachable(csr_array(P.sum(axis=1) > 0), np.flatnonzero(rho)).all())


def _draw_map(size: int, p: float, gen: np.random.Generator) -> list[str]:
    from gymnasium.envs.toy_text.frozen_lake import generate_random_map

    for _ in range(MAX_MAP_DRAWS):
        desc = generate_random_map(size=size, p=p, seed=int(gen.integers(2**31)))
        if _all_cells_reachable(desc):
            return desc
    raise ValueError(f"no {size} x {size} map with every cell reachable in {MAX_MAP_DRAWS} "
                     f"draws at p={p}; raise p")


def _check_map_args(n_agents: int, size: int, p: float) -> tuple[int, int, float]:
    return (check_positive_int(n_agents, "n_agents"), check_positive_int(size, "size", minimum=2),
            check_in_range(p, "p", 0.0, 1.0, low_open=True))


def frozenlake_maps(n_agents: int, size: int, *, p: float = 0.8,
                    rng: RngLike = None) -> list[list[str]]:
    """The FrozenLake maps of `frozenlake_problem` (same n_agents, size, p and rng).

    Parameters
    ----------
    n_agents : int
        N >= 1.
    size : int
        Side of the square map, >= 2.
    p : float in (0, 1]
        Probability that a cell is frozen (gymnasium's ``generate_random_map``).
    rng : int, SeedSequence, Generator or None
        Its first draw e seeds agent i's stream SeedSequence(e, spawn_key=(i,)).

    Returns
    -------
    list of N maps, each a list of ``size`` strings over "SFHG".

    Notes
    -----
    Agent i draws seeds from its stream and calls ``generate_random_map(size, p, seed)`` until
    every cell is reachable from the start, so that at restart = 0 every policy that tries every
    action has an ergodic chain (gymnasium's own maps are only guaranteed a path to the goal).
    The maps are thus gymnasium's, conditioned on full reachability. Small p on large maps makes
    both rejection loops slow (site percolation on the square lattice needs p above about 0.6).
    """
    n_agents, size, p = _check_map_args(n_agents, size, p)
    streams = _agent_streams(np.random.default_rng(rng), n_agents)
    return [_draw_map(size, p, g) for g in streams]


def frozenlake_problem(n_agents: int, size: int, *, p: float = 0.8,
                       success_rate: float | Sequence[float] | None = 1.0 / 3.0,
                       policy: str = "epsilon_greedy", epsilon: float = 0.1,
                       restart: float = 0.0, rank: int | None, dim: int,
                       rng: RngLike = None) -> EnvFamily:
    """N FrozenLake-v1 agents, one random map each (per-agent knob: the map and success_rate).

    Parameters
    ----------
    n_agents, size : int
        N >= 1 agents on size x size maps (size >= 2); n_states = size^2.
    p : float in (0, 1]
        Probability that a cell is frozen.
    success_rate : float, (n_agents,) sequence in [0, 1], or None
        Probability of moving in the intended direction (is_slippery=True); else one of the two
        perpendicular directions, equally likely. 1 is deterministic; the default 1/3 is
        gymnasium's. None draws U[0, 1] from each agent's stream.
    policy : "uniform" or "epsilon_greedy"
        pi_i = 1/4, or epsilon-greedy around agent i's optimal policy (relative value iteration).
    epsilon : float in [0, 1]
        Exploration of the epsilon-greedy policy.
    restart : float in [0, 1)
        Uniform restart probability.
    rank : int or None
        r of B* (top-r left singular vectors of Theta*).
    dim : int
        d <= size^2 - 1 Fourier features of (row, column).
    rng : int, SeedSequence, Generator or None
        Maps (`frozenlake_maps`), then the features.

    Returns
    -------
    EnvFamily
        knob "success_rate"; maps are the agents' maps.

    Notes
    -----
    Different maps move the holes, so the terminal states differ between agents while the state
    space (the size^2 cells) and the features are common. Under the uniform policy the slip is
    invisible: each direction gets probability 1/4 whatever the success rate, so only the maps
    vary. The gain is then the rate of entering the goal (reward 1, gymnasium's schedule).
    """
    import gymnasium as gym

    n_agents, size, p = _check_map_args(n_agents, size, p)
    epsilon, restart, dim, gen, streams = _family_args(n_agents, policy, epsilon, restart, dim,
                                                       rng)
    maps = [_draw_map(size, p, g) for g in streams]
    rates = _per_agent(success_rate, "success_rate", streams, drawn=(0.0, 1.0))
    agent_envs = [gym.make("FrozenLake-v1", desc=m, is_slippery=True, success_rate=float(rate))
                  for m, rate in zip(maps, rates, strict=True)]
    return _family("FrozenLake-v1", agent_envs, _grid_coordinates(size, size),
                   knob="success_rate", knob_values=rates, maps=[tuple(m) for m in maps],
                   policy=policy, epsilon=epsilon, restart=restart, rank=rank, dim=dim, gen=gen)


class _MixedTable:
    """The table of an environment that steps like ``wet`` w.p. ``weight``, else like ``dry``."""

    def __init__(self, dry: Any, wet: Any, weight: float) -> None:
        self.P = {s: {a: [(p * (1 - weight), *rest) for p, *rest in dry.P[s][a]]
                      + [(p * weight, *rest) for p, *rest in wet.P[s][a]] for a in dry.P[s]}
                  for s in dry.P}
        self.initial_state_distrib = dry.initial_state_distrib
        self.observation_space, self.action_space = dry.observation_space, dry.action_space
        self.shape = dry.shape

    @property
    def unwrapped(self) -> _MixedTable:
        return self


def cliffwalking_problem(n_agents: int, *, slip: float | Sequence[float] | None = None,
                         policy: str = "epsilon_greedy", epsilon: float = 0.1,
                         restart: float = 0.0, rank: int | None, dim: int,
                         rng: RngLike = None) -> EnvFamily:
    """N CliffWalking-v1 agents that differ in how often the cliff is slippery (knob: slip).

    Parameters
    ----------
    n_agents : int
        N >= 1.
    slip : float, (n_agents,) sequence in [0, 1], or None
        s_i: agent i's step uses gymnasium's slippery table (is_slippery=True: intended, left or
        right of it, 1/3 each) with probability s_i, the deterministic one otherwise. None draws
        s_i ~ U[0, 1] from agent i's stream.
    policy, epsilon, restart, rank, rng
        As in `frozenlake_problem`.
    dim : int
        d <= 37 Fourier features of (row, column).

    Returns
    -------
    EnvFamily
        38 states: the 48 cells minus the 10 cliff cells, which no step enters (stepping into the
        cliff pays -100 and returns to the start); knob "slip".

    Notes
    -----
    P_i = (1 - s_i) P_dry + s_i P_slippery, R_i likewise: the table of an environment that flips
    a coin before each step (gymnasium 1.4 has only the flag is_slippery). Under the uniform
    policy the slip is invisible (each direction has probability 1/4 either way), so all agents
    coincide; the default epsilon-greedy policy differs between agents, since slippery agents
    plan a path away from the cliff (Sutton & Barto, Example 6.6). Deterministic optimum: 13
    moves of reward -1 and the reset step, J* = -13/14.
    """
    import gymnasium as gym

    n_agents = check_positive_int(n_agents, "n_agents")
    epsilon, restart, dim, gen, streams = _family_args(n_agents, policy, epsilon, restart, dim,
                                                       rng)
    slips = _per_agent(slip, "slip", streams, drawn=(0.0, 1.0))
    dry, wet = (gym.make("CliffWalking-v1", is_slippery=flag) for flag in (False, True))
    agent_envs = [_MixedTable(dry.unwrapped, wet.unwrapped, s) for s in slips]
    layout = tuple("S" + "C" * 10 + "G" if r == 3 else "." * 12 for r in range(4))
    return _family("CliffWalking-v1", agent_envs, _grid_coordinates(4, 12), knob="slip",
                   knob_values=slips, maps=[layout] * n_agents, policy=policy, epsilon=epsilon,
                   restart=restart, rank=rank, dim=dim, gen=gen)


def taxi_problem(n_agents: int, *, rainy_probability: float | Sequence[float] | None = None,
                 policy: str = "epsilon_greedy", epsilon: float = 0.1, restart: float = 0.0,
                 rank: int | None, dim: int, rng: RngLike = None) -> EnvFamily:
    """N Taxi-v4 agents in different rain (knob: rainy_probability).

    Parameters
    ----------
    n_agents : int
        N >= 1.
    rainy_probability : float, (n_agents,) sequence in [0, 1], or None
        Gymnasium's constructor argument (is_rainy=True): a move goes the intended way with this
        probability, else to one lateral side or the other, equally likely (only when the
        intended move is possible). 1 is the dry taxi. None draws U[0.5, 1] per agent stream.
    policy, epsilon, restart, rank, rng
        As in `frozenlake_problem`.
    dim : int
        d <= 403 Fourier features of (row, column, TAXI_CODE_SCALE onehot(passenger),
        TAXI_CODE_SCALE onehot(destination)).

    Returns
    -------
    EnvFamily
        404 states: the 500 minus the 96 with the passenger waiting at its destination that
        step/reset never visit (only the 4 of them reached by a successful dropoff, reward 20,
        remain, as terminal states); knob "rainy_probability".

    Notes
    -----
    Labels are Taxi's decode(s) = (row, column, passenger, destination), passenger 4 = in the
    taxi. fickle_passenger is not supported: gymnasium applies it inside step(), not in the table.
    """
    import gymnasium as gym
    from gymnasium.envs.toy_text.taxi import MAP

    n_agents = check_positive_int(n_agents, "n_agents")
    epsilon, restart, dim, gen, streams = _family_args(n_agents, policy, epsilon, restart, dim,
                                                       rng)
    rain = _per_agent(rainy_probability, "rainy_probability", streams, drawn=(0.5, 1.0))
    agent_envs = [gym.make("Taxi-v4", is_rainy=True, rainy_probability=float(q)) for q in rain]
    codes = np.array(state_labels(agent_envs[0]))  # (row, column, passenger, destination)
    coordinates = np.column_stack([codes[:, :2], TAXI_CODE_SCALE * np.eye(5)[codes[:, 2]],
                                   TAXI_CODE_SCALE * np.eye(4)[codes[:, 3]]]).astype(np.float64)
    return _family("Taxi-v4", agent_envs, coordinates, knob="rainy_probability", knob_values=rain,
                   maps=[tuple(MAP)] * n_agents, policy=policy, epsilon=epsilon, restart=restart,
                   rank=rank, dim=dim, gen=gen)
