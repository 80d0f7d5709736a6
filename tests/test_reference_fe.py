"""Exact formation entropies of point defects in the closed-form Mendelev 2003 bcc Fe.

Fixed cubic cell at a0 (1 + ε), a0 = 2.855324 Å, defect at the cell centre, positions relaxed
below 1e-8 eV/Å with the closed form's own forces, its exact Hessian, classical, T = 300 K.
The expected numbers (k_B) were computed independently of this package (a separate closed-form
implementation, eigvalsh or a Cholesky log-determinant); docs/theory.md lists them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import kB

from ase_vibentropy.errors import NotAMinimumError
from ase_vibentropy.data.builders import centred_point_defect
from ase_vibentropy.harmonic import formation_entropy, harmonic_entropy
from ase_vibentropy.potentials import get_potential

A0 = 2.855324  # Å
FMAX = 1e-8  # eV/Å

#: Independent reference formation entropies, k_B: (cells per edge, strain, defect) -> S_f.
REFERENCE_FORMATION_ENTROPY_KB = {
    (4, 0.0, "V1"): 2.183,
    (4, 0.0, "I1<110>"): 2.480,
    (6, 0.0, "V1"): 2.200,
    (6, 0.0, "V2"): 3.815,
    (6, 0.0, "I1<110>"): 2.777,
    (8, 0.0, "V1"): 2.210,
    (8, 0.0, "V2"): 3.830,
    (8, 0.0, "I1<110>"): 2.865,
    (8, 0.01, "V1"): 4.244,
    (8, 0.01, "I1<110>"): 12.054,
    (8, -0.01, "V1"): 1.431,
    (8, 0.02, "I1<110>"): 4.069,
}


def centred_defect(n_cells: int, defect: str, strain: float = 0.0) -> Atoms:
    """bcc Fe n³ cubic supercell at a0 (1 + strain) with ``defect`` on the site at the centre.

    V1: that site removed; V2: it and a nearest neighbour removed; I1<110>: it replaced by two
    atoms ±1 Å along [110] (the dumbbell); I1<111>: ±1 Å along [111] (the symmetric crowdion
    start).
    """
    perfect = bulk("Fe", "bcc", a=A0 * (1.0 + strain), cubic=True).repeat((n_cells, n_cells, n_cells))
    return centred_point_defect(perfect, defect, separation=2.0)


@pytest.fixture(scope="module")
def fe():
    return get_potential("fe-mendelev2003")


@pytest.fixture(scope="module")
def hessian_calc(fe):
    return fe.hessian_calculator()


@pytest.fixture(scope="module")
def bulk_result(hessian_calc):
    """Entropy of the perfect n³ cell at a strain, computed once (Bloch route)."""

    @lru_cache(maxsize=None)
    def compute(n_cells: int, strain: float):
        perfect = bulk("Fe", "bcc", a=A0 * (1 + strain), cubic=True).repeat(n_cells)
        return harmonic_entropy(perfect, hessian_calc, hessian="analytic", fmax=FMAX)

    return compute


@lru_cache(maxsize=None)
def relaxed_defect(n_cells: int, strain: float, defect: str) -> Atoms:
    fe = get_potential("fe-mendelev2003")
    return fe.relax(centred_defect(n_cells, defect, strain), fmax=FMAX)


def defect_formation_entropy_kB(hessian_calc, bulk_result, n_cells, strain, defect, solver):
    result = harmonic_entropy(relaxed_defect(n_cells, strain, defect), hessian_calc,
                              hessian="analytic", solver=solver, fmax=FMAX)
    assert result.n_imaginary == 0
    return formation_entropy(result, bulk_result(n_cells, strain)) / kB


@pytest.mark.parametrize(
    ("n_cells", "strain", "defect"),
    list(REFERENCE_FORMATION_ENTROPY_KB),
    ids=[f"{n}a0-{100 * e:+.0f}%-{d}" for n, e, d in REFERENCE_FORMATION_ENTROPY_KB],
)
def test_formation_entropy_reproduces_the_independent_reference(hessian_calc, bulk_result,
                                                                  n_cells, strain, defect):
    solver = "dense" if n_cells <= 6 else "logdet"
    s_f = defect_formation_entropy_kB(hessian_calc, bulk_result, n_cells, strain, defect, solver)
    assert s_f == pytest.approx(REFERENCE_FORMATION_ENTROPY_KB[(n_cells, strain, defect)], abs=1e-3)
    if defect == "I1<110>":
        # The dumbbell is still the <110> one: its two closest atoms lie along [110].
        relaxed = relaxed_defect(n_cells, strain, defect)
        centre = np.full(3, 0.5 * n_cells * A0 * (1 + strain))
        pair = np.argsort(np.linalg.norm(relaxed.positions - centre, axis=1))[:2]
        bond = relaxed.positions[pair[0]] - relaxed.positions[pair[1]]
        assert abs(bond @ np.array([1.0, 1.0, 0.0])) / (np.sqrt(2) * np.linalg.norm(bond)) > 0.999


def test_vacancy_formation_entropy_converges_with_the_cell(hessian_calc, bulk_result):
    """A smooth potential gives a point defect an S_f that converges (no ln N growth)."""
    values = [defect_formation_entropy_kB(hessian_calc, bulk_result, n, 0.0, "V1", "logdet")
              for n in (4, 6, 8)]
    assert max(values) - min(values) <= 0.05


def test_dense_and_logdet_routes_agree_on_a_relaxed_defect(hessian_calc):
    relaxed = relaxed_defect(6, 0.0, "V1")
    dense = harmonic_entropy(relaxed, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX)
    logdet = harmonic_entropy(relaxed, hessian_calc, hessian="analytic", solver="logdet", fmax=FMAX)
    assert logdet.entropy == pytest.approx(dense.entropy, rel=1e-10)


def test_symmetric_111_crowdion_is_a_saddle_with_five_imaginary_modes(fe, hessian_calc):
    """A <111> interstitial started exactly on the axis stays on the symmetric saddle."""
    relaxed = fe.relax(centred_defect(6, "I1<111>"), fmax=FMAX, calc=hessian_calc)
    with pytest.raises(NotAMinimumError) as info:
        harmonic_entropy(relaxed, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX)
    assert info.value.n_imaginary == 5
    assert info.value.min_omega2 < -1e-3  # eV/(Å² amu): far beyond numerical noise


def test_finite_differences_of_the_closed_form_forces_agree_with_its_hessian(fe, hessian_calc):
    """With a smooth potential the paper's 1e-3 Å central differences reproduce the exact
    Hessian's entropy closely (on the table splines the same step is off by ~1 k_B)."""
    relaxed = relaxed_defect(4, 0.0, "V1")
    analytic = harmonic_entropy(relaxed, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX)
    finite = harmonic_entropy(relaxed, fe.force_calculator(), hessian="fd", step=1e-3,
                              solver="dense", fmax=FMAX)
    assert finite.hessian_method == "fd" and finite.n_imaginary == 0
    assert finite.entropy_kB == pytest.approx(analytic.entropy_kB, abs=1e-4)
