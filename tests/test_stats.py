"""Tests of ptdlib.stats: log-log slopes, bootstrap and t intervals, the a/x + c fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptdlib import stats

X = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])


def test_loglog_slope_of_an_exact_power_law() -> None:
    slope, intercept = stats.loglog_slope(X, 3.0 * X**-1.5)
    assert slope == pytest.approx(-1.5, abs=1e-12)
    assert intercept == pytest.approx(math.log(3.0), abs=1e-12)


def test_bootstrap_slope_is_exact_when_seeds_differ_by_a_constant_factor() -> None:
    # Every resampled mean is (mean of the factors) * x^-1, so every replicate has slope -1.
    factors = np.array([[0.5], [1.0], [2.0], [3.5]])
    fit = stats.bootstrap_loglog_slope(X, factors * X**-1.0, rng=0, n_boot=200)
    assert fit.slope == pytest.approx(-1.0, abs=1e-12)
    assert fit.ci == pytest.approx((-1.0, -1.0), abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(factors.mean()), abs=1e-12)
    assert (fit.level, fit.n_boot) == (0.95, 200)


def test_bootstrap_slope_is_reproducible_and_depends_on_the_seed() -> None:
    y = np.exp(np.random.default_rng(1).normal(scale=0.3, size=(12, X.size))) / X
    first = stats.bootstrap_loglog_slope(X, y, rng=7, n_boot=300)
    assert stats.bootstrap_loglog_slope(X, y, rng=7, n_boot=300) == first
    assert stats.bootstrap_loglog_slope(X, y, rng=8, n_boot=300).ci != first.ci
    assert first.ci_low <= first.slope <= first.ci_high


def test_bootstrap_slope_interval_covers_the_true_slope() -> None:
    # 200 independent experiments of 20 seeds; the nominal 95% percentile interval over seeds
    # undercovers slightly with 20 seeds (about 0.92-0.94). The binomial sd of the observed
    # coverage is about 0.018, so [0.85, 0.99] is roughly +-4 sd around the expected value.
    rng = np.random.default_rng(2024)
    hits = 0
    for _ in range(200):
        y = np.exp(rng.normal(scale=0.4, size=(20, X.size))) * X**-1.0
        fit = stats.bootstrap_loglog_slope(X, y, rng=rng, n_boot=400)
        hits += fit.ci_low <= -1.0 <= fit.ci_high
    assert 0.85 <= hits / 200 <= 0.99


@pytest.mark.parametrize(("x", "y", "match"), [
    (X, -np.ones((3, X.size)), "positive"),
    (X, np.ones((3, X.size - 1)), "n_points"),
    (X, np.ones((1, X.size)), "at least 2 seeds"),
    (X[:1], np.ones((3, 1)), "n_points"),
    (X, np.full((3, X.size), np.nan), "finite"),
])
def test_bootstrap_slope_rejects_bad_input(x: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_loglog_slope(x, y, rng=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_boot": 5}, "n_boot"), ({"level": 1.0}, "level"), ({"level": 0.0}, "level")])
def test_bootstrap_slope_rejects_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_loglog_slope(X, np.ones((3, X.size)), rng=0, **kwargs)


def test_loglog_slope_needs_two_distinct_x() -> None:
    with pytest.raises(ValueError, match="distinct"):
        stats.loglog_slope([2.0, 2.0], [1.0, 3.0])


def test_mean_t_interval_known_answer() -> None:
    # Student-t table: t_{0.975, 2} = 4.303 (three decimals); samples 1, 2, 3 have s = 1.
    interval = stats.mean_t_interval([1.0, 2.0, 3.0])
    assert interval.mean == 2.0
    assert interval.sem == pytest.approx(1 / math.sqrt(3), abs=1e-15)
    assert interval.high - interval.mean == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert interval.mean - interval.low == pytest.approx(interval.high - interval.mean)
    assert (interval.n, interval.level) == (3, 0.95)


def test_mean_t_interval_per_point_along_the_seed_axis() -> None:
    samples = np.array([[1.0, 10.0], [3.0, 10.0]])
    interval = stats.mean_t_interval(samples, axis=0)
    np.testing.assert_allclose(interval.mean, [2.0, 10.0])
    np.testing.assert_allclose(interval.low[1], 10.0)  # no spread, no width
    assert interval.low[0] < 2.0 < interval.high[0]


def test_mean_t_interval_coverage() -> None:
    # 2000 normal samples of size 5: coverage of the exact t interval is 0.95 with binomial
    # sd 0.005, so +-0.02 is a 4-sd band.
    rng = np.random.default_rng(11)
    draws = rng.normal(loc=1.0, size=(2000, 5))
    interval = stats.mean_t_interval(draws, axis=1)
    coverage = np.mean((interval.low <= 1.0) & (interval.high >= 1.0))
    assert abs(coverage - 0.95) <= 0.02


@pytest.mark.parametrize("samples", [[1.0], np.ones((1, 3)), 2.0])
def test_mean_t_interval_needs_two_replicates(samples: object) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_t_interval(samples)


def test_inverse_law_fit_known_answer() -> None:
    # y_s(x) = 2/x + 0.5 + e_s: a seed offset moves c only, so a = 2 in every replicate.
    offsets = np.array([[-0.1], [0.0], [0.2], [0.3]])
    n = np.array([4.0, 8.0, 16.0, 64.0])
    fit = stats.fit_inverse_plus_constant(n, 2.0 / n + 0.5 + offsets, rng=3, n_boot=100)
    assert fit.a == pytest.approx(2.0, abs=1e-10)
    assert fit.a_ci == pytest.approx((2.0, 2.0), abs=1e-10)
    assert fit.c == pytest.approx(0.5 + offsets.mean(), abs=1e-10)
    assert fit.c_ci[0] <= fit.c <= fit.c_ci[1]


def test_inverse_law_fit_rejects_non_positive_x() -> None:
    with pytest.raises(ValueError, match="positive"):
        stats.fit_inverse_plus_constant([0.0, 1.0], np.ones((2, 2)), rng=0)
