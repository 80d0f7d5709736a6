"""SPEC §9: exact formation entropies of point defects in Mendelev 2003 bcc Fe.

Fixed cubic cell at a0 = 2.855324 Å, defect centred, positions relaxed until matscipy's largest
force is below 1e-5 eV/Å, matscipy's analytic Hessian, dense spectrum, classical, T = 300 K.
The expected numbers are SPEC §9's table (k_B), measured independently of this package.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import kB

from ase_vibentropy.errors import NotAMinimumError
from ase_vibentropy.harmonic import formation_entropy, harmonic_entropy
from ase_vibentropy.potentials import get_potential

pytestmark = pytest.mark.lammps

A0 = 2.855324  # Å, SPEC §8
FMAX = 1e-5  # eV/Å, SPEC §2

#: SPEC §9, formation entropies in k_B: (cells per edge, defect) -> S_f.
SPEC9_FORMATION_ENTROPY_KB = {
    (6, "V1"): 3.287,
    (6, "V2"): 5.073,
    (6, "I1<110>"): 4.099,
    (8, "V1"): 4.127,
}


def centred_defect(n_cells: int, defect: str) -> Atoms:
    """bcc Fe n³ cubic supercell with ``defect`` on the site at the cell centre (n a0/2)³.

    V1: that site removed; V2: it and its [111] nearest neighbour removed; I1<110>: it replaced
    by two atoms ±1 Å along [110] (the dumbbell); I1<111>: ±1 Å along [111] (the symmetric
    crowdion start).
    """
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells, n_cells, n_cells))
    centre = np.full(3, 0.5 * n_cells * A0)
    site = int(np.argmin(np.linalg.norm(atoms.positions - centre, axis=1)))
    origin = atoms.positions[site].copy()
    np.testing.assert_allclose(origin, centre, atol=1e-9)
    if defect == "V1":
        del atoms[site]
    elif defect == "V2":
        neighbour = int(np.argmin(np.linalg.norm(atoms.positions - (origin + 0.5 * A0), axis=1)))
        del atoms[[site, neighbour]]
    else:
        axis = {"I1<110>": [1.0, 1.0, 0.0], "I1<111>": [1.0, 1.0, 1.0]}[defect]
        shift = np.asarray(axis) / np.linalg.norm(axis)
        del atoms[site]
        atoms += Atoms("Fe2", positions=[origin + shift, origin - shift])
    return atoms


@pytest.fixture(scope="module")
def fe():
    return get_potential("fe-mendelev2003")


@pytest.fixture(scope="module")
def hessian_calc(fe):
    return fe.hessian_calculator()


@pytest.fixture(scope="module")
def bulk_result(hessian_calc):
    """Entropy of the perfect n³ cell, computed once per n."""

    @lru_cache(maxsize=None)
    def compute(n_cells: int):
        perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells, n_cells, n_cells))
        return harmonic_entropy(
            perfect, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX
        )

    return compute


@pytest.mark.parametrize(
    ("n_cells", "defect"),
    list(SPEC9_FORMATION_ENTROPY_KB),
    ids=[f"{n}a0-{d}" for n, d in SPEC9_FORMATION_ENTROPY_KB],
)
def test_formation_entropy_reproduces_spec_table(fe, hessian_calc, bulk_result, n_cells, defect):
    relaxed = fe.relax(centred_defect(n_cells, defect), fmax=FMAX, calc=hessian_calc)
    result = harmonic_entropy(relaxed, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX)
    assert result.n_imaginary == 0
    assert result.hessian_method == "analytic" and result.solver == "dense"
    s_f = formation_entropy(result, bulk_result(n_cells)) / kB
    assert s_f == pytest.approx(SPEC9_FORMATION_ENTROPY_KB[(n_cells, defect)], abs=1e-3)
    if defect == "I1<110>":
        # The dumbbell is still the <110> one: its two closest atoms lie along [110].
        centre = np.full(3, 0.5 * n_cells * A0)
        pair = np.argsort(np.linalg.norm(relaxed.positions - centre, axis=1))[:2]
        bond = relaxed.positions[pair[0]] - relaxed.positions[pair[1]]
        assert abs(bond @ np.array([1.0, 1.0, 0.0])) / (np.sqrt(2) * np.linalg.norm(bond)) > 0.999


def test_symmetric_111_crowdion_is_a_saddle_with_five_imaginary_modes(fe, hessian_calc):
    """A <111> interstitial started exactly on the axis stays on the symmetric saddle (SPEC §9)."""
    relaxed = fe.relax(centred_defect(6, "I1<111>"), fmax=FMAX, calc=hessian_calc)
    with pytest.raises(NotAMinimumError) as info:
        harmonic_entropy(relaxed, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX)
    assert info.value.n_imaginary == 5
    assert info.value.min_omega2 < -1e-3  # eV/(Å² amu): far beyond numerical noise


def test_lammps_finite_differences_with_small_step_agree_with_analytic_hessian(fe, hessian_calc):
    """SPEC §2: on the tabulated file, central differences with a 1e-4 Å step of LAMMPS forces
    agree with matscipy's analytic Hessian to ~0.1 k_B in the entropy."""
    relaxed = fe.relax(centred_defect(4, "V1"), fmax=FMAX, calc=hessian_calc)
    analytic = harmonic_entropy(
        relaxed, hessian_calc, hessian="analytic", solver="dense", fmax=FMAX
    )
    finite = harmonic_entropy(
        relaxed, fe.force_calculator(), hessian="fd", step=1e-4, solver="dense", fmax=FMAX
    )
    assert finite.hessian_method == "fd"
    assert finite.n_imaginary == 0
    assert finite.entropy_kB == pytest.approx(analytic.entropy_kB, abs=0.1)
