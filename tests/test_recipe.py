"""Recipes: strict validation naming the offending field, defaults, hash, deterministic jobs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ase_vibentropy.data.jobs import make_jobs
from ase_vibentropy.data.recipe import load_recipe, parse_recipe
from ase_vibentropy.errors import RecipeError

RECIPES = Path(__file__).resolve().parents[1] / "examples" / "recipes"

BASE = {
    "potential": "emt-cu",
    "sizes": [2, 3],
    "strains": [0.0, 0.01],
    "seed": 11,
    "reference": {"hessian": "phonopy", "solver": "dense"},
    "exploration": {"method": "dimer", "minima_per_job": 3},
    "families": {"V2": {"count": 4}, "I1": {"count": 2, "kind": "crowdion"}, "random": {"count": 1, "n_pairs": [2, 5]}},
}


def _with(path: str, value):
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    table = data
    for key in parents:
        table = table.setdefault(key, {})
    table[last] = value
    return data


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    recipe = load_recipe(path)
    assert recipe.families and recipe.sizes
    assert len(make_jobs(recipe)) > 0


def test_defaults_come_from_the_potential():
    recipe = parse_recipe(BASE)
    assert (recipe.element, recipe.lattice) == ("Cu", "fcc")
    assert recipe.a0 == pytest.approx(3.59, abs=0.05)
    assert recipe.temperature == 300.0


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("colour", "red", "colour"),
        ("families.V2.count", -1, "families.V2.count"),
        ("families.V2.count", 1.5, "families.V2.count"),
        ("potential", "fe-nonexistent", "potential"),
        ("families.X3", {"count": 1}, "families.X3"),
        ("families.I1.arrangement", "compact", "families.I1.arrangement"),
        ("families.V2.kind", "dumbbell", "families.V2.kind"),
        ("reference.solver", "magic", "reference.solver"),
        ("reference.hessian", "analytic", "reference.hessian"),
        ("reference.fmax", 0.0, "reference.fmax"),
        ("exploration.method", "artn", "exploration.method"),
        ("exploration.minima_per_job", 0, "exploration.minima_per_job"),
        ("exploration.speed", 3, "exploration.speed"),
        ("strains", [0.0, 0.5], "strains[1]"),
        ("sizes", [], "sizes"),
        ("sizes", [2, -3], "sizes[1]"),
        ("element", "Fe", "element"),
        ("temperature", -10.0, "temperature"),
        ("families.cascade", {"count": 1}, "families.cascade.radius"),
        ("families.random.n_pairs", [5, 2], "families.random.n_pairs"),
    ],
)
def test_bad_recipes_name_the_offending_field(path, value, field):
    with pytest.raises(RecipeError) as info:
        parse_recipe(_with(path, value))
    assert str(info.value).startswith(f"{field}:")


def test_invalid_toml_is_a_recipe_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("potential = \n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(bad)


def test_recipe_hash_changes_with_content_not_with_key_order():
    reordered = dict(reversed(list(BASE.items())))
    assert parse_recipe(reordered).hash == parse_recipe(BASE).hash
    assert parse_recipe(_with("seed", 12)).hash != parse_recipe(BASE).hash


def test_job_list_is_deterministic_and_ids_are_unique():
    jobs = make_jobs(parse_recipe(BASE))
    again = make_jobs(parse_recipe(copy.deepcopy(BASE)))
    assert jobs == again
    assert len({j.job_id for j in jobs}) == len(jobs)
    # 4 (size, strain) cells: one bulk each; V2: ceil(4/3) = 2 jobs, I1: 1, random: 1 per cell.
    assert sum(j.kind == "bulk" for j in jobs) == 4
    assert sum(j.family == "V2" for j in jobs) == 8
    assert sum(j.n_minima for j in jobs if j.family == "V2") == 4 * 4
    assert sum(j.family == "random" for j in jobs) == 4


def test_strained_copies_share_their_seed_and_editing_one_family_keeps_other_ids():
    jobs = make_jobs(parse_recipe(BASE))
    v2 = [j for j in jobs if j.family == "V2" and j.n_cells == 2 and j.replica == 0]
    assert len(v2) == 2 and v2[0].seed == v2[1].seed and v2[0].strain != v2[1].strain
    edited = make_jobs(parse_recipe(_with("families.I1.count", 5)))
    ids = {j.job_id for j in jobs if j.family != "I1"}
    assert ids <= {j.job_id for j in edited}
    # I1's single job now asks for more minima (2 -> 3 per job), so its content and id change.
    assert not {j.job_id for j in jobs if j.family == "I1"} & {j.job_id for j in edited}


def test_raising_a_count_adds_jobs_and_keeps_the_finished_ones():
    jobs = make_jobs(parse_recipe(BASE))
    grown = make_jobs(parse_recipe(_with("families.random.count", 3)))
    old_random = {j.job_id for j in jobs if j.family == "random"}
    new_random = {j.job_id for j in grown if j.family == "random"}
    assert old_random < new_random
    assert len(new_random) == 3 * len(old_random)
