"""The closed-form Mendelev 2003 Fe EAM and the EAM calculator: derivatives against finite
differences, Hessian symmetries and invariances, on-site blocks and rows against the full matrix."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from ase.build import bulk
from scipy.spatial.transform import Rotation

from ase_vibentropy.eam import EAMCalculator, mendelev2003_fe
from ase_vibentropy.eam import mendelev2003 as closed_form
from ase_vibentropy.eam.functions import ExpPolynomial, PiecewiseCubic, ScreenedCoulomb
from ase_vibentropy.errors import InvalidStructureError
from ase_vibentropy.harmonic.hessian import finite_difference_hessian

A0 = 2.855324  # Å


def rattled_fe_vacancy(n_cells: int, rng: np.random.Generator, amplitude: float = 0.05):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells,) * 3)
    del atoms[0]
    atoms.positions += rng.normal(0.0, amplitude, atoms.positions.shape)
    return atoms


def central_differences(function, x, h):
    return (function(x + h) - function(x - h)) / (2 * h)


@pytest.mark.parametrize(
    ("name", "function", "x"),
    [
        ("pair >= 2 Å", closed_form.pair_energy(), np.linspace(2.01, 5.29, 97)),
        ("pair bridge", closed_form.pair_energy(), np.linspace(1.01, 1.99, 23)),
        ("pair Coulomb", closed_form.pair_energy(), np.linspace(0.3, 0.99, 17)),
        ("density", closed_form.electron_density(), np.linspace(0.5, 4.19, 61)),
        ("embedding", closed_form.embedding_energy(), np.linspace(0.5, 40.0, 41)),
    ],
)
def test_each_function_derivative_is_the_central_difference_of_the_one_below(name, function, x):
    # keep away from the knots, where the third derivative jumps
    knots = np.concatenate([closed_form.PAIR_KNOTS_A, closed_form.DENSITY_KNOTS_A, [1.0, 2.0]])
    x = x[np.min(np.abs(x[:, None] - knots[None, :]), axis=1) > 1e-3] if name != "embedding" else x
    h = 1e-6 * max(1.0, float(np.abs(x).max()))
    value, first, second = function(x)
    third = function.third(x)
    for lower, upper, k in ((value, first, 0), (first, second, 1), (second, third, 2)):
        numeric = central_differences(lambda y: function(y)[k], x, h)
        scale = max(np.abs(upper).max(), 1e-3)
        np.testing.assert_allclose(numeric, upper, rtol=0, atol=2e-6 * scale, err_msg=name)


def test_pair_function_is_c1_at_the_2_angstrom_bridge_with_the_known_curvature_jump():
    pair = closed_form.pair_energy()
    below, above = pair(np.array([2.0 - 1e-12])), pair(np.array([2.0]))
    assert below[0][0] == pytest.approx(above[0][0], abs=1e-9)
    assert below[1][0] == pytest.approx(above[1][0], abs=1e-8)
    assert above[2][0] - below[2][0] == pytest.approx(-18.8, abs=0.05)  # eV/Å²


def test_truncated_cubics_are_exactly_the_sum_of_their_terms():
    """Independent evaluation: the defining sum Σ a_k (r_k - r)³ H(r_k - r), term by term."""
    r = np.linspace(2.0, 6.0, 1001)
    direct = sum(a * np.clip(rk - r, 0.0, None) ** 3
                 for a, rk in zip(closed_form.PAIR_COEFFICIENTS, closed_form.PAIR_KNOTS_A))
    np.testing.assert_allclose(closed_form.pair_energy()(r)[0], direct, rtol=0, atol=1e-11)
    assert np.all(closed_form.electron_density()(np.array([4.2, 5.0]))[0] == 0.0)


def test_the_truncated_cubic_knot_coefficient_signs_that_reproduce_the_published_potential():
    # The 2.7 Å coefficient is negative; with + the lattice constant would not be 2.855 Å.
    assert closed_form.PAIR_COEFFICIENTS[5] < 0


def test_bcc_lattice_constant_is_the_zero_pressure_one():
    atoms = bulk("Fe", "bcc", a=A0, cubic=True)
    atoms.calc = mendelev2003_fe()
    assert np.abs(atoms.get_stress()[:3]).max() < 1e-6  # eV/Å³ (1e-6 eV/Å³ = 0.16 MPa)


def test_forces_are_minus_the_energy_gradient(rng):
    atoms = rattled_fe_vacancy(3, rng)
    atoms.calc = mendelev2003_fe()
    forces = atoms.get_forces()
    h = 1e-5
    for i, alpha in [(0, 0), (7, 1), (len(atoms) - 1, 2)]:
        moved = [atoms.copy(), atoms.copy()]
        moved[0].positions[i, alpha] += h
        moved[1].positions[i, alpha] -= h
        energies = []
        for m in moved:
            m.calc = mendelev2003_fe()
            energies.append(m.get_potential_energy())
        assert -(energies[0] - energies[1]) / (2 * h) == pytest.approx(forces[i, alpha], abs=1e-7)
    assert np.abs(forces.sum(axis=0)).max() < 1e-10
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-14)


def test_stress_is_the_strain_derivative_of_the_energy(rng):
    atoms = rattled_fe_vacancy(3, rng)
    atoms.calc = mendelev2003_fe()
    stress = atoms.get_stress(voigt=False)
    h = 1e-6
    for a, b in [(0, 0), (1, 2), (0, 1)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h / (2 if a != b else 1)
            strain[b, a] += sign * h / 2 if a != b else 0
            moved = atoms.copy()
            moved.set_cell(atoms.cell @ strain, scale_atoms=True)
            moved.calc = mendelev2003_fe()
            energies.append(moved.get_potential_energy())
        numeric = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
        assert numeric == pytest.approx(stress[a, b], abs=1e-9)


def test_hessian_is_the_derivative_of_the_forces_to_one_part_in_a_million(rng):
    atoms = rattled_fe_vacancy(2, rng)  # 2a0: shorter than 2 r_c, atoms see their own images
    calc = mendelev2003_fe()
    numeric = finite_difference_hessian(atoms, calc, step=1e-4)
    analytic = calc.get_hessian(atoms, format="dense")
    assert abs(analytic - numeric).max() < 1e-6 * abs(analytic).max()


def test_hessian_is_symmetric_translation_invariant_and_rotation_covariant(rng):
    atoms = rattled_fe_vacancy(3, rng)
    calc = mendelev2003_fe()
    hessian = calc.get_hessian(atoms)
    scale = abs(hessian).max()
    assert abs(hessian - hessian.T).max() < 1e-12 * scale
    translation = np.tile(np.eye(3), (len(atoms), 1))  # (3N, 3): rigid shifts along x, y, z
    assert abs(hessian @ translation).max() < 1e-12 * scale
    rotation = Rotation.random(random_state=7).as_matrix()
    turned = atoms.copy()
    turned.set_cell(atoms.cell @ rotation.T, scale_atoms=True)
    block = np.kron(np.eye(len(atoms)), rotation)
    expected = block @ hessian.toarray() @ block.T
    np.testing.assert_allclose(calc.get_hessian(turned, format="dense"), expected,
                               rtol=0, atol=1e-10 * scale)
    turned.calc, atoms.calc = mendelev2003_fe(), mendelev2003_fe()
    assert turned.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), rel=1e-13)


def test_hessian_of_a_permuted_structure_is_the_permuted_hessian(rng):
    atoms = rattled_fe_vacancy(2, rng)
    calc = mendelev2003_fe()
    order = rng.permutation(len(atoms))
    dof = (3 * order[:, None] + np.arange(3)).ravel()
    np.testing.assert_allclose(calc.get_hessian(atoms[order], format="dense"),
                               calc.get_hessian(atoms, format="dense")[np.ix_(dof, dof)], atol=1e-12)


def test_dynamical_matrix_option_divides_by_the_masses(rng):
    atoms = rattled_fe_vacancy(2, rng)
    calc = mendelev2003_fe()
    hessian = calc.get_hessian(atoms, format="dense")
    dynamical = calc.get_hessian(atoms, format="dense", divide_by_masses=True)
    inv_sqrt_mass = 1.0 / np.sqrt(np.repeat(atoms.get_masses(), 3))
    np.testing.assert_allclose(dynamical, hessian * np.outer(inv_sqrt_mass, inv_sqrt_mass))


@pytest.mark.parametrize("n_cells", [1, 2, 4])  # 1 and 2: an atom sees its own images
def test_onsite_blocks_are_the_diagonal_blocks_of_the_full_hessian(n_cells, rng):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells, n_cells, 2 * n_cells))
    del atoms[0]
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    calc = mendelev2003_fe()
    full = calc.get_hessian(atoms, format="dense")
    diagonal = np.array([full[3 * i:3 * i + 3, 3 * i:3 * i + 3] for i in range(len(atoms))])
    onsite = calc.get_onsite_hessian(atoms)
    assert onsite.shape == (len(atoms), 3, 3)
    np.testing.assert_allclose(onsite, diagonal, rtol=0, atol=1e-12 * abs(diagonal).max())


@pytest.mark.parametrize("n_cells", [1, 3])  # 1: atoms see their own images
def test_onsite_log_det_gradient_matches_finite_differences(n_cells, rng):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells, n_cells, 2))
    del atoms[0]
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    calc = mendelev2003_fe()
    weights = rng.uniform(0.5, 1.5, len(atoms))

    def weighted_log_det(moved):
        return float(weights @ np.linalg.slogdet(calc.get_onsite_hessian(moved))[1])

    analytic = calc.get_onsite_log_det_gradient(atoms, weights)
    step = 1e-5
    for k in (0, len(atoms) // 2, len(atoms) - 1):
        for alpha in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[k, alpha] += step
            minus.positions[k, alpha] -= step
            numeric = (weighted_log_det(plus) - weighted_log_det(minus)) / (2 * step)
            assert analytic[k, alpha] == pytest.approx(numeric, abs=1e-6 * abs(analytic).max())


def test_hessian_rows_of_any_batches_are_the_rows_of_the_full_hessian(rng):
    atoms = rattled_fe_vacancy(3, rng)
    calc = mendelev2003_fe()
    full = calc.get_hessian(atoms, format="dense")
    order = rng.permutation(len(atoms))
    batches = [order[:1], order[1:18], np.arange(len(atoms))]
    produced = list(calc.iter_hessian_rows(atoms, batches))
    assert len(produced) == len(batches)
    for batch, rows in zip(batches, produced):
        assert rows.shape == (3 * len(batch), 3 * len(atoms))
        expected = full[(3 * batch[:, None] + np.arange(3)).ravel()]
        np.testing.assert_allclose(rows.toarray(), expected, rtol=0, atol=1e-13 * abs(full).max())


def test_onsite_blocks_of_a_cell_beyond_the_int32_pair_key_range(rng):
    """65,536 atoms, where i·N + j of the int32 neighbour list would overflow: every block
    equals the block of the same atom in the 128-atom cell it tiles (translation symmetry)."""
    small = bulk("Fe", "bcc", a=A0, cubic=True).repeat((4, 4, 4))
    small.positions += rng.normal(0.0, 0.03, small.positions.shape)
    big = small.repeat((8, 8, 8))
    calc = mendelev2003_fe()
    expected = np.tile(calc.get_onsite_hessian(small), (8 * 8 * 8, 1, 1))
    np.testing.assert_allclose(calc.get_onsite_hessian(big), expected, rtol=0, atol=1e-10 * abs(expected).max())


def test_other_elements_are_refused_with_the_element_named():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.calc = mendelev2003_fe()
    with pytest.raises(InvalidStructureError, match="Fe only.*Cu"):
        atoms.get_potential_energy()
    with pytest.raises(InvalidStructureError, match="Cu"):
        mendelev2003_fe().get_hessian(atoms)


def test_calculator_pickles_and_gives_the_same_numbers(rng):
    atoms = rattled_fe_vacancy(2, rng)
    calc = pickle.loads(pickle.dumps(mendelev2003_fe()))
    assert isinstance(calc, EAMCalculator)
    np.testing.assert_array_equal(calc.get_hessian(atoms).toarray(), mendelev2003_fe().get_hessian(atoms).toarray())


def test_piecewise_cubic_checks_its_coefficient_shape():
    with pytest.raises(ValueError, match="shape"):
        PiecewiseCubic(np.array([0.0, 1.0, 2.0]), np.zeros((4, 3)))


def test_exp_polynomial_and_screened_coulomb_values_are_their_formulas():
    x = np.array([0.5, 0.9])
    assert ExpPolynomial((1.0, 2.0, 0.0, 0.0))(x)[0] == pytest.approx(np.exp(1 + 2 * x))
    coulomb = ScreenedCoulomb(10.0, (0.5, 0.5), (1.0, 2.0))(x)[0]
    assert coulomb == pytest.approx(10.0 / x * (0.5 * np.exp(-x) + 0.5 * np.exp(-2 * x)))


@pytest.mark.parametrize("pbc", [(True, True, False), (False, False, False)])
def test_slabs_and_clusters_give_the_numbers_of_a_periodic_cell_with_vacuum(pbc, rng):
    # the same atoms with more vacuum than the cut-off along the open axes: every bond is the
    # same, so energy, forces and Hessian must be too (mixed periodicity takes matscipy's
    # neighbour list, isolated structures and periodic cells vesin's)
    calc = mendelev2003_fe()
    atoms = bulk("Fe", "bcc", a=2.8553, cubic=True) * (3, 3, 2)
    atoms.rattle(0.05, seed=int(rng.integers(1000)))
    cell = atoms.cell.array.copy()
    for axis in np.flatnonzero(~np.asarray(pbc)):
        cell[axis, axis] += 3.0 * calc.cutoff
    atoms.set_cell(cell, scale_atoms=False)
    padded = atoms.copy()
    atoms.pbc = pbc
    padded.pbc = True
    for structure in (atoms, padded):
        structure.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(padded.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), padded.get_forces(), atol=1e-10)
    np.testing.assert_allclose(
        calc.get_hessian(atoms, format="dense"), calc.get_hessian(padded, format="dense"), atol=1e-10
    )


def test_a_wire_without_three_cell_vectors_is_refused_clearly():
    atoms = bulk("Fe", "bcc", a=2.8553, cubic=True) * (1, 1, 4)
    atoms.set_cell([0.0, 0.0, atoms.cell[2, 2]])
    atoms.pbc = (False, False, True)
    atoms.calc = mendelev2003_fe()
    with pytest.raises(InvalidStructureError, match="three cell vectors"):
        atoms.get_potential_energy()


def test_batches_of_bonds_and_threads_do_not_change_energy_forces_or_stress(monkeypatch):
    from ase_vibentropy import threads
    from ase_vibentropy.eam import calculator as eam_calculator

    atoms = rattled_fe_vacancy(4, np.random.default_rng(3))
    atoms.calc = mendelev2003_fe()
    whole = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())
    monkeypatch.setattr(eam_calculator, "BOND_BATCH", 500)  # about 15 batches
    for n_threads in (1, 3):
        monkeypatch.setattr(eam_calculator, "default_threads", lambda n=n_threads: n)
        atoms.calc = mendelev2003_fe()
        assert atoms.get_potential_energy() == pytest.approx(whole[0], rel=1e-13)
        np.testing.assert_allclose(atoms.get_forces(), whole[1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(atoms.get_stress(), whole[2], rtol=0, atol=1e-14)
    assert threads.default_threads() >= 1


@pytest.mark.parametrize("pbc", [True, False])
def test_a_reused_calculator_gives_the_numbers_of_a_fresh_one_along_a_trajectory(pbc, rng):
    """The Verlet bond list kept between calls: small steps (list reused), a step beyond half
    the skin (rebuilt), a strained cell and a removed atom give what a new calculator gives."""
    from ase_vibentropy.eam.calculator import BOND_LIST_SKIN_A

    atoms = rattled_fe_vacancy(4, rng)
    atoms.pbc = pbc
    reused = mendelev2003_fe()

    def compare(structure):
        assert_same_as_fresh(structure, reused, stress=pbc)

    compare(atoms)
    built_at = reused._bond_list._positions.copy()
    for _ in range(5):  # every atom within a tenth of the skin of where the list was built
        atoms.positions += rng.uniform(-1, 1, atoms.positions.shape) * 0.02 * BOND_LIST_SKIN_A
        compare(atoms)
    np.testing.assert_array_equal(reused._bond_list._positions, built_at)  # never rebuilt
    # one atom moved by 0.9 skin: rebuilt
    atoms.positions[5] += 0.9 * BOND_LIST_SKIN_A * np.array([1.0, 0.0, 0.0])
    compare(atoms)
    assert not np.array_equal(reused._bond_list._positions, built_at)
    if pbc:
        strained = atoms.copy()
        strained.set_cell(strained.cell * 1.01, scale_atoms=True)
        compare(strained)
    del atoms[3]
    compare(atoms)


def assert_same_as_fresh(structure, calc, stress=True):
    """Energy, forces (and stress) of ``structure`` with ``calc`` equal those of a new calculator."""
    here = structure.copy()
    here.calc = calc
    fresh = structure.copy()
    fresh.calc = mendelev2003_fe()
    assert here.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(here.get_forces(), fresh.get_forces(), rtol=0, atol=1e-10)
    if stress:
        np.testing.assert_allclose(here.get_stress(), fresh.get_stress(), rtol=0, atol=1e-12)


def test_a_pair_entering_the_cutoff_from_the_skin_is_found_without_a_rebuild():
    """Two atoms start 0.5 skin beyond the cut-off and each moves 0.3 skin towards the other
    (less than half the skin: the list is reused); the bond they form must be counted."""
    from ase import Atoms

    from ase_vibentropy.eam.calculator import BOND_LIST_SKIN_A

    calc = mendelev2003_fe()
    start = calc.cutoff + 0.5 * BOND_LIST_SKIN_A
    pair = Atoms("Fe2", positions=[[0.0, 0.0, 0.0], [start, 0.0, 0.0]], pbc=False)
    pair.calc = calc
    assert pair.get_potential_energy() == pytest.approx(2 * calc.embedding(np.zeros(1))[0][0], abs=1e-12)
    built_at = calc._bond_list._positions.copy()
    moved = pair.copy()
    moved.positions[0, 0] += 0.3 * BOND_LIST_SKIN_A
    moved.positions[1, 0] -= 0.3 * BOND_LIST_SKIN_A  # now 0.1 skin inside the cut-off
    assert_same_as_fresh(moved, calc, stress=False)
    np.testing.assert_array_equal(calc._bond_list._positions, built_at)  # reused, not rebuilt
    fresh = moved.copy()
    fresh.calc = mendelev2003_fe()
    assert fresh.get_potential_energy() != pytest.approx(2 * calc.embedding(np.zeros(1))[0][0], abs=1e-9)


def test_bonds_to_an_atoms_own_images_are_reused_and_do_not_depend_on_where_the_list_was_built(rng):
    """A 2-atom bcc cell (every neighbour an image); the same positions reached from two
    different list builds give bit-identical forces: results depend on positions alone."""
    cell = bulk("Fe", "bcc", a=A0, cubic=True)
    cell.positions += rng.normal(0.0, 0.03, cell.positions.shape)
    target = cell.copy()
    target.positions += rng.normal(0.0, 0.02, cell.positions.shape)
    paths = []
    for start in (cell, target):
        calc = mendelev2003_fe()
        first = start.copy()
        first.calc = calc
        first.get_forces()  # the list is built here
        here = target.copy()
        here.calc = calc
        paths.append(here.get_forces())
        assert_same_as_fresh(target, calc)
    np.testing.assert_array_equal(paths[0], paths[1])
