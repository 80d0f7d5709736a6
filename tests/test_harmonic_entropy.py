"""Harmonic entropy against analytic frequencies, ASE thermochemistry, phonopy (Eq. 2-3, 8-11)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.thermochemistry import HarmonicThermo
from ase.units import _amu, _e, _hbar, _k, kB
from ase.vibrations import Vibrations
from matscipy.calculators.pair_potential import LennardJonesCut, PairPotential

from ase_vibentropy.harmonic import (
    compute_hessian,
    formation_entropy,
    harmonic_entropy,
    local_phonon_dos,
    normal_modes,
    relax_positions,
)

EPS, SIGMA, CUTOFF = 0.0104, 3.40, 9.0
R0 = 2 ** (1 / 6) * SIGMA  # pair minimum, Å
K_PAIR = 72 * EPS / R0**2  # V''(r0) of 4ε[(σ/r)^12 - (σ/r)^6], eV/Å²
M_AR = 39.948


def lj() -> PairPotential:
    return PairPotential({(18, 18): LennardJonesCut(EPS, SIGMA, CUTOFF)})


def classical_entropy_si(omega2_ev_a2_amu: np.ndarray, temperature: float) -> float:
    """k_B Σ [ln(k_B T/ħω) + 1] from ω² in eV/(Å² amu), converted with SI constants; eV/K."""
    omega = np.sqrt(np.asarray(omega2_ev_a2_amu) * _e / (1e-20 * _amu))  # rad/s
    return float(kB * np.sum(np.log(_k * temperature / (_hbar * omega)) + 1.0))


def dimer() -> Atoms:
    return Atoms("Ar2", positions=[(0, 0, 0), (R0, 0, 0)], calculator=lj())


def trimer() -> Atoms:
    positions = [(0, 0, 0), (R0, 0, 0), (R0 / 2, R0 * np.sqrt(3) / 2, 0)]
    return Atoms("Ar3", positions=positions, calculator=lj())


def test_lennard_jones_dimer_has_the_reduced_mass_frequency():
    result = harmonic_entropy(dimer(), hessian="analytic")
    assert result.n_zero == 5  # linear: 3 translations + 2 rotations
    expected = 2 * K_PAIR / M_AR  # ω² = k/μ with μ = m/2
    vibrational = np.sort(result.omega2)[-1:]
    np.testing.assert_allclose(vibrational, [expected], rtol=1e-10)
    assert result.entropy == pytest.approx(classical_entropy_si([expected], 300.0), rel=1e-10)


def test_lennard_jones_trimer_has_breathing_and_degenerate_e_modes():
    result = harmonic_entropy(trimer(), hessian="analytic", temperature=150.0)
    assert result.n_zero == 6 and result.n_modes == 3
    expected = np.array([1.5, 1.5, 3.0]) * K_PAIR / M_AR  # E' (x2): 3k/2m, A1': 3k/m
    np.testing.assert_allclose(np.sort(result.omega2)[-3:], expected, rtol=1e-10)
    assert result.entropy == pytest.approx(classical_entropy_si(expected, 150.0), rel=1e-10)


@pytest.mark.parametrize("cluster", [dimer, trimer])
def test_quantum_entropy_matches_ase_vibrations_and_harmonic_thermo(cluster, tmp_path):
    atoms = cluster()
    atoms.set_cell([30.0, 30.0, 30.0])  # matscipy bins atoms in a cell even when pbc=False
    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=1e-3, nfree=4)
    vib.run()
    energies = np.abs(vib.get_energies())  # eV, including ~0 translations and rotations
    n_vib = 3 * len(atoms) - (5 if len(atoms) == 2 else 6)
    thermo = HarmonicThermo(vib_energies=np.sort(energies)[-n_vib:], potentialenergy=0.0)
    for temperature in (20.0, 300.0):
        expected = thermo.get_entropy(temperature, verbose=False)
        result = harmonic_entropy(atoms, hessian="analytic", temperature=temperature, quantum=True)
        assert result.entropy == pytest.approx(expected, rel=1e-6)


def test_quantum_entropy_tends_to_the_classical_one_at_high_temperature():
    atoms = trimer()
    quantum = harmonic_entropy(atoms, temperature=3.0e4, quantum=True).entropy
    classical = harmonic_entropy(atoms, temperature=3.0e4).entropy
    # S_q - S_c = -Σ x²/24 + O(x⁴) per mode; here x ~ 1e-4.
    assert quantum == pytest.approx(classical, rel=1e-7)


def test_entropy_is_invariant_under_rotation_and_permutation():
    atoms = trimer()
    atoms.positions += 0.3
    reference = harmonic_entropy(atoms).entropy
    moved = atoms.copy()
    moved.rotate(37.0, (1, 2, 3), center="COM")
    moved = moved[[2, 0, 1]]
    moved.calc = lj()
    assert harmonic_entropy(moved).entropy == pytest.approx(reference, rel=1e-10)


@pytest.fixture(scope="module")
def cu_vacancy():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    del atoms[0]
    return relax_positions(atoms, EMT(), fmax=1e-6)


@pytest.fixture(scope="module")
def cu_vacancy_hessian(cu_vacancy):
    return compute_hessian(cu_vacancy, EMT(), method="fd")


def test_classical_entropy_shifts_exactly_with_temperature(cu_vacancy, cu_vacancy_hessian):
    s300 = harmonic_entropy(cu_vacancy, EMT(), hessian=cu_vacancy_hessian)
    s900 = harmonic_entropy(cu_vacancy, EMT(), hessian=cu_vacancy_hessian, temperature=900.0)
    n_prime = 3 * len(cu_vacancy) - 3
    assert s900.entropy == pytest.approx(s300.entropy + n_prime * kB * np.log(3.0), rel=1e-12)
    assert s300.entropy_at(900.0) == pytest.approx(s900.entropy, rel=1e-12)
    assert s300.entropy_kB == pytest.approx(s300.entropy / kB, rel=1e-14)


def test_local_entropies_sum_to_the_total(cu_vacancy, cu_vacancy_hessian):
    result = harmonic_entropy(cu_vacancy, EMT(), hessian=cu_vacancy_hessian, local=True)
    assert result.local_entropies.shape == (len(cu_vacancy),)
    assert result.local_entropies.sum() == pytest.approx(result.entropy, rel=1e-10)
    # Atoms next to the vacancy are softer, so they carry more entropy than the far ones.
    vacancy_site = np.zeros(3)  # atom 0 of the perfect cell sat at the origin
    d = np.linalg.norm(
        cu_vacancy.positions - vacancy_site
        - np.round((cu_vacancy.positions - vacancy_site) / cu_vacancy.cell[0, 0])
        * cu_vacancy.cell[0, 0],
        axis=1,
    )
    near, far = d < 3.0, d > 4.5
    assert result.local_entropies[near].mean() > result.local_entropies[far].mean()


def test_local_phonon_dos_carries_three_states_per_atom(cu_vacancy, cu_vacancy_hessian):
    omega2, modes = normal_modes(cu_vacancy_hessian, cu_vacancy.get_masses())
    keep = omega2 > 1e-6 * omega2.max()
    grid = np.linspace(-0.2, 1.0, 6001)
    dos = local_phonon_dos(omega2[keep], modes[:, keep], grid, width=0.01)
    integral = dos.sum(axis=1) * (grid[1] - grid[0])  # (N,)
    # All 3N modes carry 3 states per atom; the 3 uniform translations carry 3 m_i / M_tot.
    masses = cu_vacancy.get_masses()
    np.testing.assert_allclose(integral, 3.0 - 3.0 * masses / masses.sum(), rtol=1e-8)


def test_gamma_point_entropy_of_a_supercell_equals_phonopy_mesh_entropy():
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    n, a, temperature = 3, 3.61, 300.0
    conventional = bulk("Cu", "fcc", a=a, cubic=True)
    supercell = conventional.repeat((n, n, n))
    hessian = compute_hessian(supercell, EMT(), method="fd")
    ours = harmonic_entropy(supercell, EMT(), hessian=hessian, solver="dense")
    bloch = harmonic_entropy(supercell, EMT(), hessian=hessian, solver="bloch")

    unit = PhonopyAtoms(
        symbols=conventional.get_chemical_symbols(),
        cell=conventional.cell[:],
        scaled_positions=conventional.get_scaled_positions(),
    )
    phonon = Phonopy(unit, supercell_matrix=np.diag([n, n, n]), primitive_matrix="P", log_level=0)
    phonon.generate_displacements(distance=1e-3, is_plusminus=True)
    forces = []
    for displaced in phonon.supercells_with_displacements:
        cell = Atoms(
            displaced.symbols, cell=displaced.cell, scaled_positions=displaced.scaled_positions,
            pbc=True,
        )
        cell.calc = EMT()
        forces.append(cell.get_forces())
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    phonon.run_mesh([n, n, n], is_gamma_center=True, is_mesh_symmetry=False)
    frequencies_thz = np.asarray(phonon.mesh.frequencies).ravel()
    omega = 2 * np.pi * 1e12 * np.sort(np.abs(frequencies_thz))[3:]  # drop the Γ acoustic zeros
    expected = kB * np.sum(np.log(_k * temperature / (_hbar * omega)) + 1.0)
    assert ours.n_modes == omega.size == 3 * len(supercell) - 3
    assert ours.entropy == pytest.approx(expected, rel=1e-6)
    assert bloch.entropy == pytest.approx(expected, rel=1e-6)


def test_formation_entropy_keeps_the_mode_count_term(cu_vacancy, cu_vacancy_hessian):
    perfect = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    bulk_hessian = compute_hessian(perfect, EMT(), method="fd")
    values = {}
    for temperature in (300.0, 1200.0):
        defect = harmonic_entropy(
            cu_vacancy, EMT(), hessian=cu_vacancy_hessian, temperature=temperature
        )
        reference = harmonic_entropy(perfect, EMT(), hessian=bulk_hessian, temperature=temperature)
        values[temperature] = formation_entropy(defect, reference)
        n_d, n_b = len(cu_vacancy), len(perfect)
        assert values[temperature] == pytest.approx(
            defect.entropy - n_d / n_b * reference.entropy, rel=1e-12
        )
    # S_f(T) changes only through 3 (N_d/N_b - 1) k_B ln(T/T0) (Eq. 3).
    n_d, n_b = len(cu_vacancy), len(perfect)
    shift = 3 * (n_d / n_b - 1) * kB * np.log(4.0)
    assert values[1200.0] - values[300.0] == pytest.approx(shift, rel=1e-9)
