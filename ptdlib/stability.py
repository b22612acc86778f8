"""Local stability of the mean-path joint personalized update: Jacobian, thresholds, bisection.

Primer
------
Averaging one iteration of personalized TD (docs/algorithm.md, K = 1) over stationary sampling
gives the deterministic *mean-path map* F_alpha on states x = (B, W, eta), B (d x r)
orthonormal, W (N x r) the heads (row i is w_i), eta (N,) the gains:

    g_i = A_i B w_i + b_i + (J_i - eta_i) Phi^T mu_i          (`steps.expected_td_direction`)
    w_i <- w_i + alpha B^T g_i,  eta_i <- eta_i + c_eta alpha (J_i - eta_i)
    B~ = B + c_B alpha (1/N) sum_i g_i w_i^T,  B <- Q of B~ = Q R (optionally w_i <- R w_i)

It is what ``simulate.run(..., sampling="expected")`` iterates; here it is composed from the
same `ptdlib.steps` functions, batched over leading axes. On a planted problem
(theta_i* = B* w_i*) every g_i vanishes at x* = (B*, W*, J), so x* is a fixed point.

Symmetry. For any orthogonal Q (r x r), (B* Q, W* Q, J) is a fixed point too (B w_i is
unchanged): the fixed points form a manifold of dimension r (r - 1) / 2 whose tangent at x*,
V = {(B* Omega, W* Omega, 0) : Omega skew}, the Jacobian maps to itself with eigenvalue
exactly 1. Those directions are neutral (they move along fixed points), so the stability of x*
is decided on the quotient of the retraction's tangent space
T = {(B* Omega + B_perp K, dW, deta)} by V, of dimension r (d - r) + N r + N (the Grassmann
directions, the heads, the gains). `quotient_basis` is an orthonormal basis C of the
complement of V in T; with the chart c(xi) = (qf(B* + xi_B), W* + xi_W, J + xi_eta) (qf: the
Q factor of the QR retraction), the induced linear map is X(alpha) = C^T D(F o c)(0) C.

Affine in alpha. The QR retraction's differential at B* is the identity on T, and every
second-order term of F carries a factor g_i, which vanishes at x*; hence X(alpha) = I + alpha M
exactly, with a constant drift M, eigenvalues 1 + alpha lambda_j(M) and the exact threshold
alpha_crit = min_j 2 Re(-lambda_j) / |lambda_j|^2 (`theory.critical_step_size`). The gains do
not see B or W, so M is block upper triangular: the gain block is -c_eta I (threshold
2 / c_eta) and the (B, W) block carries the subspace-and-heads dynamics with its own threshold.
`ptdlib.symbolic` derives the same Jacobian exactly for d = 2, r = 1 (angle chart).

Readings (docs/algorithm.md, "Readings"). Every function that iterates or linearises the map
takes the switches of `simulate.run` that make sense at a constant step: ``update_order``,
``gain_update``, ``head_radius``, ``retraction`` (with ``rebase_heads``, ``c_eta``, ``c_B``).
On the mean path E[delta] = J - eta, so the two gain updates give the same map. A head radius
R > max_i ||w_i*|| leaves x* fixed and the projection inactive near it (the Jacobian is the
unprojected one); a smaller R moves the fixed point, and the functions that linearise at x*
refuse it. The polar retraction is, like QR, the identity on orthonormal bases, so x* stays
fixed and X(alpha) stays affine; with re-based heads the two retractions give maps that differ
by a rotation (B, W) -> (B O, W O) only (the update is O(r)-equivariant and both keep B~ w_i),
hence the same spectrum, while without re-basing they differ. ``update_order="heads_first"``
is the exception to affinity: its basis gradient uses w + alpha B^T g, so X(alpha) = I + alpha
M + alpha^2 M2 exactly (every higher term still carries a g_i); `mean_path_jacobian` recovers M
and M2 from X(alpha) and X(-alpha), and the critical step is then the first alpha where the
spectral radius of X(alpha) reaches 1 (found numerically, `MeanPathJacobian.critical_step_size`).
A two-timescale basis schedule beta_t has no constant-step Jacobian: its constant-step analogue
is the ratio c_B = beta / alpha, which every function here takes.

References
----------
Absil, P.-A., Mahony, R. & Sepulchre, R. (2008). Optimization Algorithms on Matrix Manifolds.
Princeton University Press (the QR retraction and its differential; quotient manifolds).
Horn, R. A. & Johnson, C. R. (2013). Matrix Analysis, 2nd ed., Sec. 5.6 (spectral radius).
Tsitsiklis, J. N. & Van Roy, B. (1999). Average cost temporal-difference learning. Automatica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ptdlib import steps, subspace, theory
from ptdlib._validation import (
    FloatArray,
    RngLike,
    check_choice,
    check_in_range,
    check_positive_int,
)

__all__ = [
    "Bisection",
    "MeanPathJacobian",
    "MeanPathLimit",
    "MeanPathState",
    "bisect_threshold",
    "fixed_point",
    "is_decaying",
    "linear_error_curve",
    "mean_path_error",
    "mean_path_error_curve",
    "mean_path_jacobian",
    "mean_path_limit",
    "mean_path_step",
    "noise_covariance",
    "quotient_basis",
    "subspace_error_constant",
    "subspace_error_floor",
]

#: Largest max_i ||g_i|| at (B*, W*, J), relative to the problem scale, for x* to count as fixed.
FIXED_POINT_RTOL = 1e-9


@dataclasses.dataclass(frozen=True)
class MeanPathState:
    """A mean-path state: ``B`` (..., dim, rank), ``W`` (..., N, rank), ``eta`` (..., N)."""

    B: FloatArray
    W: FloatArray
    eta: FloatArray


@dataclasses.dataclass(frozen=True)
class _MeanSystem:
    A: FloatArray
    b: FloatArray
    Phi_mu: FloatArray
    J: FloatArray
    theta_star: FloatArray


def _system(problem: Any) -> _MeanSystem:
    return _MeanSystem(A=np.asarray(problem.A), b=np.asarray(problem.b),
                       Phi_mu=np.asarray(problem.mu) @ np.asarray(problem.features),
                       J=np.asarray(problem.average_reward, dtype=np.float64),
                       theta_star=np.asarray(problem.theta_star))


@dataclasses.dataclass(frozen=True)
class _Reading:
    """The options of one mean-path map: the ratios, re-basing and the readings' switches."""

    c_eta: float
    c_B: float
    rebase_heads: bool
    update_order: str = "simultaneous"
    gain_update: str = "reward"
    head_radius: float | None = None
    retraction: str = "qr"


def _reading(c_eta: float, c_B: float, rebase_heads: bool, update_order: str = "simultaneous",
             gain_update: str = "reward", head_radius: float | None = None,
             retraction: str = "qr") -> _Reading:
    """Validated options (ValueError naming the argument and the value)."""
    c_eta, c_B = _ratios(c_eta, c_B)
    return _Reading(
        c_eta, c_B, bool(rebase_heads),
        check_choice(update_order, "update_order", steps.UPDATE_ORDERS),
        check_choice(gain_update, "gain_update", steps.GAIN_UPDATES),
        None if head_radius is None else check_in_range(head_radius, "head_radius", 0.0, np.inf,
                                                        low_open=True, high_open=True),
        check_choice(retraction, "retraction", steps.RETRACTIONS))


def _gain(system: _MeanSystem, eta: FloatArray, alpha: float, reading: _Reading) -> FloatArray:
    if reading.gain_update == "td":
        return steps.differential_gain_step(eta, steps.expected_td_error(system.J, eta), alpha,
                                            reading.c_eta)
    return steps.gain_step(eta, system.J, alpha, reading.c_eta)


def _project(w: FloatArray, reading: _Reading) -> FloatArray:
    return w if reading.head_radius is None else steps.head_projection(w, reading.head_radius)


def _step(system: _MeanSystem, x: MeanPathState, alpha: float,
          reading: _Reading) -> MeanPathState:
    B_agents = x.B[..., None, :, :]  # the one basis, seen by each of the N agents
    z = steps.expected_td_direction(system.A, system.b, system.Phi_mu, system.J, x.eta,
                                    steps.shared_parameter(B_agents, x.W))
    heads = _project(steps.head_step(x.W, B_agents, z, alpha), reading)
    w_gradient = x.W
    if reading.update_order == "heads_first":  # E[delta' phi] from the new heads, old gains
        z = steps.expected_td_direction(system.A, system.b, system.Phi_mu, system.J, x.eta,
                                        steps.shared_parameter(B_agents, heads))
        w_gradient = heads
    B_tilde = steps.server_average(x.B, steps.representation_gradient(z, w_gradient), alpha,
                                   reading.c_B)
    retract = (steps.polar_retraction_step if reading.retraction == "polar"
               else steps.retraction_step)
    retracted = retract(B_tilde, heads, rebase_heads=reading.rebase_heads)
    w = _project(retracted.w, reading) if reading.rebase_heads else retracted.w
    return MeanPathState(retracted.B, w, _gain(system, x.eta, alpha, reading))


def _ratios(c_eta: float, c_B: float) -> tuple[float, float]:
    return (check_in_range(c_eta, "c_eta", 0.0, np.inf, low_open=True),
            check_in_range(c_B, "c_B", 0.0, np.inf, low_open=True))


def _fixed_under(x_star: MeanPathState, reading: _Reading) -> MeanPathState:
    """x* itself, after checking that the reading's head projection leaves it fixed."""
    if reading.head_radius is not None:
        largest = float(np.max(np.linalg.norm(x_star.W, axis=-1)))
        if not largest < reading.head_radius:
            raise ValueError(f"head_radius must exceed max_i ||w_i*|| = {largest:.6g} for "
                             f"(B*, W*, J) to be a fixed point of the projected map; got "
                             f"{reading.head_radius!r}")
    return x_star


def mean_path_step(problem: Any, state: MeanPathState, alpha: float, *, c_eta: float = 1.0,
                   c_B: float = 1.0, rebase_heads: bool = False,
                   update_order: str = "simultaneous", gain_update: str = "reward",
                   head_radius: float | None = None, retraction: str = "qr") -> MeanPathState:
    """One iteration of the mean-path map F_alpha of personalized TD (K = 1).

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        Supplies A_i, b_i, Phi^T mu_i and J_i.
    state : MeanPathState
        B (..., dim, rank) orthonormal, W (..., N, rank), eta (..., N); leading axes batch.
    alpha : float
        Step size, > 0.
    c_eta, c_B : float, optional
        Single-timescale ratios (default 1).
    rebase_heads : bool, optional
        As in `steps.retraction_step`.
    update_order, gain_update, head_radius, retraction : optional
        The readings, as in `simulate.run` (module docstring, "Readings").

    Returns
    -------
    MeanPathState

    Notes
    -----
    g_i = A_i B w_i + b_i + (J_i - eta_i) Phi^T mu_i; w_i += alpha B^T g_i;
    eta_i += c_eta alpha (J_i - eta_i); B = qf(B + c_B alpha mean_i g_i w_i^T) (default reading).

    References
    ----------
    docs/algorithm.md in expectation; `simulate.run` with ``sampling="expected"``.
    """
    alpha = check_in_range(alpha, "alpha", 0.0, np.inf, low_open=True)
    reading = _reading(c_eta, c_B, rebase_heads, update_order, gain_update, head_radius,
                       retraction)
    return _step(_system(problem), state, alpha, reading)


def fixed_point(problem: Any) -> MeanPathState:
    """x* = (B*, W*, J), checked to be a fixed point of the mean path.

    Raises
    ------
    ValueError
        If the problem has no B_star, or some g_i(x*) is not zero to round-off (the problem is
        not exactly realisable: misspecification moves the fixed point off (B*, W*)).
    """
    if getattr(problem, "B_star", None) is None:
        raise ValueError("problem must have a planted subspace (B_star); got B_star=None")
    system = _system(problem)
    x = MeanPathState(np.array(problem.B_star, dtype=np.float64),
                      np.array(problem.heads_star, dtype=np.float64), system.J.copy())
    g = steps.expected_td_direction(system.A, system.b, system.Phi_mu, system.J, x.eta,
                                    steps.shared_parameter(x.B, x.W))
    scale = max(1.0, float(np.max(np.linalg.norm(system.theta_star, axis=1))))
    residual = float(np.max(np.linalg.norm(g, axis=1)))
    if residual > FIXED_POINT_RTOL * scale:
        raise ValueError(f"(B*, W*, J) must be a fixed point of the mean path (theta_i* = B* w_i* "
                         f"exactly); got max_i ||g_i|| = {residual:.3g} > {FIXED_POINT_RTOL:g} "
                         f"times the scale {scale:.3g} (misspecified problem?)")
    return x


def mean_path_error(problem: Any, state: MeanPathState) -> FloatArray | float:
    """Distance of a state to the fixed-point manifold, invariant under (B, W) -> (B Q, W Q).

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        Planted problem (B_star, theta_star, average_reward).
    state : MeanPathState
        Possibly batched over leading axes.

    Returns
    -------
    float or (...) ndarray

    Notes
    -----
    e^2 = ||(I - B* B*^T) B||_F^2 + (1/N) sum_i ||B w_i - theta_i*||^2
          + (1/N) sum_i (eta_i - J_i)^2.
    """
    B_star = np.asarray(problem.B_star)
    off = state.B - B_star @ np.einsum("dr,...dk->...rk", B_star, state.B)
    theta = steps.shared_parameter(state.B[..., None, :, :], state.W)
    value = np.sqrt(np.sum(off**2, axis=(-2, -1))
                    + np.mean(np.sum((theta - np.asarray(problem.theta_star)) ** 2, axis=-1),
                              axis=-1)
                    + np.mean((state.eta - np.asarray(problem.average_reward)) ** 2, axis=-1))
    return float(value) if np.ndim(value) == 0 else value


def quotient_basis(B_star: ArrayLike, W_star: ArrayLike) -> FloatArray:
    """Orthonormal basis of the retraction's tangent space at x*, modulo the O(r) symmetry.

    Parameters
    ----------
    B_star : (dim, rank)
        Orthonormal basis.
    W_star : (N, rank)
        Heads (rows w_i*), full column rank.

    Returns
    -------
    (dim rank + N rank + N, rank (dim - rank) + N rank + N) ndarray
        Orthonormal columns in the flattened coordinates (vec B, vec W, eta) (C order); the
        last N columns are the gain coordinates, the others span the (B, W) block.

    Notes
    -----
    T = {(B* Omega + B_perp K, dW, deta)}, V = {(B* Omega, W* Omega, 0) : Omega skew};
    columns: an orthonormal basis of T minus V (the orthogonal complement of V in T).
    """
    B_star = np.asarray(B_star, dtype=np.float64)
    W_star = np.asarray(W_star, dtype=np.float64)
    d, r = B_star.shape
    N = W_star.shape[0]
    B_perp = np.linalg.svd(B_star, full_matrices=True)[0][:, r:]
    size = d * r + N * r
    skews = [np.eye(r)[:, [k]] @ np.eye(r)[[m]] - np.eye(r)[:, [m]] @ np.eye(r)[[k]]
             for k in range(r) for m in range(k + 1, r)]
    # (B, W) part of T: Grassmann directions B_perp K, rotations B* Omega, all head directions.
    tangent = [np.concatenate([np.outer(B_perp[:, a], np.eye(r)[k]).ravel(), np.zeros(N * r)])
               for a in range(d - r) for k in range(r)]
    tangent += [np.concatenate([(B_star @ S).ravel(), np.zeros(N * r)]) for S in skews]
    tangent += list(np.eye(size)[d * r:])
    Q_T = np.linalg.qr(np.column_stack(tangent))[0]
    if skews:
        V = np.column_stack([np.concatenate([(B_star @ S).ravel(), (W_star @ S).ravel()])
                             for S in skews])
        # Coordinates of V in the basis Q_T; the complement is their orthogonal complement.
        full = np.linalg.qr(Q_T.T @ V, mode="complete")[0]
        Q_T = Q_T @ full[:, len(skews):]
    C = np.zeros((size + N, Q_T.shape[1] + N))
    C[:size, :Q_T.shape[1]] = Q_T
    C[size:, Q_T.shape[1]:] = np.eye(N)
    return C


def _flatten(x: MeanPathState) -> FloatArray:
    lead = x.eta.shape[:-1]
    return np.concatenate([x.B.reshape(*lead, -1), x.W.reshape(*lead, -1), x.eta], axis=-1)


def _chart(x_star: MeanPathState, C: FloatArray, xi: FloatArray) -> MeanPathState:
    """c(xi) = (qf(B* + xi_B), W* + xi_W, J + xi_eta) for quotient coordinates xi (..., k)."""
    d, r = x_star.B.shape
    N = x_star.eta.shape[0]
    ambient = _flatten(x_star) + xi @ C.T
    lead = ambient.shape[:-1]
    B = subspace.qr_retraction(ambient[..., :d * r].reshape(*lead, d, r))[0]
    W = ambient[..., d * r:d * r + N * r].reshape(*lead, N, r)
    return MeanPathState(B, W, ambient[..., d * r + N * r:])


@dataclasses.dataclass(frozen=True)
class MeanPathJacobian:
    """Linearisation of the mean-path map at x*, on the quotient tangent space.

    ``alpha`` the step size it was evaluated at; ``jacobian`` X(alpha) (k, k) = I + alpha
    ``drift`` (+ alpha^2 ``second_order`` for heads_first); ``basis`` C (see
    `quotient_basis`); ``n_block`` the size of the (B, W) block (the first n_block coordinates;
    the last N are the gains); ``c_eta`` the gain ratio; ``second_order`` M2 of X(alpha) = I +
    alpha M + alpha^2 M2, None when X is affine in alpha (every reading but heads_first).
    """

    alpha: float
    jacobian: FloatArray
    drift: FloatArray
    basis: FloatArray
    n_block: int
    c_eta: float
    second_order: FloatArray | None = None

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues lambda_j of the drift M (complex, unsorted): the small-step dynamics."""
        return np.linalg.eigvals(self.drift)

    @property
    def block_drift(self) -> FloatArray:
        """The (B, W) block of M (the subspace-and-heads dynamics, gains held at J)."""
        return self.drift[:self.n_block, :self.n_block]

    def _blocks(self, block: bool) -> tuple[FloatArray, FloatArray | None]:
        """(M, M2) of the whole map, or of the (B, W) block."""
        n = self.n_block if block else self.drift.shape[0]
        second = None if self.second_order is None else self.second_order[:n, :n]
        return self.drift[:n, :n], second

    @property
    def critical_step_size(self) -> float:
        """alpha_crit of the whole map (0.0 if some Re lambda_j >= 0): min_j 2 Re(-lambda_j) /
        |lambda_j|^2 for an affine X, else the first alpha with spectral radius 1
        (`_critical_quadratic`)."""
        return _critical(*self._blocks(False))

    @property
    def block_critical_step_size(self) -> float:
        """alpha_crit of the (B, W) block alone."""
        return _critical(*self._blocks(True))

    @property
    def gain_critical_step_size(self) -> float:
        """alpha_crit of the gain block, 2 / c_eta."""
        return _critical(self.drift[self.n_block:, self.n_block:])

    @property
    def decay_rate(self) -> float:
        """kappa = 2 min_j Re(-lambda_j), the decay rate of the mean path's squared error.

        Near x* the squared error decays like exp(-kappa sum_t alpha_t); this is the kappa of
        `theory.inverse_time_rate_condition`, and alpha_0 kappa > 1 is also what
        `subspace_error_constant` needs.
        """
        return float(2.0 * np.min(-self.eigenvalues.real))

    @property
    def sufficient_step_size(self) -> float:
        """omega(M) / ||M||_2^2, or 0.0 when M is not negative definite (omega <= 0).

        The classical step of the affine map I + alpha M; for heads_first it is that of the
        small-step drift M alone and guarantees nothing about the quadratic X(alpha).
        """
        return _sufficient(self.drift)

    @property
    def block_sufficient_step_size(self) -> float:
        """The same for the (B, W) block."""
        return _sufficient(self.block_drift)

    def spectral_radius(self, alpha: ArrayLike, *, block: bool = False) -> FloatArray | float:
        """Spectral radius of X(alpha) for the whole map (or the (B, W) block): max_j |1 + alpha
        lambda_j| when X is affine, else that of I + alpha M + alpha^2 M2."""
        M, M2 = self._blocks(block)
        a = np.asarray(alpha, dtype=np.float64)
        if M2 is None:
            lam = np.linalg.eigvals(M)
            rho = np.max(np.abs(1.0 + a[..., None] * lam), axis=-1)
        else:
            rho = np.vectorize(lambda x: _radius(M, M2, x))(a)
        return float(rho) if rho.ndim == 0 else rho


#: `_critical_quadratic` scans alpha on a geometric grid of this ratio, from SCAN_RANGE[0] to
#: SCAN_RANGE[1] times the affine threshold of M, then bisects the first crossing to SCAN_RTOL.
SCAN_RATIO = 1.05
SCAN_RANGE = (1e-3, 1e3)
SCAN_RTOL = 1e-12


def _radius(M: FloatArray, M2: FloatArray, alpha: float) -> float:
    """Spectral radius of I + alpha M + alpha^2 M2."""
    return float(np.max(np.abs(np.linalg.eigvals(np.eye(M.shape[0]) + alpha * M
                                                 + alpha**2 * M2))))


def _critical_quadratic(M: FloatArray, M2: FloatArray) -> float:
    """First alpha > 0 with rho(I + alpha M + alpha^2 M2) >= 1 (0.0 if small steps already are
    unstable, inf if none below SCAN_RANGE[1] times the affine threshold).

    Small steps are stable iff M is (rho = 1 + alpha max Re lambda_j(M) + O(alpha^2)); the
    crossing is found on a geometric grid from the affine threshold's scale (an unstable window
    narrower than the grid's spacing would be missed), then bisected.
    """
    scale = _critical(M)
    if scale == 0.0:
        return 0.0
    low = scale * SCAN_RANGE[0]
    high = low * SCAN_RATIO
    while _radius(M, M2, high) < 1.0:
        if high > scale * SCAN_RANGE[1]:
            return float(np.inf)
        low, high = high, high * SCAN_RATIO
    while high - low > SCAN_RTOL * low:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _radius(M, M2, mid) < 1.0 else (low, mid)
    return 0.5 * (low + high)


def _critical(M: FloatArray, M2: FloatArray | None = None) -> float:
    if M2 is not None:
        return _critical_quadratic(M, M2)
    try:
        return float(theory.critical_step_size(M))
    except ValueError:  # an eigenvalue with Re >= 0: no positive step is stable
        return 0.0


def _sufficient(M: FloatArray) -> float:
    if float(theory.negative_definiteness_margin(M)) <= 0:
        return 0.0
    return float(theory.sufficient_step_size(M))


def mean_path_jacobian(problem: Any, alpha: float = 1.0, *, c_eta: float = 1.0,
                       c_B: float = 1.0, rebase_heads: bool = False,
                       fd_step: float = 1e-6, update_order: str = "simultaneous",
                       gain_update: str = "reward", head_radius: float | None = None,
                       retraction: str = "qr") -> MeanPathJacobian:
    """Jacobian of the mean-path map at x* on the quotient tangent space (central differences).

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        A planted (exactly realisable) problem; see `fixed_point`.
    alpha : float, optional
        Step size at which X(alpha) is evaluated (default 1); M = (X - I) / alpha.
    c_eta, c_B : float, optional
        Single-timescale ratios.
    rebase_heads : bool, optional
        As in `steps.retraction_step`.
    fd_step : float, optional
        Central-difference step h; error O(h^2) + O(eps / h).
    update_order, gain_update, head_radius, retraction : optional
        The readings, as in `simulate.run` (module docstring, "Readings"); head_radius must
        exceed max_i ||w_i*||.

    Returns
    -------
    MeanPathJacobian

    Notes
    -----
    X[:, j] = C^T (F(c(h e_j)) - F(c(-h e_j))) / (2 h);  X(alpha) = I + alpha M; for
    heads_first X(alpha) = I + alpha M + alpha^2 M2 with M = (X(alpha) - X(-alpha)) / (2 alpha)
    and M2 = (X(alpha) + X(-alpha) - 2 I) / (2 alpha^2).

    References
    ----------
    Absil, Mahony & Sepulchre (2008), Sec. 4.1 (retractions) and Ch. 3 (quotient manifolds).
    """
    alpha = check_in_range(alpha, "alpha", 0.0, np.inf, low_open=True)
    reading = _reading(c_eta, c_B, rebase_heads, update_order, gain_update, head_radius,
                       retraction)
    fd_step = check_in_range(fd_step, "fd_step", 0.0, 1e-2, low_open=True)
    x_star = _fixed_under(fixed_point(problem), reading)
    C = quotient_basis(x_star.B, x_star.W)
    k, N = C.shape[1], x_star.eta.shape[0]
    X = _central_differences(_system(problem), x_star, C, alpha, reading, fd_step)
    if reading.update_order == "simultaneous":
        drift, second = (X - np.eye(k)) / alpha, None
    else:  # exactly quadratic in alpha (module docstring): X(-alpha) separates the two terms
        X_back = _central_differences(_system(problem), x_star, C, -alpha, reading, fd_step)
        drift = (X - X_back) / (2 * alpha)
        second = (X + X_back - 2 * np.eye(k)) / (2 * alpha**2)
    return MeanPathJacobian(alpha=alpha, jacobian=X, drift=drift, basis=C, n_block=k - N,
                            c_eta=reading.c_eta, second_order=second)


def _central_differences(system: _MeanSystem, x_star: MeanPathState, C: FloatArray,
                         alpha: float, reading: _Reading, fd_step: float) -> FloatArray:
    """X = C^T D(F_alpha o c)(0) C by central differences of step fd_step."""
    k = C.shape[1]
    xi = np.concatenate([fd_step * np.eye(k), -fd_step * np.eye(k)])
    image = _flatten(_step(system, _chart(x_star, C, xi), alpha, reading))
    return ((image[:k] - image[k:]) @ C / (2 * fd_step)).T


def mean_path_error_curve(problem: Any, alpha: float, *, steps: int, perturbation: float,
                          rng: RngLike, gains: bool = True, c_eta: float = 1.0,
                          c_B: float = 1.0, rebase_heads: bool = False,
                          update_order: str = "simultaneous", gain_update: str = "reward",
                          head_radius: float | None = None,
                          retraction: str = "qr") -> FloatArray:
    """Errors e(x_t), t = 0..steps, of the mean path started next to x*.

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        Planted problem.
    alpha : float
        Constant step size, > 0.
    steps : int
        Iterations.
    perturbation : float
        Size ||xi|| of the start c(xi), xi a uniformly random direction of the quotient space.
    rng : int, SeedSequence or Generator
        Draws the direction.
    gains : bool, optional
        Perturb the gains too (the whole map); False starts them at J exactly, where they stay,
        so only the (B, W) block acts.
    c_eta, c_B, rebase_heads, update_order, gain_update, head_radius, retraction :
        As in `mean_path_step` (head_radius must exceed max_i ||w_i*||).

    Returns
    -------
    (steps + 1,) ndarray
        `mean_path_error` along the path; it stops early (the rest is inf) once the error is
        not finite or exceeds 1e3 times its start (clearly unstable).

    Notes
    -----
    x_0 = c(xi), x_{t+1} = F_alpha(x_t).
    """
    alpha = check_in_range(alpha, "alpha", 0.0, np.inf, low_open=True)
    reading = _reading(c_eta, c_B, rebase_heads, update_order, gain_update, head_radius,
                       retraction)
    steps_ = check_positive_int(steps, "steps")
    perturbation = check_in_range(perturbation, "perturbation", 0.0, 1e-2, low_open=True)
    system, x_star = _system(problem), _fixed_under(fixed_point(problem), reading)
    C = quotient_basis(x_star.B, x_star.W)
    direction = np.random.default_rng(rng).standard_normal(C.shape[1])
    if not gains:
        direction[C.shape[1] - x_star.eta.shape[0]:] = 0.0
    x = _chart(x_star, C, perturbation * direction / np.linalg.norm(direction))
    errors = np.full(steps_ + 1, np.inf)
    errors[0] = mean_path_error(problem, x)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps_):
            try:
                x = _step(system, x, alpha, reading)
            except ValueError:  # the retraction met a non-finite or rank-deficient B~
                break
            errors[t + 1] = mean_path_error(problem, x)
            if not errors[t + 1] <= 1e3 * errors[0]:
                errors[t + 1] = np.inf
                break
    return errors


def linear_error_curve(A: ArrayLike, alpha: float, x0: ArrayLike, steps: int) -> FloatArray:
    """Error norms of the linear mean path x <- x + alpha (A x + b), started at x* + x0.

    Parameters
    ----------
    A : (..., dim, dim)
        One matrix or a stack (e.g. the agents' A_i).
    alpha : float
        Step size, > 0.
    x0 : (..., dim)
        Initial errors x_0 - x*.
    steps : int
        Iterations.

    Returns
    -------
    (steps + 1,) ndarray
        sqrt(sum over the stack of ||x_t - x*||^2); inf from the first non-finite value on.

    Notes
    -----
    e_{t+1} = (I + alpha A) e_t with e_t = x_t - x* (b cancels: A x* + b = 0).
    """
    A = np.asarray(A, dtype=np.float64)
    alpha = check_in_range(alpha, "alpha", 0.0, np.inf, low_open=True)
    steps_ = check_positive_int(steps, "steps")
    e = np.array(x0, dtype=np.float64)
    errors = np.full(steps_ + 1, np.inf)
    errors[0] = np.linalg.norm(e)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps_):
            e = e + alpha * np.einsum("...ij,...j->...i", A, e)
            errors[t + 1] = np.linalg.norm(e)
            if not np.isfinite(errors[t + 1]):
                errors[t + 1:] = np.inf
                break
    return errors


def is_decaying(errors: ArrayLike, *, window: float = 0.1, converged: float = 1e-6) -> bool:
    """Whether an error curve decays: the verdict of one step size in a stability bisection.

    Parameters
    ----------
    errors : (T + 1,)
        e_0, ..., e_T (inf or NaN count as divergence).
    window : float, optional
        Fraction of T over which maxima are taken (longer than an oscillation period).
    converged : float, optional
        A curve whose last value is below ``converged * e_0`` decays (round-off reached).

    Returns
    -------
    bool
        True iff every value is finite and either e_T <= converged e_0 or the maximum over the
        last window is below the maximum over the window that ends at T / 2.

    Notes
    -----
    For e_t ~ c rho^t the late maxima compare as rho^(T/2): the verdict is rho < 1 once T is
    long enough for the slowest mode to dominate.
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1 or e.size < 20:
        raise ValueError(f"errors must be a curve of at least 20 values; got shape {e.shape}")
    window = check_in_range(window, "window", 0.0, 0.5, low_open=True)
    if not np.all(np.isfinite(e)):
        return False
    if e[-1] <= converged * e[0]:
        return True
    w = max(1, int(window * (e.size - 1)))
    half = (e.size - 1) // 2
    return bool(np.max(e[-w:]) < np.max(e[half - w + 1:half + 1]))


@dataclasses.dataclass(frozen=True)
class Bisection:
    """Bracket [low, high] of a stability threshold: stable at low, not at high."""

    low: float
    high: float
    evaluations: int

    @property
    def threshold(self) -> float:
        """Midpoint of the bracket."""
        return 0.5 * (self.low + self.high)


def bisect_threshold(is_stable: Callable[[float], bool], low: float, *, rtol: float,
                     growth: float = 2.0, max_expansions: int = 40) -> Bisection:
    """Find the step size where ``is_stable`` switches from True to False, from below.

    Parameters
    ----------
    is_stable : callable alpha -> bool
        The verdict at one step size (e.g. `is_decaying` of an error curve).
    low : float
        A step size known to be stable (e.g. a sufficient step size), > 0.
    rtol : float
        Stop once high - low <= rtol * low.
    growth : float, optional
        Factor > 1 by which the bracket's upper end grows until it is unstable.
    max_expansions : int, optional
        Give up (ValueError) if alpha = low growth^max_expansions is still stable.

    Returns
    -------
    Bisection

    Raises
    ------
    ValueError
        If ``low`` is not stable or no unstable step size is found.

    Notes
    -----
    Bracket: high = low growth^k for the first unstable k; then bisection in log alpha,
    mid = sqrt(low high), keeping is_stable(low) and not is_stable(high).
    """
    low = check_in_range(low, "low", 0.0, np.inf, low_open=True)
    rtol = check_in_range(rtol, "rtol", 0.0, 1.0, low_open=True)
    growth = check_in_range(growth, "growth", 1.0, np.inf, low_open=True)
    max_expansions = check_positive_int(max_expansions, "max_expansions")
    if not is_stable(low):
        raise ValueError(f"low must be a stable step size; got low = {low:g}, which is not")
    count, high = 1, low * growth
    while is_stable(high):
        count += 1
        if count > max_expansions:
            raise ValueError(f"no unstable step size up to {high:g} = low * growth^"
                             f"{max_expansions}")
        low, high = high, high * growth
    count += 1
    while high - low > rtol * low:
        mid = float(np.sqrt(low * high))
        if is_stable(mid):
            low = mid
        else:
            high = mid
        count += 1
    return Bisection(low, high, count)


def _transition_terms(problem: Any, i: int) -> FloatArray:
    """f_i(s, s') = (delta_i phi(s), r_i(s) - J_i) at x*: agent i's noise, shape (n, n, d + 1).

    delta_i(s, s') = r_i(s) - J_i + (phi(s') - phi(s))^T theta_i*, the TD error at x*.
    """
    Phi = np.asarray(problem.features)
    r = np.asarray(problem.rewards[i])
    value = Phi @ np.asarray(problem.theta_star[i])
    gap = r - float(problem.average_reward[i])
    delta = gap[:, None] + value[None, :] - value[:, None]
    n = r.size
    return np.concatenate([delta[:, :, None] * Phi[:, None, :],
                           np.broadcast_to(gap[:, None, None], (n, n, 1))], axis=2)


def _noise_map(x_star: MeanPathState, C: FloatArray, i: int, c_eta: float,
               c_B: float) -> FloatArray:
    """L_i (k, d + 1): agent i's (z, e) = (delta phi(s), r - J) -> quotient coordinates.

    One iteration moves B by c_B alpha (1/N) z w_i*^T (through the retraction's differential),
    w_i by alpha B*^T z and eta_i by c_eta alpha e; L_i is that move per unit alpha, seen
    through C^T.
    """
    B, W = x_star.B, x_star.W
    d, r = B.shape
    N = W.shape[0]
    columns = []
    for j in range(d + 1):
        z = np.eye(d + 1)[j, :d]
        moved_B = subspace.qr_retraction_differential(B, c_B / N * np.outer(z, W[i]))
        moved_W = np.zeros((N, r))
        moved_W[i] = B.T @ z
        moved_eta = c_eta * np.eye(d + 1)[j, d] * np.eye(N)[i]
        columns.append(C.T @ np.concatenate([moved_B.ravel(), moved_W.ravel(), moved_eta]))
    return np.column_stack(columns)


def noise_covariance(problem: Any, *, c_eta: float = 1.0, c_B: float = 1.0,
                     sampling: str = "markov") -> FloatArray:
    """Long-run covariance Gamma of the update's noise at x*, in the quotient coordinates.

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        A planted problem (x* a fixed point; see `fixed_point`).
    c_eta, c_B : float, optional
        Single-timescale ratios.
    sampling : str, optional
        "markov" (each agent's transitions along one trajectory: the long-run covariance, all
        lags) or "iid" (s_t ~ mu_i afresh every iteration: lag 0 only).

    Returns
    -------
    (k, k) ndarray
        Gamma = sum_i L_i Sigma_i L_i^T in the coordinates of `quotient_basis`; Sigma_i the
        (long-run) covariance of f_i(s, s') = (delta_i phi(s), r_i(s) - J_i), plus sigma^2
        E_mu[(phi, 1)(phi, 1)^T] for reward noise of scale sigma; L_i maps f_i to the move of
        (B, W, eta). The agents are independent, so their terms add.

    Notes
    -----
    One iteration at x*: x <- x + alpha (M x + xi), xi = sum_i L_i f_i(s_t^i, s_{t+1}^i).

    References
    ----------
    Meyn & Tweedie (2009), Ch. 17 (long-run covariance); Borkar (2008), Ch. 6.
    """
    c_eta, c_B = _ratios(c_eta, c_B)
    if sampling not in ("markov", "iid"):
        raise ValueError(f"sampling must be 'markov' or 'iid'; got {sampling!r}")
    x_star = fixed_point(problem)
    return _noise_covariance(problem, x_star, quotient_basis(x_star.B, x_star.W), c_eta, c_B,
                             sampling)


def _noise_covariance(problem: Any, x_star: MeanPathState, C: FloatArray, c_eta: float,
                      c_B: float, sampling: str) -> FloatArray:
    """`noise_covariance` at a known fixed point and quotient basis (trusted inputs)."""
    Phi = np.asarray(problem.features)
    with_one = np.concatenate([Phi, np.ones((Phi.shape[0], 1))], axis=1)
    Gamma = np.zeros((C.shape[1], C.shape[1]))
    for i in range(problem.n_agents):
        f = _transition_terms(problem, i)
        P, mu = np.asarray(problem.P[i]), np.asarray(problem.mu[i])
        if sampling == "markov":
            sigma = theory.long_run_covariance(P, f)
        else:
            sigma = np.einsum("st,stm,stk->mk", mu[:, None] * P, f, f)
        sigma += problem.reward_noise**2 * np.einsum("s,sm,sk->mk", mu, with_one, with_one)
        L = _noise_map(x_star, C, i, c_eta, c_B)
        Gamma += L @ sigma @ L.T
    return Gamma


def subspace_error_constant(problem: Any, alpha0: float, *, c_eta: float = 1.0,
                            c_B: float = 1.0, sampling: str = "markov") -> float:
    """Predicted C_B in E dist_F^2(B_T, B*) ~ C_B / T under steps alpha_t = alpha0 / (t + t0).

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        A planted problem.
    alpha0 : float
        alpha_0 of the schedule; every eigenvalue of alpha0 M + I/2 must have negative real part
        (`theory.inverse_time_covariance` raises otherwise).
    c_eta, c_B : float, optional
        Single-timescale ratios.
    sampling : str, optional
        "markov" or "iid" (`noise_covariance`).

    Returns
    -------
    float
        C_B = tr(G V G^T): V = `theory.inverse_time_covariance` of the drift M
        (`mean_path_jacobian`) and the noise Gamma (`noise_covariance`); G maps quotient
        coordinates to the Grassmann part (I - B* B*^T) of the basis, whose squared Frobenius
        norm is dist_F^2(B, B*) to second order.

    Notes
    -----
    Linearised at x*: x_{t+1} = x_t + alpha_t (M x_t + xi_t); t E[x x^T] -> V, so
    T E dist_F^2(B_T, B*) -> C_B. The B-block of Gamma averages N independent agents.

    References
    ----------
    Chung (1954); Fabian (1968); Borkar (2008), Ch. 6; Srikant & Ying (2019).
    """
    drift, Gamma, G = _linearisation(problem, c_eta, c_B, sampling)
    V = theory.inverse_time_covariance(drift, Gamma, alpha0)
    return float(np.trace(G @ V @ G.T))


def _linearisation(problem: Any, c_eta: float, c_B: float,
                   sampling: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(M, Gamma, G): drift, long-run noise covariance and the map from quotient coordinates
    to the Grassmann part (I - B* B*^T) dB of the basis (``d r`` rows)."""
    if sampling not in ("markov", "iid"):
        raise ValueError(f"sampling must be 'markov' or 'iid'; got {sampling!r}")
    jacobian = mean_path_jacobian(problem, c_eta=c_eta, c_B=c_B)  # validates c_eta, c_B
    x_star, C = fixed_point(problem), jacobian.basis
    Gamma = _noise_covariance(problem, x_star, C, jacobian.c_eta, c_B, sampling)
    d, r = x_star.B.shape
    outside = np.eye(d) - x_star.B @ x_star.B.T
    G = np.einsum("ab,bkj->akj", outside, C[:d * r].reshape(d, r, -1)).reshape(d * r, -1)
    return jacobian.drift, Gamma, G


def subspace_error_floor(problem: Any, alpha: float | ArrayLike, *, c_eta: float = 1.0,
                         c_B: float = 1.0, sampling: str = "markov") -> float | FloatArray:
    """Predicted stationary E dist_F^2(B_t, B*) under a constant step alpha (the noise floor).

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        A planted problem.
    alpha : float or sequence of floats
        The constant step(s), below the mean path's critical step
        (`theory.constant_step_covariance` raises otherwise); the linearisation is computed
        once for all of them.
    c_eta, c_B : float, optional
        Single-timescale ratios.
    sampling : str, optional
        "markov" or "iid" (`noise_covariance`).

    Returns
    -------
    float, or ndarray for a sequence of steps
        tr(G V G^T), V = `theory.constant_step_covariance` of the drift M and the noise Gamma,
        G as in `subspace_error_constant`.

    Notes
    -----
    First order in alpha (and in alpha tau_mix): floor = alpha tr(G V_1 G^T) + O(alpha^2), with
    V_1 the continuous Lyapunov solution; the B-block of Gamma averages N agents, so the floor's
    variance part falls like 1/N. Biases of order alpha^2 (Markov sampling, the curvature of
    the retraction) are not in it.

    References
    ----------
    Borkar (2008), Ch. 9; Srikant & Ying (2019).
    """
    drift, Gamma, G = _linearisation(problem, c_eta, c_B, sampling)
    floors = [float(np.trace(G @ theory.constant_step_covariance(drift, Gamma, a) @ G.T))
              for a in np.atleast_1d(np.asarray(alpha, dtype=np.float64))]
    return floors[0] if np.ndim(alpha) == 0 else np.array(floors)


# ------------------------------------------------------------------- the limit on any problem

#: Levels of the per-step movement dist_F(B_{t+1}, B_t) between which `mean_path_limit` fits the
#: late geometric rate: below the transient (relative to the largest movement), above round-off.
RATE_WINDOW = (1e-3, 1e-13)
#: Fewest iterations inside that window for a rate.
MIN_RATE_POINTS = 10


@dataclasses.dataclass(frozen=True)
class MeanPathLimit:
    """Where the mean path settles, found by iterating it (any problem, planted or not).

    Attributes
    ----------
    B, heads, eta : (dim, rank), (N, rank), (N,)
        The state after ``steps`` iterations from the first start: the limit (B_inf, W_inf,
        eta_inf), up to ``residual``.
    parameter_error : float
        (1/N) sum_i ||B_inf w_i - theta_i*||^2 at the limit.
    start_spread : float
        Largest dist(B_T, B_inf) over the other starts: about 0 when every start reaches one
        limit, large when the mean path has several.
    rate : float
        kappa: late in the run the movement dist_F(B_{t+1}, B_t) ~ exp(-kappa alpha t); the
        slowest direction's decay rate per unit step.
    residual : float
        Bound on dist_F(B_T, B_inf) from the geometric tail: m_T q / (1 - q), m_T the last
        movement and q = exp(-kappa alpha).
    """

    B: FloatArray
    heads: FloatArray
    eta: FloatArray
    parameter_error: float
    start_spread: float
    rate: float
    residual: float


def mean_path_limit(problem: Any, *, alpha: float, steps: int, seed: int = 0, starts: int = 3,
                    c_eta: float = 1.0, c_B: float = 1.0, rebase_heads: bool = False,
                    update_order: str = "simultaneous", gain_update: str = "reward",
                    head_radius: float | None = None, retraction: str = "qr") -> MeanPathLimit:
    """Iterate the mean-path map from ``starts`` Haar-random bases and return where it settles.

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        Any problem with a rank (planted or misspecified: `fixed_point` needs a planted one).
    alpha : float
        Constant step, > 0, below the mean path's critical step.
    steps : int
        Most iterations T >= 1 from every start (heads and gains start at 0). The run stops
        earlier once the movement falls below `RATE_WINDOW`'s lower level, round-off.
    seed : int, optional
        The starts are ``subspace.haar_orthonormal(dim, rank, seed, size=starts)``.
    starts : int, optional
        Number of random starts, >= 1; the first gives the limit, the others its spread.
    c_eta, c_B : float, optional
        Single-timescale ratios.
    rebase_heads, update_order, gain_update, head_radius, retraction : optional
        The reading, as in `mean_path_step` (any head radius: the limit need not be x*).

    Returns
    -------
    MeanPathLimit

    Raises
    ------
    ValueError
        If the problem has no rank, the mean path diverges (alpha too large), or the movement
        of the first start does not fall from `RATE_WINDOW`'s upper level to its lower one over
        at least `MIN_RATE_POINTS` iterations (too few steps: the run is still transient), or
        does not decay there.

    Notes
    -----
    x_{t+1} = F_alpha(x_t) (`mean_path_step`); m_t = dist_F(B_{t+1}, B_t) ~ C q^t late, log q the
    least-squares slope of log m_t over the window; kappa = -log(q) / alpha;
    dist_F(B_T, B_inf) <= sum_{t >= T} m_t ~ m_T q / (1 - q).
    """
    alpha = check_in_range(alpha, "alpha", 0.0, np.inf, low_open=True, high_open=True)
    starts = check_positive_int(starts, "starts")
    reading = _reading(c_eta, c_B, rebase_heads, update_order, gain_update, head_radius,
                       retraction)
    rank = problem.rank if problem.B_star is None else problem.B_star.shape[1]
    if rank is None:
        raise ValueError("problem must have a rank (Problem.from_arrays(..., rank=r))")
    system, N = _system(problem), problem.n_agents
    x = MeanPathState(subspace.haar_orthonormal(problem.dim, rank, seed, size=starts),
                      np.zeros((starts, N, rank)), np.zeros((starts, N)))
    movement: list[float] = []
    largest = 0.0
    for t in range(check_positive_int(steps, "steps")):
        if movement and movement[-1] < RATE_WINDOW[1] * largest:
            break  # round-off level: further iterations cannot move the limit
        previous = x.B[0]
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                x = _step(system, x, alpha, reading)
            except ValueError as exc:  # the retraction refuses a non-finite basis
                raise ValueError(f"the mean path diverged at iteration {t}: alpha={alpha} is "
                                 "above its critical step") from exc
        # dist_F for orthonormal bases, ||(I - B_t B_t^T) B_{t+1}||_F, without an SVD per step
        B = x.B[0]
        movement.append(float(np.linalg.norm(B - previous @ (previous.T @ B))))
        largest = max(largest, movement[-1])
    scale = np.array(movement) / largest
    settled = np.flatnonzero(scale <= RATE_WINDOW[0])
    window = settled[0] + np.flatnonzero(scale[settled[0]:] >= RATE_WINDOW[1]) if settled.size \
        else settled
    if window.size < MIN_RATE_POINTS:
        raise ValueError(f"steps={len(movement)} leave {window.size} iterations with the movement "
                         f"between {RATE_WINDOW[0]:g} and {RATE_WINDOW[1]:g} of its largest "
                         f"value (need {MIN_RATE_POINTS}): raise steps")
    q = float(np.exp(np.polyfit(window, np.log(scale[window]), 1)[0]))
    if not q < 1:
        raise ValueError(f"the mean path's movement does not decay late in the run (ratio {q:.6g}"
                         " per step): raise steps, or no limit exists at this alpha")
    B = x.B[0]
    spread = max((subspace.principal_angle_distance(x.B[k], B) for k in range(1, starts)),
                 default=0.0)
    error = theory.shared_parameter_error(B, x.W[0], system.theta_star)
    return MeanPathLimit(B=B, heads=x.W[0], eta=x.eta[0], parameter_error=error,
                         start_spread=float(spread), rate=float(-np.log(q) / alpha),
                         residual=float(movement[-1] * q / (1 - q)))
