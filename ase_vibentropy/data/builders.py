"""Structure builders for the defect database: perfect lattices and point defects.

Every builder returns a new ``Atoms`` (inputs are never modified); the random ones take a
``numpy.random.Generator`` so a seed fixes the result. Cells are cubic supercells of the
conventional bcc or fcc cell, n×n×n, with lattice constant ``a0`` (Å).

Distances between sites use the periodic minimum image of the (orthogonal) supercell.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from ..errors import InvalidStructureError, UnknownNameError

#: Lattices the defect builders know (a subset of ``harmonic.LATTICES``, which also has sc).
DEFECT_LATTICES = ("bcc", "fcc")

#: Vacancy-cluster arrangements.
VACANCY_ARRANGEMENTS = ("compact", "scattered")

#: Self-interstitial kinds: parallel dumbbells (a bundle) or parallel crowdions.
INTERSTITIAL_KINDS = ("dumbbell", "crowdion")

#: Dumbbell atom separation as a fraction of the nearest-neighbour distance (the relaxation
#: sets the true value; Fe <110> relaxes to ~0.8 d_nn).
_DUMBBELL_SEPARATION = 0.75


def _check_lattice(lattice: str) -> str:
    if lattice not in DEFECT_LATTICES:
        raise UnknownNameError(
            f"unknown lattice {lattice!r} for the defect builders; known: {', '.join(DEFECT_LATTICES)}"
        )
    return lattice


def nearest_neighbour_distance(lattice: str, a0: float) -> float:
    """First-neighbour distance, Å: a0 √3/2 (bcc) or a0/√2 (fcc)."""
    _check_lattice(lattice)
    return float(a0 * (np.sqrt(3.0) / 2.0 if lattice == "bcc" else 1.0 / np.sqrt(2.0)))


def nearest_neighbour_directions(lattice: str) -> np.ndarray:
    """Unit vectors to the first neighbours, shape (8, 3) for bcc <111>, (12, 3) for fcc <110>."""
    _check_lattice(lattice)
    if lattice == "bcc":
        vectors = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, -1).T
    else:
        grid = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T
        vectors = grid[np.count_nonzero(grid, axis=1) == 2]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def dumbbell_directions(lattice: str) -> np.ndarray:
    """Unit vectors of the stable dumbbell axis: <110> in bcc (12, 3), <100> in fcc (6, 3)."""
    _check_lattice(lattice)
    if lattice == "bcc":
        return nearest_neighbour_directions("fcc")
    return np.vstack([np.eye(3), -np.eye(3)])


def perfect_lattice(element: str, lattice: str, a0: float, n_cells: int) -> Atoms:
    """Perfect cubic supercell of ``n_cells``³ conventional cells, periodic.

    Parameters
    ----------
    element
        Chemical symbol, e.g. ``"Fe"``.
    lattice
        ``"bcc"`` (2 atoms per cell) or ``"fcc"`` (4 atoms per cell).
    a0
        Lattice constant, Å.
    n_cells
        Conventional cells per edge (>= 1).

    Returns
    -------
    Atoms
        2 n³ (bcc) or 4 n³ (fcc) atoms in a cubic cell of edge n a0.
    """
    _check_lattice(lattice)
    if int(n_cells) < 1 or not a0 > 0:
        raise InvalidStructureError(
            f"need n_cells >= 1 and a0 > 0 Å, got n_cells={n_cells}, a0={a0}"
        )
    from ..harmonic import perfect_cubic_supercell

    return perfect_cubic_supercell(element, lattice, float(a0), int(n_cells))


def apply_strain(atoms: Atoms, strain: float) -> Atoms:
    """Copy of ``atoms`` under isotropic strain: cell and positions scaled by (1 + strain)."""
    if not strain > -1.0:
        raise InvalidStructureError(f"isotropic strain must be > -1, got {strain}")
    strained = atoms.copy()
    strained.set_cell(np.asarray(atoms.cell) * (1.0 + strain), scale_atoms=True)
    return strained


def minimum_image(vectors: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Minimum-image version of difference vectors (…, 3), Å, in a periodic cell (3, 3).

    Exact for orthogonal cells (the cubic supercells built here).
    """
    cell = np.asarray(cell, dtype=np.float64)
    frac = np.asarray(vectors, dtype=np.float64) @ np.linalg.inv(cell)
    frac -= np.round(frac)
    return frac @ cell


def _distances_from(positions: np.ndarray, point: np.ndarray, cell: np.ndarray) -> np.ndarray:
    return np.linalg.norm(minimum_image(positions - point, cell), axis=1)


def central_site(atoms: Atoms) -> int:
    """Index of the atom closest to the centre of the cell (ties: lowest index)."""
    centre = np.asarray(atoms.cell).sum(axis=0) / 2.0
    return int(np.argmin(_distances_from(atoms.positions, centre, atoms.cell)))


def vacancy_jump(perfect: Atoms) -> tuple[Atoms, Atoms]:
    """A vacancy before and after one nearest-neighbour jump (unrelaxed, same atoms, same cell).

    The central site is emptied; in the final state its nearest neighbour (lowest index among
    equidistant ones) sits on it. Atom ``k`` of one is atom ``k`` of the other, as a band needs.

    Parameters
    ----------
    perfect
        Perfect periodic lattice (e.g. :func:`perfect_lattice`), positions in Å.

    Returns
    -------
    initial, final : Atoms
        N - 1 atoms each, no calculator.
    """
    site = central_site(perfect)
    offsets = minimum_image(perfect.positions - perfect.positions[site], perfect.cell.array)
    distances = np.linalg.norm(offsets, axis=1)
    distances[site] = np.inf
    jumper = int(np.argmin(distances))
    initial = perfect.copy()
    initial.calc = None
    del initial[site]
    final = initial.copy()
    final.positions[jumper - (jumper > site)] = perfect.positions[site]
    return initial, final


#: Axes of the single-interstitial dumbbells :func:`centred_point_defect` builds.
DUMBBELL_AXES = {"I1<110>": (1.0, 1.0, 0.0), "I1<111>": (1.0, 1.0, 1.0), "I1<100>": (1.0, 0.0, 0.0)}


def centred_point_defect(perfect: Atoms, defect: str, separation: float = 2.0) -> Atoms:
    """A point defect on the central site of a perfect lattice (unrelaxed, no calculator).

    Parameters
    ----------
    perfect
        Perfect periodic lattice, positions in Å.
    defect
        ``"V1"`` (the central site removed), ``"V2"`` (it and its nearest neighbour of lowest
        index), or a dumbbell ``"I1<110>"``, ``"I1<111>"``, ``"I1<100>"``: the central atom
        replaced by two atoms ``separation`` Å apart along that axis, centred on the site.

    Returns
    -------
    Atoms
        N - 1, N - 2 or N + 1 atoms.
    """
    site = central_site(perfect)
    atoms = perfect.copy()
    atoms.calc = None
    origin = perfect.positions[site].copy()
    if defect == "V1":
        del atoms[site]
    elif defect == "V2":
        distances = _distances_from(perfect.positions, origin, perfect.cell.array)
        distances[site] = np.inf
        del atoms[[site, int(np.argmin(distances))]]
    elif defect in DUMBBELL_AXES:
        axis = np.asarray(DUMBBELL_AXES[defect]) / np.linalg.norm(DUMBBELL_AXES[defect])
        del atoms[site]
        atoms += Atoms(2 * [perfect[site].symbol], positions=[origin + 0.5 * separation * axis,
                                                            origin - 0.5 * separation * axis])
    else:
        raise UnknownNameError(
            f"unknown point defect {defect!r}; known: V1, V2, {', '.join(DUMBBELL_AXES)}"
        )
    return atoms


def compact_sites(atoms: Atoms, n: int, rng: np.random.Generator, centre: int | None = None) -> np.ndarray:
    """Indices of ``n`` sites forming a compact cluster around site ``centre``.

    Sites are taken in order of distance from the centre site; equidistant shells are
    shuffled by ``rng`` so that different seeds give different compact clusters.

    Returns
    -------
    ndarray
        (n,) int atom indices, the centre site first.
    """
    if n > len(atoms):
        raise InvalidStructureError(f"cannot pick {n} sites in a cell of {len(atoms)} atoms")
    centre = central_site(atoms) if centre is None else int(centre)
    distance = _distances_from(atoms.positions, atoms.positions[centre], atoms.cell)
    # Rounded distances make shells exact; the random key orders sites inside one shell.
    order = np.lexsort((rng.random(len(atoms)), np.round(distance, 6)))
    return order[:n]


def vacancy_cluster(
    atoms: Atoms,
    n_vacancies: int,
    rng: np.random.Generator,
    arrangement: str = "compact",
) -> Atoms:
    """Remove ``n_vacancies`` atoms: a compact cluster at the cell centre or scattered sites.

    Parameters
    ----------
    atoms
        Perfect (possibly strained) lattice, N atoms.
    n_vacancies
        Number of vacancies (>= 1).
    rng
        Random generator choosing among equivalent sites.
    arrangement
        ``"compact"`` (nearest sites around the central site) or ``"scattered"`` (uniformly
        random distinct sites).

    Returns
    -------
    Atoms
        N - n_vacancies atoms.
    """
    if arrangement not in VACANCY_ARRANGEMENTS:
        raise UnknownNameError(
            f"unknown vacancy arrangement {arrangement!r}; known: {', '.join(VACANCY_ARRANGEMENTS)}"
        )
    if n_vacancies < 1:
        raise InvalidStructureError(f"n_vacancies must be >= 1, got {n_vacancies}")
    if arrangement == "compact":
        removed = compact_sites(atoms, n_vacancies, rng)
    else:
        removed = rng.choice(len(atoms), size=n_vacancies, replace=False)
    keep = np.ones(len(atoms), dtype=bool)
    keep[removed] = False
    return atoms[keep]


def interstitial_cluster(
    atoms: Atoms,
    n_interstitials: int,
    lattice: str,
    rng: np.random.Generator,
    kind: str = "dumbbell",
    direction: np.ndarray | None = None,
) -> Atoms:
    """Add ``n_interstitials`` self-interstitials as a compact bundle of parallel defects.

    ``dumbbell``: each of ``n`` compact sites is replaced by two atoms split along the dumbbell
    axis (<110> in bcc, <100> in fcc), the axis shared by the whole bundle. ``crowdion``: one
    extra atom at the midpoint between each of ``n`` compact sites and its first neighbour
    along a shared close-packed direction (<111> bcc, <110> fcc).

    Parameters
    ----------
    atoms
        Perfect (possibly strained) lattice of ``lattice``, N atoms.
    n_interstitials
        Number of extra atoms (>= 1).
    lattice
        ``"bcc"`` or ``"fcc"``: fixes the dumbbell and crowdion directions.
    rng
        Random generator: choice of axis and of sites within equidistant shells.
    kind
        ``"dumbbell"`` or ``"crowdion"``.
    direction
        Optional axis (3,) overriding the random choice (normalised here).

    Returns
    -------
    Atoms
        N + n_interstitials atoms; the added/split atoms are at the end.
    """
    if kind not in INTERSTITIAL_KINDS:
        raise UnknownNameError(
            f"unknown interstitial kind {kind!r}; known: {', '.join(INTERSTITIAL_KINDS)}"
        )
    if n_interstitials < 1:
        raise InvalidStructureError(f"n_interstitials must be >= 1, got {n_interstitials}")
    choices = dumbbell_directions(lattice) if kind == "dumbbell" else nearest_neighbour_directions(lattice)
    if direction is None:
        axis = choices[rng.integers(len(choices))]
    else:
        axis = np.asarray(direction, dtype=np.float64)
        axis = axis / np.linalg.norm(axis)
    # Nearest-neighbour distance of the actual (possibly strained) cell.
    scale = np.cbrt(atoms.get_volume() / len(atoms))
    d_nn = scale * (np.sqrt(3.0) / 2.0 * np.cbrt(2.0) if lattice == "bcc" else np.cbrt(4.0) / np.sqrt(2.0))
    sites = compact_sites(atoms, n_interstitials, rng)
    result = atoms.copy()
    if kind == "dumbbell":
        centres = atoms.positions[sites]
        half = 0.5 * _DUMBBELL_SEPARATION * d_nn * axis
        keep = np.ones(len(atoms), dtype=bool)
        keep[sites] = False
        result = atoms[keep]
        split = np.vstack([centres - half, centres + half])
        symbols = np.asarray(atoms.get_chemical_symbols())[sites]
        result += Atoms(list(symbols) * 2, positions=split)
    else:
        extra = atoms.positions[sites] + 0.5 * d_nn * axis
        symbols = np.asarray(atoms.get_chemical_symbols())[sites]
        result += Atoms(list(symbols), positions=extra)
    result.wrap()
    return result


def random_points_with_clearance(
    n_points: int,
    occupied: np.ndarray,
    cell: np.ndarray,
    rng: np.random.Generator,
    clearance: float,
    sampler,
    max_batches: int = 200,
) -> np.ndarray:
    """Draw ``n_points`` points from ``sampler(rng, k) -> (k, 3)`` at least ``clearance`` Å from
    every occupied position and from each other (periodic). Candidates are drawn in batches and
    screened with a periodic KD-tree; the loop runs over batches, not atoms."""
    lengths = np.diag(np.asarray(cell))
    accepted = np.empty((0, 3))
    for _ in range(max_batches):
        need = n_points - len(accepted)
        if need == 0:
            break
        candidates = _wrap_into_box(sampler(rng, 4 * need + 8), lengths)
        tree = cKDTree(_wrap_into_box(occupied, lengths), boxsize=lengths)
        far = tree.query(candidates, k=1)[0] >= clearance
        for point in candidates[far]:
            # Mutual clearance among the few accepted points (tens at most).
            if len(accepted) == 0 or np.all(
                np.linalg.norm(minimum_image(accepted - point, cell), axis=1) >= clearance
            ):
                accepted = np.vstack([accepted, point])
                if len(accepted) == n_points:
                    break
    if len(accepted) < n_points:
        raise InvalidStructureError(
            f"could only place {len(accepted)} of {n_points} atoms at >= {clearance:.2f} Å from "
            "the others: lower the number of atoms or use a larger cell"
        )
    return accepted


def frenkel_damage(
    atoms: Atoms,
    n_pairs: int,
    rng: np.random.Generator,
    clearance: float | None = None,
) -> Atoms:
    """Random-displacement damage: move ``n_pairs`` random atoms to random points of the cell.

    Each moved atom leaves a vacancy and lands at least ``clearance`` Å from every site,
    so after relaxation the cell holds up to ``n_pairs`` Frenkel pairs (the paper's random
    database). The atom count is unchanged.

    Parameters
    ----------
    atoms
        Perfect (possibly strained) orthogonal periodic cell, N atoms.
    n_pairs
        Number of displaced atoms (>= 1).
    rng
        Random generator.
    clearance
        Minimum distance, Å, of a landing point to any site; default 0.6 of the mean
        interatomic distance (N/V)^(-1/3).
    """
    if n_pairs < 1 or n_pairs > len(atoms):
        raise InvalidStructureError(f"n_pairs must be in 1..{len(atoms)}, got {n_pairs}")
    _require_orthogonal(atoms)
    if clearance is None:
        clearance = 0.6 * np.cbrt(atoms.get_volume() / len(atoms))
    moved = rng.choice(len(atoms), size=n_pairs, replace=False)
    lengths = np.diag(np.asarray(atoms.cell))
    # Clearance from every original site, vacated ones included, so that no atom lands back
    # on (or next to) a vacancy: each move makes a genuine Frenkel pair before relaxation.
    points = random_points_with_clearance(
        n_pairs, atoms.positions, atoms.cell, rng, clearance,
        lambda g, k: g.random((k, 3)) * lengths,
    )
    result = atoms.copy()
    result.positions[moved] = points
    return result


def cascade_core(
    atoms: Atoms,
    radius: float,
    rng: np.random.Generator,
    clearance: float | None = None,
) -> Atoms:
    """Cascade-like core: every atom within ``radius`` Å of the cell centre gets a random position
    inside the same sphere (at least ``clearance`` Å from all others). Atom count unchanged.

    Parameters
    ----------
    atoms
        Perfect (possibly strained) orthogonal periodic cell.
    radius
        Sphere radius, Å (smaller than half the cell edge).
    rng
        Random generator.
    clearance
        Minimum distance between atoms, Å; default 0.6 of the mean interatomic distance.
    """
    _require_orthogonal(atoms)
    lengths = np.diag(np.asarray(atoms.cell))
    if not 0 < radius < 0.5 * lengths.min():
        raise InvalidStructureError(
            f"cascade radius must be in (0, {0.5 * lengths.min():.2f}) Å for this cell, got {radius}"
        )
    if clearance is None:
        clearance = 0.6 * np.cbrt(atoms.get_volume() / len(atoms))
    centre = lengths / 2.0
    inside = _distances_from(atoms.positions, centre, atoms.cell) < radius
    n_inside = int(inside.sum())
    if n_inside == 0:
        return atoms.copy()

    def in_sphere(g: np.random.Generator, k: int) -> np.ndarray:
        direction = g.normal(size=(k, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        return centre + direction * (radius * np.cbrt(g.random(k)))[:, None]

    points = random_points_with_clearance(
        n_inside, atoms.positions[~inside], atoms.cell, rng, clearance, in_sphere
    )
    result = atoms.copy()
    result.positions[inside] = points
    return result


def _wrap_into_box(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions wrapped into [0, L) per axis (cKDTree's periodic box rejects x == L)."""
    wrapped = np.mod(positions, lengths)
    return np.where(wrapped >= lengths, 0.0, wrapped)


def _require_orthogonal(atoms: Atoms) -> None:
    cell = np.asarray(atoms.cell)
    if not np.allclose(cell, np.diag(np.diag(cell)), atol=1e-8):
        raise InvalidStructureError(
            "this builder needs an orthogonal (e.g. cubic) periodic cell; build it with "
            "perfect_lattice(...)"
        )
