"""The shipped bcc-Fe models load by name and predict SPEC §9's defects (issue 7).

The structures are built and relaxed here (Mendelev 2003 EAM, fixed cubic cell, 1e-5 eV/Å);
the expected formation entropies are SPEC §9's table, measured independently of this package.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from ase_vibentropy.harmonic import bulk_for_cell
from ase_vibentropy.model_io import load_model, shipped_models
from ase_vibentropy.potentials import get_potential
from ase_vibentropy.units import KB_EV_PER_K
from test_reference_fe import A0, FMAX, centred_defect

pytestmark = pytest.mark.lammps

#: SPEC §9, formation entropies of relaxed defects in k_B: (cells per edge, defect) -> S_f.
SPEC9_KB = {
    (6, "V1"): 3.287, (6, "V2"): 5.073, (6, "I1<110>"): 4.099,
    (8, "V1"): 4.127, (8, "V2"): 6.470, (8, "I1<110>"): 6.055,
}

FE_MODELS = sorted(name for name in shipped_models() if name.startswith("fe-mendelev2003-"))


@lru_cache(maxsize=None)
def relaxed_defect(n_cells: int, defect: str):
    return get_potential("fe-mendelev2003").relax(centred_defect(n_cells, defect), fmax=FMAX)


def test_the_three_descriptors_are_shipped():
    assert FE_MODELS == ["fe-mendelev2003-afs", "fe-mendelev2003-bso4",
                         "fe-mendelev2003-scattering"]


@pytest.mark.parametrize("name", FE_MODELS)
@pytest.mark.parametrize("cell_defect", sorted(SPEC9_KB))
def test_shipped_model_predicts_spec9_formation_entropy_within_1_kB(name, cell_defect):
    model = load_model(name)
    assert (model.element, model.lattice) == ("Fe", "bcc")
    atoms = relaxed_defect(*cell_defect)
    bulk = bulk_for_cell(atoms, "bcc", A0, "Fe")
    predicted = model.predict_formation_entropy(atoms, bulk) / KB_EV_PER_K
    assert predicted == pytest.approx(SPEC9_KB[cell_defect], abs=1.0)
