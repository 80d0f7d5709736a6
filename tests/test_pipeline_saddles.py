"""Saddles stored by the pipeline: the dimer explorer's transition states, refined and labelled.

Independent expectation: the same elementary vacancy jump computed directly from the shipped
NEB climbing image (refined by Newton steps, exact Vineyard prefactor), and the identity
ΔS_m/k_B = ln(h ν*/k_B T) - 1.
"""

from __future__ import annotations

from pathlib import Path

import ase.db
import numpy as np
import pytest
from ase.io import read
from ase.units import kB

from ase_vibentropy.data.pipeline import generate
from ase_vibentropy.data.recipe import parse_recipe
from ase_vibentropy.errors import RecipeError
from ase_vibentropy.harmonic import attempt_frequency, refine_saddle
from ase_vibentropy.potentials import get_potential
from ase_vibentropy.units import HBAR_EV_S

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
RECIPE = {
    "potential": "fe-mendelev2003", "sizes": [4], "strains": [0.0], "seed": 11,
    "reference": {"hessian": "analytic", "solver": "dense", "fmax": 1e-6},
    "exploration": {"method": "dimer", "minima_per_job": 3, "max_events": 8, "store_saddles": True},
    "families": {"V1": {"count": 3}},
}


@pytest.fixture(scope="module")
def saddle_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("saddles") / "fe.db"
    summary = generate(parse_recipe(RECIPE), str(path), workers=1, progress=False)
    assert summary.n_failed == 0
    return ase.db.connect(str(path))


def test_the_vacancy_jump_from_the_explorer_matches_the_direct_route(saddle_db):
    saddles = list(saddle_db.select(stationary_point="saddle"))
    assert saddles, "the explorer crossed no saddle"
    fe = get_potential("fe-mendelev2003")
    calc = fe.hessian_calculator()
    initial = read(EXAMPLES / "fe_vacancy_jump_initial_4a0.extxyz")
    direct = attempt_frequency(initial, refine_saddle(read(EXAMPLES / "fe_vacancy_jump_climbing_4a0.extxyz"), calc), calc)
    first = min(saddles, key=lambda r: abs(r.dE_forward_eV - direct.delta_E))
    assert first.n_imaginary == 1 and first.dE_forward_eV == pytest.approx(direct.delta_E, abs=1e-6)
    assert first.nu_forward_THz == pytest.approx(direct.nu_THz, rel=1e-5)
    assert first.dS_m_forward_kB == pytest.approx(direct.delta_S_m_kB, abs=1e-5)


def test_stored_saddles_obey_the_vineyard_identity_and_link_two_stored_minima(saddle_db):
    minima = {r.minimum_index: r for r in saddle_db.select(family="V1") if r.get("stationary_point") != "saddle"}
    for row in saddle_db.select(stationary_point="saddle"):
        for side, minimum in (("forward", minima[row.from_minimum]), ("backward", minima[row.to_minimum])):
            delta_s = getattr(row, f"dS_m_{side}_kB")
            assert delta_s == pytest.approx(row.S_kB - minimum.S_kB, abs=1e-9)
            h_nu_over_kt = 2 * np.pi * HBAR_EV_S * getattr(row, f"nu_{side}_THz") * 1e12 / (kB * row.temperature)
            assert delta_s == pytest.approx(np.log(h_nu_over_kt) - 1.0, abs=1e-9)
            assert getattr(row, f"dE_{side}_eV") == pytest.approx(row.energy - minimum.energy, abs=1e-9)
        assert row.unstable_omega2 < 0
        assert row.dE_forward_eV > 0 and row.dE_backward_eV > 0  # above both minima it links


def test_saddle_rows_stay_out_of_training_and_are_counted_apart(saddle_db):
    from ase_vibentropy.data.store import database_statistics

    stats = database_statistics(saddle_db)
    assert stats["n_saddles"] >= 1 and stats["n_non_minima"] == 0
    assert stats["n_minima"] == stats["n_rows"] - stats["n_saddles"]


def test_db_stats_counts_a_second_jobs_copies_of_the_saddles_once(saddle_db, tmp_path, capsys):
    """Every stored saddle written again by another job, translated by a lattice vector as
    another exploration of the same cluster would find it: no new distinct saddle."""
    import json
    import shutil

    from ase.calculators.singlepoint import SinglePointCalculator

    from ase_vibentropy.cli.main import main

    path = tmp_path / "copies.db"
    shutil.copy(saddle_db.filename, path)
    copies = ase.db.connect(str(path))
    saddles = list(copies.select(stationary_point="saddle"))
    with copies:
        for row in saddles:
            atoms = row.toatoms()
            atoms.translate(atoms.cell[0] / 4)  # one conventional bcc cell of the 4a0 box
            atoms.wrap()
            atoms.calc = SinglePointCalculator(atoms, energy=row.energy)
            copies.write(atoms, key_value_pairs=dict(row.key_value_pairs, job_id="copy"), data=row.data)
    assert main(["db-stats", str(path), "--distinct", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_saddles"] == 2 * len(saddles)
    assert stats["n_distinct_saddles"] == len(saddles)  # the job's own saddles are distinct already


def test_store_saddles_needs_the_dimer_explorer():
    recipe = {**RECIPE, "exploration": {"method": "random", "store_saddles": True}}
    with pytest.raises(RecipeError, match="store_saddles"):
        parse_recipe(recipe)


def test_saddles_per_job_needs_stored_saddles_and_leaves_other_recipes_jobs_alone():
    from ase_vibentropy.data.jobs import make_jobs

    exploration = {k: v for k, v in RECIPE["exploration"].items() if k != "store_saddles"}
    with pytest.raises(RecipeError, match="saddles_per_job.*store_saddles"):
        parse_recipe({**RECIPE, "exploration": {**exploration, "saddles_per_job": 4}})
    plain = [job.job_id for job in make_jobs(parse_recipe(RECIPE))]
    zero = {**RECIPE, "exploration": {**RECIPE["exploration"], "saddles_per_job": 0}}
    assert [job.job_id for job in make_jobs(parse_recipe(zero))] == plain
    assert parse_recipe(zero).hash == parse_recipe(RECIPE).hash
    more = {**RECIPE, "exploration": {**RECIPE["exploration"], "saddles_per_job": 4}}
    defect = [job.job_id for job in make_jobs(parse_recipe(more)) if job.kind == "defect"]
    assert not set(defect) & set(plain)  # exploring further: new jobs


@pytest.mark.parametrize("key", ["neb_images", "stall_events"])
def test_band_and_stall_keys_leave_recipes_without_them_alone(key):
    from ase_vibentropy.data.jobs import make_jobs

    plain = parse_recipe(RECIPE)
    zero = parse_recipe({**RECIPE, "exploration": {**RECIPE["exploration"], key: 0}})
    assert zero.hash == plain.hash
    assert [j.job_id for j in make_jobs(zero)] == [j.job_id for j in make_jobs(plain)]
    some = parse_recipe({**RECIPE, "exploration": {**RECIPE["exploration"], key: 3}})
    assert some.hash != plain.hash
    assert getattr(some.exploration, key) == 3


def test_bands_need_stored_saddles_and_stalling_needs_the_dimer():
    exploration = {k: v for k, v in RECIPE["exploration"].items() if k != "store_saddles"}
    with pytest.raises(RecipeError, match="neb_images.*store_saddles"):
        parse_recipe({**RECIPE, "exploration": {**exploration, "neb_images": 3}})
    with pytest.raises(RecipeError, match="stall_events.*dimer"):
        parse_recipe({**RECIPE, "exploration": {"method": "random", "stall_events": 3}})


def test_a_crossed_saddle_that_refines_to_a_minimum_is_left_out_not_a_failed_job():
    """The split vacancy (one atom midway between two vacant first-neighbour sites) is a
    minimum of this potential, 0.54 eV above the vacancy: a dimer search that stopped near it
    refines to it. Labelling returns None for that saddle, so the job keeps its other rows."""
    from ase.build import bulk

    from ase_vibentropy.data.explore import Saddle
    from ase_vibentropy.data.pipeline import label_saddle
    from ase_vibentropy.data.store import LabelledRow
    from ase_vibentropy.errors import NotAFirstOrderSaddleError

    recipe = parse_recipe(RECIPE)
    lattice = bulk("Fe", "bcc", a=recipe.a0, cubic=True).repeat(4)
    split = lattice.copy()
    neighbour = int(np.argsort(split.get_distances(0, range(len(split)), mic=True))[1])
    midpoint = split.positions[0] + 0.5 * split.get_distance(0, neighbour, mic=True, vector=True)
    del split[[0, neighbour]]
    split.append("Fe")
    split.positions[-1] = midpoint
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    with pytest.raises(NotAFirstOrderSaddleError, match="no negative|minimum"):
        refine_saddle(split, calc)  # the premise: it is a minimum, not a saddle
    side = LabelledRow(atoms=split, energy=-1.0e3, key_value_pairs={"S_kB": 0.0}, data={})
    saddle = Saddle(split, energy=0.0, origin=0, target=1)
    assert label_saddle(saddle, recipe, lattice, side, side) is None
