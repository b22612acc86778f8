"""Tests for ptdlib.theory: closed forms against direct computation, bounds, conditions."""

import dataclasses
import itertools
from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special as scipy_special
from scipy import stats as scipy_stats

from ptdlib import theory

PROPERTY = settings(max_examples=40, deadline=None)


def _two_state(p: float, q: float) -> np.ndarray:
    return np.array([[1 - p, p], [q, 1 - q]])


def _tv_curve(P: np.ndarray, mu: np.ndarray, t_max: int) -> np.ndarray:
    """d(t) = max_s TV(P^t(s, .), mu) by direct matrix powers."""
    curve, Pt = [], np.eye(len(mu))
    for _ in range(t_max + 1):
        curve.append(0.5 * np.max(np.abs(Pt - mu).sum(axis=1)))
        Pt = Pt @ P
    return np.array(curve)


def _mixing_time(curve: np.ndarray, eps: float) -> int:
    return int(np.argmax(curve <= eps))


@st.composite
def negative_definite(draw):
    """A = -(G G^T / d + c I) + K with K skew: omega >= c > 0, non-normal in general."""
    dim = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = rng.standard_normal((dim, dim))
    K = draw(st.floats(0.0, 3.0)) * rng.standard_normal((dim, dim))
    c = draw(st.floats(0.05, 1.0))
    return -(G @ G.T / dim + c * np.eye(dim)) + (K - K.T) / 2


TWO_STATE = [(0.3, 0.1), (0.9, 0.8), (1.0, 1.0), (1.0, 0.5), (0.05, 0.02), (0.5, 0.5), (0.0, 0.4)]


# --------------------------------------------------------------------------- two-state chain

@pytest.mark.parametrize(("p", "q"), TWO_STATE)
def test_two_state_stationary_is_invariant(p, q):
    mu = theory.two_state_stationary(p, q)
    np.testing.assert_allclose(mu @ _two_state(p, q), mu, atol=1e-15)
    assert mu.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(("p", "q"), TWO_STATE)
def test_two_state_tv_equals_matrix_powers(p, q):
    curve = _tv_curve(_two_state(p, q), theory.two_state_stationary(p, q), 40)
    np.testing.assert_allclose(theory.two_state_tv(p, q, np.arange(41)), curve, atol=1e-12)
    assert isinstance(theory.two_state_tv(p, q, 3), float)


@pytest.mark.parametrize(("args", "match"), [
    ((-0.1, 0.5, 1), r"p must lie in \[0.0, 1.0\]"),
    ((0.5, 1.5, 1), r"q must lie in \[0.0, 1.0\]"),
    ((0.0, 0.0, 1), "p \\+ q must be > 0"),
    ((0.5, 0.5, -1), "t must be a non-negative integer"),
    ((0.5, 0.5, 1.5), "t must be a non-negative integer"),
])
def test_two_state_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        theory.two_state_tv(*args)


# --------------------------------------------------------------------------- textbook spectra

def _lazy_cycle(n: int) -> np.ndarray:
    shift = np.roll(np.eye(n), 1, axis=1)
    return 0.5 * np.eye(n) + 0.25 * (shift + shift.T)


def _lazy_hypercube(k: int) -> np.ndarray:
    states = np.array(list(itertools.product([0, 1], repeat=k)))
    hamming = np.abs(states[:, None, :] - states[None, :, :]).sum(axis=-1)
    return 0.5 * np.eye(2**k) + (hamming == 1) / (2 * k)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 12])
def test_lazy_cycle_eigenvalues_match_numpy(n):
    expected = np.sort(np.linalg.eigvalsh(_lazy_cycle(n)))[::-1]
    np.testing.assert_allclose(theory.lazy_cycle_eigenvalues(n), expected, atol=1e-13)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_lazy_hypercube_eigenvalues_match_numpy(k):
    spectrum = theory.lazy_hypercube_eigenvalues(k)
    assert spectrum.multiplicities.sum() == 2**k
    expanded = np.repeat(spectrum.eigenvalues, spectrum.multiplicities.astype(int))
    np.testing.assert_allclose(expanded, np.sort(np.linalg.eigvalsh(_lazy_hypercube(k)))[::-1],
                               atol=1e-13)


def test_lazy_cycle_mixing_constant_matches_exact_mixing_times():
    c = theory.lazy_cycle_mixing_constant()
    assert c == pytest.approx(0.0949, abs=5e-5)
    for n in (40, 80):
        P = _lazy_cycle(n)
        curve = _tv_curve(P, np.full(n, 1 / n), int(0.2 * n**2))
        # Measured: t_mix(n) = ceil(c n^2) for n = 20..160; allow one step either side.
        assert abs(_mixing_time(curve, 0.25) - c * n**2) <= 2
    assert theory.lazy_cycle_mixing_constant(0.1) > c > theory.lazy_cycle_mixing_constant(0.5)


def test_hypercube_cutoff_location():
    assert theory.hypercube_cutoff_location(10) == pytest.approx(5 * np.log(10), rel=1e-15)


@pytest.mark.parametrize(("function", "arg", "match"), [
    (theory.lazy_cycle_eigenvalues, 0, "n must be an integer >= 1"),
    (theory.lazy_hypercube_eigenvalues, 2.0, "k must be an integer >= 1"),
    (theory.hypercube_cutoff_location, True, "k must be an integer >= 1"),
    (theory.lazy_cycle_mixing_constant, 0.6, r"eps must lie in \(0.0, 0.5\]"),
])
def test_textbook_bad_input(function, arg, match):
    with pytest.raises(ValueError, match=match):
        function(arg)


# --------------------------------------------------------------------------- mixing constants

@pytest.mark.parametrize(("p", "q"), [(0.3, 0.1), (0.9, 0.8), (0.05, 0.02)])
def test_uniform_ergodicity_constants_are_exact_for_two_state(p, q):
    rho = abs(1 - p - q)
    curve = theory.two_state_tv(p, q, np.arange(60))
    m, rate = theory.uniform_ergodicity_constants(curve, rho)
    assert rate == rho
    assert m == pytest.approx(max(p, q) / (p + q), rel=1e-10)


def test_uniform_ergodicity_constants_bound_the_curve_and_skip_round_off():
    curve = np.array([1.0, 0.6, 0.2, 0.1, 0.04, 1e-17])
    m, rho = theory.uniform_ergodicity_constants(curve, 0.5)
    assert m == pytest.approx(1.2)    # d(t) / rho^t = 1, 1.2, 0.8, 0.8, 0.64; 1e-17 is ignored
    assert np.all(curve[:-1] <= m * rho ** np.arange(5) * (1 + 1e-15))
    assert theory.uniform_ergodicity_constants(np.zeros(3), 0.5).m == 0.0


@pytest.mark.parametrize(("curve", "rho", "match"), [
    (np.ones((2, 2)), 0.5, "tv_curve must be a non-empty 1-D"),
    ([0.5, -0.1], 0.5, "tv_curve must be a non-empty 1-D"),
    ([], 0.5, "tv_curve must be a non-empty 1-D"),
    ([0.5], 1.0, r"rho must lie in \(0.0, 1.0\)"),
    ([np.nan], 0.5, "tv_curve must be finite"),
])
def test_uniform_ergodicity_constants_bad_input(curve, rho, match):
    with pytest.raises(ValueError, match=match):
        theory.uniform_ergodicity_constants(curve, rho)


@pytest.mark.parametrize(("m", "rho", "eps", "expected"), [
    (1.0, 0.5, 0.25, 2), (1.0, 0.5, 0.125, 3), (1.0, 0.5, 0.3, 2), (0.2, 0.9, 0.25, 0),
    (4.0, 0.5, 1.0, 2), (1.0, 0.1, 2e-10, 10), (1.0, 0.1, 0.9e-10, 11),
])
def test_tau_mix_known_values(m, rho, eps, expected):
    assert theory.tau_mix(m, rho, eps) == expected


@PROPERTY
@given(st.floats(1e-3, 1e3), st.floats(1e-3, 0.999), st.floats(1e-9, 10.0))
def test_tau_mix_is_the_first_time_below_eps(m, rho, eps):
    t = theory.tau_mix(m, rho, eps)
    assert m * rho**t <= eps
    assert t == 0 or m * rho ** (t - 1) > eps


def test_tau_mix_bad_input():
    with pytest.raises(ValueError, match=r"rho must lie in \(0.0, 1.0\)"):
        theory.tau_mix(1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="eps must lie in"):
        theory.tau_mix(1.0, 0.5, 0.0)


def test_submultiplicative_bound_values():
    np.testing.assert_array_equal(theory.submultiplicative_tv_bound(np.arange(10), 3),
                                  [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125])
    assert theory.submultiplicative_tv_bound(7, 2) == 0.125
    with pytest.raises(ValueError, match="t_mix must be an integer >= 1"):
        theory.submultiplicative_tv_bound(3, 0)


@pytest.mark.parametrize(("p", "q"), [(0.3, 0.1), (0.9, 0.8), (0.05, 0.02), (0.6, 0.6)])
def test_two_state_chain_obeys_submultiplicative_and_reversible_bounds(p, q):
    curve = theory.two_state_tv(p, q, np.arange(2000))
    t_mix = _mixing_time(curve, 0.25)
    assert np.all(curve <= theory.submultiplicative_tv_bound(np.arange(2000), t_mix))
    # Every two-state chain is reversible; its non-unit eigenvalue is 1 - p - q.
    t_rel = 1 / (1 - abs(1 - p - q))
    mu_min = min(p, q) / (p + q)
    for eps in (0.01, 0.1, 0.25, 0.4):
        lower, upper = theory.reversible_mixing_time_bounds(t_rel, mu_min, eps)
        assert lower <= _mixing_time(curve, eps) <= upper


def test_reversible_mixing_time_bounds_formula_and_bad_input():
    lower, upper = theory.reversible_mixing_time_bounds(11.0, 0.1, 0.25)
    assert lower == pytest.approx(10 * np.log(2)) and upper == pytest.approx(11 * np.log(40))
    with pytest.raises(ValueError, match=r"relaxation_time must lie in \[1.0, inf\)"):
        theory.reversible_mixing_time_bounds(0.5, 0.1, 0.25)
    with pytest.raises(ValueError, match=r"mu_min must lie in \(0.0, 1.0\]"):
        theory.reversible_mixing_time_bounds(2.0, 0.0, 0.25)


# --------------------------------------------------------------------------- step sizes

def test_negative_definiteness_margin_known_and_batched():
    A = -np.diag([1.0, 2.0, 3.0]) + np.array([[0, 5.0, 0], [-5.0, 0, 0], [0, 0, 0]])
    assert theory.negative_definiteness_margin(A) == pytest.approx(1.0)
    stack = np.stack([A, 2 * A, -A])
    np.testing.assert_allclose(theory.negative_definiteness_margin(stack), [1.0, 2.0, -3.0])


@PROPERTY
@given(negative_definite())
def test_sufficient_step_is_at_most_half_the_critical_step(A):
    alpha_suff = theory.sufficient_step_size(A)
    alpha_crit = theory.critical_step_size(A)
    # 2 Re(-lambda) / |lambda|^2 >= 2 omega / ||A||^2 = 2 alpha_suff for every eigenvalue.
    assert alpha_suff <= alpha_crit / 2 * (1 + 1e-10)


@PROPERTY
@given(negative_definite())
def test_spectral_radius_crosses_one_at_the_critical_step(A):
    alpha_crit = theory.critical_step_size(A)
    eye = np.eye(len(A))

    def spectral_radius(alpha):
        return np.max(np.abs(np.linalg.eigvals(eye + alpha * A)))

    assert spectral_radius(0.999 * alpha_crit) < 1 < spectral_radius(1.001 * alpha_crit)


@PROPERTY
@given(negative_definite(), st.floats(0.01, 1.0))
def test_contraction_factor_bounds_the_operator_norm(A, fraction):
    alpha = fraction * theory.sufficient_step_size(A)
    norm = np.linalg.norm(np.eye(len(A)) + alpha * A, 2)
    assert norm <= theory.contraction_factor_bound(A, alpha) * (1 + 1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_path_converges_below_and_diverges_above_the_critical_step(seed):
    rng = np.random.default_rng(seed)
    # Eigenvalues -1 +- 5i (critical 2/26) and -2 (critical 1) in a random non-orthogonal basis.
    V = rng.standard_normal((3, 3))
    A = V @ np.array([[-1.0, 5, 0], [-5, -1, 0], [0, 0, -2]]) @ np.linalg.inv(V)
    b = rng.standard_normal(3)
    x_star = np.linalg.solve(A, -b)
    alpha_crit = theory.critical_step_size(A)
    assert alpha_crit == pytest.approx(2 / 26, rel=1e-10)
    errors = {}
    for factor in (0.99, 1.01):
        x = np.zeros(3)
        for _ in range(20_000):
            x = x + factor * alpha_crit * (A @ x + b)
        errors[factor] = np.linalg.norm(x - x_star) / np.linalg.norm(x_star)
    # |1 + alpha lambda| = 1 -+ 7.6e-4 per step at 0.99 / 1.01 alpha_crit: 20,000 steps shrink or
    # grow the error by e^{-+15}, about 3e-7 or 3e6, up to the basis' condition number.
    assert errors[0.99] < 1e-4
    assert errors[1.01] > 1e4


def test_critical_step_size_rejects_unstable_matrices():
    rotation = np.array([[0.0, 1.0], [-1.0, 0.0]])
    with pytest.raises(ValueError, match=r"A has max Re\(lambda\) = 0"):
        theory.critical_step_size(rotation)
    with pytest.raises(ValueError, match=r"A\[1\] has max Re\(lambda\) = 0.5"):
        theory.critical_step_size(np.stack([-np.eye(2), 0.5 * np.eye(2)]))


def test_sufficient_step_size_and_contraction_bound_reject_bad_input():
    with pytest.raises(ValueError, match="A must be negative definite"):
        theory.sufficient_step_size(np.diag([-1.0, 0.5]))
    with pytest.raises(ValueError, match="alpha must be <= alpha_suff"):
        theory.contraction_factor_bound(-np.eye(2), 1.5)
    with pytest.raises(ValueError, match="A must be a square matrix"):
        theory.negative_definiteness_margin(np.ones((2, 3)))


def test_step_size_conditions_name_their_inequality():
    A = -np.eye(2)                         # omega = 1, ||A|| = 1, alpha_crit = 2
    ok = theory.step_size_condition(0.5, A)
    assert ok.holds and ok.rhs == pytest.approx(1.0)
    bad = theory.step_size_condition(1.5, A)
    assert not bad.holds
    assert "alpha <= omega / ||A||_2^2 FAILS" in str(bad)
    assert theory.stability_condition(1.9, A).holds
    unstable = theory.stability_condition(0.1, np.diag([-1.0, 0.0]))
    assert not unstable.holds and unstable.rhs == 0.0
    assert "alpha < alpha_crit" in str(unstable)
    assert theory.negative_definite_condition(np.stack([A, np.diag([-1.0, 1.0])])).lhs == -1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.holds = False


# --------------------------------------------------------------------------- shared subspace

def test_misalignment_known_value_and_stack():
    B_star = np.array([[1.0], [0.0]])
    shear = np.array([[0.0, 0.0], [1.0, 0.0]])          # A e1 = e2, fully out of span(e1)
    assert theory.misalignment(shear, B_star) == pytest.approx(1.0)
    assert theory.misalignment(np.stack([-np.eye(2), 3 * shear]), B_star) == pytest.approx(3.0)


@PROPERTY
@given(st.integers(2, 7), st.integers(0, 2**32 - 1))
def test_misalignment_vanishes_iff_span_is_invariant(dim, seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, dim))
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    B_star = basis[:, :rank]
    # Block upper-triangular in the basis (B*, B*_perp): A maps span(B*) into itself.
    blocks = rng.standard_normal((3, dim, dim))
    blocks[:, rank:, :rank] = 0
    invariant = basis @ blocks @ basis.T
    assert theory.misalignment(invariant, B_star) < 1e-13
    assert theory.misalignment(rng.standard_normal((3, dim, dim)), B_star) > 1e-3


def test_misalignment_bad_input():
    with pytest.raises(ValueError, match="B_star must have orthonormal columns"):
        theory.misalignment(-np.eye(2), np.array([[2.0], [0.0]]))
    with pytest.raises(ValueError, match=r"B_star must be \(d, r\) with d = 2"):
        theory.misalignment(-np.eye(2), np.ones((3, 1)))


@pytest.mark.parametrize(("W_star", "expected"), [
    (np.eye(2), 0.5),                                   # sigma_min = 1, N = 2
    (2 * np.ones((4, 1)), 4.0),                         # sigma = 2 sqrt(4) = 4; 16 / 4
    (np.array([[3.0, 0], [0, 4], [0, 0]]), 3.0),       # sigma_min = 3; 9 / 3
    (np.ones((1, 2)), 0.0),                             # N < r: not identifiable
    (np.array([[1.0, 2], [2, 4], [3, 6]]), 0.0),       # heads on a line: sigma_2 = 0
])
def test_head_diversity_known_values(W_star, expected):
    assert theory.head_diversity(W_star) == pytest.approx(expected, abs=1e-14)


def test_identifiability_and_head_diversity_condition():
    theory.check_identifiable(3, 3)
    with pytest.raises(ValueError, match=r"n_agents must be >= rank.*n_agents=2, rank=3"):
        theory.check_identifiable(2, 3)
    assert theory.head_diversity_condition(np.eye(2)).holds
    failed = theory.head_diversity_condition(np.ones((1, 2)))
    assert not failed.holds and "lambda_w = sigma_r(W*)^2 / N > tol FAILS" in str(failed)
    with pytest.raises(ValueError, match=r"W_star must be a non-empty \(N, r\)"):
        theory.head_diversity(np.ones(3))


# --------------------------------------------------------------------------- lazy hypercube window

def _hypercube_tv_from_zero(k: int, t_max: int) -> np.ndarray:
    """d(t), t = 0..t_max, of the lazy walk on {0, 1}^k: TV of its Hamming weight from weight 0."""
    w = np.arange(k)
    P = 0.5 * np.eye(k + 1)
    P[w, w + 1] = (k - w) / (2 * k)
    P[w + 1, w] = (w + 1) / (2 * k)
    mu = scipy_special.comb(k, np.arange(k + 1)) / 2.0**k
    row, curve = np.eye(k + 1)[0], []
    for _ in range(t_max + 1):
        curve.append(0.5 * np.abs(row - mu).sum())
        row = row @ P
    return np.array(curve)


def test_lazy_hypercube_mixing_window_known_values():
    window = theory.lazy_hypercube_mixing_window()
    assert window.low == pytest.approx(-(1 + np.log(32 / 3)) / 2, rel=1e-14)
    assert window.high == pytest.approx(-0.5 * np.log(np.log(1.25)), rel=1e-14)
    assert window.low == pytest.approx(-1.68356, abs=1e-5)
    assert window.high == pytest.approx(0.74997, abs=1e-5)
    # A smaller eps needs more steps: both ends move right.
    smaller = theory.lazy_hypercube_mixing_window(0.1)
    assert smaller.low > window.low and smaller.high > window.high


@pytest.mark.parametrize("k", [8, 32])
def test_lazy_hypercube_window_inequalities_hold_at_every_t(k):
    t = np.arange(int(k * np.log(k)) + 4 * k)
    d = _hypercube_tv_from_zero(k, int(t[-1]))
    lower = 1 - 8 / (k * (1 - 1 / k) ** (2 * t))
    j = np.arange(1, k + 1)
    upper = 0.5 * np.sqrt(np.sum(scipy_special.comb(k, j) * (1 - j / k) ** (2 * t[:, None]),
                                 axis=1))
    assert np.all(d >= lower - 1e-12) and np.all(d <= upper + 1e-12)


@pytest.mark.parametrize("k", [1, 2, 5, 16, 64, 128])
def test_lazy_hypercube_window_contains_the_exact_mixing_time(k):
    window = theory.lazy_hypercube_mixing_window()
    center = 0.5 * k * np.log(k)
    t_mix = _mixing_time(_hypercube_tv_from_zero(k, int(np.ceil(center + window.high * k)) + 1),
                         0.25)
    assert center + window.low * k <= t_mix <= np.ceil(center + window.high * k)


def test_lazy_hypercube_limit_constant_solves_the_limit_profile_and_matches_large_k():
    c = theory.lazy_hypercube_limit_constant()
    assert c == pytest.approx(0.45055, abs=1e-5)
    assert 2 * scipy_stats.norm.cdf(np.exp(-c) / 2) - 1 == pytest.approx(0.25, abs=1e-14)
    k = 128
    t_mix = _mixing_time(_hypercube_tv_from_zero(k, 2 * k * int(np.log(k))), 0.25)
    # Measured: (t_mix - k ln k / 2) / k = 0.4490 at k = 128 and 0.4491 at k = 1000; the
    # CLT error is o(1), 0.01 leaves room for it and for the integer rounding (1/k).
    assert (t_mix - 0.5 * k * np.log(k)) / k == pytest.approx(c, abs=0.01)
    assert theory.lazy_hypercube_limit_constant(0.1) > c > theory.lazy_hypercube_limit_constant(0.5)


@pytest.mark.parametrize("function", [theory.lazy_hypercube_mixing_window,
                                      theory.lazy_hypercube_limit_constant])
def test_lazy_hypercube_constants_reject_bad_eps(function: Callable[[float], object]) -> None:
    # one bad value per function; the other bad values of check_in_range: test_validation.py
    with pytest.raises(ValueError, match=r"^eps must lie in \(0\.0, 1\.0\); got 1\.0$"):
        function(1.0)


@pytest.mark.parametrize(("alpha0", "kappa", "exponent", "holds"), [
    (100.0, 0.036, 1.0, True),
    (10.0, 0.05, 0.5, False),
    (2.0, 0.5, 1.0, False),   # alpha0 kappa = 1 exactly: log T / T, not the clean 1/T regime
    (3.0, 0.5, 1.0, True),
])
def test_inverse_time_exponent_and_condition(alpha0, kappa, exponent, holds):
    assert theory.inverse_time_error_exponent(alpha0, kappa) == pytest.approx(exponent)
    condition = theory.inverse_time_rate_condition(alpha0, kappa)
    assert condition.holds is holds
    assert condition.lhs == pytest.approx(alpha0 * kappa) and condition.rhs == 1.0
    assert "alpha0 kappa > 1" in str(condition)


def test_inverse_time_exponent_matches_the_scalar_recursion():
    # x_{t+1} = (1 - alpha_t lam) x_t + alpha_t xi_t: E x_t^2 obeys the exact recursion
    # v_{t+1} = (1 - alpha_t lam)^2 v_t + alpha_t^2 sigma^2; its late log-log slope is -p.
    lam, t0, T = 0.5, 10.0, 2 * 10**5
    for alpha0 in (0.6, 4.0):   # 2 alpha0 lam = 0.6 (slow regime) and 4 (the 1/T regime)
        alpha = alpha0 / (np.arange(T) + t0)
        v = np.empty(T + 1)
        v[0] = 1.0
        for t in range(T):
            v[t + 1] = (1 - alpha[t] * lam) ** 2 * v[t] + alpha[t] ** 2
        slope = np.log(v[T] / v[T // 10]) / np.log(10.0)
        # the correction to the power law is O(t0 / t) = O(5e-4) at t >= 2e4
        assert -slope == pytest.approx(theory.inverse_time_error_exponent(alpha0, 2 * lam),
                                       abs=0.01)


@pytest.mark.parametrize("function", [theory.inverse_time_error_exponent,
                                      theory.inverse_time_rate_condition])
def test_inverse_time_functions_reject_bad_input(
        function: Callable[[float, float], object]) -> None:
    # one bad value per argument; the other bad values of check_in_range: test_validation.py
    with pytest.raises(ValueError, match=r"^alpha0 must lie in \(0\.0, inf\); got 0\.0$"):
        function(0.0, 1.0)
    with pytest.raises(ValueError, match=r"^kappa must lie in \(0\.0, inf\); got -1\.0$"):
        function(1.0, -1.0)


# --------------------------------------------------------------------------- indirect contraction

def _planted_state(seed: int, dim: int = 6, rank: int = 2, n_agents: int = 5):
    rng = np.random.default_rng(seed)
    B_star = np.linalg.qr(rng.standard_normal((dim, rank)))[0]
    W_star = rng.standard_normal((n_agents, rank))
    B = np.linalg.qr(rng.standard_normal((dim, rank)))[0]
    W = rng.standard_normal((n_agents, rank))
    return B_star, W_star, B, W


def _dist(B, B_star):
    return np.linalg.norm(B - B_star @ (B_star.T @ B), 2)


def test_shared_parameter_error_is_the_mean_squared_distance():
    B_star, W_star, B, W = _planted_state(0)
    theta_star = W_star @ B_star.T
    expected = np.mean([np.sum((B @ W[i] - theta_star[i]) ** 2) for i in range(len(W))])
    assert theory.shared_parameter_error(B, W, theta_star) == pytest.approx(expected, rel=1e-14)
    assert theory.shared_parameter_error(B_star, W_star, theta_star) == pytest.approx(0, abs=1e-28)


@given(seed=st.integers(0, 2**32 - 1), optimal=st.booleans())
@PROPERTY
def test_indirect_contraction_holds_for_any_basis_and_heads_when_planted(seed, optimal):
    B_star, W_star, B, W = _planted_state(seed)
    theta_star = W_star @ B_star.T
    W = theta_star @ B if optimal else W  # optimal heads are the tightest case
    lhs = theory.shared_parameter_error(B, W, theta_star)
    rhs = theory.subspace_error_lower_bound(_dist(B, B_star), W_star)
    assert lhs >= rhs * (1 - 1e-12)
    # the Frobenius distance gives the stronger bound, and it still holds
    frob = np.linalg.norm(B - B_star @ (B_star.T @ B))
    assert lhs >= theory.subspace_error_lower_bound(frob, W_star) * (1 - 1e-12)
    assert theory.top_subspace_lower_bound(B, theta_star) <= lhs * (1 + 1e-12)


def test_indirect_contraction_is_tight_for_rank_one():
    # r = 1, optimal head: lhs = (1/N) sum_i w_i*^2 sin^2 = lambda_w dist^2 exactly.
    B_star = np.array([[1.0], [0.0]])
    W_star = np.array([[2.0], [-1.0]])
    angle = 0.3
    B = np.array([[np.cos(angle)], [np.sin(angle)]])
    theta_star = W_star @ B_star.T
    lhs = theory.shared_parameter_error(B, theta_star @ B, theta_star)
    assert lhs == pytest.approx(theory.subspace_error_lower_bound(np.sin(angle), W_star), rel=1e-13)


def test_literal_bound_fails_off_the_top_subspace_and_the_corrected_one_holds():
    # Two agents, r = 2 = N: Theta* has rank 2 and is fitted exactly by its own top-2 subspace,
    # but B* is another subspace (the planted one before a misspecification): lhs = 0 < rhs.
    rng = np.random.default_rng(1)
    B_star = np.linalg.qr(rng.standard_normal((5, 2)))[0]
    W_star = rng.standard_normal((2, 2))
    off = (np.eye(5) - B_star @ B_star.T) @ rng.standard_normal((5, 2))
    theta_star = W_star @ B_star.T + off.T
    B = np.linalg.svd(theta_star.T)[0][:, :2]
    lhs = theory.shared_parameter_error(B, theta_star @ B, theta_star)
    assert lhs == pytest.approx(0.0, abs=1e-25)
    assert theory.subspace_error_lower_bound(_dist(B, B_star), W_star) > 1e-3
    assert not theory.indirect_contraction_condition([lhs], [_dist(B, B_star)], W_star).holds
    assert theory.top_subspace_lower_bound(B, theta_star) == pytest.approx(0.0, abs=1e-25)


def test_top_subspace_bound_known_answer():
    theta_star = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # U_1 = e_1, sigma_1 = 3
    angle = 0.4
    B = np.array([[np.cos(angle)], [0.0], [np.sin(angle)]])
    assert theory.top_subspace_lower_bound(B, theta_star) == pytest.approx(
        9.0 / 2 * np.sin(angle) ** 2, rel=1e-13)


def test_indirect_contraction_condition_reports_the_worst_record():
    W_star = np.array([[1.0, 0.0], [0.0, 1.0]])  # lambda_w = 1/2
    dist = np.array([[0.5, 0.2, np.nan], [0.0, 0.1, 0.3]])
    lhs = np.array([[1.0, 0.1, np.nan], [0.0, 0.006, 0.2]])
    condition = theory.indirect_contraction_condition(lhs, dist, W_star)
    assert condition.holds and (condition.lhs, condition.rhs) == pytest.approx((0.006, 0.005))
    failing = theory.indirect_contraction_condition(lhs * 0.5, dist, W_star)
    assert not failing.holds and "FAILS" in str(failing)
    assert "sigma_r(W*)^2 / N" in str(failing)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: theory.shared_parameter_error(np.ones((3, 1)), np.ones((2, 1)), np.ones((2, 3))),
     "orthonormal"),
    (lambda: theory.shared_parameter_error(np.eye(3)[:, :1], np.ones((2, 2)), np.ones((2, 3))),
     "W must be"),
    (lambda: theory.subspace_error_lower_bound(-0.1, np.eye(2)), ">= 0"),
    (lambda: theory.top_subspace_lower_bound(np.eye(3)[:, :1], np.ones((2, 4))), "theta_star"),
    (lambda: theory.indirect_contraction_condition([1.0], [0.1, 0.2], np.eye(2)), "equal"),
    (lambda: theory.indirect_contraction_condition([np.nan], [np.nan], np.eye(2)), "finite"),
])
def test_indirect_contraction_functions_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- heterogeneity

def _random_td_system(seed: int, n_agents: int = 4, dim: int = 3):
    """Negative definite A_i = -(S_i S_i^T + I/2) + skew, b_i = -A_i theta_i*."""
    gen = np.random.default_rng(seed)
    S = gen.standard_normal((n_agents, dim, dim))
    K = gen.standard_normal((n_agents, dim, dim))
    A = -(S @ S.transpose(0, 2, 1) + 0.5 * np.eye(dim)) + (K - K.transpose(0, 2, 1))
    theta_star = gen.standard_normal((n_agents, dim))
    return A, -np.einsum("iab,ib->ia", A, theta_star), theta_star


def test_federated_fixed_point_solves_the_averaged_system():
    A, b, theta_star = _random_td_system(0)
    theta_bar = theory.federated_td_fixed_point(A, b)
    np.testing.assert_allclose(np.einsum("iab,b->a", A, theta_bar) + b.sum(axis=0), 0,
                               atol=1e-12)
    # Identical A_i: theta_bar is the plain mean of the theta_i* and the bias their spread.
    same = np.broadcast_to(A[0], A.shape)
    b_same = -np.einsum("iab,ib->ia", same, theta_star)
    np.testing.assert_allclose(theory.federated_td_fixed_point(same, b_same),
                               theta_star.mean(axis=0), atol=1e-12)
    spread = np.mean(np.sum((theta_star - theta_star.mean(axis=0))**2, axis=1))
    assert theory.federated_td_bias(same, b_same, theta_star) == pytest.approx(spread, rel=1e-12)


def test_federated_bias_vanishes_for_identical_fixed_points_and_is_positive_otherwise():
    A, _, theta_star = _random_td_system(1)
    common = np.broadcast_to(theta_star[0], theta_star.shape)
    b = -np.einsum("iab,ib->ia", A, common)
    assert theory.federated_td_bias(A, b, common) == pytest.approx(0.0, abs=1e-24)
    A, b, theta_star = _random_td_system(2)
    assert theory.federated_td_bias(A, b, theta_star) > 0.1


def test_federated_functions_reject_bad_input():
    A, b, theta_star = _random_td_system(3)
    with pytest.raises(ValueError, match="A must be"):
        theory.federated_td_fixed_point(A[0], b[0])
    with pytest.raises(ValueError, match="A must be"):
        theory.federated_td_fixed_point(A, b[:, :2])
    with pytest.raises(ValueError, match="theta_star must have the shape"):
        theory.federated_td_bias(A, b, theta_star[:2])
    with pytest.raises(ValueError, match="finite"):
        theory.federated_td_bias(A, b, np.full_like(theta_star, np.nan))


# --------------------------------------------------------------------------- Markov vs i.i.d.

def _planted_chain(seed: int, n: int = 5, dim: int = 2, laziness: float = 0.0):
    """A random dense chain made lazy, features orthogonal to 1, rewards J + (I - P) Phi theta."""
    gen = np.random.default_rng(seed)
    P0 = gen.dirichlet(np.ones(n), size=n)
    P = laziness * np.eye(n) + (1 - laziness) * P0
    Phi = gen.standard_normal((n, dim))
    Phi -= Phi.mean(axis=0)
    Phi /= np.max(np.linalg.norm(Phi, axis=1))
    theta = gen.standard_normal(dim)
    return P, 0.4 + (np.eye(n) - P) @ Phi @ theta, Phi, theta


def _stationary(P):
    w, v = np.linalg.eig(P.T)
    mu = np.real(v[:, np.argmin(np.abs(w - 1))])
    return mu / mu.sum()


def _iterate_conditional_means(P, r, Phi, alpha, beta, steps):
    """The conditional-mean recursion of the docstring, run forward from m = 0, e = 0."""
    n, d = Phi.shape
    mu = _stationary(P)
    m, e = np.zeros((n, d)), np.zeros(n)
    for _ in range(steps):
        m_new, e_new = np.zeros((n, d)), np.zeros(n)
        for s in range(n):
            for q in range(n):
                jump = Phi[q] - Phi[s]
                m_new[q] += P[s, q] * (m[s] + alpha * Phi[s] * (jump @ m[s] - e[s] + r[s] * mu[s]))
                e_new[q] += P[s, q] * ((1 - beta) * e[s] + beta * r[s] * mu[s])
        m, e = m_new, e_new
    return m.sum(axis=0), e.sum()


def test_markov_stationary_mean_matches_the_iterated_recursion():
    P, r, Phi, _ = _planted_chain(4, laziness=0.6)
    exact = theory.markov_td_stationary_mean(P, r, Phi, 0.2, 0.1)
    theta, eta = _iterate_conditional_means(P, r, Phi, 0.2, 0.1, steps=6000)
    np.testing.assert_allclose(exact.theta, theta, atol=1e-9)
    assert exact.eta == pytest.approx(eta, abs=1e-9)
    assert exact.eta == pytest.approx(0.4, abs=1e-12)  # E[eta] = J exactly


def test_markov_stationary_mean_matches_monte_carlo():
    # 4000 independent trajectories run in lockstep; theta is averaged over trajectories and
    # over the last 400 of 800 steps (the mean path relaxes in ~1 / (alpha omega) ~ 40 steps).
    # The standard error of that average, estimated below from block means, is ~ 1.5e-3; the
    # Markov bias ||E theta - theta*|| is ~ 0.4 here (first assert), so a 5-standard-error
    # band around the exact mean excludes theta* by far: the test can tell them apart.
    P, r, Phi, theta_star = _planted_chain(5, n=4, laziness=0.5)
    alpha = 0.2
    exact = theory.markov_td_stationary_mean(P, r, Phi, alpha, alpha)
    gen = np.random.default_rng(0)
    n_chains, cumulative = 4000, np.cumsum(P, axis=1)
    s = gen.choice(4, size=n_chains, p=_stationary(P))
    theta, eta = np.zeros((n_chains, 2)), np.zeros(n_chains)
    blocks = []
    for t in range(800):
        s_next = np.minimum((gen.random(n_chains)[:, None] > cumulative[s]).sum(axis=1), 3)
        delta = r[s] - eta + np.sum((Phi[s_next] - Phi[s]) * theta, axis=1)
        eta += alpha * (r[s] - eta)
        theta += alpha * delta[:, None] * Phi[s]
        s = s_next
        if t >= 400 and t % 50 == 0:
            blocks.append(theta.mean(axis=0))
    blocks = np.array(blocks)
    standard_error = blocks.std(axis=0, ddof=1) / np.sqrt(len(blocks))
    assert np.linalg.norm(exact.theta - theta_star) > 20 * standard_error.max()
    np.testing.assert_array_less(np.abs(blocks.mean(axis=0) - exact.theta),
                                 5 * standard_error + 1e-4)


def test_markov_bias_is_first_order_in_the_step_and_grows_with_laziness():
    P, r, Phi, theta = _planted_chain(6, laziness=0.8)
    bias = [np.linalg.norm(theory.markov_td_stationary_mean(P, r, Phi, a, a).theta - theta)
            for a in (1e-2, 5e-3, 2.5e-3)]
    # O(alpha): halving the step halves the bias, up to an O(alpha^2) correction.
    assert bias[0] / bias[1] == pytest.approx(2.0, rel=0.05)
    assert bias[1] / bias[2] == pytest.approx(2.0, rel=0.03)
    lazier = [_planted_chain(6, laziness=lazy) for lazy in (0.0, 0.5, 0.9)]
    sizes = [np.linalg.norm(theory.markov_td_stationary_mean(P, r, Phi, 0.01, 0.01).theta - th)
             for P, r, Phi, th in lazier]
    assert sizes[0] < sizes[1] < sizes[2]


def test_markov_stationary_mean_stacks_agents():
    chains = [_planted_chain(7, laziness=lazy) for lazy in (0.2, 0.7)]
    Phi = chains[0][2]
    P = np.stack([c[0] for c in chains])
    r = np.stack([0.4 + (np.eye(5) - c[0]) @ Phi @ chains[0][3] for c in chains])
    stacked = theory.markov_td_stationary_mean(P, r, Phi, 0.05, 0.05)
    assert stacked.theta.shape == (2, 2)
    for i in range(2):
        single = theory.markov_td_stationary_mean(P[i], r[i], Phi, 0.05, 0.05)
        np.testing.assert_allclose(stacked.theta[i], single.theta, atol=1e-14)
        assert stacked.eta[i] == pytest.approx(single.eta, abs=1e-14)


def test_markov_stationary_mean_rejects_bad_input():
    P, r, Phi, _ = _planted_chain(8)
    with pytest.raises(ValueError, match="same n"):
        theory.markov_td_stationary_mean(P, r[:-1], Phi, 0.1, 0.1)
    with pytest.raises(ValueError, match="same n"):
        theory.markov_td_stationary_mean(P, r, Phi[:-1], 0.1, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        theory.markov_td_stationary_mean(P, r, Phi, 0.0, 0.1)
    with pytest.raises(ValueError, match="gain_step"):
        theory.markov_td_stationary_mean(P, r, Phi, 0.1, 1.5)


# --------------------------------------------------------------------------- asymptotic covariance

def _brute_force_long_run_covariance(P: np.ndarray, f: np.ndarray, lags: int) -> np.ndarray:
    """sum_{|k| <= lags} Cov(f(X_0), f(X_k)) of the pair chain X_t = (s_t, s_{t+1}), by powers."""
    n = P.shape[0]
    mu = np.linalg.matrix_power(P, 4096)[0]
    pair = mu[:, None] * P
    centred = f - np.einsum("st,stm->m", pair, f)
    total = np.einsum("st,stm,stk->mk", pair, centred, centred)
    g = np.einsum("st,stm->sm", P, centred)  # E[f(X_1) | s_1]
    Pk = np.eye(n)
    for _ in range(1, lags + 1):  # E[f(X_0) f(X_k)^T] = E[f(s, s') (P^{k-1} g)(s')^T]
        cross = np.einsum("st,stm,tk->mk", pair, centred, Pk @ g)
        total += cross + cross.T
        Pk = Pk @ P
    return total


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 6), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_long_run_covariance_sums_the_autocovariances(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n), size=n) * 0.7 + 0.3 * np.eye(n)  # ergodic, mixes in ~20 steps
    f = rng.standard_normal((n, n, m))
    np.testing.assert_allclose(theory.long_run_covariance(P, f),
                               _brute_force_long_run_covariance(P, f, 400), atol=1e-10)


def test_long_run_covariance_two_state_known_answer() -> None:
    """f(s, s') = 1{s = 0}: the long-run variance of an occupation indicator of a two-state chain
    is mu_0 mu_1 (1 + lambda) / (1 - lambda), lambda = 1 - p - q."""
    p, q = 0.2, 0.5
    P = np.array([[1 - p, p], [q, 1 - q]])
    f = np.zeros((2, 2, 1))
    f[0, :, 0] = 1.0
    lam, mu0 = 1 - p - q, q / (p + q)
    expected = mu0 * (1 - mu0) * (1 + lam) / (1 - lam)
    assert theory.long_run_covariance(P, f)[0, 0] == pytest.approx(expected, rel=1e-12)


def test_inverse_time_covariance_scalar_known_answer() -> None:
    """k = 1: 2 (alpha0 m + 1/2) v + alpha0^2 gamma = 0."""
    m, gamma, alpha0 = -0.3, 2.0, 5.0
    v = theory.inverse_time_covariance(np.array([[m]]), np.array([[gamma]]), alpha0)
    assert v[0, 0] == pytest.approx(alpha0**2 * gamma / (2 * (-alpha0 * m - 0.5)), rel=1e-12)


def _drift_and_noise(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stable, non-normal 5 x 5 drift M and a positive definite noise covariance Gamma."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((5, 5))
    Y = rng.standard_normal((5, 5))
    return -np.eye(5) + 0.3 * (X - X.T) - 0.1 * X @ X.T, Y @ Y.T


def test_inverse_time_covariance_solves_its_lyapunov_equation() -> None:
    M, Gamma = _drift_and_noise(4)
    alpha0 = 3.0
    V = theory.inverse_time_covariance(M, Gamma, alpha0)
    shifted = alpha0 * M + 0.5 * np.eye(5)
    np.testing.assert_allclose(shifted @ V + V @ shifted.T, -alpha0**2 * Gamma, atol=1e-10)
    assert np.all(np.linalg.eigvalsh(V) > 0)


def test_inverse_time_covariance_refuses_a_step_too_small_for_the_rate() -> None:
    with pytest.raises(ValueError, match=r"alpha0 M \+ I/2 must have every eigenvalue"):
        theory.inverse_time_covariance(np.array([[-0.1]]), np.array([[1.0]]), 4.0)


def test_constant_step_covariance_scalar_known_answer() -> None:
    """k = 1, white noise: v = (1 + alpha m)^2 v + alpha^2 gamma."""
    m, gamma, alpha = -0.3, 2.0, 0.5
    v = theory.constant_step_covariance(np.array([[m]]), np.array([[gamma]]), alpha)
    assert v[0, 0] == pytest.approx(alpha**2 * gamma / (1 - (1 + alpha * m) ** 2), rel=1e-12)


def test_constant_step_covariance_is_first_order_in_alpha() -> None:
    # V(alpha) / alpha -> V_1 with M V_1 + V_1 M^T + Gamma = 0 as alpha -> 0.
    M, Gamma = _drift_and_noise(4)
    V1 = scipy.linalg.solve_continuous_lyapunov(M, -Gamma)
    for alpha, rel in ((1e-2, 2e-2), (1e-4, 2e-4)):  # the error is O(alpha)
        V = theory.constant_step_covariance(M, Gamma, alpha)
        assert np.max(np.abs(V / alpha - V1)) <= rel * np.max(np.abs(V1))


def test_constant_step_covariance_refuses_a_step_beyond_the_critical_one() -> None:
    # m = -1: alpha_crit = 2; at alpha = 2.5 the step multiplies x by -1.5.
    with pytest.raises(ValueError, match="spectral radius < 1"):
        theory.constant_step_covariance(np.array([[-1.0]]), np.array([[1.0]]), 2.5)


# --------------------------------------------------------------------------- metastable chains

def _uniform_metastable(k: int, m: int, q: float) -> np.ndarray:
    """k clusters of m states, uniform inside, leaving w.p. q to a uniform other cluster."""
    same = np.kron(np.eye(k), np.ones((m, m)))
    return (1 - q) * same / m + q * (1 - same) / ((k - 1) * m)


@pytest.mark.parametrize(("k", "q"), [(2, 0.1), (3, 0.4), (5, 0.8), (2, 0.5), (3, 2 / 3)])
def test_metastable_closed_forms_against_matrix_powers(k: int, q: float) -> None:
    P = _uniform_metastable(k, 2, q)
    lam = theory.metastable_eigenvalue(k, q)
    assert lam == pytest.approx(1 - k * q / (k - 1), abs=1e-15)
    assert np.min(np.abs(np.linalg.eigvals(P) - lam)) < 1e-12
    mu = np.full(2 * k, 1 / (2 * k))
    Pt = np.eye(2 * k)
    for t in range(1, 15):
        Pt = Pt @ P
        assert theory.metastable_tv(k, q, t) == pytest.approx(
            0.5 * np.abs(Pt - mu).sum(axis=1).max(), abs=1e-14)
    # lambda = 0 (q = (k - 1) / k): one step mixes exactly.
    if lam == pytest.approx(0.0, abs=1e-15):
        assert theory.metastable_mixing_time(k, q) == 1


def test_metastable_mixing_time_grows_like_one_over_q() -> None:
    # t_mix ~ ((k - 1) / (k q)) log((1 - 1/k) / eps) for small q.
    for q in (1e-2, 1e-3, 1e-4):
        predicted = (1 / (2 * q)) * np.log(0.5 / 0.25)
        assert theory.metastable_mixing_time(2, q) == pytest.approx(predicted, rel=q + 0.02)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: theory.metastable_eigenvalue(1, 0.1), r"^n_clusters must be an integer >= 2; got 1$"),
    (lambda: theory.metastable_eigenvalue(0, 0.1), r"^n_clusters must be an integer >= 2; got 0$"),
    (lambda: theory.metastable_eigenvalue(2.0, 0.1),
     r"^n_clusters must be an integer >= 2; got 2\.0$"),
    (lambda: theory.metastable_eigenvalue(2, 1.0),
     r"^switch_probability must lie in \(0\.0, 1\.0\); got 1\.0$"),
    (lambda: theory.metastable_tv(2, 0.1, 0), r"^t must be >= 1"),
    (lambda: theory.metastable_mixing_time(2, 0.1, 0.5), r"^eps must lie in \(0\.0, 0\.5\)"),
])
def test_metastable_functions_reject_bad_input(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- floor decomposition

def test_markov_floor_decomposition_by_hand() -> None:
    # Agent biases (0, 0.5) and (-0.3, 0.4): squared norms 0.25 and 0.25, mean 0.25;
    # excess = 0.5 - 0.2 - 0.25 = 0.05.
    parts = theory.markov_floor_decomposition(0.5, 0.2, [[1.0, 2.0], [0.0, 0.0]],
                                              [[1.0, 1.5], [0.3, -0.4]])
    assert parts.squared_bias == pytest.approx(0.25, abs=1e-15)
    assert parts.excess_variance == pytest.approx(0.05, abs=1e-15)
    assert parts.iid_floor + parts.squared_bias + parts.excess_variance == parts.markov_floor
    assert isinstance(parts.excess_variance, float)
    levels = theory.markov_floor_decomposition([0.5, 0.3], [0.2, 0.2], [1.0, 0.0], [1.0, 0.1])
    np.testing.assert_allclose(levels.excess_variance, [0.29, 0.09], atol=1e-15)


def test_markov_floor_decomposition_with_the_exact_stationary_mean() -> None:
    P, r, Phi, theta_star = _planted_chain(9, laziness=0.7)
    mean = theory.markov_td_stationary_mean(P, r, Phi, 0.05, 0.05).theta
    parts = theory.markov_floor_decomposition(1.0, 0.4, mean, theta_star)
    assert parts.squared_bias == pytest.approx(np.sum((mean - theta_star) ** 2), rel=1e-14)
    assert parts.excess_variance == pytest.approx(0.6 - parts.squared_bias, rel=1e-14)


@pytest.mark.parametrize(("args", "match"), [
    ((0.5, [0.2, 0.1], [0.0], [0.0]), "markov_floor and iid_floor must be non-negative"),
    ((-0.5, 0.2, [0.0], [0.0]), "markov_floor and iid_floor must be non-negative"),
    ((0.5, 0.2, [0.0, 1.0], [0.0]), r"stationary_mean and theta_star must both be \(d,\) or "
                                    r"\(N, d\); got \(2,\) and \(1,\)"),
    ((0.5, np.nan, [0.0], [0.0]), "iid_floor must be finite"),
])
def test_markov_floor_decomposition_rejects_bad_input(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        theory.markov_floor_decomposition(*args)


def test_slowest_td_rate_known_answers() -> None:
    # eigenvalues -1 +- 2i and -3: the slowest mode decays at rate 1
    A = np.array([[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.0], [0.0, 0.0, -3.0]])
    assert theory.slowest_td_rate(A) == pytest.approx(1.0)
    stack = np.stack([A, np.diag([-0.5, -4.0, -2.0])])
    np.testing.assert_allclose(theory.slowest_td_rate(stack), [1.0, 0.5])
    assert theory.slowest_td_rate(np.diag([0.2, -1.0])) == pytest.approx(-0.2)
