"""Tests for ptdlib.theory: closed forms against direct computation, bounds, conditions."""

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    ((0.5, np.nan, 1), "q must lie in"),
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
