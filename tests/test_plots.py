"""Tests of ptdlib.plots: returned artists on a Figure (not pixels) and deterministic PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ptdlib import plots, stats

X = np.array([1.0, 2.0, 4.0, 8.0])
Y = np.array([[1.0, 0.6, 0.3, 0.12], [1.2, 0.4, 0.25, 0.14], [0.8, 0.5, 0.2, 0.13]])


def _axes() -> Axes:
    return Figure().add_subplot()


def test_plot_mean_ci_draws_mean_and_t_band_on_the_given_axes() -> None:
    ax = _axes()
    figures_before = plt.get_fignums()
    artists = plots.plot_mean_ci(ax, X, Y, "personalized")
    assert plt.get_fignums() == figures_before  # no figure created when ax is given
    assert artists.ax is ax and artists.line in ax.lines and artists.band in ax.collections
    np.testing.assert_allclose(artists.line.get_ydata(), Y.mean(axis=0))
    interval = stats.mean_t_interval(Y)
    vertices = artists.band.get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(interval.low.min())
    assert vertices[:, 1].max() == pytest.approx(interval.high.max())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["personalized"]
    assert artists.band.get_facecolor()[0][:3] == pytest.approx(
        matplotlib.colors.to_rgb(artists.line.get_color()))


def test_plot_mean_ci_without_axes_creates_a_figure() -> None:
    artists = plots.plot_mean_ci(None, X, Y)
    try:
        assert artists.ax.figure.number in plt.get_fignums()
        assert artists.ax.get_legend() is None  # no label, no legend
    finally:
        plt.close(artists.ax.figure)


def test_plot_loglog_fit_draws_fit_with_ci_and_reference() -> None:
    ax = _axes()
    fit = stats.bootstrap_loglog_slope(X, Y, rng=0, n_boot=200)
    artists = plots.plot_loglog_fit(ax, X, Y, fit, "dist^2", reference_slope=-1.0)
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert artists.points.has_yerr
    np.testing.assert_allclose(artists.fit_line.get_xdata(), [1.0, 8.0])
    np.testing.assert_allclose(artists.fit_line.get_ydata(),
                               np.exp(fit.intercept) * np.array([1.0, 8.0]) ** fit.slope)
    np.testing.assert_allclose(artists.reference_line.get_ydata(), [1.0, 1.0 / 8.0])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"fit: slope {fit.slope:.2f} [95% CI {fit.ci_low:.2f}, {fit.ci_high:.2f}]" in labels
    assert "theory: slope -1" in labels and "dist^2" in labels


def test_plot_loglog_fit_without_fit_uses_least_squares_and_no_error_bars() -> None:
    ax = _axes()
    y = 2.0 * X**-0.5
    artists = plots.plot_loglog_fit(ax, X, y)
    assert not artists.points.has_yerr and artists.reference_line is None
    np.testing.assert_allclose(artists.fit_line.get_ydata(), [2.0, 2.0 / np.sqrt(8.0)])
    assert artists.fit_line.get_label() == "fit: slope -0.50"


@pytest.mark.parametrize(("function", "y", "match"), [
    (plots.plot_mean_ci, Y[:, :3], "y_by_seed"),
    (plots.plot_loglog_fit, -Y, "positive"),
    (plots.plot_loglog_fit, np.ones((2, 2, 4)), "y_by_seed"),
])
def test_plots_reject_bad_shapes_and_values(function, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        function(_axes(), X, y)


def _figure() -> Figure:
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    plots.plot_mean_ci(ax, X, Y, "mean")
    ax.set_title("determinism")
    return fig


def test_save_figure_gives_identical_bytes(tmp_path: Path) -> None:
    fig = _figure()
    first = plots.save_figure(fig, tmp_path / "a.png")
    second = plots.save_figure(fig, tmp_path / "sub" / "b.png")
    third = plots.save_figure(_figure(), tmp_path / "c.png")
    data = first.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data == second.read_bytes() == third.read_bytes()
    assert b"Software" not in data and b"Matplotlib" not in data
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "b.png",
                                                                         "c.png"]


def test_save_figure_rejects_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        plots.save_figure(_figure(), tmp_path / "a.pdf")
    with pytest.raises(ValueError, match="dpi"):
        plots.save_figure(_figure(), tmp_path / "a.png", dpi=0)


def test_set_theme_applies_the_seaborn_style() -> None:
    with matplotlib.rc_context():
        plots.set_theme()
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["axes.facecolor"] == "white"
