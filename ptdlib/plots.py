"""Figures for the notebooks: axes in, artists out; one deterministic ``save_figure``.

Primer
------
Every plot function takes the axes to draw on as its first argument ``ax``; when it is ``None``
a new pyplot figure is created (so notebooks display it), otherwise nothing but ``ax`` is
touched. The functions return the artists they drew (frozen dataclasses holding ``ax`` too) and
never call ``show`` or ``savefig``: saving goes through :func:`save_figure`, which fixes the
format (PNG), the resolution and strips the metadata that changes between runs, so re-running a
notebook rewrites byte-identical files. :func:`save_slide` saves a copy of a figure for a
projector: 16:9, fonts enlarged, the original left untouched.

Curves over seeds are arrays ``y_by_seed`` (n_seeds, n_points) drawn as the seed mean with a
Student-t band (``ptdlib.stats.mean_t_interval``); rates are drawn on log-log axes with the
fitted slope and its bootstrap CI in the legend (``ptdlib.stats.SlopeFit``).
"""

from __future__ import annotations

import itertools
import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.quiver import Quiver
from matplotlib.text import Text
from numpy.typing import ArrayLike

from ptdlib._validation import as_float_array, check_positive_int
from ptdlib.stats import (
    InverseLawFit,
    SlopeFit,
    loglog_slope,
    mean_t_interval,
    proportion_interval,
)

__all__ = [
    "DecayArtists",
    "DistributionArtists",
    "GridPolicyArtists",
    "InverseLawArtists",
    "LearningCurveArtists",
    "LogLogArtists",
    "MeanCIArtists",
    "ProportionArtists",
    "ReferenceArtists",
    "SpectralRadiusArtists",
    "StateValueArtists",
    "plot_against_reference",
    "plot_distributions",
    "plot_estimates_ci",
    "plot_grid_policy",
    "plot_inverse_law_fit",
    "plot_learning_curves",
    "plot_loglog_fit",
    "plot_mean_ci",
    "plot_points_ci",
    "plot_proportions",
    "plot_singular_values",
    "plot_spectral_radius",
    "plot_state_values",
    "plot_tv_decay",
    "plot_verdict_grid",
    "save_figure",
    "save_slide",
    "set_theme",
]

#: Resolution of every saved figure: sharp on screen, small enough to commit.
DPI = 150
#: A slide: 16:9 inches (a 1920 x 1080 image at 144 dpi), fonts this much larger.
SLIDE_INCHES = (1920 / 144, 1080 / 144)
SLIDE_DPI = 144
SLIDE_FONT_SCALE = 1.6


@dataclass(frozen=True)
class MeanCIArtists:
    """What :func:`plot_mean_ci` drew: the mean line and the confidence band."""

    ax: Axes
    line: Line2D
    band: PolyCollection


@dataclass(frozen=True)
class LogLogArtists:
    """What :func:`plot_loglog_fit` drew: points (with error bars), fitted and reference lines."""

    ax: Axes
    points: ErrorbarContainer
    fit_line: Line2D
    reference_line: Line2D | None


def set_theme(context: str = "notebook") -> None:
    """Apply the project's seaborn theme (white grid, colour-blind palette)."""
    sns.set_theme(context=context, style="whitegrid", palette="colorblind")


def _axes(ax: Axes | None) -> Axes:
    """``ax`` itself, or the axes of a new pyplot figure when it is None."""
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _curve(x: ArrayLike, y_by_seed: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x_arr = as_float_array(x, "x", ndim=1)
    y_arr = np.atleast_2d(as_float_array(y_by_seed, "y_by_seed"))
    if y_arr.ndim != 2 or y_arr.shape[1] != x_arr.shape[0]:
        raise ValueError(f"y_by_seed must be (n_seeds, len(x)) or (len(x),); got x {x_arr.shape},"
                         f" y_by_seed {np.shape(y_by_seed)}")
    return x_arr, y_arr


def _error_bars(center: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(2, n_points) ``yerr`` of ``Axes.errorbar``: how far low lies below and high above center."""
    return np.vstack([center - low, high - center])


def _loglog_points(ax: Axes, x: ArrayLike, y_by_seed: ArrayLike, label: str | None, level: float,
                   color: str | None) -> tuple[np.ndarray, np.ndarray, ErrorbarContainer]:
    """Seed means of positive curves as points, with t-interval bars when there are >= 2 seeds.

    Returns the validated x, the seed mean and the points drawn.
    """
    x_arr, y_arr = _curve(x, y_by_seed)
    if np.any(x_arr <= 0) or np.any(y_arr <= 0):
        raise ValueError("x and y_by_seed must be positive on log-log axes")
    if y_arr.shape[0] >= 2:
        interval = mean_t_interval(y_arr, level=level, axis=0)
        mean, yerr = interval.mean, _error_bars(interval.mean, interval.low, interval.high)
    else:
        mean, yerr = y_arr[0], None
    points = ax.errorbar(x_arr, mean, yerr=yerr, fmt="o", color=color, label=label, capsize=3)
    return x_arr, mean, points


def plot_mean_ci(ax: Axes | None, x: ArrayLike, y_by_seed: ArrayLike, label: str | None = None,
                 *, level: float = 0.95, color: str | None = None) -> MeanCIArtists:
    """Seed-mean curve with a Student-t confidence band.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x : (n_points,)
        Positions.
    y_by_seed : (n_seeds, n_points)
        One row per seed, n_seeds >= 2.
    label : str, optional
        Legend label of the mean line (the legend is refreshed when given).
    level : float
        Confidence level of the band.
    color : str, optional
        Colour of line and band; the axes' colour cycle by default.

    Notes
    -----
    band = mean +- t_{(1+level)/2, n-1} s / sqrt(n) at every x.
    """
    ax = _axes(ax)
    x_arr, y_arr = _curve(x, y_by_seed)
    interval = mean_t_interval(y_arr, level=level, axis=0)
    (line,) = ax.plot(x_arr, interval.mean, label=label, color=color)
    band = ax.fill_between(x_arr, interval.low, interval.high, color=line.get_color(), alpha=0.25,
                           linewidth=0)
    if label is not None:
        ax.legend()
    return MeanCIArtists(ax, line, band)


def _slope_label(fit: SlopeFit | None, slope: float) -> str:
    if fit is None:
        return f"fit: slope {slope:.2f}"
    return f"fit: slope {slope:.2f} [{100 * fit.level:.0f}% CI {fit.ci_low:.2f}, {fit.ci_high:.2f}]"


def plot_loglog_fit(ax: Axes | None, x: ArrayLike, y_by_seed: ArrayLike,
                    fit: SlopeFit | None = None, label: str | None = None, *,
                    reference_slope: float | None = None, level: float = 0.95,
                    color: str | None = None) -> LogLogArtists:
    """Log-log points (seed mean, t-interval bars) with the fitted power law and its CI.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x : (n_points,)
        Positive positions.
    y_by_seed : (n_seeds, n_points) or (n_points,)
        Positive values; with two or more seeds the points carry t-interval error bars.
    fit : SlopeFit, optional
        The fit to draw (from ``stats.bootstrap_loglog_slope``), its CI goes in the legend;
        without it the least-squares slope of the mean is drawn, without CI.
    label : str, optional
        Legend label of the points.
    reference_slope : float, optional
        Also draw the theoretical slope (dashed) through the first point.
    level : float
        Confidence level of the error bars.
    color : str, optional
        Colour of points and fit.

    Notes
    -----
    fit line: y = exp(intercept) x^slope over [min x, max x].
    """
    ax = _axes(ax)
    x_arr, mean, points = _loglog_points(ax, x, y_by_seed, label, level, color)
    slope, intercept = (fit.slope, fit.intercept) if fit else loglog_slope(x_arr, mean)
    ends = np.array([x_arr.min(), x_arr.max()])
    (fit_line,) = ax.plot(ends, np.exp(intercept) * ends**slope, "-",
                          color=points.lines[0].get_color(), label=_slope_label(fit, slope))
    reference_line = None
    if reference_slope is not None:
        (reference_line,) = ax.plot(ends, mean[0] * (ends / x_arr[0]) ** reference_slope, "--",
                                    color="0.4", label=f"theory: slope {reference_slope:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    return LogLogArtists(ax, points, fit_line, reference_line)


def save_figure(fig: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` as PNG at ``path`` so that equal figures give byte-identical files.

    The PNG carries no software/date metadata; the file is written next to its target and
    renamed into place, so a reader never sees half a figure. The figure stays open.
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (figures are PNG); got {str(path)!r}")
    dpi = check_positive_int(dpi, "dpi")
    return _write_png(fig, target, dpi=dpi, bbox_inches="tight")


def _write_png(fig: Figure, target: Path, **savefig: object) -> Path:
    """``fig.savefig`` into a temporary file beside ``target``, renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", facecolor="white", metadata={"Software": None}, **savefig)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_slide(fig: Figure, path: str | Path, *, font_scale: float = SLIDE_FONT_SCALE) -> Path:
    """Save a 16:9 copy of ``fig`` with every font ``font_scale`` times larger, for slides.

    The copy is laid out again (constrained layout) at :data:`SLIDE_INCHES` and written at
    :data:`SLIDE_DPI` without cropping, so every slide has the same pixel size; ``fig`` itself is
    not changed. Deterministic like :func:`save_figure`.
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (slides are PNG); got {str(path)!r}")
    if not font_scale > 0:
        raise ValueError(f"font_scale must be > 0; got {font_scale!r}")
    slide = pickle.loads(pickle.dumps(fig))
    slide.set_size_inches(*SLIDE_INCHES)
    ticks = [(ax, name, labels[0].get_fontsize()) for ax in slide.axes
             for name, labels in (("x", ax.xaxis.get_majorticklabels()),
                                  ("y", ax.yaxis.get_majorticklabels())) if labels]
    for text in slide.findobj(Text):
        text.set_fontsize(text.get_fontsize() * font_scale)
    for ax, name, size in ticks:  # tick labels are re-created at draw time from these parameters
        ax.tick_params(axis=name, which="both", labelsize=size * font_scale)
    slide.set_layout_engine("constrained")
    try:
        return _write_png(slide, target, dpi=SLIDE_DPI)
    finally:
        plt.close(slide)


@dataclass(frozen=True)
class DecayArtists:
    """What :func:`plot_tv_decay` drew: the curve, the rate line and the shaded window."""

    ax: Axes
    curve: Line2D
    rate_line: Line2D
    window: Artist | None


def plot_tv_decay(ax: Axes | None, curve: ArrayLike, rho: float, *,
                  window: tuple[int, int] | None = None, label: str | None = None,
                  color: str | None = None, rate_color: str = "0.2") -> DecayArtists:
    """A decaying curve d(t), t = 0, 1, ..., on a log scale with the slope rho^t overlaid.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    curve : (n_points,)
        Non-negative values; zeros are not drawn (log scale).
    rho : float in (0, 1)
        Rate of the dashed line d(anchor) rho^(t - anchor).
    window : (t_start, t_end), optional
        Shaded on the axes; the dashed line is anchored at t_start (else at t = 0).
    label : str, optional
        Legend label of the curve (the legend is refreshed when given).
    color : str, optional
        Colour of the curve and of the window.
    rate_color : str
        Colour of the dashed rate line (dark grey: it stays visible on top of the curve).

    Notes
    -----
    rate line: y(t) = d(t_a) rho^(t - t_a), drawn where it stays above 1/10 of the smallest
    positive value of the curve.
    """
    ax = _axes(ax)
    y = as_float_array(curve, "curve", ndim=1)
    if np.any(y < 0) or not 0 < rho < 1:
        raise ValueError(f"curve must be non-negative and rho in (0, 1); got min "
                         f"{y.min():.3g}, rho={rho!r}")
    t = np.arange(y.size)
    anchor = 0 if window is None else int(window[0])
    if y[anchor] <= 0:
        raise ValueError(f"curve must be positive at the anchor t = {anchor}")
    (line,) = ax.plot(t, np.where(y > 0, y, np.nan), label=label, color=color)
    floor = y[y > 0].min() / 10
    ref = y[anchor] * rho ** (t - anchor)
    (rate_line,) = ax.plot(t[ref >= floor], ref[ref >= floor], "--", color=rate_color,
                           linewidth=1, label=f"rho^t, rho = {rho:.4g}")
    span = None if window is None else ax.axvspan(window[0], window[1], color=line.get_color(),
                                                  alpha=0.12, linewidth=0)
    ax.set_yscale("log")
    if label is not None:
        ax.legend()
    return DecayArtists(ax, line, rate_line, span)


@dataclass(frozen=True)
class ReferenceArtists:
    """What :func:`plot_against_reference` drew: the series, the reference and the band."""

    ax: Axes
    points: Line2D
    reference_line: Line2D
    band: Artist | None


def plot_against_reference(ax: Axes | None, x: ArrayLike, y: ArrayLike, reference: float, *,
                           label: str | None = None, reference_label: str | None = None,
                           band: tuple[float, float] | None = None, band_label: str | None = None,
                           color: str | None = None) -> ReferenceArtists:
    """A measured series y(x) next to the constant it should approach, with an optional band.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x, y : (n_points,)
        The series (e.g. n and t_mix / n^2).
    reference : float
        Horizontal line (e.g. the theoretical limit).
    label, reference_label, band_label : str, optional
        Legend labels; the legend is refreshed when any is given.
    band : (low, high), optional
        Shaded horizontal band (e.g. a pre-registered tolerance or rigorous window).
    color : str, optional
        Colour of the series.
    """
    ax = _axes(ax)
    x_arr = as_float_array(x, "x", ndim=1)
    y_arr = as_float_array(y, "y", ndim=1)
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"x and y must have the same length; got {x_arr.shape} and "
                         f"{y_arr.shape}")
    (points,) = ax.plot(x_arr, y_arr, "o-", color=color, label=label)
    reference_line = ax.axhline(float(reference), color="0.3", linestyle="--", linewidth=1,
                                label=reference_label)
    span = None
    if band is not None:
        low, high = (float(b) for b in band)
        if not low <= high:
            raise ValueError(f"band must be (low, high) with low <= high; got {band!r}")
        span = ax.axhspan(low, high, color="0.5", alpha=0.15, linewidth=0, label=band_label)
    if any(text is not None for text in (label, reference_label, band_label)):
        ax.legend()
    return ReferenceArtists(ax, points, reference_line, span)


def plot_singular_values(ax: Axes | None, sigma: ArrayLike, label: str | None = None, *,
                         color: str | None = None) -> Line2D:
    """Normalised singular values sigma_k / sigma_1 against k = 1, 2, ... on a log scale.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    sigma : (n_values,)
        Non-negative, sigma[0] > 0 the largest; exact zeros are not drawn (log scale).
    label : str, optional
        Legend label (the legend is refreshed when given).
    color : str, optional
        Line colour.
    """
    ax = _axes(ax)
    values = as_float_array(sigma, "sigma", ndim=1)
    if values.size == 0 or np.any(values < 0) or values[0] <= 0 or values.max() > values[0]:
        raise ValueError("sigma must be non-negative with sigma[0] > 0 the largest value")
    ratio = values / values[0]
    (line,) = ax.plot(np.arange(1, values.size + 1), np.where(ratio > 0, ratio, np.nan), "o-",
                      color=color, label=label, markersize=4)
    ax.set_yscale("log")
    if label is not None:
        ax.legend()
    return line


@dataclass(frozen=True)
class DistributionArtists:
    """What :func:`plot_distributions` drew: one box and one strip of points per group."""

    ax: Axes
    boxes: dict[str, list[Artist]]
    points: tuple[PathCollection, ...]


def plot_distributions(ax: Axes | None, samples: Mapping[str, ArrayLike], *,
                       log: bool = False) -> DistributionArtists:
    """Box plots with every value drawn as a point, one group per key, in the mapping's order.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    samples : mapping name -> (n_values,)
        One non-empty group of values per tick.
    log : bool
        Log-scale value axis (all values must then be positive).

    Notes
    -----
    Points are spread horizontally by a deterministic low-discrepancy offset (golden-ratio
    sequence over the sorted values), so redrawing gives the same picture.
    """
    ax = _axes(ax)
    groups = [as_float_array(v, f"samples[{k!r}]", ndim=1) for k, v in samples.items()]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("samples must hold at least one group, each non-empty")
    if log and any(np.any(g <= 0) for g in groups):
        raise ValueError("log=True needs positive values in every group")
    boxes = ax.boxplot(groups, positions=np.arange(len(groups)), widths=0.5, showfliers=False)
    points = []
    for i, g in enumerate(groups):
        offsets = (((np.arange(g.size) * 0.6180339887498949) % 1.0) - 0.5) * 0.35
        points.append(ax.scatter(i + offsets, np.sort(g), s=10, alpha=0.6, zorder=3))
    ax.set_xticks(np.arange(len(groups)), list(samples))
    if log:
        ax.set_yscale("log")
    return DistributionArtists(ax, boxes, tuple(points))


@dataclass(frozen=True)
class StateValueArtists:
    """What :func:`plot_state_values` drew: one line per value vector and the state marker."""

    ax: Axes
    lines: dict[str, Line2D]
    marker: Line2D | None


def plot_state_values(ax: Axes | None, values: Mapping[str, ArrayLike], *,
                      marked_state: int | None = None, marked_label: str | None = None,
                      styles: Mapping[str, Mapping[str, object]] | None = None
                      ) -> StateValueArtists:
    """Value vectors v(s) = phi(s)^T theta drawn over the states s = 0, ..., n - 1.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    values : mapping label -> (n_states,)
        One vector per line (e.g. predictions before and after a step, the target), all of the
        same length; the legend lists the labels in the mapping's order.
    marked_state : int, optional
        A state to mark with a vertical dotted line (e.g. the state s_t the step visited).
    marked_label : str, optional
        Legend label of that line.
    styles : mapping label -> keyword arguments of ``Axes.plot``, optional
        Per-line style overrides (``linestyle``, ``marker``, ``color``, ...).
    """
    ax = _axes(ax)
    vectors = {label: as_float_array(v, f"values[{label!r}]", ndim=1)
               for label, v in values.items()}
    sizes = {v.size for v in vectors.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"values must hold at least one non-empty vector, all of one length; "
                         f"got lengths {[v.size for v in vectors.values()]}")
    n_states = sizes.pop()
    if marked_state is not None and not 0 <= marked_state < n_states:
        raise ValueError(f"marked_state must lie in [0, {n_states}); got {marked_state!r}")
    styles = styles or {}
    states = np.arange(n_states)
    lines = {}
    for label, v in vectors.items():
        style = {"marker": "o", "markersize": 4, **styles.get(label, {})}
        (lines[label],) = ax.plot(states, v, label=label, **style)
    marker = None
    if marked_state is not None:
        marker = ax.axvline(marked_state, color="0.4", linestyle=":", linewidth=1.2,
                            label=marked_label)
    ax.set_xticks(states)
    ax.set_xlabel("state s")
    ax.legend()
    return StateValueArtists(ax, lines, marker)


@dataclass(frozen=True)
class SpectralRadiusArtists:
    """What :func:`plot_spectral_radius` drew: curves, the level 1, thresholds and points."""

    ax: Axes
    curves: dict[str, Line2D]
    unit_line: Line2D
    threshold_lines: dict[str, Line2D]
    points: dict[str, Line2D]


def plot_spectral_radius(ax: Axes | None, alpha: ArrayLike, radius: Mapping[str, ArrayLike],
                         thresholds: Mapping[str, float], *,
                         points: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None,
                         styles: Mapping[str, Mapping[str, object]] | None = None
                         ) -> SpectralRadiusArtists:
    """Spectral radius of an iteration's Jacobian against the step size, thresholds marked.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    alpha : (n_points,)
        Step sizes, the x axis.
    radius : mapping label -> (n_points,)
        Spectral radii rho(alpha) (e.g. of the whole map and of one block), one curve each.
    thresholds : mapping label -> float
        Step sizes drawn as vertical dashed lines (e.g. the critical step sizes where a curve
        crosses 1); the label is shown with the value.
    points : mapping label -> ((n,), (n,)), optional
        Extra (alpha, rho) markers without lines (e.g. from a numerical Jacobian), in black,
        one marker symbol per entry (x, +, ^, v, then again).
    styles : mapping label -> keyword arguments of ``Axes.plot``, optional
        Per-curve style overrides (``linewidth``, ``alpha``, ``zorder``, ...).

    Notes
    -----
    The iteration x <- F(x) is locally stable at a fixed point iff rho(DF) < 1; the horizontal
    line marks rho = 1.
    """
    ax = _axes(ax)
    x = as_float_array(alpha, "alpha", ndim=1)
    curves = {}
    for label, y in radius.items():
        y_arr = as_float_array(y, f"radius[{label!r}]", ndim=1)
        if y_arr.shape != x.shape:
            raise ValueError(f"radius[{label!r}] must have the shape of alpha {x.shape}; got "
                             f"{y_arr.shape}")
        (curves[label],) = ax.plot(x, y_arr, label=label, **(styles or {}).get(label, {}))
    unit_line = ax.axhline(1.0, color="0.2", linewidth=1)
    palette = sns.color_palette("dark", max(len(thresholds), 1))
    threshold_lines = {}
    for (label, value), color in zip(thresholds.items(), palette, strict=False):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"thresholds[{label!r}] must be finite; got {value!r}")
        threshold_lines[label] = ax.axvline(value, color=color, linestyle="--", linewidth=1,
                                            label=f"{label} = {value:.4g}")
    marks = {}
    for (label, (px, py)), symbol in zip((points or {}).items(), itertools.cycle("x+^v"),
                                         strict=False):
        px_arr = as_float_array(px, f"points[{label!r}] alpha", ndim=1)
        py_arr = as_float_array(py, f"points[{label!r}] radius", ndim=1)
        if px_arr.shape != py_arr.shape:
            raise ValueError(f"points[{label!r}] must pair equal-length arrays; got "
                             f"{px_arr.shape} and {py_arr.shape}")
        (marks[label],) = ax.plot(px_arr, py_arr, symbol, color="0.1", label=label)
    ax.set_xlabel("step size alpha")
    ax.set_ylabel("spectral radius")
    ax.legend()
    return SpectralRadiusArtists(ax, curves, unit_line, threshold_lines, marks)


@dataclass(frozen=True)
class LearningCurveArtists:
    """What :func:`plot_learning_curves` drew: one mean line and band per curve, the reference."""

    ax: Axes
    curves: dict[str, MeanCIArtists]
    reference_line: Line2D | None


def plot_learning_curves(ax: Axes | None, x: ArrayLike, curves: Mapping[str, ArrayLike], *,
                         reference: float | None = None, reference_label: str | None = None,
                         level: float = 0.95) -> LearningCurveArtists:
    """Several seed-mean curves with Student-t bands on shared x, and a dashed reference level.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x : (n_points,)
        Positions shared by every curve (e.g. training steps).
    curves : mapping label -> (n_seeds, n_points)
        One array per curve (e.g. per learner), n_seeds >= 2; drawn in the mapping's order
        with the axes' colour cycle and labelled by its key.
    reference : float, optional
        Horizontal dashed line (e.g. the optimum: gap 0, or the optimal average reward).
    reference_label : str, optional
        Legend label of the reference line.
    level : float
        Confidence level of the bands.

    Notes
    -----
    band = mean +- t_{(1+level)/2, n-1} s / sqrt(n) at every x, per curve (see plot_mean_ci).
    """
    ax = _axes(ax)
    if not curves:
        raise ValueError("curves must hold at least one (n_seeds, n_points) array")
    drawn = {label: plot_mean_ci(ax, x, y, label, level=level) for label, y in curves.items()}
    reference_line = None
    if reference is not None:
        reference_line = ax.axhline(float(reference), color="0.2", linestyle="--", linewidth=1,
                                    label=reference_label)
        ax.legend()
    return LearningCurveArtists(ax, drawn, reference_line)


def plot_points_ci(ax: Axes | None, x: ArrayLike, y_by_seed: ArrayLike,
                   label: str | None = None, *, level: float = 0.95,
                   color: str | None = None) -> ErrorbarContainer:
    """Seed means at a few positions joined by a line, with Student-t error bars.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x : (n_points,)
        Positions (e.g. N or a heterogeneity level); set a log scale on ``ax`` if needed.
    y_by_seed : (n_seeds, n_points)
        One row per seed, n_seeds >= 2.
    label : str, optional
        Legend label (the legend is refreshed when given).
    level : float
        Confidence level of the error bars.
    color : str, optional
        Colour of points, line and bars.

    Notes
    -----
    bar = mean +- t_{(1+level)/2, n-1} s / sqrt(n) at every x.
    """
    ax = _axes(ax)
    x_arr, y_arr = _curve(x, y_by_seed)
    interval = mean_t_interval(y_arr, level=level, axis=0)
    yerr = _error_bars(interval.mean, interval.low, interval.high)
    points = ax.errorbar(x_arr, interval.mean, yerr=yerr, fmt="o-", color=color, label=label,
                         capsize=3, markersize=5)
    if label is not None:
        ax.legend()
    return points


@dataclass(frozen=True)
class GridPolicyArtists:
    """What :func:`plot_grid_policy` drew: the arrows, the goal marker and the cell shading."""

    ax: Axes
    arrows: Quiver
    goal: PathCollection
    image: AxesImage | None


def plot_grid_policy(ax: Axes | None, d_row: ArrayLike, d_col: ArrayLike,
                     goal: tuple[int, int], *, values: ArrayLike | None = None,
                     cmap: str = "viridis", color: str = "black") -> GridPolicyArtists:
    """A gridworld policy: one arrow per cell, the goal marked, optional shading of the cells.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    d_row, d_col : (height, width)
        Arrow components per cell as (row offset, column offset), e.g. from
        ``mdp.GridLayout.arrows``; NaN leaves a cell without an arrow (the goal).
    goal : (row, column)
        Goal cell, drawn as a star.
    values : (height, width), optional
        Cell shading (e.g. the optimal bias h*(s)); None draws plain cells.
    cmap : str
        Colour map of the shading.
    color : str
        Colour of the arrows.

    Notes
    -----
    Row 0 is drawn at the top (image orientation); an arrow with d_row = -1 points up.
    """
    ax = _axes(ax)
    # NaN is allowed here: it marks a cell without an arrow.
    dr, dc = np.asarray(d_row, dtype=np.float64), np.asarray(d_col, dtype=np.float64)
    if dr.ndim != 2 or dc.shape != dr.shape or np.any(np.isinf(dr)) or np.any(np.isinf(dc)):
        raise ValueError(f"d_row and d_col must have the same (height, width) shape, finite or "
                         f"NaN; got {dr.shape} and {dc.shape}")
    height, width = dr.shape
    row, col = (int(g) for g in goal)
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"goal must be a (row, column) inside the {height} x {width} grid; "
                         f"got {goal!r}")
    image = None
    if values is not None:
        shade = as_float_array(values, "values", ndim=2)
        if shade.shape != dr.shape:
            raise ValueError(f"values must have shape (height, width) = {dr.shape}; got "
                             f"{shade.shape}")
        image = ax.imshow(shade, cmap=cmap, origin="upper", alpha=0.6)
    rows, cols = np.mgrid[0:height, 0:width]
    # The y axis is inverted (row 0 on top), so a move up (d_row = -1) is +v on screen.
    arrows = ax.quiver(cols, rows, dc, -dr, color=color, pivot="middle", angles="xy",
                       scale_units="xy", scale=1.6, width=0.012)
    goal_marker = ax.scatter([col], [row], marker="*", s=260, color="gold", edgecolors="black",
                             zorder=3)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(-0.5, width, 1.0), labels=[])
    ax.set_yticks(np.arange(-0.5, height, 1.0), labels=[])
    ax.grid(True, color="0.6", linewidth=0.8)
    ax.tick_params(length=0)
    return GridPolicyArtists(ax, arrows, goal_marker, image)


@dataclass(frozen=True)
class InverseLawArtists:
    """What :func:`plot_inverse_law_fit` drew: points, the fit a/x + c and its two parts."""

    ax: Axes
    points: ErrorbarContainer
    fit_line: Line2D
    inverse_line: Line2D
    constant_line: Line2D | None


def plot_inverse_law_fit(ax: Axes | None, x: ArrayLike, y_by_seed: ArrayLike,
                         fit: InverseLawFit, label: str | None = None, *, level: float = 0.95,
                         color: str | None = None, n_grid: int = 100) -> InverseLawArtists:
    """Log-log points (seed mean, t-interval bars) with a fitted law y = a / x + c and its parts.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x : (n_points,)
        Positive positions (e.g. the number of agents N).
    y_by_seed : (n_seeds, n_points) or (n_points,)
        Positive values; with two or more seeds the points carry t-interval error bars.
    fit : InverseLawFit
        The fit to draw (from ``stats.fit_inverse_plus_constant``); a and c with their CIs go
        in the legend.
    label : str, optional
        Legend label of the points.
    level : float
        Confidence level of the error bars.
    color : str, optional
        Colour of points and fit.
    n_grid : int
        Points of the fitted curve, log-spaced over [min x, max x].

    Notes
    -----
    solid: y = a / x + c; dashed: the 1/x part a / x; dotted: the constant part c (drawn only
    when c > 0, as the axes are logarithmic).
    """
    ax = _axes(ax)
    n_grid = check_positive_int(n_grid, "n_grid", minimum=2)
    x_arr, _, points = _loglog_points(ax, x, y_by_seed, label, level, color)
    tint = points.lines[0].get_color()
    grid = np.geomspace(x_arr.min(), x_arr.max(), n_grid)
    ci = f"{100 * fit.level:.0f}% CI"
    (fit_line,) = ax.plot(grid, fit.a / grid + fit.c, "-", color=tint,
                          label=f"fit a/N + c: a = {fit.a:.3g} [{ci} {fit.a_ci[0]:.3g}, "
                                f"{fit.a_ci[1]:.3g}]")
    (inverse_line,) = ax.plot(grid, fit.a / grid, "--", color=tint, alpha=0.7, label="a/N part")
    constant_line = None
    if fit.c > 0:
        (constant_line,) = ax.plot(grid, np.full_like(grid, fit.c), ":", color=tint, alpha=0.9,
                                   label=f"c = {fit.c:.3g} [{ci} {fit.c_ci[0]:.3g}, "
                                         f"{fit.c_ci[1]:.3g}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    return InverseLawArtists(ax, points, fit_line, inverse_line, constant_line)


@dataclass(frozen=True)
class ProportionArtists:
    """What :func:`plot_proportions` drew: one error-bar curve per label, the reference line."""

    ax: Axes
    curves: dict[str, ErrorbarContainer]
    reference_line: Line2D | None


def plot_proportions(ax: Axes | None, x: ArrayLike, successes: Mapping[str, ArrayLike],
                     trials: int, *, level: float = 0.95, reference: float | None = None,
                     reference_label: str | None = None, dodge: float = 1.0) -> ProportionArtists:
    """Proportions k / n against x (e.g. the fraction of diverged seeds), with Wilson intervals.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x : (n_points,)
        Positions shared by every curve (e.g. alpha / alpha_crit); set a log scale if needed.
    successes : mapping label -> (n_points,) int
        Counts k at each x, one curve per label (e.g. per laziness level).
    trials : int
        n, the same for every point (e.g. the number of seeds).
    level : float
        Confidence level of the Wilson intervals.
    reference : float, optional
        A vertical dashed line (e.g. x = 1, the mean-path threshold).
    reference_label : str, optional
        Its legend label.
    dodge : float, optional
        Factor >= 1 that spreads the curves sideways so equal ones stay visible: curve k of m
        is drawn at x dodge^(k - (m - 1) / 2) (a constant shift on log axes); 1 draws all at x.

    Notes
    -----
    bar = Wilson score interval of k / n (``stats.proportion_interval``).
    """
    ax = _axes(ax)
    x_arr = as_float_array(x, "x", ndim=1)
    if not successes:
        raise ValueError("successes must hold at least one curve")
    if not (np.isfinite(dodge) and dodge >= 1):
        raise ValueError(f"dodge must be a finite factor >= 1; got {dodge!r}")
    curves = {}
    for index, (label, k) in enumerate(successes.items()):
        k_arr = np.asarray(k)
        if k_arr.shape != x_arr.shape:
            raise ValueError(f"successes[{label!r}] must have the shape of x {x_arr.shape}; got "
                             f"{k_arr.shape}")
        interval = proportion_interval(k_arr, trials, level=level)
        yerr = _error_bars(interval.p, interval.low, interval.high)
        shift = dodge ** (index - (len(successes) - 1) / 2)
        curves[label] = ax.errorbar(x_arr * shift, interval.p, yerr=yerr, fmt="o-", capsize=3,
                                    markersize=4, label=label)
    reference_line = None
    if reference is not None:
        reference_line = ax.axvline(float(reference), color="0.2", linestyle="--", linewidth=1,
                                    label=reference_label)
    ax.set_ylim(-0.03, 1.03)
    ax.legend()
    return ProportionArtists(ax, curves, reference_line)


def plot_estimates_ci(ax: Axes | None, x: ArrayLike, estimate: ArrayLike, low: ArrayLike,
                      high: ArrayLike, label: str | None = None, *,
                      color: str | None = None) -> ErrorbarContainer:
    """Point estimates with given (possibly asymmetric) confidence intervals, joined by a line.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    x, estimate, low, high : (n_points,)
        Positions, estimates and CI bounds (e.g. bootstrap percentiles); NaN estimates are
        left out, an infinite bound is drawn without its half-bar.
    label : str, optional
        Legend label (the legend is refreshed when given).
    color : str, optional
        Colour of points, line and bars.

    Notes
    -----
    bar from low to high around each estimate; set log scales on ``ax`` if needed.
    """
    ax = _axes(ax)
    x_arr = as_float_array(x, "x", ndim=1)
    values = [np.asarray(v, dtype=np.float64) for v in (estimate, low, high)]
    if any(v.shape != x_arr.shape for v in values):
        raise ValueError(f"estimate, low and high must have the shape of x {x_arr.shape}; got "
                         f"{[v.shape for v in values]}")
    est, lo, hi = values
    if np.any(lo > est) or np.any(hi < est):
        raise ValueError("need low <= estimate <= high at every point")
    shown = np.isfinite(est)
    bars = _error_bars(est, lo, hi)
    yerr = np.where(np.isfinite(bars), bars, 0.0)[:, shown]  # an infinite bound: no half-bar
    points = ax.errorbar(x_arr[shown], est[shown], yerr=yerr, fmt="o-", color=color, label=label,
                         capsize=3, markersize=5)
    if label is not None:
        ax.legend()
    return points


#: Cell colours of `plot_text_map`: FrozenLake's start, frozen, hole and goal, CliffWalking's
#: cliff and free cells; any other character is drawn on light grey.
MAP_COLORS = {"S": "#9bd39b", "F": "#dceefa", "H": "#1f3b5c", "G": "#f2c94c", "C": "#8c5a3c",
              ".": "#ffffff"}


def plot_text_map(ax: Axes | None, rows: Sequence[str]) -> Axes:
    """A map given as text rows (FrozenLake's "SFHG", CliffWalking's layout), one cell per
    character, coloured by `MAP_COLORS` and labelled with its character.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    rows : sequence of str
        Equal-length rows; row 0 is drawn at the top.
    """
    ax = _axes(ax)
    if not rows or any(len(row) != len(rows[0]) or not row for row in rows):
        raise ValueError(f"rows must be non-empty strings of equal length; got {list(rows)}")
    height, width = len(rows), len(rows[0])
    for r, row in enumerate(rows):
        for c, char in enumerate(row):
            color = MAP_COLORS.get(char, "#e6e6e6")
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=color, edgecolor="0.5"))
            dark = char in ("H", "C")
            ax.text(c, r, char, ha="center", va="center", fontsize="small",
                    color="white" if dark else "black")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


#: Cell colours of `plot_verdict_grid`, by status.
VERDICT_COLORS = {"pass": "#8fd19e", "known failure": "#f5c16c", "fail": "#e8837c",
                  "n/a": "#e6e6e6"}


def plot_verdict_grid(ax: Axes | None, status: Sequence[Sequence[str]],
                      values: Sequence[Sequence[str]], rows: Sequence[str],
                      columns: Sequence[str]) -> Axes:
    """A grid of verdicts (claims x settings): each cell coloured by its status and labelled
    with its measured value.

    Parameters
    ----------
    ax : Axes or None
        Where to draw; None creates a figure.
    status : (n_rows, n_columns) of str
        Each cell's status, a key of `VERDICT_COLORS` ("pass", "known failure", "fail", "n/a").
    values : (n_rows, n_columns) of str
        The text drawn in each cell (a measured value, or why it is not applicable).
    rows, columns : sequence of str
        Row and column labels (row 0 at the top).
    """
    ax = _axes(ax)
    shape = (len(rows), len(columns))
    if (np.shape(status) != shape or np.shape(values) != shape
            or any(s not in VERDICT_COLORS for line in status for s in line)):
        raise ValueError(f"status and values must be {shape} grids (rows x columns), status "
                         f"from {sorted(VERDICT_COLORS)}; got {np.shape(status)} and "
                         f"{np.shape(values)}")
    for r, c in itertools.product(range(shape[0]), range(shape[1])):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, edgecolor="white", linewidth=2,
                               facecolor=VERDICT_COLORS[status[r][c]]))
        ax.text(c, r, values[r][c], ha="center", va="center", fontsize="small")
    ax.set_xlim(-0.5, shape[1] - 0.5)
    ax.set_ylim(shape[0] - 0.5, -0.5)
    ax.set_xticks(range(shape[1]), columns, rotation=30, ha="right")
    ax.set_yticks(range(shape[0]), rows)
    ax.grid(False)
    ax.legend(handles=[Rectangle((0, 0), 1, 1, facecolor=color, label=name)
                       for name, color in VERDICT_COLORS.items()],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return ax
