"""``vibentropy reference``: the CLI contract (JSON lines, bulk handling, errors)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write
from ase.units import _amu, _e, _hbar, kB

import ase_vibentropy.harmonic as harmonic
from ase_vibentropy.cli.main import main
from ase_vibentropy.potentials import get_potential

CONTRACT_KEYS = {"index", "n_atoms", "S_kB", "Sf_kB", "n_imaginary", "hessian", "solver", "seconds"}


def plain_entropy_kB(atoms, calc, temperature=300.0, step=1e-3):
    """Classical S (Eq. 2), k_B, from a central-difference Hessian and eigvalsh, written plainly."""
    n3 = 3 * len(atoms)
    work = atoms.copy()
    work.calc = calc
    origin = atoms.positions.copy()
    hessian = np.empty((n3, n3))
    for k in range(n3):
        shifted = origin.copy()
        shifted.reshape(-1)[k] += step
        work.positions = shifted
        plus = work.get_forces().reshape(-1)
        shifted.reshape(-1)[k] -= 2 * step
        work.positions = shifted
        minus = work.get_forces().reshape(-1)
        hessian[:, k] = (minus - plus) / (2 * step)
    hessian = 0.5 * (hessian + hessian.T)
    inv_sqrt_m = np.repeat(atoms.get_masses() ** -0.5, 3)
    omega2 = np.linalg.eigvalsh(inv_sqrt_m[:, None] * hessian * inv_sqrt_m[None, :])[3:]
    assert omega2.min() > 0
    omega = np.sqrt(omega2 * _e / (1e-20 * _amu))  # rad/s
    return float(np.sum(np.log(kB * temperature / (_hbar / _e * omega)) + 1.0))


@pytest.fixture(scope="module")
def cu_a0():
    return get_potential("emt-cu").a0


def cu_vacancy(a: float, site: int = 0):
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(2)
    del atoms[site]
    return atoms


def run_cli(capsys, *argv):
    code = main(["reference", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cu_run(tmp_path_factory, cu_a0):
    """Two unrelaxed EMT Cu vacancy frames, unstrained and +1 %, through --relax --json."""
    folder = tmp_path_factory.mktemp("cli")
    structures = folder / "cu.extxyz"
    write(structures, [cu_vacancy(cu_a0), cu_vacancy(cu_a0 * 1.01, site=7)])
    local = folder / "local.extxyz"
    stdout = io.StringIO()  # capsys is function-scoped; this fixture is shared by three tests
    with contextlib.redirect_stdout(stdout):
        code = main(
            [
                "reference", str(structures), "--potential", "emt-cu", "--lattice", "fcc",
                "--relax", "--json", "--local-entropies", str(local),
            ]
        )
    return code, json_lines(stdout.getvalue()), read(local, index=":")


def test_json_lines_carry_the_contract_fields_for_every_frame(cu_run):
    code, rows, _ = cu_run
    assert code == 0
    assert [row["index"] for row in rows] == [0, 1]
    for row in rows:
        assert CONTRACT_KEYS <= set(row)
        assert row["n_atoms"] == 31 and row["n_imaginary"] == 0
        assert row["hessian"] == "phonopy"  # EMT has no analytic Hessian
        assert row["solver"] == "dense"
        assert row["seconds"] > 0


def test_reported_entropies_match_a_plain_finite_difference_calculation(cu_run, cu_a0):
    """S of the relaxed frame and S_f against the equally strained perfect crystal (Eq. 3)."""
    _, rows, frames = cu_run
    for row, relaxed, strain in zip(rows, frames, (0.0, 0.01)):
        s_defect = plain_entropy_kB(relaxed, EMT())
        perfect = bulk("Cu", "fcc", a=cu_a0 * (1 + strain), cubic=True).repeat(2)
        s_bulk = plain_entropy_kB(perfect, EMT())
        assert row["S_kB"] == pytest.approx(s_defect, abs=2e-3)
        assert row["S_bulk_kB"] == pytest.approx(s_bulk, abs=2e-3)
        assert row["Sf_kB"] == pytest.approx(s_defect - 31 / 32 * s_bulk, abs=2e-3)
    assert rows[0]["Sf_kB"] != pytest.approx(rows[1]["Sf_kB"], abs=1e-2)  # strain matters


def test_local_entropies_file_sums_to_the_reported_entropies(cu_run):
    _, rows, frames = cu_run
    assert len(frames) == len(rows)
    for row, frame in zip(rows, frames):
        # extxyz stores 8 decimals per atom.
        assert frame.arrays["local_entropy"].sum() == pytest.approx(row["S_kB"], abs=1e-6)
        assert frame.arrays["local_formation_entropy"].sum() == pytest.approx(
            row["Sf_kB"], abs=1e-6
        )
        forces = EMT().get_forces(frame)
        assert np.linalg.norm(forces, axis=1).max() < 1e-5  # the relaxed positions were written


def test_bulk_entropy_is_computed_once_per_distinct_cell(tmp_path, capsys, cu_a0, monkeypatch):
    calls = []
    original = harmonic.harmonic_entropy

    def counting(atoms, *args, **kwargs):
        calls.append(len(atoms))
        return original(atoms, *args, **kwargs)

    monkeypatch.setattr(harmonic, "harmonic_entropy", counting)
    relaxed = [
        get_potential("emt-cu").relax(cu_vacancy(a, site), fmax=1e-5)
        for a, site in ((cu_a0, 0), (cu_a0, 9), (cu_a0 * 0.99, 3))
    ]
    path = tmp_path / "three.extxyz"
    write(path, relaxed)
    code, out, _ = run_cli(capsys, path, "--potential", "emt-cu", "--lattice", "fcc", "--json")
    assert code == 0
    rows = json_lines(out)
    assert len(rows) == 3
    assert sorted(calls) == [31, 31, 31, 32, 32]  # three frames, two distinct cells
    # The same defect at another site of the same cell: the same entropy (translation).
    assert rows[0]["Sf_kB"] == pytest.approx(rows[1]["Sf_kB"], abs=1e-6)


def test_bulk_file_frame_with_the_same_cell_gives_the_lattice_result(tmp_path, capsys, cu_a0):
    relaxed = get_potential("emt-cu").relax(cu_vacancy(cu_a0), fmax=1e-5)
    write(tmp_path / "d.extxyz", relaxed)
    other = bulk("Cu", "fcc", a=cu_a0 * 1.02, cubic=True).repeat(2)
    perfect = bulk("Cu", "fcc", a=cu_a0, cubic=True).repeat(2)
    write(tmp_path / "b.extxyz", [other, perfect])
    common = (tmp_path / "d.extxyz", "--potential", "emt-cu", "--json")
    _, out_lattice, _ = run_cli(capsys, *common, "--lattice", "fcc")
    code, out_file, _ = run_cli(capsys, *common, "--bulk", tmp_path / "b.extxyz")
    assert code == 0
    # Same crystal up to the 8 decimals extxyz stores per coordinate.
    assert json_lines(out_file)[0]["Sf_kB"] == pytest.approx(
        json_lines(out_lattice)[0]["Sf_kB"], abs=1e-6
    )


def test_readable_table_without_json(tmp_path, capsys, cu_a0):
    relaxed = get_potential("emt-cu").relax(cu_vacancy(cu_a0), fmax=1e-5)
    write(tmp_path / "d.extxyz", relaxed)
    _, out_json, _ = run_cli(capsys, tmp_path / "d.extxyz", "--potential", "emt-cu", "--json")
    code, table, _ = run_cli(capsys, tmp_path / "d.extxyz", "--potential", "emt-cu")
    assert code == 0
    assert "S_kB" in table and "emt-cu" in table
    assert f"{json_lines(out_json)[0]['S_kB']:.3f}" in table
    assert "Sf_kB" not in json_lines(out_json)[0]  # no bulk given, no formation entropy


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_potential_is_one_error_line_naming_the_known_ones(tmp_path, capsys, cu_a0):
    write(tmp_path / "d.extxyz", cu_vacancy(cu_a0))
    code, out, err = run_cli(capsys, tmp_path / "d.extxyz", "--potential", "eam-unobtainium")
    assert code != 0 and out == ""
    line = one_error_line(err)
    assert "eam-unobtainium" in line and "emt-cu" in line and "fe-mendelev2003" in line


@pytest.mark.parametrize(
    ("option", "value", "known"),
    [("--hessian", "spline", "phonopy"), ("--solver", "lanczos", "logdet")],
)
def test_unknown_hessian_source_or_solver_is_one_error_line(
    tmp_path, capsys, cu_a0, option, value, known
):
    write(tmp_path / "d.extxyz", cu_vacancy(cu_a0))
    code, _, err = run_cli(capsys, tmp_path / "d.extxyz", "--potential", "emt-cu", option, value)
    assert code != 0
    line = one_error_line(err)
    assert value in line and known in line


def test_missing_file_is_one_error_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, tmp_path / "absent.extxyz", "--potential", "emt-cu")
    assert code != 0 and out == ""
    assert "absent.extxyz" in one_error_line(err)


def test_cell_that_is_not_whole_lattice_cells_is_one_error_line(tmp_path, capsys, cu_a0):
    atoms = bulk("Cu", "fcc", a=cu_a0, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell * 1.25, scale_atoms=True)  # 2.5 conventional cells per edge
    write(tmp_path / "odd.extxyz", atoms)
    code, _, err = run_cli(
        capsys, tmp_path / "odd.extxyz", "--potential", "emt-cu", "--lattice", "fcc"
    )
    assert code != 0
    assert "whole number" in one_error_line(err)


def test_bulk_file_with_another_cell_is_one_error_line(tmp_path, capsys, cu_a0):
    write(tmp_path / "d.extxyz", cu_vacancy(cu_a0))
    write(tmp_path / "b.extxyz", bulk("Cu", "fcc", a=cu_a0 * 1.01, cubic=True).repeat(2))
    code, _, err = run_cli(
        capsys, tmp_path / "d.extxyz", "--potential", "emt-cu", "--bulk", tmp_path / "b.extxyz"
    )
    assert code != 0
    assert "same cell" in one_error_line(err)


def test_unrelaxed_frame_without_relax_is_refused(tmp_path, capsys, cu_a0):
    write(tmp_path / "d.extxyz", cu_vacancy(cu_a0))
    code, _, err = run_cli(capsys, tmp_path / "d.extxyz", "--potential", "emt-cu")
    assert code != 0
    assert "not relaxed" in one_error_line(err)


def test_structure_of_another_element_is_refused(tmp_path, capsys):
    write(tmp_path / "ag.extxyz", bulk("Ag", "fcc", a=4.09, cubic=True))
    code, _, err = run_cli(capsys, tmp_path / "ag.extxyz", "--potential", "emt-cu")
    assert code != 0
    assert "Ag" in one_error_line(err)


def test_help_fits_one_screen_and_shows_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        main(["reference", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) <= 40
    assert "vibentropy reference" in text and "--json" in text and "example" in text


def test_console_command_runs_in_a_fresh_process(tmp_path, cu_a0):
    relaxed = get_potential("emt-cu").relax(cu_vacancy(cu_a0), fmax=1e-5)
    write(tmp_path / "d.extxyz", relaxed)
    command = [sys.executable, "-m", "ase_vibentropy.cli.main", "reference"]
    options = ["--potential", "emt-cu", "--lattice", "fcc", "--json"]
    ok = subprocess.run(
        [*command, str(tmp_path / "d.extxyz"), *options],
        capture_output=True, text=True, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    (row,) = json_lines(ok.stdout)
    assert CONTRACT_KEYS <= set(row)
    bad = subprocess.run(
        [*command, str(tmp_path / "d.extxyz"), "--potential", "nope"],
        capture_output=True, text=True, check=False,
    )
    assert bad.returncode != 0 and bad.stdout == ""
    assert "unknown potential" in one_error_line(bad.stderr)


def test_fe_vacancy_through_the_cli_reproduces_the_reference_table(tmp_path, capsys):
    """6a0 V1 of the closed-form Fe: 2.200 k_B (docs/theory.md), with the defaults
    (fe-mendelev2003, analytic Hessian), on a core install."""
    a0 = 2.855324
    atoms = bulk("Fe", "bcc", a=a0, cubic=True).repeat(6)
    del atoms[int(np.argmin(np.linalg.norm(atoms.positions - 3 * a0, axis=1)))]
    write(tmp_path / "v1.extxyz", atoms)
    code, out, _ = run_cli(capsys, tmp_path / "v1.extxyz", "--lattice", "bcc", "--relax", "--json")
    assert code == 0
    (row,) = json_lines(out)
    assert row["hessian"] == "analytic" and row["potential"] == "fe-mendelev2003"
    assert row["n_atoms"] == 431 and row["n_bulk"] == 432
    assert row["Sf_kB"] == pytest.approx(2.200, abs=1e-3)
