"""The database pipeline: row contract, Eq. 3 labels, restarts after SIGKILL, Dask = local.

All runs use the tiny EMT Cu recipe shipped in examples/recipes/cu_emt_small.toml.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import ase.db
import numpy as np
import pytest
from ase.calculators.emt import EMT

from ase_vibentropy.cli.main import main
from ase_vibentropy.data import builders
from ase_vibentropy.data.jobs import make_jobs
from ase_vibentropy.data.pipeline import BulkReference, generate, label_structure
from ase_vibentropy.data.recipe import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "recipes" / "cu_emt_small.toml"

CONTRACT_KEYS = {
    "family", "n_vac", "n_int", "strain", "n_cells", "lattice", "a0", "element", "potential",
    "S_kB", "Sf_kB", "S_bulk_kB", "n_bulk", "n_imaginary", "temperature", "recipe_hash", "job_id",
}


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(RECIPE)


@pytest.fixture(scope="module")
def local_db(recipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("local") / "cu.db"
    summary = generate(recipe, str(path), workers=1, progress=False)
    assert summary.n_failed == 0
    return path, summary


def _rows(path):
    return list(ase.db.connect(str(path)).select())


def test_every_job_is_stored_once_with_the_row_contract(recipe, local_db):
    path, summary = local_db
    rows = _rows(path)
    jobs = make_jobs(recipe)
    assert summary.n_run == len(jobs) and summary.n_rows == len(rows)
    assert Counter(r.job_id for r in rows) == {j.job_id: 1 for j in jobs}
    for row in rows:
        if row.n_imaginary == 0:
            assert CONTRACT_KEYS <= set(row.key_value_pairs)
        assert row.recipe_hash == recipe.hash
        assert {"descriptor_sums", "bulk_descriptor_sums"} <= set(row.data)


def test_stored_structures_are_relaxed_and_their_energy_is_the_potentials(recipe, local_db):
    path, _ = local_db
    for row in _rows(path):
        atoms = row.toatoms()
        atoms.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(row.energy, abs=1e-9)
        assert np.linalg.norm(atoms.get_forces(), axis=1).max() <= recipe.reference.fmax


def test_formation_entropy_is_eq3_against_the_bulk_row_of_the_same_cell(local_db):
    path, _ = local_db
    rows = _rows(path)
    bulk = {(r.n_cells, r.strain): r for r in rows if r.family == "bulk"}
    for row in rows:
        ref = bulk[(row.n_cells, row.strain)]
        assert row.S_bulk_kB == ref.S_kB and row.n_bulk == ref.natoms
        assert row.Sf_kB == pytest.approx(row.S_kB - row.natoms / ref.natoms * ref.S_kB, abs=1e-10)
    assert all(r.Sf_kB == 0.0 for r in bulk.values())


def test_local_entropies_sum_to_the_total_entropy(local_db):
    path, _ = local_db
    for row in _rows(path):
        local = row.data["local_entropies_kB"]
        assert local.shape == (row.natoms,)
        assert local.sum() == pytest.approx(row.S_kB, rel=1e-9)


def test_wigner_seitz_counts_match_the_families(local_db):
    path, _ = local_db
    for row in _rows(path):
        if row.family == "V1":
            assert (row.n_vac, row.n_int) == (1, 0)
        elif row.family == "I1":
            assert (row.n_vac, row.n_int) == (0, 1)
        elif row.family == "random":
            assert row.n_vac == row.n_int


def test_a_rerun_skips_every_finished_job(recipe, local_db):
    path, _ = local_db
    before = len(_rows(path))
    summary = generate(recipe, str(path), workers=1, progress=False)
    assert summary.n_run == 0 and summary.n_skipped == summary.n_jobs
    assert len(_rows(path)) == before


def test_saddles_are_stored_with_their_imaginary_modes_or_escaped(recipe):
    cell = builders.perfect_lattice("Cu", "fcc", recipe.a0, 2)
    site = builders.central_site(cell)
    d = np.linalg.norm(builders.minimum_image(cell.positions - cell.positions[site], cell.cell), axis=1)
    neighbour = int(np.flatnonzero(np.isclose(d, recipe.a0 / np.sqrt(2)))[0])
    saddle = cell.copy()
    # Vacancy migration saddle: the neighbour halfway to the empty site (symmetric, stays there).
    saddle.positions[neighbour] += 0.5 * builders.minimum_image(
        cell.positions[site] - cell.positions[neighbour], cell.cell
    )
    del saddle[site]
    bulk = BulkReference(entropy_kB=100.0, n_atoms=len(cell))
    stored, is_min = label_structure(saddle, recipe, bulk, cell, max_escapes=0)
    assert not is_min and stored.key_value_pairs["n_imaginary"] >= 1
    assert "S_kB" not in stored.key_value_pairs and "Sf_kB" not in stored.key_value_pairs
    escaped, is_min = label_structure(saddle, recipe, bulk, cell, max_escapes=1)
    assert is_min and escaped.key_value_pairs["n_imaginary"] == 0
    assert escaped.key_value_pairs["n_saddle_escapes"] == 1
    assert escaped.energy < stored.energy
    assert (escaped.key_value_pairs["n_vac"], escaped.key_value_pairs["n_int"]) == (1, 0)


def _count_rows(path) -> int:
    if not path.exists():
        return 0
    try:
        return ase.db.connect(str(path)).count()
    except Exception:  # noqa: BLE001 - the file may be mid-creation
        return 0


def test_sigkill_at_random_moments_then_restart_leaves_every_job_exactly_once(recipe, tmp_path):
    db = tmp_path / "killed.db"
    jobs = make_jobs(recipe)

    def command(workers: int) -> list[str]:
        return [sys.executable, "-m", "ase_vibentropy.cli.main", "generate", str(RECIPE),
                "--db", str(db), "--workers", str(workers), "--no-progress"]

    rng = np.random.default_rng(6)
    kills = 0
    for round_ in range(4):
        before = _count_rows(db)
        # Alternate in-process runs and the spawn process pool (its workers die with the group).
        proc = subprocess.Popen(command(1 + round_ % 2), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        # Wait for this run to make progress, then kill it at a random moment of a later job
        # (possibly in the middle of writing one).
        deadline = time.monotonic() + 120
        while proc.poll() is None and _count_rows(db) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2, "the runs finished before they could be killed: make the recipe larger"
    finished = subprocess.run(command(2), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    rows = _rows(db)
    per_job = Counter(r.job_id for r in rows)
    assert set(per_job) == {j.job_id for j in jobs}
    assert all(per_job[r.job_id] == r.job_n_rows for r in rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_gives_one_line_and_keeps_every_finished_job(tmp_path, workers):
    db = tmp_path / "interrupted.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ase_vibentropy.cli.main", "generate", str(RECIPE), "--db", str(db),
         "--workers", str(workers), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # as from a terminal: a test run started in the background inherits SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while proc.poll() is None and _count_rows(db) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    message = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(message) == 1 and "rerun the same command to resume" in message[0], stderr
    rows = _rows(db)
    per_job = Counter(r.job_id for r in rows)
    assert rows and all(per_job[r.job_id] == r.job_n_rows for r in rows)
    assert f"interrupted: {len(per_job)} of " in message[0]


def test_dask_local_cluster_gives_the_same_rows_as_the_local_run(recipe, local_db, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    path, _ = local_db
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        summary = generate(recipe, str(tmp_path / "dask.db"), scheduler=client, progress=False)
    assert summary.n_failed == 0
    local = {r.job_id: r for r in _rows(path)}
    remote = {r.job_id: r for r in _rows(tmp_path / "dask.db")}
    assert set(local) == set(remote)
    for job_id, row in local.items():
        other = remote[job_id]
        assert other.energy == pytest.approx(row.energy, abs=1e-9)
        assert other.Sf_kB == pytest.approx(row.Sf_kB, abs=1e-6)
        assert np.allclose(other.positions, row.positions, atol=1e-8)


def test_db_stats_counts_rows_per_family_and_draws_the_histograms(local_db, tmp_path, capsys):
    path, summary = local_db
    png = tmp_path / "stats.png"
    assert main(["db-stats", str(path), "--json", "--plot", str(png)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_rows"] == summary.n_rows
    assert sum(f["count"] for f in stats["families"].values()) == summary.n_rows
    assert stats["families"]["V1"]["count"] == 2
    assert png.stat().st_size > 1000
    # core-hours: each job's one-core wall time, counted once per job however many rows it wrote
    per_job = {r.job_id: r.job_seconds for r in _rows(path)}
    assert all(seconds > 0 for seconds in per_job.values())
    assert stats["n_jobs_timed"] == len(per_job)
    assert stats["core_hours"] == pytest.approx(sum(per_job.values()) / 3600.0)


def test_generate_cli_reports_a_bad_recipe_field(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(RECIPE.read_text().replace("count = 2", "count = -2"))
    assert main(["generate", str(bad), "--db", str(tmp_path / "x.db")]) == 2
    assert "families.V1.count" in capsys.readouterr().err


def test_fe_vacancy_row_reproduces_the_reference_formation_entropy(tmp_path):
    from ase_vibentropy.data.recipe import parse_recipe

    recipe = parse_recipe({
        "potential": "fe-mendelev2003",
        "sizes": [6],
        "reference": {"hessian": "analytic", "solver": "logdet"},
        "families": {"V1": {"count": 1}},
    })
    summary = generate(recipe, str(tmp_path / "fe.db"), workers=1, progress=False)
    assert summary.n_failed == 0
    (row,) = [r for r in _rows(tmp_path / "fe.db") if r.family == "V1"]
    # relaxed vacancy in a fixed 6a0 cell, closed-form Mendelev 2003 EAM, 300 K: 2.200 k_B
    # (the independent reference table of docs/theory.md)
    assert row.Sf_kB == pytest.approx(2.200, abs=1e-3)
    assert row.potential_version == 2
    assert (row.n_vac, row.n_int, row.n_imaginary, row.natoms) == (1, 0, 0, 431)


def test_a_failing_job_is_reported_not_written_and_retried_by_the_next_run(recipe, tmp_path):
    from ase_vibentropy.data.recipe import parse_recipe

    # A 5 Å sphere does not fit in a 2x2x2 Cu cell (edge 7.2 Å): the builder refuses it.
    bad = parse_recipe({"potential": "emt-cu", "sizes": [2], "reference": {"hessian": "phonopy"},
                        "families": {"cascade": {"count": 1, "radius": 5.0}}})
    db = str(tmp_path / "fail.db")
    summary = generate(bad, db, workers=1, progress=False)
    (job_id,) = [j.job_id for j in make_jobs(bad) if j.family == "cascade"]
    assert summary.n_failed == 1 and "radius" in summary.failures[job_id]
    assert {r.family for r in _rows(db)} == {"bulk"}
    again = generate(bad, db, workers=1, progress=False)
    assert again.n_skipped == 1 and list(again.failures) == [job_id]


def test_descriptor_sums_of_defect_and_bulk_are_stored_under_the_provider_hash(tmp_path):
    from ase_vibentropy import descriptors
    from ase_vibentropy.data.recipe import parse_recipe

    params = {"n_max": 4, "l_max": 3}
    recipe = parse_recipe({"potential": "emt-cu", "sizes": [2], "reference": {"hessian": "phonopy"},
                           "families": {"V1": {"count": 1}}, "descriptors": {"afs": params}})
    db = tmp_path / "desc.db"
    assert generate(recipe, str(db), workers=1, progress=False).n_failed == 0
    provider = descriptors.get("afs", **params)
    rows = {r.family: r for r in _rows(db)}
    for row in rows.values():
        stored = row.data["descriptor_sums"][provider.hash]
        assert np.allclose(stored, provider.compute_sum(row.toatoms()), rtol=1e-12, atol=1e-12)
    assert np.array_equal(rows["V1"].data["bulk_descriptor_sums"][provider.hash],
                          rows["bulk"].data["descriptor_sums"][provider.hash])


def test_distinct_minima_are_counted_across_jobs_by_energy_and_inertia(tmp_path):
    from ase_vibentropy.data.builders import perfect_lattice
    from ase_vibentropy.data.store import LabelledRow, connect, distinct_configurations, write_job

    lattice = perfect_lattice("Cu", "fcc", 3.6, 2)
    keys = dict(element="Cu", lattice="fcc", a0=3.6, n_cells=2, strain=0.0, n_imaginary=0)
    vacancy = lattice.copy()
    del vacancy[0]
    # <100> dumbbells on site 5: along x, the same rotated to y, and a longer one along x
    # (another inertia fingerprint at the same energy)
    dumbbell_x, dumbbell_y = lattice.copy(), lattice.copy()
    centre = lattice.positions[5].copy()
    dumbbell_x.positions[5] = centre - [0.9, 0.0, 0.0]
    dumbbell_x.append("Cu")
    dumbbell_x.positions[-1] = centre + [0.9, 0.0, 0.0]
    dumbbell_y.positions[5] = centre - [0.0, 0.9, 0.0]
    dumbbell_y.append("Cu")
    dumbbell_y.positions[-1] = centre + [0.0, 0.9, 0.0]
    dumbbell_long = dumbbell_x.copy()
    dumbbell_long.positions[[5, -1]] = [centre - [1.2, 0, 0], centre + [1.2, 0, 0]]
    db = connect(tmp_path / "d.db")
    rows = [  # (structure, family, energy/eV): two jobs find the vacancy, one the same dumbbell twice
        (vacancy, "V1", -10.000), (vacancy, "V1", -10.004), (vacancy, "V1", -10.3),
        (dumbbell_x, "I1", -5.0), (dumbbell_y, "I1", -5.0), (dumbbell_long, "I1", -5.0),
    ]
    for k, (atoms, family, energy) in enumerate(rows):
        write_job(db, [LabelledRow(atoms, energy, {**keys, "family": family})], f"job{k}")
    distinct = distinct_configurations(db)
    assert distinct.counts["V1"] == {"rows": 3, "distinct": 2}  # within 1e-2 eV: one configuration
    assert distinct.counts["I1"] == {"rows": 3, "distinct": 2}  # rotated copy merged, longer one kept
    # the first of each configuration is kept: rows 1 (vacancy), 3 (deeper vacancy), 4 and 6
    assert distinct.row_ids == [1, 3, 4, 6] and distinct.duplicate_ids == [2, 5]


def test_distinct_saddles_merge_copies_found_by_other_jobs_and_jumps_read_backwards(tmp_path):
    from ase_vibentropy.data.builders import perfect_lattice
    from ase_vibentropy.data.store import LabelledRow, connect, distinct_saddles, write_job

    cell = perfect_lattice("Cu", "fcc", 3.6, 2)
    keys = dict(family="V1", element="Cu", lattice="fcc", a0=3.6, n_cells=2, stationary_point="saddle",
                n_imaginary=1)
    rows = [  # (strain, energy/eV, S/k_B, forward and backward barriers/eV)
        (0.0, -10.0, 5.0, 0.30, 0.10),
        (0.0, -10.0 + 1e-8, 5.0 + 1e-6, 0.10 + 1e-8, 0.30),  # the same jump read backwards
        (0.0, -10.0, 5.2, 0.30, 0.10),  # same energies, another entropy: another saddle
        (0.0, -10.001, 5.0, 0.30, 0.10),  # 1 meV lower: another saddle
        (0.01, -10.0, 5.0, 0.30, 0.10),  # the first one's numbers in a strained cell
    ]
    db = connect(tmp_path / "s.db")
    for k, (strain, energy, entropy, forward, backward) in enumerate(rows):
        kvp = {**keys, "strain": strain, "S_kB": entropy, "dE_forward_eV": forward, "dE_backward_eV": backward}
        write_job(db, [LabelledRow(cell.copy(), energy, kvp)], f"job{k}")
    distinct = distinct_saddles(db)
    assert distinct.counts == {"V1": {"rows": 5, "distinct": 4}}
    assert distinct.row_ids == [1, 3, 4, 5] and distinct.duplicate_ids == [2]


def test_a_one_worker_run_leaves_the_callers_thread_settings_alone(tmp_path, monkeypatch):
    """BLAS limits are scoped to the run in the caller's process (worker processes get theirs
    for life): no environment variable changes, and threadpoolctl's limits come back."""
    from threadpoolctl import threadpool_info

    from ase_vibentropy.data.recipe import load_recipe

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    before = [pool["num_threads"] for pool in threadpool_info()]
    generate(load_recipe(RECIPE), str(tmp_path / "cu.db"), workers=1, progress=False)
    assert not {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"} & set(os.environ)
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_generate_refuses_a_database_labelled_with_another_potential(tmp_path):
    """Job ids do not carry the potential's revision: resuming a database of another potential
    (or revision) would skip its jobs and reuse its perfect-lattice entropies."""
    import ase.db
    from ase.build import bulk

    from ase_vibentropy.data.recipe import load_recipe
    from ase_vibentropy.errors import MixedPotentialError

    path = tmp_path / "old.db"
    ase.db.connect(str(path)).write(bulk("Fe", "bcc", a=2.855324, cubic=True), potential="fe-mendelev2003")
    with pytest.raises(MixedPotentialError, match="fe-mendelev2003-table.*emt-cu.*relabel"):
        generate(load_recipe(RECIPE), str(path), workers=1, progress=False)
