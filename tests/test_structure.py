"""Structure sanity checks and zero-mode counts."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from ase_vibentropy.errors import InvalidStructureError
from ase_vibentropy.structure import check_structure, closest_pair, n_zero_modes, periodicity


def fe_cell():
    return bulk("Fe", "bcc", a=2.855324, cubic=True) * (2, 2, 2)


def test_valid_periodic_cell_passes():
    check_structure(fe_cell())


def test_nan_position_is_rejected():
    atoms = fe_cell()
    atoms.positions[3, 1] = np.nan
    with pytest.raises(InvalidStructureError, match="NaN or infinite"):
        check_structure(atoms)


def test_infinite_position_is_rejected():
    atoms = fe_cell()
    atoms.positions[0, 0] = np.inf
    with pytest.raises(InvalidStructureError, match="index 0"):
        check_structure(atoms)


def test_empty_atoms_is_rejected():
    with pytest.raises(InvalidStructureError, match="no atoms"):
        check_structure(Atoms())


def test_periodic_without_cell_is_rejected():
    atoms = Atoms("Fe2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], pbc=True)
    with pytest.raises(InvalidStructureError, match="cell is missing"):
        check_structure(atoms)


def test_mixed_periodicity_is_rejected():
    atoms = fe_cell()
    atoms.pbc = [True, True, False]
    with pytest.raises(InvalidStructureError, match="mixed periodicity"):
        check_structure(atoms)


def test_close_atoms_are_rejected_with_their_indices():
    atoms = fe_cell()
    atoms.positions[5] = atoms.positions[2] + [0.3, 0.0, 0.0]
    with pytest.raises(InvalidStructureError, match="atoms 2 and 5|atoms 5 and 2"):
        check_structure(atoms)


def test_close_periodic_images_are_rejected():
    atoms = Atoms("Fe2", positions=[[0.1, 0, 0], [9.8, 0, 0]], cell=[10, 10, 10], pbc=True)
    distance, _ = closest_pair(atoms)
    assert distance == pytest.approx(0.3)
    with pytest.raises(InvalidStructureError):
        check_structure(atoms)


def test_not_an_atoms_object_is_rejected():
    with pytest.raises(InvalidStructureError, match="ase.Atoms"):
        check_structure([[0, 0, 0]])


def test_zero_mode_counts():
    assert n_zero_modes(fe_cell()) == 3
    assert n_zero_modes(molecule("H2O")) == 6
    assert n_zero_modes(molecule("CO2")) == 5
    assert periodicity(molecule("H2O")) == "isolated"
