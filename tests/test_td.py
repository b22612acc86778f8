"""Tests for ptdlib.td: gain, bias, TD matrices and fixed points, and feature validation."""

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import markov, td

PROPERTY = settings(max_examples=40, deadline=None)


def _random_chain(n_states: int, rng: np.random.Generator) -> np.ndarray:
    """Dense (hence ergodic) random chain; Dirichlet(1/2) rows make some entries tiny."""
    return rng.dirichlet(np.full(n_states, 0.5), size=n_states)


def _random_features(n_states: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian features scaled so the largest row has norm 1; 1 is not in their span a.s."""
    Phi = rng.standard_normal((n_states, dim))
    return Phi / np.max(np.linalg.norm(Phi, axis=1))


@st.composite
def mrps(draw):
    """(P, r, Phi) with P ergodic (n, n), r (n,), Phi (n, d), d < n."""
    n_states = draw(st.integers(2, 9))
    dim = draw(st.integers(1, n_states - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (_random_chain(n_states, rng), rng.standard_normal(n_states),
            _random_features(n_states, dim, rng))


# --------------------------------------------------------------------------- known answers

def test_two_state_mrp_by_hand():
    # P = [[0.8, 0.2], [0.3, 0.7]], r = (1, 0): mu = (0.6, 0.4), J = 0.6; h0 - h1 = (r0 - r1) /
    # (p + q) = 2 with 0.6 h0 + 0.4 h1 = 0 gives h = (0.8, -1.2).
    P = np.array([[0.8, 0.2], [0.3, 0.7]])
    r = np.array([1.0, 0.0])
    assert td.average_reward(P, r) == pytest.approx(0.6, abs=1e-15)
    np.testing.assert_allclose(td.poisson_solution(P, r), [0.8, -1.2], atol=1e-14)
    # Phi = e_0: A = mu_0 (P_00 - 1) = -0.12, b = mu_0 (r_0 - J) = 0.24, theta* = 2, and
    # Phi theta* = (2, 0) = h + 1.2 * 1.
    A, b = td.td_matrices(P, r, [[1.0], [0.0]])
    np.testing.assert_allclose(A, [[-0.12]], atol=1e-15)
    np.testing.assert_allclose(b, [0.24], atol=1e-15)
    np.testing.assert_allclose(td.td_fixed_point(P, r, [[1.0], [0.0]]), [2.0], atol=1e-14)


def test_three_state_cycle_by_hand():
    # Lazy directed 3-cycle: doubly stochastic, so mu is uniform and J = mean(r) = 1.
    P = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    r = np.array([3.0, 0.0, 0.0])
    assert td.average_reward(P, r) == pytest.approx(1.0, abs=1e-15)
    # h = r - 1 + P h with sum(h) = 0 is solved by h = (2, -2, 0):
    # 2 = 2 + (2 - 2) / 2,  -2 = -1 + (-2 + 0) / 2,  0 = -1 + (0 + 2) / 2.
    np.testing.assert_allclose(td.poisson_solution(P, r), [2.0, -2.0, 0.0], atol=1e-14)


def test_constant_in_span_residual_known_values():
    assert td.constant_in_span_residual(np.eye(4)[:, :1]) == pytest.approx(np.sqrt(3) / 2)
    assert td.constant_in_span_residual(np.eye(4)) < 1e-15
    x = np.array([[0.1], [0.4], [0.2], [0.3]])
    assert td.constant_in_span_residual(np.hstack([x, 0.5 - x])) < 1e-15
    # Rank-deficient input is fine here: only the span matters.
    assert td.constant_in_span_residual(np.hstack([x, x])) == pytest.approx(
        td.constant_in_span_residual(x), abs=1e-15)


# --------------------------------------------------------------------------- properties

@PROPERTY
@given(mrps())
def test_poisson_solution_solves_the_poisson_equation(mrp):
    P, r, _ = mrp
    J = td.average_reward(P, r)
    h = td.poisson_solution(P, r)
    np.testing.assert_allclose(h, r - J + P @ h, atol=1e-10)
    mu = np.linalg.solve((np.eye(len(P)) - P + 1).T, np.ones(len(P)))   # mu (I - P + 1 1^T) = 1
    assert abs(mu @ h) < 1e-10
    assert abs(J - mu @ r) < 1e-12


@PROPERTY
@given(mrps())
def test_fixed_point_solves_the_projected_equation(mrp):
    P, r, Phi = mrp
    A, b = td.td_matrices(P, r, Phi)
    theta = td.td_fixed_point(P, r, Phi)
    np.testing.assert_allclose(A @ theta + b, 0, atol=1e-10)


@PROPERTY
@given(mrps())
def test_td_matrix_is_negative_definite(mrp):
    A, _ = td.td_matrices(*mrp)
    assert np.max(np.linalg.eigvalsh((A + A.T) / 2)) < 0


@PROPERTY
@given(mrps())
def test_planted_bias_is_recovered(mrp):
    P, _, Phi = mrp
    rng = np.random.default_rng(0)
    theta, J = rng.standard_normal(Phi.shape[1]), 0.7
    r = J + (np.eye(len(P)) - P) @ Phi @ theta          # docs/setting.md: exactly realizable
    assert td.average_reward(P, r) == pytest.approx(J, abs=1e-12)
    np.testing.assert_allclose(td.td_fixed_point(P, r, Phi), theta, atol=1e-8)
    offset = Phi @ theta - td.poisson_solution(P, r)     # bias = Phi theta up to a constant
    np.testing.assert_allclose(offset, offset[0], atol=1e-9)


def test_stacks_equal_per_agent_calls():
    rng = np.random.default_rng(3)
    P = np.stack([_random_chain(6, rng) for _ in range(4)])
    r = rng.standard_normal((4, 6))
    Phi = _random_features(6, 3, rng)
    J, h = td.average_reward(P, r), td.poisson_solution(P, r)
    (A, b), theta = td.td_matrices(P, r, Phi), td.td_fixed_point(P, r, Phi)
    assert J.shape == (4,) and h.shape == (4, 6) and A.shape == (4, 3, 3) and theta.shape == (4, 3)
    for i in range(4):
        assert J[i] == pytest.approx(td.average_reward(P[i], r[i]), abs=1e-14)
        np.testing.assert_allclose(h[i], td.poisson_solution(P[i], r[i]), atol=1e-13)
        A_i, b_i = td.td_matrices(P[i], r[i], Phi)
        np.testing.assert_allclose(A[i], A_i, atol=1e-14)
        np.testing.assert_allclose(b[i], b_i, atol=1e-14)
        np.testing.assert_allclose(theta[i], td.td_fixed_point(P[i], r[i], Phi), atol=1e-12)


def test_large_stack_matches_the_formula_across_agent_blocks():
    # 600 agents span several of td's internal agent blocks; the formula is applied per agent.
    rng = np.random.default_rng(4)
    P = rng.dirichlet(np.ones(4), size=(600, 4))
    r = rng.standard_normal((600, 4))
    Phi = _random_features(4, 2, rng)
    A, b = td.td_matrices(P, r, Phi)
    mu = markov.stationary_distributions(P)
    for i in (0, 255, 256, 511, 599):
        D = np.diag(mu[i])
        np.testing.assert_allclose(A[i], Phi.T @ D @ (P[i] - np.eye(4)) @ Phi, atol=1e-14)
        np.testing.assert_allclose(b[i], Phi.T @ D @ (r[i] - mu[i] @ r[i]), atol=1e-14)


def test_single_chain_return_types():
    P, r = np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([1.0, 3.0])
    assert isinstance(td.average_reward(P, r), float)
    assert td.td_fixed_point(P, r, [[1.0], [0.0]]).shape == (1,)


# --------------------------------------------------------------------------- bad input

GOOD_P = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
GOOD_R = np.array([1.0, 0.0, 2.0])
GOOD_PHI = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])


# td.check_features' own rules, once, against the validator itself.
@pytest.mark.parametrize(("Phi", "match"), [
    (np.array([[0.5, 0.1], [0.5, 0.2], [0.5, 0.3]]),
     r"Phi: features span the constant vector \(residual [0-9.e-]+ < 1e-08\)"),
    (np.array([[1.0, 0.1], [0.0, 1.0], [0.0, 0.0]]),
     r"\|\|phi\(s\)\|\| <= 1 \(\+1e-12\); the largest is 1.00498756211 at state 0"),
    (np.array([[0.5, 0.5], [0.2, 0.2], [0.1, 0.1]]), "full column rank 2; got numerical rank 1"),
    (np.eye(3), r"1 <= dim <= n_states - 1 .*; got shape \(3, 3\)"),
    (np.ones(3), r"^Phi must be 2-dimensional; got shape \(3,\)$"),
])
def test_bad_features(Phi: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        td.check_features(Phi)


# The MRP validator's own rules (r against P), once; P's rules are markov.check_ergodic's
# (tests/test_markov.py) and one bad chain shows the call.
@pytest.mark.parametrize(("P", "r", "match"), [
    (GOOD_P, np.ones(4), r"r must have shape \(3,\) to match P \(3, 3\); got \(4,\)"),
    (np.stack([GOOD_P, GOOD_P]), GOOD_R, r"r must have shape \(2, 3\)"),
    (GOOD_P, np.array([1.0, np.inf, 0.0]), r"^r must be finite"),
    (np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]), GOOD_R,
     r"^P is reducible: communicating classes \[\[0\], \[1, 2\]\]"),
])
def test_bad_chains(P: np.ndarray, r: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        td.average_reward(P, r)


PERIODIC = np.roll(np.eye(3), 1, axis=1)
CONSTANT_IN_SPAN = np.array([[0.5, 0.1], [0.5, 0.2], [0.5, 0.3]])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: td.poisson_solution(PERIODIC, GOOD_R), "^P is periodic with period 3"),
    (lambda: td.poisson_solution(GOOD_P, np.ones(4)), r"^r must have shape \(3,\)"),
    (lambda: td.td_fixed_point(PERIODIC, GOOD_R, GOOD_PHI), "^P is periodic with period 3"),
    (lambda: td.td_fixed_point(GOOD_P, np.ones(4), GOOD_PHI), r"^r must have shape \(3,\)"),
    (lambda: td.td_fixed_point(GOOD_P, GOOD_R, CONSTANT_IN_SPAN), "^Phi: features span"),
    (lambda: td.td_matrices(PERIODIC, GOOD_R, GOOD_PHI), "^P is periodic with period 3"),
    (lambda: td.td_matrices(GOOD_P, np.ones(4), GOOD_PHI), r"^r must have shape \(3,\)"),
    (lambda: td.td_matrices(GOOD_P, GOOD_R, CONSTANT_IN_SPAN), "^Phi: features span"),
    (lambda: td.td_matrices(GOOD_P, GOOD_R, np.ones((4, 1)) / 2),
     r"^Phi must have n_states = 3 rows to match P; got shape \(4, 1\)$"),
])
def test_every_function_validates_each_argument(call: Callable[[], object], match: str) -> None:
    # one bad input per function and argument: the validators above are called
    with pytest.raises(ValueError, match=match):
        call()


def test_check_features_returns_valid_features():
    np.testing.assert_array_equal(td.check_features(GOOD_PHI), GOOD_PHI)
    # Round-off slack: rows normalised to 1 may exceed it by an ulp.
    Phi = GOOD_PHI.copy()
    Phi[0, 0] = 1 + 1e-13
    td.check_features(Phi)


def test_bellman_residual_two_state_known_answer() -> None:
    # P = [[0.8, 0.2], [0.3, 0.7]]: mu = (0.6, 0.4), J = 0.6 for r = (1, 0). With Phi = (0.5, -0.5)
    # theta = 2 gives v = (1, -1), the exact differential value (difference 1 / (p + q) = 2):
    # residual 0. theta = 1 gives v = (0.5, -0.5), P v = (0.3, -0.2), eps = (0.2, -0.3).
    P = np.array([[0.8, 0.2], [0.3, 0.7]])
    r = np.array([1.0, 0.0])
    Phi = np.array([[0.5], [-0.5]])
    np.testing.assert_allclose(td.bellman_residual(P, r, Phi, [2.0]), [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(td.bellman_residual(P, r, Phi, [1.0]), [0.2, -0.3], atol=1e-15)
    stacked = td.bellman_residual(np.stack([P, P]), np.stack([r, r]), Phi, [[2.0], [1.0]])
    np.testing.assert_allclose(stacked, [[0.0, 0.0], [0.2, -0.3]], atol=1e-15)


def test_bellman_residual_rejects_a_theta_of_the_wrong_shape() -> None:
    P = np.array([[0.8, 0.2], [0.3, 0.7]])
    with pytest.raises(ValueError, match=r"^theta must have shape \(1,\) to match P"):
        td.bellman_residual(P, [1.0, 0.0], [[0.5], [-0.5]], [1.0, 2.0])
