"""Bloch's theorem on perfect cubic supercells: the O(N) spectrum equals the dense one."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_vibentropy.errors import CellMismatchError
from ase_vibentropy.harmonic import (
    bloch_omega2,
    compute_hessian,
    decompose_perfect_lattice,
    harmonic_entropy,
    omega2_spectrum,
)


def shuffled_supercell(lattice: str, a: float, n: int, seed: int = 3):
    """A perfect supercell with atoms in random order and the origin off any site."""
    atoms = bulk("Cu", lattice, a=a, cubic=True).repeat((n, n, n))
    atoms = atoms[np.random.default_rng(seed).permutation(len(atoms))]
    atoms.positions += (0.37, -0.21, 0.05)
    atoms.wrap()
    return atoms


@pytest.mark.parametrize(
    ("lattice", "a", "n", "n_basis"), [("fcc", 3.61, 2, 4), ("bcc", 2.87, 3, 2), ("sc", 2.4, 3, 1)]
)
def test_bloch_spectrum_equals_dense_spectrum(lattice, a, n, n_basis):
    atoms = shuffled_supercell(lattice, a, n)
    decomposition = decompose_perfect_lattice(atoms)
    assert (decomposition.n, decomposition.n_basis) == (n, n_basis)
    hessian = compute_hessian(atoms, EMT(), method="phonopy")
    dense = omega2_spectrum(hessian, atoms.get_masses())
    np.testing.assert_allclose(bloch_omega2(atoms, hessian), dense, rtol=0, atol=1e-12)


def test_auto_solver_uses_bloch_for_a_perfect_lattice_only():
    perfect = shuffled_supercell("fcc", 3.61, 2)
    perfect.calc = EMT()
    hessian = compute_hessian(perfect, method="phonopy")
    auto = harmonic_entropy(perfect, hessian=hessian)
    dense = harmonic_entropy(perfect, hessian=hessian, solver="dense")
    assert auto.solver == "bloch"
    assert auto.entropy == pytest.approx(dense.entropy, rel=1e-12)
    vacancy = perfect.copy()
    del vacancy[0]
    vacancy.calc = EMT()
    assert harmonic_entropy(vacancy, hessian="phonopy", fmax=None).solver == "dense"


def test_bloch_refuses_a_structure_that_is_not_a_perfect_lattice():
    atoms = shuffled_supercell("fcc", 3.61, 2)
    hessian = compute_hessian(atoms, EMT(), method="phonopy")
    displaced = atoms.copy()
    displaced.positions[4] += (0.05, 0.0, 0.0)
    with pytest.raises(CellMismatchError, match="not a perfect lattice"):
        bloch_omega2(displaced, hessian)
    vacancy = atoms.copy()
    del vacancy[0]
    with pytest.raises(CellMismatchError, match="not a perfect lattice"):
        decompose_perfect_lattice(vacancy)


def test_bloch_refuses_a_hessian_without_translational_symmetry():
    atoms = shuffled_supercell("fcc", 3.61, 2)
    hessian = compute_hessian(atoms, EMT(), method="phonopy")
    lat = decompose_perfect_lattice(atoms)
    far = int(np.flatnonzero((lat.cell_index == 1).all(axis=1))[0])
    broken = hessian.copy()
    broken[3 * far, 3 * far] *= 1.1
    with pytest.raises(CellMismatchError, match="not invariant"):
        bloch_omega2(atoms, broken)


def test_a_relaxed_defect_cell_is_not_taken_for_a_perfect_lattice():
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.optimize import BFGS

    from ase_vibentropy.harmonic.bloch import is_perfect_lattice

    perfect = bulk("Cu", "fcc", a=3.59, cubic=True) * (3, 3, 3)
    assert is_perfect_lattice(perfect)
    vacancy = perfect.copy()
    del vacancy[0]
    vacancy.calc = EMT()
    BFGS(vacancy, logfile=None).run(fmax=1e-3, steps=50)
    assert not is_perfect_lattice(vacancy)

