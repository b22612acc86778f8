"""Figures for the notebooks: axes in, artists out; one deterministic ``save_figure``.

Primer
------
Every plot function takes the axes to draw on as its first argument ``ax``; when it is ``None``
a new pyplot figure is created (so notebooks display it), otherwise nothing but ``ax`` is
touched. The functions return the artists they drew (frozen dataclasses holding ``ax`` too) and
never call ``show`` or ``savefig``: saving goes through :func:`save_figure`, which fixes the
format (PNG), the resolution and strips the metadata that changes between runs, so re-running a
notebook rewrites byte-identical files.

Curves over seeds are arrays ``y_by_seed`` (n_seeds, n_points) drawn as the seed mean with a
Student-t band (``ptdlib.stats.mean_t_interval``); rates are drawn on log-log axes with the
fitted slope and its bootstrap CI in the legend (``ptdlib.stats.SlopeFit``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from ptdlib._validation import as_float_array, check_positive_int
from ptdlib.stats import SlopeFit, loglog_slope, mean_t_interval

__all__ = [
    "LogLogArtists",
    "MeanCIArtists",
    "plot_loglog_fit",
    "plot_mean_ci",
    "save_figure",
    "set_theme",
]

#: Resolution of every saved figure: sharp on screen, small enough to commit.
DPI = 150


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
    x_arr, y_arr = _curve(x, y_by_seed)
    if np.any(x_arr <= 0) or np.any(y_arr <= 0):
        raise ValueError("x and y_by_seed must be positive on log-log axes")
    if y_arr.shape[0] >= 2:
        interval = mean_t_interval(y_arr, level=level, axis=0)
        mean, yerr = interval.mean, np.vstack([interval.mean - interval.low,
                                               interval.high - interval.mean])
    else:
        mean, yerr = y_arr[0], None
    points = ax.errorbar(x_arr, mean, yerr=yerr, fmt="o", color=color, label=label, capsize=3)
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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", facecolor="white",
                    metadata={"Software": None})
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
