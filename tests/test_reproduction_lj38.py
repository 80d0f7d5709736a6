"""The LJ38 reproduction (paper Fig. 7, benchmarks/reproduction/lj38.py) on a tiny subset.

Physics checked against independent expectations: the truncated octahedron is the Cambridge
Cluster Database global minimum (-173.928427 ε); the analytic Hessian equals finite
differences of ASE's own LennardJones forces; every stored minimum has exactly 6 zero modes and
no imaginary mode (plain numpy eigenvalues, not the package's classifier); the reduced entropy
is the plain sum n' - ½ Σ' ln ω²; rotated, translated and permuted copies have the same
entropy and descriptor sum; the stored minima are distinct and the run resumes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.lj import LennardJones
from ase.cluster import Octahedron
from scipy.spatial.transform import Rotation

from ase_vibentropy.harmonic import compute_hessian

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduction" / "lj38.py"

#: LJ38 global minimum of the Cambridge Cluster Database (Doye, Wales & Berry 1995), ε.
CCD_LJ38_GLOBAL_MINIMUM = -173.928427


def _load_script():
    spec = importlib.util.spec_from_file_location("lj38_reproduction", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lj38 = _load_script()


def _ase_lj():
    """ASE's LennardJones with the script's parameters (the unvectorised original)."""
    return LennardJones(epsilon=1.0, sigma=1.0, rc=lj38.LJ_RC, ro=lj38.LJ_RO, smooth=True)


def _plain_spectrum(positions: np.ndarray) -> np.ndarray:
    """ω² of the analytic Hessian with m = 1, ascending (plain numpy)."""
    return np.linalg.eigvalsh(lj38.lj_hessian(positions))


@pytest.fixture(scope="module")
def truncated_octahedron():
    """The fcc truncated octahedron of 38 atoms, relaxed (the LJ38 global minimum)."""
    seed = Octahedron("Ar", length=4, cutoff=1)
    nn = np.sort(np.linalg.norm(seed.positions - seed.positions[0], axis=1))[1]
    cluster = lj38.make_cluster(seed.positions * (2 ** (1 / 6) / nn))
    return lj38.refine(cluster)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The documented command on 4 minima (trials of 4 quenches), 2 repeats per test fraction."""
    out = tmp_path_factory.mktemp("lj38")
    summary = lj38.main(
        ["--n-minima", "4", "--trial-size", "4", "--repeats", "2", "--out", str(out), "--no-progress"]
    )
    return out, summary


def test_vectorised_calculator_equals_ase_lennard_jones():
    rng = np.random.default_rng(3)
    for stretch in (1.0, 1.9):  # 1.9: many pairs inside the 5-6 σ switching shell
        positions = lj38.random_start(rng) * stretch
        fast = lj38.make_cluster(positions)
        ase_atoms = fast.copy()
        ase_atoms.calc = _ase_lj()
        assert fast.get_potential_energy() == pytest.approx(ase_atoms.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(fast.get_forces(), ase_atoms.get_forces(), rtol=0, atol=1e-12)


def test_truncated_octahedron_is_the_cambridge_global_minimum(truncated_octahedron):
    assert truncated_octahedron.get_potential_energy() == pytest.approx(CCD_LJ38_GLOBAL_MINIMUM, abs=1e-6)
    assert len(truncated_octahedron) == 38


@pytest.mark.parametrize("stretch", [1.0, 1.55])
def test_analytic_hessian_equals_finite_differences_of_ase_forces(truncated_octahedron, stretch):
    """1.55: the octahedron stretched so that its longest pairs fall in the switching shell."""
    atoms = truncated_octahedron.copy()
    atoms.positions *= stretch
    atoms.set_masses(np.ones(len(atoms)))
    if stretch > 1:
        from scipy.spatial.distance import pdist

        assert np.any(pdist(atoms.positions) > lj38.LJ_RO)
    fd = compute_hessian(atoms, _ase_lj(), method="fd", step=1e-4)
    analytic = lj38.lj_hessian(atoms.get_positions())
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-12)
    assert np.max(np.abs(analytic - fd)) < 1e-6 * np.max(np.abs(analytic))


def test_reduced_entropy_is_the_plain_mode_sum(truncated_octahedron):
    """S/k_B = Σ' [ln(T*/ω*) + 1] at T* = ħ* = 1, from plain numpy eigenvalues."""
    omega2 = _plain_spectrum(truncated_octahedron.get_positions())
    vibrational = np.sort(omega2)[6:]
    expected = float(np.sum(np.log(1.0 / np.sqrt(vibrational)) + 1.0))
    assert lj38.analyse_minimum(truncated_octahedron)["S_kB"] == pytest.approx(expected, abs=1e-9)


def test_script_writes_results_json_and_both_plots(tiny_run):
    out, summary = tiny_run
    for name in ("lj38.json", "lj38_parity.png", "lj38_crossval.png", "lj38.db"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "lj38.json").read_text())
    assert saved["n_minima"] == 4
    cv = saved["cross_validation"]
    assert cv["fractions"] == pytest.approx([0.1 * k for k in range(1, 10)])
    assert cv["repeats"] == 2
    assert all(np.isfinite(cv["test_rmse_mean"]))
    assert saved["entropy_range_kB"][0] <= saved["entropy_range_kB"][1]


def test_every_stored_minimum_has_six_zero_modes_and_no_imaginary_mode(tiny_run):
    out, _ = tiny_run
    import ase.db

    rows = list(ase.db.connect(str(out / "lj38.db")).select())
    assert len(rows) >= 4
    for row in rows:
        atoms = lj38.make_cluster(row.positions)
        assert np.max(np.linalg.norm(atoms.get_forces(), axis=1)) < 1e-6
        omega2 = _plain_spectrum(atoms.get_positions())
        scale = np.max(np.abs(omega2))
        assert np.sum(np.abs(omega2) < 1e-6 * scale) == 6
        assert np.all(omega2[np.abs(omega2) >= 1e-6 * scale] > 0)
        assert row.n_zero == 6 and row.n_imaginary == 0


def test_stored_minima_are_distinct(tiny_run):
    out, _ = tiny_run
    import ase.db

    rows = list(ase.db.connect(str(out / "lj38.db")).select())
    energies = np.array([r.E_eps for r in rows])
    inertia = np.array([np.sort(lj38.make_cluster(r.positions).get_moments_of_inertia()) for r in rows])
    for a in range(len(rows)):
        for b in range(a):
            same_energy = abs(energies[a] - energies[b]) < lj38.ENERGY_TOL
            same_shape = np.all(np.abs(inertia[a] - inertia[b]) < lj38.INERTIA_TOL)
            assert not (same_energy and same_shape)


def test_entropy_and_descriptor_sum_are_invariant_under_rotation_and_permutation(tiny_run):
    out, _ = tiny_run
    import ase.db

    row = next(ase.db.connect(str(out / "lj38.db")).select(id=1))
    rng = np.random.default_rng(11)
    rotation = Rotation.random(random_state=5).as_matrix()
    perm = rng.permutation(len(row.positions))
    copy = lj38.make_cluster(row.positions[perm] @ rotation.T + np.array([3.0, -1.0, 0.5]))
    assert lj38.analyse_minimum(copy)["S_kB"] == pytest.approx(row.S_kB, abs=1e-8)
    provider = lj38.afs_provider()
    stored = row.data["descriptor_sums"][provider.hash]
    np.testing.assert_allclose(provider.compute_sum(copy), stored, rtol=1e-9, atol=1e-9 * np.max(np.abs(stored)))


def test_restart_reuses_stored_minima(tiny_run):
    out, summary = tiny_run
    import ase.db

    before = [(r.id, r.E_eps) for r in ase.db.connect(str(out / "lj38.db")).select()]
    again = lj38.main(
        ["--n-minima", "3", "--trial-size", "4", "--repeats", "2", "--out", str(out), "--no-progress"]
    )
    after = [(r.id, r.E_eps) for r in ase.db.connect(str(out / "lj38.db")).select()]
    assert after == before
    assert again["seconds"]["minima"] < 5.0
    assert again["entropy_range_kB"][0] >= summary["entropy_range_kB"][0]
