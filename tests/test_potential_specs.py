"""Users' potentials from specs: EAM files, LAMMPS pair styles, ASE calculator factories.

Independent expectations: a setfl file written here from the closed-form Mendelev Fe functions
must reproduce the closed form's energies and forces; the factory route with ASE's EMT must give
exactly the built-in ``emt-cu``; the LAMMPS route on a file must agree with the same file read as
an EAM spec; bad specs fail before any job with specific errors.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from ase.build import bulk

from ase_vibentropy.eam import mendelev2003_fe
from ase_vibentropy.errors import NoisyPotentialError, PotentialSpecError, RecipeError
from ase_vibentropy.harmonic.screen import check_potential
from ase_vibentropy.potentials import get_potential


def write_fe_setfl(path, digits: int = 17) -> str:
    """The closed-form Mendelev 2003 Fe as a one-element eam/fs file, printed to ``digits``
    significant digits (10,000-point grids as in Fe_mm.eam.fs)."""
    closed = mendelev2003_fe()
    n_rho, d_rho, n_r, d_r, cutoff = 10000, 0.03, 10000, 5.3e-4, 5.3
    rho = np.arange(n_rho) * d_rho
    r = np.arange(n_r) * d_r
    embedding = closed.embedding(rho)[0]
    density = closed.density(r)[0]
    r_phi = r * closed.pair(np.maximum(r, 1e-12))[0]
    r_phi[0] = 0.0

    def block(values):
        text = [" ".join(f"{v:.{digits - 1}e}" for v in values[k:k + 5]) for k in range(0, len(values), 5)]
        return "\n".join(text)

    lines = ["closed-form Mendelev 2003 Fe", "written by the test suite", "setfl eam/fs",
             "1 Fe", f"{n_rho} {d_rho!r} {n_r} {d_r!r} {cutoff!r}", "26 55.845 2.855324 bcc",
             block(embedding), block(density), block(r_phi)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def fe_file(tmp_path_factory):
    return write_fe_setfl(tmp_path_factory.mktemp("eam") / "Fe_closed.eam.fs")


def test_eam_file_spec_reproduces_the_closed_form_it_was_written_from(fe_file):
    potential = get_potential(fe_file)
    assert (potential.name, potential.element, potential.lattice) == ("eam:Fe_closed.eam.fs", "Fe", "bcc")
    assert potential.analytic_hessian and potential.extra is None
    assert potential.a0 == pytest.approx(2.855324, abs=2e-5)  # zero pressure of the table itself
    atoms = bulk("Fe", "bcc", a=2.86, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=1)
    del atoms[4]
    table, exact = atoms.copy(), atoms.copy()
    table.calc, exact.calc = potential.force_calculator(), mendelev2003_fe()
    assert table.get_potential_energy() == pytest.approx(exact.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(table.get_forces(), exact.get_forces(), atol=1e-5)
    # the same spec as a table, as JSON text and as a TOML file are one potential
    assert get_potential({"eam": fe_file}) is potential
    assert get_potential(json.dumps({"eam": fe_file, "format": "eam/fs"})).version == potential.version


def test_spec_version_follows_the_file_contents(fe_file, tmp_path):
    other = write_fe_setfl(tmp_path / "Fe_closed.eam.fs", digits=12)
    assert get_potential(other).version != get_potential(fe_file).version


def test_factory_spec_with_emt_is_the_builtin_emt_cu(tmp_path):
    spec = {"factory": "ase.calculators.emt:EMT", "element": "Cu"}
    potential = get_potential(spec)
    builtin = get_potential("emt-cu")
    assert potential.name == "factory:ase.calculators.emt:EMT" and not potential.analytic_hessian
    assert (potential.lattice, potential.mass) == ("fcc", builtin.mass)  # from ASE's reference data
    assert potential.a0 == pytest.approx(builtin.a0, rel=1e-12)
    toml = tmp_path / "emt.toml"
    toml.write_text('[potential]\nfactory = "ase.calculators.emt:EMT"\nelement = "Cu"\n')
    assert get_potential(str(toml)).version == potential.version


def test_recipe_with_a_factory_table_rebuilds_in_worker_processes():
    from ase_vibentropy.data.recipe import parse_recipe

    recipe = parse_recipe({"potential": {"factory": "ase.calculators.emt:EMT", "element": "Cu"},
                           "sizes": [2], "strains": [0.0], "families": {"V1": {"count": 1}}})
    assert recipe.element == "Cu" and recipe.lattice == "fcc"
    rebuilt = get_potential(recipe.potential)  # what each worker does with the recipe's string
    assert rebuilt.name == "factory:ase.calculators.emt:EMT"


@pytest.mark.parametrize("spec, match", [
    ({"eam": "/no/such/file.eam.alloy"}, "does not exist"),
    ({"factory": "no_such_module_xyz:make", "element": "Cu"}, "cannot import"),
    ({"factory": "ase.calculators.emt:NoSuchThing", "element": "Cu"}, "no callable"),
    ({"factory": "builtins:dict", "element": "Cu"}, "not an ASE calculator"),
    ({"factory": "ase.calculators.emt:EMT"}, "needs its element"),
    ({"factory": "ase.calculators.emt:EMT", "element": "Cu", "colour": "red"}, "unknown key"),
    ({"factory": "ase.calculators.emt:EMT", "eam": "x.eam.fs", "element": "Cu"}, "exactly one"),
    ({"factory": "ase.calculators.emt:EMT", "element": "Cu", "lattice": "hcp"}, "lattice must be"),
    ("my_module:make_calc", "needs its element and lattice"),
    ("{not json", "not valid JSON"),
])
def test_bad_specs_fail_with_specific_errors(spec, match):
    with pytest.raises(PotentialSpecError, match=match):
        get_potential(spec)


def test_a_bad_spec_in_a_recipe_is_a_recipe_error_before_any_job():
    from ase_vibentropy.data.recipe import parse_recipe

    with pytest.raises(RecipeError, match=r"^potential: .*does not exist"):
        parse_recipe({"potential": {"eam": "missing.eam.fs"}, "sizes": [2], "strains": [0.0],
                      "families": {"V1": {"count": 1}}})


def test_check_passes_the_closed_form_and_flags_a_table_printed_to_8_digits(tmp_path):
    closed = check_potential(get_potential("fe-mendelev2003"))
    assert closed.passed and closed.n_zero_modes == 3 and closed.lowest_omega2 > 0
    assert closed.safe_fd_step_A == 1e-3  # 1e-2 Å is off by more than 1e-5 k_B/atom
    rounded = get_potential(write_fe_setfl(tmp_path / "Fe_rounded.eam.fs", digits=8))
    first, second = check_potential(rounded), check_potential(rounded)
    assert not first.passed and "noisy Hessians" in first.problems[0]
    assert first.strain.max_residual_kB > 1e3 * first.strain.tolerance_kB
    assert first.as_dict() | {"seconds": 0} == second.as_dict() | {"seconds": 0}  # deterministic


def test_generate_refuses_a_noisy_potential_and_writes_nothing(tmp_path):
    from ase_vibentropy.data.pipeline import generate
    from ase_vibentropy.data.recipe import parse_recipe

    rounded = write_fe_setfl(tmp_path / "Fe_rounded.eam.fs", digits=8)
    recipe = parse_recipe({"potential": {"eam": rounded}, "sizes": [2], "strains": [0.0],
                           "families": {"V1": {"count": 1}}})
    db = tmp_path / "fe.db"
    with pytest.raises(NoisyPotentialError, match="--allow-noisy-hessians"):
        generate(recipe, str(db), workers=1, progress=False)
    assert not db.exists()


def test_check_potential_cli_prints_the_verdict_and_writes_json_and_png(tmp_path, capsys, fe_file):
    from ase_vibentropy.cli.main import main

    png = tmp_path / "check.png"
    code = main(["check-potential", "fe-mendelev2003", "--json", "--plot", str(png)])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["passed"] and record["n_zero_modes"] == 3
    assert png.stat().st_size > 10_000
    code = main(["check-potential", os.fspath(tmp_path / "nothing.eam.fs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "does not exist" in err[0]


@pytest.mark.lammps
def test_lammps_pair_style_spec_agrees_with_the_same_file_read_as_eam(fe_file):
    lammps_spec = {"lammps": {"pair_style": "eam/fs", "pair_coeff": f"* * {fe_file} Fe"}, "element": "Fe"}
    via_lammps = get_potential(lammps_spec)
    via_eam = get_potential(fe_file)
    assert via_lammps.name == "lammps:eam/fs" and not via_lammps.analytic_hessian
    assert via_lammps.a0 == pytest.approx(via_eam.a0, abs=1e-6)
    atoms = bulk("Fe", "bcc", a=2.86, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=2)
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = via_lammps.force_calculator(), via_eam.force_calculator()
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-7)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-7)
    with pytest.raises(PotentialSpecError, match="Unrecognized pair style"):
        get_potential({"lammps": {"pair_style": "no_such_style", "pair_coeff": "* *"}, "element": "Fe",
                       "lattice": "bcc", "a0": 2.86})


def test_same_file_elsewhere_is_the_same_revision_and_a_changed_file_is_caught(fe_file, tmp_path):
    import shutil

    moved = tmp_path / "elsewhere" / "Fe_closed.eam.fs"
    moved.parent.mkdir()
    shutil.copy(fe_file, moved)
    original = get_potential(fe_file)
    assert get_potential(str(moved)).version == original.version  # contents, not paths
    copy = tmp_path / "Fe_copy.eam.fs"
    shutil.copy(fe_file, copy)
    spec = get_potential(str(copy)).spec  # what a recipe hands to its workers
    with open(copy, "a") as handle:
        handle.write("\n")
    with pytest.raises(PotentialSpecError, match="changed since"):
        get_potential(spec)
