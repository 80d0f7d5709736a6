"""The three Hessian sources agree: analytic, phonopy (with and without symmetry), fd."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from matscipy.calculators.pair_potential import LennardJonesCut, PairPotential

from ase_vibentropy.errors import UnknownNameError
from ase_vibentropy.harmonic import compute_hessian, omega2_spectrum, relax_positions

# Cross-checks use a 1e-4 Å step: the O(h²) truncation error of central differences is ~1.6e-6
# of max ω² at the default 1e-3 Å on these cells, which would blur a 1e-6 comparison.
STEP = 1e-4

# Argon-like Lennard-Jones; the 7 Å cut-off lies 0.5 Å from the nearest fcc shells, so the
# force discontinuity of a hard cut-off is never crossed by a 1e-3 Å displacement.
LJ_EPSILON, LJ_SIGMA, LJ_CUTOFF = 0.0104, 3.40, 7.0


def lj_calculator() -> PairPotential:
    return PairPotential({(18, 18): LennardJonesCut(LJ_EPSILON, LJ_SIGMA, LJ_CUTOFF)})


def relaxed_vacancy(symbol: str, a: float, calc) -> "Atoms":  # noqa: F821
    atoms = bulk(symbol, "fcc", a=a, cubic=True).repeat((2, 2, 2))
    del atoms[0]
    atoms.positions[5] += (0.02, -0.01, 0.015)  # break the symmetry a little before relaxing
    return relax_positions(atoms, calc, fmax=1e-7)


def relative_spectrum_difference(h1, h2, masses) -> float:
    w1, w2 = omega2_spectrum(h1, masses), omega2_spectrum(h2, masses)
    return float(np.max(np.abs(w1 - w2)) / np.max(np.abs(w1)))


@pytest.fixture(scope="module")
def emt_cu_vacancy():
    return relaxed_vacancy("Cu", 3.61, EMT())


@pytest.fixture(scope="module")
def lj_ar_vacancy():
    return relaxed_vacancy("Ar", 5.26, lj_calculator())


def test_phonopy_and_finite_difference_spectra_agree_on_emt_cu_vacancy(emt_cu_vacancy):
    masses = emt_cu_vacancy.get_masses()
    fd = compute_hessian(emt_cu_vacancy, EMT(), method="fd", step=STEP)
    for symmetry in (True, False):
        ph = compute_hessian(emt_cu_vacancy, EMT(), method="phonopy", symmetry=symmetry, step=STEP)
        assert relative_spectrum_difference(ph, fd, masses) < 1e-6


def test_analytic_phonopy_and_fd_spectra_agree_on_lennard_jones_vacancy(lj_ar_vacancy):
    calc = lj_calculator()
    masses = lj_ar_vacancy.get_masses()
    analytic = compute_hessian(lj_ar_vacancy, calc, method="analytic")
    assert compute_hessian(lj_ar_vacancy, calc).shape == analytic.shape  # auto = analytic
    fd = compute_hessian(lj_ar_vacancy, calc, method="fd", step=STEP)
    phonopy_sym = compute_hessian(lj_ar_vacancy, calc, method="phonopy", symmetry=True, step=STEP)
    phonopy_all = compute_hessian(lj_ar_vacancy, calc, method="phonopy", symmetry=False, step=STEP)
    for other in (fd, phonopy_sym, phonopy_all):
        assert relative_spectrum_difference(analytic, other, masses) < 1e-6


def test_analytic_hessian_entries_match_central_differences(lj_ar_vacancy):
    calc = lj_calculator()
    analytic = compute_hessian(lj_ar_vacancy, calc, method="analytic").toarray()
    fd = compute_hessian(lj_ar_vacancy, calc, method="fd", step=STEP)
    assert np.max(np.abs(analytic - fd)) < 1e-6 * np.max(np.abs(analytic))


def test_default_step_agrees_with_analytic_to_its_truncation_error(lj_ar_vacancy):
    calc = lj_calculator()
    masses = lj_ar_vacancy.get_masses()
    analytic = compute_hessian(lj_ar_vacancy, calc, method="analytic")
    fd = compute_hessian(lj_ar_vacancy, calc, method="fd")  # 1e-3 Å, the paper's step
    assert relative_spectrum_difference(analytic, fd, masses) < 1e-5


def test_hessian_is_symmetric_and_translation_invariant(emt_cu_vacancy):
    hessian = compute_hessian(emt_cu_vacancy, EMT(), method="fd", step=STEP)
    np.testing.assert_array_equal(hessian, hessian.T)
    # A uniform translation costs no energy: every row sums to zero over each direction
    # (up to the O(h²) truncation error of the columns, which does not cancel in the sum).
    row_sums = hessian.reshape(hessian.shape[0], -1, 3).sum(axis=1)
    assert np.max(np.abs(row_sums)) < 1e-7 * np.max(np.abs(hessian))


def test_unknown_hessian_source_is_rejected(emt_cu_vacancy):
    with pytest.raises(UnknownNameError, match="unknown Hessian source 'magic'"):
        compute_hessian(emt_cu_vacancy, EMT(), method="magic")


def test_analytic_source_needs_a_calculator_with_get_hessian(emt_cu_vacancy):
    with pytest.raises(UnknownNameError, match="get_hessian"):
        compute_hessian(emt_cu_vacancy, EMT(), method="analytic")
