"""Tests for ptdlib.markov: known answers, invariants, the alias sampler and bad input."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from ptdlib import markov

PROPERTY = settings(max_examples=40, deadline=None)


# ------------------------------------------------------------------------------ textbook chains


def two_state(p: float, q: float) -> np.ndarray:
    return np.array([[1 - p, p], [q, 1 - q]])


def lazy_cycle(n: int) -> np.ndarray:
    """Lazy simple random walk on the n-cycle: stay 1/2, each neighbour 1/4."""
    shift = np.roll(np.eye(n), 1, axis=1)
    return 0.5 * np.eye(n) + 0.25 * (shift + shift.T)


def lazy_hypercube(k: int) -> np.ndarray:
    """Lazy walk on {0,1}^k: stay 1/2, else flip one of the k coordinates uniformly."""
    n = 2**k
    P = 0.5 * np.eye(n)
    for s, i in itertools.product(range(n), range(k)):
        P[s, s ^ (1 << i)] += 0.5 / k
    return P


def cycle(n: int) -> np.ndarray:
    return np.roll(np.eye(n), 1, axis=1)


def from_edges(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Uniform transition over the listed out-edges of each state."""
    P = np.zeros((n, n))
    for u, v in edges:
        P[u, v] = 1.0
    return P / P.sum(axis=1, keepdims=True)


def reconstruct(tables: markov.AliasTables) -> np.ndarray:
    """The row laws an alias table encodes: (prob[k] + sum_{alias[j]=k} (1 - prob[j])) / n."""
    n = tables.prob.shape[-1]
    law = tables.prob / n
    agent, state, _ = np.indices(tables.prob.shape)
    np.add.at(law, (agent, state, tables.alias), (1 - tables.prob) / n)
    return law


# Positive stochastic matrices, n in 2..8 (entries >= 0.01 before normalising).
positive_chains = st.integers(2, 8).flatmap(
    lambda n: arrays(np.float64, (n, n), elements=st.floats(0.01, 1.0))
).map(lambda W: W / W.sum(axis=1, keepdims=True))

# Symmetric positive weights give reversible chains P = W / rowsum with mu proportional to rowsum.
symmetric_weights = st.integers(2, 8).flatmap(
    lambda n: arrays(np.float64, (n, n), elements=st.floats(0.01, 1.0))
).map(lambda W: W + W.T)

# Stochastic rows with zeros (each row keeps at least one positive entry), for the alias tables.
sparse_stacks = st.tuples(st.integers(1, 3), st.integers(1, 9)).flatmap(
    lambda shape: st.tuples(
        arrays(np.float64, (shape[0], shape[1], shape[1]), elements=st.floats(0.0, 1.0)),
        arrays(np.bool_, (shape[0], shape[1], shape[1])),
    )
)


def stack_from(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    W = np.where(keep, values, 0.0)
    W[..., 0] += (W.sum(axis=-1) == 0)  # rows that lost every entry get state 0
    return W / W.sum(axis=-1, keepdims=True)


# -------------------------------------------------------------------------------- known answers

TWO_STATE = [(0.1, 0.2), (0.3, 0.3), (0.5, 0.5), (0.9, 0.05), (0.7, 0.9), (1.0, 0.5),
             (0.01, 0.99), (1e-3, 2e-3), (0.6, 0.65)]


@pytest.mark.parametrize(("p", "q"), TWO_STATE)
def test_two_state_stationary_distribution(p: float, q: float) -> None:
    mu = markov.stationary_distribution(two_state(p, q))
    np.testing.assert_allclose(mu, np.array([q, p]) / (p + q), rtol=0, atol=1e-14)


@pytest.mark.parametrize(("p", "q"), TWO_STATE)
def test_two_state_tv_curve(p: float, q: float) -> None:
    t = np.arange(31)
    exact = max(p, q) / (p + q) * np.abs(1 - p - q) ** t
    P = two_state(p, q)
    np.testing.assert_allclose(markov.tv_curve(P, 30), exact, rtol=0, atol=1e-12)
    for s in (0, 1, 7, 30):
        assert markov.tv_to_stationarity(P, s) == pytest.approx(exact[s], abs=1e-12)


@pytest.mark.parametrize(("p", "q"), TWO_STATE)
def test_two_state_spectrum_and_mixing(p: float, q: float) -> None:
    P = two_state(p, q)
    rho = abs(1 - p - q)  # the eigenvalues are 1 and 1 - p - q
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(rho, abs=1e-12)
    assert markov.absolute_spectral_gap(P) == pytest.approx(1 - rho, abs=1e-12)
    assert markov.relaxation_time(P) == pytest.approx(1 / (1 - rho), rel=1e-10)
    assert markov.is_reversible(P)  # every two-state chain satisfies detailed balance
    exact = max(p, q) / (p + q) * rho ** np.arange(1000)
    assert exact[-1] <= 0.25
    assert markov.mixing_time(P, 0.25) == int(np.argmax(exact <= 0.25))


def test_two_state_periodic() -> None:
    P = two_state(1.0, 1.0)
    assert markov.period(P) == 2
    assert not markov.is_aperiodic(P)
    np.testing.assert_allclose(markov.stationary_distribution(P), [0.5, 0.5], atol=1e-15)
    np.testing.assert_allclose(markov.tv_curve(P, 5), 0.5, atol=1e-15)  # never mixes
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(1.0, abs=1e-12)
    assert markov.absolute_spectral_gap(P) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"^P is periodic with period 2"):
        markov.check_ergodic(P)
    with pytest.raises(ValueError, match=r"P is periodic with period 2"):
        markov.mixing_time(P)


def test_reducible_two_state() -> None:
    P = two_state(0.0, 0.0)
    assert markov.communicating_classes(P) == [[0], [1]]
    assert not markov.is_irreducible(P)
    assert markov.second_largest_eigenvalue_modulus(P) == 1.0  # eigenvalue 1 is repeated
    assert markov.relaxation_time(P) == np.inf
    message = r"P is reducible: communicating classes \[\[0\], \[1\]\]"
    for f in (markov.stationary_distribution, markov.check_ergodic, markov.mixing_time,
              markov.period, markov.is_aperiodic, markov.is_reversible):
        with pytest.raises(ValueError, match=message):
            f(P)


@pytest.mark.parametrize(("P", "classes", "period"), [
    (cycle(3), [[0, 1, 2]], 3),
    (lazy_cycle(4) * 2 - np.eye(4), [[0, 1, 2, 3]], 2),  # simple walk on the 4-cycle: bipartite
    (0.5 * (np.eye(3) + cycle(3)), [[0, 1, 2]], 1),
    (from_edges(3, [(0, 1), (1, 0), (1, 2), (2, 0)]), [[0, 1, 2]], 1),  # cycles of length 2, 3
    (from_edges(9, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (4, 5), (5, 6), (6, 7), (7, 8),
                    (8, 0)]), [list(range(9))], 2),  # cycles of length 4 and 6
    (from_edges(8, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (4, 5), (5, 6), (6, 7), (7, 0)]),
     [list(range(8))], 1),  # cycles of length 4 and 5
    (np.ones((1, 1)), [[0]], 1),
])
def test_classes_and_period(P: np.ndarray, classes: list[list[int]], period: int) -> None:
    assert markov.communicating_classes(P) == classes
    assert markov.is_irreducible(P)
    assert markov.period(P) == period
    assert markov.is_aperiodic(P) == (period == 1)


@pytest.mark.parametrize(("P", "classes"), [
    (np.eye(3), [[0], [1], [2]]),
    # state 0 is transient into the closed class {1, 2}
    (np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]), [[0], [1, 2]]),
    # two closed classes {0, 1}, {3} and a transient state 2 that leaks into both
    (np.array([[0.5, 0.5, 0, 0], [1, 0, 0, 0], [0.2, 0, 0.4, 0.4], [0, 0, 0, 1.0]]),
     [[0, 1], [2], [3]]),
    # closed class listed after a transient one: classes are ordered by their smallest state
    (np.array([[0, 0, 1.0], [0, 0.5, 0.5], [1.0, 0, 0]]), [[0, 2], [1]]),
])
def test_reducible_classes(P: np.ndarray, classes: list[list[int]]) -> None:
    assert markov.communicating_classes(P) == classes
    assert not markov.is_irreducible(P)
    with pytest.raises(ValueError, match=r"P is reducible: communicating classes " +
                       str(classes).replace("[", r"\[").replace("]", r"\]")):
        markov.stationary_distribution(P)


@pytest.mark.parametrize("n", [3, 4, 5, 8, 13, 20])
def test_lazy_cycle_spectrum(n: int) -> None:
    P = lazy_cycle(n)
    eigenvalues = 0.5 + 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(P)), np.sort(eigenvalues), atol=1e-12)
    rho = np.max(np.abs(eigenvalues[1:]))
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(rho, abs=1e-12)
    assert markov.absolute_spectral_gap(P) == pytest.approx(1 - rho, abs=1e-12)
    assert markov.relaxation_time(P) == pytest.approx(1 / (1 - rho), rel=1e-9)
    np.testing.assert_allclose(markov.stationary_distribution(P), 1 / n, atol=1e-14)
    assert markov.is_reversible(P)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_lazy_hypercube_spectrum(k: int) -> None:
    P = lazy_hypercube(k)
    expected = np.repeat(1 - np.arange(k + 1) / k, [comb(k, j) for j in range(k + 1)])
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(P)), np.sort(expected), atol=1e-12)
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(1 - 1 / k, abs=1e-12)
    assert markov.absolute_spectral_gap(P) == pytest.approx(1 / k, abs=1e-12)
    assert markov.relaxation_time(P) == pytest.approx(k, rel=1e-10)
    assert markov.is_reversible(P)


def test_repeated_unit_eigenvalue_removed_once() -> None:
    """Two lazy blocks: 1 is an eigenvalue twice, so rho = 1; one lazy block alone has rho < 1."""
    block = lazy_cycle(3)
    P = np.zeros((6, 6))
    P[:3, :3] = P[3:, 3:] = block
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(1.0, abs=1e-12)
    assert markov.second_largest_eigenvalue_modulus(block) == pytest.approx(0.25, abs=1e-12)


def test_single_state_chain() -> None:
    P = np.ones((1, 1))
    assert markov.stationary_distribution(P).tolist() == [1.0]
    assert markov.mixing_time(P) == 0
    assert markov.second_largest_eigenvalue_modulus(P) == 0.0
    assert markov.relaxation_time(P) == 1.0
    draws = markov.sample_trajectories(P, [0, 0], 5, rng=0)
    assert draws.tolist() == [[0] * 6, [0] * 6]


def test_non_reversible_cycle() -> None:
    P = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])  # doubly stochastic, drifts
    np.testing.assert_allclose(markov.stationary_distribution(P), 1 / 3, atol=1e-15)
    assert not markov.is_reversible(P)
    assert markov.is_reversible(P, atol=0.3)  # flow imbalance is (0.8 - 0.1)/3


def test_mixing_time_cap() -> None:
    # p = q = 0.05: d(t) = 0.5 * 0.9^t, so d(6) = 0.266 > 1/4 >= d(7) = 0.239 and t_mix = 7.
    P = two_state(0.05, 0.05)
    assert markov.mixing_time(P) == 7
    assert markov.mixing_time(P, t_max=7) == 7
    for cap in (6, 4, 1):  # 6: found by bisection past the cap; 4 and 1: hit while squaring
        with pytest.raises(ValueError, match=rf"exceeds the cap t_max={cap}.*larger t_max"):
            markov.mixing_time(P, t_max=cap)


def test_mixing_time_zero_when_already_mixed() -> None:
    mu = np.array([0.2, 0.3, 0.5])
    P = np.tile(mu, (3, 1))  # d(0) = 1 - min mu = 0.8, d(1) = 0
    assert markov.mixing_time(P, eps=0.5) == 1
    assert markov.mixing_time(P, eps=0.8) == 0


def test_lazy_cycle_mixing_matches_linear_scan() -> None:
    P = lazy_cycle(12)
    d = markov.tv_curve(P, 400)
    for eps in (0.4, 0.25, 0.1, 1e-3):
        assert markov.mixing_time(P, eps) == int(np.argmax(d <= eps))


# ------------------------------------------------------------------------------------ stacks


def test_check_ergodic_names_the_agent() -> None:
    good = lazy_cycle(4)
    stack = np.stack([good, good, lazy_cycle(4) * 2 - np.eye(4), good])
    with pytest.raises(ValueError, match=r"^Q\[2\] is periodic with period 2"):
        markov.check_ergodic(stack, name="Q")
    stack[2] = np.eye(4)
    with pytest.raises(ValueError, match=r"^P\[2\] is reducible: communicating classes"):
        markov.check_ergodic(stack)


def test_check_ergodic_accepts_chains_the_screen_cannot_decide() -> None:
    # no self-loops and zeros: aperiodic via cycles of length 2 and 3; needs the exact test
    aperiodic = from_edges(3, [(0, 1), (1, 0), (1, 2), (2, 0)])
    stack = np.stack([aperiodic, lazy_cycle(3), np.full((3, 3), 1 / 3)])
    out = markov.check_ergodic(stack)
    assert out.shape == (3, 3, 3)
    assert out.dtype == np.float64
    assert markov.check_ergodic(aperiodic).shape == (3, 3)


def test_check_ergodic_screen_detects_reducible_lazy_chain() -> None:
    # self-loops everywhere but two closed classes: the GTH screen must not pass it
    P = np.zeros((4, 4))
    P[:2, :2] = P[2:, 2:] = 0.5
    with pytest.raises(ValueError, match=r"^P\[1\] is reducible: communicating classes "
                                         r"\[\[0, 1\], \[2, 3\]\]"):
        markov.check_ergodic(np.stack([lazy_cycle(4), P]))
    # absorbing 0, transient 1: GTH returns a positive vector but meets a zero pivot
    absorbing = np.array([[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^P\[1\] is reducible: communicating classes "
                                         r"\[\[0\], \[1\]\]"):
        markov.check_ergodic(np.stack([lazy_cycle(2), absorbing]))


def test_stationary_distributions_stack() -> None:
    rng = np.random.default_rng(3)
    W = rng.random((50, 6, 6)) * (rng.random((50, 6, 6)) < 0.5) + np.eye(6)
    W[:, :, 0] += 0.1  # every state reaches 0; 0 reaches all through its positive row
    W[:, 0, :] += 0.1
    P = W / W.sum(axis=-1, keepdims=True)
    mu = markov.stationary_distributions(P)
    assert mu.shape == (50, 6)
    for i in range(50):
        np.testing.assert_allclose(mu[i], markov.stationary_distribution(P[i]), atol=1e-15)
    P[17] = np.eye(6)
    with pytest.raises(ValueError, match=r"^P\[17\] is reducible"):
        markov.stationary_distributions(P)


def test_stationary_distribution_transient_state_without_zero_pivot() -> None:
    # GTH meets no zero pivot here (it gives mu = (0, 1)): the zero entry must still be caught
    P = np.array([[0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"reducible: communicating classes \[\[0\], \[1\]\]"):
        markov.stationary_distribution(P)
    # state 1 transient into absorbing 0: elimination of state 0 has a zero pivot
    with pytest.raises(ValueError, match=r"reducible: communicating classes \[\[0\], \[1\]\]"):
        markov.stationary_distribution(np.array([[1.0, 0.0], [0.5, 0.5]]))


def test_stationary_distribution_beyond_float_range() -> None:
    # irreducible, but mu is proportional to (1, 1e-200, 1e-400): not representable
    P = np.array([[1.0, 1e-200, 0.0], [1.0, 0.0, 1e-200], [0.0, 1.0, 0.0]])
    assert markov.is_irreducible(P)
    with pytest.raises(ValueError, match=r"^P is irreducible but the entries of its stationary "
                                         r"distribution span more than the float64 range"):
        markov.stationary_distribution(P)
    with pytest.raises(ValueError, match=r"^P\[0\] is irreducible but"):
        markov.stationary_distributions(P[None])
    # the ergodicity screen is undecided here and the exact graph test accepts it
    assert markov.check_ergodic(P[None]).shape == (1, 3, 3)


# ---------------------------------------------------------------------------- property tests


@PROPERTY
@given(positive_chains)
def test_stationary_distribution_is_invariant(P: np.ndarray) -> None:
    mu = markov.stationary_distribution(P)
    np.testing.assert_allclose(mu @ P, mu, rtol=0, atol=1e-12)
    assert mu.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.all(mu > 0)


@PROPERTY
@given(positive_chains)
def test_gth_agrees_with_least_squares(P: np.ndarray) -> None:
    n = P.shape[0]
    system = np.vstack([P.T - np.eye(n), np.ones((1, n))])
    rhs = np.append(np.zeros(n), 1.0)
    reference = np.linalg.lstsq(system, rhs, rcond=None)[0]
    # entries >= 0.01/8 keep the system well conditioned; lstsq is backward stable
    np.testing.assert_allclose(markov.stationary_distribution(P), reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(markov.stationary_distributions(P[None])[0],
                               markov.stationary_distribution(P), rtol=0, atol=0)


@PROPERTY
@given(positive_chains)
def test_tv_curve_is_non_increasing(P: np.ndarray) -> None:
    d = markov.tv_curve(P, 25)
    assert d[0] == pytest.approx(1 - markov.stationary_distribution(P).min(), abs=1e-14)
    # d is non-increasing in exact arithmetic; allow round-off of a few ulps of O(1) sums
    assert np.all(np.diff(d) <= 1e-14)
    assert d.min() >= 0.0


@PROPERTY
@given(positive_chains, st.floats(0.01, 0.99))
def test_mixing_time_is_minimal(P: np.ndarray, eps: float) -> None:
    t = markov.mixing_time(P, eps)
    d = markov.tv_curve(P, t)
    # squaring (mixing_time) and repeated products (tv_curve) round differently by ~1e-16;
    # 1e-12 only tolerates an exact tie with eps
    assert d[t] <= eps + 1e-12
    assert t == 0 or d[t - 1] > eps - 1e-12
    assert markov.tv_to_stationarity(P, t) == pytest.approx(d[t], abs=1e-14)


@PROPERTY
@given(symmetric_weights, st.floats(0.01, 0.45))
def test_reversible_chain_facts(W: np.ndarray, eps: float) -> None:
    P = W / W.sum(axis=1, keepdims=True)
    mu = markov.stationary_distribution(P)
    np.testing.assert_allclose(mu, W.sum(axis=1) / W.sum(), rtol=0, atol=1e-14)
    assert markov.is_reversible(P)
    # D^(1/2) P D^(-1/2) is symmetric, so the spectrum is real and eigvalsh gives it exactly
    root = np.sqrt(mu)
    spectrum = np.linalg.eigvalsh(root[:, None] * P / root[None, :])
    assert spectrum[-1] == pytest.approx(1.0, abs=1e-12)
    rho = max(abs(spectrum[0]), abs(spectrum[-2]))
    assert markov.second_largest_eigenvalue_modulus(P) == pytest.approx(rho, abs=1e-10)
    # Levin-Peres-Wilmer Theorems 12.4 and 12.5 (t_mix is an integer, the bounds are real)
    t_rel, t_mix = markov.relaxation_time(P), markov.mixing_time(P, eps)
    assert (t_rel - 1) * np.log(1 / (2 * eps)) <= t_mix + 1e-9
    assert t_mix <= np.ceil(t_rel * np.log(1 / (eps * mu.min())) + 1e-9)


# ---------------------------------------------------------------------------- alias sampling


@PROPERTY
@given(sparse_stacks)
def test_alias_tables_encode_the_rows(data: tuple[np.ndarray, np.ndarray]) -> None:
    P = stack_from(*data)
    tables = markov.alias_tables(P)
    assert tables.prob.shape == tables.alias.shape == P.shape
    assert tables.alias.dtype == np.int64
    assert np.all((tables.prob >= 0) & (tables.prob <= 1))
    # each encoded entry sums at most n terms that are exact to about one ulp
    np.testing.assert_allclose(reconstruct(tables), P, rtol=0, atol=1e-14)
    # a zero-probability state is unreachable: its column never accepts, nobody aliases it
    assert np.all(tables.prob[P == 0] == 0)
    agent, state, _ = np.indices(P.shape)
    assert np.all(P[agent, state, tables.alias] > 0)


def test_alias_tables_hand_example() -> None:
    # q = 3 * (0.1, 0.6, 0.3) = (0.3, 1.8, 0.9): heavy column 1 pays light columns 0 and 2
    tables = markov.alias_tables(np.array([[0.1, 0.6, 0.3]] * 3))
    np.testing.assert_allclose(tables.prob[0, 0], [0.3, 1.0, 0.9], rtol=0, atol=1e-15)
    assert tables.alias[0, 0].tolist() == [1, 1, 1]
    # tables given in Fortran order are stored in C order and sample the same
    fortran = markov.AliasTables(np.asfortranarray(tables.prob), np.asfortranarray(tables.alias))
    assert fortran.prob.flags.c_contiguous
    assert fortran.alias.flags.c_contiguous
    # u -> x = 3u: column floor(x) accepted iff frac(x) < prob, else its alias
    uniforms = np.array([0.05, 0.2, 0.5, 0.9, 0.99])
    next_states = markov.sample_next_states(tables, 0, 0, uniforms)
    assert next_states.tolist() == [0, 1, 1, 2, 1]
    assert markov.sample_next_states(fortran, 0, 0, uniforms).tolist() == [0, 1, 1, 2, 1]


def test_one_uniform_rule_on_hand_tables() -> None:
    # n = 2, column 0 accepts with prob 1/2 else goes to 1: Pr(0) = 1/4
    tables = markov.AliasTables(prob=np.array([[[0.5, 1.0], [1.0, 1.0]]]),
                                alias=np.array([[[1, 1], [0, 1]]]))
    u = np.array([0.0, 0.1, np.nextafter(0.25, 0), 0.25, 0.3, 0.5, 0.75, np.nextafter(1.0, 0)])
    assert markov.sample_next_states(tables, 0, 0, u).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    # row 1 has prob 1 everywhere: the column itself, alias ignored
    assert markov.sample_next_states(tables, 0, 1, u).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    # broadcasting: one draw per (agent, state, uniform) triple
    states = markov.sample_next_states(tables, np.zeros(8, dtype=int), np.array([0, 1] * 4), u)
    assert states.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert states.dtype == np.int64


def test_alias_grid_frequencies_are_exact() -> None:
    """A uniform grid of M points hits each state with frequency P within 2n / M."""
    rng = np.random.default_rng(11)
    P = rng.random((3, 7, 7)) * (rng.random((3, 7, 7)) < 0.7) + 1e-3 * np.eye(7)
    P /= P.sum(axis=-1, keepdims=True)
    tables = markov.alias_tables(P)
    M = 200_000
    u = (np.arange(M) + 0.5) / M
    for a, s in itertools.product(range(3), range(7)):
        freq = np.bincount(markov.sample_next_states(tables, a, s, u), minlength=7) / M
        # u -> state is piecewise constant with at most 2n breakpoints; each boundary interval
        # can gain or lose at most one grid point
        np.testing.assert_allclose(freq, P[a, s], rtol=0, atol=2 * 7 / M)


def test_alias_sampler_chi_square() -> None:
    rng = np.random.default_rng(12)
    P = rng.dirichlet(np.ones(6), size=(2, 6))
    tables = markov.alias_tables(P)
    draws = 100_000
    for a, s in [(0, 0), (1, 3), (1, 5)]:
        counts = np.bincount(
            markov.sample_next_states(tables, a, s, rng.random(draws)), minlength=6)
        statistic = stats.chisquare(counts, draws * P[a, s]).statistic
        # correct sampling exceeds the 0.9999 quantile with probability 1e-4 per seed; the seed
        # is fixed, so this is deterministic, and any bias of order 1/sqrt(draws) would fail
        assert statistic < stats.chi2.ppf(0.9999, df=5)


def test_sample_trajectories_reproduces_the_documented_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    P = rng.dirichlet(np.ones(5), size=(4, 5))
    start = np.array([0, 1, 2, 4])
    traj = markov.sample_trajectories(P, start, 50, rng=123)
    assert traj.shape == (4, 51)
    assert traj.dtype == np.int64
    np.testing.assert_array_equal(traj, markov.sample_trajectories(P, start, 50, rng=123))
    assert not np.array_equal(traj, markov.sample_trajectories(P, start, 50, rng=124))
    # by hand: U = rng.random((steps, n_chains)), chain i steps with U[t, i]
    tables = markov.alias_tables(P)
    U = np.random.default_rng(123).random((50, 4))
    states = [start]
    for t in range(50):
        states.append(markov.sample_next_states(tables, np.arange(4), states[-1], U[t]))
    np.testing.assert_array_equal(traj, np.stack(states, axis=1))
    # uniforms drawn in small blocks give the same stream
    monkeypatch.setattr(markov, "_DRAW_BLOCK", 7)
    np.testing.assert_array_equal(traj, markov.sample_trajectories(P, start, 50, rng=123))


def test_sample_trajectories_zero_steps_and_shared_chain() -> None:
    P = lazy_cycle(5)
    assert markov.sample_trajectories(P, [3, 1], 0, rng=0).tolist() == [[3], [1]]
    traj = markov.sample_trajectories(P, np.zeros(1000, dtype=int), 3, rng=np.random.default_rng(0))
    # one shared chain: every move is -1, 0 or +1 around the cycle
    assert set(np.unique((np.diff(traj, axis=1) + 1) % 5).tolist()) == {0, 1, 2}


def test_long_trajectory_occupation_approaches_mu() -> None:
    rng = np.random.default_rng(21)
    W = rng.random((5, 4, 4))
    W = W + W.transpose(0, 2, 1)  # reversible chains, so the variance bound below applies
    P = W / W.sum(axis=-1, keepdims=True)
    T = 40_000
    traj = markov.sample_trajectories(P, np.zeros(5, dtype=int), T, rng=7)
    for i in range(5):
        mu = markov.stationary_distribution(P[i])
        freq = np.bincount(traj[i, 1:], minlength=4) / T
        # reversible chain: the asymptotic variance of an indicator's time average is at most
        # (1 + rho) / (1 - rho) * mu (1 - mu) / T (Levin-Peres-Wilmer, section 12.6); allow 5 sd.
        # Starting from state 0 adds a bias of at most sum_t d(t) / T ~ 1e-4, far below 5 sd.
        rho = markov.second_largest_eigenvalue_modulus(P[i])
        sd = np.sqrt((1 + rho) / (1 - rho) * mu * (1 - mu) / T)
        assert np.all(np.abs(freq - mu) < 5 * sd)


# --------------------------------------------------------------------------------- bad input
# The rules of check_row_stochastic (shape, finiteness, sign, row sums) are tested once, in
# tests/test_validation.py. Here: one bad input per public function and argument, which shows
# the function calls its validator, and the rules markov adds itself, each once.

GOOD = lazy_cycle(3)
STACK = np.stack([GOOD, GOOD])
NOT_STOCHASTIC = np.array([[0.5, 0.6], [0.5, 0.5]])
ROW_SUMS = r"must be row-stochastic \(rows sum to 1 within 1e-10\); row \(0,\) sums to 1\.1$"
SINGLE = r"^P must be a single \(n, n\) matrix; got shape \(2, 3, 3\)$"


CHAIN_CALLS = [
    # single-chain functions reject a stack: they call the single-chain validator (_as_chain)
    *(pytest.param(f, STACK, SINGLE, id=f.__name__) for f in (
        markov.stationary_distribution, markov.communicating_classes, markov.is_irreducible,
        markov.period, markov.is_aperiodic, markov.mixing_time,
        markov.second_largest_eigenvalue_modulus, markov.absolute_spectral_gap,
        markov.relaxation_time, markov.is_reversible)),
    pytest.param(lambda P: markov.tv_to_stationarity(P, 1), STACK, SINGLE,
                 id="tv_to_stationarity"),
    pytest.param(lambda P: markov.tv_curve(P, 1), STACK, SINGLE, id="tv_curve"),
    # stack functions call check_row_stochastic under the name they report
    pytest.param(lambda P: markov.check_ergodic(P, name="Q"), NOT_STOCHASTIC, "^Q " + ROW_SUMS,
                 id="check_ergodic"),
    pytest.param(markov.stationary_distributions, NOT_STOCHASTIC[None],
                 r"^P must be row-stochastic .*row \(0, 0\) sums to 1\.1$",
                 id="stationary_distributions"),
    pytest.param(markov.alias_tables, NOT_STOCHASTIC, "^P " + ROW_SUMS, id="alias_tables"),
    pytest.param(lambda P: markov.sample_trajectories(P, [0], 1, rng=0), NOT_STOCHASTIC,
                 "^P " + ROW_SUMS, id="sample_trajectories"),
]


@pytest.mark.parametrize(("f", "P", "message"), CHAIN_CALLS)
def test_every_function_validates_its_chain(f: Callable[[object], object], P: np.ndarray,
                                            message: str) -> None:
    with pytest.raises(ValueError, match=message):
        f(P)


def test_single_chain_validator_checks_the_rows_first() -> None:
    # _as_chain = check_row_stochastic, then the (n, n) rule; shown once, through its thinnest
    # caller
    with pytest.raises(ValueError, match="^P " + ROW_SUMS):
        markov.communicating_classes(NOT_STOCHASTIC)


def test_stack_shapes() -> None:
    with pytest.raises(ValueError, match=r"P must be a stack \(n_agents, n, n\); got shape \(3,"):
        markov.stationary_distributions(GOOD)
    with pytest.raises(ValueError, match=r"^P must be \(n, n\) or a stack \(n_agents, n, n\); "
                                         r"got shape \(1, 2, 3, 3\)$"):
        markov.alias_tables(np.ones((1, 2, 3, 3)) / 3)


def test_scalar_arguments_are_validated() -> None:
    # one bad value per argument; the other bad values of each validator are in test_validation
    with pytest.raises(ValueError, match=r"^t must be an integer >= 0; got -1$"):
        markov.tv_to_stationarity(GOOD, -1)
    with pytest.raises(ValueError, match=r"^t_max must be an integer >= 0; got -1$"):
        markov.tv_curve(GOOD, -1)
    with pytest.raises(ValueError, match=r"^eps must lie in \(0\.0, 1\.0\); got 1\.0$"):
        markov.mixing_time(GOOD, 1.0)
    with pytest.raises(ValueError, match=r"^t_max must be an integer >= 1; got 0$"):
        markov.mixing_time(GOOD, 0.25, 0)
    with pytest.raises(ValueError, match=r"^atol must lie in \[0\.0, inf\); got -0\.001$"):
        markov.is_reversible(GOOD, -1e-3)


TABLES = markov.alias_tables(np.stack([GOOD, GOOD]))


@pytest.mark.parametrize(("args", "message"), [
    ((2, 0, 0.5), r"agent_index must lie in \[0, 2\); got 2"),
    ((-1, 0, 0.5), r"agent_index must lie in \[0, 2\); got -1"),
    ((0.0, 0, 0.5), r"agent_index must be an integer array; got dtype float64"),
    ((0, 3, 0.5), r"states must lie in \[0, 3\); got 3"),
    ((0, [0, 1.5], 0.5), r"states must be an integer array"),
    ((0, 0, 1.0), r"uniforms must lie in \[0, 1\)"),
    ((0, 0, -0.1), r"uniforms must lie in \[0, 1\)"),
    ((0, 0, np.nan), r"uniforms must be finite"),
    ((0, [0, 1, 2], [0.1, 0.2]), r"agent_index, states and uniforms must broadcast"),
])
def test_bad_sample_next_states(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        markov.sample_next_states(TABLES, *args)


def test_bad_tables() -> None:
    with pytest.raises(ValueError, match=r"tables must be AliasTables; got dict"):
        markov.sample_next_states({}, 0, 0, 0.5)
    prob, alias = TABLES.prob, TABLES.alias
    with pytest.raises(ValueError, match=r"prob must be 3-dimensional; got shape \(3, 3\)"):
        markov.AliasTables(prob[0], alias)
    with pytest.raises(ValueError, match=r"prob and alias must both be \(n_agents, n, n\)"):
        markov.AliasTables(prob, alias[:1])
    with pytest.raises(ValueError, match=r"with n_agents, n >= 1; got shapes \(0, 3, 3\)"):
        markov.AliasTables(prob[:0], alias[:0])
    with pytest.raises(ValueError, match=r"alias must hold integers in \[0, 3\)"):
        markov.AliasTables(prob, alias + 1)
    with pytest.raises(ValueError, match=r"alias must hold integers"):
        markov.AliasTables(prob, alias.astype(float))
    with pytest.raises(ValueError, match=r"prob must lie in \[0, 1\]"):
        markov.AliasTables(prob * 2, alias)


@pytest.mark.parametrize(("P", "start", "steps", "rng", "message"), [
    (GOOD, [3], 1, 0, r"initial_states must lie in \[0, 3\); got 3"),
    (GOOD, [[0]], 1, 0, r"initial_states must be 1-dimensional \(n_chains,\); got shape \(1, 1\)"),
    (np.stack([GOOD] * 3), [0, 1], 1, 0,
     r"initial_states must hold one state per chain of P \(3\); got 2"),
    (GOOD, [0], -1, 0, r"steps must be an integer >= 0; got -1"),
    (GOOD, [0], 1, "seed", r"rng must be None, an int, a SeedSequence or a Generator"),
])
def test_bad_sample_trajectories(P: np.ndarray, start: object, steps: object, rng: object,
                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        markov.sample_trajectories(P, start, steps, rng)
