"""Every PNG the package, its benchmarks and examples write, drawn on small inputs and checked
for what a reader needs: axis labels with units, integer ticks on count axes, RMSE bars that
stop at zero, the notes a figure promises (underdetermined fits, what error bars are, the knot
line), legends that hide no point and name each series once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from ase_vibentropy.evaluation import CrossValidationResult
from ase_vibentropy.plotting import UNDERDETERMINED_NOTE, crossval_plot, parity_plot

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting code closes, kept open for inspection (closed afterwards)."""
    close = plt.close
    kept: list = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    for fig in kept:
        close(fig)


def load(path: Path):
    """A benchmark or example script as a module (its folder on sys.path for its helpers)."""
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"plotted_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts(fig) -> list[str]:
    """Every piece of text drawn in ``fig`` (titles, labels, legend entries and titles)."""
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def assert_labelled(ax, unit: str | None = None) -> None:
    assert ax.get_xlabel() and ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel())
    if unit:
        assert unit in ax.get_xlabel() or unit in ax.get_ylabel()


def assert_integer_ticks(axis) -> None:
    locator = axis.get_major_locator()
    assert isinstance(locator, matplotlib.ticker.MaxNLocator) and locator._integer
    ticks = axis.get_ticklocs()
    np.testing.assert_array_equal(ticks, np.round(ticks))


def test_parity_plot_legend_beside_the_axes_small_families_on_top(figures, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.normal(0.0, 5.0, 60)
    pred = y + rng.normal(0.0, 0.5, 60)
    families = np.array(["train"] * 50 + ["test"] * 10)
    parity_plot(y, pred, families, tmp_path / "p.png", std=np.full(60, 0.3), title="split")
    (fig,) = figures
    ax = fig.axes[0]
    assert_labelled(ax, "$k_B$")
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    # one entry per family, sorted, with its own count and errors (computed here)
    err = pred[50:] - y[50:]
    assert labels[0] == f"test (n=10): RMSE {np.sqrt(np.mean(err**2)):.2f}, MAE {np.mean(np.abs(err)):.2f} $k_B$"
    assert labels[1].startswith("train (n=50)") and len(labels) == 2
    assert "±1σ" in legend.get_title().get_text()
    # the legend lies right of the axes: it covers no point
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    # the overall errors are in the title under the given one
    overall = pred - y
    assert ax.get_title() == f"split\nall 60: RMSE {np.sqrt(np.mean(overall**2)):.2f}, MAE {np.mean(np.abs(overall)):.2f} $k_B$"
    # the 10 test points are drawn above the 50 training points
    order = {c.get_label().split(" ")[0]: c.lines[0].get_zorder() for c in ax.containers}
    assert order["test"] > order["train"]


def test_parity_plot_tells_eleven_families_apart(figures, tmp_path):
    families = np.array([f"F{k:02d}" for k in range(11)]).repeat(3)
    y = np.arange(33.0)
    parity_plot(y, y + 0.1, families, tmp_path / "p.png")
    (fig,) = figures
    lines = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("F")]
    styles = {(line.get_color(), line.get_marker()) for line in lines}
    assert len(styles) == 11  # colours repeat after 10, the marker changes


def cv_result(underdetermined: list[int]) -> CrossValidationResult:
    p = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    mean, std = np.array([0.2, 0.3, 0.4, 0.6, 0.9]), np.array([0.5, 0.1, 0.6, 0.2, 0.3])
    return CrossValidationResult(p, 4, 40, mean / 4, std, mean, std, mean / 4, std, mean, std,
                                 np.array(underdetermined), None)


def test_crossval_plot_bars_stop_at_zero_and_underdetermined_fractions_are_noted(figures, tmp_path):
    result = cv_result([0, 0, 0, 4, 4])
    crossval_plot(result, tmp_path / "cv.png")
    (fig,) = figures
    ax = fig.axes[0]
    assert_labelled(ax, "$k_B$")
    assert ax.get_ylim()[0] == 0.0
    lows = [seg[:, 1].min() for c in ax.collections if hasattr(c, "get_segments") for seg in c.get_segments()]
    assert lows and min(lows) >= 0.0  # std 0.5 on a mean of 0.2 would reach -0.3
    np.testing.assert_allclose(ax.get_xticks(), result.fractions)
    assert UNDERDETERMINED_NOTE in texts(fig)
    shaded = [p for p in ax.patches if p.get_facecolor()[:3] != (1.0, 1.0, 1.0)]
    assert len(shaded) == 2  # one band per underdetermined fraction
    for band, x in zip(shaded, (0.7, 0.9)):
        x0, x1 = band.get_x(), band.get_x() + band.get_width()
        assert x0 < x < x1 and x1 - x0 < 0.2  # its own fraction only
    labels = [t.get_text() for t in ax.get_legend().get_texts()] + [t.get_text() for t in ax.artists[0].get_texts()]
    assert sorted(labels) == sorted(["train RMSE (mean ± std)", "test RMSE (mean ± std)", UNDERDETERMINED_NOTE])


def test_crossval_plot_without_underdetermined_fits_has_no_note(figures, tmp_path):
    crossval_plot(cv_result([0, 0, 0, 0, 0]), tmp_path / "cv.png")
    (fig,) = figures
    assert UNDERDETERMINED_NOTE not in texts(fig)


def test_db_stats_histograms_count_whole_configurations(figures, tmp_path):
    from ase_vibentropy.cli.db_stats import _plot

    stats = {"n_vac": [0, 1, 1, 2, 4], "n_int": [1, 0, 2, 2, 3], "Sf_kB": [1.5, 2.0, 7.5, 3.1, 9.0],
             "family": ["I1", "V1", "random", "V2", "random"]}
    _plot(stats, str(tmp_path / "s.png"))
    (fig,) = figures
    counts, sf = fig.axes
    assert_labelled(counts)
    assert_labelled(sf, "$k_B$")
    for axis in (counts.xaxis, counts.yaxis, sf.yaxis):
        assert_integer_ticks(axis)
    assert {"I1", "V1", "V2", "random", "vacancies", "interstitials"} <= set(texts(fig))


def test_scaling_plot_names_each_route_and_its_units(figures, tmp_path):
    scaling = load(REPO / "benchmarks" / "scaling.py")
    rows = [{"route": route, "n_atoms": n, "seconds": s * n} for route, s in
            (("predict", 1e-5), ("logdet", 1e-3), ("dense", 2e-3)) for n in (1000, 10_000)]
    scaling.plot(rows, str(tmp_path / "scaling.png"))
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_ylabel() == "wall time (s)" and ax.get_xscale() == "log"
    assert len(ax.get_legend().get_texts()) == 3
    fig.canvas.draw()
    assert ax.title.get_window_extent().x1 <= fig.bbox.x1  # the title fits the figure


def test_spline_noise_plot_one_colour_per_potential_and_plain_strain_ticks(figures, tmp_path):
    spline_noise = load(REPO / "benchmarks" / "reproduction" / "spline_noise.py")
    strains = [-1e-3, -1e-5, 0.0, 1e-5, 1e-3]
    names = ("closed form", "table splines")
    result = {"strain": strains, "Sb_per_atom_kB": {n: [3.0 + k * 1e-3] * 5 for k, n in enumerate(names)},
              "Sf_kB": {n: {d: {"4": 2.0, "6": 2.1} for d in ("V1", "I1")} for n in names}}
    spline_noise.plot(result, tmp_path)
    (fig,) = figures
    left, right = fig.axes
    assert_labelled(left, "$k_B$")
    assert_labelled(right, "$k_B$")
    fig.canvas.draw()
    ticks = [t.get_text() for t in left.get_xticklabels() if t.get_text()]
    assert "0.1" in ticks and not any("10^" in t or "10^{" in t for t in ticks), ticks
    for name in names:  # V1 and I1 of one potential share its colour, as in the left panel
        colours = {line.get_color() for line in right.get_lines() if line.get_label().startswith(name)}
        left_colour = next(line.get_color() for line in left.get_lines() if line.get_label() == name)
        assert colours == {left_colour}


def test_strain_knot_plot_names_the_knot_line(figures, tmp_path):
    strain_knot = load(REPO / "benchmarks" / "reproduction" / "strain_knot.py")
    curve = [{"strain": s, "exact": 3.0 + s, "shipped": 3.1 + s} for s in (-0.01, 0.0, 0.02)]
    by = {f"{s:+.3f}": {"n": 3, "rmse_kB": 1.0 + s} for s in (-0.01, 0.0, 0.02)}
    crossval = {"p_test": 0.1, "all strains": {"by_strain": by}, "below the knot": {"by_strain": by}}
    strain_knot.plot(curve, crossval, tmp_path / "k.png")
    (fig,) = figures
    for ax in fig.axes:
        assert_labelled(ax, "$k_B$")
        assert ax.get_title()
    assert texts(fig).count("first neighbours at the 2.5 Å knot") == 2


def test_local_entropy_map_plot_shows_each_models_errors(figures, tmp_path):
    from ase.build import bulk

    example = load(REPO / "examples" / "local_entropy_map.py")
    atoms = bulk("Fe", "bcc", a=2.855324, cubic=True).repeat(2)
    exact = np.linspace(-0.2, 0.4, len(atoms))
    atoms.arrays["sf_exact_kB"] = exact
    atoms.arrays["sf_m_kB"] = exact + 0.1
    example.plot(atoms, ["m"], str(tmp_path / "map.png"))
    (fig,) = figures
    ax = fig.axes[0]
    assert_labelled(ax, "$k_B$")
    assert "RMSE 0.100 $k_B$" in ax.get_title() and "correlation 1.00" in ax.get_title()
