"""CLI round trip on a tiny database: featurize, train, validate, crossval, predict.

The database holds fcc Cu cells whose entropies are exactly linear in a test descriptor
(S = w*·Σ D + c* N), so every number the commands print has an independent expected value.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.io import read, write
from ldml_helpers import (
    C_TRUE,
    TEST_DESC_ARGS,
    W_TRUE,
    RadialPolyDescriptor,
    cu_bulk,
    defect_cells,
    linear_entropy_kB,
    only_subcommands,
    register_descriptor,
    run_cli,
)

from ase_vibentropy.cli.main import main
from ase_vibentropy.features import featurize_database, load_training_set


@pytest.fixture(autouse=True)
def model_commands_only(monkeypatch):
    """Build the parser from the model sub-commands only, isolating them from the others."""
    only_subcommands(monkeypatch, ("predict", "featurize", "train", "validate", "crossval"))


def test_featurize_stores_sums_and_skips_rows_already_done(db_path, capsys):
    import ase.db

    code, out, _ = run_cli(capsys, "featurize", db_path, *TEST_DESC_ARGS, "--quiet")
    assert code == 0 and "featurized 36 row(s), skipped 0" in out
    desc = RadialPolyDescriptor(dim=4)
    db = ase.db.connect(str(db_path))
    row = db.get(id=5)
    np.testing.assert_allclose(row.data["descriptor_sums"][desc.hash], desc.compute(row.toatoms()).sum(0), rtol=1e-12)
    bulk = cu_bulk(2, row.strain)
    np.testing.assert_allclose(row.data["bulk_descriptor_sums"][desc.hash], desc.compute(bulk).sum(0), rtol=1e-9)
    # Resumable: a stored sum is never recomputed (the sentinel survives a second run).
    sums = dict(row.data["descriptor_sums"])
    sums[desc.hash] = np.full(4, 7.0)
    db.update(5, data={"descriptor_sums": sums})
    code, out, _ = run_cli(capsys, "featurize", db_path, *TEST_DESC_ARGS, "--quiet")
    assert "featurized 0 row(s), skipped 36" in out
    assert np.array_equal(db.get(id=5).data["descriptor_sums"][desc.hash], np.full(4, 7.0))



def test_featurize_with_two_worker_processes_stores_exactly_the_serial_sums(db_path, tmp_path, capsys):
    import shutil

    import ase.db

    serial = tmp_path / "serial.db"
    shutil.copy(db_path, serial)
    assert run_cli(capsys, "featurize", serial, *TEST_DESC_ARGS, "--quiet")[0] == 0
    code, out, _ = run_cli(capsys, "featurize", db_path, *TEST_DESC_ARGS, "--workers", "2", "--quiet")
    assert code == 0 and "featurized 36 row(s), skipped 0" in out
    desc = RadialPolyDescriptor(dim=4)
    one, two = ase.db.connect(str(serial)), ase.db.connect(str(db_path))
    for row in two.select():
        other = one.get(id=row.id)
        for key in ("descriptor_sums", "bulk_descriptor_sums"):
            np.testing.assert_array_equal(row.data[key][desc.hash], other.data[key][desc.hash])
    # and each is the descriptor's own sum (independent of either run)
    row = two.get(id=7)
    np.testing.assert_allclose(row.data["descriptor_sums"][desc.hash], desc.compute(row.toatoms()).sum(0), rtol=1e-12)

def test_train_validate_crossval_predict_round_trip(db_path, tmp_path, capsys, rng):
    model_path, png = tmp_path / "model.json", tmp_path / "parity.png"
    code, out, err = run_cli(capsys, "train", db_path, *TEST_DESC_ARGS, "--target", "joint", "-o", model_path,
                         "--plot", png, "--quiet")
    assert code == 0, err
    assert "featurizing 36 row(s)" in err  # train featurizes what is missing first
    assert model_path.exists() and png.stat().st_size > 1000
    doc = json.loads(model_path.read_text())
    # The joint fit takes its ridge prior from the formation rows alone: the prior's shrinkage
    # leaves a bias of a few 1e-3 on noise-free data.
    np.testing.assert_allclose(doc["coef"], W_TRUE, atol=5e-3)
    assert doc["per_atom_constant_kB"] == pytest.approx(C_TRUE, abs=1e-3)
    assert doc["training_summary"]["families"] == {"I1": 12, "V1": 12, "V2": 12, "bulk": 4}
    assert (doc["element"], doc["lattice"], doc["a0"]) == ("Cu", "fcc", 3.61)

    code, out, _ = run_cli(capsys, "validate", db_path, "--model", model_path, "--json")
    report = json.loads(out)
    assert code == 0 and report["overall"]["n"] == 36 and report["overall"]["rmse_kB"] < 1e-3
    assert set(report["by_family"]) == {"V1", "V2", "I1"}

    code, out, _ = run_cli(capsys, "crossval", db_path, *TEST_DESC_ARGS, "--fractions", "0.2", "0.8",
                       "--repeats", "3", "--json", "--plot", tmp_path / "cv.png")
    cv = json.loads(out)
    assert code == 0 and cv["fractions"] == [0.2, 0.8] and cv["repeats"] == 3

    # grouped by strain: whole strains are held out, as many groups as distinct defect strains
    import ase.db

    code, out, _ = run_cli(capsys, "crossval", db_path, *TEST_DESC_ARGS, "--fractions", "0.5",
                           "--repeats", "2", "--json", "--group-by", "strain")
    strains = {row.strain for row in ase.db.connect(str(db_path)).select("family!=bulk")}
    assert code == 0 and json.loads(out)["n_groups"] == len(strains) > 2

    # a std calibrated on leave-one-(family, strain)-out residuals: one group per combination
    calibrated = tmp_path / "calibrated.json"
    code, out, _ = run_cli(capsys, "train", db_path, *TEST_DESC_ARGS, "--target", "joint", "-o",
                           calibrated, "--calibrate-std-by", "family,strain", "--quiet")
    summary = json.loads(calibrated.read_text())["training_summary"]["std_calibration"]
    combos = {(row.family, row.strain) for row in ase.db.connect(str(db_path)).select("family!=bulk")}
    assert code == 0 and "std calibrated" in out
    assert summary["n_groups"] == len(combos) and summary["std_scale"] >= 1.0
    assert "family=V1,strain=0.01" in summary["by_group"]
    assert max(cv["test_rmse_mean"]) < 1e-2 and (tmp_path / "cv.png").exists()

    # predict: exact linear entropies of new cells, computed independently.
    desc = RadialPolyDescriptor(dim=4)
    frames = [atoms for _, strain, atoms in defect_cells(rng) if strain == 0.01][:3]
    structure = tmp_path / "frames.extxyz"
    write(structure, frames)
    local = tmp_path / "local.extxyz"
    code, out, err = run_cli(capsys, "predict", structure, "--model", model_path, "--lattice", "fcc",
                         "--json", "--local", local)
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in results] == [0, 1, 2]
    bulk = cu_bulk(2, 0.01)
    s_b = linear_entropy_kB(bulk, W_TRUE, C_TRUE, desc)
    for r, atoms in zip(results, frames):
        s_d = linear_entropy_kB(atoms, W_TRUE, C_TRUE, desc)
        assert r["n_atoms"] == len(atoms)
        assert r["S_kB"] == pytest.approx(s_d, abs=0.05)
        assert r["Sf_kB"] == pytest.approx(s_d - len(atoms) / len(bulk) * s_b, abs=0.01)
        assert r["Sf_std_kB"] > 0 and r["seconds"] >= 0
    annotated = read(local, ":")
    for r, atoms in zip(results, annotated):
        assert atoms.arrays["local_entropy"].sum() == pytest.approx(r["S_kB"], rel=1e-9)
        # extxyz stores 8 significant digits
        assert atoms.arrays["local_formation_entropy"].sum() == pytest.approx(r["Sf_kB"], abs=1e-6)

    # The same bulk given as a file, and at another temperature (exact shift of S_f).
    write(tmp_path / "bulk.extxyz", bulk)
    code, out, _ = run_cli(capsys, "predict", structure, "--model", model_path, "--bulk",
                       tmp_path / "bulk.extxyz", "--temperature", "600", "--json")
    hot = [json.loads(line) for line in out.splitlines()]
    for r300, r600, atoms in zip(results, hot, frames):
        shift = 3 * (len(atoms) / len(bulk) - 1) * np.log(2.0)
        assert r600["Sf_kB"] == pytest.approx(r300["Sf_kB"] + shift, abs=1e-9)


def test_formation_model_predicts_sf_but_no_total(db_path, tmp_path, capsys, rng):
    model_path = tmp_path / "f.json"
    assert run_cli(capsys, "train", db_path, *TEST_DESC_ARGS, "--target", "formation", "-o", model_path, "--quiet")[0] == 0
    structure = tmp_path / "v.extxyz"
    write(structure, defect_cells(rng)[0][2])
    code, out, _ = run_cli(capsys, "predict", structure, "--model", model_path, "--lattice", "fcc", "--json")
    r = json.loads(out)
    assert code == 0 and r["S_kB"] is None and np.isfinite(r["Sf_kB"])


def test_predict_without_model_names_the_missing_default(tmp_path, capsys, monkeypatch):
    import ase_vibentropy.model_io as model_io

    monkeypatch.setattr(model_io, "shipped_models", lambda: [])
    monkeypatch.setattr(model_io, "DEFAULT_MODEL", "no-such-default-model")
    write(tmp_path / "a.extxyz", cu_bulk(2))
    code, _, err = run_cli(capsys, "predict", tmp_path / "a.extxyz")
    assert code == 2 and "no-such-default-model" in err and "--model" in err


def test_training_rows_at_another_temperature_are_shifted_exactly(db_path):
    import ase.db

    desc = RadialPolyDescriptor(dim=4)
    featurize_database(db_path, desc, progress=False)
    at_300 = load_training_set(db_path, desc.hash, "joint")
    db = ase.db.connect(str(db_path))
    for row in db.select():
        n_d, n_b = row.natoms, row.n_bulk
        log2 = np.log(2.0)
        db.update(row.id, temperature=600.0, S_kB=row.S_kB + (3 * n_d - 3) * log2,
                  Sf_kB=row.Sf_kB + 3 * (n_d / n_b - 1) * log2, S_bulk_kB=row.S_bulk_kB + (3 * n_b - 3) * log2)
    back = load_training_set(db_path, desc.hash, "joint", temperature=300.0)
    np.testing.assert_allclose(back.y, at_300.y, rtol=1e-12, atol=1e-9)
    total = load_training_set(db_path, desc.hash, "total", temperature=300.0)
    assert len(total) == 36 and np.all(total.n_atoms == [r.natoms for r in db.select()])
    # A perfect-lattice row (as the data pipeline writes them) adds no formation row, only its bulk.
    db.write(cu_bulk(2, 0.03), family="bulk", strain=0.03, n_cells=2, lattice="fcc", a0=3.61,
             element="Cu", S_kB=100.0, Sf_kB=0.0, S_bulk_kB=100.0, n_bulk=32, temperature=300.0)
    featurize_database(db_path, desc, progress=False)
    with_bulk = load_training_set(db_path, desc.hash, "joint", temperature=300.0)
    assert len(with_bulk) == len(back) + 1 and with_bulk.family[-1] == "bulk" and with_bulk.anchor[-1]
    # A saddle point (imaginary modes) has no harmonic entropy: it is left out and counted.
    db.update(3, n_imaginary=2)
    fewer = load_training_set(db_path, desc.hash, "formation", temperature=300.0)
    assert len(fewer) == 35 and fewer.summary()["n_skipped_not_minimum"] == 1


def test_rows_of_two_reference_potentials_do_not_mix_and_the_potential_reaches_the_summary(db_path):
    import ase.db

    from ase_vibentropy.errors import MixedPotentialError

    desc = RadialPolyDescriptor(dim=4)
    featurize_database(db_path, desc, progress=False)
    db = ase.db.connect(str(db_path))
    ids = [row.id for row in db.select()]
    for row_id in ids:
        db.update(row_id, potential="cu-a")
    assert load_training_set(db_path, desc.hash, "joint").summary()["potential"] == "cu-a"
    db.update(ids[0], potential="cu-b")
    with pytest.raises(MixedPotentialError, match=r"several reference potentials \(cu-a, cu-b\).*relabel"):
        load_training_set(db_path, desc.hash, "joint")
    only_a = load_training_set(db_path, desc.hash, "joint", selection="potential=cu-a")
    assert len(only_a) > 0 and only_a.summary()["potential"] == "cu-a"


def test_two_revisions_of_one_potential_do_not_mix(db_path):
    """Rows of fe-mendelev2003 stored without a version were labelled by the table splines;
    rows with potential_version=2 by the closed form: different targets, refused together."""
    import ase.db

    from ase_vibentropy.errors import MixedPotentialError

    desc = RadialPolyDescriptor(dim=4)
    featurize_database(db_path, desc, progress=False)
    db = ase.db.connect(str(db_path))
    ids = [row.id for row in db.select()]
    for row_id in ids:
        db.update(row_id, potential="fe-mendelev2003", potential_version=2)
    assert load_training_set(db_path, desc.hash, "joint").summary()["potential"] == "fe-mendelev2003@v2"
    db.update(ids[0], delete_keys=["potential_version"])
    with pytest.raises(MixedPotentialError, match="fe-mendelev2003-table, fe-mendelev2003@v2"):
        load_training_set(db_path, desc.hash, "joint")


def test_train_on_a_missing_database_is_a_clear_error(tmp_path, capsys, monkeypatch):
    register_descriptor(monkeypatch)
    code, _, err = run_cli(capsys, "train", tmp_path / "none.db", *TEST_DESC_ARGS, "-o", tmp_path / "m.json")
    assert code == 2 and "does not exist" in err


class FailingDescriptor(RadialPolyDescriptor):
    """Raises on the 6th evaluation: stands in for a featurize run that is killed half-way."""

    calls = 0

    def _compute_centers(self, atoms, centers):
        type(self).calls += 1
        if type(self).calls == 6:
            raise RuntimeError("simulated crash")
        return super()._compute_centers(atoms, centers)


def test_interrupted_featurize_keeps_finished_rows_and_resumes(db_path):
    from ase_vibentropy.features import missing_rows

    failing = FailingDescriptor(dim=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        featurize_database(db_path, failing, progress=False)
    # Rows written before the crash are committed (one transaction per row) ...
    left = missing_rows(db_path, failing.hash)
    assert 0 < len(left) < 36
    # ... and a second run only does the rest.
    report = featurize_database(db_path, RadialPolyDescriptor(dim=4), progress=False)
    assert report["featurized"] == len(left) and report["skipped"] == 36 - len(left)
    assert missing_rows(db_path, failing.hash) == []


@pytest.mark.parametrize("command", ["featurize", "train", "validate", "crossval", "predict"])
def test_help_of_each_model_command_fits_a_screen_and_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    text = capsys.readouterr().out
    assert info.value.code == 0
    assert len(text.splitlines()) <= 40
    assert f"vibentropy {command} " in text.split("example")[-1]


def test_isolated_clusters_enter_joint_fits_as_total_rows_shifted_with_3n_minus_6(tmp_path):
    import ase.db
    from ase.cluster import Icosahedron

    desc = RadialPolyDescriptor(dim=4)
    path = tmp_path / "clusters.db"
    db = ase.db.connect(str(path))
    for scale in (1.0, 1.02, 0.98):
        cluster = Icosahedron("Cu", noshells=2, latticeconstant=3.61 * scale)  # 13 atoms
        db.write(cluster, family="cluster", S_kB=50.0 * scale, temperature=600.0)
    featurize_database(path, desc, progress=False)
    data = load_training_set(path, desc.hash, "joint", temperature=300.0)
    assert data.kind.tolist() == ["total"] * 3 and data.n_atoms.tolist() == [13.0] * 3
    np.testing.assert_allclose(data.y, 50.0 * np.array([1.0, 1.02, 0.98]) - (3 * 13 - 6) * np.log(2.0))


def test_formation_model_without_a_bulk_reference_is_a_clear_error(db_path, tmp_path, capsys, rng):
    model_path = tmp_path / "f.json"
    assert run_cli(capsys, "train", db_path, *TEST_DESC_ARGS, "--target", "formation", "-o", model_path, "--quiet")[0] == 0
    write(tmp_path / "v.extxyz", defect_cells(rng)[0][2])
    code, _, err = run_cli(capsys, "predict", tmp_path / "v.extxyz", "--model", model_path)
    assert code == 2 and "--lattice" in err and "formation entropies only" in err
