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


def test_save_slide_is_16_by_9_with_larger_fonts_and_leaves_the_figure_alone(
        tmp_path: Path) -> None:
    from matplotlib.image import imread

    fig = _figure()
    ax = fig.axes[0]
    ax.set_title("a conclusion")
    before = (tuple(fig.get_size_inches()), ax.title.get_fontsize())
    first = plots.save_slide(fig, tmp_path / "slide.png")
    assert imread(first).shape[:2] == (1080, 1920)
    assert (tuple(fig.get_size_inches()), ax.title.get_fontsize()) == before
    assert plots.save_slide(fig, tmp_path / "again.png").read_bytes() == first.read_bytes()
    plain = plots.save_slide(fig, tmp_path / "plain.png", font_scale=1.0)
    assert plain.read_bytes() != first.read_bytes()  # the fonts did grow
    with pytest.raises(ValueError, match=r"\.png"):
        plots.save_slide(fig, tmp_path / "slide.pdf")
    with pytest.raises(ValueError, match="font_scale"):
        plots.save_slide(fig, tmp_path / "slide.png", font_scale=0)


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


def test_plot_tv_decay_draws_curve_rate_line_and_window() -> None:
    ax = _axes()
    curve = np.r_[0.5 * 0.5 ** np.arange(40), 0.0]
    artists = plots.plot_tv_decay(ax, curve, 0.5, window=(5, 30), label="two-state")
    assert artists.ax is ax and ax.get_yscale() == "log"
    # the zero at the end is not drawn; the rate line goes through d(5) with slope 0.5
    assert np.isnan(artists.curve.get_ydata()[-1])
    t, ref = artists.rate_line.get_xdata(), artists.rate_line.get_ydata()
    np.testing.assert_allclose(ref, curve[5] * 0.5 ** (t - 5))
    assert ref.min() >= curve[curve > 0].min() / 10
    assert artists.window is not None and artists.rate_line.get_color() == "0.2"
    assert "two-state" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_plot_tv_decay_without_window_anchors_at_zero() -> None:
    artists = plots.plot_tv_decay(_axes(), 0.9 ** np.arange(10), 0.9)
    assert artists.window is None and artists.ax.get_legend() is None
    np.testing.assert_allclose(artists.rate_line.get_ydata(), 0.9 ** np.arange(10))


def test_plot_against_reference_draws_series_line_and_band() -> None:
    ax = _axes()
    artists = plots.plot_against_reference(ax, [8, 16, 32], [0.094, 0.0977, 0.0957], 0.0949,
                                           label="t_mix / n^2", reference_label="limit",
                                           band=(0.0939, 0.0959), band_label="tolerance")
    np.testing.assert_allclose(artists.points.get_ydata(), [0.094, 0.0977, 0.0957])
    np.testing.assert_allclose(artists.reference_line.get_ydata(), [0.0949, 0.0949])
    assert artists.band is not None
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["t_mix / n^2", "limit", "tolerance"]
    bare = plots.plot_against_reference(_axes(), [1, 2], [3, 4], 0.0)
    assert bare.band is None and bare.ax.get_legend() is None


def test_plot_singular_values_normalises_and_skips_zeros() -> None:
    ax = _axes()
    line = plots.plot_singular_values(ax, [4.0, 2.0, 1e-15, 0.0], "planted")
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5, 2.5e-16, np.nan])
    assert ax.get_yscale() == "log" and ax.get_legend() is not None


def test_plot_distributions_draws_one_box_and_strip_per_group() -> None:
    ax = _axes()
    samples = {"h = 0": [1.0, 2.0, 3.0], "h = 1": np.array([0.5, 4.0])}
    artists = plots.plot_distributions(ax, samples, log=True)
    assert len(artists.boxes["boxes"]) == 2 and len(artists.points) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["h = 0", "h = 1"]
    offsets = artists.points[0].get_offsets()
    np.testing.assert_allclose(np.sort(offsets[:, 1]), [1.0, 2.0, 3.0])
    assert np.all(np.abs(offsets[:, 0]) <= 0.175) and ax.get_yscale() == "log"
    again = plots.plot_distributions(_axes(), samples, log=True)
    np.testing.assert_array_equal(again.points[1].get_offsets(), artists.points[1].get_offsets())


@pytest.mark.parametrize(("call", "match"), [
    (lambda ax: plots.plot_tv_decay(ax, [1.0, -0.1], 0.5), "non-negative"),
    (lambda ax: plots.plot_tv_decay(ax, [1.0, 0.5], 1.0), "rho in"),
    (lambda ax: plots.plot_tv_decay(ax, [1.0, 0.0], 0.5, window=(1, 1)), "anchor"),
    (lambda ax: plots.plot_against_reference(ax, [1, 2], [1], 0.0), "same length"),
    (lambda ax: plots.plot_against_reference(ax, [1], [1], 0.0, band=(2, 1)), "low <= high"),
    (lambda ax: plots.plot_singular_values(ax, [1.0, 2.0]), "largest"),
    (lambda ax: plots.plot_singular_values(ax, []), "largest"),
    (lambda ax: plots.plot_distributions(ax, {}), "at least one group"),
    (lambda ax: plots.plot_distributions(ax, {"a": []}), "non-empty"),
    (lambda ax: plots.plot_distributions(ax, {"a": [0.0, 1.0]}, log=True), "positive"),
])
def test_new_plots_reject_bad_input(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(_axes())


def test_plot_state_values_draws_one_line_per_vector_and_the_marked_state() -> None:
    ax = _axes()
    values = {"before": [0.0, 1.0, -1.0], "after": np.array([0.5, 1.0, -0.5]),
              "target": [1.0, 1.0, 1.0]}
    artists = plots.plot_state_values(ax, values, marked_state=2, marked_label="s_t",
                                      styles={"target": {"linestyle": "--", "color": "0.5"}})
    assert artists.ax is ax and list(artists.lines) == ["before", "after", "target"]
    np.testing.assert_array_equal(artists.lines["after"].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(artists.lines["after"].get_ydata(), [0.5, 1.0, -0.5])
    assert artists.lines["target"].get_linestyle() == "--"
    assert artists.marker is not None and artists.marker.get_xdata()[0] == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "after", "target",
                                                                   "s_t"]
    assert plots.plot_state_values(_axes(), {"v": [1.0, 2.0]}).marker is None


def test_plot_spectral_radius_draws_curves_unit_line_thresholds_and_points() -> None:
    ax = _axes()
    alpha = np.linspace(0.0, 3.0, 7)
    radius = {"gain": np.abs(1 - alpha), "block": np.abs(1 - alpha / 2)}
    artists = plots.plot_spectral_radius(ax, alpha, radius, {"alpha_crit": 2.0, "block": 4.0},
                                         points={"numeric": ([1.0, 2.0], [0.0, 1.0]),
                                                 "other": ([0.5], [0.5])},
                                         styles={"gain": {"linewidth": 5.0}})
    assert artists.curves["gain"].get_linewidth() == 5.0
    assert [m.get_marker() for m in artists.points.values()] == ["x", "+"]
    assert list(artists.curves) == ["gain", "block"] and artists.ax is ax
    np.testing.assert_allclose(artists.curves["block"].get_ydata(), np.abs(1 - alpha / 2))
    assert artists.unit_line.get_ydata()[0] == 1.0
    assert [line.get_xdata()[0] for line in artists.threshold_lines.values()] == [2.0, 4.0]
    np.testing.assert_allclose(artists.points["numeric"].get_ydata(), [0.0, 1.0])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "alpha_crit = 2" in labels and "numeric" in labels


@pytest.mark.parametrize(("call", "match"), [
    (lambda ax: plots.plot_state_values(ax, {}), "at least one"),
    (lambda ax: plots.plot_state_values(ax, {"a": [1.0], "b": [1.0, 2.0]}), "one length"),
    (lambda ax: plots.plot_state_values(ax, {"a": [1.0, 2.0]}, marked_state=2), "marked_state"),
    (lambda ax: plots.plot_spectral_radius(ax, [0.0, 1.0], {"a": [1.0]}, {}), "shape of alpha"),
    (lambda ax: plots.plot_spectral_radius(ax, [0.0, 1.0], {}, {"c": float("nan")}), "finite"),
    (lambda ax: plots.plot_spectral_radius(ax, [0.0], {}, {}, points={"p": ([1.0], [])}),
     "equal-length"),
])
def test_walkthrough_plots_reject_bad_input(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(_axes())


def test_plot_learning_curves_draws_one_band_per_curve_and_the_reference() -> None:
    ax = _axes()
    artists = plots.plot_learning_curves(ax, X, {"personalized": Y, "independent": 2 * Y},
                                         reference=0.0, reference_label="optimum")
    assert artists.ax is ax and list(artists.curves) == ["personalized", "independent"]
    for scale, drawn in zip([1, 2], artists.curves.values(), strict=True):
        assert drawn.line in ax.lines and drawn.band in ax.collections
        np.testing.assert_allclose(drawn.line.get_ydata(), scale * Y.mean(axis=0))
    assert artists.reference_line.get_ydata() == pytest.approx([0.0, 0.0])
    assert artists.reference_line.get_linestyle() == "--"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["personalized", "independent", "optimum"]


def test_plot_learning_curves_without_reference_draws_no_line() -> None:
    ax = _axes()
    artists = plots.plot_learning_curves(ax, X, {"a": Y})
    assert artists.reference_line is None and len(ax.lines) == 1


def test_plot_points_ci_draws_means_joined_with_t_error_bars() -> None:
    ax = _axes()
    points = plots.plot_points_ci(ax, X, Y, "independent")
    line = points.lines[0]
    np.testing.assert_allclose(line.get_ydata(), Y.mean(axis=0))
    assert line.get_linestyle() == "-" and line.get_marker() == "o"
    interval = stats.mean_t_interval(Y)
    segments = points.lines[2][0].get_segments()
    np.testing.assert_allclose([seg[:, 1].min() for seg in segments], interval.low)
    np.testing.assert_allclose([seg[:, 1].max() for seg in segments], interval.high)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["independent"]


def test_plot_grid_policy_draws_arrows_goal_and_shading() -> None:
    ax = _axes()
    # A 2 x 3 grid: every cell points right except the goal (0, 2), which has no arrow.
    d_row = np.zeros((2, 3))
    d_col = np.ones((2, 3))
    d_row[0, 2] = d_col[0, 2] = np.nan
    values = np.arange(6.0).reshape(2, 3)
    artists = plots.plot_grid_policy(ax, d_row, d_col, (0, 2), values=values)
    assert artists.ax is ax and artists.arrows in ax.collections
    drawn = ~np.ravel(artists.arrows.Umask)  # matplotlib masks the NaN (goal) arrow
    np.testing.assert_array_equal(drawn, np.isfinite(d_col.ravel()))
    np.testing.assert_allclose(artists.arrows.U[drawn], d_col.ravel()[drawn])
    # Rows grow downwards on screen, so the vertical component is -d_row.
    np.testing.assert_allclose(artists.arrows.V[drawn], -d_row.ravel()[drawn])
    np.testing.assert_allclose(artists.goal.get_offsets(), [[2.0, 0.0]])
    np.testing.assert_allclose(artists.image.get_array(), values)
    assert ax.get_ylim() == (1.5, -0.5)  # row 0 on top


def test_plot_grid_policy_without_values_has_no_image() -> None:
    ax = _axes()
    artists = plots.plot_grid_policy(ax, -np.ones((2, 2)), np.zeros((2, 2)), (1, 1))
    assert artists.image is None and not ax.images


@pytest.mark.parametrize(("call", "match"), [
    (lambda ax: plots.plot_learning_curves(ax, X, {}), "at least one"),
    (lambda ax: plots.plot_learning_curves(ax, X, {"a": Y[:, :2]}), "y_by_seed"),
    (lambda ax: plots.plot_points_ci(ax, X, Y[:1]), "at least 2"),
    (lambda ax: plots.plot_grid_policy(ax, np.zeros((2, 2)), np.zeros((2, 3)), (0, 0)),
     "same"),
    (lambda ax: plots.plot_grid_policy(ax, np.zeros((2, 2)), np.zeros((2, 2)), (2, 0)),
     "inside"),
    (lambda ax: plots.plot_grid_policy(ax, np.zeros((2, 2)), np.zeros((2, 2)), (0, 0),
                                       values=np.zeros(4)), "values"),
])
def test_control_plots_reject_bad_input(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(_axes())


def test_plot_inverse_law_fit_draws_points_fit_and_both_parts() -> None:
    x = np.array([8.0, 16.0, 32.0, 64.0])
    y = 0.02 / x + 1e-4 + np.array([[0.0], [1e-5], [-1e-5]])
    fit = stats.fit_inverse_plus_constant(x, y, rng=0, n_boot=50)
    ax = _axes()
    artists = plots.plot_inverse_law_fit(ax, x, y, fit, "floor", n_grid=20)
    assert artists.ax is ax
    np.testing.assert_allclose(artists.points.lines[0].get_ydata(), y.mean(axis=0))
    grid = artists.fit_line.get_xdata()
    assert len(grid) == 20 and grid[0] == pytest.approx(8.0) and grid[-1] == pytest.approx(64.0)
    np.testing.assert_allclose(artists.fit_line.get_ydata(), fit.a / grid + fit.c)
    np.testing.assert_allclose(artists.inverse_line.get_ydata(), fit.a / grid)
    np.testing.assert_allclose(artists.constant_line.get_ydata(), fit.c)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "floor" in labels and any(label.startswith("fit a/N + c") for label in labels)


def test_plot_inverse_law_fit_skips_a_non_positive_constant_and_rejects_bad_input() -> None:
    x = np.array([1.0, 2.0, 4.0])
    y = np.array([[1.0, 0.5, 0.25], [1.1, 0.55, 0.27]])
    fit = stats.InverseLawFit(a=1.0, c=-0.01, a_ci=(0.9, 1.1), c_ci=(-0.05, 0.02), level=0.95,
                              n_boot=10)
    artists = plots.plot_inverse_law_fit(_axes(), x, y, fit)
    assert artists.constant_line is None
    with pytest.raises(ValueError, match="positive"):
        plots.plot_inverse_law_fit(_axes(), x, -y, fit)
    with pytest.raises(ValueError, match="n_grid"):
        plots.plot_inverse_law_fit(_axes(), x, y, fit, n_grid=1)


def test_plot_proportions_draws_wilson_bars_and_the_reference() -> None:
    ax = _axes()
    x = np.array([0.5, 1.0, 2.0])
    artists = plots.plot_proportions(ax, x, {"lazy 0": np.array([0, 4, 8]),
                                             "lazy 0.9": np.array([2, 8, 8])}, 8, reference=1.0,
                                     reference_label="alpha_crit")
    assert artists.ax is ax and set(artists.curves) == {"lazy 0", "lazy 0.9"}
    line = artists.curves["lazy 0"].lines[0]
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.5, 1.0])
    interval = stats.proportion_interval(np.array([0, 4, 8]), 8)
    segments = artists.curves["lazy 0"].lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segments],
                               np.column_stack([interval.low, interval.high]), atol=1e-12)
    assert artists.reference_line.get_xdata()[0] == 1.0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["alpha_crit", "lazy 0", "lazy 0.9"] or set(labels) == {
        "alpha_crit", "lazy 0", "lazy 0.9"}


def test_plot_proportions_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_proportions(_axes(), [1.0], {}, 4)
    with pytest.raises(ValueError, match="shape of x"):
        plots.plot_proportions(_axes(), [1.0, 2.0], {"a": [1]}, 4)
    with pytest.raises(ValueError, match="successes and trials"):
        plots.plot_proportions(_axes(), [1.0], {"a": [5]}, 4)
    with pytest.raises(ValueError, match="dodge"):
        plots.plot_proportions(_axes(), [1.0], {"a": [1]}, 4, dodge=0.5)


def test_plot_proportions_dodges_equal_curves_apart() -> None:
    artists = plots.plot_proportions(_axes(), [1.0, 2.0], {"a": [0, 1], "b": [0, 1],
                                                           "c": [0, 1]}, 2, dodge=1.1)
    xs = [artists.curves[k].lines[0].get_xdata() for k in "abc"]
    np.testing.assert_allclose(xs[0], [1 / 1.1, 2 / 1.1])
    np.testing.assert_allclose(xs[1], [1.0, 2.0])
    np.testing.assert_allclose(xs[2], [1.1, 2.2])


def test_plot_estimates_ci_draws_asymmetric_bars_and_skips_missing_points() -> None:
    ax = _axes()
    x = np.array([1.0, 2.0, 4.0, 8.0])
    est = np.array([10.0, 6.0, np.nan, 3.0])
    low = np.array([8.0, 5.0, np.nan, 2.0])
    high = np.array([13.0, 9.0, np.nan, np.inf])
    points = plots.plot_estimates_ci(ax, x, est, low, high, "t_eps", color="C2")
    np.testing.assert_allclose(points.lines[0].get_xdata(), [1.0, 2.0, 8.0])
    np.testing.assert_allclose(points.lines[0].get_ydata(), [10.0, 6.0, 3.0])
    segments = points.lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segments], [[8.0, 13.0], [5.0, 9.0], [2.0, 3.0]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["t_eps"]
    with pytest.raises(ValueError, match="low <= estimate <= high"):
        plots.plot_estimates_ci(_axes(), x[:1], [1.0], [2.0], [3.0])
    with pytest.raises(ValueError, match="shape"):
        plots.plot_estimates_ci(_axes(), x, est[:2], low, high)


def test_text_map_draws_one_coloured_cell_per_character() -> None:
    fig, ax = plt.subplots()
    plots.plot_text_map(ax, ["SFH", "FFG"])
    cells = ax.patches
    assert len(cells) == 6 and len(ax.texts) == 6
    hole = matplotlib.colors.to_rgba(plots.MAP_COLORS["H"])
    assert cells[2].get_facecolor() == hole and ax.texts[2].get_text() == "H"
    assert ax.get_ylim() == (1.5, -0.5)  # row 0 on top
    with pytest.raises(ValueError, match="rows must be non-empty strings of equal length"):
        plots.plot_text_map(ax, ["SF", "F"])
    plt.close(fig)


def test_plot_verdict_grid_colours_each_cell_by_its_status() -> None:
    fig, ax = plt.subplots()
    status = [["pass", "fail"], ["n/a", "known failure"]]
    plots.plot_verdict_grid(ax, status, [["0.1", "3"], ["no effect", "2.5"]], ["a", "b"],
                            ["x", "y"])
    faces = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    assert faces == [plots.VERDICT_COLORS[s] for row in status for s in row]
    assert [t.get_text() for t in ax.texts] == ["0.1", "3", "no effect", "2.5"]
    plt.close(fig)


def test_plot_verdict_grid_rejects_a_bad_grid() -> None:
    with pytest.raises(ValueError, match="rows x columns"):
        plots.plot_verdict_grid(None, [["pass"]], [["1"]], ["a", "b"], ["x"])
    with pytest.raises(ValueError, match="status"):
        plots.plot_verdict_grid(None, [["ok"]], [["1"]], ["a"], ["x"])
