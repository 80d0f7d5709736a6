"""Prediction at scale: chunked, parallel and Dask passes equal the plain evaluation,
and the perfect-lattice shortcut equals the direct sum.

Expectations are the plain per-atom evaluation ``provider.compute(atoms)`` of the whole cell
(summed or projected here), never the chunked code's own output.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read, write
from ase.neighborlist import neighbor_list
from descriptor_checks import A0_FE, bcc_fe

from ase_vibentropy import descriptors
from ase_vibentropy.descriptors.base import bravais_basis, perfect_lattice_sum
from ase_vibentropy.descriptors.chunks import plan_chunks
from ase_vibentropy.errors import DescriptorError
from ase_vibentropy.model import LDMLModel, formation_features
from ase_vibentropy.parallel import dask_descriptor_passes, descriptor_pass
from ase_vibentropy.predictor import EntropyPredictor

RTOL = 1e-10


def small_afs():
    return descriptors.get("afs", n_max=4, l_max=3, r_cut=4.5)


def small_bso4():
    return descriptors.get("bso4", twojmax=3, r_cut=4.5)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def defects_on_chunk_boundaries(n: int = 5, grid: int = 3, seed: int = 0) -> tuple[Atoms, int]:
    """bcc Fe n³ cube with vacancies and an interstitial sitting on the planes between the chunks
    of a ``grid``³ decomposition and across the periodic boundary, rattled; returns the cell and
    the chunk size that gives that grid."""
    atoms = bcc_fe(n)
    frac = atoms.get_scaled_positions()
    # vacancies: the atom closest to a chunk plane x = 1/grid, and the one at the cell corner
    # (whose environment is made of periodic images only)
    on_plane = int(np.argmin(np.abs(frac[:, 0] - 1.0 / grid) + np.abs(frac[:, 1] - 0.5)))
    corner = int(np.argmin(np.linalg.norm(frac, axis=1)))
    del atoms[sorted({on_plane, corner})]
    # interstitial straddling the periodic boundary in z and a chunk plane in y
    L = atoms.cell.lengths()
    atoms.append("Fe")
    atoms.positions[-1] = [0.25 * A0_FE, L[1] / grid + 0.1, L[2] - 0.2]
    atoms.rattle(0.04, seed=seed)
    atoms.wrap()
    chunk_size = int(np.ceil(len(atoms) / grid**3))
    return atoms, chunk_size


# --------------------------------------------------------------------------- spatial chunks
def test_chunk_plan_puts_every_atom_in_exactly_one_home_chunk_with_its_whole_environment():
    atoms, chunk_size = defects_on_chunk_boundaries()
    plan = plan_chunks(atoms, 4.5, chunk_size)
    assert len(plan) == 27
    homes = np.concatenate([plan.index[plan.bounds[k] : plan.bounds[k] + plan.n_centers[k]] for k in range(len(plan))])
    assert np.array_equal(np.sort(homes), np.arange(len(atoms)))
    # every image within 4.5 Å of a centre is in its chunk: neighbour counts (ase's list) agree
    coordination = np.bincount(neighbor_list("i", atoms, 4.5), minlength=len(atoms))
    for sub, n_centers in plan:
        found = np.bincount(neighbor_list("i", sub, 4.5), minlength=len(sub))[:n_centers]
        assert np.array_equal(found, coordination[sub.arrays["parent_index"][:n_centers]])


def test_chunk_copies_grow_linearly_with_the_cell():
    # copies per atom depend on the chunk shape, not on N: (1 + 2 halo / edge)³ at most
    ratios = []
    for n in (8, 12):
        atoms = bcc_fe(n)
        plan = plan_chunks(atoms, 5.0, 2000)
        edge = (np.prod(atoms.cell.lengths()) / len(plan)) ** (1 / 3)
        ratios.append(len(plan.index) / len(atoms))
        assert ratios[-1] <= (1 + 2 * 5.0 / edge * 1.35) ** 3
    assert plan.n_centers.sum() == len(atoms)


@pytest.mark.parametrize("make_provider", [small_afs, small_bso4], ids=["afs", "bso4"])
def test_chunked_sum_equals_the_whole_cell_sum_with_defects_on_chunk_boundaries(make_provider):
    provider = make_provider()
    atoms, chunk_size = defects_on_chunk_boundaries()
    expected = provider.compute(atoms).sum(axis=0)
    chunked = provider.compute_sum(atoms, chunk_size=chunk_size)
    assert relative_error(chunked, expected) < RTOL
    streamed = descriptor_pass(provider, atoms, chunk_size=chunk_size, workers=1)
    assert relative_error(streamed.total, expected) < RTOL


def test_chunked_sum_equals_the_whole_cell_sum_in_a_sheared_cell():
    provider = small_afs()
    atoms = bulk("Fe", "bcc", a=A0_FE).repeat((5, 6, 7))  # primitive, non-orthogonal cell
    del atoms[[0, 77]]
    atoms.rattle(0.03, seed=3)
    expected = provider.compute(atoms).sum(axis=0)
    for chunk_size in (20, 60):
        assert relative_error(provider.compute_sum(atoms, chunk_size=chunk_size), expected) < RTOL


# --------------------------------------------------------------------------- workers
@pytest.mark.parametrize("executor", ["thread", "process"])
def test_two_workers_give_the_serial_sums_and_local_projections(executor):
    provider = small_afs()
    atoms, chunk_size = defects_on_chunk_boundaries()
    w = np.linspace(-1.0, 1.0, provider.dim)
    per_atom = provider.compute(atoms)
    serial = descriptor_pass(provider, atoms, weights=w, chunk_size=chunk_size, workers=1)
    parallel = descriptor_pass(provider, atoms, weights=w, chunk_size=chunk_size, workers=2, executor=executor)
    assert relative_error(parallel.total, serial.total) < RTOL
    assert relative_error(parallel.projection, serial.projection) < RTOL
    assert relative_error(parallel.projection, per_atom @ w) < RTOL
    assert relative_error(parallel.total, per_atom.sum(axis=0)) < RTOL


def test_workers_must_be_positive():
    with pytest.raises(DescriptorError, match="workers must be >= 1"):
        descriptor_pass(small_afs(), bcc_fe(2), workers=0)


# --------------------------------------------------------------------------- perfect lattices
@pytest.mark.parametrize(
    "lattice",
    [
        bulk("Fe", "bcc", a=A0_FE, cubic=True).repeat((4, 4, 4)),
        bulk("Cu", "fcc", a=3.61 * 1.02, cubic=True).repeat((3, 3, 3)),  # strained
        bulk("Fe", "bcc", a=A0_FE).repeat((5, 4, 6)),  # primitive vectors, not a cube
    ],
    ids=["bcc-cube", "fcc-strained", "bcc-primitive-supercell"],
)
def test_perfect_lattice_shortcut_equals_the_direct_sum(lattice):
    provider = small_afs()
    assert bravais_basis(lattice) is not None
    shortcut = perfect_lattice_sum(provider, lattice)
    direct = provider.compute(lattice).sum(axis=0)
    assert relative_error(shortcut, direct) < RTOL
    assert descriptor_pass(provider, lattice, chunk_size=10).shortcut


def test_perfect_lattice_shortcut_refuses_anything_but_a_one_element_bravais_lattice():
    perfect = bcc_fe(3)
    vacancy = perfect.copy()
    del vacancy[4]
    displaced = perfect.copy()
    displaced.positions[5, 0] += 1e-6
    alloy = perfect.copy()
    alloy.numbers[0] = 24
    diamond = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)  # a lattice with a basis
    hcp = bulk("Mg", "hcp", a=3.2).repeat((3, 3, 2))
    cluster = perfect.copy()
    cluster.pbc = False
    for atoms in (vacancy, displaced, alloy, diamond, hcp, cluster):
        assert bravais_basis(atoms) is None
        assert perfect_lattice_sum(descriptors.get("afs", n_max=2, l_max=1, r_cut=4.0, species=None), atoms) is None


# --------------------------------------------------------------------------- model and CLI
@pytest.fixture(scope="module")
def fe_model(tmp_path_factory):
    """A joint LDML model on a small AFS, fitted on synthetic Fe rows (the cost, not the
    accuracy, matters here), saved to a file."""
    from ase_vibentropy.model_io import save_model

    afs = small_afs()
    rows, y, n_atoms = [], [], []
    rng = np.random.default_rng(2)
    for k in range(6):
        cell = bcc_fe(2 + k % 2)
        cell.rattle(0.05, seed=k)
        rows.append(afs.compute_sum(cell))
        y.append(6.0 * len(cell) + rng.normal())
        n_atoms.append(len(cell))
        defect = cell.copy()
        del defect[k]
        rows.append(formation_features(afs.compute_sum(defect), len(defect), rows[-1], len(cell)))
        y.append(3.0 + rng.normal())
        n_atoms.append(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LDMLModel(descriptor="afs", descriptor_params=afs.params, target="joint",
                          element="Fe", lattice="bcc", a0=A0_FE)
        model.fit(np.array(rows), np.array(y), n_atoms=np.array(n_atoms), is_total=np.array(n_atoms) > 0)
    path = tmp_path_factory.mktemp("model") / "fe-small.json"
    save_model(model, path)
    return model, str(path)


def test_model_streams_local_entropies_chunk_by_chunk(fe_model):
    from ase_vibentropy.harmonic import bulk_for_cell
    from ase_vibentropy.model_io import load_model
    from ase_vibentropy.units import KB_EV_PER_K

    model = load_model(fe_model[1])
    atoms, chunk_size = defects_on_chunk_boundaries()
    predictor = EntropyPredictor(model, workers=2, chunk_size=chunk_size)
    provider = predictor.provider
    calls = []
    original = provider._compute_centers

    def spy(sub, centers):
        calls.append(len(centers))
        return original(sub, centers)

    provider._compute_centers = spy
    local = predictor.local_entropies(atoms)
    assert max(calls) < len(atoms) / 10  # never the whole cell's (N, dim) array
    provider._compute_centers = original
    # Eq. 13 evaluated plainly on the whole cell, at the training temperature (no T shift)
    plain = (provider.compute(atoms) @ model.coef_ + model.per_atom_constant_) * KB_EV_PER_K
    np.testing.assert_allclose(local, plain, rtol=1e-10)
    assert local.sum() == pytest.approx(predictor.predict_entropy(atoms), rel=1e-12)
    bulk_ref = bulk_for_cell(atoms, "bcc", A0_FE, "Fe")
    assert predictor.local_formation_entropies(atoms, bulk_ref).sum() == pytest.approx(
        predictor.predict_formation_entropy(atoms, bulk_ref), rel=1e-9, abs=1e-12
    )


def _predict_json(capsys, argv):
    from ase_vibentropy.cli.main import main

    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_cli_workers_give_the_serial_numbers_and_local_entropies(fe_model, tmp_path, capsys):
    _, path = fe_model
    atoms, _ = defects_on_chunk_boundaries()
    frames = [atoms, bcc_fe(3)]
    structure = tmp_path / "cells.extxyz"
    write(structure, frames)
    base = ["predict", str(structure), "--model", path, "--lattice", "bcc", "--json"]
    serial = _predict_json(capsys, base + ["--workers", "1"])
    two = _predict_json(capsys, base + ["--workers", "2", "--local", str(tmp_path / "local.extxyz")])
    for a, b in zip(serial, two):
        for key in ("S_kB", "S_std_kB", "Sf_kB", "Sf_std_kB"):
            assert b[key] == pytest.approx(a[key], rel=1e-10, abs=1e-10)
    annotated = read(tmp_path / "local.extxyz", index=":")
    assert annotated[0].arrays["local_entropy"].sum() == pytest.approx(two[0]["S_kB"], rel=1e-9)
    assert annotated[1].arrays["local_formation_entropy"].sum() == pytest.approx(two[1]["Sf_kB"], abs=1e-8)
    assert abs(two[1]["Sf_kB"]) < 1e-8  # the perfect lattice against itself


def test_cli_refuses_zero_workers(fe_model, tmp_path, capsys):
    from ase_vibentropy.cli.main import main

    _, path = fe_model
    structure = tmp_path / "cell.extxyz"
    write(structure, bcc_fe(2))
    assert main(["predict", str(structure), "--model", path, "--workers", "0"]) != 0
    assert "--workers" in capsys.readouterr().err


# --------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        yield cluster


def test_dask_passes_equal_the_local_ones_for_many_and_for_one_chunked_structure(dask_cluster):
    from dask.distributed import Client

    provider = small_afs()
    big, chunk_size = defects_on_chunk_boundaries()
    small = bcc_fe(2)
    del small[1]
    w = np.linspace(1.0, 2.0, provider.dim)
    with Client(dask_cluster) as client:
        remote = dask_descriptor_passes(client, provider, [small, big], weights=w, chunk_size=chunk_size)
    for atoms, result in zip([small, big], remote):
        per_atom = provider.compute(atoms)
        local = descriptor_pass(provider, atoms, weights=w, chunk_size=chunk_size, workers=1)
        assert relative_error(result.total, local.total) < RTOL
        assert relative_error(result.projection, local.projection) < RTOL
        assert relative_error(result.total, per_atom.sum(axis=0)) < RTOL


def test_cli_scheduler_gives_the_local_numbers(fe_model, dask_cluster, tmp_path, capsys):
    _, path = fe_model
    atoms, _ = defects_on_chunk_boundaries()
    structure = tmp_path / "cells.extxyz"
    write(structure, [atoms, bcc_fe(3)])
    base = ["predict", str(structure), "--model", path, "--lattice", "bcc", "--json"]
    local = _predict_json(capsys, base + ["--workers", "1"])
    remote = _predict_json(capsys, base + ["--scheduler", dask_cluster.scheduler_address])
    for a, b in zip(local, remote):
        for key in ("S_kB", "S_std_kB", "Sf_kB", "Sf_std_kB"):
            assert b[key] == pytest.approx(a[key], rel=1e-10, abs=1e-10)
