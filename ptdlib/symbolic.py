"""Exact (sympy) derivations for small instances, to check the numeric library against.

Primer
------
For an ergodic Markov reward process (P, r) on n states with features Phi (n, dim):

    mu^T (P - I) = 0, mu^T 1 = 1          stationary distribution
    J = mu^T r                            gain (average reward)
    h = r - J 1 + P h, mu^T h = 0         Poisson equation; h is the bias (Puterman 1994, ch. 8),
                                          solved as h = Z (r - J 1), Z = (I - P + 1 mu^T)^-1
    A = Phi^T D (P - I) Phi, D = diag(mu) average-reward TD matrix and
    b = Phi^T D (r - J 1)                 offset (Tsitsiklis & Van Roy 1999)
    A theta* + b = 0                      TD fixed point

For the joint personalized update of docs/algorithm.md with dim = 2, rank = 1 the basis is a unit
vector B = (cos u, sin u)^T, the QR retraction is normalisation, and the angle u is a chart of the
retraction's tangent space. Averaged over the stationary sampling of each agent (the mean path),

    g_i = E[delta_i phi(s)] = A_i B w_i + b_i + (J_i - eta_i) Phi^T mu_i
    eta_i <- eta_i + c_eta alpha (J_i - eta_i),   w_i <- w_i + alpha B^T g_i,
    B~ = B + c_B alpha (1/N) sum_i g_i w_i^T,     u <- atan2(B~_2, B~_1)   (B <- B~ / ||B~||)

with the pre-update heads in B~; ``rebase_heads`` also sets w_i <- ||B~|| w_i. On a planted
instance (theta_i* = B* w_i*) the point x* = (u*, w*, J) is fixed. Its Jacobian is exactly
I + alpha M: every second-order term carries a factor g_i, which vanishes at x*. So the
eigenvalues are 1 + alpha lambda_j(M) and the spectral radius reaches 1 at
alpha_crit = min_j 2 Re(-lambda_j) / |lambda_j|^2. The gain rows decouple (eigenvalue -c_eta
of M, N times: a gain-limited threshold 2 / c_eta); the (u, w) block carries the joint dynamics.
``rebase_heads`` does matter in this chart: it moves the radial part of the server step,
B*^T dB~ = c_B alpha (1/N) sum_j w_j* B*^T dg_j, into every head row (w_i* times it), which
normalisation alone discards; the angle row is the same in both, the head rows and the
(u, w) eigenvalues are not.

Why an exact check: the numeric library solves the same quantities by other routes (GTH
elimination, floating-point linear solves, one update function per equation). Agreement to
1e-12 with rational arithmetic, and of a finite-difference Jacobian with the symbolic one,
checks those routes without sharing their code; the exact stability threshold is an algebraic
number, not the result of a bisection.

References
----------
Puterman, M. L. (1994). Markov Decision Processes. Wiley. Ch. 8 and Appendix A (the Poisson
equation, the fundamental and deviation matrices).
Tsitsiklis, J. N. & Van Roy, B. (1999). Average cost temporal-difference learning. Automatica
35(11), 1799-1808.
Collins, L., Hassani, H., Mokhtari, A. & Shakkottai, S. (2021). Exploiting shared representations
for personalized federated learning (FedRep). ICML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from ptdlib import markov, steps, td
from ptdlib._validation import (
    FloatArray,
    as_float_array,
    check_in_range,
    check_row_stochastic,
)


@dataclass(frozen=True)
class SymbolicMRP:
    """Exact quantities of one Markov reward process with features (shapes as sympy Matrices).

    ``P`` (n, n), ``r`` (n, 1), ``Phi`` (n, dim), ``mu`` (n, 1), ``J`` scalar, ``h`` (n, 1),
    ``A`` (dim, dim), ``b`` (dim, 1), ``theta_star`` (dim, 1).
    """

    P: sp.Matrix
    r: sp.Matrix
    Phi: sp.Matrix
    mu: sp.Matrix
    J: sp.Expr
    h: sp.Matrix
    A: sp.Matrix
    b: sp.Matrix
    theta_star: sp.Matrix

    def to_numpy(self) -> dict[str, Any]:
        """Float64 arrays keyed by field name (vectors flattened; ``J`` a float)."""
        out: dict[str, Any] = {name: _to_float(getattr(self, name)) for name in ("P", "Phi", "A")}
        out |= {name: _to_float(getattr(self, name)).ravel()
                for name in ("r", "mu", "h", "b", "theta_star")}
        return out | {"J": float(self.J)}


def _to_float(M: sp.Matrix) -> FloatArray:
    return np.array(M.evalf(17).tolist(), dtype=np.float64)


def _exact_matrix(x: Any, name: str) -> sp.Matrix:
    """``x`` as a sympy Matrix, floats replaced by the rationals of their decimal repr."""
    try:
        M = sp.Matrix(x)
    except (TypeError, ValueError, sp.SympifyError) as exc:
        raise ValueError(f"{name} must be a matrix of numbers or sympy expressions; "
                         f"got {type(x).__name__}") from exc
    return M.applyfunc(lambda e: sp.nsimplify(e, rational=True) if e.has(sp.Float) else e)


def _check_mrp(P: sp.Matrix, r: sp.Matrix, Phi: sp.Matrix) -> None:
    n = P.rows
    if n < 2 or P.cols != n:
        raise ValueError(f"P must be square with at least 2 states; got shape {P.shape}")
    if any(e.is_negative for e in P):
        raise ValueError(f"P must be non-negative; got {P.tolist()}")
    bad_rows = [i for i in range(n) if sp.simplify(sum(P.row(i)) - 1) != 0]
    if bad_rows:
        raise ValueError(f"P must be row-stochastic exactly; rows {bad_rows} do not sum to 1")
    if r.shape != (n, 1):
        raise ValueError(f"r must have {n} entries (one per state); got shape {r.shape}")
    if Phi.rows != n or not 1 <= Phi.cols < n:
        raise ValueError(f"Phi must be (n_states={n}, dim) with 1 <= dim < n_states; "
                         f"got shape {Phi.shape}")
    if Phi.rank() < Phi.cols:
        raise ValueError(f"Phi must have full column rank {Phi.cols}; got rank {Phi.rank()}")
    if Phi.row_join(sp.ones(n, 1)).rank() == Phi.cols:
        raise ValueError("Phi must not contain the all-ones vector in its span (average-reward "
                         "TD is then singular); got a Phi whose span holds 1")


def _stationary_distribution(P: sp.Matrix) -> sp.Matrix:
    """mu^T (P - I) = 0 with one equation replaced by the normalisation mu^T 1 = 1."""
    n = P.rows
    M = (P - sp.eye(n)).T
    M[n - 1, :] = sp.ones(1, n)
    rhs = sp.zeros(n, 1)
    rhs[n - 1] = 1
    try:
        mu = M.LUsolve(rhs)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError("P must be irreducible (unique stationary distribution); the "
                         "stationarity equations are singular") from exc
    return mu.applyfunc(sp.factor)


def _poisson_solution(P: sp.Matrix, r: sp.Matrix, mu: sp.Matrix, J: sp.Expr) -> sp.Matrix:
    """h = (I - P + 1 mu^T)^-1 (r - J 1): solves h = r - J 1 + P h with mu^T h = 0."""
    n = P.rows
    fundamental = sp.eye(n) - P + sp.ones(n, 1) * mu.T
    return fundamental.LUsolve(r - J * sp.ones(n, 1)).applyfunc(sp.factor)


def derive_mrp(P: Any, r: Any, Phi: Any) -> SymbolicMRP:
    """Derive mu, J, h, A, b and theta* of one MRP exactly.

    Parameters
    ----------
    P : (n_states, n_states) matrix of rationals or sympy expressions
        Row-stochastic, irreducible transition matrix (floats become exact rationals).
    r : (n_states,) rewards.
    Phi : (n_states, dim) features, full column rank, 1 not in span(Phi).

    Returns
    -------
    SymbolicMRP
        Entries factored; with symbolic inputs they are the closed forms.

    Notes
    -----
    mu^T (P - I) = 0; J = mu^T r; h = r - J 1 + P h, mu^T h = 0; A = Phi^T D (P - I) Phi;
    b = Phi^T D (r - J 1); A theta* + b = 0.

    References
    ----------
    Puterman (1994), ch. 8; Tsitsiklis & Van Roy (1999).
    """
    P, r, Phi = _exact_matrix(P, "P"), _exact_matrix(r, "r"), _exact_matrix(Phi, "Phi")
    if r.cols != 1:
        r = r.T
    _check_mrp(P, r, Phi)
    n = P.rows
    mu = _stationary_distribution(P)
    J = sp.factor((mu.T * r)[0])
    h = _poisson_solution(P, r, mu, J)
    D = sp.diag(*mu)
    A = (Phi.T * D * (P - sp.eye(n)) * Phi).applyfunc(sp.factor)
    b = (Phi.T * D * (r - J * sp.ones(n, 1))).applyfunc(sp.factor)
    theta_star = A.LUsolve(-b).applyfunc(sp.factor)
    return SymbolicMRP(P, r, Phi, mu, J, h, A, b, theta_star)


def two_state_mrp() -> SymbolicMRP:
    """The fully symbolic two-state MRP, for teaching the closed forms.

    P = [[1-p, p], [q, 1-q]], r = (r_1, r_2), Phi = (phi_1, phi_2)^T (dim = 1). Symbols ``p``,
    ``q`` are positive and ``r_1, r_2, phi_1, phi_2`` real (recreate them with the same names and
    assumptions to substitute). The derivation yields mu = (q, p)/(p + q),
    J = (q r_1 + p r_2)/(p + q), h = (r_1 - r_2)(p, -q)/(p + q)^2,
    A = -p q (phi_1 - phi_2)^2/(p + q) and theta* = (r_1 - r_2)/((p + q)(phi_1 - phi_2)).
    """
    p, q = sp.symbols("p q", positive=True)
    r_1, r_2, phi_1, phi_2 = sp.symbols("r_1 r_2 phi_1 phi_2", real=True)
    return derive_mrp([[1 - p, p], [q, 1 - q]], [r_1, r_2], [[phi_1], [phi_2]])


@dataclass(frozen=True)
class PlantedInstance:
    """An exactly realizable multi-agent instance with dim = 2, rank = 1 (sympy entries).

    ``P`` N matrices (n, n); ``rewards`` N vectors (n, 1) built as J_i 1 + (I - P_i) Phi B* w_i*;
    ``Phi`` (n, 2); ``B_star`` (2, 1) a unit vector; ``heads_star`` and ``gains`` N scalars.
    """

    P: tuple[sp.Matrix, ...]
    rewards: tuple[sp.Matrix, ...]
    Phi: sp.Matrix
    B_star: sp.Matrix
    heads_star: tuple[sp.Expr, ...]
    gains: tuple[sp.Expr, ...]

    @property
    def n_agents(self) -> int:
        """Number of agents N."""
        return len(self.P)

    def agent(self, i: int) -> SymbolicMRP:
        """The exact MRP quantities of agent ``i``."""
        return derive_mrp(self.P[i], self.rewards[i], self.Phi)

    def to_numpy(self) -> dict[str, FloatArray]:
        """``P`` (N, n, n), ``rewards`` (N, n), ``features`` (n, 2), ``B_star`` (2, 1),
        ``heads_star`` (N, 1), ``average_reward`` (N,) as float64 (Problem.from_arrays order)."""
        return {
            "P": np.stack([_to_float(P) for P in self.P]),
            "rewards": np.stack([_to_float(r).ravel() for r in self.rewards]),
            "features": _to_float(self.Phi),
            "B_star": _to_float(self.B_star),
            "heads_star": np.array([[float(w)] for w in self.heads_star]),
            "average_reward": np.array([float(J) for J in self.gains]),
        }


def planted_instance(P: Sequence[Any], Phi: Any, B_star: Any, heads_star: Sequence[Any],
                     gains: Sequence[Any]) -> PlantedInstance:
    """Build rewards so that theta_i* = B* w_i* and J_i are exact.

    Parameters
    ----------
    P : N matrices (n_states, n_states), ergodic.
    Phi : (n_states, 2) features.
    B_star : (2,) unit vector (exactly: B*^T B* = 1; use a rational point such as (3/5, 4/5)).
    heads_star, gains : N scalars w_i* and J_i.

    Notes
    -----
    r_i = J_i 1 + (I - P_i) Phi B* w_i*  (docs/setting.md, planted instances).
    """
    Ps = tuple(_exact_matrix(Pi, f"P[{i}]") for i, Pi in enumerate(P))
    Phi_m, B = _exact_matrix(Phi, "Phi"), _exact_matrix(B_star, "B_star").reshape(2, 1)
    if Phi_m.cols != 2:
        raise ValueError(f"Phi must have dim = 2 columns (rank-1 chart); got shape {Phi_m.shape}")
    if sp.simplify((B.T * B)[0] - 1) != 0:
        raise ValueError(f"B_star must be a unit vector exactly; got {list(B)}")
    heads, Js = tuple(map(sp.nsimplify, heads_star)), tuple(map(sp.nsimplify, gains))
    if not len(Ps) == len(heads) == len(Js) >= 1:
        raise ValueError(f"P, heads_star and gains must have one entry per agent; got lengths "
                         f"{len(Ps)}, {len(heads)}, {len(Js)}")
    n = Phi_m.rows
    for i, Pi in enumerate(Ps):
        if Pi.shape != (n, n):
            raise ValueError(f"P[{i}] must be (n_states, n_states) = ({n}, {n}) to match Phi; "
                             f"got shape {Pi.shape}")
    rewards = tuple(J * sp.ones(n, 1) + (sp.eye(n) - Pi) * Phi_m * B * w
                    for Pi, w, J in zip(Ps, heads, Js, strict=True))
    for Pi, r in zip(Ps, rewards, strict=True):
        _check_mrp(Pi, r, Phi_m)
    return PlantedInstance(Ps, rewards, Phi_m, B, heads, Js)


def walkthrough_instance() -> PlantedInstance:
    """The 04_walkthrough instance: N = 2 agents on 3 states, dim = 2, rank = 1.

    Agent 0 follows the lazy 3-cycle (uniform mu, non-reversible), agent 1 a dense chain with
    mu = (4, 4, 3)/11; Phi has rows (1, 0), (0, 1), (-1/2, -1/2) (norms <= 1, 1 not in the span);
    B* = (3/5, 4/5), heads w* = (1, -1/2), gains J = (1, 1/2). Everything is rational.
    """
    half, third, quarter = sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(1, 4)
    lazy_cycle = [[half, half, 0], [0, half, half], [half, 0, half]]
    dense = [[quarter, half, quarter], [half, quarter, quarter], [third, third, third]]
    Phi = [[1, 0], [0, 1], [-half, -half]]
    return planted_instance([lazy_cycle, dense], Phi, [sp.Rational(3, 5), sp.Rational(4, 5)],
                            heads_star=[1, -half], gains=[1, half])


@dataclass(frozen=True)
class MeanPathMap:
    """The mean-path map x -> F(x; alpha) of the joint update in the angle chart (sympy).

    ``state`` (1 + 2N, 1) symbols (u, w_1..w_N, eta_1..eta_N); ``alpha`` the step-size symbol;
    ``image`` (1 + 2N, 1) F(x; alpha); ``fixed_point`` (1 + 2N, 1) x* = (u*, w*, J), with
    u* = atan2(B*_2, B*_1).
    """

    instance: PlantedInstance
    state: sp.Matrix
    alpha: sp.Symbol
    image: sp.Matrix
    fixed_point: sp.Matrix
    c_eta: sp.Expr
    c_B: sp.Expr
    rebase_heads: bool

    def at(self, x: sp.Matrix) -> sp.Matrix:
        """F(x; alpha) at the point ``x`` (alpha stays symbolic)."""
        return self.image.subs(dict(zip(self.state, x, strict=True)))


def _positive_exact(value: Any, name: str) -> sp.Expr:
    check_in_range(value, name, 0.0, np.inf, low_open=True)
    return sp.nsimplify(value, rational=True)


def mean_path_map(instance: PlantedInstance, *, c_eta: Any = 1, c_B: Any = 1,
                  rebase_heads: bool = False) -> MeanPathMap:
    """Write the expected (mean-path) joint personalized update as an explicit map.

    Parameters
    ----------
    instance : PlantedInstance (dim = 2, rank = 1).
    c_eta, c_B : positive single-timescale ratios (exact numbers; floats become rationals).
    rebase_heads : also set w_i <- ||B~|| w_i after the retraction.

    Returns
    -------
    MeanPathMap

    Notes
    -----
    g_i = A_i B w_i + b_i + (J_i - eta_i) Phi^T mu_i; w_i <- w_i + alpha B^T g_i;
    eta_i <- eta_i + c_eta alpha (J_i - eta_i); u <- atan2(B~) with
    B~ = B + c_B alpha (1/N) sum_i g_i w_i^T.

    References
    ----------
    docs/algorithm.md (steps 2-7 in expectation); Tsitsiklis & Van Roy (1999); Collins et al.
    (2021).
    """
    c_eta, c_B = _positive_exact(c_eta, "c_eta"), _positive_exact(c_B, "c_B")
    N = instance.n_agents
    u = sp.Symbol("u", real=True)
    w = sp.symbols(f"w_1:{N + 1}", real=True)
    eta = sp.symbols(f"eta_1:{N + 1}", real=True)
    alpha = sp.Symbol("alpha", positive=True)
    B = sp.Matrix([sp.cos(u), sp.sin(u)])
    agents = [instance.agent(i) for i in range(N)]
    g = [m.A * B * w_i + m.b + (m.J - eta_i) * m.Phi.T * m.mu
         for m, w_i, eta_i in zip(agents, w, eta, strict=True)]
    B_tilde = B + c_B * alpha * sum((g_i * w_i for g_i, w_i in zip(g, w, strict=True)),
                                    sp.zeros(2, 1)) / N
    scale = sp.sqrt(B_tilde.dot(B_tilde)) if rebase_heads else sp.Integer(1)
    heads = [scale * (w_i + alpha * (B.T * g_i)[0]) for w_i, g_i in zip(w, g, strict=True)]
    gains = [eta_i + c_eta * alpha * (m.J - eta_i) for eta_i, m in zip(eta, agents, strict=True)]
    image = sp.Matrix([sp.atan2(B_tilde[1], B_tilde[0]), *heads, *gains])
    fixed_point = sp.Matrix([sp.atan2(instance.B_star[1], instance.B_star[0]),
                             *instance.heads_star, *instance.gains])
    return MeanPathMap(instance, sp.Matrix([u, *w, *eta]), alpha, image, fixed_point, c_eta,
                       c_B, rebase_heads)


@dataclass(frozen=True)
class MeanPathSpectrum:
    """Linearisation of the mean-path map at its fixed point.

    ``jacobian`` (1 + 2N, 1 + 2N) = I + alpha ``drift``, exact in ``alpha``;
    ``characteristic_polynomial`` det(lam I - jacobian) in the symbol ``lam`` with coefficients
    polynomial in alpha; ``drift_eigenvalues`` the exact eigenvalues lambda_j of the drift
    (rationals or ``CRootOf``, with multiplicity) and ``drift_eigenvalues_numeric`` the same
    multiset to 30 digits, as complex; ``eigenvalues`` 1 + alpha lambda_j;
    ``critical_step_size`` the smallest alpha > 0 where the spectral radius reaches 1
    (0.0 when some Re lambda_j >= 0: unstable for every alpha). The drift is block upper
    triangular (the gains do not see u or w), so its eigenvalues are those of the (u, w) block
    and -c_eta (N times); ``critical_step_size_uw`` is the threshold of the (u, w) block alone,
    the joint subspace-and-heads dynamics that the gain-limited 2 / c_eta can hide.
    """

    alpha: sp.Symbol
    jacobian: sp.Matrix
    drift: sp.Matrix
    characteristic_polynomial: sp.Poly
    drift_eigenvalues: tuple[sp.Expr, ...]
    drift_eigenvalues_numeric: np.ndarray
    eigenvalues: tuple[sp.Expr, ...]
    critical_step_size: float
    critical_step_size_uw: float

    def eigenvalues_at(self, alpha: float) -> np.ndarray:
        """Complex eigenvalues 1 + alpha lambda_j of the Jacobian at the step size ``alpha``."""
        return 1.0 + alpha * self.drift_eigenvalues_numeric

    def spectral_radius(self, alpha: float) -> float:
        """max_j |1 + alpha lambda_j|."""
        return float(np.max(np.abs(self.eigenvalues_at(alpha))))


def mean_path_spectrum(path_map: MeanPathMap) -> MeanPathSpectrum:
    """Jacobian of the mean-path map at x*, its eigenvalues in alpha and the critical step size.

    Notes
    -----
    DF(x*) = I + alpha M, eigenvalues 1 + alpha lambda_j(M);
    alpha_crit = min_j 2 Re(-lambda_j) / |lambda_j|^2 (|1 + alpha lambda| = 1 solved for alpha).

    References
    ----------
    docs/checks.md, registry row "step size"; the same formula as theory.critical_step_size.
    """
    at_fixed_point = dict(zip(path_map.state, path_map.fixed_point, strict=True))
    jacobian = path_map.image.jacobian(path_map.state).subs(at_fixed_point).applyfunc(sp.cancel)
    drift = jacobian.diff(path_map.alpha)
    lam = sp.Symbol("lam")
    exact, numeric = _eigenvalues(drift, lam)
    n_uw = 1 + path_map.instance.n_agents
    return MeanPathSpectrum(
        alpha=path_map.alpha,
        jacobian=jacobian,
        drift=drift,
        characteristic_polynomial=jacobian.charpoly(lam),
        drift_eigenvalues=exact,
        drift_eigenvalues_numeric=numeric,
        eigenvalues=tuple(1 + path_map.alpha * root for root in exact),
        critical_step_size=_critical_step_size(numeric),
        critical_step_size_uw=_critical_step_size(_eigenvalues(drift[:n_uw, :n_uw], lam)[1]),
    )


def _eigenvalues(M: sp.Matrix, lam: sp.Symbol) -> tuple[tuple[sp.Expr, ...], np.ndarray]:
    """Exact eigenvalues (rationals or CRootOf) and their values, with multiplicity.

    Numeric values come from each irreducible factor of the characteristic polynomial (simple
    roots, so the 30-digit root finder converges); evaluating CRootOf objects is far slower.
    """
    exact: list[sp.Expr] = []
    numeric: list[complex] = []
    for factor, multiplicity in sp.Poly(M.charpoly(lam).as_expr(), lam).factor_list()[1]:
        exact += factor.all_roots() * multiplicity
        numeric += [complex(root) for root in factor.nroots(n=30)] * multiplicity
    return tuple(exact), np.array(numeric)


def _critical_step_size(roots: np.ndarray) -> float:
    """min_j 2 Re(-lambda_j)/|lambda_j|^2; 0 if any Re lambda_j >= 0."""
    if np.any(roots.real >= 0):
        return 0.0
    return float(np.min(-2.0 * roots.real / np.abs(roots) ** 2))


def numeric_mean_path_map(x: ArrayLike, alpha: float, P: ArrayLike, rewards: ArrayLike,
                          Phi: ArrayLike, *, c_eta: float = 1.0, c_B: float = 1.0,
                          rebase_heads: bool = False) -> FloatArray:
    """The mean-path map of `mean_path_map`, evaluated in float64 by the library's step functions.

    Parameters
    ----------
    x : (1 + 2 n_agents,)
        State (u, w_1..w_N, eta_1..eta_N), B = (cos u, sin u)^T.
    alpha : float
        Step size, > 0.
    P : (n_agents, n_states, n_states); rewards : (n_agents, n_states); Phi : (n_states, 2).
    c_eta, c_B : float
        Single-timescale ratios, > 0.
    rebase_heads : bool
        As in `steps.retraction_step`.

    Returns
    -------
    (1 + 2 n_agents,) ndarray
        The next state; the angle is atan2 of the retracted basis.

    Notes
    -----
    z_i = steps.expected_td_direction; w, eta, B~, B by head_step, gain_step (reward J_i),
    representation_gradient + server_average, retraction_step: the library's own equations.
    """
    P = check_row_stochastic(P, "P")
    Phi = as_float_array(Phi, "Phi", ndim=2)
    n_agents = P.shape[0] if P.ndim == 3 else 0
    x = as_float_array(x, "x", ndim=1)
    if n_agents == 0 or Phi.shape[1] != 2 or x.shape != (1 + 2 * n_agents,):
        raise ValueError(f"P must be (n_agents, n, n), Phi (n, 2) and x (1 + 2 n_agents,); got "
                         f"shapes {P.shape}, {Phi.shape}, {x.shape}")
    alpha = check_in_range(alpha, "alpha", 0.0, np.inf, low_open=True)
    c_eta = check_in_range(c_eta, "c_eta", 0.0, np.inf, low_open=True)
    c_B = check_in_range(c_B, "c_B", 0.0, np.inf, low_open=True)
    A, b = td.td_matrices(P, rewards, Phi)
    J = np.asarray(td.average_reward(P, rewards))
    Phi_mu = np.stack([markov.stationary_distribution(P_i) @ Phi for P_i in P])
    B = np.array([[np.cos(x[0])], [np.sin(x[0])]])
    w, eta = x[1:1 + n_agents, None], x[1 + n_agents:]
    z = steps.expected_td_direction(A, b, Phi_mu, J, eta, steps.shared_parameter(B, w))
    B_tilde = steps.server_average(B, steps.representation_gradient(z, w), alpha, c_B)
    retracted = steps.retraction_step(B_tilde, steps.head_step(w, B, z, alpha),
                                      rebase_heads=rebase_heads)
    u = np.arctan2(retracted.B[1, 0], retracted.B[0, 0])
    return np.concatenate([[u], retracted.w[:, 0], steps.gain_step(eta, J, alpha, c_eta)])


def finite_difference_jacobian(f: Callable[[FloatArray], FloatArray], x: ArrayLike,
                               step: float = 1e-6) -> FloatArray:
    """Central finite-difference Jacobian of ``f`` at ``x``.

    Parameters
    ----------
    f : callable (k,) -> (m,)
    x : (k,) point.
    step : float
        Difference step h > 0; the error is O(h^2) truncation plus O(eps / h) round-off.

    Returns
    -------
    (m, k) ndarray

    Notes
    -----
    J[:, j] = (f(x + h e_j) - f(x - h e_j)) / (2 h).
    """
    x = as_float_array(x, "x", ndim=1)
    step = check_in_range(step, "step", 0.0, np.inf, low_open=True)
    columns = [(f(x + step * e) - f(x - step * e)) / (2.0 * step) for e in np.eye(x.size)]
    return np.stack(columns, axis=1)
