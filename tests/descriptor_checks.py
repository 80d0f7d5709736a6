"""Reusable checks for descriptor providers: invariances, extensivity, gradients.

Every descriptor test module imports these, so each provider is held to the same physics:

>>> from descriptor_checks import fe_vacancy_cell, assert_rotation_invariant   # doctest: +SKIP
>>> assert_rotation_invariant(provider, fe_vacancy_cell(3))                    # doctest: +SKIP

The expectations are symmetries and finite differences, never values copied from the code under
test. Comparisons are per component: component c of ``actual`` must lie within
``rtol * (max_i |expected[i, c]| + floor)`` of ``expected``, with ``floor = 1e-12 * max |expected|``
so components that are identically zero do not demand absolute equality at round-off level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk

#: Lattice constant of bcc Fe for the Mendelev 2003 potential, Å (docs/theory.md).
A0_FE = 2.855324


# --------------------------------------------------------------------------- fixtures
def bcc_fe(n: int = 2, a0: float = A0_FE) -> Atoms:
    """Perfect cubic bcc Fe supercell of ``n`` x ``n`` x ``n`` conventional cells (2 n³ atoms)."""
    return bulk("Fe", "bcc", a=a0, cubic=True) * (n, n, n)


def fe_vacancy_cell(
    n: int = 3, a0: float = A0_FE, rattle: float = 0.05, seed: int = 0, vacancy: int = 0
) -> Atoms:
    """bcc Fe n x n x n cell (2 n³ sites) with one vacancy, atoms rattled by ``rattle`` Å (rms).

    The rattle breaks the lattice symmetry, so errors that a perfect crystal would hide (wrong
    signs of odd terms, swapped components) show up.
    """
    atoms = bcc_fe(n, a0)
    del atoms[vacancy]
    if rattle > 0:
        atoms.rattle(stdev=rattle, seed=seed)
    atoms.wrap()
    return atoms


def triclinic_fe_cell(n: int = 2, shear: float = 0.15, rattle: float = 0.05, seed: int = 1) -> Atoms:
    """A sheared (triclinic) bcc Fe supercell with one vacancy, rattled by ``rattle`` Å.

    The cell matrix gets off-diagonal elements ``shear * a`` while atoms keep their fractional
    coordinates, so the periodic images are genuinely non-orthogonal.
    """
    atoms = fe_vacancy_cell(n, rattle=0.0)
    cell = atoms.cell.array.copy()
    cell[1, 0] += shear * cell[0, 0]
    cell[2, 0] += 0.5 * shear * cell[0, 0]
    cell[2, 1] += shear * cell[1, 1]
    atoms.set_cell(cell, scale_atoms=True)
    if rattle > 0:
        atoms.rattle(stdev=rattle, seed=seed)
    atoms.wrap()
    return atoms


def random_cluster(
    n_atoms: int = 12,
    species: Sequence[str] = ("Fe",),
    radius: float = 4.0,
    min_distance: float = 2.0,
    seed: int = 0,
) -> Atoms:
    """Isolated cluster of ``n_atoms`` atoms uniform in a sphere of ``radius`` Å (pbc False).

    Atoms are drawn one by one and rejected if closer than ``min_distance`` Å to an earlier one;
    species cycle through ``species``. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    positions: list[np.ndarray] = []
    attempts = 0
    while len(positions) < n_atoms:
        attempts += 1
        if attempts > 100_000:
            raise RuntimeError("random_cluster: could not place atoms; lower min_distance")
        p = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(p) > radius:
            continue
        if positions and np.min(np.linalg.norm(np.array(positions) - p, axis=1)) < min_distance:
            continue
        positions.append(p)
    symbols = [species[k % len(species)] for k in range(n_atoms)]
    return Atoms(symbols=symbols, positions=np.array(positions), pbc=False)


def random_rotation(seed: int = 0) -> np.ndarray:
    """A random proper rotation matrix (3, 3), det +1 (QR of a Gaussian matrix)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rotated(atoms: Atoms, rotation: np.ndarray) -> Atoms:
    """Copy of ``atoms`` with positions and cell rotated by ``rotation`` (3, 3): r -> R r."""
    new = atoms.copy()
    new.positions = atoms.positions @ rotation.T
    if atoms.cell.rank == 3:
        new.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return new


# --------------------------------------------------------------------------- comparisons
def assert_descriptors_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    """Per-component relative comparison of descriptor arrays (..., dim) (see module docstring)."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    exp2 = expected.reshape(-1, expected.shape[-1]) if expected.ndim else expected.reshape(1, 1)
    act2 = actual.reshape(exp2.shape)
    floor = 1e-12 * max(float(np.max(np.abs(exp2))), 1e-300)
    scale = np.max(np.abs(exp2), axis=0) + floor
    err = np.max(np.abs(act2 - exp2), axis=0) / scale
    worst = int(np.argmax(err))
    assert err[worst] <= rtol, (
        f"{what}: component {worst} differs by {err[worst]:.3e} relative (tolerance {rtol:.1e}); "
        f"max |expected| in that component = {scale[worst]:.3e}"
    )


# --------------------------------------------------------------------------- invariances
def assert_translation_invariant(
    provider, atoms: Atoms, shift: Sequence[float] | None = None, rtol: float = 1e-10
) -> None:
    """Per-atom descriptors do not change when every atom is shifted by ``shift`` Å.

    Periodic cells are wrapped back after the shift, which also exercises the image handling.
    """
    shift = np.array([0.731, -1.372, 2.113]) if shift is None else np.asarray(shift, float)
    moved = atoms.copy()
    moved.positions += shift
    if moved.pbc.all():
        moved.wrap()
    assert_descriptors_close(
        provider.compute(moved), provider.compute(atoms), rtol, f"{provider.name} translation"
    )


def assert_rotation_invariant(provider, atoms: Atoms, seed: int = 0, rtol: float = 1e-9) -> None:
    """Per-atom descriptors do not change under a random rotation of atoms (and of the cell)."""
    turned = rotated(atoms, random_rotation(seed))
    assert_descriptors_close(
        provider.compute(turned), provider.compute(atoms), rtol, f"{provider.name} rotation"
    )


def assert_permutation_invariant(provider, atoms: Atoms, seed: int = 0, rtol: float = 1e-10) -> None:
    """Relabelling the atoms permutes the rows of D and nothing else."""
    perm = np.random.default_rng(seed).permutation(len(atoms))
    shuffled = atoms[perm]
    assert_descriptors_close(
        provider.compute(shuffled), provider.compute(atoms)[perm], rtol, f"{provider.name} permutation"
    )


def assert_extensive(
    provider, atoms: Atoms, reps: tuple[int, int, int] = (2, 2, 2), rtol: float = 1e-9
) -> None:
    """Σ_i D_i of an n1 x n2 x n3 replica equals n1 n2 n3 Σ_i D_i of the cell.

    For a local descriptor this also checks every atom of the replica against its original, which
    proves periodic images are handled even when the cut-off exceeds half the cell height.
    """
    big = atoms.repeat(reps)
    count = int(np.prod(reps))
    d_small = provider.compute(atoms)
    assert_descriptors_close(
        provider.compute_sum(big), count * d_small.sum(axis=0), rtol, f"{provider.name} extensivity"
    )
    if getattr(provider, "is_local", False):
        d_big = provider.compute(big)
        assert_descriptors_close(
            d_big, np.tile(d_small, (count, 1)), rtol, f"{provider.name} per-atom values of replica"
        )


def assert_compute_sum_matches(
    provider, atoms: Atoms, chunk_size: int, rtol: float = 1e-10
) -> None:
    """Chunked :meth:`compute_sum` with ``chunk_size`` equals the sum of per-atom :meth:`compute`."""
    assert_descriptors_close(
        provider.compute_sum(atoms, chunk_size=chunk_size),
        provider.compute(atoms).sum(axis=0),
        rtol,
        f"{provider.name} chunked sum (chunk_size={chunk_size})",
    )


# --------------------------------------------------------------------------- gradients
def finite_difference_gradient(
    provider, atoms: Atoms, w: np.ndarray, h: float = 1e-5, indices: Sequence[int] | None = None
) -> np.ndarray:
    """Central differences of w · Σ_i D_i with respect to positions, (N, 3) (rows not in
    ``indices`` are left at zero), units of D per Å."""
    w = np.asarray(w, dtype=float)
    indices = range(len(atoms)) if indices is None else indices
    grad = np.zeros((len(atoms), 3))
    for k in indices:
        for a in range(3):
            values = []
            for sign in (1.0, -1.0):
                moved = atoms.copy()
                moved.positions[k, a] += sign * h
                values.append(float(w @ provider.compute(moved).sum(axis=0)))
            grad[k, a] = (values[0] - values[1]) / (2 * h)
    return grad


def assert_vjp_matches_finite_differences(
    provider,
    atoms: Atoms,
    w: np.ndarray | None = None,
    h: float = 1e-5,
    rtol: float = 1e-6,
    indices: Sequence[int] | None = None,
) -> None:
    """``provider.vjp(atoms, w)`` equals central finite differences of w · Σ_i D_i.

    The error is measured against the largest gradient component:
    max |g_vjp - g_fd| <= rtol * max |g_fd| over the checked atoms ``indices`` (default all).
    ``w`` defaults to a seeded random vector.
    """
    if w is None:
        w = np.random.default_rng(7).normal(size=provider.dim)
    analytic = np.asarray(provider.vjp(atoms, w))
    assert analytic.shape == (len(atoms), 3), f"vjp shape {analytic.shape} != ({len(atoms)}, 3)"
    idx = np.arange(len(atoms)) if indices is None else np.asarray(indices)
    numeric = finite_difference_gradient(provider, atoms, w, h, idx)
    scale = float(np.max(np.abs(numeric[idx])))
    assert scale > 0, "finite-difference gradient is identically zero: choose a less symmetric cell"
    err = float(np.max(np.abs(analytic[idx] - numeric[idx]))) / scale
    assert err <= rtol, (
        f"{provider.name} vjp differs from central differences (h={h} Å) by {err:.3e} relative "
        f"(tolerance {rtol:.1e})"
    )


def assert_gradient_matches_one_sided_differences(
    provider, atoms: Atoms, w: np.ndarray, step: float = 2e-7, rtol: float = 1e-6,
    indices: Sequence[int] | None = None,
) -> None:
    """``provider.vjp`` against second-order finite differences of w · Σ_i D_i, coordinate by
    coordinate, accepting the central, forward or backward three-point formula.

    The closed-form Fe EAM is piecewise cubic in r: its third derivatives, and so the gradient
    of the on-site Hessian, jump at the knots (2.2-5.3 Å for the pair function, 2.4, 3.2 and
    4.2 Å for the density), and the second derivative of φ jumps at 2.0 Å. Steps of 2e-7 Å
    rarely meet such a point, and where one does, a one-sided formula on the other side still
    gives the derivative to O(step²). ``indices``: the atoms checked (default all).
    """
    analytic = provider.vjp(atoms, w)

    def value(k, alpha, shift):
        moved = atoms.copy()
        moved.positions[k, alpha] += shift
        return float(w @ provider.compute(moved).sum(axis=0))

    scale = abs(analytic).max()
    for k in range(len(atoms)) if indices is None else indices:
        for alpha in range(3):
            v = {m: value(k, alpha, m * step) for m in (-2, -1, 0, 1, 2)}
            estimates = (
                (v[1] - v[-1]) / (2 * step),
                (-3 * v[0] + 4 * v[1] - v[2]) / (2 * step),
                (3 * v[0] - 4 * v[-1] + v[-2]) / (2 * step),
            )
            error = min(abs(analytic[k, alpha] - e) for e in estimates)
            assert error <= rtol * scale, (k, alpha, analytic[k, alpha], estimates)


def assert_smooth_at_cutoff(
    provider,
    deltas: Sequence[float] = (1e-3, 1e-4, 1e-5),
    r_cut: float | None = None,
    partner_distance: float = 2.5,
) -> None:
    """Values, and gradients if the provider has them, are continuous as a neighbour crosses r_cut.

    A three-atom cluster: atom 0 at the origin, atom 1 at ``partner_distance`` Å, atom 2 moving
    along +x through distance ``r_cut`` from atom 0 (it stays farther than r_cut from atom 1, so
    only the pair 0-2 crosses). With J(δ) the largest change between r_cut - δ and r_cut + δ,
    continuity of the values and of their first derivatives means J_values(δ) = O(δ²) and
    J_gradient(δ) = O(δ): each decrease of δ by a factor q must shrink the value jump by at least
    q^1.5 (between linear and quadratic) and the gradient jump by at least q^0.5 (a discontinuous
    derivative would not shrink at all), unless they are at round-off level, and at the smallest δ
    the jumps must be tiny compared with the values and gradients at r_cut - 1 Å.
    """
    r_cut = provider.cutoff if r_cut is None else r_cut
    symbol = (provider.species or ["Fe"])[0]

    def cluster(x: float) -> Atoms:
        positions = [[0, 0, 0], [-partner_distance * 0.6, partner_distance * 0.8, 0], [x, 0, 0]]
        return Atoms([symbol] * 3, positions=positions, pbc=False)

    reference = cluster(r_cut - 1.0)
    w = np.random.default_rng(3).normal(size=provider.dim)
    value_scale = float(np.max(np.abs(provider.compute(reference))))
    grad_scale = float(np.max(np.abs(provider.vjp(reference, w)))) if provider.has_gradient else 0.0
    jumps, gjumps = [], []
    for delta in deltas:
        inside, outside = cluster(r_cut - delta), cluster(r_cut + delta)
        jumps.append(float(np.max(np.abs(provider.compute(inside) - provider.compute(outside)))))
        if provider.has_gradient:
            gjumps.append(float(np.max(np.abs(provider.vjp(inside, w) - provider.vjp(outside, w)))))
    for k in range(1, len(deltas)):
        ratio = deltas[k] / deltas[k - 1]
        assert jumps[k] <= ratio**1.5 * jumps[k - 1] + 1e-13 * value_scale, (
            f"{provider.name}: value jumps across r_cut {jumps} for δ = {list(deltas)} Å do not "
            "vanish like δ²: the descriptor is not smooth at the cut-off"
        )
        if gjumps:
            assert gjumps[k] <= ratio**0.5 * gjumps[k - 1] + 1e-12 * grad_scale, (
                f"{provider.name}: gradient jumps across r_cut {gjumps} for δ = {list(deltas)} Å "
                "do not vanish like δ: first derivatives are not continuous at the cut-off"
            )
    assert jumps[-1] <= 1e-6 * value_scale, f"{provider.name}: value jump {jumps[-1]:.3e} at r_cut"
    if gjumps:
        assert gjumps[-1] <= 1e-3 * grad_scale, f"{provider.name}: gradient jump {gjumps[-1]:.3e} at r_cut"
