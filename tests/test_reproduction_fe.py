"""The documented Fe reproduction command (docs/REPRODUCTION.md) on a small subset of the
shipped database: merging several databases, the cluster/random split, cross-validation,
transfer tests and the exported table, with independent checks of what it reports."""

from __future__ import annotations

import importlib.util
import json
import lzma
import shutil
from pathlib import Path

import ase.db
import numpy as np
import pytest
from ase_vibentropy.predictor import EntropyPredictor

REPRO = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduction"
SHIPPED_DB = REPRO / "data" / "fe_shipped.db.xz"


def _load(name: str):
    """The reproduction script ``benchmarks/reproduction/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_reproduction", REPRO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shipped_db(root: Path) -> Path:
    """The shipped database, decompressed into ``root``."""
    whole = root / "whole.db"
    with lzma.open(SHIPPED_DB) as src, open(whole, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return whole


def _split_shipped(root: Path, selection: str) -> tuple[Path, Path]:
    """The ``selection`` rows of the shipped database, cut into a cluster database and a
    random-damage database named like the recipes' (``fe_random``)."""
    clusters, random = root / "fe_clusters.db", root / "fe_random.db"
    with ase.db.connect(str(clusters)) as out_c, ase.db.connect(str(random)) as out_r:
        for row in ase.db.connect(str(_shipped_db(root))).select(selection):
            # each database keeps its own perfect-lattice row, as a generated one would
            targets = {"bulk": (out_c, out_r), "random": (out_r,)}.get(row.family, (out_c,))
            for out in targets:
                out.write(row.toatoms(), key_value_pairs=row.key_value_pairs, data=row.data)
    return clusters, random


@pytest.fixture(scope="module")
def split_databases(tmp_path_factory):
    """The 8a0 unstrained rows of the shipped database as a cluster and a random database, with
    the single dumbbell stored a second time, as a second job finding the same minimum would
    (the shipped rows are distinct already)."""
    clusters, random = _split_shipped(tmp_path_factory.mktemp("fe"), "n_cells=8,strain=0")
    with ase.db.connect(str(clusters)) as db:
        (dumbbell,) = list(db.select("family=I1"))
        db.write(dumbbell.toatoms(), key_value_pairs=dict(dumbbell.key_value_pairs, job_id="repeat"),
                 data=dumbbell.data)
    return clusters, random


def test_fe_reproduction_command_on_a_subset(split_databases, tmp_path):
    clusters, random = split_databases
    fe_models = _load("fe_models")
    out = tmp_path / "results"
    merged = tmp_path / "merged.db"
    assert fe_models.main(["--db", str(clusters), str(random), "--descriptors", "afs",
                           "--repeats", "2", "--out", str(out), "--merged", str(merged)]) == 0
    summary = json.loads((out / "fe_afs.json").read_text())

    merged_db = ase.db.connect(str(merged.with_name("merged_afs.db")))
    n_clusters = ase.db.connect(str(clusters)).count()
    n_random = ase.db.connect(str(random)).count()
    # every row once, tagged by source, less the repeats of a configuration: the dumbbell
    # stored twice (I1 count 2) is one minimum
    removed = summary["merge"]["duplicates_removed"]
    assert summary["merge"]["rows"] == n_clusters + n_random
    assert merged_db.count() == n_clusters + n_random - removed
    i1 = list(ase.db.connect(str(clusters)).select("family=I1"))
    assert len(i1) == 2 and abs(i1[0].energy - i1[1].energy) < 1e-6
    assert merged_db.count("family=I1") == 1
    assert merged_db.count("source=fe_random,family=bulk") == 1
    assert merged_db.count("role=random") == merged_db.count("source=fe_random")
    assert merged_db.count("role=clusters") == merged_db.count("source=fe_clusters")
    assert summary["transfer"]["6a0_to_8a0"] == {"skipped": "no rows in n_cells=6"}
    assert "skipped" in summary["transfer"]["6a0_8a0_to_10a0_12a0_clusters"]
    assert summary["random_selection"] == "role=random"

    # The transfer test scores exactly the random-damage defect rows.
    transfer = summary["transfer"]["clusters_to_random"]
    n_random_defects = ase.db.connect(str(random)).count("family=random")
    assert transfer["overall"]["n"] == n_random_defects
    assert sum(f["n"] for f in transfer["by_family"].values()) == n_random_defects
    # The full-data fit beats the constant predictor (RMSE = the plain std of the targets).
    targets = [row.Sf_kB for row in merged_db.select("family!=bulk,n_imaginary=0")]
    assert summary["train"]["overall"]["rmse_kB"] < np.std(targets)
    # without strained copies every configuration is its own group
    assert summary["crossval"]["clusters_grouped"]["n_groups"] == summary["crossval"]["clusters"]["n_rows"]
    assert len({row.config for row in merged_db.select()}) == merged_db.count()
    for kind in ("all", "clusters", "clusters_8a0", "clusters_unstrained", "clusters_grouped"):
        curve = summary["crossval"][kind]
        assert len(curve["fractions"]) == 9
        assert np.all(np.isfinite(curve["test_rmse_mean"]))
    for png in ("fe_afs_train_parity.png", "fe_afs_crossval.png", "fe_afs_clusters_crossval.png",
                "fe_afs_clusters_to_random_parity.png"):
        assert (out / png).stat().st_size > 1000


@pytest.mark.lammps
def test_relabelling_with_the_same_potential_reproduces_the_stored_labels(tmp_path):
    """relabel.py relaxes each stored minimum again and recomputes S and S_f; with the potential
    that labelled the rows (the pipeline's own numbers are the independent reference) nothing
    may change beyond the 1e-5 eV/Å relaxation tolerance."""
    relabel = _load("relabel")
    whole = _shipped_db(tmp_path)
    source = tmp_path / "source.db"
    with ase.db.connect(str(source)) as out:
        rows = list(ase.db.connect(str(whole)).select("n_cells=6,strain=0,family=bulk"))
        for family in ("V1", "V2", "I1"):
            rows += list(ase.db.connect(str(whole)).select(f"n_cells=6,strain=0,family={family}", limit=1))
        for row in rows:
            out.write(row.toatoms(), key_value_pairs=row.key_value_pairs)
    dest = tmp_path / "dest.db"
    argv = [str(source), str(dest), "--potential", "fe-mendelev2003", "--workers", "1"]
    assert relabel.main(argv) == 0
    assert relabel.main(argv) == 0  # resumes: nothing left to do, nothing written twice
    new = {row.key_value_pairs["family"]: row for row in ase.db.connect(str(dest)).select()}
    assert len(new) == len(rows)
    for row in rows:
        assert new[row.family].Sf_kB == pytest.approx(row.Sf_kB, abs=2e-3)
        assert new[row.family].S_kB == pytest.approx(row.S_kB, rel=1e-6)


# a 6a0 subset has fewer rows than AFS has weights: the warning is expected
@pytest.mark.filterwarnings("ignore::ase_vibentropy.model.UnderdeterminedFitWarning")
def test_strain_knot_diagnostic_on_a_subset(tmp_path):
    """strain_knot.py on the 6a0 rows of the shipped database (strains -1..+2 %): the training
    set "below the knot" holds exactly the cluster rows under the knot strain (counted
    independently with ase.db), every test row is scored once per split under its own strain,
    and the exact perfect-lattice curve is the Bloch entropy of each strained cell."""
    clusters, random = _split_shipped(tmp_path, "n_cells=6")
    merged = tmp_path / "merged.db"
    _load("fe_models").merge_databases([clusters, random], merged, ["fe_random"])
    out = tmp_path / "results"
    strain_knot = _load("strain_knot")
    assert strain_knot.main(["--db", str(merged), "--cells", "2", "--strains", "-1", "0", "2",
                             "--repeats", "3", "--out", str(out)]) == 0
    result = json.loads((out / "strain_knot.json").read_text())
    assert (out / "strain_knot.png").stat().st_size > 1000

    db = ase.db.connect(str(merged))
    clusters_sel = "role=clusters,family!=random,family!=cascade,family!=bulk,n_imaginary=0"
    transfer = result["transfer_clusters_to_random"]
    assert transfer["all strains"]["n_train"] == db.count(clusters_sel)
    assert transfer["below the knot"]["n_train"] == db.count(f"{clusters_sel},strain<0.015")
    assert transfer["all strains"]["n_test"] == db.count("role=random,family!=bulk,n_imaginary=0")

    n_scored = db.count(clusters_sel)
    for name in ("all strains", "below the knot"):
        by_strain = result["crossval"][name]["by_strain"]
        assert sum(v["n"] for v in by_strain.values()) == 3 * round(0.1 * n_scored)
        assert {float(s) for s in by_strain} <= {-0.01, 0.0, 0.01, 0.02}

    from ase_vibentropy.harmonic import harmonic_entropy
    from ase_vibentropy.potentials import get_potential

    for point in result["perfect_lattice"]["curve"]:
        atoms = strain_knot.bcc_cell(2.855324, point["strain"], 2)
        atoms.calc = get_potential("fe-mendelev2003").hessian_calculator()
        dense = harmonic_entropy(atoms, solver="dense", fmax=None).entropy_kB / len(atoms)
        assert point["exact"] == pytest.approx(dense, rel=1e-8)


@pytest.mark.lammps
def test_strained_copy_of_the_vacancy_is_the_vacancy_generated_at_that_strain(tmp_path):
    """relabel.py --strain scales a minimum to another strain and relaxes it there; the vacancy
    has one minimum, so its -1 % copy must carry the labels the pipeline computed for the
    vacancy generated directly in the -1 % cell (the stored row is the independent reference)."""
    relabel = _load("relabel")
    whole = _shipped_db(tmp_path)
    stored = ase.db.connect(str(whole))
    dest = tmp_path / "copies.db"
    argv = [str(whole), str(dest), "--select", "n_cells=6,strain=0,family=V1", "--strain", "-0.01",
            "--potential", "fe-mendelev2003", "--workers", "1"]
    assert relabel.main(argv) == 0
    copies = {row.family: row for row in ase.db.connect(str(dest)).select()}
    assert set(copies) == {"V1", "bulk"}  # the selected minimum and its cell's perfect lattice
    direct = next(stored.select("n_cells=6,strain=-0.01,family=V1"))
    source = next(stored.select("n_cells=6,strain=0,family=V1"))
    copy = copies["V1"]
    assert copy.strain == -0.01 and copy.copy_of == source.unique_id
    np.testing.assert_allclose(copy.cell, direct.cell, rtol=1e-12)
    assert copy.S_kB == pytest.approx(direct.S_kB, rel=1e-6)
    assert copy.Sf_kB == pytest.approx(direct.Sf_kB, abs=2e-3)
    assert relabel.main(argv) == 0  # resumes: nothing left to do
    assert ase.db.connect(str(dest)).count() == 2


def test_perfect_lattice_anchor_rows_carry_the_exact_entropy_and_descriptor_sum():
    """strain_knot.py --anchor-strains: each added row is a scored-never anchor whose target is
    the dense-spectrum entropy of the strained cell and whose features are Σ_i D_i of it."""
    from ase_vibentropy.descriptors import get
    from ase_vibentropy.features import TrainingSet
    from ase_vibentropy.harmonic import harmonic_entropy
    from ase_vibentropy.potentials import get_potential

    strain_knot = _load("strain_knot")
    afs = get("afs", n_max=20, l_max=10)
    base = TrainingSet(X=np.zeros((1, afs.dim)), y=np.array([1.0]), n_atoms=np.zeros(1),
                       kind=np.array(["formation"]), family=np.array(["V1"]), row_id=np.array([7]),
                       anchor=np.array([False]), temperature=300.0, descriptor_hash=afs.hash)
    data = strain_knot.with_perfect_lattice_rows(base, [-0.01, 0.02], "fe-mendelev2003", 2.855324, 2, afs)
    assert len(data) == 3 and data.anchor.tolist() == [False, True, True]
    assert data.kind.tolist() == ["formation", "total", "total"] and data.n_atoms.tolist() == [0, 16, 16]
    for k, strain in ((1, -0.01), (2, 0.02)):
        atoms = strain_knot.bcc_cell(2.855324, strain, 2)
        atoms.calc = get_potential("fe-mendelev2003").hessian_calculator()
        assert data.y[k] == pytest.approx(harmonic_entropy(atoms, solver="dense", fmax=None).entropy_kB, rel=1e-9)
        np.testing.assert_allclose(data.X[k], afs.compute(atoms).sum(axis=0), rtol=1e-10)


def test_a_copy_that_does_not_relax_is_stored_unlabelled_and_the_run_goes_on(tmp_path, monkeypatch):
    """A non-converging relaxation must not stop a long relabelling run (nor stop every rerun at
    the same row): the row is stored once, unrelaxed, flagged and without entropies."""
    from ase_vibentropy.errors import NotRelaxedError
    from ase_vibentropy.potentials import Potential

    relabel = _load("relabel")
    whole = _shipped_db(tmp_path)
    real_relax = Potential.relax

    def relax(self, atoms, *args, **kwargs):
        if len(atoms) < 432 and atoms.cell[0, 0] > 6 * 2.855324:  # the vacancy cell at +1 %
            raise NotRelaxedError("relaxation did not converge (simulated)")
        return real_relax(self, atoms, *args, **kwargs)

    monkeypatch.setattr(Potential, "relax", relax)
    dest = tmp_path / "copies.db"
    argv = [str(whole), str(dest), "--select", "n_cells=6,strain=0,family=V1", "--strain", "-0.01", "0.01",
            "--potential", "fe-mendelev2003", "--workers", "1"]
    assert relabel.main(argv) == 0
    rows = {(row.family, row.strain): row for row in ase.db.connect(str(dest)).select()}
    assert len(rows) == 4
    failed = rows[("V1", 0.01)]
    assert failed.relax_failed == 1 and failed.get("S_kB") is None and failed.get("Sf_kB") is None
    assert rows[("V1", -0.01)].get("Sf_kB") is not None and rows[("bulk", 0.01)].get("S_kB") is not None
    assert relabel.main(argv) == 0  # resumes without retrying the failed row
    assert ase.db.connect(str(dest)).count() == 4


def test_holdout_script_scores_shipped_and_cluster_only_models_on_every_held_out_row(tmp_path):
    """fe_holdout.py on the 6a0 unstrained rows of the shipped database: the random-damage
    part plays the held-out database. The shipped model's score is checked against a
    brute-force loop of ``predict_formation_entropy`` over the structures, and the
    cluster-only model must score the same rows."""
    from ase_vibentropy.harmonic import bulk_for_cell
    from ase_vibentropy.model_io import load_model
    from ase_vibentropy.units import KB_EV_PER_K

    clusters, random = _split_shipped(tmp_path, "n_cells=6,strain=0")
    merged = tmp_path / "merged.db"
    _load("fe_models").merge_databases([clusters, random], merged.with_name("merged_afs.db"), ["fe_random"])
    out = tmp_path / "results"
    out.mkdir()
    assert _load("fe_holdout").main(["--holdout", str(random), "--merged", str(merged), "--models", "afs",
                                     "--transfer", "afs", "--out", str(out)]) == 0
    result = json.loads((out / "fe_holdout.json").read_text())

    model = load_model("fe-mendelev2003-afs")
    rows = list(ase.db.connect(str(random)).select("family!=bulk,n_imaginary=0"))
    errors = []
    for row in rows:
        atoms = row.toatoms()
        bulk = bulk_for_cell(atoms, "bcc", 2.855324, "Fe")
        errors.append(EntropyPredictor(model).predict_formation_entropy(atoms, bulk) / KB_EV_PER_K - row.Sf_kB)
    shipped = result["shipped"]["afs"]["overall"]
    assert shipped["n"] == len(rows) > 0
    assert shipped["rmse_kB"] == pytest.approx(np.sqrt(np.mean(np.square(errors))), rel=1e-6)
    assert result["clusters_only"]["afs"]["overall"]["n"] == len(rows)
    assert np.isfinite(result["clusters_only"]["afs"]["overall"]["rmse_kB"])
    assert not (out / "fe_holdout_afs_clusters_model.json").exists()
    for png in ("fe_holdout_afs_parity.png", "fe_holdout_afs_clusters_only_parity.png"):
        assert (out / png).stat().st_size > 1000
