"""Totals through the exact bulk: S = (N_d/N_b) S_b + S_f with S_b exact and S_f from the model.

Independent expectations: the exact harmonic entropy of the same cells (dense diagonalisation
for the small ones, the log-det route for the 8a0 defect cells), and Σ_i s_i = S.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.io import read
from ase.units import kB

from ase_vibentropy.eam import mendelev2003_fe
from ase_vibentropy.harmonic import harmonic_entropy, perfect_cubic_supercell
from ase_vibentropy.predictor import EntropyPredictor

A0 = 2.855324
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


@pytest.fixture(scope="module")
def predictor():
    return EntropyPredictor("fe-mendelev2003-afs")


@pytest.mark.parametrize("n_cells, strain", [(3, 0.0), (4, 0.01), (6, -0.01)])
def test_totals_of_perfect_cells_are_the_exact_entropies(predictor, n_cells, strain):
    perfect = perfect_cubic_supercell("Fe", "bcc", A0 * (1 + strain), n_cells)
    exact = harmonic_entropy(perfect, mendelev2003_fe(), solver="dense", fmax=None).entropy
    total, std = predictor.predict_entropy(perfect, return_std=True)
    assert predictor.total_route(perfect) == "exact bulk + S_f"
    assert total == pytest.approx(exact, abs=1e-8 * kB)  # S_f of the lattice itself is 0
    assert 0 < std / kB < 2.0


@pytest.mark.parametrize("name", ["fe_vacancy_8a0", "fe_dumbbell110_8a0"])
def test_totals_of_defect_cells_are_within_twice_their_std(predictor, name):
    atoms = read(EXAMPLES / f"{name}.extxyz")
    exact = harmonic_entropy(atoms, mendelev2003_fe(), fmax=None).entropy
    total, std = predictor.predict_entropy(atoms, return_std=True)
    assert abs(total - exact) <= max(0.5 * kB, 2 * std)
    own = EntropyPredictor("fe-mendelev2003-afs", exact_bulk=False).predict_entropy(atoms)
    assert abs(own - exact) > 3 * kB  # the model's own total misses the per-cell term
    local = predictor.local_entropies(atoms)
    assert local.sum() == pytest.approx(total, rel=1e-12)


def test_structures_without_a_reference_get_the_models_own_total(predictor):
    cluster = perfect_cubic_supercell("Fe", "bcc", A0, 2)
    cluster.pbc = False
    cluster.cell = [30.0, 30.0, 30.0]
    assert predictor.total_route(cluster) == "model"
    assert EntropyPredictor("fe-mendelev2003-afs", exact_bulk=False).total_route(
        perfect_cubic_supercell("Fe", "bcc", A0, 3)) == "model"
