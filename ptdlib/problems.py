"""Problems: multi-agent average-reward evaluation tasks with a planted shared subspace.

A *problem* bundles, for agents i = 1..N on a common state space of n states, the transition
matrices P_i, the expected rewards r_i, the common features Phi (n x d), and what the theory
derives from them: stationary distributions mu_i, average rewards J_i = mu_i^T r_i, TD fixed
points theta_i* (A_i theta_i* + b_i = 0) and, when a rank r is given, the shared basis B* (d x r)
with heads w_i* = B*^T theta_i*. `Problem` is an immutable record (read-only float64 arrays);
build it with `Problem.from_arrays` (any chains and rewards) or `shared_subspace_problem` (the
planted construction below). docs/setting.md fixes the notation.

Planted shared subspace (exactly realisable)
--------------------------------------------
Choose B* (Haar-random orthonormal), heads w_i*, gains J_i and kernels P_i, put
theta_i* = B* w_i* and v_i = Phi theta_i*, and *define* the rewards

    r_i = J_i 1 + (I - P_i) v_i.

Then everything the learner targets is known exactly: mu_i^T r_i = J_i (because mu_i^T 1 = 1 and
mu_i^T (I - P_i) = 0); v_i solves the Poisson equation h = r_i - J_i 1 + P_i h, so the bias is
Phi theta_i* up to a constant; and b_i = Phi^T D_i (r_i - J_i 1) = Phi^T D_i (I - P_i) Phi theta_i*
= -A_i theta_i*, so theta_i* is the TD fixed point. The stacked Theta* = [theta_1* ... theta_N*]
has rank exactly r: sigma_{r+1}(Theta*) / sigma_1(Theta*) = 0.

Features: Gaussian columns projected orthogonal to 1 (so 1 is outside span(Phi) and Phi has full
column rank almost surely when d <= n - 1), scaled by one global factor so that
max_s ||phi(s)|| = 1. With 1 outside span(Phi) and P_i ergodic, A_i = Phi^T D_i (P_i - I) Phi is
negative definite and theta_i* is unique (Tsitsiklis & Van Roy, 1999).

Knobs
-----
- heterogeneity h in [0, 1]: P_i = (1 - h) P_base + h Q_i with P_base, Q_i dense random stochastic
  matrices (Dirichlet(1, ..., 1) rows). h = 0 gives identical kernels, h = 1 independent ones.
- laziness l in [0, 1): P_i <- l I + (1 - l) P_i. Each non-unit eigenvalue lambda becomes
  l + (1 - l) lambda, so mixing slows as l -> 1 while mu_i (hence J_i and theta_i*) is unchanged.
- head_spread s in [0, 1]: heads = a common head + s times an individual one. With
  z_i = g_i / ||g_i|| the drawn unit heads and e_1 the first unit vector of R^r,
  w_i* = HEAD_NORM (sqrt(1 - s^2) e_1 + s z_i): the common part carries the energy 1 - s^2 and
  the individual part s^2, so E||w_i*||^2 = HEAD_NORM^2 for every s (E z_i = 0) and the spread
  of the fixed points, (1/N) sum_i ||theta_i* - mean_j theta_j*||^2 = s^2 HEAD_NORM^2
  (1/N) sum_i ||z_i - mean_j z_j||^2, grows like s^2 on common random numbers. s = 1 (the
  default) gives the independent heads z_i (bit-identical to a call without the knob), s = 0
  identical heads HEAD_NORM e_1 (lambda_w = 0 when r >= 2). No extra draw: B* is Haar, so the
  common direction B* e_1 is already a uniformly random unit vector of R^d.
- reward_noise sigma >= 0: std of the zero-mean noise the simulator adds to observed rewards.
- misspecification m >= 0: each agent's fixed point is pushed off span(B*) by adding
  (I - P_i) Phi u_i to its rewards, u_i a uniformly random direction orthogonal to span(B*) with
  ||u_i|| = m HEAD_NORM (= m ||B* w_i*|| unless head_spread < 1). The perturbation has mu_i-mean
  zero (J_i is unchanged) and keeps the bias in span(Phi), so linear TD stays exact per agent and
  only the low-rank structure breaks: the fixed points are again known exactly,
  theta_i* = B* w_i* + u_i (the argument above with B* w_i* + u_i in place of B* w_i*; the tests
  re-solve them with `td.td_fixed_point`, and
  `Problem.from_arrays` solves them for arbitrary rewards), sigma_{r+1}/sigma_1 > 0, and B_star,
  heads_star are refitted as the best rank-r subspace of Theta* (top-r left singular vectors).
- bellman_residual sigma >= 0: a fixed per-state reward component eps_i added to every agent,
  orthogonal to the constant and to the features in agent i's stationary inner product,
  mu_i^T eps_i = 0 and Phi^T D_i eps_i = 0, with mu_i-weighted RMS sqrt(sum_s mu_i(s) eps_i(s)^2)
  = sigma. The fixed point of average-reward TD solves Phi^T D_i (r_i - J_i 1 + (P_i - I) Phi
  theta) = 0 with J_i = mu_i^T r_i, and eps_i enters neither equation: J_i, theta_i* = B* w_i*,
  B*, W* stay exactly planted. What changes is the Bellman residual of theta_i*, statewise
  r_i(s) - J_i + (P_i Phi theta_i*)(s) - phi(s)^T theta_i* = eps_i(s), zero for every s at
  sigma = 0. At sigma = 0 the parameter part of the TD noise at (theta*, J), delta_t phi(s_t),
  has mean zero given s_t (a martingale difference), so it carries no variance term in
  alpha tau_mix (the gain's noise r_i(s_t) - J_i is correlated along the chain at any sigma);
  sigma > 0 makes it correlated along the chain without touching the targets.

Head diversity and identifiability
----------------------------------
Planted heads (head_spread = 1, the default) are uniform on the sphere of radius ``HEAD_NORM``:
w_i* = HEAD_NORM g_i / ||g_i||, g_i ~ N(0, I_r). Then trace(W*^T W*) / N = HEAD_NORM^2 exactly, so
the head diversity lambda_w = sigma_min(W*)^2 / N never exceeds HEAD_NORM^2 / r, and
E[W*^T W* / N] = (HEAD_NORM^2 / r) I_r gives lambda_w -> HEAD_NORM^2 / r as N grows (roughly
(HEAD_NORM^2 / r)(1 - sqrt(r / N))^2 for moderate N, Marchenko-Pastur). With head_spread < 1 the
heads cluster around HEAD_NORM e_1 (their norms then vary, with mean square HEAD_NORM^2), so
lambda_w shrinks (to 0 at head_spread = 0 when r >= 2). Balanced heads (``balanced_heads``)
remove the drift of lambda_w with N by design: from the same draw G (N x r) = Q R, W* =
HEAD_NORM sqrt(N / r) Q, so W*^T W* / N = (HEAD_NORM^2 / r) I_r and lambda_w = HEAD_NORM^2 / r for
every N >= r, while trace(W*^T W*) / N = HEAD_NORM^2 as before (the heads' directions stay
random; their norms vary around HEAD_NORM). Fresh agents at every N with balanced heads are the
hard regimes' design: head diversity is not a confounder of a slope in N. With N < r the heads
cannot span R^r, lambda_w = 0 and B* is not identifiable: the factories warn
(`NotIdentifiableWarning`) and `Problem.require_identifiable` raises.

Randomness
----------
`shared_subspace_problem` draws everything from ONE Generator in this fixed order: features,
B*, heads W* (N x r), gains J (N,), P_base (n x n), Q (N x n x n), then the
misspecification directions (N x d) only when m > 0 and, last, the Bellman residuals' Gaussian
draw (N x n) only when sigma = bellman_residual > 0. The draws never depend on heterogeneity,
laziness, reward_noise, head_spread, m or sigma, so problems built from one seed with different
knob values share Phi, B*, the drawn heads, J, P_base and Q_i (common random numbers across a
sweep of a knob); turning sigma on changes the rewards only. Because array sizes depend on N,
problems drawn with different N do NOT share their first agents; for common random numbers
across N build one problem and take `Problem.subset`, or replicate a fixed pool with
`Problem.from_pool` (agent i uses pool agent i mod M, so heterogeneity and head diversity do not
change with N; docs/checks.md).

Misalignment at fixed heterogeneity (`product_chain_problem`)
-----------------------------------------------------------
Random planted instances have a misalignment chi > 0 that no knob above controls. The
product-chain family plants the same structure on states s = (x, y) whose parts move
independently (P_i = X_i kron Y): the features of span(B*) read x, plus ``coupling`` times a
function of y, the others only y. At coupling 0, chi = 0 exactly; chi grows with the coupling
while the chains (heterogeneity h), the nuisance features and the balanced heads
(lambda_w = HEAD_NORM^2 / r) stay those of one draw. It separates the filtering of misaligned
signals from heterogeneity and head diversity.

Slow mixing at fixed local dynamics (`metastable_problem`)
----------------------------------------------------------
Laziness slows mixing by slowing every move, the mean dynamics included (A_i is multiplied by
1 - l). A metastable chain slows only the moves between k clusters of states
(`cluster_labels`): P_i = (1 - q) W_i + q S, W_i fast random dynamics inside each cluster, S a
switch to a uniformly chosen other cluster (landing uniformly in it). The clusters form a
lumped chain with eigenvalue 1 - k q / (k - 1), so tau_mix grows like 1/q while W_i, the
features, B*, the heads and the gains stay those of one draw; rewards are planted as above
(theta_i* = B* w_i* exactly). As q -> 0, A_i tends to Phi^T D_i (W_i - I) Phi, which stays
negative definite unless span(Phi) comes close to the functions constant on clusters (random
features do not: with n = 30, d = 8, k = 3, N = 8, heterogeneity 0.5 and rng = 0, the smallest
margin omega of the agents' A_i moved from 0.0110 to 0.0101 while t_mix went from 3 to 262, q
from 0.2 to 0.0025).
`metastable_chain` is the bare chain (uniform inside the clusters by default, with closed-form
mu, spectrum and d(t): `theory.metastable_tv`).

Textbook chains (`two_state_chain`, `lazy_cycle`, `lazy_hypercube`, `hypercube_hamming_lumped`,
`random_dense_chain`, `metastable_chain`) return the (n, n) transition matrix: the mixing
notebook works with the matrices themselves; stack them (``P[None]``) and pass them to
`Problem.from_arrays` for TD.

References
----------
Tsitsiklis & Van Roy (1999), Average cost temporal-difference learning, Automatica 35.
Levin, Peres & Wilmer (2017), Markov Chains and Mixing Times, 2nd ed., Sections 2.3, 12.3, 12.4.
Kemeny & Snell (1976), Finite Markov Chains, Section 6.3 (lumpability; metastable chains).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ptdlib import _kernels, markov, subspace, td, theory
from ptdlib._validation import (
    FloatArray,
    IntArray,
    RngLike,
    as_float_array,
    check_in_range,
    check_orthonormal,
    check_positive_int,
    check_row_stochastic,
)

#: Norm of every planted head w_i* (and of every planted theta_i* = B* w_i*).
HEAD_NORM = 1.0
#: Heads count as spanning R^r when lambda_w exceeds this fraction of the mean ||w_i*||^2.
IDENTIFIABILITY_RTOL = 1e-12
#: Largest hypercube dimension k built densely (2^k x 2^k float64 matrix, 128 MiB at k = 12).
MAX_HYPERCUBE_DIM = 12


class NotIdentifiableWarning(UserWarning):
    """B* is not identifiable: fewer agents than the rank, so the heads cannot span R^r."""


def _read_only(x: ArrayLike) -> FloatArray:
    # A read-only view: freezes the record without copying and without touching the caller's flags.
    view = np.asarray(x, dtype=np.float64).view()
    view.setflags(write=False)
    return view


def _warn_if_not_identifiable(n_agents: int, rank: int | None) -> None:
    if rank is not None and n_agents < rank:
        warnings.warn(NotIdentifiableWarning(
            f"B_star is not identifiable: n_agents = {n_agents} < rank = {rank}, so the heads "
            "cannot span R^rank (head diversity lambda_w = 0)"), stacklevel=3)


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A multi-agent average-reward evaluation problem (immutable; arrays are read-only float64).

    Parameters
    ----------
    P : (n_agents, n_states, n_states)
        Ergodic transition matrices P_i.
    rewards : (n_agents, n_states)
        Expected rewards r_i(s).
    features : (n_states, dim)
        Common features Phi, rows phi(s) with ||phi(s)|| <= 1, 1 not in span(Phi).
    mu : (n_agents, n_states)
        Stationary distributions mu_i.
    average_reward : (n_agents,)
        Gains J_i = mu_i^T r_i.
    theta_star : (n_agents, dim)
        TD fixed points, A_i theta_i* + b_i = 0.
    B_star : (dim, rank) or None
        Orthonormal shared basis (planted, or the top-r left singular vectors of Theta*).
    heads_star : (n_agents, rank) or None
        Heads w_i* = B*^T theta_i*.
    reward_noise : float
        Std of zero-mean noise on observed rewards.
    rank : int or None
        Dimension r of the shared subspace; None when the problem has none.

    Notes
    -----
    Build with `Problem.from_arrays` or a factory; the constructor only checks shapes and that
    B_star is orthonormal.
    """

    P: FloatArray
    rewards: FloatArray
    features: FloatArray
    mu: FloatArray
    average_reward: FloatArray
    theta_star: FloatArray
    B_star: FloatArray | None = None
    heads_star: FloatArray | None = None
    reward_noise: float = 0.0
    rank: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, field.name, _read_only(value))
        _check_shapes(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle the fields only: unpickling re-freezes the arrays, and cached A (N x d x d) is
        # recomputed where needed instead of being shipped to workers.
        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    @property
    def n_agents(self) -> int:
        """Number of agents N."""
        return self.P.shape[0]

    @property
    def n_states(self) -> int:
        """Number of states n."""
        return self.P.shape[1]

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return self.features.shape[1]

    @cached_property
    def _td_system(self) -> tuple[FloatArray, FloatArray]:
        return tuple(_read_only(x) for x in td.td_matrices(self.P, self.rewards, self.features))

    @property
    def A(self) -> FloatArray:
        """TD matrices A_i = Phi^T D_i (P_i - I) Phi, shape (n_agents, dim, dim); computed once."""
        return self._td_system[0]

    @property
    def b(self) -> FloatArray:
        """TD vectors b_i = Phi^T D_i (r_i - J_i 1), shape (n_agents, dim); computed once."""
        return self._td_system[1]

    @cached_property
    def misalignment(self) -> float:
        """chi = max_i ||(I - B* B*^T) A_i B*||_2 (needs an identifiable B*)."""
        self.require_identifiable()
        return float(theory.misalignment(self.A, self.B_star))

    @cached_property
    def head_diversity(self) -> float:
        """lambda_w = sigma_min(W*)^2 / N (0 when N < rank)."""
        heads = self._require_subspace("head_diversity")
        return float(theory.head_diversity(heads))

    @cached_property
    def singular_value_ratio(self) -> float:
        """sigma_{r+1}(Theta*) / sigma_1(Theta*); 0 for an exactly rank-r Theta*."""
        self._require_subspace("singular_value_ratio")
        sigma = np.linalg.svd(self.theta_star, compute_uv=False)
        if self.rank >= sigma.size or sigma[0] == 0.0:
            return 0.0
        return float(sigma[self.rank] / sigma[0])

    def _require_subspace(self, what: str) -> FloatArray:
        if self.rank is None:
            raise ValueError(f"{what} needs a shared subspace, but this problem has rank=None; "
                             "build it with rank=... (Problem.from_arrays or a factory)")
        return self.heads_star

    def _identifiability_failure(self) -> str | None:
        heads = self._require_subspace("an identifiable B_star")
        if self.n_agents < self.rank:
            return (f"n_agents = {self.n_agents} < rank = {self.rank}, so the heads cannot span "
                    "R^rank")
        scale = float(np.mean(np.sum(heads**2, axis=1)))
        if self.head_diversity <= IDENTIFIABILITY_RTOL * scale:
            return (f"the heads do not span R^rank (head diversity lambda_w = "
                    f"{self.head_diversity:.3g} <= {IDENTIFIABILITY_RTOL:g} mean ||w_i*||^2)")
        return None

    def require_identifiable(self) -> None:
        """Raise ValueError unless B* is identifiable: rank given, N >= rank, heads span R^rank."""
        failure = self._identifiability_failure()
        if failure is not None:
            raise ValueError(f"B_star is not identifiable: {failure}")

    def describe(self) -> dict[str, Any]:
        """Key numbers of the problem as plain Python scalars (stable to print in notebooks)."""
        summary: dict[str, Any] = {
            "n_agents": self.n_agents, "n_states": self.n_states, "dim": self.dim,
            "rank": self.rank, "reward_noise": float(self.reward_noise),
            "constant_in_span_residual": float(td.constant_in_span_residual(self.features)),
            "max_feature_norm": float(np.max(np.linalg.norm(self.features, axis=1))),
            "min_negative_definiteness_margin":
                float(np.min(theory.negative_definiteness_margin(self.A))),
            "average_reward_min": float(np.min(self.average_reward)),
            "average_reward_max": float(np.max(self.average_reward)),
        }
        if self.rank is not None:
            summary["singular_value_ratio"] = self.singular_value_ratio
            summary["head_diversity"] = self.head_diversity
            identifiable = self._identifiability_failure() is None
            summary["identifiable"] = identifiable
            summary["misalignment"] = self.misalignment if identifiable else None
        return summary

    @classmethod
    def from_arrays(cls, P: ArrayLike, rewards: ArrayLike, features: ArrayLike, *,
                    rank: int | None = None, reward_noise: float = 0.0) -> Problem:
        """Validate chains, rewards and features and derive mu, J, theta* (and B*, W* given rank).

        Parameters
        ----------
        P : (n_agents, n_states, n_states)
            Transition matrices; each must be row-stochastic, irreducible and aperiodic.
        rewards : (n_agents, n_states)
            Expected rewards.
        features : (n_states, dim)
            Features with ||phi(s)|| <= 1, full column rank, 1 not in their span.
        rank : int, optional
            If given (1 <= rank <= dim), B_star = top-rank left singular vectors of Theta* (d x N)
            and heads_star[i] = B_star^T theta_star[i].
        reward_noise : float
            Std (>= 0) of zero-mean noise on observed rewards.

        Notes
        -----
        theta_i* solves A_i theta + b_i = 0; B* = U[:, :r] for Theta* = U S V^T.

        The inputs are copied, so later changes to the caller's arrays cannot reach the problem.
        """
        P = _check_stack(P)
        n_agents, n_states = P.shape[:2]
        rewards = as_float_array(rewards, "rewards", ndim=2)
        if rewards.shape != (n_agents, n_states):
            raise ValueError(f"rewards must have shape (n_agents, n_states) = "
                             f"{(n_agents, n_states)} to match P; got {rewards.shape}")
        features = _check_features(features, n_states)
        if rank is not None:
            rank = _check_rank(rank, features.shape[1])
        reward_noise = check_in_range(reward_noise, "reward_noise", 0.0, np.inf, high_open=True)
        _warn_if_not_identifiable(n_agents, rank)
        P, rewards, features = P.copy(), rewards.copy(), features.copy()
        theta_star = td.td_fixed_point(P, rewards, features)
        B_star, heads_star = _top_subspace(theta_star, rank) if rank is not None else (None, None)
        return cls(P=P, rewards=rewards, features=features,
                   mu=markov.stationary_distributions(P),
                   average_reward=td.average_reward(P, rewards), theta_star=theta_star,
                   B_star=B_star, heads_star=heads_star, reward_noise=reward_noise, rank=rank)

    def subset(self, n_agents: int) -> Problem:
        """The first ``n_agents`` agents (no copy); B_star is kept, so the target stays fixed.

        Taking subsets of one large problem gives common random numbers across N.
        """
        n_agents = check_positive_int(n_agents, "n_agents")
        if n_agents > self.n_agents:
            raise ValueError(f"n_agents must be <= {self.n_agents} (the problem's agents); "
                             f"got {n_agents}")
        _warn_if_not_identifiable(n_agents, self.rank)
        return self._select(slice(0, n_agents))

    @classmethod
    def from_pool(cls, pool: Problem, n_agents: int) -> Problem:
        """Replicate a pool of M agents: agent i is pool agent i mod M (B_star kept).

        Heterogeneity and head diversity then do not drift with N (docs/checks.md).
        """
        if not isinstance(pool, Problem):
            raise ValueError(f"pool must be a Problem; got {type(pool).__name__}")
        n_agents = check_positive_int(n_agents, "n_agents")
        _warn_if_not_identifiable(n_agents, pool.rank)
        return pool._select(np.arange(n_agents) % pool.n_agents)

    def _select(self, index: slice | np.ndarray) -> Problem:
        heads = None if self.heads_star is None else self.heads_star[index]
        return dataclasses.replace(
            self, P=self.P[index], rewards=self.rewards[index], mu=self.mu[index],
            average_reward=self.average_reward[index], theta_star=self.theta_star[index],
            heads_star=heads)


def _check_shapes(problem: Problem) -> None:
    N, n, d = problem.P.shape[0], problem.P.shape[-1], problem.features.shape[-1]
    r = problem.rank
    expected = {"P": (N, n, n), "rewards": (N, n), "features": (n, d), "mu": (N, n),
                "average_reward": (N,), "theta_star": (N, d)}
    if r is not None:
        expected |= {"B_star": (d, r), "heads_star": (N, r)}
    elif problem.B_star is not None or problem.heads_star is not None:
        raise ValueError("B_star and heads_star need rank; got rank=None")
    for name, shape in expected.items():
        got = getattr(problem, name)
        if got is None or got.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (from P {problem.P.shape} and "
                             f"features {problem.features.shape}); got "
                             f"{None if got is None else got.shape}")
    if r is not None:
        check_orthonormal(problem.B_star, "B_star")


def _check_stack(P: ArrayLike) -> FloatArray:
    arr = as_float_array(P, "P")
    if arr.ndim != 3:
        raise ValueError("P must be a stack (n_agents, n_states, n_states) of transition matrices "
                         f"(use P[None] for one chain); got shape {arr.shape}")
    return markov.check_ergodic(arr, name="P")


def _check_features(features: ArrayLike, n_states: int) -> FloatArray:
    Phi = as_float_array(features, "features", ndim=2)
    if Phi.shape[0] != n_states:
        raise ValueError(f"features must have n_states = {n_states} rows to match P; "
                         f"got shape {Phi.shape}")
    try:
        _check_dim(Phi.shape[1], n_states)
        return td.check_features(Phi)
    except ValueError as exc:  # td names the matrix Phi; name the argument the caller passed
        raise ValueError(f"features: {exc}") from exc


def _check_dim(dim: int, n_states: int) -> None:
    # 1 must stay outside span(Phi) while Phi has full column rank: dim <= n_states - 1.
    if dim > n_states - 1:
        raise ValueError(f"dim must be <= n_states - 1 = {n_states - 1} (full column rank with the "
                         f"all-ones vector outside span(features)); got dim={dim}, "
                         f"n_states={n_states}")


def _check_rank(rank: Any, dim: int) -> int:
    rank = check_positive_int(rank, "rank")
    if rank > dim:
        raise ValueError(f"rank must be <= dim; got rank={rank}, dim={dim}")
    return rank


def _top_subspace(theta_star: FloatArray, rank: int) -> tuple[FloatArray, FloatArray]:
    """B* = top-r left singular vectors of Theta* = theta_star^T (d x N); heads W* = Theta*^T B*."""
    # The top-r eigenvectors of Theta* Theta*^T = theta_star^T theta_star (d x d) by compiled
    # Jacobi, not LAPACK: the same bits on every machine. With N < r the extra eigenvectors (of
    # eigenvalue 0) complete the basis (B* is arbitrary there).
    B_star = _kernels.top_eigenvectors(_kernels.gram_matrix(theta_star), rank)[0]
    return B_star, _kernels.matmul(theta_star, B_star)


def _dirichlet_rows(shape: tuple[int, ...], gen: np.random.Generator) -> FloatArray:
    """Rows i.i.d. Dirichlet(1, ..., 1), uniform on the simplex: normalised Exp(1) = Gamma(1, 1)."""
    E = gen.standard_exponential(shape)
    E /= E.sum(axis=-1, keepdims=True)
    return E


def _planted_heads(n_agents: int, rank: int, gen: np.random.Generator,
                   spread: float = 1.0, balanced: bool = False) -> FloatArray:
    """Heads HEAD_NORM (sqrt(1 - spread^2) e_1 + spread z_i), z_i uniform on the unit sphere.

    spread = 1 (default): uniform on the sphere of radius HEAD_NORM (module docstring).
    balanced: W = HEAD_NORM sqrt(N / r) Q from the same draw G = Q R (module docstring).
    """
    W = gen.standard_normal((n_agents, rank))
    if balanced:
        return HEAD_NORM * np.sqrt(n_agents / rank) * _kernels.orthonormal_factor(W[None])[0]
    W *= HEAD_NORM / np.linalg.norm(W, axis=1, keepdims=True)
    if spread < 1.0:  # skipped at spread = 1: the heads stay bit-identical to the plain draw
        W *= spread
        W[:, 0] += HEAD_NORM * np.sqrt(1.0 - spread**2)
    return W


def _planted_kernels(n_agents: int, n_states: int, heterogeneity: float, laziness: float,
                     gen: np.random.Generator) -> FloatArray:
    """P_i = l I + (1 - l) ((1 - h) P_base + h Q_i), built in place in the (N, n, n) draw of Q."""
    P_base = _dirichlet_rows((n_states, n_states), gen)
    P = _dirichlet_rows((n_agents, n_states, n_states), gen)
    P *= heterogeneity
    P += (1.0 - heterogeneity) * P_base
    P *= 1.0 - laziness
    diagonal = np.arange(n_states)
    P[:, diagonal, diagonal] += laziness
    return P


def _bellman_difference(P: FloatArray, v: FloatArray) -> FloatArray:
    """(I - P_i) v_i for every agent: P (N, n, n), v (N, n) -> (N, n)."""
    return v - _kernels.matmul(P, v[:, :, None])[:, :, 0]


def _orthogonal_directions(n_agents: int, B_star: FloatArray,
                           gen: np.random.Generator) -> FloatArray:
    """Unit vectors uniform on the sphere of span(B*)^perp, one row per agent."""
    G = gen.standard_normal((n_agents, B_star.shape[0]))
    G -= _kernels.matmul(_kernels.matmul(G, B_star), B_star.T)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    return G


def shared_subspace_problem(n_agents: int, n_states: int, dim: int, rank: int, *,
                            heterogeneity: float = 0.5, laziness: float = 0.0,
                            reward_noise: float = 0.0, misspecification: float = 0.0,
                            head_spread: float = 1.0, balanced_heads: bool = False,
                            bellman_residual: float = 0.0, rng: RngLike = None) -> Problem:
    """Planted problem: theta_i* = B* w_i* exactly, or pushed off span(B*) by misspecification.

    Parameters
    ----------
    n_agents, n_states, dim, rank : int
        N >= 1, n >= 2, 1 <= d <= n - 1, 1 <= r <= d. N < r warns `NotIdentifiableWarning`.
    heterogeneity : float in [0, 1]
        h in P_i = (1 - h) P_base + h Q_i.
    laziness : float in [0, 1)
        l in P_i <- l I + (1 - l) P_i.
    reward_noise : float >= 0
        Std of the observation noise (stored; the simulator draws it).
    misspecification : float >= 0
        m: relative size ||theta_i* - B* w_i*|| / ||B* w_i*|| of the push off span(B*); needs
        rank < dim when positive.
    head_spread : float in [0, 1]
        s: heads w_i* = HEAD_NORM (sqrt(1 - s^2) e_1 + s z_i), z_i uniform unit vectors
        (module docstring); 1 (default) gives the independent heads, 0 identical ones. With
        s < 1 the misspecification push has norm m HEAD_NORM, the root-mean-square head norm.
    balanced_heads : bool
        True: W* = HEAD_NORM sqrt(N / r) Q, Q the orthonormal factor of the same Gaussian draw,
        so that lambda_w = HEAD_NORM^2 / r exactly for every N (module docstring); needs
        head_spread = 1 and N >= r. With misspecification > 0 the returned heads are the refit
        of Theta* and their lambda_w is close to, not exactly, HEAD_NORM^2 / r.
    bellman_residual : float >= 0
        sigma: mu_i-weighted RMS of a fixed reward component eps_i with mu_i^T eps_i = 0 and
        Phi^T D_i eps_i = 0, which leaves J_i and theta_i* exactly planted and makes eps_i the
        statewise Bellman residual of theta_i* (module docstring, Knobs). 0 (default): no draw,
        the residual is zero in every state.
    rng : int, SeedSequence, Generator or None
        One Generator feeds every draw, in the order of the module docstring.

    Returns
    -------
    Problem
        m = 0: the planted B*, W*, J and theta_i* = B* w_i*. m > 0: theta_i* = B* w_i* + u_i
        (exact TD fixed points), B_star and heads_star refitted from the top-r SVD of Theta*.

    Notes
    -----
    r_i = J_i 1 + (I - P_i) Phi (B* w_i* + u_i) + eps_i, u_i perp span(B*), ||u_i|| = m HEAD_NORM,
    eps_i = 0 at sigma = 0. Why eps_i leaves the targets alone: the TD fixed point solves
    Phi^T D_i (r_i - J_i 1 + (P_i - I) Phi theta_i) = 0 with J_i = mu_i^T r_i, and eps_i adds
    mu_i^T eps_i = 0 to J_i and Phi^T D_i eps_i = 0 to the equation; the Bellman residual
    r_i - J_i 1 + (P_i - I) Phi theta_i* becomes eps_i, non-zero state by state.

    References
    ----------
    docs/setting.md (planted, exactly realisable instances).
    """
    n_agents = check_positive_int(n_agents, "n_agents")
    n_states = check_positive_int(n_states, "n_states", minimum=2)
    dim = check_positive_int(dim, "dim")
    rank = _check_rank(rank, dim)
    _check_dim(dim, n_states)
    heterogeneity = check_in_range(heterogeneity, "heterogeneity", 0.0, 1.0)
    laziness = check_in_range(laziness, "laziness", 0.0, 1.0, high_open=True)
    knobs = _check_planting(n_agents, n_states, dim, rank, reward_noise, misspecification,
                            head_spread, balanced_heads, bellman_residual)
    _warn_if_not_identifiable(n_agents, rank)

    gen = np.random.default_rng(rng)
    features, B_star, heads, J = _planted_parts(n_agents, n_states, dim, rank, knobs, gen)
    P = _planted_kernels(n_agents, n_states, heterogeneity, laziness, gen)
    return _planted_problem(P, features, B_star, heads, J, knobs, gen)


class _Planting(NamedTuple):
    """The validated knobs that plant rewards and heads (shared by the planted factories)."""

    reward_noise: float
    misspecification: float
    head_spread: float
    balanced_heads: bool
    bellman_residual: float = 0.0


def _check_planting(n_agents: int, n_states: int, dim: int, rank: int, reward_noise: Any,
                    misspecification: Any, head_spread: Any, balanced_heads: Any,
                    bellman_residual: Any = 0.0) -> _Planting:
    """Validate the planting knobs of `shared_subspace_problem` (ValueError names the knob)."""
    reward_noise = check_in_range(reward_noise, "reward_noise", 0.0, np.inf, high_open=True)
    m = check_in_range(misspecification, "misspecification", 0.0, np.inf, high_open=True)
    sigma = check_in_range(bellman_residual, "bellman_residual", 0.0, np.inf, high_open=True)
    if sigma > 0 and dim > n_states - 2:  # [1, Phi] would span every function of the state
        raise ValueError(f"bellman_residual > 0 needs dim <= n_states - 2 = {n_states - 2} (a "
                         f"residual orthogonal to 1 and to the features); got dim={dim}, "
                         f"bellman_residual={bellman_residual!r}")
    head_spread = check_in_range(head_spread, "head_spread", 0.0, 1.0)
    if not isinstance(balanced_heads, bool | np.bool_):
        raise ValueError(f"balanced_heads must be a bool; got {balanced_heads!r}")
    if balanced_heads and (head_spread != 1.0 or n_agents < rank):
        raise ValueError("balanced_heads needs head_spread = 1 and n_agents >= rank; got "
                         f"head_spread={head_spread}, n_agents={n_agents}, rank={rank}")
    if m > 0 and rank == dim:
        raise ValueError("misspecification > 0 needs rank < dim (a direction orthogonal to "
                         f"span(B*)); got misspecification={m}, rank = dim = {dim}")
    return _Planting(reward_noise, m, head_spread, bool(balanced_heads), sigma)


def _planted_parts(n_agents: int, n_states: int, dim: int, rank: int, knobs: _Planting,
                   gen: np.random.Generator) -> tuple[FloatArray, FloatArray, FloatArray,
                                                      FloatArray]:
    """Features, B*, heads W* and gains J, drawn in this order (module docstring)."""
    features = random_features(n_states, dim, gen)
    B_star = subspace.haar_orthonormal(dim, rank, gen)
    heads = _planted_heads(n_agents, rank, gen, knobs.head_spread, knobs.balanced_heads)
    J = gen.uniform(0.0, 1.0, size=n_agents)
    return features, B_star, heads, J


def _planted_problem(P: FloatArray, features: FloatArray, B_star: FloatArray, heads: FloatArray,
                     J: FloatArray, knobs: _Planting, gen: np.random.Generator) -> Problem:
    """r_i = J_i 1 + (I - P_i) Phi theta_i*, theta_i* = B* w_i* (+ u_i when misspecified)."""
    rank = B_star.shape[1]
    # Products by _kernels.matmul, not BLAS, here and below: the same problem on every machine.
    theta = _kernels.matmul(heads, B_star.T)
    if knobs.misspecification > 0:
        # Still exactly realisable, with theta_i* + u_i in place of theta_i*: no solve needed.
        theta += (_orthogonal_directions(heads.shape[0], B_star, gen)
                  * (knobs.misspecification * HEAD_NORM))
        B_star, heads = _top_subspace(theta, rank)
    rewards = _bellman_difference(P, _kernels.matmul(theta, features.T))
    rewards += J[:, None]
    mu = markov.stationary_distributions(P)
    if knobs.bellman_residual > 0:  # drawn last: every other field keeps its bits
        z = gen.standard_normal(mu.shape)
        rewards += knobs.bellman_residual * _residual_orthogonal_to_features(mu, features, z)
    return Problem(P=P, rewards=rewards, features=features, mu=mu, average_reward=J,
                   theta_star=theta, B_star=B_star, heads_star=heads,
                   reward_noise=knobs.reward_noise, rank=rank)


def _residual_orthogonal_to_features(mu: FloatArray, Phi: FloatArray, z: FloatArray) -> FloatArray:
    """z with span([1, Phi]) projected out in each mu_i-weighted inner product, unit mu_i-RMS.

    Parameters
    ----------
    mu : (n_agents, n_states)
        Stationary distributions mu_i (positive entries).
    Phi : (n_states, dim)
        Features; X = [1, Phi] has full column rank (1 is outside span(Phi)).
    z : (n_agents, n_states)
        Draws to project (standard normal in the factories).

    Returns
    -------
    (n_agents, n_states) ndarray
        eps_i with mu_i^T eps_i = 0, Phi^T D_i eps_i = 0 and sum_s mu_i(s) eps_i(s)^2 = 1.

    Notes
    -----
        eps_i = c_i (z_i - X (X^T D_i X)^{-1} X^T D_i z_i) = c_i D_i^{-1/2} (I - Q_i Q_i^T) y_i,

    with D_i = diag(mu_i), y_i = D_i^{1/2} z_i, Q_i the orthonormal factor of D_i^{1/2} X
    (compiled Gram-Schmidt: the same bits on every machine) and c_i > 0 the inverse of
    ||(I - Q_i Q_i^T) y_i||, the mu_i-RMS of the projection.
    """
    root = np.sqrt(mu)
    X = np.concatenate([np.ones((Phi.shape[0], 1)), Phi], axis=1)
    Q = _kernels.orthonormal_factor(root[:, :, None] * X[None])
    y = root * z
    y -= _kernels.matmul(Q, _kernels.matmul(y[:, None, :], Q).transpose(0, 2, 1))[:, :, 0]
    y /= np.sqrt(np.sum(y * y, axis=1, keepdims=True))
    return y / root


def product_chain_problem(n_agents: int, n_states: int, dim: int, rank: int, *,
                          signal_states: int, coupling: float = 0.0,
                          heterogeneity: float = 0.5, reward_noise: float = 0.0,
                          rng: RngLike = None) -> Problem:
    """Planted problem whose misalignment chi is set by one knob, at fixed heterogeneity and heads.

    The state is a pair s = (x, y) of a *signal* part x (``signal_states`` values) and a
    *nuisance* part y (n_states / signal_states values) that move independently: agent i's
    chain is X_i kron Y. The features of span(B*) read x, and with weight ``coupling`` also y;
    the others read only y. At coupling 0 the two groups of features are functions of
    independent chains, so the TD dynamics never push span(B*) out of itself: chi = 0 exactly.
    The coupling makes the span(B*) features share the nuisance part's dynamics, and chi grows
    with it, while the chains (hence the heterogeneity h), the nuisance features and the heads
    (hence lambda_w) stay those of the same draw.

    Parameters
    ----------
    n_agents, n_states, dim, rank : int
        N >= rank (balanced heads), n = signal_states * (nuisance states), 1 <= r < d.
    signal_states : int
        Values of x, at least r + 1; the nuisance part needs at least d - r + 1 values.
    coupling : float in [0, 1]
        c in phi(x, y) = Q (f(x) + c k(y), g(y)) / scale.
    heterogeneity : float in [0, 1]
        h in X_i = (1 - h) X_base + h X_i' (Y is shared by the agents).
    reward_noise : float >= 0
        Std of the observation noise (stored; the simulator draws it).
    rng : int, SeedSequence, Generator or None
        One Generator feeds every draw, in the order of the Notes; none depends on ``coupling``,
        ``heterogeneity`` or ``reward_noise`` (common random numbers across a sweep of c).

    Returns
    -------
    Problem
        theta_i* = B* w_i* exactly, B* = Q[:, :r]; heads balanced (W*^T W* / N =
        (HEAD_NORM^2 / r) I, so lambda_w = HEAD_NORM^2 / r for every c).

    Notes
    -----
    Draws, in order: f (x -> R^r), k (y -> R^r) and g (y -> R^(d-r)), Gaussian, centred over
    the values of x and of y; Q, a Haar orthogonal d x d matrix; the heads; the gains J;
    X_base, X' (N), then Y (Dirichlet(1, ..., 1) rows). State index x * n_y + y; one global
    scale makes max_s ||phi(s)|| = 1; rewards planted as in `shared_subspace_problem`.
    Why chi = 0 at c = 0: under mu_i = mu_X_i (x) mu_Y the parts are independent and y is
    stationary, so the cross blocks of A_i = Phi^T D_i (P_i - I) Phi vanish, e.g.
    E[f(x) (g(y') - g(y))^T] = E[f(x)] E[g(y') - g(y)]^T = 0; in the coordinates of Q, A_i is
    block diagonal and span(B*) invariant. At c > 0 the block E[c k(y) (g(y') - g(y))^T] is not
    zero. 1 is outside span(Phi): every combination of the centred features has mean 0 over the
    uniform law.
    """
    n_agents = check_positive_int(n_agents, "n_agents")
    n_states = check_positive_int(n_states, "n_states", minimum=2)
    dim = check_positive_int(dim, "dim")
    rank = _check_rank(rank, dim)
    signal_states = check_positive_int(signal_states, "signal_states")
    coupling = check_in_range(coupling, "coupling", 0.0, 1.0)
    heterogeneity = check_in_range(heterogeneity, "heterogeneity", 0.0, 1.0)
    reward_noise = check_in_range(reward_noise, "reward_noise", 0.0, np.inf, high_open=True)
    nuisance_states, remainder = divmod(n_states, signal_states)
    if remainder or rank == dim or signal_states < rank + 1 or nuisance_states < dim - rank + 1:
        raise ValueError(f"product_chain_problem needs n_states = signal_states * nuisance "
                         f"states, rank < dim, signal_states >= rank + 1 and nuisance states >= "
                         f"dim - rank + 1; got n_states={n_states}, signal_states="
                         f"{signal_states}, dim={dim}, rank={rank}")
    if n_agents < rank:
        raise ValueError(f"product_chain_problem plants balanced heads: n_agents must be >= rank; "
                         f"got n_agents={n_agents}, rank={rank}")

    gen = np.random.default_rng(rng)
    f = gen.standard_normal((signal_states, rank))
    k = gen.standard_normal((nuisance_states, rank))
    g = gen.standard_normal((nuisance_states, dim - rank))
    for part in (f, k, g):
        part -= part.mean(axis=0)
    Q = subspace.haar_orthonormal(dim, dim, gen)
    heads = _planted_heads(n_agents, rank, gen, balanced=True)
    J = gen.uniform(0.0, 1.0, size=n_agents)
    X = _planted_kernels(n_agents, signal_states, heterogeneity, 0.0, gen)
    Y = _dirichlet_rows((nuisance_states, nuisance_states), gen)

    signal = np.repeat(f, nuisance_states, axis=0) + coupling * np.tile(k, (signal_states, 1))
    parts = np.concatenate([signal, np.tile(g, (signal_states, 1))], axis=1)
    features = _kernels.matmul(parts, Q.T)
    features /= np.max(np.linalg.norm(features, axis=1))
    # Kronecker products are entrywise (no sums): the same bits on every machine.
    P = np.stack([np.kron(X_i, Y) for X_i in X])
    B_star = np.ascontiguousarray(Q[:, :rank])
    theta = _kernels.matmul(heads, B_star.T)
    rewards = _bellman_difference(P, _kernels.matmul(theta, features.T))
    rewards += J[:, None]
    return Problem(P=P, rewards=rewards, features=features,
                   mu=markov.stationary_distributions(P), average_reward=J, theta_star=theta,
                   B_star=B_star, heads_star=heads, reward_noise=reward_noise, rank=rank)


def cluster_labels(n_states: int, n_clusters: int,
                   cluster_sizes: Sequence[int] | None = None) -> IntArray:
    """Cluster of each state: states 0..m_1 - 1 form cluster 0, the next m_2 cluster 1, ...

    Parameters
    ----------
    n_states : int
        n >= 2.
    n_clusters : int
        k, 2 <= k <= n.
    cluster_sizes : sequence of k ints, optional
        m_1, ..., m_k >= 1 with sum n. Default: as equal as possible, the first n mod k clusters
        one state larger (m_c = n // k + [c < n mod k]).

    Returns
    -------
    (n_states,) int ndarray
        c(s) in 0..k-1, non-decreasing in s.
    """
    return np.repeat(np.arange(n_clusters), _cluster_sizes(n_states, n_clusters, cluster_sizes))


def _cluster_sizes(n_states: Any, n_clusters: Any, cluster_sizes: Any) -> IntArray:
    """Validated sizes m_1..m_k of `cluster_labels` (ValueError names the field and value)."""
    n_states = check_positive_int(n_states, "n_states", minimum=2)
    n_clusters = check_positive_int(n_clusters, "n_clusters", minimum=2)
    if n_clusters > n_states:
        raise ValueError(f"n_clusters must be <= n_states = {n_states} (every cluster needs a "
                         f"state); got n_clusters={n_clusters}")
    if cluster_sizes is None:
        base, extra = divmod(n_states, n_clusters)
        return base + (np.arange(n_clusters) < extra).astype(np.int64)
    sizes = list(cluster_sizes) if isinstance(cluster_sizes, Sequence | np.ndarray) else None
    if (sizes is None or len(sizes) != n_clusters
            or not all(isinstance(m, int | np.integer) and not isinstance(m, bool) and m >= 1
                       for m in sizes)
            or sum(sizes) != n_states):
        raise ValueError(f"cluster_sizes must be n_clusters = {n_clusters} integers >= 1 summing "
                         f"to n_states = {n_states}; got {cluster_sizes!r}")
    return np.array(sizes, dtype=np.int64)


def _same_cluster(sizes: IntArray) -> tuple[IntArray, np.ndarray]:
    """Labels c(s) of `cluster_labels` for validated sizes, and the mask c(s) == c(s')."""
    labels = np.repeat(np.arange(sizes.size), sizes)
    return labels, labels[:, None] == labels[None, :]


def _switch_kernel(labels: IntArray, sizes: IntArray) -> FloatArray:
    """S(s, s') = 1 / ((k - 1) m_c(s')) if c(s') != c(s), else 0: leave for a uniform other cluster,
    land uniformly in it."""
    k = sizes.size
    other = labels[:, None] != labels[None, :]
    return other / ((k - 1) * sizes[labels][None, :])


def metastable_chain(n_states: int, n_clusters: int, switch_probability: float, *,
                     cluster_sizes: Sequence[int] | None = None,
                     within: ArrayLike | None = None) -> FloatArray:
    """A chain with k clusters of states: it stays in its cluster, or switches w.p. q per step.

    Parameters
    ----------
    n_states : int
        n >= 2.
    n_clusters : int
        k, 2 <= k <= n (`cluster_labels` says which states form which cluster).
    switch_probability : float in (0, 1)
        q: the probability of leaving the current cluster at a step.
    cluster_sizes : sequence of k ints, optional
        Sizes m_1..m_k summing to n (default: as equal as possible, `cluster_labels`).
    within : (n, n) or (N, n, n) array_like, optional
        W: row-stochastic kernel(s) that never leave a cluster (zero outside the diagonal
        blocks), the fast dynamics inside each cluster. Default: uniform within the cluster,
        W(s, s') = 1 / m_c(s) for c(s') = c(s), which mixes a cluster in one step.

    Returns
    -------
    (n, n) or (N, n, n) ndarray
        P = (1 - q) W + q S, S(s, s') = 1 / ((k - 1) m_c(s')) for c(s') != c(s), else 0 (leave for
        a uniformly chosen other cluster and land uniformly in it). Ergodic for every W: P^2 > 0.

    Notes
    -----
    The clusters form a Markov chain of their own (the kernel is lumpable): stay w.p. 1 - q, go to
    each other cluster w.p. q / (k - 1). Its non-unit eigenvalue, with multiplicity k - 1, is

        lambda_q = 1 - k q / (k - 1),

    and, since S maps every function to one constant on clusters, the other eigenvalues of P are
    (1 - q) times those of the blocks W_c, one eigenvalue 1 of each block removed. So as q -> 0
    the slowest mode is the switching, t_rel = (k - 1) / (k q), while the dynamics inside a
    cluster stay W. With the default (uniform) W: mu(s) = 1 / (k m_c(s)), the other eigenvalues
    are 0, and for t >= 1 d(t) = (1 - 1/k) |lambda_q|^t exactly (`theory.metastable_tv`): after
    one step the position inside the cluster is uniform, and only the cluster's law is left to
    mix.

    References
    ----------
    Levin, Peres & Wilmer (2017), Section 2.3.1 (lumped chains) and Section 12.1 (spectra);
    Kemeny & Snell (1976), Finite Markov Chains, Theorem 6.3.2 (lumpability).
    """
    sizes = _cluster_sizes(n_states, n_clusters, cluster_sizes)
    q = check_in_range(switch_probability, "switch_probability", 0.0, 1.0, low_open=True,
                       high_open=True)
    labels, same = _same_cluster(sizes)
    if within is None:
        W = same / sizes[labels][:, None]
    else:
        W = check_row_stochastic(within, "within")
        if W.ndim not in (2, 3) or W.shape[-2:] != same.shape:
            raise ValueError(f"within must be (n_states, n_states) = {same.shape} or a stack of "
                             f"them; got shape {W.shape}")
        leaks = np.argwhere((W != 0) & ~same)
        if leaks.size:
            index = tuple(int(x) for x in leaks[0])
            raise ValueError(f"within must keep every cluster (zero outside the diagonal blocks "
                             f"of cluster_sizes {sizes.tolist()}); got {W[index]:.3g} at index "
                             f"{index}")
    return (1.0 - q) * W + q * _switch_kernel(labels, sizes)


def _block_dirichlet_rows(shape: tuple[int, ...], same: np.ndarray,
                          gen: np.random.Generator) -> FloatArray:
    """Rows Dirichlet(1, ..., 1) on their own cluster: the (..., n, n) Exp(1) draw of
    `_dirichlet_rows`, masked to the diagonal blocks and normalised."""
    E = gen.standard_exponential(shape)
    E *= same
    E /= E.sum(axis=-1, keepdims=True)
    return E


def metastable_problem(n_agents: int, n_states: int, dim: int, rank: int, *,
                       n_clusters: int = 2, switch_probability: float = 0.05,
                       cluster_sizes: Sequence[int] | None = None, heterogeneity: float = 0.5,
                       reward_noise: float = 0.0, misspecification: float = 0.0,
                       head_spread: float = 1.0, balanced_heads: bool = False,
                       bellman_residual: float = 0.0, rng: RngLike = None) -> Problem:
    """Planted problem on metastable chains: tau_mix ~ 1/q, the dynamics inside clusters fixed.

    Every agent's chain is a `metastable_chain`: k clusters of states, fast random dynamics W_i
    inside each, and a switch to another cluster with probability q per step. As q falls the
    chains mix more slowly (t_rel = (k - 1) / (k q) once q is small), while W_i, the features,
    B*, the heads and the gains stay those of the same draw. Rewards are planted exactly as in
    `shared_subspace_problem`, so theta_i* = B* w_i* is the TD fixed point exactly.

    Parameters
    ----------
    n_agents, n_states, dim, rank : int
        As for `shared_subspace_problem`: N >= 1, n >= 2, 1 <= d <= n - 1, 1 <= r <= d.
    n_clusters : int
        k, 2 <= k <= n.
    switch_probability : float in (0, 1)
        q, common to the agents (it sets the mixing time).
    cluster_sizes : sequence of k ints, optional
        m_1..m_k >= 1 summing to n (default: as equal as possible, `cluster_labels`).
    heterogeneity : float in [0, 1]
        h in W_i = (1 - h) W_base + h W_i': how the agents' dynamics inside the clusters differ.
        W_base and W_i' have rows Dirichlet(1, ..., 1) on their own cluster.
    reward_noise, misspecification, head_spread, balanced_heads, bellman_residual
        As for `shared_subspace_problem`. bellman_residual = sigma > 0 plants a statewise
        Bellman residual eps_i (mu_i-RMS sigma, mu_i- and Phi^T D_i-orthogonal) that leaves J_i and
        theta_i* exact: the parameter part of the TD noise at theta* is then no longer a
        martingale difference given s_t (notebook 12 measures how the Markov floor's excess over
        the i.i.d. floor grows with tau_mix ~ 1/q).
    rng : int, SeedSequence, Generator or None
        One Generator feeds every draw, in the order of `shared_subspace_problem` with
        (W_base, W') in place of (P_base, Q), the residual draw last; none depends on q, h or
        the other knobs, so a sweep of q has common random numbers. With the same seed and sizes
        the features, B*, heads and gains are those of `shared_subspace_problem`.

    Returns
    -------
    Problem
        P_i = (1 - q) W_i + q S, theta_i* = B* w_i* exactly (m = 0) at every sigma.

    Notes
    -----
    r_i = J_i 1 + (I - P_i) Phi theta_i* + eps_i, theta_i* = B* w_i* (+ u_i, u_i perp span(B*),
    when misspecified), eps_i = 0 at sigma = 0: module docstring, "Planted shared subspace" and
    "Knobs".

    References
    ----------
    docs/setting.md (planted, exactly realisable instances); `metastable_chain` for the spectrum.
    """
    n_agents = check_positive_int(n_agents, "n_agents")
    n_states = check_positive_int(n_states, "n_states", minimum=2)
    dim = check_positive_int(dim, "dim")
    rank = _check_rank(rank, dim)
    _check_dim(dim, n_states)
    sizes = _cluster_sizes(n_states, n_clusters, cluster_sizes)
    q = check_in_range(switch_probability, "switch_probability", 0.0, 1.0, low_open=True,
                       high_open=True)
    heterogeneity = check_in_range(heterogeneity, "heterogeneity", 0.0, 1.0)
    knobs = _check_planting(n_agents, n_states, dim, rank, reward_noise, misspecification,
                            head_spread, balanced_heads, bellman_residual)
    _warn_if_not_identifiable(n_agents, rank)

    gen = np.random.default_rng(rng)
    features, B_star, heads, J = _planted_parts(n_agents, n_states, dim, rank, knobs, gen)
    labels, same = _same_cluster(sizes)
    W_base = _block_dirichlet_rows((n_states, n_states), same, gen)
    W = _block_dirichlet_rows((n_agents, n_states, n_states), same, gen)
    W *= heterogeneity
    W += (1.0 - heterogeneity) * W_base
    P = (1.0 - q) * W + q * _switch_kernel(labels, sizes)
    return _planted_problem(P, features, B_star, heads, J, knobs, gen)


def random_features(n_states: int, dim: int, rng: RngLike) -> FloatArray:
    """Gaussian features with columns orthogonal to 1, scaled so that max_s ||phi(s)|| = 1.

    Parameters
    ----------
    n_states : int
        n >= 2.
    dim : int
        1 <= d <= n - 1 (centred columns live in the (n - 1)-dimensional complement of 1).
    rng : int, SeedSequence, Generator or None
        Source of the (n_states, dim) standard normal draw.

    Returns
    -------
    (n_states, dim) ndarray
        Full column rank almost surely; 1 is orthogonal to every column, hence outside the span.

    Notes
    -----
    Phi = (G - 1 mean(G)) / max_s ||row_s||; one global factor keeps 1^T Phi = 0, whereas
    normalising rows separately (Phi <- D Phi) would break it.
    """
    n_states = check_positive_int(n_states, "n_states", minimum=2)
    dim = check_positive_int(dim, "dim")
    _check_dim(dim, n_states)
    Phi = np.random.default_rng(rng).standard_normal((n_states, dim))
    Phi -= Phi.mean(axis=0)
    Phi /= np.max(np.linalg.norm(Phi, axis=1))
    return Phi


def two_state_chain(p: float, q: float) -> FloatArray:
    """P = [[1 - p, p], [q, 1 - q]] for p, q in (0, 1], not both 1 (then it is periodic).

    Notes
    -----
    mu = (q, p) / (p + q); d(t) = max(p, q) / (p + q) |1 - p - q|^t.

    References
    ----------
    Levin, Peres & Wilmer (2017), Section 1.1.
    """
    p = check_in_range(p, "p", 0.0, 1.0, low_open=True)
    q = check_in_range(q, "q", 0.0, 1.0, low_open=True)
    if p == 1.0 and q == 1.0:
        raise ValueError("p and q must not both be 1 (the chain would have period 2); "
                         f"got p={p}, q={q}")
    return np.array([[1.0 - p, p], [q, 1.0 - q]])


def lazy_cycle(n: int) -> FloatArray:
    """Lazy random walk on the n-cycle: stay w.p. 1/2, step +1 or -1 w.p. 1/4 each (n >= 3).

    Notes
    -----
    Eigenvalues 1/2 + (1/2) cos(2 pi j / n), j = 0..n-1; mu uniform; t_mix(1/4) is of order n^2.

    References
    ----------
    Levin, Peres & Wilmer (2017), Sections 5.3.2 and 12.3.1.
    """
    n = check_positive_int(n, "n", minimum=3)
    P = 0.5 * np.eye(n)
    s = np.arange(n)
    P[s, (s + 1) % n] += 0.25
    P[s, (s - 1) % n] += 0.25
    return P


def lazy_hypercube(k: int) -> FloatArray:
    """Lazy walk on {0, 1}^k: stay w.p. 1/2, else flip a uniformly chosen coordinate.

    State x in 0..2^k - 1 stands for the bit vector of x; 1 <= k <= MAX_HYPERCUBE_DIM.

    Notes
    -----
    Eigenvalues 1 - j / k with multiplicity C(k, j), j = 0..k; mu uniform.

    References
    ----------
    Levin, Peres & Wilmer (2017), Sections 2.3 and 12.4 (product chains).
    """
    k = check_positive_int(k, "k")
    if k > MAX_HYPERCUBE_DIM:
        raise ValueError(f"k must be <= {MAX_HYPERCUBE_DIM} (dense 2^k x 2^k matrix); got {k}; "
                         "use hypercube_hamming_lumped(k) for large k")
    x = np.arange(2**k)
    P = 0.5 * np.eye(2**k)
    for j in range(k):
        P[x, x ^ (1 << j)] += 0.5 / k
    return P


def hypercube_hamming_lumped(k: int) -> FloatArray:
    """Hamming weight of the lazy k-hypercube walk: a (k + 1)-state birth-death chain (k >= 1).

    From weight w: stay w.p. 1/2, go to w + 1 w.p. (k - w) / (2k), to w - 1 w.p. w / (2k).

    Notes
    -----
    TV(P^t(0, .), mu) of the hypercube from 0...0 equals TV of this chain from weight 0: both
    P^t(0...0, .) and the uniform mu are invariant under permuting coordinates, hence constant on
    each weight class, and summing |difference| over a class equals the lumped |difference|.
    By vertex transitivity the hypercube's worst-start distance d(t) is this value too.
    Eigenvalues 1 - j / k, j = 0..k; mu = Binomial(k, 1/2).

    References
    ----------
    Levin, Peres & Wilmer (2017), Section 2.3 (Ehrenfest urn, the projected hypercube walk) and
    Section 12.4 (hypercube spectrum).
    """
    k = check_positive_int(k, "k")
    w = np.arange(k)
    P = 0.5 * np.eye(k + 1)
    P[w, w + 1] = (k - w) / (2 * k)
    P[w + 1, w] = (w + 1) / (2 * k)
    return P


def random_dense_chain(n: int, rng: RngLike) -> FloatArray:
    """A dense random chain: rows i.i.d. Dirichlet(1, ..., 1), so every entry is positive (ergodic).

    Parameters
    ----------
    n : int
        Number of states, >= 1.
    rng : int, SeedSequence, Generator or None
        Source of the (n, n) Exp(1) draw.
    """
    n = check_positive_int(n, "n")
    return _dirichlet_rows((n, n), np.random.default_rng(rng))
