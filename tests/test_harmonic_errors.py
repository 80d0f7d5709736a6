"""Bad inputs each give their own clear error, and the bulk reference cell."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from matscipy.calculators.pair_potential import LennardJonesCut, PairPotential

from ase_vibentropy.errors import (
    CellMismatchError,
    InvalidStructureError,
    NotAMinimumError,
    NotRelaxedError,
    UnknownNameError,
    ZeroModeError,
)
from ase_vibentropy.harmonic import (
    bulk_for_cell,
    classify_modes,
    formation_entropy,
    harmonic_entropy,
    relax_positions,
)

EPS, SIGMA = 0.0104, 3.40
R0 = 2 ** (1 / 6) * SIGMA


def lj() -> PairPotential:
    return PairPotential({(18, 18): LennardJonesCut(EPS, SIGMA, 9.0)})


def cu_cell(n: int = 2) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n, n, n))
    atoms.calc = EMT()
    return atoms


def test_nan_positions_are_rejected():
    atoms = cu_cell()
    atoms.positions[2, 0] = np.nan
    with pytest.raises(InvalidStructureError, match="NaN"):
        harmonic_entropy(atoms)


def test_atoms_closer_than_half_an_angstrom_are_rejected():
    atoms = cu_cell()
    atoms.positions[1] = atoms.positions[0] + (0.3, 0.0, 0.0)
    with pytest.raises(InvalidStructureError, match="apart"):
        harmonic_entropy(atoms)


def test_periodic_structure_without_cell_is_rejected():
    atoms = Atoms("Cu2", positions=[(0, 0, 0), (2.5, 0, 0)], pbc=True, calculator=EMT())
    with pytest.raises(InvalidStructureError, match="cell"):
        harmonic_entropy(atoms)


def test_mixed_periodicity_is_rejected():
    atoms = cu_cell()
    atoms.pbc = (True, True, False)
    with pytest.raises(InvalidStructureError, match="mixed periodicity"):
        harmonic_entropy(atoms)


def test_unrelaxed_structure_is_refused_with_its_residual_force():
    atoms = cu_cell()
    atoms.positions[0] += (0.1, 0.05, 0.0)
    with pytest.raises(NotRelaxedError, match="not relaxed") as info:
        harmonic_entropy(atoms, fmax=1e-3)
    assert info.value.max_force > 1e-3 and info.value.fmax == 1e-3


def test_relax_option_relaxes_before_the_hessian():
    atoms = cu_cell()
    atoms.positions[0] += (0.05, 0.0, 0.0)
    relaxed = harmonic_entropy(atoms, relax=True, hessian="phonopy")
    perfect = harmonic_entropy(cu_cell(), hessian="phonopy")
    assert relaxed.entropy == pytest.approx(perfect.entropy, rel=1e-6)


def vacancy_hop_saddle() -> Atoms:
    """An fcc Cu atom halfway between two vacant nearest-neighbour sites: a symmetric saddle."""
    atoms = cu_cell(2)
    site_a = atoms.positions[0].copy()
    site_b = site_a + np.array([1.805, 1.805, 0.0])  # nearest neighbour of site a
    index_b = int(np.argmin(np.linalg.norm(atoms.positions - site_b, axis=1)))
    del atoms[[0, index_b]]
    atoms += Atoms("Cu", positions=[0.5 * (site_a + site_b)])
    atoms.calc = EMT()
    # BFGS keeps the mirror symmetry of the start, so the atom stays on the saddle.
    return relax_positions(atoms, EMT(), fmax=1e-5)


def test_vacancy_hop_saddle_is_not_a_minimum():
    saddle = vacancy_hop_saddle()
    with pytest.raises(NotAMinimumError, match="imaginary") as info:
        harmonic_entropy(saddle, EMT(), hessian="phonopy")
    assert info.value.n_imaginary >= 1 and info.value.min_omega2 < 0
    with pytest.raises(NotAMinimumError):
        harmonic_entropy(saddle, EMT(), hessian="phonopy", solver="logdet")
    report = harmonic_entropy(saddle, EMT(), hessian="phonopy", allow_imaginary=True)
    assert report.n_imaginary == info.value.n_imaginary
    assert report.min_omega2 == pytest.approx(info.value.min_omega2)


def test_planar_lennard_jones_square_is_a_saddle():
    # Four atoms on a square: in-plane forces keep it planar while relaxing, but the
    # out-of-plane butterfly mode towards the tetrahedron is unstable.
    side = 1.05 * R0
    square = Atoms("Ar4", positions=[(0, 0, 0), (side, 0, 0), (side, side, 0), (0, side, 0)])
    square = relax_positions(square, lj(), fmax=1e-7)
    with pytest.raises(NotAMinimumError) as info:
        harmonic_entropy(square, lj())
    assert info.value.n_imaginary >= 1


def test_wrong_zero_mode_count_is_reported():
    omega2 = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0])
    with pytest.raises(ZeroModeError, match="more than 3 zero modes"):
        classify_modes(omega2, n_zero=3)
    with pytest.raises(ZeroModeError, match="expected 3 zero modes"):
        classify_modes(np.array([0.0, 0.0, 0.5, 1.0, 2.0]), n_zero=3)


def test_unknown_hessian_source_and_solver_names_are_rejected():
    atoms = cu_cell()
    with pytest.raises(UnknownNameError, match="Hessian source"):
        harmonic_entropy(atoms, hessian="magic")
    with pytest.raises(UnknownNameError, match="solver"):
        harmonic_entropy(atoms, solver="qr")


def test_defect_and_bulk_results_in_different_cells_are_rejected():
    small = harmonic_entropy(cu_cell(2), hessian="phonopy")
    other = cu_cell(2)
    other.set_cell(other.cell * 1.01, scale_atoms=True)
    strained = harmonic_entropy(other, hessian="phonopy")
    with pytest.raises(CellMismatchError, match="cells differ"):
        formation_entropy(small, strained)


def test_bulk_for_cell_fills_a_strained_cubic_cell():
    a0 = 2.855324
    defect = bulk("Fe", "bcc", a=a0 * 1.02, cubic=True).repeat((3, 3, 3))
    del defect[5]
    perfect = bulk_for_cell(defect, "bcc", a0, "Fe")
    assert len(perfect) == 2 * 27
    np.testing.assert_allclose(perfect.cell[:], defect.cell[:], atol=1e-12)
    # The perfect lattice has every site of the defect cell plus the vacant one.
    distances = np.linalg.norm(perfect.positions[:, None, :] - defect.positions[None], axis=2)
    assert np.sum(distances.min(axis=0) < 1e-9) == len(defect)


def test_bulk_for_cell_rejects_non_cubic_and_non_integer_cells():
    a0 = 2.855324
    cell = bulk("Fe", "bcc", a=a0, cubic=True).repeat((3, 3, 2))
    with pytest.raises(CellMismatchError, match="not cubic"):
        bulk_for_cell(cell, "bcc", a0, "Fe")
    odd = bulk("Fe", "bcc", a=a0, cubic=True).repeat((3, 3, 3))
    odd.set_cell(odd.cell * (3.5 / 3), scale_atoms=True)
    with pytest.raises(CellMismatchError, match="whole number"):
        bulk_for_cell(odd, "bcc", a0, "Fe")
    with pytest.raises(UnknownNameError, match="lattice"):
        bulk_for_cell(odd, "hcp", a0, "Fe")


def test_relaxation_that_runs_out_of_steps_is_refused():
    atoms = cu_cell()
    atoms.positions[0] += (0.2, 0.1, 0.0)
    with pytest.raises(NotRelaxedError, match="did not converge in 2 steps"):
        relax_positions(atoms, EMT(), fmax=1e-6, steps=2)
    with pytest.raises(UnknownNameError, match="optimizer"):
        relax_positions(atoms, EMT(), optimizer="newton")


def test_spectrum_only_options_are_refused_by_the_logdet_solver():
    atoms = cu_cell()
    with pytest.raises(ValueError, match="spectrum"):
        harmonic_entropy(atoms, solver="logdet", quantum=True)
    with pytest.raises(ValueError, match="periodic cell"):
        harmonic_entropy(Atoms("Ar2", positions=[(0, 0, 0), (R0, 0, 0)], calculator=lj()),
                         solver="logdet")
