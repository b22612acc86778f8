"""Every theoretical constant, bound and condition ptd uses, each with its source.

Primer
------
Mixing. For an ergodic chain P with stationary distribution mu, d(t) = max_s TV(P^t(s, .), mu)
decays geometrically (Levin, Peres & Wilmer 2017, Thm. 4.9). Finite-time TD analyses state this
as uniform ergodicity, d(t) <= m rho^t, and measure Markovian noise through
tau_mix(eps) = min{t >= 0 : m rho^t <= eps} (Bhandari, Russo & Singal 2018). The textbook
t_mix(eps) = min{t : d(t) <= eps} obeys d(l t_mix) <= 2^-l (submultiplicativity) and, for
reversible chains, the relaxation-time sandwich. Two-state, lazy-cycle and lazy-hypercube chains
have closed forms used as known answers, and so do metastable chains (k clusters left with
probability q per step): their switching eigenvalue 1 - k q / (k - 1) makes tau_mix ~ 1/q while
the dynamics inside the clusters stay fixed.

Markov vs i.i.d. With a constant step, the exact stationary mean of TD under Markovian sampling
(`markov_td_stationary_mean`) differs from theta* by a bias of order alpha tau_mix, which
i.i.d. sampling does not have; the Markovian floor is the i.i.d. floor plus that squared bias
plus an excess variance (`markov_floor_decomposition`).

Linear mean path. Averaging TD over the stationary distribution gives x <- x + alpha (A x + b)
with A negative definite: omega = lambda_min(-sym(A)) > 0, sym(A) = (A + A^T)/2. The classical
sufficient step alpha <= omega / ||A||_2^2 makes the Euclidean error contract by
sqrt(1 - alpha omega) per step; the exact threshold is alpha_crit = min_j 2 Re(-lambda_j) /
|lambda_j|^2 over the eigenvalues of A, and alpha_suff <= alpha_crit / 2 always.

Shared subspace. chi = max_i ||(I - B* B*^T) A_i B*||_2 (misalignment: 0 iff span(B*) is
invariant under every A_i) and lambda_w = sigma_r(W*)^2 / N (head diversity: 0 when N < r or the
heads do not span R^r, in which case B* is not identifiable).

Conditions return a :class:`Condition` whose string names the inequality and whether it held.
This module imports only numpy and scipy (it sits below every other ptd module).

References
----------
Levin, D. A., Peres, Y. & Wilmer, E. L. (2017). Markov Chains and Mixing Times, 2nd ed. AMS.
Bhandari, J., Russo, D. & Singal, R. (2018). A finite time analysis of temporal difference
learning with linear function approximation. COLT.
Srikant, R. & Ying, L. (2019). Finite-time error bounds for linear stochastic approximation and
TD learning. COLT.
Tsitsiklis, J. N. & Van Roy, B. (1999). Average cost temporal-difference learning. Automatica
35(11), 1799-1808.
Collins, L., Hassani, H., Mokhtari, A. & Shakkottai, S. (2021). Exploiting shared
representations for personalized federated learning. ICML.
Horn, R. A. & Johnson, C. R. (2013). Matrix Analysis, 2nd ed. Cambridge University Press.
Huo, D., Chen, Y. & Xie, Q. (2023). Bias and extrapolation in Markovian linear stochastic
approximation with constant stepsizes. Proc. ACM Meas. Anal. Comput. Syst. 7(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Same tolerance as ptdlib._validation.ORTHONORMAL_ATOL (theory.py may not import ptd modules).
_ORTHONORMAL_ATOL = 1e-8


# --------------------------------------------------------------------------- validation helpers

def _finite(x: ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array; got {type(x).__name__}") from exc
    if not np.all(np.isfinite(arr)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; got NaN or inf at index {index}")
    return arr


def _square_stack(A: ArrayLike, name: str = "A") -> FloatArray:
    arr = _finite(A, name)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2] or arr.shape[-1] == 0:
        raise ValueError(f"{name} must be a square matrix (or a stack of them); got shape "
                         f"{arr.shape}")
    return arr


def _scalar_or_array(x: FloatArray) -> float | FloatArray:
    return float(x) if np.ndim(x) == 0 else x


def _real(value: float, name: str, low: float, high: float, *, low_open: bool = True,
          high_open: bool = True) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number; got {value!r}") from exc
    below = x <= low if low_open else x < low
    above = x >= high if high_open else x > high
    if not np.isfinite(x) or below or above:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}; got {value!r}")
    return x


def _nonnegative_ints(t: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(t)
    if not np.issubdtype(arr.dtype, np.integer) or np.any(arr < 0):
        raise ValueError(f"{name} must be a non-negative integer (or an array of them); got {t!r}")
    return arr.astype(np.int64)


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- conditions

@dataclass(frozen=True)
class Condition:
    """A named inequality ``lhs <op> rhs`` evaluated on concrete numbers.

    ``str(condition)`` names the inequality and says whether it held, e.g.
    ``"step size: alpha <= omega / ||A||_2^2 FAILS (lhs = 0.3, rhs = 0.12)"``.
    """

    name: str
    inequality: str
    lhs: float
    rhs: float
    holds: bool

    def __str__(self) -> str:
        status = "holds" if self.holds else "FAILS"
        return (f"{self.name}: {self.inequality} {status} "
                f"(lhs = {self.lhs:.6g}, rhs = {self.rhs:.6g})")


# --------------------------------------------------------------------------- mean-path constants

def negative_definiteness_margin(A: ArrayLike) -> float | FloatArray:
    """omega = lambda_min(-sym(A)), positive iff A is negative definite.

    Parameters
    ----------
    A : (..., d, d) array_like
        One matrix or a stack.

    Returns
    -------
    float or (...) ndarray
        The margin per matrix: x^T A x <= -omega ||x||^2 for all x.

    Notes
    -----
    omega = lambda_min(-(A + A^T) / 2).

    References
    ----------
    Tsitsiklis & Van Roy (1999) (A is negative definite when 1 is not in span(Phi));
    Srikant & Ying (2019) (the margin in the finite-time bound).
    """
    A = _square_stack(A)
    sym = -(A + np.swapaxes(A, -1, -2)) / 2
    return _scalar_or_array(np.linalg.eigvalsh(sym)[..., 0])


def sufficient_step_size(A: ArrayLike) -> float | FloatArray:
    """Classical sufficient step alpha_suff = omega / ||A||_2^2 for x <- x + alpha (A x + b).

    Parameters
    ----------
    A : (..., d, d) array_like
        Negative definite matrix or stack.

    Returns
    -------
    float or (...) ndarray
        Per matrix; any 0 < alpha <= alpha_suff contracts the error by sqrt(1 - alpha omega).

    Raises
    ------
    ValueError
        If some matrix is not negative definite (omega <= 0).

    Notes
    -----
    |(I + alpha A) x|^2 <= (1 - 2 alpha omega + alpha^2 ||A||_2^2) |x|^2 <= (1 - alpha omega) |x|^2.

    References
    ----------
    The one-step Lyapunov argument of Srikant & Ying (2019) and Bhandari et al. (2018) with the
    Lyapunov function ||x||^2.
    """
    A = _square_stack(A)
    omega = np.asarray(negative_definiteness_margin(A))
    if np.any(omega <= 0):
        raise ValueError(f"A must be negative definite (omega = lambda_min(-sym(A)) > 0); got "
                         f"omega = {float(np.min(omega)):.6g}")
    return _scalar_or_array(omega / np.linalg.norm(A, ord=2, axis=(-2, -1)) ** 2)


def contraction_factor_bound(A: ArrayLike, alpha: float) -> float | FloatArray:
    """Euclidean contraction factor sqrt(1 - alpha omega) guaranteed when alpha <= alpha_suff.

    Parameters
    ----------
    A : (..., d, d) array_like
        Negative definite matrix or stack.
    alpha : float
        Step size, 0 < alpha <= sufficient_step_size(A) for every matrix.

    Returns
    -------
    float or (...) ndarray
        Upper bound on ||I + alpha A||_2 per matrix.

    Notes
    -----
    ||I + alpha A||_2 <= sqrt(1 - alpha omega) for 0 < alpha <= omega / ||A||_2^2.

    References
    ----------
    As :func:`sufficient_step_size`.
    """
    alpha_suff = np.asarray(sufficient_step_size(A))
    alpha = _real(alpha, "alpha", 0.0, np.inf)
    if alpha > np.min(alpha_suff):
        raise ValueError(f"alpha must be <= alpha_suff = omega / ||A||_2^2 = "
                         f"{float(np.min(alpha_suff)):.6g} for the bound to hold; got {alpha}")
    omega = np.asarray(negative_definiteness_margin(A))
    return _scalar_or_array(np.sqrt(1 - alpha * omega))


def _critical_step_sizes(A: FloatArray) -> FloatArray:
    """alpha_crit per matrix, 0 where some eigenvalue has Re >= 0 (no positive step is stable)."""
    lam = np.linalg.eigvals(A)
    abs2 = np.abs(lam) ** 2
    # An eigenvalue with Re >= 0 gives a ratio <= 0 (lambda = 0 counts as 0), clipped to 0 below.
    ratio = np.divide(-2 * lam.real, abs2, out=np.zeros_like(abs2), where=abs2 > 0)
    return np.maximum(np.min(ratio, axis=-1), 0.0)


def critical_step_size(A: ArrayLike) -> float | FloatArray:
    """Exact stability threshold alpha_crit of the linear iteration x <- x + alpha (A x + b).

    Parameters
    ----------
    A : (..., d, d) array_like
        Matrix or stack whose eigenvalues all have negative real part.

    Returns
    -------
    float or (...) ndarray
        The iteration converges for every start iff 0 < alpha < alpha_crit.

    Raises
    ------
    ValueError
        If some eigenvalue has Re(lambda) >= 0 (no positive step is stable).

    Notes
    -----
    |1 + alpha lambda| < 1 iff alpha < 2 Re(-lambda) / |lambda|^2, so rho(I + alpha A) < 1 iff
    alpha < alpha_crit = min_j 2 Re(-lambda_j) / |lambda_j|^2.

    References
    ----------
    Horn & Johnson (2013), Sec. 5.6: M^k -> 0 iff the spectral radius rho(M) < 1.
    """
    A = _square_stack(A)
    max_real = np.max(np.linalg.eigvals(A).real, axis=-1)
    if np.any(max_real >= 0):
        index = np.unravel_index(np.argmax(max_real), max_real.shape)
        where = f"A[{', '.join(str(int(i)) for i in index)}]" if index else "A"
        raise ValueError(f"A must have eigenvalues with negative real part; {where} has "
                         f"max Re(lambda) = {float(max_real[index]):.6g}")
    return _scalar_or_array(_critical_step_sizes(A))


def slowest_td_rate(A: ArrayLike) -> float | FloatArray:
    """Rate of the slowest mode of linear TD's mean path: min_j Re(-lambda_j(A)).

    Parameters
    ----------
    A : (..., d, d) array_like
        Matrix or stack (e.g. the agents' A_i).

    Returns
    -------
    float or (...) ndarray
        For each matrix, min_j Re(-lambda_j); > 0 iff small steps are stable.

    Notes
    -----
    Near theta*, the error of theta <- theta + alpha_t (A theta + b) decays like
    exp(-rate sum_t alpha_t) in its slowest mode, rate = min_j Re(-lambda_j(A)). The mean path of
    the joint algorithm has its own rate, `ptdlib.stability.MeanPathJacobian.decay_rate` (twice
    its slowest rate, for the squared error).
    """
    A = _square_stack(A)
    return _scalar_or_array(np.min(-np.linalg.eigvals(A).real, axis=-1))


def negative_definite_condition(A: ArrayLike) -> Condition:
    """Condition omega = lambda_min(-sym(A)) > 0 on the worst matrix of a stack.

    References
    ----------
    Tsitsiklis & Van Roy (1999); see :func:`negative_definiteness_margin`.
    """
    omega = float(np.min(negative_definiteness_margin(A)))
    return Condition("negative definiteness", "omega = lambda_min(-sym(A)) > 0", omega, 0.0,
                     omega > 0)


def step_size_condition(alpha: float, A: ArrayLike) -> Condition:
    """Condition alpha <= omega / ||A||_2^2 on the worst matrix of a stack.

    A matrix that is not negative definite gives rhs = 0, so the condition fails.

    References
    ----------
    See :func:`sufficient_step_size`.
    """
    A = _square_stack(A)
    omega = np.asarray(negative_definiteness_margin(A))
    alpha_suff = float(np.min(np.maximum(omega, 0) / np.linalg.norm(A, ord=2, axis=(-2, -1)) ** 2))
    alpha = _real(alpha, "alpha", 0.0, np.inf)
    return Condition("sufficient step size", "alpha <= omega / ||A||_2^2", alpha, alpha_suff,
                     alpha <= alpha_suff)


def stability_condition(alpha: float, A: ArrayLike) -> Condition:
    """Condition alpha < alpha_crit on the worst matrix of a stack.

    A matrix with an eigenvalue of non-negative real part gives rhs = 0, so the condition fails.

    References
    ----------
    See :func:`critical_step_size`.
    """
    alpha_crit = float(np.min(_critical_step_sizes(_square_stack(A))))
    alpha = _real(alpha, "alpha", 0.0, np.inf)
    return Condition("mean-path stability", "alpha < alpha_crit = min_j 2 Re(-lambda_j) / "
                     "|lambda_j|^2", alpha, alpha_crit, alpha < alpha_crit)


# --------------------------------------------------------------------------- shared subspace

def misalignment(A: ArrayLike, B_star: ArrayLike) -> float:
    """chi = max_i ||(I - B* B*^T) A_i B*||_2: how far the A_i push span(B*) out of itself.

    Parameters
    ----------
    A : (d, d) or (N, d, d) array_like
        The agents' TD matrices.
    B_star : (d, r) array_like
        Orthonormal basis of the shared subspace.

    Returns
    -------
    float
        chi >= 0; chi = 0 iff span(B*) is invariant under every A_i.

    Notes
    -----
    chi = max_i sigma_max(A_i B* - B* (B*^T A_i B*)).

    References
    ----------
    ptd docs/setting.md; span(B*) is invariant under A iff (I - B* B*^T) A B* = 0 (Stewart & Sun
    1990, Matrix Perturbation Theory, Ch. V).
    """
    A = _square_stack(A)
    B_star = _finite(B_star, "B_star")
    if B_star.ndim != 2 or B_star.shape[0] != A.shape[-1] or B_star.shape[1] == 0:
        raise ValueError(f"B_star must be (d, r) with d = {A.shape[-1]} and r >= 1; got shape "
                         f"{B_star.shape}")
    gram_error = float(np.max(np.abs(B_star.T @ B_star - np.eye(B_star.shape[1]))))
    if gram_error > _ORTHONORMAL_ATOL:
        raise ValueError(f"B_star must have orthonormal columns (max |B^T B - I| <= "
                         f"{_ORTHONORMAL_ATOL:g}); got {gram_error:.3g}")
    AB = A @ B_star
    residual = AB - B_star @ (B_star.T @ AB)
    return float(np.max(np.linalg.svd(residual, compute_uv=False)[..., 0]))


def head_diversity(W_star: ArrayLike) -> float:
    """lambda_w = sigma_r(W*)^2 / N, the head diversity of N heads in R^r.

    Parameters
    ----------
    W_star : (N, r) array_like
        Row i is agent i's head w_i*.

    Returns
    -------
    float
        sigma_r is the r-th largest singular value, 0 when N < r (the heads cannot span R^r and
        B* is not identifiable); this function returns 0.0 then rather than raising, and
        :func:`check_identifiable` is the check that raises.

    Notes
    -----
    lambda_w = lambda_min(W*^T W* / N) = sigma_r(W*)^2 / N.

    References
    ----------
    Collins et al. (2021), the client-diversity assumption of FedRep; Tripuraneni, Jin & Jordan
    (2021), Provable meta-learning of linear representations, ICML (task diversity).
    """
    W_star = _finite(W_star, "W_star")
    if W_star.ndim != 2 or 0 in W_star.shape:
        raise ValueError(f"W_star must be a non-empty (N, r) matrix; got shape {W_star.shape}")
    n_agents, rank = W_star.shape
    if n_agents < rank:
        return 0.0
    return float(np.linalg.svd(W_star, compute_uv=False)[rank - 1] ** 2 / n_agents)


def check_identifiable(n_agents: int, rank: int) -> None:
    """Raise ValueError unless n_agents >= rank, the least needed for lambda_w > 0.

    References
    ----------
    Collins et al. (2021): with fewer than r heads, sigma_r(W*) = 0 and B* is not identifiable.
    """
    n_agents = _positive_int(n_agents, "n_agents")
    rank = _positive_int(rank, "rank")
    if n_agents < rank:
        raise ValueError(f"n_agents must be >= rank for the shared subspace to be identifiable "
                         f"(head diversity sigma_r(W*)^2 / N > 0); got n_agents={n_agents}, "
                         f"rank={rank}")


def head_diversity_condition(W_star: ArrayLike, tol: float = 1e-12) -> Condition:
    """Condition lambda_w = sigma_r(W*)^2 / N > tol.

    References
    ----------
    See :func:`head_diversity`.
    """
    lambda_w = head_diversity(W_star)
    return Condition("head diversity", "lambda_w = sigma_r(W*)^2 / N > tol", lambda_w, float(tol),
                     lambda_w > tol)


# --------------------------------------------------------------------------- mixing

class ErgodicityConstants(NamedTuple):
    """Constants of the uniform-ergodicity bound d(t) <= m rho^t."""

    m: float
    rho: float


class MixingTimeBounds(NamedTuple):
    """Lower and upper bounds on t_mix(eps)."""

    lower: float
    upper: float


class Spectrum(NamedTuple):
    """Distinct eigenvalues (descending) and their multiplicities."""

    eigenvalues: FloatArray
    multiplicities: FloatArray


def uniform_ergodicity_constants(tv_curve: ArrayLike, rho: float,
                                 atol: float = 1e-12) -> ErgodicityConstants:
    """Smallest m with d(t) <= m rho^t over a measured curve d(0..t_max).

    Parameters
    ----------
    tv_curve : (t_max + 1,) array_like
        d(t) = max_s TV(P^t(s, .), mu) for t = 0..t_max.
    rho : float
        Rate in (0, 1), typically the second largest eigenvalue modulus.
    atol : float, optional
        Points with d(t) <= atol are round-off and ignored: dividing them by a tiny rho^t would
        report noise as a huge m.

    Returns
    -------
    ErgodicityConstants
        (m, rho) with m = max_t d(t) / rho^t over the retained points.

    Notes
    -----
    m = max_{t : d(t) > atol} d(t) rho^-t.

    References
    ----------
    Levin, Peres & Wilmer (2017), Thm. 4.9 (existence of such m, rho); Bhandari et al. (2018),
    the uniform-ergodicity assumption.
    """
    d = _finite(tv_curve, "tv_curve")
    if d.ndim != 1 or d.size == 0 or np.any(d < 0):
        raise ValueError(f"tv_curve must be a non-empty 1-D array of TV distances >= 0; got shape "
                         f"{d.shape}, min {float(np.min(d)) if d.size else 'n/a'}")
    rho = _real(rho, "rho", 0.0, 1.0)
    t = np.arange(d.size)
    keep = d > atol
    if not np.any(keep):
        return ErgodicityConstants(0.0, rho)
    return ErgodicityConstants(float(np.max(d[keep] / rho ** t[keep])), rho)


def tau_mix(m: float, rho: float, eps: float) -> int:
    """tau_mix(eps) = min{t >= 0 : m rho^t <= eps}.

    Parameters
    ----------
    m : float
        Uniform-ergodicity constant, > 0.
    rho : float
        Rate in (0, 1).
    eps : float
        Target level, > 0.

    Returns
    -------
    int

    Notes
    -----
    tau_mix(eps) = max(0, ceil(log(m / eps) / log(1 / rho))), corrected for round-off.

    References
    ----------
    Bhandari, Russo & Singal (2018), the mixing time tau_mix(eps) under uniform ergodicity.
    """
    m = _real(m, "m", 0.0, np.inf)
    rho = _real(rho, "rho", 0.0, 1.0)
    eps = _real(eps, "eps", 0.0, np.inf)
    if m <= eps:
        return 0
    t = int(np.ceil(np.log(m / eps) / np.log(1 / rho)))
    # The logarithms may be off by one ulp; settle the integer against the definition itself.
    while m * rho**t > eps:
        t += 1
    while t > 0 and m * rho ** (t - 1) <= eps:
        t -= 1
    return t


def submultiplicative_tv_bound(t: ArrayLike, t_mix: int) -> float | FloatArray:
    """Bound d(t) <= 2^-floor(t / t_mix) with t_mix = t_mix(1/4).

    Parameters
    ----------
    t : int or array_like of int
        Times >= 0.
    t_mix : int
        The mixing time t_mix(1/4) >= 1.

    Returns
    -------
    float or ndarray
        The bound at each t.

    Notes
    -----
    d(l t_mix(eps)) <= (2 eps)^l; with eps = 1/4 and d non-increasing, d(t) <= 2^-floor(t/t_mix).

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 4.5 (submultiplicativity of d-bar).
    """
    t = _nonnegative_ints(t, "t")
    t_mix = _positive_int(t_mix, "t_mix")
    return _scalar_or_array(2.0 ** -(t // t_mix))


def reversible_mixing_time_bounds(relaxation_time: float, mu_min: float,
                                  eps: float) -> MixingTimeBounds:
    """Relaxation-time bounds on t_mix(eps) for a reversible, irreducible, aperiodic chain.

    Parameters
    ----------
    relaxation_time : float
        t_rel = 1 / (absolute spectral gap), >= 1.
    mu_min : float
        Smallest stationary probability, in (0, 1].
    eps : float
        Level in (0, 1).

    Returns
    -------
    MixingTimeBounds
        (lower, upper); the lower bound is <= 0 (vacuous) when eps >= 1/2.

    Notes
    -----
    (t_rel - 1) log(1 / (2 eps)) <= t_mix(eps) <= t_rel log(1 / (eps mu_min)).

    References
    ----------
    Levin, Peres & Wilmer (2017), Thm. 12.4 (upper) and Thm. 12.5 (lower).
    """
    t_rel = _real(relaxation_time, "relaxation_time", 1.0, np.inf, low_open=False)
    mu_min = _real(mu_min, "mu_min", 0.0, 1.0, high_open=False)
    eps = _real(eps, "eps", 0.0, 1.0)
    return MixingTimeBounds((t_rel - 1) * np.log(1 / (2 * eps)), t_rel * np.log(1 / (eps * mu_min)))


def _two_state_rates(p: float, q: float) -> tuple[float, float]:
    p = _real(p, "p", 0.0, 1.0, low_open=False, high_open=False)
    q = _real(q, "q", 0.0, 1.0, low_open=False, high_open=False)
    if p + q == 0:
        raise ValueError("p + q must be > 0 (otherwise P = I has no unique stationary "
                         f"distribution); got p={p}, q={q}")
    return p, q


def two_state_stationary(p: float, q: float) -> FloatArray:
    """Stationary distribution of P = [[1 - p, p], [q, 1 - q]].

    Parameters
    ----------
    p, q : float
        Switching probabilities in [0, 1] with p + q > 0.

    Returns
    -------
    (2,) ndarray

    Notes
    -----
    mu = (q, p) / (p + q).

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 1.1 (the two-state chain).
    """
    p, q = _two_state_rates(p, q)
    return np.array([q, p]) / (p + q)


def two_state_tv(p: float, q: float, t: ArrayLike) -> float | FloatArray:
    """Exact d(t) = max_s TV(P^t(s, .), mu) for P = [[1 - p, p], [q, 1 - q]].

    Parameters
    ----------
    p, q : float
        Switching probabilities in [0, 1] with p + q > 0.
    t : int or array_like of int
        Times >= 0.

    Returns
    -------
    float or ndarray

    Notes
    -----
    P^t = 1 mu^T + (1 - p - q)^t (I - 1 mu^T), so d(t) = max(p, q) / (p + q) |1 - p - q|^t.

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 1.1 (the two-state chain).
    """
    p, q = _two_state_rates(p, q)
    t = _nonnegative_ints(t, "t")
    return _scalar_or_array(max(p, q) / (p + q) * np.abs(1 - p - q) ** t)


def lazy_cycle_eigenvalues(n: int) -> FloatArray:
    """Eigenvalues of the lazy random walk on the n-cycle, with repeats, descending.

    The walk stays with probability 1/2 and moves to each neighbour with probability 1/4.

    Parameters
    ----------
    n : int
        Number of states, >= 1.

    Returns
    -------
    (n,) ndarray

    Notes
    -----
    lambda_j = (1 + cos(2 pi j / n)) / 2, j = 0..n-1.

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 12.3 (eigenvalues of the cycle) and Sec. 12.1 (laziness
    maps lambda to (1 + lambda) / 2).
    """
    n = _positive_int(n, "n")
    return np.sort((1 + np.cos(2 * np.pi * np.arange(n) / n)) / 2)[::-1]


def lazy_hypercube_eigenvalues(k: int) -> Spectrum:
    """Distinct eigenvalues and multiplicities of the lazy walk on the hypercube {0, 1}^k.

    The walk stays with probability 1/2, else flips a uniformly chosen coordinate. Its
    Hamming-weight lumping (Ehrenfest urn, k + 1 states) has the same eigenvalues, each once.

    Parameters
    ----------
    k : int
        Dimension, >= 1.

    Returns
    -------
    Spectrum
        eigenvalues (k + 1,) = 1 - j / k descending; multiplicities binom(k, j) as float64
        (exact while below 2^53).

    Notes
    -----
    lambda_j = 1 - j / k with multiplicity binom(k, j), j = 0..k.

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 12.4 (product chains; the hypercube).
    """
    k = _positive_int(k, "k")
    j = np.arange(k + 1)
    return Spectrum(1 - j / k, scipy.special.comb(k, j))


def hypercube_cutoff_location(k: int) -> float:
    """(1/2) k ln k, where the lazy walk on {0, 1}^k has its cutoff.

    Notes
    -----
    t_mix(eps) = (1/2) k ln k + O_eps(k) for every eps in (0, 1).

    References
    ----------
    Levin, Peres & Wilmer (2017), Thm. 18.3; Diaconis, Graham & Morrison (1990), Asymptotic
    analysis of a random walk on a hypercube with many dimensions.
    """
    k = _positive_int(k, "k")
    return 0.5 * k * np.log(k)


def _wrapped_normal_tv(s: float) -> float:
    """TV between the wrapped normal of variance s on the unit circle and the uniform law."""
    k = np.arange(1, int(np.ceil(np.sqrt(45 / (2 * np.pi**2 * s)))) + 2)
    weights = np.exp(-2 * np.pi**2 * k**2 * s)

    def excess(x: float) -> float:
        return float(2 * np.sum(weights * np.cos(2 * np.pi * k * x)))

    # The density is symmetric and decreasing on [0, 1/2]: f - 1 changes sign once, at x0.
    x0 = scipy.optimize.brentq(excess, 0.0, 0.5, xtol=1e-15)
    return 2 * scipy.integrate.quad(excess, 0.0, x0, epsabs=0.0, epsrel=1e-12)[0]


def lazy_cycle_mixing_constant(eps: float = 0.25) -> float:
    """c(eps) = lim_n t_mix(eps) / n^2 for the lazy random walk on the n-cycle (~0.0949 at 1/4).

    Parameters
    ----------
    eps : float, optional
        Level in (0, 1/2]; default 1/4.

    Returns
    -------
    float

    Notes
    -----
    One lazy step has variance 1/2, so by the local CLT position / n after t = c n^2 steps
    tends to the wrapped normal of variance c / 2; c solves TV(wrapped normal(c / 2), uniform)
    = eps, with density 1 + 2 sum_k exp(-2 pi^2 k^2 s) cos(2 pi k x).

    References
    ----------
    Levin, Peres & Wilmer (2017), Ch. 5 and Sec. 7.4 (t_mix of the cycle is of order n^2);
    Diaconis (1988), Group Representations in Probability and Statistics, Ch. 3.
    """
    eps = _real(eps, "eps", 0.0, 0.5, high_open=False)
    # Bracket: TV(s) <= sup|f - 1| / 2 <= sum_k exp(-2 pi^2 k^2 s) < eps at s_high (first term
    # eps / 4); at s = 1e-4 (standard deviation 1% of the circle) TV = 0.94 > 1/2 >= eps.
    s_high = np.log(4 / eps) / (2 * np.pi**2)
    s = scipy.optimize.brentq(lambda s: _wrapped_normal_tv(s) - eps, 1e-4, s_high, xtol=1e-15,
                              rtol=1e-13)
    return 2 * s


class MixingWindow(NamedTuple):
    """Constants of a cutoff window: t_mix(eps) lies in [center + low k, center + high k]."""

    low: float
    high: float


def lazy_hypercube_mixing_window(eps: float = 0.25) -> MixingWindow:
    """Window constants of the lazy walk on {0, 1}^k, valid for every k >= 1.

    Parameters
    ----------
    eps : float, optional
        Level in (0, 1); default 1/4.

    Returns
    -------
    MixingWindow
        (low, high) with (1/2) k ln k + low k <= t_mix(eps) <= ceil((1/2) k ln k + high k);
        at eps = 1/4, low = -1.6835 and high = 0.7500.

    Notes
    -----
    Lower: the Hamming weight W from 0...0 has mean k/2 - (k/2)(1 - 1/k)^t and variance <= k/4
    (its bits are negatively correlated); Chebyshev at the midpoint of the two means gives
    d(t) >= 1 - 8 / (k (1 - 1/k)^(2t)) >= 1 - 8 e^(1 - 2 alpha) for t <= (1/2) k ln k - alpha k,
    alpha >= 0, so low = -(1 + ln(8 / (1 - eps))) / 2. Upper: the l2 bound over the characters,
    4 d(t)^2 <= sum_{j >= 1} C(k, j) (1 - j/k)^(2t) <= exp(k e^(-2t/k)) - 1, is <= 4 eps^2 once
    t >= (1/2) k ln k + high k with high = -(1/2) ln ln(1 + 4 eps^2).

    References
    ----------
    Levin, Peres & Wilmer (2017), Ch. 7 (the Hamming weight as distinguishing statistic, lower
    bound for the hypercube), Ch. 12 (the l2 bound and the hypercube spectrum), Thm. 18.3 (cutoff).
    """
    eps = _real(eps, "eps", 0.0, 1.0)
    low = -(1 + np.log(8 / (1 - eps))) / 2
    high = -0.5 * np.log(np.log1p(4 * eps**2))
    return MixingWindow(float(low), float(high))


def lazy_hypercube_limit_constant(eps: float = 0.25) -> float:
    """c(eps) = lim_k (t_mix(eps) - (1/2) k ln k) / k for the lazy walk on {0, 1}^k (~0.4505).

    Parameters
    ----------
    eps : float, optional
        Level in (0, 1); default 1/4.

    Returns
    -------
    float

    Notes
    -----
    A lazy step refreshes a uniform coordinate, so from 0...0 the weight is Binomial(R_t, 1/2)
    with k - R_t ~ k e^(-t/k) unrefreshed coordinates. At t = (1/2) k ln k + c k its mean is
    e^(-c) standard deviations (sqrt(k)/2) below k/2, and by the CLT
    d(t) -> TV(N(e^(-c), 1), N(0, 1)) = 2 Phi(e^(-c) / 2) - 1; hence
    c(eps) = -ln(2 Phi^-1((1 + eps) / 2)).

    References
    ----------
    Diaconis, P., Graham, R. L. & Morrison, J. A. (1990), Asymptotic analysis of a random walk
    on a hypercube with many dimensions, Random Structures & Algorithms 1(1) (the limit profile);
    Levin, Peres & Wilmer (2017), Ch. 18 (cutoff of the lazy hypercube at (1/2) k ln k).
    """
    eps = _real(eps, "eps", 0.0, 1.0)
    return float(-np.log(2 * scipy.special.ndtri((1 + eps) / 2)))


def _metastable_parameters(n_clusters: int, switch_probability: float) -> tuple[int, float]:
    if (isinstance(n_clusters, bool) or not isinstance(n_clusters, int | np.integer)
            or n_clusters < 2):
        raise ValueError(f"n_clusters must be an integer >= 2; got {n_clusters!r}")
    return int(n_clusters), _real(switch_probability, "switch_probability", 0.0, 1.0)


def metastable_eigenvalue(n_clusters: int, switch_probability: float) -> float:
    """The switching eigenvalue lambda_q = 1 - k q / (k - 1) of a metastable chain.

    Parameters
    ----------
    n_clusters : int
        k >= 2 clusters.
    switch_probability : float in (0, 1)
        q, the probability of leaving the current cluster at a step.

    Returns
    -------
    float
        In (-1 / (k - 1), 1); an eigenvalue of multiplicity k - 1 of every
        `ptdlib.problems.metastable_chain`, whatever its dynamics W inside the clusters.

    Notes
    -----
    The clusters form a lumped chain Q = (1 - q) I + q (1 1^T - I) / (k - 1) = a I + b 1 1^T
    with b = q / (k - 1) and a = 1 - q - b; its eigenvalues are a + k b = 1 (on 1) and
    a = 1 - q - q / (k - 1) = 1 - k q / (k - 1) (on every vector orthogonal to 1). The
    eigenvalues of a lumped chain are eigenvalues of the chain. For small q the relaxation time
    is 1 / (1 - lambda_q) = (k - 1) / (k q): tau_mix grows like 1/q.

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 2.3.1 (lumped chains) and Lemma 12.9 (their spectra).
    """
    k, q = _metastable_parameters(n_clusters, switch_probability)
    return 1.0 - k * q / (k - 1)


def metastable_tv(n_clusters: int, switch_probability: float, t: ArrayLike) -> float | FloatArray:
    """Exact d(t) for t >= 1 of a metastable chain that is uniform inside its clusters.

    Parameters
    ----------
    n_clusters : int
        k >= 2 clusters (of any sizes).
    switch_probability : float in (0, 1)
        q.
    t : int or array_like of int
        Times >= 1 (d(0) = 1 - min_s mu(s) depends on the sizes).

    Returns
    -------
    float or ndarray

    Notes
    -----
    d(t) = (1 - 1/k) |lambda_q|^t, lambda_q = `metastable_eigenvalue`. For the default
    `ptdlib.problems.metastable_chain` (W uniform on each cluster) the state after a step is
    uniform inside its cluster, so P^t(s, s') = Pr(C_t = c(s')) / m_c(s') and the distance is
    that of the cluster chain: Pr(C_t = c) = 1/k + (1 - 1/k) lambda^t for the start cluster
    and 1/k - lambda^t / k for each other, total variation (1 - 1/k) |lambda|^t; mu(s) =
    1 / (k m_c(s)).

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 4.1 (total variation) and Sec. 2.3.1 (lumped chains).
    """
    k, q = _metastable_parameters(n_clusters, switch_probability)
    t = _nonnegative_ints(t, "t")
    if np.any(t < 1):
        raise ValueError(f"t must be >= 1 (d(0) depends on the cluster sizes); got {t.tolist()}")
    return _scalar_or_array((1.0 - 1.0 / k) * np.abs(metastable_eigenvalue(k, q)) ** t)


def metastable_mixing_time(n_clusters: int, switch_probability: float, eps: float = 0.25) -> int:
    """Exact t_mix(eps) of a metastable chain that is uniform inside its clusters.

    Parameters
    ----------
    n_clusters : int
        k >= 2.
    switch_probability : float in (0, 1)
        q.
    eps : float in (0, 1/2), optional
        Level (default 1/4). Below 1/2 the answer is >= 1, since d(0) = 1 - min_s mu(s) >= 1/2.

    Returns
    -------
    int

    Notes
    -----
    t_mix(eps) = min{t >= 1 : (1 - 1/k) |lambda_q|^t <= eps} (`metastable_tv`), i.e.
    max(1, ceil(log(eps / (1 - 1/k)) / log |lambda_q|)), the ceiling then checked against the
    formula on both sides so that rounding of the logarithms cannot move it. For small q,
    t_mix ~ ((k - 1) / (k q)) log((1 - 1/k) / eps).

    References
    ----------
    Levin, Peres & Wilmer (2017), Sec. 4.5 (mixing time).
    """
    k, q = _metastable_parameters(n_clusters, switch_probability)
    eps = _real(eps, "eps", 0.0, 0.5)
    c, rate = 1.0 - 1.0 / k, abs(metastable_eigenvalue(k, q))
    if rate == 0.0:  # q = (k - 1) / k: one step mixes exactly
        return 1
    t = max(1, int(np.ceil(np.log(eps / c) / np.log(rate))))
    while t > 1 and c * rate ** (t - 1) <= eps:
        t -= 1
    while c * rate**t > eps:
        t += 1
    return t


# --------------------------------------------------------------------------- indirect contraction

def _basis(B: ArrayLike, name: str) -> FloatArray:
    B = _finite(B, name)
    if B.ndim != 2 or B.shape[1] == 0 or B.shape[1] > B.shape[0]:
        raise ValueError(f"{name} must be (d, r) with 1 <= r <= d; got shape {B.shape}")
    gram_error = float(np.max(np.abs(B.T @ B - np.eye(B.shape[1]))))
    if gram_error > _ORTHONORMAL_ATOL:
        raise ValueError(f"{name} must have orthonormal columns (max |B^T B - I| <= "
                         f"{_ORTHONORMAL_ATOL:g}); got {gram_error:.3g}")
    return B


def shared_parameter_error(B: ArrayLike, W: ArrayLike, theta_star: ArrayLike) -> float:
    """(1/N) sum_i ||B w_i - theta_i*||^2, the parameter error of a shared-basis state.

    Parameters
    ----------
    B : (d, r) array_like
        Orthonormal basis.
    W : (N, r) array_like
        Heads, row i is w_i.
    theta_star : (N, d) array_like
        Targets theta_i*.

    Returns
    -------
    float

    Notes
    -----
    (1/N) sum_i ||B w_i - theta_i*||^2 = (1/N) ||B W^T - Theta*||_F^2.

    References
    ----------
    ptd docs/checks.md (registry, "principal angle"), the left side of the indirect contraction.
    """
    B = _basis(B, "B")
    W, theta_star = _finite(W, "W"), _finite(theta_star, "theta_star")
    if W.ndim != 2 or theta_star.ndim != 2 or W.shape != (theta_star.shape[0], B.shape[1]) \
            or theta_star.shape[1] != B.shape[0]:
        raise ValueError(f"W must be (N, r) and theta_star (N, d) to match B {B.shape}; got "
                         f"W {W.shape}, theta_star {theta_star.shape}")
    return float(np.mean(np.sum((W @ B.T - theta_star) ** 2, axis=1)))


def subspace_error_lower_bound(subspace_distance: ArrayLike,
                               W_star: ArrayLike) -> float | FloatArray:
    """(sigma_r(W*)^2 / N) dist(B, B*)^2: the least parameter error a basis at that distance pays.

    Parameters
    ----------
    subspace_distance : float or array_like
        dist(B, B*) = ||(I - B* B*^T) B||_2 (or the Frobenius version, which gives the stronger
        bound), any shape, values in [0, sqrt(r)].
    W_star : (N, r) array_like
        Planted heads.

    Returns
    -------
    float or ndarray
        lambda_w dist^2, elementwise.

    Notes
    -----
    For orthonormal B, any heads W and theta_i* = B* w_i*:
    (1/N) sum_i ||B w_i - theta_i*||^2 >= (1/N) ||(I - B B^T) B* W*^T||_F^2
    >= (sigma_r(W*)^2 / N) ||(I - B B^T) B*||_F^2 >= lambda_w dist(B, B*)^2
    (project out span(B), then ||X W*^T||_F^2 >= sigma_r(W*)^2 ||X||_F^2). It needs neither
    optimal heads nor anything of the dynamics. It also holds when theta_i* is off span(B*) if
    B* spans the top-r left singular vectors of Theta* = [theta_1* ... theta_N*] (the residual
    is orthogonal to W*, so no cross term), with sigma_r(Theta*) in place of sigma_r(W*); for
    another B* it can fail (see `top_subspace_lower_bound`).

    References
    ----------
    Collins et al. (2021), the representation-error step of FedRep's analysis (client
    diversity turns head error into principal-angle error); Tripuraneni, Jin & Jordan (2021).
    """
    dist = _finite(subspace_distance, "subspace_distance")
    if np.any(dist < 0):
        raise ValueError(f"subspace_distance must be >= 0; got min {float(np.min(dist)):.3g}")
    return _scalar_or_array(head_diversity(W_star) * dist**2)


def top_subspace_lower_bound(B: ArrayLike, theta_star: ArrayLike) -> float:
    """(sigma_r(Theta*)^2 / N) dist(B, U_r)^2 with U_r the top-r left singular vectors of Theta*.

    Parameters
    ----------
    B : (d, r) array_like
        Orthonormal basis; r = B.shape[1].
    theta_star : (N, d) array_like
        Targets theta_i* (any, not necessarily of rank r).

    Returns
    -------
    float
        A lower bound on (1/N) sum_i ||B w_i - theta_i*||^2 valid for every W: the corrected
        statement of the indirect contraction when B* is not the best rank-r subspace.

    Notes
    -----
    (1/N) sum_i ||B w_i - theta_i*||^2 >= (1/N) ||(I - B B^T) Theta*||_F^2
    >= (sigma_r(Theta*)^2 / N) ||(I - B B^T) U_r||_2^2 (Theta* = U_r S_r V_r^T + E, E V_r = 0).

    References
    ----------
    Eckart & Young (1936); Wedin (1972), Perturbation bounds in connection with singular value
    decomposition, BIT 12 (the same split of Theta* into its top-r part and the rest).
    """
    B = _basis(B, "B")
    theta_star = _finite(theta_star, "theta_star")
    if theta_star.ndim != 2 or theta_star.shape[1] != B.shape[0]:
        raise ValueError(f"theta_star must be (N, d) with d = {B.shape[0]}; got shape "
                         f"{theta_star.shape}")
    r = B.shape[1]
    U, s, _ = np.linalg.svd(theta_star.T, full_matrices=True)
    sigma_r = s[r - 1] if s.size >= r else 0.0
    dist = np.linalg.norm(U[:, :r] - B @ (B.T @ U[:, :r]), ord=2)
    return float(sigma_r**2 / theta_star.shape[0] * dist**2)


def indirect_contraction_condition(parameter_error: ArrayLike, subspace_distance: ArrayLike,
                                   W_star: ArrayLike, rtol: float = 1e-9) -> Condition:
    """Condition (1/N) sum_i ||B w_i - theta_i*||^2 >= lambda_w dist(B, B*)^2 at every record.

    Parameters
    ----------
    parameter_error, subspace_distance : array_like of equal shape
        The two records along trajectories (e.g. Trace.parameter_error and
        Trace.subspace_distance, NaN records after a divergence are ignored).
    W_star : (N, r) array_like
        Planted heads.
    rtol : float, optional
        Round-off allowance: a record passes if lhs >= rhs (1 - rtol).

    Returns
    -------
    Condition
        lhs, rhs of the worst record (smallest lhs / rhs); holds iff every record passes.

    References
    ----------
    See :func:`subspace_error_lower_bound`.
    """
    lhs = np.asarray(parameter_error, dtype=np.float64)
    dist = np.asarray(subspace_distance, dtype=np.float64)
    if lhs.shape != dist.shape or lhs.size == 0:
        raise ValueError(f"parameter_error and subspace_distance must be non-empty with equal "
                         f"shapes; got {lhs.shape} and {dist.shape}")
    keep = np.isfinite(lhs) & np.isfinite(dist)
    if not np.any(keep):
        raise ValueError("parameter_error and subspace_distance have no finite record")
    lhs, rhs = lhs[keep], np.asarray(subspace_error_lower_bound(dist[keep], W_star))
    slack = lhs - rhs * (1 - rtol)
    worst = int(np.argmin(np.where(rhs > 0, lhs / np.where(rhs > 0, rhs, 1.0), np.inf)))
    worst = worst if np.any(rhs > 0) else int(np.argmin(slack))
    return Condition("indirect contraction",
                     "(1/N) sum_i ||B w_i - theta_i*||^2 >= sigma_r(W*)^2 / N dist(B, B*)^2",
                     float(lhs[worst]), float(rhs[worst]), bool(np.all(slack >= 0)))


# --------------------------------------------------------------------------- heterogeneity

def federated_td_fixed_point(A: ArrayLike, b: ArrayLike) -> FloatArray:
    """theta_bar solving sum_i (A_i theta + b_i) = 0: where federated TD (fedtd) converges.

    Parameters
    ----------
    A : (N, d, d) array_like
        The agents' TD matrices (each negative definite, so their sum is too).
    b : (N, d) array_like
        The agents' TD vectors.

    Returns
    -------
    (d,) ndarray

    Notes
    -----
    theta_bar = -(sum_i A_i)^{-1} sum_i b_i; with b_i = -A_i theta_i* it is the A-weighted mean
    of the theta_i*, the plain mean when every A_i is the same.

    References
    ----------
    Doan, Maguluri & Romberg (2019), Finite-time analysis of distributed TD(0) with linear
    function approximation for multi-agent reinforcement learning, ICML; Wang, Mitra, Hassani,
    Pappas & Anderson (2023), Federated temporal difference learning with linear function
    approximation under environmental heterogeneity, TMLR (the averaged system's fixed point).
    """
    A = _square_stack(A)
    b = _finite(b, "b")
    if A.ndim != 3 or b.shape != A.shape[:2]:
        raise ValueError(f"A must be (N, d, d) and b (N, d) with the same N and d; got A "
                         f"{A.shape}, b {b.shape}")
    return np.linalg.solve(A.sum(axis=0), -b.sum(axis=0))


def federated_td_bias(A: ArrayLike, b: ArrayLike, theta_star: ArrayLike) -> float:
    """(1/N) sum_i ||theta_bar - theta_i*||^2: the error federated TD keeps at its fixed point.

    Parameters
    ----------
    A : (N, d, d) array_like
        The agents' TD matrices.
    b : (N, d) array_like
        The agents' TD vectors.
    theta_star : (N, d) array_like
        The agents' own fixed points.

    Returns
    -------
    float
        0 iff every theta_i* equals theta_bar (e.g. identical agents); the mean-path floor of
        fedtd's parameter error, to which a constant step adds a variance of order alpha.

    Notes
    -----
    bias = (1/N) sum_i ||theta_bar - theta_i*||^2, theta_bar = `federated_td_fixed_point`(A, b).

    References
    ----------
    See :func:`federated_td_fixed_point`.
    """
    theta_bar = federated_td_fixed_point(A, b)
    theta_star = _finite(theta_star, "theta_star")
    if theta_star.shape != np.shape(b):
        raise ValueError(f"theta_star must have the shape (N, d) = {np.shape(b)} of b; got "
                         f"{theta_star.shape}")
    return float(np.mean(np.sum((theta_star - theta_bar) ** 2, axis=1)))


# --------------------------------------------------------------------------- Markov vs i.i.d.

class StationaryMean(NamedTuple):
    """Stationary means of constant-step TD iterates: theta (.., d) and the gain eta (..)."""

    theta: FloatArray
    eta: float | FloatArray


def _stationary_distribution(P: FloatArray) -> FloatArray:
    """mu with mu^T P = mu^T, sum mu = 1 (least squares on the stacked system; P ergodic)."""
    n = P.shape[0]
    system = np.vstack([P.T - np.eye(n), np.ones((1, n))])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    return np.linalg.lstsq(system, rhs, rcond=None)[0]


def _conditional_mean_system(P: FloatArray, r: FloatArray, Phi: FloatArray, alpha: float,
                             beta: float) -> StationaryMean:
    """Solve x = M x + c for x = (m(s) = E[theta_t 1{s_t = s}], e(s) = E[eta_t 1{s_t = s}])."""
    n, d = Phi.shape
    mu = _stationary_distribution(P)
    jump = Phi[None, :, :] - Phi[:, None, :]  # jump[s, s'] = phi(s') - phi(s)
    # theta block: T[s', a, s, b] = P(s, s') (delta_ab + alpha phi_a(s) (phi(s') - phi(s))_b)
    block = np.eye(d)[None, None] + alpha * Phi[:, None, :, None] * jump[:, :, None, :]
    T = np.einsum("sq,sqab->qasb", P, block).reshape(n * d, n * d)
    M = np.zeros((n * (d + 1), n * (d + 1)))
    M[:n * d, :n * d] = T
    # -alpha phi(s) e(s) enters m(s'); (1 - beta) e(s) enters e(s')
    M[:n * d, n * d:] = -alpha * np.einsum("sq,sa->qas", P, Phi).reshape(n * d, n)
    M[n * d:, n * d:] = (1.0 - beta) * P.T
    c = np.concatenate([alpha * np.einsum("sq,s,sa->qa", P, r * mu, Phi).ravel(),
                        beta * P.T @ (r * mu)])
    x = np.linalg.solve(np.eye(n * (d + 1)) - M, c)
    return StationaryMean(x[:n * d].reshape(n, d).sum(axis=0), float(x[n * d:].sum()))


def markov_td_stationary_mean(P: ArrayLike, rewards: ArrayLike, Phi: ArrayLike, alpha: float,
                              gain_step: float) -> StationaryMean:
    """Exact stationary mean of constant-step average-reward TD under Markovian sampling.

    Parameters
    ----------
    P : (n, n) or (N, n, n) array_like
        Ergodic transition matrices; a stack gives one answer per agent.
    rewards : (n,) or (N, n) array_like
        Expected rewards r(s) (zero-mean reward noise does not change the means).
    Phi : (n, d) array_like
        Features (for a fixed basis B, pass Phi B: the head recursion is TD on those features).
    alpha : float > 0
        Constant step of theta.
    gain_step : float in (0, 1]
        beta = c_eta alpha, the step of the gain eta.

    Returns
    -------
    StationaryMean
        E[theta_t] (d,) or (N, d) and E[eta_t] (= J) as t -> infinity, for the recursion
        delta = r(s_t) - eta_t + (phi(s_{t+1}) - phi(s_t))^T theta_t,
        theta_{t+1} = theta_t + alpha delta phi(s_t), eta_{t+1} = eta_t + beta (r(s_t) - eta_t)
        along one trajectory. Under i.i.d. sampling (s_t ~ mu afresh) the mean is theta*
        exactly; theta_mean - theta* is the bias Markovian sampling adds.

    Notes
    -----
    m(s') = sum_s P(s, s') [(I + alpha phi(s)(phi(s') - phi(s))^T) m(s) - alpha phi(s) e(s)
    + alpha r(s) mu(s) phi(s)], e(s') = sum_s P(s, s') [(1 - beta) e(s) + beta r(s) mu(s)]
    for m(s) = E[theta_t 1{s_t = s}], e(s) = E[eta_t 1{s_t = s}] (the update is linear in
    (theta_t, eta_t) with coefficients that depend on (s_t, s_{t+1}) only, and s_{t+1} depends
    on the past only through s_t); E[theta] = sum_s m(s). A linear system of size n (d + 1);
    it has a unique solution when the conditional-mean recursion is stable (small alpha).

    References
    ----------
    The conditional-mean (Markov jump linear system) recursion of Costa, Fragoso & Marques
    (2005), Discrete-Time Markov Jump Linear Systems, Springer, Ch. 3; the alpha tau_mix bias
    it makes exact: Srikant & Ying (2019); Bhandari, Russo & Singal (2018).
    """
    P = _square_stack(P, "P")
    r = _finite(rewards, "rewards")
    Phi = _finite(Phi, "Phi")
    if Phi.ndim != 2 or r.shape != P.shape[:-1] or Phi.shape[0] != P.shape[-1]:
        raise ValueError(f"P must be (n, n) or (N, n, n), rewards (n,) or (N, n) and Phi (n, d) "
                         f"with the same n; got P {P.shape}, rewards {r.shape}, Phi {Phi.shape}")
    alpha = _real(alpha, "alpha", 0.0, np.inf)
    beta = _real(gain_step, "gain_step", 0.0, 1.0, high_open=False)
    if P.ndim == 2:
        return _conditional_mean_system(P, r, Phi, alpha, beta)
    means = [_conditional_mean_system(P_i, r_i, Phi, alpha, beta) for P_i, r_i in zip(P, r,
                                                                                       strict=True)]
    return StationaryMean(np.array([m.theta for m in means]), np.array([m.eta for m in means]))


class FloorDecomposition(NamedTuple):
    """markov_floor = iid_floor + squared_bias + excess_variance (floats, or arrays alike)."""

    markov_floor: float | FloatArray
    iid_floor: float | FloatArray
    squared_bias: float
    excess_variance: float | FloatArray


def markov_floor_decomposition(markov_floor: ArrayLike, iid_floor: ArrayLike,
                               stationary_mean: ArrayLike,
                               theta_star: ArrayLike) -> FloorDecomposition:
    """Split the Markovian constant-step floor into the i.i.d. floor, squared bias and excess.

    Parameters
    ----------
    markov_floor, iid_floor : float or array_like
        Measured floors (1/N) sum_i E||theta_i - theta_i*||^2 under Markovian and i.i.d.
        sampling at the same step (e.g. `ptdlib.stats.tail_mean` of ``Trace.parameter_error``,
        averaged over seeds); non-negative, same shape (e.g. one per mixing level).
    stationary_mean : (d,) or (N, d) array_like
        The exact stationary mean E[theta_i] under Markovian sampling
        (`markov_td_stationary_mean`; for a fixed basis B, B times the mean of the heads).
    theta_star : (d,) or (N, d) array_like
        The fixed points, shaped like ``stationary_mean``.

    Returns
    -------
    FloorDecomposition
        ``squared_bias`` = (1/N) sum_i ||E theta_i - theta_i*||^2 and ``excess_variance`` =
        markov_floor - iid_floor - squared_bias, so the three parts add up to the Markov floor
        exactly (the excess is negative when the Markov iterates vary less than i.i.d. ones).

    Notes
    -----
    f_markov = f_iid + (1/N) sum_i ||E_markov theta_i - theta_i*||^2 + (V_markov - V_iid).
    For each sampling E||theta - theta*||^2 = ||E theta - theta*||^2 + tr Cov(theta) (V is the
    agents' mean trace of the covariance), and under i.i.d. sampling E theta = theta* exactly
    (`markov_td_stationary_mean`), so f_iid = V_iid.

    References
    ----------
    Srikant & Ying (2019) and Bhandari, Russo & Singal (2018) for the alpha tau_mix terms these
    parts make explicit; Huo, Chen & Xie (2023), Bias and extrapolation in Markovian linear
    stochastic approximation with constant stepsizes, Proc. ACM Meas. Anal. Comput. Syst. 7(1)
    (the bias is O(alpha), absent under i.i.d. data).
    """
    f_markov = _finite(markov_floor, "markov_floor")
    f_iid = _finite(iid_floor, "iid_floor")
    if f_markov.shape != f_iid.shape or np.any(f_markov < 0) or np.any(f_iid < 0):
        raise ValueError(f"markov_floor and iid_floor must be non-negative with the same shape; "
                         f"got {markov_floor!r} and {iid_floor!r}")
    mean = _finite(stationary_mean, "stationary_mean")
    star = _finite(theta_star, "theta_star")
    if mean.shape != star.shape or mean.ndim not in (1, 2):
        raise ValueError(f"stationary_mean and theta_star must both be (d,) or (N, d); got "
                         f"{mean.shape} and {star.shape}")
    bias = mean - star
    squared_bias = float(np.mean(np.sum(np.atleast_2d(bias) ** 2, axis=1)))
    return FloorDecomposition(_scalar_or_array(f_markov), _scalar_or_array(f_iid), squared_bias,
                              _scalar_or_array(f_markov - f_iid - squared_bias))


# --------------------------------------------------------------------------- diminishing steps

def inverse_time_error_exponent(alpha0: float, kappa: float) -> float:
    """Exponent p of the rate E||x_T - x*||^2 = O(T^-p) under steps alpha_t = alpha0 / (t + t0).

    Parameters
    ----------
    alpha0 : float
        alpha_0 > 0 of the schedule alpha_t = alpha_0 / (t + t_0).
    kappa : float
        Decay rate > 0 of the mean path's squared error per unit of step size near the fixed
        point, ||x_t - x*||^2 ~ exp(-kappa sum_{s < t} alpha_s) (kappa = 2 lambda for the slowest
        mode x <- (1 - alpha lambda) x).

    Returns
    -------
    float
        p = min(1, alpha0 kappa): 1 (the variance term, the rate behind a 1/(N T) speedup) once
        alpha0 kappa > 1; otherwise the initial condition fades too slowly and dominates
        (log T / T exactly at alpha0 kappa = 1, where this returns 1).

    Notes
    -----
    For x_{t+1} = (1 - alpha_t lambda) x_t + alpha_t xi_t with noise of variance sigma^2:
    E x_T^2 ~ alpha0^2 sigma^2 / ((2 alpha0 lambda - 1) T) + O((t0 / T)^(2 alpha0 lambda)).

    References
    ----------
    Chung, K. L. (1954). On a stochastic approximation method. Ann. Math. Statist. 25(3).
    Moulines, E. & Bach, F. (2011). Non-asymptotic analysis of stochastic approximation
    algorithms for machine learning. NeurIPS (steps C / n need C mu > 1/2 for the O(1/n) rate).
    Kushner, H. J. & Yin, G. G. (2003). Stochastic Approximation and Recursive Algorithms and
    Applications, 2nd ed. Springer, Ch. 10.
    """
    alpha0 = _real(alpha0, "alpha0", 0.0, np.inf)
    kappa = _real(kappa, "kappa", 0.0, np.inf)
    return float(min(1.0, alpha0 * kappa))


def inverse_time_rate_condition(alpha0: float, kappa: float) -> Condition:
    """Condition alpha0 kappa > 1: steps alpha0 / (t + t0) give the O(1/T) rate.

    References
    ----------
    See :func:`inverse_time_error_exponent`.
    """
    alpha0 = _real(alpha0, "alpha0", 0.0, np.inf)
    kappa = _real(kappa, "kappa", 0.0, np.inf)
    return Condition("inverse-time rate", "alpha0 kappa > 1 (2 alpha0 lambda > 1)",
                     alpha0 * kappa, 1.0, alpha0 * kappa > 1)


def long_run_covariance(P: ArrayLike, f: ArrayLike) -> FloatArray:
    """Long-run covariance of f(s_t, s_{t+1}) along a stationary trajectory of an ergodic chain.

    Parameters
    ----------
    P : (n, n)
        Ergodic transition matrix.
    f : (n, n, m)
        f[s, s'] in R^m, a function of one transition (centred here under mu(s) P(s, s')).

    Returns
    -------
    (m, m) ndarray
        Sigma = sum over all lags k of Cov(f(X_0), f(X_k)), X_t = (s_t, s_{t+1}): the variance
        that a sum of T such terms has, divided by T, as T -> infinity (Markov chain CLT).

    Notes
    -----
    Sigma = E[f f^T] + C + C^T,  C = E[f(s, s') h(s')^T],  h = (I - P + 1 mu^T)^{-1} g,
    g(s) = sum_{s'} P(s, s') f(s, s'): h = sum_{k >= 0} P^k g solves the Poisson equation
    (I - P) h = g (mu^T g = 0 after centring).

    References
    ----------
    Meyn, S. & Tweedie, R. L. (2009). Markov Chains and Stochastic Stability, 2nd ed., Ch. 17.
    Kemeny, J. G. & Snell, J. L. (1960). Finite Markov Chains (the fundamental matrix).
    """
    P = _square_stack(P, "P")
    f = _finite(f, "f")
    n = P.shape[0]
    if P.ndim != 2 or f.ndim != 3 or f.shape[:2] != (n, n):
        raise ValueError(f"P must be (n, n) and f (n, n, m); got shapes {P.shape}, {f.shape}")
    mu = _stationary_distribution(P)
    pair = mu[:, None] * P  # law of (s_t, s_{t+1})
    centred = f - np.einsum("st,stm->m", pair, f)
    g = np.einsum("st,stm->sm", P, centred)
    h = np.linalg.solve(np.eye(n) - P + np.outer(np.ones(n), mu), g)
    # Products over the n^2 transitions as matrix products: O(n^2 m^2) once, not per entry.
    weighted = (pair[:, :, None] * centred).reshape(n * n, -1)
    lag0 = weighted.T @ centred.reshape(n * n, -1)
    later = weighted.reshape(n, n, -1).sum(axis=0).T @ h
    return lag0 + later + later.T


def constant_step_covariance(M: ArrayLike, Gamma: ArrayLike, alpha: float) -> FloatArray:
    """Stationary E[x_t x_t^T] of x_{t+1} = x_t + alpha (M x_t + xi_t) at a constant step alpha.

    Parameters
    ----------
    M : (k, k)
        Drift of the linearised mean path.
    Gamma : (k, k)
        Long-run covariance of the noise xi_t (symmetric, positive semi-definite).
    alpha : float
        Constant step > 0 with every |1 + alpha lambda_j(M)| < 1 (below alpha_crit).

    Returns
    -------
    (k, k) ndarray
        V solving V = (I + alpha M) V (I + alpha M)^T + alpha^2 Gamma.

    Raises
    ------
    ValueError
        If I + alpha M has an eigenvalue of modulus >= 1.

    Notes
    -----
    x_t = sum_k (I + alpha M)^k alpha xi_{t-k}; with noise correlated over tau_mix steps the
    lag sums collapse to Gamma when alpha tau_mix is small, so V = alpha V_1 + O(alpha^2),
    M V_1 + V_1 M^T + Gamma = 0: the floor is proportional to alpha to first order.

    References
    ----------
    Borkar (2008), Stochastic Approximation, Ch. 9 (constant step sizes); Srikant & Ying (2019).
    """
    M = _square_stack(M, "M")
    Gamma = _square_stack(Gamma, "Gamma")
    if M.ndim != 2 or Gamma.shape != M.shape:
        raise ValueError(f"M and Gamma must be (k, k) of one shape; got {M.shape}, {Gamma.shape}")
    alpha = _real(alpha, "alpha", 0.0, np.inf)
    step = np.eye(M.shape[0]) + alpha * M
    radius = float(np.max(np.abs(np.linalg.eigvals(step))))
    if radius >= 1:
        raise ValueError(f"I + alpha M must have spectral radius < 1 (alpha below alpha_crit); "
                         f"got {radius:.6g} at alpha = {alpha:g}")
    V = scipy.linalg.solve_discrete_lyapunov(step, alpha**2 * Gamma)
    return (V + V.T) / 2  # symmetric up to round-off; make it exactly so


def inverse_time_covariance(M: ArrayLike, Gamma: ArrayLike, alpha0: float) -> FloatArray:
    """Limit V of t E[x_t x_t^T] for x_{t+1} = x_t + alpha_t (M x_t + xi_t), alpha_t = alpha0 / t.

    Parameters
    ----------
    M : (k, k)
        Drift of the linearised mean path (eigenvalues in the open left half-plane).
    Gamma : (k, k)
        Long-run covariance of the noise xi_t (symmetric, positive semi-definite).
    alpha0 : float
        alpha_0 > 0 with every eigenvalue of alpha0 M + I/2 in the open left half-plane
        (alpha0 > 1 / (2 min_j -Re lambda_j(M)): the condition for the 1/t rate).

    Returns
    -------
    (k, k) ndarray
        V, the solution of the Lyapunov equation below; E[x_t x_t^T] ~ V / t.

    Raises
    ------
    ValueError
        If alpha0 M + I/2 has an eigenvalue with real part >= 0.

    Notes
    -----
    (alpha0 M + I/2) V + V (alpha0 M + I/2)^T + alpha0^2 Gamma = 0: put E[x x^T] = V / t into
    E[x_{t+1} x_{t+1}^T] = E[x x^T] + alpha_t (M E + E M^T) + alpha_t^2 Gamma. A shift
    t -> t + t0 of the schedule changes nothing in the limit.

    References
    ----------
    Chung, K. L. (1954). On a stochastic approximation method. Ann. Math. Statist. 25(3).
    Fabian, V. (1968). On asymptotic normality in stochastic approximation. Ann. Math. Statist.
    39(4). Borkar, V. S. (2008). Stochastic Approximation: A Dynamical Systems Viewpoint, Ch. 6
    (Markov noise enters through its long-run covariance).
    """
    M = _square_stack(M, "M")
    Gamma = _square_stack(Gamma, "Gamma")
    if M.ndim != 2 or Gamma.shape != M.shape:
        raise ValueError(f"M and Gamma must be (k, k) of one shape; got {M.shape}, {Gamma.shape}")
    alpha0 = _real(alpha0, "alpha0", 0.0, np.inf)
    shifted = alpha0 * M + 0.5 * np.eye(M.shape[0])
    worst = float(np.max(np.linalg.eigvals(shifted).real))
    if worst >= 0:
        raise ValueError(f"alpha0 M + I/2 must have every eigenvalue in the open left half-plane "
                         f"(alpha0 > 1 / (2 min_j -Re lambda_j(M))); got max real part {worst:.3g}"
                         f" at alpha0 = {alpha0:g}")
    V = scipy.linalg.solve_continuous_lyapunov(shifted, -alpha0**2 * Gamma)
    return (V + V.T) / 2  # symmetric up to round-off; make it exactly so
