"""Tests of ptdlib.stats: log-log slopes, bootstrap and t intervals, the a/x + c fit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

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
    ({"n_boot": 5}, r"^n_boot must be an integer >= 10; got 5$"),
    ({"level": 1.0}, r"^level must lie in \(0\.0, 1\.0\); got 1\.0$")])
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


def test_geometric_decay_rate_of_an_exact_geometric_curve() -> None:
    t = np.arange(80)
    fit = stats.geometric_decay_rate(0.7 * 0.6**t, high=1e-3, low=1e-11)
    # the window: first t with 0.7 * 0.6^t <= 1e-3 is 13, last with >= 1e-11 is 48
    assert (fit.t_start, fit.t_end, fit.n_steps) == (13, 48, 35)
    assert fit.rate == pytest.approx(0.6, rel=1e-12)


def test_geometric_decay_rate_ignores_the_transient_and_the_round_off_floor() -> None:
    t = np.arange(120)
    # a fast transient mode, then rate 0.8, then a round-off floor at 1e-16
    curve = np.maximum(0.5 * 0.8**t + 0.5 * 0.3**t, 1e-16)
    fit = stats.geometric_decay_rate(curve, high=1e-3, low=1e-11)
    assert curve[fit.t_start] <= 1e-3 < curve[fit.t_start - 1]
    assert curve[fit.t_end] >= 1e-11 > curve[fit.t_end + 1]
    assert fit.rate == pytest.approx(0.8, rel=1e-9)


@pytest.mark.parametrize(("curve", "kwargs", "match"), [
    (0.5**np.arange(10), {}, "no window"),
    (np.full(5, 0.5), {}, "no window"),
    (np.array([1.0, -0.1, 0.0]), {}, "non-negative"),
    (np.ones((2, 3)), {}, "1-dimensional"),
    (np.array([1.0, np.nan]), {}, "finite"),
    (0.5**np.arange(60), {"low": 0.0}, r"low must lie in \(0.0, inf\)"),
    (0.5**np.arange(60), {"high": 1e-12, "low": 1e-11}, "high must lie in"),
])
def test_geometric_decay_rate_rejects_bad_input(curve: np.ndarray, kwargs: dict,
                                                match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.geometric_decay_rate(curve, **kwargs)


def test_bootstrap_linear_slope_is_exact_when_seeds_differ_by_a_constant_shift() -> None:
    # Seeds y = 2 + 3 x + c_k: every resampled mean is the same line shifted, so the slope and
    # both ends of its interval are exactly 3.
    x = np.array([0.0, 0.25, 0.5, 1.0])
    y = 2.0 + 3.0 * x + np.array([[0.0], [0.4], [-0.2]])
    fit = stats.bootstrap_linear_slope(x, y, rng=0, n_boot=100)
    assert fit.slope == pytest.approx(3.0)
    assert fit.intercept == pytest.approx(2.0 + 0.2 / 3)
    assert fit.ci == pytest.approx((3.0, 3.0))
    again = stats.bootstrap_linear_slope(x, y, rng=0, n_boot=100)
    assert again == fit


def test_bootstrap_linear_slope_interval_covers_the_true_slope() -> None:
    # 10 noisy seeds around y = -x: the 95% percentile interval has width ~ 4 sd(slope), so
    # missing -1 here would be a 1-in-20 event at most; the seeded draw is fixed.
    gen = np.random.default_rng(3)
    x = np.linspace(0.0, 1.0, 5)
    y = -x + 0.1 * gen.standard_normal((10, 5))
    fit = stats.bootstrap_linear_slope(x, y, rng=1, n_boot=500)
    assert fit.ci_low < -1.0 < fit.ci_high
    assert fit.ci_low < fit.slope < fit.ci_high


@pytest.mark.parametrize(("x", "y", "match"), [
    (np.array([1.0, 1.0]), np.ones((3, 2)), "two distinct"),
    (np.array([0.0, 1.0]), np.ones((1, 2)), "at least 2 seeds"),
    (np.array([0.0, 1.0, 2.0]), np.ones((3, 2)), "n_points"),
])
def test_bootstrap_linear_slope_rejects_bad_input(x: np.ndarray, y: np.ndarray,
                                                  match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_linear_slope(x, y, rng=0)


def test_first_passage_times_known_answers() -> None:
    t = np.array([0.0, 10.0, 20.0, 30.0])
    y = np.array([[1.0, 0.5, 0.1, 0.4],      # reaches 0.3 at t = 20 (and leaves again)
                  [0.2, 0.5, 0.1, 0.1],      # already below at t = 0
                  [1.0, np.nan, 0.3, 0.0],   # NaN never counts; equal to the level counts
                  [1.0, 1.0, 1.0, 1.0]])     # never
    tau = stats.first_passage_times(t, y, 0.3)
    np.testing.assert_array_equal(tau, [20.0, 0.0, 20.0, np.nan])


def test_first_passage_times_is_monotone_in_the_threshold() -> None:
    gen = np.random.default_rng(0)
    t = np.arange(50.0)
    y = np.exp(-t / 10) * gen.uniform(0.5, 1.5, size=(6, 50))
    high, low = (stats.first_passage_times(t, y, level) for level in (0.2, 0.05))
    assert np.all(high <= low)


@pytest.mark.parametrize(("t", "y", "threshold", "match"), [
    (np.array([0.0, 1.0]), np.ones((2, 3)), 0.5, "increasing"),
    (np.array([1.0, 0.0]), np.ones((2, 2)), 0.5, "increasing"),
    (np.array([0.0, 1.0]), np.ones(2), 0.5, "2-dimensional"),
    (np.array([0.0, 1.0]), np.array([[1.0, np.inf]]), 0.5, "finite"),
    (np.array([0.0, 1.0]), np.ones((2, 2)), np.nan, "threshold"),
    (np.array([0.0, 1.0]), "ab", 0.5, "numeric"),
])
def test_first_passage_times_rejects_bad_input(t, y, threshold, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.first_passage_times(t, y, threshold)


# ------------------------------------------------------------------ fraction_increasing etc.

def test_fraction_increasing_known_answers() -> None:
    y = np.array([[3.0, 2.0, 2.5, 1.0, 1.5], [1.0, 0.5, 0.25, 0.125, 0.0625]])
    assert stats.fraction_increasing(y) == pytest.approx(2 / 8)
    assert stats.fraction_increasing(y[1:]) == 0.0  # a contracting curve never goes up
    # NaN records (after a divergence) and steps at or below the floor are not counted
    assert stats.fraction_increasing([[1.0, 2.0, np.nan, 3.0]]) == 1.0
    assert stats.fraction_increasing([[1.0, 0.5, 1e-20, 2e-20]], floor=1e-12) == 0.0
    assert math.isnan(stats.fraction_increasing([[1e-20, 2e-20]], floor=1e-12))


@pytest.mark.parametrize("y", [[1.0, 2.0], [[1.0]], "a"])
def test_fraction_increasing_rejects_bad_input(y) -> None:
    with pytest.raises(ValueError, match="y_by_seed"):
        stats.fraction_increasing(y)


def test_proportion_interval_wilson_known_answers() -> None:
    # Wilson (1927) 95%: 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634]; the same as scipy's
    # binomtest(...).proportion_ci(method="wilson").
    zero = stats.proportion_interval(0, 10)
    assert (zero.p, zero.low) == (0.0, 0.0) and zero.high == pytest.approx(0.2775, abs=1e-4)
    half = stats.proportion_interval(5, 10)
    assert (half.low, half.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    k = np.array([10, 3, 7])
    many = stats.proportion_interval(k, 10, level=0.9)
    for j, count in enumerate(k):
        ci = scipy_stats.binomtest(int(count), 10).proportion_ci(0.9, method="wilson")
        assert (many.low[j], many.high[j]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert many.p == pytest.approx([1.0, 0.3, 0.7]) and many.high[0] == pytest.approx(1.0)


def test_proportion_interval_covers_at_about_its_level() -> None:
    # 4000 binomial(20, 0.3) draws: Wilson's actual coverage at n = 20 is within 0.93-0.97
    # (Brown et al. 2001, Fig. 4); the binomial sampling error of 4000 draws is ~0.004.
    k = np.random.default_rng(5).binomial(20, 0.3, size=4000)
    interval = stats.proportion_interval(k, 20)
    coverage = np.mean((interval.low <= 0.3) & (interval.high >= 0.3))
    assert 0.92 <= coverage <= 0.98


@pytest.mark.parametrize(("k", "n"), [(3, 2), (-1, 5), (1, 0), (0.5, 2)])
def test_proportion_interval_rejects_bad_counts(k, n) -> None:
    with pytest.raises(ValueError, match="successes and trials"):
        stats.proportion_interval(k, n)


def test_crossing_point_interpolates_in_log_x() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert stats.crossing_point(x, [0.0, 0.0, 1.0, 1.0], 0.5) == pytest.approx(np.sqrt(8))
    assert stats.crossing_point(x, [0.0, 0.0, 1.0, 1.0], 0.5, log_x=False) == pytest.approx(3.0)
    assert stats.crossing_point(x, [0.6, 1.0, 1.0, 1.0], 0.5) == 1.0
    assert math.isnan(stats.crossing_point(x, [0.0, 0.1, 0.2, 0.4], 0.5))
    assert stats.crossing_point(x, [0.0, 0.5, 1.0, 1.0], 0.5) == 2.0


@pytest.mark.parametrize(("x", "y"), [([2.0, 1.0], [0.0, 1.0]), ([0.0, 1.0], [0.0, 1.0]),
                                      ([1.0, 2.0], [0.0])])
def test_crossing_point_rejects_bad_input(x, y) -> None:
    with pytest.raises(ValueError, match="increasing"):
        stats.crossing_point(x, y, 0.5)


def test_tail_mean_averages_the_records_from_start_on() -> None:
    x = np.array([0, 10, 20, 30, 40])
    y = np.array([[9.0, 9.0, 1.0, 2.0, 3.0], [9.0, 9.0, 4.0, np.nan, 4.0]])
    floors = stats.tail_mean(x, y, 20)
    assert floors[0] == pytest.approx(2.0)
    assert np.isnan(floors[1])  # a diverged seed stays visible
    assert stats.tail_mean(x, y, 40)[0] == pytest.approx(3.0)


@pytest.mark.parametrize(("x", "y", "start", "match"), [
    (np.arange(3), np.ones((2, 4)), 0, "n_seeds, len"),
    (np.arange(3), np.ones(3), 0, "n_seeds, len"),
    (np.arange(3), np.ones((2, 3)), 5, "empty tail"),
])
def test_tail_mean_rejects_bad_input(x, y, start, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.tail_mean(x, y, start)


def test_paired_ratio_interval_known_answer() -> None:
    # log ratios 0, log 2, log 4: geometric mean 2; t interval exp(log 2 +- t_{0.975,2} s/sqrt 3).
    a = np.array([1.0, 4.0, 12.0])
    b = np.array([1.0, 2.0, 3.0])
    interval = stats.paired_ratio_interval(a, b)
    log_r = np.log(a / b)
    half = scipy_stats.t.ppf(0.975, 2) * log_r.std(ddof=1) / np.sqrt(3)
    assert interval.mean == pytest.approx(2.0)
    assert interval.low == pytest.approx(2.0 * np.exp(-half))
    assert interval.high == pytest.approx(2.0 * np.exp(half))
    assert interval.n == 3
    # Pairing removes a common per-seed factor exactly: the interval collapses.
    scale = np.array([1.0, 10.0, 100.0])
    tight = stats.paired_ratio_interval(3.0 * scale, scale)
    assert (tight.low, tight.mean, tight.high) == pytest.approx((3.0, 3.0, 3.0))


@pytest.mark.parametrize(("a", "b", "match"), [
    (np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), "paired"),
    (np.array([1.0, -2.0]), np.array([1.0, 2.0]), "positive"),
    (np.array([1.0]), np.array([1.0]), "at least 2"),
])
def test_paired_ratio_interval_rejects_bad_input(a, b, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.paired_ratio_interval(a, b)


def test_paired_ratio_over_instances_known_answer() -> None:
    # Instance k's seeds give log ratios whose mean is l_k = log 2, log 4, log 8 (the seeds of an
    # instance are averaged first); the interval is a t interval over the 3 instance means.
    b = np.array([[1.0, 2.0], [1.0, 1.0], [3.0, 1.0]])
    a = b * np.array([[1.0, 4.0], [4.0, 4.0], [4.0, 16.0]])
    interval = stats.paired_ratio_over_instances(a, b)
    levels = np.log([2.0, 4.0, 8.0])
    half = scipy_stats.t.ppf(0.975, 2) * levels.std(ddof=1) / np.sqrt(3)
    assert interval.mean == pytest.approx(4.0)
    assert (interval.low, interval.high) == pytest.approx((4.0 * np.exp(-half), 4.0 * np.exp(half)))
    assert interval.n == 3
    # A per-(instance, seed) factor common to both methods cancels exactly.
    scale = np.array([[1.0, 7.0], [50.0, 0.1]])
    tight = stats.paired_ratio_over_instances(0.5 * scale, scale)
    assert (tight.low, tight.mean, tight.high) == pytest.approx((0.5, 0.5, 0.5))


@pytest.mark.parametrize(("a", "b", "match"), [
    (np.ones((2, 3)), np.ones((3, 2)), "paired"),
    (np.array([[1.0, 0.0], [1.0, 1.0]]), np.ones((2, 2)), "positive"),
    (np.ones(3), np.ones(3), "dimension"),
    (np.ones((1, 3)), np.ones((1, 3)), "at least 2"),
])
def test_paired_ratio_over_instances_rejects_bad_input(a, b, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.paired_ratio_over_instances(a, b)


def test_loglog_slope_of_excess_recovers_a_power_law_above_a_baseline() -> None:
    # Group means differ by exactly 0.01 x^2 (the seed offsets cancel in each full group), so the
    # slope is 2; the offsets (<= 0.002, vs an excess >= 0.04) move a resampled log excess by at
    # most ~0.1 at x = 2, hence a replicate slope by < 0.1 around 2.
    x = np.array([2.0, 4.0, 8.0, 16.0])
    baseline = 0.5 + np.array([[0.0], [0.001], [-0.001]]) + 0.0 * x
    y = 0.5 + 0.01 * x**2 + np.array([[0.0], [0.002], [-0.002], [0.0]])
    fit = stats.bootstrap_loglog_slope_of_excess(x, y, baseline, rng=0, n_boot=400)
    assert fit.slope == pytest.approx(2.0, abs=1e-12)
    assert fit.ci_low <= 2.0 <= fit.ci_high
    assert fit.ci_high - fit.ci_low < 0.2
    assert stats.bootstrap_loglog_slope_of_excess(x, y, baseline, rng=0, n_boot=400) == fit


def test_loglog_slope_of_excess_is_nan_where_the_excess_is_not_positive() -> None:
    x = np.array([1.0, 2.0, 4.0])
    baseline = np.ones((3, 3))
    y = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])  # no excess at x = 1
    fit = stats.bootstrap_loglog_slope_of_excess(x, y, baseline, rng=0, n_boot=50)
    assert np.isnan(fit.slope) and np.isnan(fit.ci_low) and np.isnan(fit.ci_high)
    # Positive point excess, but most replicates are not: slope defined, CI undefined.
    noisy = np.array([[0.0, 3.0, 4.0], [2.3, 3.0, 4.0]])
    fit = stats.bootstrap_loglog_slope_of_excess(x, noisy, baseline, rng=0, n_boot=200)
    assert np.isfinite(fit.slope) and np.isnan(fit.ci_low)


@pytest.mark.parametrize(("x", "y", "base", "match"), [
    (np.array([0.0, 1.0]), np.ones((2, 2)), np.zeros((2, 2)), "positive"),
    (np.array([1.0, 2.0]), np.ones((2, 2)), np.zeros((2, 3)), "n_points"),
    (np.array([1.0, 2.0]), np.ones((1, 2)), np.zeros((2, 2)), "at least 2 seeds"),
])
def test_loglog_slope_of_excess_rejects_bad_input(x, y, base, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_loglog_slope_of_excess(x, y, base, rng=0)


def test_bootstrap_crossing_time_interval_matches_the_exact_bootstrap_distribution() -> None:
    # Seeds y_s(t) = c_s / t: a resample of the seeds has mean curve (mean of its c) / t, and
    # log-log interpolation between records is exact for a power law, so that replicate crosses
    # eps at mean(c resampled) / eps. The bootstrap distribution is therefore known exactly:
    # the 5^5 equally likely ordered resamples of 5 seeds, enumerated here.
    t = np.array([10.0, 20.0, 40.0, 80.0, 160.0])
    c = np.array([1.0, 1.5, 2.5, 4.0, 7.0])
    eps, n_boot = 0.05, 20_000
    crossing = stats.bootstrap_crossing_time(t, c[:, None] / t, eps, rng=0, n_boot=n_boot)
    # the seed mean's crossing is the same closed form; only round-off separates them
    assert crossing.time == pytest.approx(c.mean() / eps, rel=1e-12)
    atoms = np.sort(np.array(list(itertools.product(c, repeat=c.size))).mean(axis=1) / eps)

    def quantile(u: float) -> float:  # exact: the least atom x with F(x) >= u
        return float(atoms[int(np.ceil(u * atoms.size)) - 1])

    # DKW (Massart 1990): sup |F_n - F| <= d except with probability 2 exp(-2 n d^2) = 1e-6, and
    # then every empirical u-quantile lies in [Q(u - d), Q(u + d)]; np.quantile interpolates
    # between order statistics whose levels are within 2 / n of u, hence the 2 / n.
    d = math.sqrt(math.log(2 / 1e-6) / (2 * n_boot)) + 2 / n_boot
    assert quantile(0.025 - d) <= crossing.ci_low <= quantile(0.025 + d)
    assert quantile(0.975 - d) <= crossing.ci_high <= quantile(0.975 + d)
    assert (crossing.level, crossing.n_boot) == (0.95, n_boot)
    assert stats.bootstrap_crossing_time(t, c[:, None] / t, eps, rng=0, n_boot=n_boot) == crossing


def test_bootstrap_crossing_time_interval_covers_at_its_level() -> None:
    # y_s(t) = c_s / t with c_s ~ N(2, 0.3^2): the true crossing time of the mean curve is
    # 2 / eps. The replicate crossing is linear in the resampled mean, so for normal data the
    # percentile interval is mean(c) / eps +- z_0.975 s_n / (sqrt(n) eps) (s_n with divisor n)
    # up to O(1/n) (Hall 1988), and its coverage is P(|T_{n-1}| <= z_0.975 sqrt((n-1)/n)),
    # 0.945 for n = 80 seeds.
    t = np.array([10.0, 20.0, 40.0, 80.0, 160.0])
    eps, n_seeds, experiments = 0.05, 80, 1000
    z = scipy_stats.norm.ppf(0.975)
    predicted = 2 * scipy_stats.t.cdf(z * math.sqrt((n_seeds - 1) / n_seeds), n_seeds - 1) - 1
    gen = np.random.default_rng(20260302)
    hits = 0
    for _ in range(experiments):
        c = gen.normal(2.0, 0.3, size=n_seeds)
        crossing = stats.bootstrap_crossing_time(t, c[:, None] / t, eps, rng=gen, n_boot=1000)
        hits += crossing.ci_low <= 2.0 / eps <= crossing.ci_high
    # binomial sd of the observed coverage: sqrt(0.945 * 0.055 / 1000) = 0.0072; 0.034 is 4 sd
    # plus 0.005 for the O(1/n) error of the normal-theory prediction at n = 80. A level of
    # 0.90 or 0.99 instead of 0.95 (coverage ~0.90 or ~0.99) would fail.
    assert abs(hits / experiments - predicted) <= 0.034


def test_bootstrap_crossing_time_edges() -> None:
    t = np.array([1.0, 2.0, 4.0])
    y = np.array([[0.5, 0.2, 0.1], [0.7, 0.4, 0.3]])
    assert stats.bootstrap_crossing_time(t, y, 0.9, rng=0, n_boot=50).time == 1.0  # at t_0
    never = stats.bootstrap_crossing_time(t, y, 0.01, rng=0, n_boot=50)
    assert math.isnan(never.time) and never.ci == (math.inf, math.inf)


@pytest.mark.parametrize(("t", "y", "threshold", "match"), [
    (np.array([0.0, 1.0]), np.ones((2, 2)), 0.5, "positive"),
    (np.array([2.0, 1.0]), np.ones((2, 2)), 0.5, "increasing"),
    (np.array([1.0, 2.0]), np.ones((1, 2)), 0.5, "at least 2 seeds"),
    (np.array([1.0, 2.0]), np.ones((2, 2)), 0.0, "threshold"),
])
def test_bootstrap_crossing_time_rejects_bad_input(t, y, threshold, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_crossing_time(t, y, threshold, rng=0)


# --------------------------------------------------------------------------- over instances

def test_slope_over_instances_of_exact_power_laws_is_exact_with_a_point_interval() -> None:
    # Instance k: y = c_k x^-1 for every seed (any c_k): every instance's slope is -1.
    x = np.array([16.0, 32.0, 64.0, 128.0])
    c = np.array([1.0, 3.0, 0.5])[:, None, None] * np.ones((3, 4, 1))
    fit = stats.loglog_slope_over_instances(x, c / x)
    assert fit.slope == pytest.approx(-1.0, abs=1e-12)
    assert fit.ci == pytest.approx((-1.0, -1.0), abs=1e-12) and fit.n_boot == 0


def test_slope_over_instances_is_the_mean_of_the_instances_seed_mean_slopes() -> None:
    # Instance slopes -0.8, -1.0, -1.2 (seed noise averages to the seed-mean curve first): the
    # estimate is their mean, the interval -1 +- t_{0.975, 2} sd / sqrt(3), sd = 0.2.
    x = np.array([1.0, 2.0, 4.0, 8.0])
    curves = np.array([x**-0.8, x**-1.0, x**-1.2])
    seeds = np.stack([curves * 0.5, curves * 1.5], axis=1)  # seed-mean = the curve
    fit = stats.loglog_slope_over_instances(x, seeds)
    half = scipy_stats.t.ppf(0.975, 2) * 0.2 / math.sqrt(3)
    assert fit.slope == pytest.approx(-1.0)
    assert fit.ci == pytest.approx((-1.0 - half, -1.0 + half))


def test_mean_over_instances_covers_at_its_level_with_five_instances() -> None:
    # Instance means m_k ~ N(5, 1), seeds m_k + N(0, 1), K = 5 as in the hard regimes. The
    # t interval over instance means is exact for normal data: coverage 0.95. (A percentile
    # bootstrap over the 5 instances would cover about 0.85: P(|T_4| <= 1.96 sqrt(4/5)).)
    gen = np.random.default_rng(11)
    hits, experiments = 0, 2000
    for _ in range(experiments):
        y = gen.normal(5.0, 1.0, size=(5, 1, 1)) + gen.standard_normal((5, 4, 1))
        ci = stats.mean_over_instances(y)
        hits += ci.low[0] <= 5.0 <= ci.high[0]
    # binomial sd at 0.95 over 2000 runs: 0.0049; 4 sd. A level of 0.90 would fail.
    assert abs(hits / experiments - 0.95) <= 0.02


def test_mean_over_instances_covers_the_spread_between_instances() -> None:
    # Seeds agree to 1e-3 within an instance, instances differ by sd 1: the interval's half
    # width is t_{0.975, 7} sd(instance means) / sqrt(8), not the seed noise.
    gen = np.random.default_rng(3)
    instance = gen.normal(10.0, 1.0, size=(8, 1, 1))
    y = instance + 1e-3 * gen.standard_normal((8, 6, 1))
    ci = stats.mean_over_instances(y)
    half = scipy_stats.t.ppf(0.975, 7) * y.mean(axis=1).std(ddof=1) / math.sqrt(8)
    assert float(ci.high[0] - ci.low[0]) == pytest.approx(2 * half)
    assert ci.n == 8 and ci.mean[0] == pytest.approx(y.mean())


def test_crossing_time_over_instances_of_inverse_curves() -> None:
    # Instance k: y = c_k / t, crossing of eps at c_k / eps exactly; geometric mean of them.
    t = np.array([10.0, 20.0, 40.0, 80.0, 160.0])
    c = np.array([1.0, 2.0, 4.0])[:, None, None] * np.ones((3, 2, 1))
    crossing = stats.crossing_time_over_instances(t, c / t, 0.05)
    assert crossing.time == pytest.approx(40.0)  # exp(mean log(20, 40, 80))
    half = scipy_stats.t.ppf(0.975, 2) * np.log(2.0) / math.sqrt(3)
    assert crossing.ci == pytest.approx((40.0 * math.exp(-half), 40.0 * math.exp(half)))
    never = stats.crossing_time_over_instances(t, c / t, 1e-4)
    assert math.isnan(never.time) and never.ci_high == math.inf


@pytest.mark.parametrize(("y", "match"), [
    (np.ones((1, 3, 2)), "at least 2 instances"),
    (np.ones((3, 3)), "3-dimensional|ndim|dimension"),
    (-np.ones((2, 2, 2)), "positive"),
])
def test_over_instances_bad_input(y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stats.loglog_slope_over_instances([1.0, 2.0], y)


# ------------------------------------------------------------------ constant-step estimators

def test_polyak_ruppert_average_is_the_mean_of_the_tail_iterates() -> None:
    t = np.arange(6)
    iterates = np.array([[0.0, 0.0], [9.0, 9.0], [1.0, 2.0], [3.0, 2.0], [2.0, 5.0], [2.0, 3.0]])
    # t >= 2: rows 2..5, mean ((1 + 3 + 2 + 2) / 4, (2 + 2 + 5 + 3) / 4) = (2, 3)
    np.testing.assert_array_equal(stats.polyak_ruppert_average(t, iterates, 2), [2.0, 3.0])
    np.testing.assert_array_equal(stats.polyak_ruppert_average(t, iterates, 5.0), [2.0, 3.0])
    stacked = np.stack([iterates, 2 * iterates], axis=1)  # (time, agents, d)
    np.testing.assert_array_equal(stats.polyak_ruppert_average(t, stacked, 2),
                                  [[2.0, 3.0], [4.0, 6.0]])


@pytest.mark.parametrize(("t", "iterates", "start", "match"), [
    (np.arange(3), np.zeros((4, 2)), 0, r"iterates must be \(len\(t\), \.\.\.\) with time first"),
    (np.arange(3), np.zeros(3), 5, r"start must be <= max\(t\) = 2 \(an empty tail\); got 5"),
    (np.arange(3), [1.0, np.nan, 0.0], 0, "iterates must be finite"),
])
def test_polyak_ruppert_average_rejects_bad_input(t, iterates, start, match) -> None:
    with pytest.raises(ValueError, match=match):
        stats.polyak_ruppert_average(t, iterates, start)


@pytest.mark.parametrize("alpha", [0.1, 0.01, 0.003])
def test_richardson_romberg_cancels_the_linear_term_of_the_bias(alpha: float) -> None:
    # x(alpha) = a + c alpha + e alpha^2 exactly: 2 x(alpha) - x(2 alpha) = a - 2 e alpha^2.
    a, c, e = np.array([1.0, -2.0, 0.5]), np.array([3.0, 0.7, -4.0]), np.array([0.2, -1.5, 2.0])

    def x(step: float) -> np.ndarray:
        return a + c * step + e * step**2

    combined = stats.richardson_romberg(x(alpha), x(2 * alpha))
    np.testing.assert_allclose(combined, a - 2 * e * alpha**2, rtol=0, atol=1e-14)
    assert stats.richardson_romberg(3.0, 5.0) == 1.0
    assert isinstance(stats.richardson_romberg(3.0, 5.0), float)


def test_richardson_romberg_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"^theta_alpha and theta_2alpha must have the same shape "
                                         r".*; got \(3,\) and \(2,\)$"):
        stats.richardson_romberg(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="theta_2alpha must be finite"):
        stats.richardson_romberg(np.zeros(2), [0.0, np.inf])
