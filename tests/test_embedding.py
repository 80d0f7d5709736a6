"""The embedding route of S_f against the full log-det route, on closed-form Fe.

The expectations are independent of the embedding: the full route (one Cholesky of the whole
defect cell and the Bloch spectrum of the perfect lattice, or dense eigvalsh), and the
Moore-Penrose inverse of the dense perfect-lattice dynamical matrix for G0.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import kB

from ase_vibentropy.errors import (
    DelocalisedDefectError,
    EmbeddingCellTooSmallError,
    EmbeddingNotApplicableError,
    HigherOrderSaddleError,
    InvalidOptionError,
    NoLatticeReferenceError,
    NotAMinimumError,
    SaddleIsMinimumError,
)
from ase_vibentropy.data.builders import centred_point_defect, minimum_image, vacancy_jump
from ase_vibentropy.harmonic import (
    attempt_frequency,
    bloch_omega2,
    bulk_for_cell,
    embedding_formation_entropy,
    formation_entropy,
    green_preconditioner,
    harmonic_entropy,
    lattice_greens_function,
    map_to_lattice,
    max_force,
    newton_polish,
    omega2_spectrum,
    refine_saddle,
    relax_to_minimum,
)
from ase_vibentropy.potentials import get_potential

A0 = 2.855324  # Å


def centred(n_cells: int, defect: str) -> Atoms:
    """bcc Fe n³ cell with a vacancy (V1) or a <110> dumbbell (±1 Å, I1) on the centre site."""
    perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells,) * 3)
    return centred_point_defect(perfect, {"V1": "V1", "I1": "I1<110>"}[defect])


@pytest.fixture(scope="module")
def calc():
    return get_potential("fe-mendelev2003").hessian_calculator()


def full_route_kB(atoms: Atoms, calc, solver: str = "logdet") -> float:
    s_d = harmonic_entropy(atoms, calc, solver=solver, fmax=1e-6)
    s_b = harmonic_entropy(bulk_for_cell(atoms, "bcc", A0, "Fe"), calc)
    return formation_entropy(s_d, s_b) / kB


@pytest.fixture(scope="module")
def relaxed_cells(calc):
    """The relaxed 8a0 V1 and I1 cells."""
    return {defect: relax_to_minimum(centred(8, defect), calc, fmax=1e-8) for defect in ("V1", "I1")}


@pytest.fixture(scope="module")
def cases(calc, relaxed_cells):
    """(embedding result at the default radius, full-route S_f) for the 8a0 V1 and I1."""
    return {
        defect: (embedding_formation_entropy(relaxed, calc, "bcc", A0, fmax=1e-6),
                 full_route_kB(relaxed, calc))
        for defect, relaxed in relaxed_cells.items()
    }


def test_vacancy_matches_full_route_at_default_radius(cases):
    result, exact = cases["V1"]
    assert result.n_vacancies == 1 and result.n_interstitials == 0
    assert abs(result.formation_entropy_kB - exact) < 1e-3
    assert result.formation_entropy == pytest.approx(result.formation_entropy_kB * kB)


def test_dumbbell_matches_full_route_at_default_radius(cases):
    result, exact = cases["I1"]
    # the dumbbell's two atoms are both ~1 Å from their site: one vacancy, two interstitials
    assert result.n_vacancies == 1 and result.n_interstitials == 2
    assert abs(result.formation_entropy_kB - exact) < 1e-2


@pytest.mark.parametrize("defect", ["V1", "I1"])
def test_convergence_report_is_honest(cases, defect):
    result, exact = cases[defect]
    errors = np.abs(result.formation_entropies_kB - exact)
    assert errors[2] < errors[0]  # the error shrinks with R
    assert errors[0] <= result.convergence_kB  # and the report does not understate it
    np.testing.assert_allclose(np.diff(result.radii), A0)


@pytest.mark.parametrize("defect, tolerance", [("V1", 1e-3), ("I1", 1e-2)])
def test_harmonic_entropy_embedding_solver_is_the_full_route(calc, relaxed_cells, cases, defect,
                                                             tolerance):
    relaxed = relaxed_cells[defect]
    result = harmonic_entropy(relaxed, calc, solver="embedding", lattice="bcc", a0=A0, fmax=1e-6)
    assert result.solver == "embedding" and result.n_modes == 3 * len(relaxed) - 3
    full = harmonic_entropy(relaxed, calc, solver="logdet", fmax=1e-6)
    assert abs(result.entropy_kB - full.entropy_kB) < tolerance  # S_d itself, not only S_f
    bulk_result = harmonic_entropy(bulk_for_cell(relaxed, "bcc", A0, "Fe"), calc)  # Bloch
    embedded, exact = cases[defect]
    assert abs(formation_entropy(result, bulk_result) / kB - exact) < tolerance
    # S = (N_d/N_b) S_b + S_f of the embedding, its report reachable from the result
    assert result.embedding.formation_entropy_kB == pytest.approx(embedded.formation_entropy_kB,
                                                                  abs=1e-12)
    assert formation_entropy(result, bulk_result) / kB == pytest.approx(
        embedded.formation_entropy_kB, abs=1e-9)
    assert result.embedding.convergence_kB == embedded.convergence_kB


def test_auto_picks_the_embedding_for_large_cells_and_says_why_not(calc, relaxed_cells,
                                                                   monkeypatch):
    from ase_vibentropy.harmonic import embedding

    monkeypatch.setattr(embedding, "EMBEDDING_MIN_ATOMS", 100)
    relaxed = relaxed_cells["V1"]
    picked = harmonic_entropy(relaxed, calc, lattice="bcc", a0=A0, fmax=1e-6)
    assert picked.solver == "embedding" and picked.embedding_refused is None
    without = harmonic_entropy(relaxed, calc, fmax=1e-6)
    assert without.solver.startswith("logdet") and "lattice=" in without.embedding_refused
    assert without.entropy_kB == pytest.approx(picked.entropy_kB, abs=1e-3)
    thin = relax_to_minimum(centred(4, "V1"), calc, fmax=1e-8)
    fallback = harmonic_entropy(thin, calc, lattice="bcc", a0=A0, fmax=1e-6)
    assert fallback.solver == "dense"  # the full route of a 127-atom cell
    assert "twice the Hessian's range" in fallback.embedding_refused
    with pytest.raises(EmbeddingCellTooSmallError):
        harmonic_entropy(thin, calc, solver="embedding", lattice="bcc", a0=A0, fmax=1e-6)
    with pytest.raises(InvalidOptionError, match="lattice="):
        harmonic_entropy(relaxed, calc, solver="embedding", fmax=1e-6)
    with pytest.raises(InvalidOptionError, match="spectrum"):
        harmonic_entropy(relaxed, calc, solver="embedding", lattice="bcc", a0=A0, local=True)


def test_choose_solver_is_the_decision_harmonic_entropy_takes(calc, relaxed_cells, monkeypatch):
    from ase_vibentropy.harmonic import choose_solver, embedding

    monkeypatch.setattr(embedding, "EMBEDDING_MIN_ATOMS", 100)
    relaxed = relaxed_cells["V1"]
    full = "logdet" if len(relaxed) >= 1000 else "dense"
    picked = choose_solver(relaxed, lattice="bcc", a0=A0, calc=calc)
    assert (picked.solver, picked.fallback, picked.embedding_refused) == ("embedding", full, None)
    no_reference = choose_solver(relaxed, calc=calc)
    assert no_reference.solver == full and "lattice=" in no_reference.embedding_refused
    no_sparse = choose_solver(relaxed, lattice="bcc", a0=A0, hessian="phonopy", calc=calc)
    assert no_sparse.solver == full and "get_hessian" in no_sparse.embedding_refused
    assert choose_solver(relaxed, lattice="bcc", a0=A0, local=True, calc=calc).solver == "dense"
    perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat(4)
    assert choose_solver(perfect, lattice="bcc", a0=A0, calc=calc).solver == "bloch"
    with pytest.raises(InvalidOptionError, match="lattice="):
        choose_solver(relaxed, "embedding", calc=calc)


def test_region_covering_the_cell_is_exact(calc):
    relaxed = relax_to_minimum(centred(6, "I1"), calc, fmax=1e-8)
    exact = full_route_kB(relaxed, calc, solver="dense")
    edge = relaxed.cell[0, 0]
    result = embedding_formation_entropy(relaxed, calc, "bcc", A0, radius=edge, fmax=1e-6)
    assert result.far_field[0] == pytest.approx(0.0, abs=1e-9)
    assert result.formation_entropy_kB == pytest.approx(exact, abs=1e-6)


def test_green_function_is_the_pseudo_inverse(calc):
    perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat((6, 6, 6))
    green = lattice_greens_function(calc, "bcc", "Fe", A0, 6)
    dyn = calc.get_hessian(perfect).toarray() / green.mass
    pinv = np.linalg.pinv(dyn, hermitian=True, rcond=1e-10)
    # the Green's function's site order, matched to the ase atom order by position
    sites = green.site_positions()
    edge = perfect.cell[0, 0]
    rel = perfect.positions[None, :, :] - sites[:, None, :]
    rel -= np.round(rel / edge) * edge
    order = np.argmin(np.linalg.norm(rel, axis=2), axis=1)
    dof = (3 * order[:, None] + np.arange(3)).reshape(-1)
    blocks = green.blocks(green.green, np.arange(green.n_sites), np.arange(green.n_sites))
    np.testing.assert_allclose(blocks, pinv[np.ix_(dof, dof)], atol=1e-10 * np.abs(pinv).max())
    omega2 = bloch_omega2(perfect, calc.get_hessian(perfect))
    assert green.log_pdet == pytest.approx(np.sum(np.log(omega2[3:])), rel=1e-12)


def test_preconditioned_newton_relaxes(calc):
    atoms = centred(6, "V1")
    atoms.rattle(0.02, seed=1)
    green = lattice_greens_function(calc, "bcc", "Fe", A0, 6)
    relaxed = newton_polish(atoms, calc, fmax=1e-9, preconditioner=green_preconditioner(atoms, green))
    assert max_force(relaxed, calc) <= 1e-9
    plain = newton_polish(atoms, calc, fmax=1e-9)
    np.testing.assert_allclose(relaxed.positions, plain.positions, atol=1e-8)


def test_site_map_finds_vacancies_and_interstitials(calc):
    atoms = centred(8, "I1")
    del atoms[0]  # a second vacancy, at the corner
    smap = map_to_lattice(atoms, lattice_greens_function(calc, "bcc", "Fe", A0, 8))
    assert smap.vacancies.size == 2 and smap.interstitials.size == 2
    assert set(smap.interstitials) == {len(atoms) - 2, len(atoms) - 1}


def test_refuses_cells_thinner_than_twice_the_hessian_range(calc):
    with pytest.raises(EmbeddingCellTooSmallError, match="twice the Hessian's range"):
        embedding_formation_entropy(centred(4, "V1"), calc, "bcc", A0, fmax=None)


def test_refuses_spread_damage_and_perfect_lattices(calc):
    atoms = centred(8, "V1")
    del atoms[0]  # a vacancy at the corner, half a cell diagonal from the centre one
    with pytest.raises(DelocalisedDefectError, match="not a localised defect"):
        embedding_formation_entropy(atoms, calc, "bcc", A0, fmax=None)
    scrambled = centred(6, "V1")
    scrambled.rattle(0.6, seed=3)
    with pytest.raises(DelocalisedDefectError, match="spread through the cell"):
        embedding_formation_entropy(scrambled, calc, "bcc", A0, fmax=None)
    perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat((6, 6, 6))
    with pytest.raises(DelocalisedDefectError, match="no point defect"):
        embedding_formation_entropy(perfect, calc, "bcc", A0, fmax=None)


def test_refuses_cells_without_a_lattice_reference(calc):
    atoms = centred(6, "V1")
    atoms.set_cell(atoms.cell[:] * [1.0, 1.0, 1.2], scale_atoms=True)
    with pytest.raises(NoLatticeReferenceError, match="not cubic"):
        embedding_formation_entropy(atoms, calc, "bcc", A0, fmax=None)
    assert issubclass(NoLatticeReferenceError, EmbeddingNotApplicableError)


def test_cli_embedding_refusal_is_one_line(tmp_path, capsys, monkeypatch):
    from ase.io import write

    from ase_vibentropy.cli.main import main
    from ase_vibentropy.harmonic import embedding

    path = tmp_path / "v4.extxyz"
    write(path, centred(4, "V1"))
    assert main(["reference", str(path), "--lattice", "bcc", "--solver", "embedding"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "twice the Hessian's range" in err[0]
    # auto falls back to the full route and says why (the size threshold lowered to 4a0)
    monkeypatch.setattr(embedding, "EMBEDDING_MIN_ATOMS", 100)
    assert main(["reference", str(path), "--lattice", "bcc", "--relax", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["solver"] != "embedding"
    assert "twice the Hessian's range" in record["embedding_refused"]
    assert record["Sf_kB"] == pytest.approx(2.183, abs=1e-3)  # docs/theory.md table, 4a0


def test_cli_embedding_gives_the_reference_vacancy(tmp_path, capsys):
    from ase.io import write

    from ase_vibentropy.cli.main import main

    path = tmp_path / "v6.extxyz"
    write(path, centred(6, "V1"))
    args = ["reference", str(path), "--lattice", "bcc", "--relax", "--solver", "embedding", "--json"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["solver"] == "embedding" and record["n_vacancies"] == 1
    assert len(record["Sf_by_radius_kB"]) == 3
    assert record["Sf_kB"] == pytest.approx(2.200, abs=1e-3)  # docs/theory.md table, 6a0


@pytest.mark.parametrize("n", [6, 7])
def test_perfect_lattice_log_pdet_from_small_cell_force_constants_equals_the_full_spectrum(n):
    from ase_vibentropy.eam import mendelev2003_fe
    from ase_vibentropy.harmonic import bloch_omega2, perfect_cubic_supercell
    from ase_vibentropy.harmonic.embedding import perfect_lattice_log_pdet

    a = 2.855324 * 1.01
    calc = mendelev2003_fe()
    cell = perfect_cubic_supercell("Fe", "bcc", a, n)
    omega2 = bloch_omega2(cell, calc.get_hessian(cell))  # the cell's own Hessian, every k
    expected = np.sum(np.log(omega2[3:]))
    assert perfect_lattice_log_pdet(calc, "bcc", "Fe", a, n) == pytest.approx(expected, rel=1e-12)


def test_perfect_lattice_log_pdet_refuses_a_cell_narrower_than_twice_the_hessian_range():
    from ase_vibentropy.eam import mendelev2003_fe
    from ase_vibentropy.errors import EmbeddingCellTooSmallError
    from ase_vibentropy.harmonic.embedding import perfect_lattice_log_pdet

    with pytest.raises(EmbeddingCellTooSmallError, match="twice the Hessian's range"):
        perfect_lattice_log_pdet(mendelev2003_fe(), "bcc", "Fe", 2.855324, 3)


# --- first-order saddles: a vacancy jump in a 6a0 cell (the smallest the embedding accepts) ---


@pytest.fixture(scope="module")
def jump(calc):
    """(relaxed initial minimum, refined saddle) of a vacancy's nearest-neighbour jump, 6a0.

    The saddle is refined from the jumping atom moved 0.36 of the jump (where the 4a0 band's
    climbing image has it) with every other atom at the relaxed minimum."""
    perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat((6, 6, 6))
    initial, final = vacancy_jump(perfect)
    step = minimum_image(final.positions - initial.positions, initial.cell.array)
    jumper = int(np.argmax(np.linalg.norm(step, axis=1)))
    initial = relax_to_minimum(initial, calc, fmax=1e-9)
    guess = initial.copy()
    guess.positions[jumper] += 0.36 * step[jumper]
    return initial, refine_saddle(guess, calc)


def test_saddle_embedding_matches_the_dense_saddle_route(calc, jump):
    _, saddle = jump
    dense = harmonic_entropy(saddle, calc, solver="dense", stationary_point="saddle", fmax=1e-6)
    result = harmonic_entropy(saddle, calc, solver="embedding", stationary_point="saddle",
                              lattice="bcc", a0=A0, fmax=1e-6)
    assert result.n_modes == dense.n_modes == 3 * len(saddle) - 4
    assert result.n_imaginary == 1
    assert result.min_omega2 == pytest.approx(dense.min_omega2, rel=1e-8)
    error = abs(result.entropy_kB - dense.entropy_kB)
    assert error < 1e-3 and error <= result.embedding.convergence_kB
    # a region holding the whole cell is exact: the sign and the unstable mode are handled exactly
    whole = embedding_formation_entropy(saddle, calc, "bcc", A0, radius=saddle.cell[0, 0],
                                        fmax=1e-6, stationary_point="saddle")
    assert whole.entropy / kB == pytest.approx(dense.entropy_kB, abs=1e-6)


def test_attempt_frequency_by_embedding_matches_the_dense_route(calc, jump):
    initial, saddle = jump
    dense = attempt_frequency(initial, saddle, calc, solver="dense")
    embedded = attempt_frequency(initial, saddle, calc, solver="embedding", lattice="bcc", a0=A0)
    assert embedded.saddle.solver == embedded.minimum.solver == "embedding"
    assert embedded.nu_THz == pytest.approx(dense.nu_THz, rel=1e-3)
    assert abs(embedded.delta_S_m_kB - dense.delta_S_m_kB) < 1e-3


def test_saddle_embedding_refuses_no_and_several_negative_modes(calc, jump):
    initial, _ = jump
    with pytest.raises(SaddleIsMinimumError):
        harmonic_entropy(initial, calc, solver="embedding", stationary_point="saddle",
                         lattice="bcc", a0=A0, fmax=1e-6)
    # a <111> crowdion held on its symmetric stationary point: a higher-order saddle
    perfect = bulk("Fe", "bcc", a=A0, cubic=True).repeat((6, 6, 6))
    crowdion = newton_polish(centred_point_defect(perfect, "I1<111>"), calc, fmax=1e-6)
    omega2 = omega2_spectrum(calc.get_hessian(crowdion), crowdion.get_masses())
    n_negative = int(np.count_nonzero(omega2 < -1e-6))
    assert n_negative >= 2
    with pytest.raises(HigherOrderSaddleError) as info:
        harmonic_entropy(crowdion, calc, solver="embedding", stationary_point="saddle",
                         lattice="bcc", a0=A0, fmax=1e-5)
    assert info.value.n_negative == n_negative
    assert info.value.min_omega2 == pytest.approx(omega2[0], rel=1e-6)
    with pytest.raises(NotAMinimumError):
        harmonic_entropy(crowdion, calc, solver="embedding", lattice="bcc", a0=A0, fmax=1e-5)
