"""Provider protocol, registry, neighbour pairs and spatial chunks (the provider contract).

A toy pair descriptor written in this file exercises the base class, and deliberately broken
variants of it show that the shared checks in ``descriptor_checks`` catch what they claim to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list
from descriptor_checks import (
    assert_compute_sum_matches,
    assert_extensive,
    assert_permutation_invariant,
    assert_rotation_invariant,
    assert_smooth_at_cutoff,
    assert_translation_invariant,
    assert_vjp_matches_finite_differences,
    bcc_fe,
    fe_vacancy_cell,
    random_cluster,
    triclinic_fe_cell,
)

from ase_vibentropy import descriptors
from ase_vibentropy.descriptors.base import DescriptorProvider
from ase_vibentropy.descriptors.chunks import iter_spatial_chunks
from ase_vibentropy.descriptors.neighbors import neighbor_pairs
from ase_vibentropy.structure import check_structure
from ase_vibentropy.errors import DescriptorError, InvalidStructureError, UnknownNameError


class PairSums(DescriptorProvider):
    """D_i = [Σ_j f(r_ij), Σ_j f(r_ij)²] with f(r) = (1 - r/r_c)³: smooth, local, invariant."""

    name = "pair-sums"

    def __init__(self, r_cut: float = 4.0, species: list[str] | None = None):
        self.r_cut = r_cut
        self._species = species

    @property
    def params(self) -> dict[str, Any]:
        return {"r_cut": self.r_cut, "species": self._species}

    @property
    def dim(self) -> int:
        return 2

    def _f(self, d):
        x = 1 - d / self.r_cut
        return x**3, -3 * x**2 / self.r_cut

    def _compute_centers(self, atoms, centers):
        pairs = neighbor_pairs(atoms, self.r_cut, centers)
        f, _ = self._f(pairs.d)
        row = np.full(len(atoms), -1)
        row[centers] = np.arange(len(centers))
        out = np.zeros((len(centers), 2))
        out[:, 0] = np.bincount(row[pairs.i], f, minlength=len(centers))
        out[:, 1] = np.bincount(row[pairs.i], f * f, minlength=len(centers))
        return out

    def vjp(self, atoms, w):
        self.check_atoms(atoms)
        w = self.check_weights(w)
        pairs = neighbor_pairs(atoms, self.r_cut)
        f, df = self._f(pairs.d)
        dE_dD = ((w[0] + 2 * w[1] * f) * df / pairs.d)[:, None] * pairs.D
        grad = np.zeros((len(atoms), 3))
        for a in range(3):
            grad[:, a] = np.bincount(pairs.j, dE_dD[:, a], len(atoms)) - np.bincount(
                pairs.i, dE_dD[:, a], len(atoms)
            )
        return grad


class AbsoluteX(PairSums):
    """Broken on purpose: adds the atom's x coordinate."""

    def _compute_centers(self, atoms, centers):
        out = super()._compute_centers(atoms, centers)
        out[:, 0] += atoms.positions[centers, 0]
        return out


class StepCutoff(PairSums):
    """Broken on purpose: a hard step at r_c."""

    def _f(self, d):
        return np.ones_like(d), np.zeros_like(d)


class WrongSignGradient(PairSums):
    """Broken on purpose: the vjp has the wrong sign."""

    def vjp(self, atoms, w):
        return -super().vjp(atoms, w)


# --------------------------------------------------------------------------- registry
def test_builtin_providers_are_registered_through_entry_points():
    names = descriptors.available()
    assert {"afs", "soap"} <= set(names)


def test_unknown_descriptor_name_raises_and_lists_known_names():
    with pytest.raises(UnknownNameError, match=r"unknown descriptor 'nope'.*afs"):
        descriptors.get("nope")


def test_hash_depends_on_name_and_params_only():
    a, b = PairSums(4.0), PairSums(4.0)
    assert a.hash == b.hash and len(a.hash) == 16
    assert PairSums(4.5).hash != a.hash
    assert "r_cut=4.0" in repr(a)


def test_species_outside_the_configuration_raise_descriptor_error():
    provider = PairSums(species=["Fe"])
    atoms = bcc_fe(2)
    atoms.symbols[0] = "Ni"
    with pytest.raises(DescriptorError, match="Ni"):
        provider.compute(atoms)


def test_providers_without_gradients_say_so():
    class NoGradient(PairSums):
        vjp = DescriptorProvider.vjp

    provider = NoGradient()
    assert not provider.has_gradient and PairSums().has_gradient
    with pytest.raises(NotImplementedError):
        provider.vjp(bcc_fe(1), np.ones(2))


# --------------------------------------------------------------------------- neighbours, structure checks
@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell, random_cluster, bcc_fe])
def test_neighbor_pairs_match_ase_including_images(make):
    atoms = make(1) if make is bcc_fe else make()  # bcc_fe(1): 2.9 Å cell, atoms see own images
    cutoff = 6.0  # longer than half of every cell height: several images of each atom
    pairs = neighbor_pairs(atoms, cutoff)
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    assert np.all(np.diff(pairs.i) >= 0)
    ours = np.lexsort((np.round(pairs.d, 9), pairs.j, pairs.i))
    ref = np.lexsort((np.round(d, 9), j, i))
    assert np.array_equal(pairs.i[ours], i[ref]) and np.array_equal(pairs.j[ours], j[ref])
    assert np.allclose(pairs.d[ours], d[ref], atol=1e-12)
    assert np.allclose(np.linalg.norm(pairs.D, axis=1), pairs.d)


def test_neighbor_pairs_of_selected_centres():
    atoms = fe_vacancy_cell(2)
    pairs = neighbor_pairs(atoms, 5.0, centers=np.array([3, 7]))
    full = neighbor_pairs(atoms, 5.0)
    assert set(pairs.i) == {3, 7}
    assert len(pairs.i) == np.isin(full.i, [3, 7]).sum()


def test_fast_structure_check_catches_what_check_structure_catches():
    atoms = bcc_fe(2)
    atoms.positions[5] = atoms.positions[2] + [0.2, 0.1, 0.0]
    with pytest.raises(InvalidStructureError, match="apart"):
        check_structure(atoms)
    bad = bcc_fe(2)
    bad.positions[0, 0] = np.nan
    with pytest.raises(InvalidStructureError, match="NaN"):
        check_structure(bad)
    with pytest.raises(InvalidStructureError, match="no atoms"):
        check_structure(Atoms())
    slab = bcc_fe(2)
    slab.pbc = [True, True, False]
    with pytest.raises(InvalidStructureError, match="mixed periodicity"):
        check_structure(slab)
    check_structure(random_cluster())


# --------------------------------------------------------------------------- spatial chunks
@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell, random_cluster])
def test_spatial_chunks_cover_every_atom_once_with_its_whole_environment(make):
    atoms = make(n_atoms=25, radius=5.0) if make is random_cluster else make(3)
    halo = 4.0
    seen = np.zeros(len(atoms), int)
    for sub, n_centers in iter_spatial_chunks(atoms, halo, chunk_size=4):
        parent = sub.arrays["parent_index"]
        seen[parent[:n_centers]] += 1
        # every neighbour of a centre within the halo is present in the chunk
        sub_pairs = neighbor_pairs(sub, halo, np.arange(n_centers))
        full = neighbor_pairs(atoms, halo, parent[:n_centers])
        assert len(sub_pairs.i) == len(full.i)
    assert np.all(seen == 1)


def test_chunked_sum_of_the_toy_descriptor_equals_unchunked():
    provider = PairSums(4.0)
    for atoms in (fe_vacancy_cell(3), triclinic_fe_cell(3), random_cluster(30, radius=6.0)):
        for chunk_size in (3, 10, 40):
            assert_compute_sum_matches(provider, atoms, chunk_size, rtol=1e-12)


# --------------------------------------------------------------------------- the shared checks themselves
def test_shared_checks_pass_for_a_correct_descriptor():
    provider = PairSums(4.0)
    atoms = fe_vacancy_cell(2)
    assert_translation_invariant(provider, atoms)
    assert_rotation_invariant(provider, atoms)
    assert_permutation_invariant(provider, atoms)
    assert_extensive(provider, atoms)
    assert_vjp_matches_finite_differences(provider, atoms)
    assert_smooth_at_cutoff(provider)


def test_shared_checks_catch_a_descriptor_that_is_not_translation_invariant():
    with pytest.raises(AssertionError, match="translation"):
        assert_translation_invariant(AbsoluteX(), random_cluster())


def test_shared_checks_catch_a_descriptor_that_is_not_rotation_invariant():
    with pytest.raises(AssertionError, match="rotation"):
        assert_rotation_invariant(AbsoluteX(), random_cluster())


def test_shared_checks_catch_a_hard_cutoff():
    with pytest.raises(AssertionError, match="not smooth"):
        assert_smooth_at_cutoff(StepCutoff())


def test_shared_checks_catch_a_wrong_gradient():
    with pytest.raises(AssertionError, match="central differences"):
        assert_vjp_matches_finite_differences(WrongSignGradient(), fe_vacancy_cell(2))


def test_shared_checks_catch_a_descriptor_that_is_not_extensive():
    class Global(PairSums):
        is_local = False

        def _compute_centers(self, atoms, centers):
            return np.full((len(centers), 2), 1.0 / len(atoms))

    with pytest.raises(AssertionError, match="extensivity"):
        assert_extensive(Global(), bcc_fe(1))
