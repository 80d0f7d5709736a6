"""Neighbour distances in the training domain: the shortest interatomic distance of a
structure (against brute-force pair distances), its record in a training summary (against the
rows' own structures), and the warning for two atoms squeezed closer than any training pair,
from the calculator and the CLI alike."""

from __future__ import annotations

import json
import lzma
import shutil
import warnings
from pathlib import Path

import ase.db
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read, write

from ase_vibentropy.calculator import OutsideTrainingDomainWarning, VibEntropyCalculator
from ase_vibentropy.cli.main import main
from ase_vibentropy.domain import DISTANCE_MARGIN, training_domain_messages
from ase_vibentropy.errors import DescriptorError
from ase_vibentropy.model_io import load_model, shipped_models
from ase_vibentropy.structure import shortest_distance

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples" / "data").glob("*.extxyz"))
A0_FE = 2.855324


def brute_force_shortest(atoms: Atoms) -> float:
    """Shortest pair distance over every pair and its images in the 27 neighbouring cells, Å."""
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) @ atoms.cell.array
    diff = atoms.positions[None, :, None, :] + shifts[None, None, :, :] - atoms.positions[:, None, None, :]
    d = np.linalg.norm(diff, axis=-1)
    d[d < 1e-9] = np.inf  # an atom with itself (zero shift)
    return float(d.min())


def test_shortest_distance_matches_every_pair_and_image():
    rattled = bulk("Fe", "bcc", a=A0_FE, cubic=True).repeat(2)
    rattled.rattle(0.15, seed=3)
    assert shortest_distance(rattled) == pytest.approx(brute_force_shortest(rattled), abs=1e-12)
    # perfect bcc: the first-neighbour distance sqrt(3)/2 a0
    assert shortest_distance(bulk("Fe", "bcc", a=A0_FE, cubic=True).repeat(3)) == pytest.approx(np.sqrt(3) / 2 * A0_FE)
    # one atom in a 7 Å cubic cell: its own periodic image; an isolated pair 10 Å apart
    assert shortest_distance(Atoms("Fe", cell=[7.0] * 3, pbc=True)) == pytest.approx(7.0)
    assert shortest_distance(Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 10.0]])) == pytest.approx(10.0)
    assert shortest_distance(Atoms("Ar")) == np.inf


def test_the_training_summary_records_the_rows_shortest_distances(db_path):
    from ldml_helpers import RadialPolyDescriptor

    from ase_vibentropy.features import featurize_database, load_training_set

    desc = RadialPolyDescriptor(dim=4)
    featurize_database(db_path, desc, progress=False)
    summary = load_training_set(db_path, desc.hash, "formation").summary()
    # a formation fit uses every defect row; brute force over their structures
    expected = [brute_force_shortest(row.toatoms()) for row in ase.db.connect(str(db_path)).select("family!=bulk")]
    assert summary["min_distance_n_structures"] == len(expected) == summary["n_formation"]
    np.testing.assert_allclose(summary["min_distance_range_A"], [min(expected), max(expected)], atol=1e-12)


@pytest.fixture(scope="module")
def fe_shipped_distances(tmp_path_factory) -> list[float]:
    """Shortest interatomic distance (Å) of each defect minimum of the stored fe_shipped database."""
    stored = tmp_path_factory.mktemp("fe") / "fe_shipped.db"
    with lzma.open(REPO / "benchmarks" / "reproduction" / "data" / "fe_shipped.db.xz") as src, open(stored, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return [shortest_distance(row.toatoms()) for row in ase.db.connect(str(stored)).select("n_imaginary=0,family!=bulk")]


#: The bcc-Fe models: their training rows include the stored fe_shipped database.
FE_MODELS = [name for name in shipped_models()
             if name.startswith("fe-") and load_model(name).target != "migration"]


@pytest.mark.parametrize("name", FE_MODELS)
def test_shipped_models_record_distances_every_stored_training_row_respects(name, fe_shipped_distances):
    """The backfilled record spans the shortest distance of each row of the stored fe_shipped
    database (all of them are training rows of every shipped model)."""
    record = load_model(name).training_summary_
    low, high = record["min_distance_range_A"]
    assert record["min_distance_n_structures"] <= record["n_rows"]
    assert low <= min(fe_shipped_distances) and max(fe_shipped_distances) <= high
    assert low == pytest.approx(min(fe_shipped_distances), abs=0.1)  # interstitial dumbbells, ~2 Å


def squeezed_cell() -> Atoms:
    """A 6a0 bcc Fe cell (within the shipped models' training sizes) with one site replaced by
    two atoms 1.5 Å apart along [110] (every other neighbour stays beyond 1.9 Å)."""
    atoms = bulk("Fe", "bcc", a=A0_FE, cubic=True).repeat(6)
    half = 0.75 * np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    atoms.positions[0] = -half
    atoms += Atoms("Fe", positions=[half])
    atoms.wrap()
    return atoms


def test_two_atoms_squeezed_together_warn_in_python_and_on_the_command_line(tmp_path, capsys):
    atoms = squeezed_cell()
    assert brute_force_shortest(atoms) == pytest.approx(1.5, abs=1e-9)
    training = load_model("fe-mendelev2003-afs").training_summary_["min_distance_range_A"][0]
    numbers = ("1.500 Å apart", f"{training:.3f} Å")

    with pytest.warns(OutsideTrainingDomainWarning) as caught:
        VibEntropyCalculator("fe-mendelev2003-afs", fmax_warning=None, std_warning_kB=None).get_property(
            "vibrational_entropy", atoms)
    texts = [str(w.message) for w in caught if issubclass(w.category, OutsideTrainingDomainWarning)]
    assert len(texts) == 1 and all(n in texts[0] for n in numbers), texts

    path = tmp_path / "squeezed.extxyz"
    write(path, atoms)
    code = main(["predict", str(path), "--model", "fe-mendelev2003-afs"])
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if ": warning: " in line and "closer than in any training" in line]
    assert code == 0 and len(warned) == 1 and all(n in warned[0] for n in numbers), err

    code = main(["predict", str(path), "--model", "fe-mendelev2003-afs", "--strict"])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in captured.err
    assert ": error: " in lines[0] and "--strict" in lines[0] and all(n in lines[0] for n in numbers)

    # the default model's potential-well descriptor refuses the crushed pair outright
    with pytest.raises(DescriptorError, match="not positive definite"):
        VibEntropyCalculator(fmax_warning=None, std_warning_kB=None).get_property("vibrational_entropy", atoms)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_relaxed_example_structures_are_within_the_training_distances(path):
    atoms = read(path)  # bcc Fe structures
    for name in FE_MODELS:
        model = load_model(name)
        low = model.training_summary_["min_distance_range_A"][0]
        assert shortest_distance(atoms) >= (1.0 - DISTANCE_MARGIN) * low
        # the cell-size check may speak (the 4a0 jump cells are smaller than any training
        # cell); the distance check must not
        assert not [m for m in training_domain_messages(model, atoms) if "Å apart" in m or "distance" in m]


def test_a_model_file_without_the_record_makes_no_distance_check(tmp_path):
    """Files written before the record existed: the check is not made (docs/calculator.md)."""
    doc = json.loads((REPO / "ase_vibentropy" / "pretrained" / "fe-mendelev2003-afs.json").read_text())
    for key in ("min_distance_range_A", "min_distance_n_structures"):
        del doc["training_summary"][key]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    model = load_model(str(old))
    assert training_domain_messages(model, squeezed_cell()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutsideTrainingDomainWarning)
        VibEntropyCalculator(model=model, fmax_warning=None, std_warning_kB=None).get_property(
            "vibrational_entropy", squeezed_cell())
