"""The log-determinant route (docs/theory.md) against the dense eigenvalue sum."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_vibentropy.errors import NotAMinimumError, UnknownNameError
from ase_vibentropy.harmonic import (
    compute_hessian,
    harmonic_entropy,
    log_pdet,
    omega2_spectrum,
    relax_positions,
)

BACKENDS = ("splu", "dense-cholesky", "auto")


@pytest.fixture(scope="module")
def vacancy():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    del atoms[3]
    atoms = relax_positions(atoms, EMT(), fmax=1e-6)
    return atoms, compute_hessian(atoms, EMT(), method="phonopy")


def dense_log_pdet(hessian, masses) -> float:
    """Σ' ln ω² written plainly: all eigenvalues except the 3 of smallest magnitude."""
    omega2 = omega2_spectrum(hessian, masses)
    return float(np.sum(np.log(np.sort(np.abs(omega2))[3:])))


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_det_equals_dense_eigenvalue_sum(vacancy, backend):
    atoms, hessian = vacancy
    masses = atoms.get_masses()
    result = log_pdet(hessian, masses, backend=backend)
    assert result.n_modes == 3 * len(atoms) - 3
    assert result.log_pdet == pytest.approx(dense_log_pdet(hessian, masses), rel=1e-8)


@pytest.mark.parametrize("backend", ("splu", "dense-cholesky"))
def test_log_det_does_not_depend_on_the_removed_atom_with_unequal_masses(vacancy, backend, rng):
    atoms, hessian = vacancy
    masses = rng.uniform(20.0, 200.0, len(atoms))  # the 3 ln(M/m_j) term is then non-trivial
    expected = dense_log_pdet(hessian, masses)
    for atom in (0, 7, len(atoms) - 1):
        result = log_pdet(hessian, masses, atom=atom, backend=backend)
        assert result.log_pdet == pytest.approx(expected, rel=1e-8)


def test_log_det_accepts_a_sparse_hessian(vacancy):
    import scipy.sparse as sp

    atoms, hessian = vacancy
    masses = atoms.get_masses()
    sparse = log_pdet(sp.csr_matrix(hessian), masses, backend="splu").log_pdet
    assert sparse == pytest.approx(dense_log_pdet(hessian, masses), rel=1e-8)


def test_logdet_and_dense_solvers_give_the_same_entropy(vacancy):
    atoms, hessian = vacancy
    dense = harmonic_entropy(atoms, EMT(), hessian=hessian, solver="dense")
    logdet = harmonic_entropy(atoms, EMT(), hessian=hessian, solver="logdet")
    assert logdet.solver.startswith("logdet:") and logdet.omega2 is None
    assert logdet.entropy == pytest.approx(dense.entropy, rel=1e-10)


def saddle_hessian(hessian: np.ndarray, masses: np.ndarray, n_negative: int) -> np.ndarray:
    """Flip the sign of the n lowest vibrational modes of D: a Hessian of a known saddle."""
    scale = np.repeat(np.sqrt(masses), 3)
    d = hessian / scale[:, None] / scale[None, :]
    omega2, modes = np.linalg.eigh(d)
    omega2[3 : 3 + n_negative] *= -1.0
    flipped = (modes * omega2) @ modes.T
    return flipped * scale[:, None] * scale[None, :]


def test_splu_pivots_count_the_imaginary_modes(vacancy):
    atoms, hessian = vacancy
    masses = atoms.get_masses()
    bad = saddle_hessian(hessian, masses, n_negative=2)
    with pytest.raises(NotAMinimumError) as info:
        log_pdet(bad, masses, backend="splu")
    assert info.value.n_imaginary == 2  # Sylvester's law of inertia on the LDLᵀ pivots


def test_failed_cholesky_means_not_a_minimum(vacancy):
    atoms, hessian = vacancy
    masses = atoms.get_masses()
    with pytest.raises(NotAMinimumError, match="not a minimum"):
        log_pdet(saddle_hessian(hessian, masses, 1), masses, backend="dense-cholesky")


def test_unknown_logdet_backend_is_rejected(vacancy):
    atoms, hessian = vacancy
    with pytest.raises(UnknownNameError, match="known: auto"):
        log_pdet(hessian, atoms.get_masses(), backend="qr")


def test_blocked_dense_cholesky_equals_one_block(vacancy, monkeypatch):
    import ase_vibentropy.harmonic.logdet as logdet_module

    atoms, hessian = vacancy
    masses = atoms.get_masses()
    whole = log_pdet(hessian, masses, backend="dense-cholesky").log_pdet
    monkeypatch.setattr(logdet_module, "DENSE_CHOLESKY_BLOCK", 20)  # 90 rows: 5 Schur steps
    blocked = log_pdet(hessian, masses, backend="dense-cholesky").log_pdet
    assert blocked == pytest.approx(whole, rel=1e-12)
    with pytest.raises(NotAMinimumError):
        log_pdet(saddle_hessian(hessian, masses, 1), masses, backend="dense-cholesky")


def spring_network_hessian(scaled_positions, cell, cutoff, rng):
    """Periodic central-spring network, eV/Å², (3N, 3N): random stiffness on every pair closer
    than ``cutoff``; PSD with exactly the 3 translations as null space when it is rigid."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms("H" * len(scaled_positions), scaled_positions=scaled_positions, cell=cell,
                  pbc=True)
    first, second, vectors = neighbor_list("ijD", atoms, cutoff)
    keep = first < second
    first, second, vectors = first[keep], second[keep], vectors[keep]
    unit = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    stiffness = rng.uniform(1.0, 2.0, len(first))
    hessian = np.zeros((3 * len(atoms), 3 * len(atoms)))
    for a, b, u, k in zip(first, second, unit, stiffness):  # plain loops: an independent build
        block = k * np.outer(u, u)
        for p, q, sign in ((a, a, 1), (b, b, 1), (a, b, -1), (b, a, -1)):
            hessian[3 * p : 3 * p + 3, 3 * q : 3 * q + 3] += sign * block
    return hessian


def test_slab_dissection_leaves_the_two_halves_uncoupled(rng):
    from ase_vibentropy.harmonic.logdet import slab_dissection

    lattice = bulk("Fe", "bcc", a=2.86, cubic=True).repeat((10, 2, 2))
    hessian = spring_network_hessian(lattice.get_scaled_positions(), lattice.cell, 4.1, rng)
    lower, upper, separator = slab_dissection(hessian, lattice.get_scaled_positions())
    assert np.array_equal(np.sort(np.concatenate([lower, upper, separator])), np.arange(len(lattice)))
    assert abs(len(lower) - len(upper)) <= 0.1 * len(lattice)
    blocks = abs(hessian).reshape(len(lattice), 3, len(lattice), 3).sum(axis=(1, 3))
    assert not blocks[np.ix_(lower, upper)].any()
    assert len(separator) < 0.5 * len(lattice)


def test_dissection_log_det_equals_dense_eigenvalue_sum(rng):
    lattice = bulk("Fe", "bcc", a=2.86, cubic=True).repeat((10, 2, 2))
    lattice.rattle(0.05, seed=3)
    hessian = spring_network_hessian(lattice.get_scaled_positions(), lattice.cell, 4.1, rng)
    masses = rng.uniform(20.0, 200.0, len(lattice))
    result = log_pdet(hessian, masses, backend="dissection",
                      scaled_positions=lattice.get_scaled_positions())
    assert result.backend == "dissection"
    assert result.log_pdet == pytest.approx(dense_log_pdet(hessian, masses), rel=1e-10)
    with pytest.raises(NotAMinimumError):
        log_pdet(saddle_hessian(hessian, masses, 2), masses, backend="dissection",
                 scaled_positions=lattice.get_scaled_positions())


def test_dissection_needs_positions(vacancy):
    from ase_vibentropy.errors import InvalidOptionError

    atoms, hessian = vacancy
    with pytest.raises(InvalidOptionError, match="scaled_positions"):
        log_pdet(hessian, atoms.get_masses(), backend="dissection")
