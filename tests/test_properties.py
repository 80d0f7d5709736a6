"""Property-based tests (Hypothesis) of the LDML entropy over random small cells.

For any valid structure the predicted S = w · Σ_i D_i + c N (Eq. 14) must be

* invariant under a rigid translation, a rotation of the cell together with the atoms, and a
  permutation of like atoms (the local entropies permute with the atoms);
* extensive: a 2x1x1 replica has 2 S and a 2x2x2 replica 8 S at the training temperature T0
  (the ln(T/T0) shift counts 3N - 3 modes and is not extensive, so T0 is where this is exact);
* finite, with a finite predictive std, whenever no two atoms are closer than 0.8 Å.

The model is a small AFS (n_max = 4, l_max = 3, r_cut = 4.5 Å) fitted on the exactly linear
synthetic entropies of ``ldml_helpers``; its weights are generic, which is what these
properties need. Random cells are triclinic, 3.2-6 Å edges (smaller than r_cut, so periodic
images of an atom are its neighbours), with 1-6 atoms.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from ase import Atoms
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from ldml_helpers import RadialPolyDescriptor, defect_cells, linear_entropy_kB

from ase_vibentropy.descriptors import get as get_descriptor
from ase_vibentropy.model import LDMLModel
from ase_vibentropy.units import KB_EV_PER_K
from ase_vibentropy.predictor import EntropyPredictor

AFS = {"n_max": 4, "l_max": 3, "r_cut": 4.5}
MIN_DISTANCE = 0.8  # Å

PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


@lru_cache(maxsize=1)
def model() -> LDMLModel:
    """Small-AFS model (target "total") on 36 synthetic Cu cells with S linear in another descriptor."""
    provider = get_descriptor("afs", **AFS)
    truth = RadialPolyDescriptor(dim=4)
    cells = [atoms for _, _, atoms in defect_cells(np.random.default_rng(7))]
    X = np.array([provider.compute_sum(atoms) for atoms in cells])
    y = np.array([linear_entropy_kB(atoms, [0.6, -1.1, 1.8, 0.4], 2.2, truth) for atoms in cells])
    estimator = LDMLModel(descriptor="afs", descriptor_params=dict(AFS), target="total")
    return estimator.fit(X, y, n_atoms=[len(atoms) for atoms in cells])


def entropy_kB(atoms: Atoms) -> float:
    return EntropyPredictor(model()).predict_entropy(atoms) / KB_EV_PER_K


def minimum_image_distance(atoms: Atoms) -> float:
    """Shortest distance between two atoms or an atom and a periodic image, Å (plain loops)."""
    cell = atoms.cell.array
    shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ cell
    best = np.inf
    for i in range(len(atoms)):
        for j in range(len(atoms)):
            d = np.linalg.norm(atoms.positions[j] + shifts - atoms.positions[i], axis=1)
            if i == j:
                d = d[np.any(shifts != 0, axis=1)]
            best = min(best, d.min())
    return best


@st.composite
def periodic_cells(draw) -> Atoms:
    """A triclinic Cu cell (edges 3.2-6 Å, shears up to 30 %) with 1-6 atoms >= 0.8 Å apart."""
    lengths = draw(arrays(float, 3, elements=st.floats(3.2, 6.0)))
    shear = draw(arrays(float, 3, elements=st.floats(-0.3, 0.3)))
    cell = np.diag(lengths)
    cell[1, 0], cell[2, 0], cell[2, 1] = shear * lengths[[1, 2, 2]]
    n = draw(st.integers(1, 6))
    fractional = draw(arrays(float, (n, 3), elements=st.floats(0.0, 1.0, exclude_max=True)))
    atoms = Atoms(f"Cu{n}", scaled_positions=fractional, cell=cell, pbc=True)
    assume(minimum_image_distance(atoms) >= MIN_DISTANCE)
    return atoms


@st.composite
def rotations(draw) -> np.ndarray:
    """A proper rotation matrix (3, 3) from a random unit quaternion."""
    q = draw(arrays(float, 4, elements=st.floats(-1.0, 1.0)))
    norm = np.linalg.norm(q)
    assume(norm > 0.1)
    w, x, y, z = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@PROPERTY_SETTINGS
@given(atoms=periodic_cells(), shift=arrays(float, 3, elements=st.floats(-20.0, 20.0)))
def test_entropy_is_invariant_under_rigid_translation(atoms, shift):
    moved = atoms.copy()
    moved.positions += shift  # atoms leave the cell: only periodic images matter
    assert entropy_kB(moved) == pytest.approx(entropy_kB(atoms), rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(
        EntropyPredictor(model()).local_entropies(moved), EntropyPredictor(model()).local_entropies(atoms), rtol=1e-10, atol=1e-14
    )


@PROPERTY_SETTINGS
@given(atoms=periodic_cells(), rotation=rotations())
def test_entropy_is_invariant_when_cell_and_atoms_rotate_together(atoms, rotation):
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    turned = atoms.copy()
    turned.set_cell(atoms.cell.array @ rotation.T, scale_atoms=True)  # rotates the atoms too
    np.testing.assert_allclose(turned.positions, atoms.positions @ rotation.T, atol=1e-10)
    assert entropy_kB(turned) == pytest.approx(entropy_kB(atoms), rel=1e-10, abs=1e-10)


@PROPERTY_SETTINGS
@given(atoms=periodic_cells(), data=st.data())
def test_entropy_is_invariant_under_permutation_and_local_entropies_follow_the_atoms(atoms, data):
    order = np.array(data.draw(st.permutations(range(len(atoms)))))
    shuffled = atoms[order]
    assert entropy_kB(shuffled) == pytest.approx(entropy_kB(atoms), rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(
        EntropyPredictor(model()).local_entropies(shuffled), EntropyPredictor(model()).local_entropies(atoms)[order], rtol=1e-10, atol=1e-14
    )


@PROPERTY_SETTINGS
@given(atoms=periodic_cells())
def test_replicas_have_two_and_eight_times_the_entropy(atoms):
    single = entropy_kB(atoms)
    assert entropy_kB(atoms.repeat((2, 1, 1))) == pytest.approx(2 * single, rel=1e-9, abs=1e-9)
    assert entropy_kB(atoms.repeat((2, 2, 2))) == pytest.approx(8 * single, rel=1e-9, abs=1e-9)


@st.composite
def clusters(draw) -> Atoms:
    """An isolated Cu cluster of 2-8 atoms in a 12 Å box, atoms >= 0.8 Å apart."""
    n = draw(st.integers(2, 8))
    positions = draw(arrays(float, (n, 3), elements=st.floats(0.0, 12.0)))
    distances = np.linalg.norm(positions[:, None] - positions[None, :], axis=-1)
    assume(distances[np.triu_indices(n, 1)].min() >= MIN_DISTANCE)
    return Atoms(f"Cu{n}", positions=positions, pbc=False)


@PROPERTY_SETTINGS
@given(atoms=st.one_of(periodic_cells(), clusters()), temperature=st.floats(1.0, 3000.0))
def test_prediction_is_finite_for_every_valid_structure(atoms, temperature):
    entropy, std = EntropyPredictor(model()).predict_entropy(atoms, temperature=temperature, return_std=True)
    local = EntropyPredictor(model()).local_entropies(atoms, temperature=temperature)
    assert np.isfinite(entropy) and np.isfinite(std) and std > 0
    assert np.isfinite(local).all() and local.shape == (len(atoms),)
    # Eq. 13: the local entropies add up to S at every temperature.
    assert local.sum() == pytest.approx(entropy, rel=1e-9, abs=1e-12)
