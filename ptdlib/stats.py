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

Everything that resamples takes ``rng`` and is deterministic given it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

from ptdlib._validation import (
    FloatArray,
    RngLike,
    as_float_array,
    check_in_range,
    check_positive_int,
)

__all__ = [
    "InverseLawFit",
    "MeanInterval",
    "SlopeFit",
    "bootstrap_loglog_slope",
    "fit_inverse_plus_constant",
    "loglog_slope",
    "mean_t_interval",
]


@dataclass(frozen=True)
class SlopeFit:
    """Log-log least-squares fit ``log y = intercept + slope log x`` with a bootstrap CI."""

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
    u_c = u - u.mean()
    slope = float(u_c @ v / (u_c @ u_c))
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
    n_boot = check_positive_int(n_boot, "n_boot", minimum=10)
    level = check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    slope, intercept = loglog_slope(x_arr, y_arr.mean(axis=0))
    gen = np.random.default_rng(rng)
    picks = gen.integers(0, y_arr.shape[0], size=(n_boot, y_arr.shape[0]))
    log_means = np.log(y_arr[picks].mean(axis=1))  # (n_boot, n_points)
    u_c = np.log(x_arr) - np.log(x_arr).mean()
    slopes = log_means @ u_c / (u_c @ u_c)
    low, high = _percentile_ci(slopes, level)
    return SlopeFit(slope, intercept, low, high, level, n_boot)


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
    n_boot = check_positive_int(n_boot, "n_boot", minimum=10)
    level = check_in_range(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    design = np.column_stack([1.0 / x_arr, np.ones_like(x_arr)])
    pinv = np.linalg.pinv(design)  # (2, n_points): one linear map serves every replicate
    a, c = pinv @ y_arr.mean(axis=0)
    gen = np.random.default_rng(rng)
    picks = gen.integers(0, y_arr.shape[0], size=(n_boot, y_arr.shape[0]))
    coefs = y_arr[picks].mean(axis=1) @ pinv.T  # (n_boot, 2)
    return InverseLawFit(float(a), float(c), _percentile_ci(coefs[:, 0], level),
                         _percentile_ci(coefs[:, 1], level), level, n_boot)
