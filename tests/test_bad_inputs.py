"""A catalogue of bad inputs: each gets its own error class, a message that names the
problem and the fix, or, on the command line, one error line on stderr and a non-zero exit code.

Where a run over many frames or rows meets a bad one, what was already computed is kept: the
lines of earlier frames stay on stdout and their ``--local`` annotations are written; rows
featurized before a bad row stay in the database. Tests below check both.

Models are small AFS models (``calculator_helpers.SMALL_AFS``) fitted in the test on the exactly
linear synthetic entropies of ``ldml_helpers``; the physics of the fit does not matter here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write
from calculator_helpers import SMALL_AFS
from ldml_helpers import (
    A0_CU,
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

from ase_vibentropy.calculator import FarFromMinimumWarning, VibEntropyCalculator
from ase_vibentropy.descriptors import get as get_descriptor
from ase_vibentropy.errors import (
    CellMismatchError,
    DatabaseError,
    DescriptorError,
    DescriptorMismatchError,
    InvalidStructureError,
    ModelDomainError,
    ModelFileError,
    ModelVersionError,
    NotAMinimumError,
    NotRelaxedError,
    RecipeError,
    StructureFileError,
)
from ase_vibentropy.features import featurize_database, missing_rows
from ase_vibentropy.harmonic import harmonic_entropy, relax_positions
from ase_vibentropy.model import LDMLModel, UnderdeterminedFitWarning
from ase_vibentropy.model_io import load_model, save_model
from ase_vibentropy.potentials import get_potential
from ase_vibentropy.structure import read_structures
from ase_vibentropy.predictor import EntropyPredictor

# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def finished_commands_only(monkeypatch):
    """Build the CLI parser from finished sub-commands only (others are being written)."""
    only_subcommands(monkeypatch, ("predict", "reference", "featurize", "train"))


@pytest.fixture(scope="module")
def cu_model() -> LDMLModel:
    """A fitted single-element Cu model (target "total", small AFS, fcc a0 = 3.61 Å)."""
    provider = get_descriptor("afs", **SMALL_AFS)
    truth = RadialPolyDescriptor(dim=len(W_TRUE))
    cells = [atoms for _, _, atoms in defect_cells(np.random.default_rng(5))]
    cells += [cu_bulk(2, strain) for strain in (-0.01, 0.0, 0.01, 0.02)]
    X = np.array([provider.compute_sum(atoms) for atoms in cells])
    y = np.array([linear_entropy_kB(atoms, W_TRUE, C_TRUE, truth) for atoms in cells])
    model = LDMLModel(
        descriptor="afs", descriptor_params=dict(SMALL_AFS), target="total", element="Cu",
        lattice="fcc", a0=A0_CU,
    )
    return model.fit(X, y, n_atoms=[len(atoms) for atoms in cells])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, cu_model) -> str:
    return str(save_model(cu_model, tmp_path_factory.mktemp("model") / "cu.json"))


def vacancy() -> Atoms:
    atoms = cu_bulk(2)
    del atoms[0]
    return atoms


def entropy_of(atoms: Atoms, model: LDMLModel) -> float:
    return VibEntropyCalculator(model).get_property("vibrational_entropy", atoms)


def assert_one_error_line(code: int, err: str, *words: str) -> str:
    """Non-zero exit, no traceback, exactly one ``vibentropy CMD: error:`` line containing ``words``."""
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    line = errors[0]
    assert line == err.strip().splitlines()[-1]  # the error is the last thing said
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    return line


# ---------------------------------------------------------------------- structures (API)
def test_nan_position_is_refused_naming_the_atom(cu_model):
    atoms = vacancy()
    atoms.positions[4, 1] = np.nan
    with pytest.raises(InvalidStructureError, match=r"NaN or infinite positions \(first: index 4\); fix"):
        entropy_of(atoms, cu_model)


def test_infinite_position_is_refused(cu_model):
    atoms = vacancy()
    atoms.positions[7, 2] = np.inf
    with pytest.raises(InvalidStructureError, match=r"infinite positions \(first: index 7\); fix the structure"):
        entropy_of(atoms, cu_model)


def test_atoms_closer_than_half_an_angstrom_are_refused_naming_the_pair(cu_model):
    atoms = vacancy()
    atoms.positions[5] = atoms.positions[3] + (0.3, 0.0, 0.0)
    with pytest.raises(InvalidStructureError, match=r"atoms 3 and 5 are 0\.300 Å apart .*check units"):
        entropy_of(atoms, cu_model)


def test_empty_atoms_is_refused(cu_model):
    with pytest.raises(InvalidStructureError, match="no atoms: pass a structure with at least one atom"):
        entropy_of(Atoms(cell=np.eye(3) * 5, pbc=True), cu_model)


def test_periodic_structure_without_a_cell_is_refused(cu_model):
    atoms = vacancy()
    atoms.cell = None
    with pytest.raises(InvalidStructureError, match="cell is missing .*set atoms.cell"):
        entropy_of(atoms, cu_model)


def test_cell_with_zero_volume_is_refused(cu_model):
    atoms = vacancy()
    cell = atoms.cell.array.copy()
    cell[2] = cell[0] + cell[1]  # coplanar edge vectors: volume 0 but rank still looks 3
    atoms.cell = cell
    with pytest.raises(InvalidStructureError, match="(zero volume|degenerate).*set"):
        entropy_of(atoms, cu_model)


def test_mixed_periodicity_is_refused(cu_model):
    atoms = vacancy()
    atoms.pbc = (True, True, False)
    with pytest.raises(InvalidStructureError, match=r"mixed periodicity .*use pbc=True .* or pbc=False"):
        entropy_of(atoms, cu_model)


def test_element_unknown_to_the_model_is_refused(cu_model):
    iron = bulk("Fe", "bcc", a=2.855, cubic=True).repeat(2)
    with pytest.raises(ModelDomainError, match="trained on Cu .*only Fe.*use a model trained for Fe"):
        entropy_of(iron, cu_model)


def test_alloy_is_refused_by_a_single_element_model(cu_model):
    atoms = vacancy()
    atoms.symbols[[2, 9]] = "Ni"
    with pytest.raises(ModelDomainError, match="trained for Cu only.*mixes Cu with Ni.*alloy"):
        EntropyPredictor(cu_model).predict_entropy(atoms)
    with pytest.raises(ModelDomainError, match="mixes Cu with Ni"):
        entropy_of(atoms, cu_model)


def test_defect_and_bulk_in_different_cells_are_refused(cu_model):
    # S_f compares defect and perfect lattice in the SAME cell (Eq. 3); a 1 % strained bulk
    # would silently add a strain entropy of ~N k_B.
    with pytest.raises(CellMismatchError, match="same cell.*bulk_for_cell"):
        EntropyPredictor(cu_model).predict_formation_entropy(vacancy(), cu_bulk(2, strain=0.01))


def test_structure_far_from_relaxed_warns_in_the_calculator_and_is_refused_exactly():
    potential = get_potential("emt-cu")
    atoms = bulk("Cu", "fcc", a=potential.a0, cubic=True).repeat(2)
    atoms.positions[0] += (0.15, 0.0, 0.0)
    with pytest.raises(NotRelaxedError, match="not relaxed.*relax it first") as info:
        harmonic_entropy(atoms, EMT(), hessian="phonopy", fmax=1e-3)
    # The residual force is that of EMT on the displaced atom (independent evaluation).
    check = atoms.copy()
    check.calc = EMT()
    assert info.value.max_force == pytest.approx(np.linalg.norm(check.get_forces(), axis=1).max())

    # The calculator, used inside relaxations, only warns: its value is indicative off a minimum.
    model = _tiny_total_model()
    calc = VibEntropyCalculator(model, calc=EMT(), fmax_warning=0.05)
    with pytest.warns(FarFromMinimumWarning, match="relax the structure first"):
        calc.get_property("vibrational_entropy", atoms)


def _tiny_total_model() -> LDMLModel:
    """A Cu model on the test descriptor (a provider instance: no registry needed)."""
    desc = RadialPolyDescriptor(dim=len(W_TRUE))
    cells = [atoms for _, _, atoms in defect_cells(np.random.default_rng(3))][:12]
    X = np.array([desc.compute_sum(a) for a in cells])
    y = np.array([linear_entropy_kB(a, W_TRUE, C_TRUE, desc) for a in cells])
    model = LDMLModel(descriptor=desc, target="total", element="Cu")
    return model.fit(X, y, n_atoms=[len(a) for a in cells])


# ----------------------------------------------------------------------- model files
def test_truncated_model_file_is_refused(model_file, tmp_path):
    text = open(model_file).read()
    broken = tmp_path / "truncated.json"
    broken.write_text(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match="not valid JSON.*truncated or corrupt: re-save"):
        load_model(broken)


def test_corrupt_json_in_a_model_file_is_refused_on_the_command_line(model_file, tmp_path, capsys):
    broken = tmp_path / "corrupt.json"
    broken.write_text(open(model_file).read().replace('"coef": [', '"coef": [}', 1))
    write(tmp_path / "v.extxyz", vacancy())
    code, out, err = run_cli(capsys, "predict", tmp_path / "v.extxyz", "--model", broken)
    assert_one_error_line(code, err, "corrupt.json", "not valid JSON", "re-save")
    assert out == ""  # nothing half-printed before the model was known to be good


def test_model_file_of_a_newer_format_version_is_refused(model_file, tmp_path):
    doc = json.loads(open(model_file).read())
    doc["format_version"] += 1
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc))
    with pytest.raises(ModelVersionError, match="newer than.*upgrade ase-vibentropy"):
        load_model(newer)


def test_model_file_whose_descriptor_hash_does_not_match_is_refused(model_file, tmp_path):
    doc = json.loads(open(model_file).read())
    doc["descriptor"]["hash"] = "0" * 16
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    with pytest.raises(DescriptorMismatchError, match="hash .*retrain the model"):
        load_model(edited)


# ------------------------------------------------------------------------ descriptors
def test_non_positive_cutoff_is_refused():
    for r_cut in (0.0, -1.0):
        with pytest.raises(DescriptorError, match="r_cut must be a positive length in Å"):
            get_descriptor("afs", n_max=2, l_max=2, r_cut=r_cut)


def test_fewer_than_one_radial_function_is_refused_also_by_featurize(db_path, capsys):
    with pytest.raises(DescriptorError, match="n_max must be an integer >= 1"):
        get_descriptor("afs", n_max=0, l_max=2, r_cut=4.5)
    code, _, err = run_cli(capsys, "featurize", db_path, "--descriptor", "afs", "--param", "n_max=0", "--quiet")
    assert_one_error_line(code, err, "n_max must be an integer >= 1")


# -------------------------------------------------------------------- structure files
def test_unreadable_structure_file_is_one_error_line(model_file, tmp_path, capsys):
    garbage = tmp_path / "frames.xyz"
    garbage.write_text("this is not an xyz file\n")
    code, out, err = run_cli(capsys, "predict", garbage, "--model", model_file)
    assert_one_error_line(code, err, "cannot read structure file", "frames.xyz", "format ase.io reads")
    with pytest.raises(StructureFileError, match="is a directory"):
        read_structures(tmp_path)
    with pytest.raises(StructureFileError, match="does not exist: check the path"):
        read_structures(tmp_path / "missing.extxyz")


def test_empty_structure_file_is_one_error_line_from_the_console_command(model_file, tmp_path):
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    # A fresh process: exit code and stderr exactly as a user sees them.
    proc = subprocess.run(
        [sys.executable, "-m", "ase_vibentropy.cli.main", "predict", str(empty), "--model", model_file],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "empty.extxyz' is empty" in proc.stderr and "write the structure" in proc.stderr


# --------------------------------------------------------- multi-frame runs keep their work
def test_predict_prints_earlier_frames_before_the_error_on_a_bad_frame(model_file, tmp_path, capsys):
    bad = vacancy()
    bad.positions[2, 0] = np.nan
    frames = tmp_path / "traj.extxyz"
    write(frames, [vacancy(), cu_bulk(2), bad, vacancy()])
    local = tmp_path / "local.extxyz"
    code, out, err = run_cli(capsys, "predict", frames, "--model", model_file, "--json", "--local", local)
    assert_one_error_line(code, err, "frame 2 of", "frames 0-1 were printed above", "NaN", "fix")
    printed = [json.loads(line) for line in out.splitlines()]
    assert [p["index"] for p in printed] == [0, 1]
    # The local entropies of the finished frames are written, and sum to their S (Eq. 13;
    # extxyz keeps 8 significant digits).
    kept = read(local, index=":")
    assert len(kept) == 2
    for annotated, line in zip(kept, printed):
        assert annotated.arrays["local_entropy"].sum() == pytest.approx(line["S_kB"], rel=1e-6)


def test_cell_that_is_not_a_supercell_of_the_lattice_stops_predict_at_that_frame(
    model_file, tmp_path, capsys
):
    odd = vacancy()
    odd.set_cell(odd.cell * 1.3, scale_atoms=True)  # edge 2.6 a0: no whole number of fcc cells
    frames = tmp_path / "cells.extxyz"
    write(frames, [vacancy(), odd])
    code, out, err = run_cli(capsys, "predict", frames, "--model", model_file, "--lattice", "fcc", "--json")
    assert_one_error_line(code, err, "frame 1", "not a whole number of fcc cells", "pass the bulk")
    (first,) = [json.loads(line) for line in out.splitlines()]
    assert first["index"] == 0 and first["Sf_kB"] is not None


def test_bulk_file_with_another_cell_is_one_error_line(model_file, tmp_path, capsys):
    write(tmp_path / "v.extxyz", vacancy())
    write(tmp_path / "b.extxyz", cu_bulk(2, strain=0.01))
    code, out, err = run_cli(
        capsys, "predict", tmp_path / "v.extxyz", "--model", model_file, "--bulk", tmp_path / "b.extxyz"
    )
    assert_one_error_line(code, err, "frame 0", "same cell", "bulk_for_cell")


def saddle_and_minimum(a0: float) -> tuple[Atoms, Atoms]:
    """A perfect 32-site EMT-Cu cell (a minimum) and a vacancy-hop saddle in the same cell.

    The saddle: one atom halfway between two vacant nearest-neighbour sites; relaxation keeps
    the mirror symmetry of the start, so the atom stays on the saddle (one imaginary mode).
    """
    perfect = bulk("Cu", "fcc", a=a0, cubic=True).repeat(2)
    atoms = perfect.copy()
    site_a = atoms.positions[0].copy()
    site_b = site_a + np.array([a0 / 2, a0 / 2, 0.0])
    index_b = int(np.argmin(np.linalg.norm(atoms.positions - site_b, axis=1)))
    del atoms[[0, index_b]]
    atoms += Atoms("Cu", positions=[0.5 * (site_a + site_b)])
    return perfect, relax_positions(atoms, EMT(), fmax=1e-5)


def test_imaginary_modes_stop_reference_after_printing_the_minima_before(tmp_path, capsys):
    a0 = get_potential("emt-cu").a0
    perfect, saddle = saddle_and_minimum(a0)
    frames = tmp_path / "frames.extxyz"
    write(frames, [perfect, saddle])
    local = tmp_path / "local.extxyz"
    code, out, err = run_cli(
        capsys, "reference", frames, "--potential", "emt-cu", "--hessian", "phonopy", "--json",
        "--local", local,
    )
    assert_one_error_line(code, err, "frame 1 of", "frames 0-0 were printed", "imaginary mode", "relax")
    (first,) = [json.loads(line) for line in out.splitlines()]
    assert first["index"] == 0 and first["n_imaginary"] == 0
    kept = read(local, index=":")
    assert len(kept) == 1
    assert kept[0].arrays["local_entropy"].sum() == pytest.approx(first["S_kB"], rel=1e-8)


def test_unrelaxed_frame_is_refused_by_reference_naming_the_fix(tmp_path, capsys):
    atoms = bulk("Cu", "fcc", a=get_potential("emt-cu").a0, cubic=True).repeat(2)
    atoms.positions[0] += (0.15, 0.0, 0.0)
    write(tmp_path / "u.extxyz", atoms)
    code, out, err = run_cli(capsys, "reference", tmp_path / "u.extxyz", "--potential", "emt-cu", "--json")
    assert_one_error_line(code, err, "frame 0", "not relaxed", "--relax")
    assert out == ""


# ------------------------------------------------------------------------- databases
def make_read_only(path) -> None:
    """Make ``path`` unwritable, also for root (who ignores permission bits): chattr +i."""
    os.chmod(path, 0o444)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)


def make_writable(path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    os.chmod(path, 0o644)


def test_database_that_is_not_writable_fails_before_any_featurization(db_path, capsys):
    make_read_only(db_path)
    try:
        with pytest.raises(DatabaseError, match=r"not writable.*(chmod|copy|writable folder)"):
            featurize_database(db_path, RadialPolyDescriptor(dim=4), progress=False)
        code, _, err = run_cli(capsys, "featurize", db_path, *TEST_DESC_ARGS, "--quiet")
        assert_one_error_line(code, err, "cu.db", "not writable")
    finally:
        make_writable(db_path)
    assert len(missing_rows(db_path, RadialPolyDescriptor(dim=4).hash)) == 36  # untouched


def test_generate_into_a_database_path_that_cannot_be_written_is_one_error_line(
    tmp_path, capsys, monkeypatch
):
    import ase_vibentropy.cli.main as cli_main

    monkeypatch.setattr(cli_main, "SUBCOMMAND_MODULES", ("generate",))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('potential = "emt-cu"\nsizes = [2]\n\n[families.V1]\ncount = 1\n')
    a_file = tmp_path / "results"
    a_file.write_text("a file, not a folder")
    code, out, err = run_cli(
        capsys, "generate", recipe, "--db", a_file / "cu.db", "--workers", "1", "--no-progress"
    )
    assert_one_error_line(code, err, "database", "writable folder")


def test_model_output_path_that_cannot_be_written_fails_before_training(db_path, tmp_path, capsys):
    target = tmp_path / "no-such-folder" / "model.json"
    code, _, err = run_cli(capsys, "train", db_path, *TEST_DESC_ARGS, "-o", target, "--quiet")
    assert_one_error_line(code, err, "no-such-folder", "does not exist", "create it")
    # Checked first: not even the featurization started.
    assert len(missing_rows(db_path, RadialPolyDescriptor(dim=4).hash)) == 36



def test_featurize_refuses_fewer_than_one_worker(db_path, capsys):
    code, _, err = run_cli(capsys, "featurize", db_path, *TEST_DESC_ARGS, "--workers", "0", "--quiet")
    assert_one_error_line(code, err, "workers must be at least 1", "got 0")
    assert len(missing_rows(db_path, RadialPolyDescriptor(dim=4).hash)) == 36

def test_featurize_stopped_by_a_bad_row_keeps_the_rows_done_and_resumes(tmp_path, monkeypatch, capsys):
    import ase.db

    register_descriptor(monkeypatch)
    path = tmp_path / "mixed.db"
    db = ase.db.connect(str(path))
    rng = np.random.default_rng(2)
    good = [atoms for _, _, atoms in defect_cells(rng)][:4]
    overlapping = vacancy()
    overlapping.positions[1] = overlapping.positions[0] + (0.2, 0.0, 0.0)
    ids = [db.write(a, family="V1", element="Cu") for a in good[:2]]
    bad_id = db.write(overlapping, family="V1", element="Cu")
    ids += [db.write(a, family="V1", element="Cu") for a in good[2:]]
    desc = RadialPolyDescriptor(dim=4)

    code, _, err = run_cli(capsys, "featurize", path, *TEST_DESC_ARGS, "--quiet")
    assert_one_error_line(code, err, f"row {bad_id}", "0.200 Å apart", "2 row(s) featurized before it",
                          "rerun")
    assert missing_rows(path, desc.hash) == [bad_id, *ids[2:]]
    # The stored sums are the descriptor's, computed independently here.
    for row_id, atoms in zip(ids[:2], good[:2]):
        stored = db.get(id=row_id).data["descriptor_sums"][desc.hash]
        np.testing.assert_allclose(stored, desc.compute(atoms).sum(axis=0), rtol=1e-12)
    # The same with two worker processes: the error names the same row, nothing after it is kept.
    code, _, err = run_cli(capsys, "featurize", path, *TEST_DESC_ARGS, "--workers", "2", "--quiet")
    assert_one_error_line(code, err, f"row {bad_id}", "0.200 Å apart", "0 row(s) featurized before it")
    assert missing_rows(path, desc.hash) == [bad_id, *ids[2:]]
    # Deleting the bad row and rerunning resumes with the rest only.
    db.delete([bad_id])
    report = featurize_database(path, desc, progress=False)
    assert report == {"featurized": 2, "skipped": 2, "bulk_cells": 0}


def test_database_without_labelled_rows_cannot_be_trained_on(tmp_path, monkeypatch, capsys):
    import ase.db

    register_descriptor(monkeypatch)
    path = tmp_path / "unlabelled.db"
    db = ase.db.connect(str(path))
    for _, _, atoms in defect_cells(np.random.default_rng(4))[:3]:
        db.write(atoms, family="V1", element="Cu", lattice="fcc", a0=A0_CU)
    code, _, err = run_cli(capsys, "train", path, *TEST_DESC_ARGS, "-o", tmp_path / "m.json", "--quiet")
    assert_one_error_line(code, err, "no row of the database has the labels", "Sf_kB or S_kB")
    assert not (tmp_path / "m.json").exists()


def test_fewer_rows_than_parameters_warns_about_the_prior_and_still_trains(db_path, tmp_path, capsys):
    # 3 divacancy rows at one strain + their perfect-lattice row = 4 rows for 4 + 1 parameters.
    out_file = tmp_path / "small.json"
    code, out, err = run_cli(
        capsys, "train", db_path, *TEST_DESC_ARGS, "--select", "family=V2,strain=0.0", "-o", out_file,
        "--quiet",
    )
    assert code == 0
    assert "warning: 4 training rows for 5 parameters" in err and "ridge prior" in err
    assert "Traceback" not in err and "error" not in err
    assert load_model(out_file).training_summary_["n_rows"] == 4

    desc = RadialPolyDescriptor(dim=4)
    X = np.array([desc.compute_sum(a) for _, _, a in defect_cells(np.random.default_rng(1))[:3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnderdeterminedFitWarning)
        with pytest.raises(UnderdeterminedFitWarning, match="3 training rows for 4 parameters"):
            LDMLModel(descriptor=desc, per_atom_constant=False).fit(X, X @ W_TRUE)


# --------------------------------------------------------------------------- recipes
def test_recipe_with_an_unknown_field_names_it_and_the_allowed_ones(tmp_path):
    from ase_vibentropy.data.recipe import load_recipe

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'potential = "emt-cu"\nsizes = [2]\n\n[reference]\nhesian = "phonopy"\n\n'
        "[families.V1]\ncount = 1\n"
    )
    with pytest.raises(RecipeError, match=r"^reference\.hesian: unknown field; allowed fields here: .*hessian"):
        load_recipe(recipe)
