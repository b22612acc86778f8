"""Small statistics for the notebooks' checks: slopes, means and their confidence intervals.

Primer
------
Every experiment is repeated over independent seeds, so a measured curve is an array
``y_by_seed`` of shape (n_seeds, n_points) sampled at positions ``x`` (n_points,). The checks
compare a summary of that array with a pre-registered expectation, and the summary needs an
uncertainty:

- a *rate* such as E dist^2 ~ t^slope is the least-squares slope of log(mean_seeds y) against
  log x; its confidence interval is a percentile bootstrap over seeds (whole seeds are resampled
  with replacement, so the dependence along each curve is kept);
- a *level* such as a floor is the mean over seeds with a Student-t interval,
  mean +- t_{(1+level)/2, n-1} s / sqrt(n);
- a *floor against N* such as floor(N) = a / N + c is a least-squares fit on the seed-mean with
  bootstrap intervals for a and c.
- a *late geometric rate* of one exact, decaying curve such as d(t) is
  (d(t2) / d(t1))^(1 / (t2 - t1)) over the window where the curve has fallen below ``high`` but is
  still above ``low`` (above round-off); no seeds, no interval.
- a *paired comparison* of two methods run on the same seeds is the geometric mean of the
  per-seed ratios with a Student-t interval on the log scale (common random numbers cancel);
- an *excess* of one group of runs over another (e.g. Markov over i.i.d. floors) is the
  difference of the seed means, its log-log slope bootstrapped by resampling both groups.
- *constant-step estimators*: the tail (Polyak-Ruppert) average of the iterates over t >= start
  removes the variance of the floor but not the O(alpha) Markovian bias; the Richardson-Romberg
  combination 2 theta_bar(alpha) - theta_bar(2 alpha) of two runs at steps alpha and 2 alpha
  removes the bias's linear term, leaving O(alpha^2).
- over *several problem instances* (the hard regimes), measurements come as
  ``y`` (n_instances, n_seeds, n_points). The instance is the unit of replication: each
  instance's statistic (its seed-mean, the slope or crossing of its seed-mean curve) is computed
  first, and the interval is a Student-t interval over those K statistics,
  mean +- t_{(1+level)/2, K-1} s / sqrt(K). Each instance's statistic carries its own seed noise,
  so the interval covers the spread between instances and the noise within them, and for
  normal statistics its coverage is exact even for K = 5 (a percentile bootstrap over 5
  instances covers only about 85%: its variance uses the divisor K and the normal quantile).
  Seeds need not be independent across instances (seed s may share B_0 in every instance): only
  the instances are.

Everything that resamples takes ``rng`` and is deterministic given it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

from ptdlib._validation import (
    FloatArray,
    IntArray,
    RngLike,
    as_float_array,
    check_in_range,
    check_positive_int,
)

__all__ = [
    "CrossingTime",
    "DecayRate",
    "InverseLawFit",
    "MeanInterval",
    "ProportionInterval",
    "SlopeFit",
    "bootstrap_crossing_time",
    "bootstrap_linear_slope",
    "bootstrap_loglog_slope",
    "bootstrap_loglog_slope_of_excess",
    "crossing_point",
    "crossing_time_over_instances",
    "first_passage_times",
    "fit_inverse_plus_constant",
    "fraction_increasing",
    "geometric_decay_rate",
    "loglog_slope",
    "loglog_slope_over_instances",
    "mean_over_instances",
    "mean_t_interval",
    "paired_ratio_interval",
    "paired_ratio_over_instances",
    "polyak_ruppert_average",
    "proportion_interval",
    "richardson_romberg",
    "tail_mean",
]


@dataclass(frozen=True)
class SlopeFit:
    """Log-log least-squares fit ``log y = intercept + slope log x`` with its CI.

    The CI is a bootstrap over seeds (``n_boot`` replicates) or, with ``n_boot = 0``, a
    Student-t interval over problem instances (`loglog_slope_over_instances`).
    """

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    level: float
    n_boot: int

    @property
    def ci(self) -> tuple[float, float]:
        """The confidence interval of the slope as ``(low, high)``."""
        return (self.ci_low, self.ci_high)


@dataclass(frozen=True)
class MeanInterval:
    """Mean over seeds with a Student-t interval (floats, or arrays for per-point curves)."""

    mean: float | FloatArray
    low: float | FloatArray
    high: float | FloatArray
    sem: float | FloatArray
    n: int
    level: float


@dataclass(frozen=True)
class InverseLawFit:
    """Fit ``y = a / x + c`` of the seed-mean, with bootstrap CIs over seeds for ``a`` and ``c``."""

    a: float
    c: float
    a_ci: tuple[float, float]
    c_ci: tuple[float, float]
    level: float
    n_boot: int


def _curves(x: ArrayLike, y_by_seed: ArrayLike, *, positive: bool) -> tuple[FloatArray, FloatArray]:
    """Validate ``x`` (n_points,) and ``y_by_seed`` (n_seeds, n_points) with n_seeds >= 2."""
    x_arr = as_float_array(x, "x", ndim=1)
    y_arr = as_float_array(y_by_seed, "y_by_seed", ndim=2)
    if y_arr.shape[1] != x_arr.shape[0] or x_arr.shape[0] < 2:
        raise ValueError(f"y_by_seed must be (n_seeds, n_points) with n_points = len(x) >= 2; "
                         f"got x {x_arr.shape}, y_by_seed {y_arr.shape}")
    if y_arr.shape[0] < 2:
        raise ValueError(f"y_by_seed needs at least 2 seeds to bootstrap; got {y_arr.shape[0]}")
    if positive and (np.any(x_arr <= 0) or np.any(y_arr <= 0)):
        raise ValueError("x and y_by_seed must be positive for a log-log fit; got min x = "
                         f"{x_arr.min():.3g}, min y = {y_arr.min():.3g}")
    return x_arr, y_arr


def _percentile_ci(samples: FloatArray, level: float) -> tuple[float, float]:
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return (float(low), float(high))


def _check_bootstrap(n_boot: int, level: float) -> tuple[int, float]:
    """Validate the bootstrap's replicate count (>= 10) and confidence level in (0, 1)."""
    return (check_positive_int(n_boot, "n_boot", minimum=10),
            check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True))


def _bootstrap_means(y_by_seed: FloatArray, n_boot: int, gen: np.random.Generator) -> FloatArray:
    """(n_boot, n_points) seed means of bootstrap replicates, each drawing seeds with replacement.

    Resampling whole seeds keeps the dependence along each curve.
    """
    n_seeds = y_by_seed.shape[0]
    picks = gen.integers(0, n_seeds, size=(n_boot, n_seeds))
    return y_by_seed[picks].mean(axis=1)


def _ols_slope(u: FloatArray, v: FloatArray) -> FloatArray:
    """Least-squares slope of v on u, for a curve v (n_points,) or each row of (n, n_points).

    slope = sum_k (u_k - mean u) v_k / sum_k (u_k - mean u)^2.
    """
    u_c = u - u.mean()
    return v @ u_c / (u_c @ u_c)


def _as_numeric(values: ArrayLike, name: str) -> FloatArray:
    """``values`` as a float array, NaN and inf kept (the caller decides), or a ValueError."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array; got {type(values).__name__}") from exc


def loglog_slope(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of log y against log x.

    Parameters
    ----------
    x, y : (n_points,)
        Positive values, n_points >= 2 with at least two distinct x.

    Notes
    -----
    slope = sum_k (u_k - mean u)(v_k - mean v) / sum_k (u_k - mean u)^2, u = log x, v = log y.
    """
    u = np.log(as_float_array(x, "x", ndim=1))
    v_arr = as_float_array(y, "y", ndim=1)
    if v_arr.shape != u.shape or np.any(v_arr <= 0) or np.ptp(u) == 0:
        raise ValueError(f"x and y must be positive, of equal length, with two distinct x; got "
                         f"x {u.shape}, y {v_arr.shape}")
    v = np.log(v_arr)
    slope = float(_ols_slope(u, v))
    return slope, float(v.mean() - slope * u.mean())


def bootstrap_loglog_slope(x: ArrayLike, y_by_seed: ArrayLike, rng: RngLike, *,
                           n_boot: int = 2000, level: float = 0.95) -> SlopeFit:
    """Log-log slope of the seed-mean curve with a percentile bootstrap CI over seeds.

    Parameters
    ----------
    x : (n_points,)
        Positive positions (time, number of agents, ...).
    y_by_seed : (n_seeds, n_points)
        Positive measurements, one row per seed; n_seeds >= 2.
    rng : int, SeedSequence, Generator or None
        Randomness of the resampling.
    n_boot : int
        Number of bootstrap replicates.
    level : float in (0, 1)
        Confidence level of the percentile interval.

    Notes
    -----
    Replicate b: seeds S_b drawn with replacement; slope_b = OLS slope of log mean_{S_b} y on log x.
    """
    x_arr, y_arr = _curves(x, y_by_seed, positive=True)
    n_boot, level = _check_bootstrap(n_boot, level)
    slope, intercept = loglog_slope(x_arr, y_arr.mean(axis=0))
    means = _bootstrap_means(y_arr, n_boot, np.random.default_rng(rng))
    low, high = _percentile_ci(_ols_slope(np.log(x_arr), np.log(means)), level)
    return SlopeFit(slope, intercept, low, high, level, n_boot)


def _nested(y: ArrayLike, *, positive: bool) -> FloatArray:
    """Validate ``y`` (n_instances, n_seeds, n_points): finite, >= 2 instances, >= 1 seed."""
    arr = as_float_array(y, "y", ndim=3)
    if arr.shape[0] < 2 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise ValueError("y must be (n_instances, n_seeds, n_points) with at least 2 instances; "
                         f"got {arr.shape}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"y must be positive; got min {arr.min():.3g}")
    return arr


def _t_over_instances(values: FloatArray, level: float) -> tuple[float, float, float]:
    """(mean, low, high) of the Student-t interval over the first axis (K instances)."""
    interval = mean_t_interval(values, level=level)
    return float(interval.mean), float(interval.low), float(interval.high)


def mean_over_instances(y: ArrayLike, *, level: float = 0.95) -> MeanInterval:
    """Grand mean per point, with a Student-t interval over the instances' seed-means.

    Parameters
    ----------
    y : (n_instances, n_seeds, n_points)
        Measurements: problem instance, seed, point; at least 2 instances.
    level : float in (0, 1)
        Confidence level.

    Returns
    -------
    MeanInterval
        Arrays over the points; ``n`` is the number of instances (the unit of replication).

    Notes
    -----
    m_k = mean_s y[k, s]; mean_k m_k +- t_{(1+level)/2, K-1} sd_k(m_k) / sqrt(K) (module docstring).
    """
    arr = _nested(y, positive=False)
    return mean_t_interval(arr.mean(axis=1), level=level)


def loglog_slope_over_instances(x: ArrayLike, y: ArrayLike, *,
                                level: float = 0.95) -> SlopeFit:
    """Log-log slope of each instance's seed-mean curve; their mean with a t interval.

    Parameters
    ----------
    x : (n_points,)
        Positive positions (number of agents, time, ...), at least 2 distinct.
    y : (n_instances, n_seeds, n_points)
        Positive measurements; at least 2 instances.
    level : float in (0, 1)
        Confidence level.

    Returns
    -------
    SlopeFit
        slope and intercept: means over the instances' least-squares fits of log mean_s y[k, s]
        on log x; the CI is the t interval over the K slopes; ``n_boot`` is 0 (no resampling).

    Notes
    -----
    b_k = OLS slope of log mean_s y[k, s] on log x; mean_k b_k +- t_{(1+level)/2, K-1} sd(b_k) /
    sqrt(K).
    """
    x_arr = as_float_array(x, "x", ndim=1)
    arr = _nested(y, positive=True)
    if arr.shape[2] != x_arr.shape[0] or np.any(x_arr <= 0) or np.ptp(x_arr) == 0:
        raise ValueError(f"x must be positive, with two distinct values and len(x) = n_points; "
                         f"got x {x_arr.shape}, y {arr.shape}")
    level = check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    fits = np.array([loglog_slope(x_arr, curve) for curve in arr.mean(axis=1)])
    slope, low, high = _t_over_instances(fits[:, 0], level)
    return SlopeFit(slope, float(fits[:, 1].mean()), low, high, level, 0)


def crossing_time_over_instances(t: ArrayLike, y: ArrayLike, threshold: float, *,
                                 level: float = 0.95) -> CrossingTime:
    """First time each instance's seed-mean curve falls to ``threshold``; geometric mean and a
    t interval on the log scale.

    Parameters
    ----------
    t : (n_points,)
        Increasing, positive record times.
    y : (n_instances, n_seeds, n_points)
        Positive decaying curves; at least 2 instances.
    threshold : float
        The level eps > 0.
    level : float in (0, 1)
        Confidence level.

    Returns
    -------
    CrossingTime
        time = exp(mean_k log t_k) and the interval exp(mean +- t quantile x sd / sqrt(K)) of
        the instances' crossing times t_k (log-log interpolation, as `bootstrap_crossing_time`);
        NaN with an infinite interval if some instance's curve never falls to eps within t.
    """
    t_arr = as_float_array(t, "t", ndim=1)
    arr = _nested(y, positive=True)
    if arr.shape[2] != t_arr.shape[0] or np.any(t_arr <= 0) or np.any(np.diff(t_arr) <= 0):
        raise ValueError(f"t must be positive and increasing with len(t) = n_points; got t "
                         f"{t_arr.shape}, y {arr.shape}")
    threshold = check_in_range(threshold, "threshold", 0.0, np.inf, low_open=True,
                               high_open=True)
    level = check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    times = _first_crossing(np.log(t_arr), np.log(arr.mean(axis=1)), float(np.log(threshold)))
    if np.isnan(times).any():
        return CrossingTime(float("nan"), float("nan"), float("inf"), level, 0)
    center, low, high = _t_over_instances(np.log(times), level)
    return CrossingTime(float(np.exp(center)), float(np.exp(low)), float(np.exp(high)), level, 0)


def mean_t_interval(samples: ArrayLike, *, level: float = 0.95, axis: int = 0) -> MeanInterval:
    """Mean along ``axis`` (the seeds) with a two-sided Student-t confidence interval.

    Parameters
    ----------
    samples : (n_seeds,) or (n_seeds, n_points)
        Independent replicates along ``axis``; at least 2.
    level : float in (0, 1)
        Confidence level.
    axis : int
        The seed axis.

    Notes
    -----
    mean +- t_{(1 + level)/2, n - 1} * s / sqrt(n), s the sample standard deviation (ddof = 1).
    """
    arr = as_float_array(samples, "samples")
    level = check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    if arr.ndim == 0 or arr.shape[axis] < 2:
        raise ValueError(f"samples needs at least 2 replicates along axis {axis}; got shape "
                         f"{arr.shape}")
    n = arr.shape[axis]
    mean = arr.mean(axis=axis)
    sem = arr.std(axis=axis, ddof=1) / np.sqrt(n)
    half = float(scipy_stats.t.ppf((1 + level) / 2, df=n - 1)) * sem
    if np.ndim(mean) == 0:
        return MeanInterval(float(mean), float(mean - half), float(mean + half), float(sem), n,
                            level)
    return MeanInterval(mean, mean - half, mean + half, sem, n, level)


def fit_inverse_plus_constant(x: ArrayLike, y_by_seed: ArrayLike, rng: RngLike, *,
                              n_boot: int = 2000, level: float = 0.95) -> InverseLawFit:
    """Fit ``y = a / x + c`` to the seed-mean (e.g. a floor against N) with bootstrap CIs.

    Parameters
    ----------
    x : (n_points,)
        Positive positions with at least two distinct values.
    y_by_seed : (n_seeds, n_points)
        Measurements, one row per seed; n_seeds >= 2.
    rng : int, SeedSequence, Generator or None
        Randomness of the resampling.
    n_boot, level :
        Bootstrap replicates and confidence level of the percentile intervals.

    Notes
    -----
    (a, c) = argmin sum_k (mean_seeds y_k - a / x_k - c)^2; replicates resample whole seeds.
    """
    x_arr, y_arr = _curves(x, y_by_seed, positive=False)
    if np.any(x_arr <= 0) or np.ptp(x_arr) == 0:
        raise ValueError(f"x must be positive with two distinct values; got {x_arr.tolist()}")
    n_boot, level = _check_bootstrap(n_boot, level)
    design = np.column_stack([1.0 / x_arr, np.ones_like(x_arr)])
    pinv = np.linalg.pinv(design)  # (2, n_points): one linear map serves every replicate
    a, c = pinv @ y_arr.mean(axis=0)
    coefs = _bootstrap_means(y_arr, n_boot, np.random.default_rng(rng)) @ pinv.T  # (n_boot, 2)
    return InverseLawFit(float(a), float(c), _percentile_ci(coefs[:, 0], level),
                         _percentile_ci(coefs[:, 1], level), level, n_boot)


@dataclass(frozen=True)
class DecayRate:
    """Late geometric rate of a curve over the window ``[t_start, t_end]`` (indices)."""

    rate: float
    t_start: int
    t_end: int

    @property
    def n_steps(self) -> int:
        """Length t_end - t_start of the window."""
        return self.t_end - self.t_start


def geometric_decay_rate(curve: ArrayLike, *, high: float = 1e-3,
                         low: float = 1e-11) -> DecayRate:
    """Late geometric decay rate of a curve y(0), y(1), ... over the window between two levels.

    Parameters
    ----------
    curve : (n_points,)
        Non-negative values indexed by t = 0..n_points-1, e.g. d(t) = max_s TV(P^t(s, .), mu).
    high : float
        The window starts at the first t with y(t) <= high (late: past the transient).
    low : float
        The window ends at the last t with y(t) >= low (above round-off), 0 < low < high.

    Returns
    -------
    DecayRate
        rate = (y(t_end) / y(t_start))^(1 / (t_end - t_start)).

    Notes
    -----
    rate = (y(t2) / y(t1))^(1 / (t2 - t1)), t1 = min{t : y(t) <= high}, t2 = max{t : y(t) >= low}.
    For y(t) = C rho^t (1 + o(1)) the rate tends to rho as the window moves right and widens.
    """
    y = as_float_array(curve, "curve", ndim=1)
    low = check_in_range(low, "low", 0.0, np.inf, low_open=True, high_open=True)
    high = check_in_range(high, "high", low, np.inf, low_open=True, high_open=True)
    if np.any(y < 0):
        raise ValueError(f"curve must be non-negative; got min {y.min():.3g}")
    below_high = np.flatnonzero(y <= high)
    above_low = np.flatnonzero(y >= low)
    if below_high.size == 0 or above_low.size == 0 or above_low[-1] <= below_high[0]:
        raise ValueError(f"curve has no window between high={high:g} and low={low:g} (needs "
                         f"y(t1) <= high and y(t2) >= low with t2 > t1); got range "
                         f"[{y.min():.3g}, {y.max():.3g}] over {y.size} points: extend the curve "
                         f"or move the levels")
    t1, t2 = int(below_high[0]), int(above_low[-1])
    return DecayRate(float((y[t2] / y[t1]) ** (1 / (t2 - t1))), t1, t2)


def bootstrap_linear_slope(x: ArrayLike, y_by_seed: ArrayLike, rng: RngLike, *,
                           n_boot: int = 2000, level: float = 0.95) -> SlopeFit:
    """Least-squares slope of the seed-mean curve on linear axes, with a bootstrap CI over seeds.

    Parameters
    ----------
    x : (n_points,)
        Positions (e.g. heterogeneity levels), at least two distinct.
    y_by_seed : (n_seeds, n_points)
        Measurements, one row per seed; n_seeds >= 2.
    rng : int, SeedSequence, Generator or None
        Randomness of the resampling.
    n_boot : int
        Number of bootstrap replicates.
    level : float in (0, 1)
        Confidence level of the percentile interval.

    Returns
    -------
    SlopeFit
        The same record as the log-log fit, here for ``y = intercept + slope x``.

    Notes
    -----
    Replicate b: seeds S_b drawn with replacement; slope_b = OLS slope of mean_{S_b} y on x.
    """
    x_arr, y_arr = _curves(x, y_by_seed, positive=False)
    if np.ptp(x_arr) == 0:
        raise ValueError(f"x must have two distinct values; got {x_arr.tolist()}")
    n_boot, level = _check_bootstrap(n_boot, level)
    mean = y_arr.mean(axis=0)
    slope = float(_ols_slope(x_arr, mean))
    means = _bootstrap_means(y_arr, n_boot, np.random.default_rng(rng))
    low, high = _percentile_ci(_ols_slope(x_arr, means), level)
    return SlopeFit(slope, float(mean.mean() - slope * x_arr.mean()), low, high, level, n_boot)


def first_passage_times(t: ArrayLike, y_by_seed: ArrayLike, threshold: float) -> FloatArray:
    """First time each seed's curve falls to ``threshold`` or below (NaN where it never does).

    Parameters
    ----------
    t : (n_points,)
        Increasing times of the records (e.g. ``Trace.record_steps``).
    y_by_seed : (n_seeds, n_points)
        One curve per seed, e.g. dist(B_t, B*)^2; NaN entries (records after a divergence)
        never count as below.
    threshold : float
        The level to reach, finite.

    Returns
    -------
    (n_seeds,) float
        tau_s = t_k for the first record k with y_s(t_k) <= threshold, NaN if there is none.

    Notes
    -----
    tau_s = min{t_k : y_s(t_k) <= threshold}; the answer is only as fine as the records.
    """
    t_arr = as_float_array(t, "t", ndim=1)
    raw = _as_numeric(y_by_seed, "y_by_seed")
    # NaN marks records after a divergence: allowed (NaN <= threshold is False); inf is not.
    y_arr = as_float_array(np.where(np.isnan(raw), 0.0, raw), "y_by_seed", ndim=2)
    y_arr[np.isnan(raw)] = np.nan
    if y_arr.shape[1] != t_arr.shape[0] or t_arr.shape[0] < 1 or np.any(np.diff(t_arr) <= 0):
        raise ValueError(f"t must be increasing and y_by_seed (n_seeds, len(t)); got t "
                         f"{t_arr.shape}, y_by_seed {y_arr.shape}")
    threshold = check_in_range(threshold, "threshold", -np.inf, np.inf, low_open=True,
                               high_open=True)
    below = y_arr <= threshold
    first = np.argmax(below, axis=1)
    return np.where(below.any(axis=1), t_arr[first], np.nan)


def fraction_increasing(y_by_seed: ArrayLike, *, floor: float = 0.0) -> float:
    """Fraction of consecutive records at which a curve goes up, over all seeds.

    Parameters
    ----------
    y_by_seed : (n_seeds, n_points)
        Curves (e.g. dist(B_t, B*) at every iteration); NaN records are skipped.
    floor : float, optional
        Steps where either value is <= floor are not counted (e.g. round-off level).

    Returns
    -------
    float
        #{(s, k) : y[s, k+1] > y[s, k]} / #{counted steps}; NaN if no step is counted.

    Notes
    -----
    A curve that contracts at every step has fraction 0.
    """
    y = _as_numeric(y_by_seed, "y_by_seed")
    if y.ndim != 2 or y.shape[1] < 2:
        raise ValueError(f"y_by_seed must be (n_seeds, n_points) with n_points >= 2; got shape "
                         f"{y.shape}")
    before, after = y[:, :-1], y[:, 1:]
    with np.errstate(invalid="ignore"):
        counted = np.isfinite(before) & np.isfinite(after) & (before > floor) & (after > floor)
        up = counted & (after > before)
    return float(up.sum() / counted.sum()) if counted.any() else float("nan")


@dataclass(frozen=True)
class ProportionInterval:
    """A proportion k / n with its Wilson score interval (arrays for several proportions)."""

    p: float | FloatArray
    low: float | FloatArray
    high: float | FloatArray
    n: int | IntArray
    level: float


def proportion_interval(successes: ArrayLike, trials: ArrayLike, *,
                        level: float = 0.95) -> ProportionInterval:
    """Proportion with a Wilson score interval (e.g. the fraction of seeds that diverged).

    Parameters
    ----------
    successes : int or array_like of int
        Counts k, 0 <= k <= n.
    trials : int or array_like of int
        Counts n >= 1 (broadcast against ``successes``).
    level : float in (0, 1)
        Confidence level.

    Notes
    -----
    (p + z^2/(2n) +- z sqrt(p (1 - p)/n + z^2/(4 n^2))) / (1 + z^2/n), p = k/n,
    z = Phi^-1((1 + level)/2). Unlike the Wald interval it stays inside [0, 1] and is not
    degenerate at k = 0 or k = n.

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
    JASA 22(158); Brown, Cai & DasGupta (2001). Interval estimation for a binomial proportion.
    Statist. Sci. 16(2).
    """
    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))
    if not (np.issubdtype(k.dtype, np.integer) and np.issubdtype(n.dtype, np.integer)) \
            or np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"successes and trials must be integers with 0 <= successes <= trials "
                         f"and trials >= 1; got {successes!r}, {trials!r}")
    level = check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    z = float(scipy_stats.norm.ppf((1 + level) / 2))
    p = k / n
    center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low, high = np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)
    if p.ndim == 0:
        return ProportionInterval(float(p), float(low), float(high), int(n), level)
    return ProportionInterval(p, low, high, n, level)


def crossing_point(x: ArrayLike, y: ArrayLike, level: float, *, log_x: bool = True) -> float:
    """Where an increasing-in-x curve first reaches ``level``, interpolated between records.

    Parameters
    ----------
    x : (n_points,)
        Increasing positions (positive if ``log_x``).
    y : (n_points,)
        Values (e.g. the fraction of diverged seeds at each step size).
    level : float
        The level (e.g. 0.5).
    log_x : bool, optional
        Interpolate linearly in log x (default) or in x.

    Returns
    -------
    float
        x[0] if y[0] >= level; NaN if y never reaches level; else the interpolated point
        between the last record below and the first at or above.

    Notes
    -----
    k = min{k : y_k >= level}; u = u_{k-1} + (level - y_{k-1}) (u_k - u_{k-1}) / (y_k - y_{k-1}),
    u = log x (or x).
    """
    x_arr = as_float_array(x, "x", ndim=1)
    y_arr = as_float_array(y, "y", ndim=1)
    if y_arr.shape != x_arr.shape or x_arr.size < 1 or np.any(np.diff(x_arr) <= 0) \
            or (log_x and np.any(x_arr <= 0)):
        raise ValueError(f"x must be increasing (and positive for log_x) with y of the same "
                         f"length; got x {x_arr.shape}, y {y_arr.shape}")
    reached = np.flatnonzero(y_arr >= level)
    if reached.size == 0:
        return float("nan")
    k = int(reached[0])
    if k == 0:
        return float(x_arr[0])
    u = np.log(x_arr) if log_x else x_arr
    value = u[k - 1] + (level - y_arr[k - 1]) * (u[k] - u[k - 1]) / (y_arr[k] - y_arr[k - 1])
    return float(np.exp(value) if log_x else value)


def tail_mean(x: ArrayLike, y_by_seed: ArrayLike, start: float) -> FloatArray:
    """Per-seed mean of a recorded curve over its tail x >= start (a constant-step floor).

    Parameters
    ----------
    x : (n_points,)
        Record positions (e.g. ``Trace.record_steps``).
    y_by_seed : (n_seeds, n_points)
        One curve per seed; NaN (records after a divergence) propagates to that seed's mean.
    start : float
        First position of the tail; at least one x must be >= start.

    Returns
    -------
    (n_seeds,) ndarray

    Notes
    -----
    floor_k = mean_{j : x_j >= start} y_k(x_j).
    """
    x_arr = as_float_array(x, "x", ndim=1)
    y_arr = np.asarray(y_by_seed, dtype=np.float64)
    if y_arr.ndim != 2 or y_arr.shape[1] != x_arr.shape[0]:
        raise ValueError(f"y_by_seed must be (n_seeds, len(x)); got x {x_arr.shape}, y_by_seed "
                         f"{y_arr.shape}")
    tail = x_arr >= start
    if not np.any(tail):
        raise ValueError(f"start must be <= max(x) = {x_arr.max():g} (an empty tail); got {start}")
    return y_arr[:, tail].mean(axis=1)


def polyak_ruppert_average(t: ArrayLike, iterates: ArrayLike, start: float) -> FloatArray:
    """Tail (Polyak-Ruppert) average of recorded iterates: their mean over t >= start.

    Parameters
    ----------
    t : (n_points,)
        Iteration of each recorded iterate (e.g. 0, 1, ..., T, or record times).
    iterates : (n_points, ...)
        The iterates theta_t, time first (any trailing shape: (d,), (N, d), ...).
    start : float
        First iteration of the tail; at least one t must be >= start.

    Returns
    -------
    (...) ndarray
        theta_bar = (1 / |{t >= start}|) sum_{t >= start} theta_t. Recorded at every
        iteration, this is the running average ``simulate.run(..., average_from=start)`` keeps
        (`ptdlib.simulate`); recorded sparsely, a subsample of it.

    Notes
    -----
    theta_bar = mean_{t >= start} theta_t. With a constant step it converges to the stationary
    mean E theta_infinity, so it keeps the Markovian bias while its variance falls like 1 / T.

    References
    ----------
    Polyak, B. T. & Juditsky, A. B. (1992), Acceleration of stochastic approximation by
    averaging, SIAM J. Control Optim. 30(4), 838-855; Ruppert, D. (1988), Efficient estimators
    from a slowly convergent Robbins-Monro process, Tech. Rep. 781, Cornell University.
    """
    t_arr = as_float_array(t, "t", ndim=1)
    theta = as_float_array(iterates, "iterates")
    if theta.ndim < 1 or theta.shape[0] != t_arr.shape[0]:
        raise ValueError(f"iterates must be (len(t), ...) with time first; got t {t_arr.shape}, "
                         f"iterates {theta.shape}")
    tail = t_arr >= start
    if not np.any(tail):
        raise ValueError(f"start must be <= max(t) = {t_arr.max():g} (an empty tail); got {start}")
    return theta[tail].mean(axis=0)


def richardson_romberg(theta_alpha: ArrayLike, theta_2alpha: ArrayLike) -> float | FloatArray:
    """Richardson-Romberg extrapolation of two constant-step estimates: 2 x(alpha) - x(2 alpha).

    Parameters
    ----------
    theta_alpha : float or array_like
        An estimate made with step alpha (e.g. a Polyak-Ruppert average, `polyak_ruppert_average`,
        or a stationary mean).
    theta_2alpha : float or array_like
        The same estimate made with step 2 alpha; same shape.

    Returns
    -------
    float or ndarray
        2 theta_alpha - theta_2alpha.

    Notes
    -----
    theta_RR = 2 theta_bar(alpha) - theta_bar(2 alpha). If E theta_bar(alpha) = theta* + c alpha
    + e alpha^2 + O(alpha^3), the combination has mean theta* - 2 e alpha^2 + O(alpha^3): the
    linear term of the bias cancels. Markovian linear SA with a constant step has such an
    expansion, so its O(alpha tau_mix) bias falls to O(alpha^2). The price is variance: for
    independent runs Var theta_RR = 4 Var theta_bar(alpha) + Var theta_bar(2 alpha).

    References
    ----------
    Huo, D., Chen, Y. & Xie, Q. (2023), Bias and extrapolation in Markovian linear stochastic
    approximation with constant stepsizes, Proc. ACM Meas. Anal. Comput. Syst. 7(1).
    """
    x = as_float_array(theta_alpha, "theta_alpha")
    y = as_float_array(theta_2alpha, "theta_2alpha")
    if x.shape != y.shape:
        raise ValueError(f"theta_alpha and theta_2alpha must have the same shape (one quantity "
                         f"estimated at steps alpha and 2 alpha); got {x.shape} and {y.shape}")
    combined = 2.0 * x - y
    return float(combined) if combined.ndim == 0 else combined


def paired_ratio_interval(numerator: ArrayLike, denominator: ArrayLike, *,
                          level: float = 0.95) -> MeanInterval:
    """Geometric-mean ratio of paired positive samples with a Student-t interval on the log scale.

    Parameters
    ----------
    numerator, denominator : (n_seeds,)
        Positive values paired by seed (the same random numbers, e.g. two algorithms run on the
        same sample paths); at least 2 seeds.
    level : float in (0, 1)
        Confidence level.

    Returns
    -------
    MeanInterval
        ``mean``, ``low``, ``high`` on the ratio scale (exp of the log-scale values), ``sem`` of
        the log ratio.

    Notes
    -----
    ratio = exp(mean_k log(a_k / b_k)), interval exp(mean +- t_{(1+level)/2, n-1} s / sqrt(n)).
    """
    a = as_float_array(numerator, "numerator", ndim=1)
    b = as_float_array(denominator, "denominator", ndim=1)
    # Each seed its own instance: the instance means are the seeds' log ratios.
    return paired_ratio_over_instances(a[:, None], b[:, None], level=level)


def paired_ratio_over_instances(numerator: ArrayLike, denominator: ArrayLike, *,
                                level: float = 0.95) -> MeanInterval:
    """Geometric-mean ratio of paired samples over problem instances, with a t interval.

    Parameters
    ----------
    numerator, denominator : (n_instances, n_seeds)
        Positive values paired by instance and seed (two methods on the same problems and the
        same sample paths); at least 2 instances.
    level : float in (0, 1)
        Confidence level.

    Returns
    -------
    MeanInterval
        On the ratio scale; ``n`` is the number of instances (the unit of replication) and
        ``sem`` that of the mean log ratio.

    Notes
    -----
    l_k = mean_s log(a_ks / b_ks) per instance; ratio = exp(mean_k l_k), interval
    exp(mean_k l_k +- t_{(1+level)/2, K-1} sd_k(l_k) / sqrt(K)) (module docstring).
    """
    a = as_float_array(numerator, "numerator", ndim=2)
    b = as_float_array(denominator, "denominator", ndim=2)
    if a.shape != b.shape or np.any(a <= 0) or np.any(b <= 0):
        raise ValueError(f"numerator and denominator must be positive and paired (equal shapes); "
                         f"got {a.shape} and {b.shape}")
    log_ratio = mean_over_instances(np.log(a / b)[:, :, None], level=level)
    return MeanInterval(float(np.exp(log_ratio.mean[0])), float(np.exp(log_ratio.low[0])),
                        float(np.exp(log_ratio.high[0])), float(log_ratio.sem[0]),
                        log_ratio.n, level)


def bootstrap_loglog_slope_of_excess(x: ArrayLike, y_by_seed: ArrayLike,
                                     baseline_by_seed: ArrayLike, rng: RngLike, *,
                                     n_boot: int = 2000, level: float = 0.95) -> SlopeFit:
    """Log-log slope of the excess mean(y) - mean(baseline) against x, with a bootstrap CI.

    Parameters
    ----------
    x : (n_points,)
        Positive positions (e.g. mixing times).
    y_by_seed, baseline_by_seed : (n_seeds, n_points) and (n_baseline_seeds, n_points)
        Two independent groups of runs (e.g. Markov and i.i.d. sampling), each >= 2 seeds.
    rng : int, SeedSequence, Generator or None
        Randomness of the resampling.
    n_boot : int
        Number of bootstrap replicates.
    level : float in (0, 1)
        Confidence level of the percentile interval.

    Returns
    -------
    SlopeFit
        NaN slope (and CI) when the excess of the seed means is not positive at every x: the
        log-log slope is then undefined. Replicates whose excess is not positive everywhere are
        left out of the interval; the interval is NaN if more than 1 - level of them are.

    Notes
    -----
    Replicate b: seeds of each group drawn with replacement, independently;
    slope_b = OLS slope of log(mean_{S_b} y - mean_{S'_b} baseline) on log x.
    """
    x_arr, y_arr = _curves(x, y_by_seed, positive=False)
    _, base = _curves(x_arr, baseline_by_seed, positive=False)
    if np.any(x_arr <= 0) or np.ptp(x_arr) == 0:
        raise ValueError(f"x must be positive with two distinct values; got {x_arr.tolist()}")
    n_boot, level = _check_bootstrap(n_boot, level)
    excess = y_arr.mean(axis=0) - base.mean(axis=0)
    if np.any(excess <= 0):
        return SlopeFit(np.nan, np.nan, np.nan, np.nan, level, n_boot)
    slope, intercept = loglog_slope(x_arr, excess)
    gen = np.random.default_rng(rng)
    means_y = _bootstrap_means(y_arr, n_boot, gen)  # drawn first: the order fixes the results
    replicates = means_y - _bootstrap_means(base, n_boot, gen)
    defined = np.all(replicates > 0, axis=1)
    if defined.mean() < level:
        return SlopeFit(slope, intercept, np.nan, np.nan, level, n_boot)
    low, high = _percentile_ci(_ols_slope(np.log(x_arr), np.log(replicates[defined])), level)
    return SlopeFit(slope, intercept, low, high, level, n_boot)


@dataclass(frozen=True)
class CrossingTime:
    """First time a mean curve falls to a level, with a CI: a bootstrap over seeds, or with
    ``n_boot = 0`` a t interval over instances (`crossing_time_over_instances`)."""

    time: float
    ci_low: float
    ci_high: float
    level: float
    n_boot: int

    @property
    def ci(self) -> tuple[float, float]:
        """The confidence interval as ``(low, high)`` (high is inf when replicates never cross)."""
        return (self.ci_low, self.ci_high)


def _first_crossing(log_t: FloatArray, log_y: FloatArray, log_level: float) -> FloatArray:
    """Per row of log_y (n_rows, n_points): log-log interpolated first t with y <= level."""
    below = log_y <= log_level
    k = np.argmax(below, axis=1)
    prev = np.maximum(k - 1, 0)
    rows = np.arange(log_y.shape[0])
    y0, y1 = log_y[rows, prev], log_y[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(k > 0, (y0 - log_level) / (y0 - y1), 0.0)
    times = np.exp(log_t[prev] + frac * (log_t[k] - log_t[prev]))
    return np.where(below.any(axis=1), times, np.nan)


def bootstrap_crossing_time(t: ArrayLike, y_by_seed: ArrayLike, threshold: float, rng: RngLike,
                            *, n_boot: int = 2000, level: float = 0.95) -> CrossingTime:
    """First time the seed-mean of decaying curves falls to ``threshold``, with a bootstrap CI.

    Parameters
    ----------
    t : (n_points,)
        Increasing, positive times of the records (drop a record at t = 0).
    y_by_seed : (n_seeds, n_points)
        Positive curves, one per seed (e.g. dist(B_t, B*)^2); n_seeds >= 2.
    threshold : float
        The level eps > 0.
    rng : int, SeedSequence, Generator or None
        Randomness of the resampling.
    n_boot : int
        Number of bootstrap replicates (whole seeds resampled with replacement).
    level : float in (0, 1)
        Confidence level of the percentile interval.

    Returns
    -------
    CrossingTime
        time = t_eps of the seed mean (NaN if it never falls to eps); the CI bounds are
        percentiles of the replicates, a replicate that never crosses counting as +inf.

    Notes
    -----
    k = min{k : ybar_k <= eps}; log t_eps = log t_{k-1} + (log ybar_{k-1} - log eps)
    (log t_k - log t_{k-1}) / (log ybar_{k-1} - log ybar_k) (exact for a power law between
    records); t_eps = t_0 when ybar_0 <= eps.
    """
    t_arr, y_arr = _curves(t, y_by_seed, positive=True)
    if np.any(np.diff(t_arr) <= 0):
        raise ValueError(f"t must be increasing; got {t_arr.tolist()[:5]}...")
    threshold = check_in_range(threshold, "threshold", 0.0, np.inf, low_open=True,
                               high_open=True)
    n_boot, level = _check_bootstrap(n_boot, level)
    n_seeds = y_arr.shape[0]
    gen = np.random.default_rng(rng)
    picks = gen.integers(0, n_seeds, size=(n_boot, n_seeds))
    # Resampling weights instead of fancy indexing: (n_boot, n_seeds) @ (n_seeds, n_points)
    # keeps the memory at n_boot x n_points.
    weights = np.zeros((n_boot, n_seeds))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_seeds), picks.ravel()), 1.0 / n_seeds)
    means = np.vstack([y_arr.mean(axis=0), weights @ y_arr])
    times = _first_crossing(np.log(t_arr), np.log(means), float(np.log(threshold)))
    replicates = np.where(np.isnan(times[1:]), np.inf, times[1:])
    with np.errstate(invalid="ignore"):  # interpolating between two infinite replicates
        bounds = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    low, high = np.where(np.isnan(bounds), np.inf, bounds)
    return CrossingTime(float(times[0]), float(low), float(high), level, n_boot)
