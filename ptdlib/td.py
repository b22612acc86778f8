"""Average-reward TD theory: gain, bias (Poisson equation), the TD matrices and fixed point.

Primer
------
An agent's Markov reward process is an ergodic chain ``P`` (n, n) with stationary distribution
``mu`` and expected reward ``r`` (n,). Its average reward (gain) is J = mu^T r, and its
differential value (bias) ``h`` solves the Poisson equation

    h = r - J 1 + P h,

unique up to an additive constant; ptd normalises mu^T h = 0. Then h solves the nonsingular
system (I - P + 1 mu^T) h = r - J 1 (the matrix is invertible for irreducible P; multiplying by
mu^T shows that any solution has mu^T h = 0).

Average-reward TD(0) with features ``Phi`` (n, d), rows phi(s), tracks an estimate eta of J:

    delta_t     = r_t - eta_t + (phi(s_{t+1}) - phi(s_t))^T theta_t,
    eta_{t+1}   = eta_t + c_eta alpha_t (r_t - eta_t),
    theta_{t+1} = theta_t + alpha_t delta_t phi(s_t).

Averaged over s_t ~ mu with eta = J, the theta update is the mean path theta <- theta +
alpha (A theta + b) with

    A = Phi^T D (P - I) Phi,   b = Phi^T D (r - J 1),   D = diag(mu).

If the constant vector 1 is not in span(Phi) and Phi has full column rank, A is negative
definite (||P v||_D <= ||v||_D with equality only for constant v), and the unique fixed point
theta* solves A theta* + b = 0: Phi theta* is the D-projected solution of the Poisson equation.
If h + c 1 lies in span(Phi) for some c, then Phi theta* = h + c 1 exactly. If 1 were in
span(Phi), A would be singular (A x = 0 for Phi x = 1), hence the residual check below.

Every function takes one chain (P (n, n), r (n,)) or a stack of agents (P (N, n, n), r (N, n))
with common features Phi (n, d), and is vectorised over the stack.

References
----------
Tsitsiklis, J. N. & Van Roy, B. (1999). Average cost temporal-difference learning. Automatica
35(11), 1799-1808.
Puterman, M. L. (1994). Markov Decision Processes, Sec. 8.2 (gain, bias, Poisson equation).
Zhang, S., Zhang, Z. & Maguluri, S. T. (2021). Finite sample analysis of average-reward TD
learning and Q-learning. NeurIPS.
Srikant, R. & Ying, L. (2019). Finite-time error bounds for linear stochastic approximation and
TD learning. COLT.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ptdlib import markov
from ptdlib._validation import FloatArray, as_float_array

#: Rows of Phi may exceed norm 1 by this much (round-off from normalising them).
FEATURE_NORM_ATOL = 1e-12
#: Smallest admissible distance of 1/sqrt(n) from span(Phi); below it A is numerically singular.
CONSTANT_RESIDUAL_TOL = 1e-8

# Agents per block in _td_matrix: the (block, n, d) temporary stays small (5 MB at n = 50,
# d = 49) instead of one (N, n, d) array (200 MB at N = 10,000) that must first be paged in.
_AGENT_BLOCK = 256


# --------------------------------------------------------------------------- validation

def constant_in_span_residual(Phi: ArrayLike) -> float:
    """Distance of the unit constant vector 1/sqrt(n) from span(Phi).

    Parameters
    ----------
    Phi : (n_states, dim) array_like
        Feature matrix (any rank).

    Returns
    -------
    float
        In [0, 1]; 0 means the constant direction lies in span(Phi).

    Notes
    -----
    residual = ||(I - U U^T) 1 / sqrt(n)||_2, U an orthonormal basis of span(Phi) (from the SVD).

    References
    ----------
    Tsitsiklis & Van Roy (1999): the assumption Phi x != 1 for all x.
    """
    Phi = as_float_array(Phi, "Phi", ndim=2)
    U, sigma, _ = np.linalg.svd(Phi, full_matrices=False)
    # numpy's matrix_rank rule: singular values above sigma_max * max(n, d) * eps count.
    tol = (sigma[0] if sigma.size else 0.0) * max(Phi.shape) * np.finfo(np.float64).eps
    U = U[:, sigma > tol]
    ones = np.full(Phi.shape[0], 1 / np.sqrt(Phi.shape[0]))
    # The explicit difference keeps small residuals accurate (sqrt(1 - |U^T 1|^2) would not).
    return float(np.linalg.norm(ones - U @ (U.T @ ones)))


def check_features(Phi: ArrayLike) -> FloatArray:
    """Return ``Phi`` as float64 after checking the feature assumptions of docs/setting.md.

    Phi must be finite (n_states, dim) with 1 <= dim < n_states, of full column rank, with
    rows ||phi(s)|| <= 1 + ``FEATURE_NORM_ATOL`` and ``constant_in_span_residual(Phi)`` >=
    ``CONSTANT_RESIDUAL_TOL``; otherwise ValueError says which and reports the value.
    """
    Phi = as_float_array(Phi, "Phi", ndim=2)
    n_states, dim = Phi.shape
    # Full column rank with 1 outside the span needs dim <= n_states - 1.
    if dim == 0 or dim > n_states - 1:
        raise ValueError(f"Phi must be (n_states, dim) with 1 <= dim <= n_states - 1 (full column "
                         f"rank with the constant vector outside the span); got shape {Phi.shape}")
    rank = int(np.linalg.matrix_rank(Phi))
    if rank < dim:
        raise ValueError(f"Phi must have full column rank {dim}; got numerical rank {rank}")
    row_norms = np.linalg.norm(Phi, axis=1)
    if np.max(row_norms) > 1 + FEATURE_NORM_ATOL:
        state = int(np.argmax(row_norms))
        raise ValueError(f"Phi rows must satisfy ||phi(s)|| <= 1 (+{FEATURE_NORM_ATOL:g}); the "
                         f"largest is {row_norms[state]:.12g} at state {state}")
    residual = constant_in_span_residual(Phi)
    if residual < CONSTANT_RESIDUAL_TOL:
        raise ValueError(f"Phi: features span the constant vector (residual {residual:.3g} < "
                         f"{CONSTANT_RESIDUAL_TOL:g}), so A is singular and the TD fixed point is "
                         "not unique")
    return Phi


def _check_mrp(P: ArrayLike, r: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate one chain (n, n) with r (n,) or a stack (N, n, n) with r (N, n)."""
    P = markov.check_ergodic(P, name="P")  # also rejects shapes other than (n, n), (N, n, n)
    r = as_float_array(r, "r")
    if r.shape != P.shape[:-1]:
        raise ValueError(f"r must have shape {P.shape[:-1]} to match P {P.shape}; got {r.shape}")
    return P, r


def _check_mrp_features(P: ArrayLike, r: ArrayLike,
                        Phi: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    P, r = _check_mrp(P, r)
    Phi = as_float_array(Phi, "Phi", ndim=2)
    if Phi.shape[0] != P.shape[-1]:
        raise ValueError(f"Phi must have n_states = {P.shape[-1]} rows to match P; got shape "
                         f"{Phi.shape}")
    return P, r, check_features(Phi)


# --------------------------------------------------------------------------- private kernels

def _stationary(P: FloatArray) -> FloatArray:
    return markov.stationary_distribution(P) if P.ndim == 2 else markov.stationary_distributions(P)


def _gain(mu: FloatArray, r: FloatArray) -> FloatArray:
    return np.sum(mu * r, axis=-1)


def _scalar_or_array(x: FloatArray) -> float | FloatArray:
    return float(x) if np.ndim(x) == 0 else x


def _td_matrix(P: FloatArray, mu: FloatArray, Phi: FloatArray) -> FloatArray:
    """A = Phi^T D (P - I) Phi for (..., n, n) chains, in blocks of agents."""
    n_states, dim = Phi.shape
    chains, weights = P.reshape(-1, n_states, n_states), mu.reshape(-1, n_states)
    A = np.empty((len(chains), dim, dim))
    for start in range(0, len(chains), _AGENT_BLOCK):
        block = slice(start, start + _AGENT_BLOCK)
        M = chains[block] @ Phi
        M -= Phi
        M *= weights[block, :, None]
        np.matmul(Phi.T, M, out=A[block])
    return A.reshape(*P.shape[:-2], dim, dim)


# --------------------------------------------------------------------------- public quantities

def average_reward(P: ArrayLike, r: ArrayLike) -> float | FloatArray:
    """Average reward (gain) J = mu^T r.

    Parameters
    ----------
    P : (n_states, n_states) or (n_agents, n_states, n_states) array_like
        Ergodic transition matrix or stack.
    r : (n_states,) or (n_agents, n_states) array_like
        Expected reward per state.

    Returns
    -------
    float or (n_agents,) ndarray

    Notes
    -----
    J = mu^T r = lim_T (1/T) E sum_{t<T} r(s_t).

    References
    ----------
    Puterman (1994), Sec. 8.2; Tsitsiklis & Van Roy (1999).
    """
    P, r = _check_mrp(P, r)
    return _scalar_or_array(_gain(_stationary(P), r))


def poisson_solution(P: ArrayLike, r: ArrayLike) -> FloatArray:
    """Bias h solving the Poisson equation h = r - J 1 + P h, normalised mu^T h = 0.

    Parameters
    ----------
    P : (n_states, n_states) or (n_agents, n_states, n_states) array_like
        Ergodic transition matrix or stack.
    r : (n_states,) or (n_agents, n_states) array_like
        Expected reward per state.

    Returns
    -------
    (n_states,) or (n_agents, n_states) ndarray

    Notes
    -----
    (I - P + 1 mu^T) h = r - J 1.

    References
    ----------
    Puterman (1994), Sec. 8.2 (the fundamental matrix (I - P + 1 mu^T)^-1 and the bias).
    """
    P, r = _check_mrp(P, r)
    mu = _stationary(P)
    J = _gain(mu, r)
    # M = I - P + 1 mu^T (every row of 1 mu^T is mu), built in one buffer: for 10,000 agents
    # each (N, n, n) temporary is another 200 MB to page in.
    M = np.negative(P)
    M += mu[..., None, :]
    diagonal = np.arange(P.shape[-1])
    M[..., diagonal, diagonal] += 1.0
    return np.linalg.solve(M, (r - J[..., None])[..., None])[..., 0]


def td_matrices(P: ArrayLike, r: ArrayLike, Phi: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Mean-path matrices (A, b) of average-reward TD(0): A theta + b = 0 at the fixed point.

    Parameters
    ----------
    P : (n_states, n_states) or (n_agents, n_states, n_states) array_like
        Ergodic transition matrix or stack.
    r : (n_states,) or (n_agents, n_states) array_like
        Expected reward per state.
    Phi : (n_states, dim) array_like
        Features: full column rank, ||phi(s)|| <= 1, 1 not in span(Phi).

    Returns
    -------
    A : (dim, dim) or (n_agents, dim, dim) ndarray
        Negative definite.
    b : (dim,) or (n_agents, dim) ndarray

    Notes
    -----
    A = Phi^T D (P - I) Phi, b = Phi^T D (r - J 1), D = diag(mu).

    References
    ----------
    Tsitsiklis & Van Roy (1999); Zhang, Zhang & Maguluri (2021).
    """
    P, r, Phi = _check_mrp_features(P, r, Phi)
    mu = _stationary(P)
    J = _gain(mu, r)
    return _td_matrix(P, mu, Phi), (mu * (r - J[..., None])) @ Phi


def bellman_residual(P: ArrayLike, r: ArrayLike, Phi: ArrayLike, theta: ArrayLike) -> FloatArray:
    """Statewise Bellman residual of a linear value estimate under the chain's own gain.

    Parameters
    ----------
    P : (n_states, n_states) or (n_agents, n_states, n_states) array_like
        Ergodic transition matrix or stack.
    r : (n_states,) or (n_agents, n_states) array_like
        Expected reward per state.
    Phi : (n_states, dim) array_like
        Features.
    theta : (dim,) or (n_agents, dim) array_like
        Parameters, one per chain.

    Returns
    -------
    (n_states,) or (n_agents, n_states) ndarray
        eps(s) = r(s) - J + (P Phi theta)(s) - phi(s)^T theta, with J = mu^T r.

    Notes
    -----
    At the TD fixed point eps is D-orthogonal to 1 and to the columns of Phi. It is 0 in every
    state when the differential value function lies in span(1, Phi); otherwise the TD noise
    delta_t phi(s_t) at theta* has conditional mean eps(s_t) phi(s_t) given s_t, which is
    correlated along the chain.
    """
    P, r, Phi = _check_mrp_features(P, r, Phi)
    theta = as_float_array(theta, "theta")
    expected = (*P.shape[:-2], Phi.shape[1])
    if theta.shape != expected:
        raise ValueError(f"theta must have shape {expected} to match P "
                         f"{P.shape} and Phi {Phi.shape}; got {theta.shape}")
    values = theta @ Phi.T
    gain = _gain(_stationary(P), r)
    return r - gain[..., None] + np.einsum("...st,...t->...s", P, values) - values


def td_fixed_point(P: ArrayLike, r: ArrayLike, Phi: ArrayLike) -> FloatArray:
    """TD fixed point theta* solving A theta* + b = 0.

    Parameters
    ----------
    P : (n_states, n_states) or (n_agents, n_states, n_states) array_like
        Ergodic transition matrix or stack.
    r : (n_states,) or (n_agents, n_states) array_like
        Expected reward per state.
    Phi : (n_states, dim) array_like
        Features: full column rank, ||phi(s)|| <= 1, 1 not in span(Phi).

    Returns
    -------
    (dim,) or (n_agents, dim) ndarray

    Notes
    -----
    theta* = -A^-1 b; Phi theta* = h + c 1 when the bias h lies in span(Phi) + span(1).

    References
    ----------
    Tsitsiklis & Van Roy (1999), the limit of average-cost TD(0).
    """
    A, b = td_matrices(P, r, Phi)
    return np.linalg.solve(A, -b[..., None])[..., 0]
