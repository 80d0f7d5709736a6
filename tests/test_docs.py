"""The concept pages in docs/ stay true: their Python examples run and their links resolve.

Only the pages whose examples are cheap and need no shipped model are executed here
(harmonic, descriptors, pipeline); README's examples are run by tests/test_readme.py.
"""

from __future__ import annotations

import io
import math
import os
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")

EXECUTED_PAGES = ("harmonic.md", "descriptors.md", "pipeline.md")


def python_blocks(page: Path) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == "python"]


@pytest.fixture
def in_scratch_with_examples(tmp_path):
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def run_block(block: str, name: str) -> tuple[dict, str]:
    namespace: dict = {"__name__": "__docs__"}
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile(block, name, "exec"), namespace)
    return namespace, out.getvalue()


@pytest.mark.parametrize("page", EXECUTED_PAGES)
def test_docs_page_has_a_python_example(page):
    assert python_blocks(DOCS / page), f"docs/{page} shows no Python example"


def test_harmonic_page_example_gives_a_positive_vacancy_formation_entropy(in_scratch_with_examples):
    ns, out = run_block(python_blocks(DOCS / "harmonic.md")[0], "docs/harmonic.md")
    s_d, s_b = ns["S_d"], ns["S_b"]
    # Independent expectations: 3 translational zero modes and n' = 3N - 3 (Eq. 2).
    assert s_d.n_zero == 3 and s_d.n_modes == 3 * s_d.n_atoms - 3
    assert s_b.n_atoms == s_d.n_atoms + 1
    # A vacancy softens the lattice: S_f > 0, of order a few k_B (the Fe vacancy in docs/theory.md:
    # 2.2 with the closed form, 2.5-5.0 with the table splines).
    s_f = float(out.split()[-1])
    assert 0.5 < s_f < 6.0


def test_harmonic_page_saddle_example_obeys_the_migration_entropy_identity(in_scratch_with_examples):
    from ase_vibentropy.units import HBAR_EV_S, KB_EV_PER_K

    ns, out = run_block(python_blocks(DOCS / "harmonic.md")[1], "docs/harmonic.md saddles")
    jump = ns["jump"]
    # Vineyard and Eq. 2: ΔS_m/k_B = ln(h ν*/k_B T) - 1; one mode fewer at the saddle.
    kT_over_h_THz = KB_EV_PER_K * jump.temperature / (2 * math.pi * HBAR_EV_S) / 1e12
    assert jump.delta_S_m_kB == pytest.approx(math.log(jump.nu_THz / kT_over_h_THz) - 1, abs=1e-10)
    assert jump.n_modes_minimum == jump.n_modes_saddle + 1 == 3 * 127 - 3
    assert 0.3 < jump.delta_E < 1.0  # a vacancy barrier in bcc Fe, of order 0.6 eV
    assert out.split()[0] == f"{jump.delta_E:.4f}"


def test_descriptors_page_example_shapes_and_sum(in_scratch_with_examples):
    ns, _ = run_block(python_blocks(DOCS / "descriptors.md")[0], "docs/descriptors.md")
    atoms, D, grad = ns["atoms"], ns["D"], ns["grad"]
    assert D.shape == (len(atoms), 20 * 11)  # n_max (l_max + 1), docs/descriptors.md
    assert grad.shape == (len(atoms), 3)
    # Newton's third law for a translation-invariant sum: the gradient sums to zero.
    assert np.allclose(grad.sum(axis=0), 0.0, atol=1e-8 * np.abs(grad).max())


def test_descriptors_page_stiffness_example_runs_and_its_gradient_is_the_finite_difference():
    blocks = [b for b in python_blocks(DOCS / "descriptors.md") if '"stiffness"' in b]
    ns, _ = run_block(blocks[0], "docs/descriptors.md")
    atoms, gradient, stiffness = ns["atoms"], ns["gradient"], ns["stiffness"]
    assert ns["E"].shape == (len(atoms),) and gradient.shape == (len(atoms), 3)
    k, alpha = np.unravel_index(np.argmax(np.abs(gradient)), gradient.shape)  # a vacancy neighbour
    assert abs(gradient[k, alpha]) > 1e-3
    h = 1e-6
    moved = [atoms.copy() for _ in range(2)]
    moved[0].positions[k, alpha] += h
    moved[1].positions[k, alpha] -= h
    central = (stiffness.compute(moved[0])[:, 1].sum() - stiffness.compute(moved[1])[:, 1].sum()) / (2 * h)
    assert gradient[k, alpha] == pytest.approx(central, rel=1e-5)


def test_scattering_l0_components_only_count_atoms_as_the_page_says():
    from ase.build import bulk

    from ase_vibentropy import descriptors

    atoms = bulk("Fe", "bcc", a=2.855324, cubic=True).repeat(2)
    del atoms[3]
    provider = descriptors.get("scattering", grid_spacing=0.28)
    total = provider.compute_sum(atoms).reshape(len(provider.scales), provider.l_max + 1)
    assert np.allclose(total[:, 0], len(atoms) / math.sqrt(4 * math.pi), rtol=1e-10)


def test_pipeline_page_example_labels_and_resumes(in_scratch_with_examples):
    ns, out = run_block(python_blocks(DOCS / "pipeline.md")[0], "docs/pipeline.md")
    summary, recipe, generate = ns["summary"], ns["recipe"], ns["generate"]
    assert summary.n_failed == 0 and summary.n_rows == summary.n_jobs
    again = generate(recipe, "cu.db", workers=1, progress=False)
    assert again.n_skipped == summary.n_jobs and again.n_rows == 0


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")) + ["../README.md"])
def test_relative_links_resolve(page):
    path = (DOCS / page).resolve()
    for target in LINK.findall(path.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{page} links to missing {target}"
