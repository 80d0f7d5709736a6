"""Sanity checks on ``Atoms`` shared by every entry point, and the structure facts they imply.

Each check raises :class:`~ase_vibentropy.errors.InvalidStructureError` with a message that
names the problem and the fix. No physics here beyond geometry.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
from ase import Atoms

from .errors import InvalidStructureError, StructureFileError

#: Closest approach of two atoms accepted anywhere in the package, Å.
MIN_INTERATOMIC_DISTANCE_A = 0.5

Periodicity = Literal["periodic", "isolated"]


def periodicity(atoms: Atoms) -> Periodicity:
    """Return ``"periodic"`` (pbc all True) or ``"isolated"`` (pbc all False).

    Raises
    ------
    InvalidStructureError
        Mixed periodicity (slabs, wires): the zero-mode count and the bulk reference are
        undefined for them.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        return "periodic"
    if not pbc.any():
        return "isolated"
    raise InvalidStructureError(
        f"mixed periodicity pbc={pbc.tolist()} is not supported: use pbc=True for a crystal "
        "or pbc=False for an isolated cluster"
    )


def check_structure(atoms: Atoms, min_distance: float = MIN_INTERATOMIC_DISTANCE_A) -> None:
    """Raise :class:`InvalidStructureError` unless ``atoms`` is usable.

    Checks, in order: an ``Atoms`` object; at least one atom; finite positions; fully periodic or
    fully isolated; a periodic cell with non-zero volume; no two atoms (or periodic images)
    closer than ``min_distance`` Å.

    Parameters
    ----------
    atoms
        Structure to check (not modified).
    min_distance
        Smallest accepted interatomic distance, Å.
    """
    if not isinstance(atoms, Atoms):
        raise InvalidStructureError(f"expected an ase.Atoms object, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise InvalidStructureError(
            "the structure has no atoms: pass a structure with at least one atom (an empty "
            "frame in a file usually means a bad frame selection or a truncated file)"
        )
    positions = atoms.get_positions()
    bad = ~np.isfinite(positions).all(axis=1)
    if bad.any():
        raise InvalidStructureError(
            f"{int(bad.sum())} atom(s) have NaN or infinite positions (first: index "
            f"{int(np.flatnonzero(bad)[0])}); fix the structure file"
        )
    kind = periodicity(atoms)
    if kind == "periodic":
        if atoms.cell.rank < 3:
            raise InvalidStructureError(
                "pbc=True but the cell is missing or degenerate (rank "
                f"{atoms.cell.rank} < 3): set atoms.cell to the simulation box"
            )
        volume = abs(atoms.cell.volume)
        if volume < 1e-8 * max(len(atoms), 1):
            raise InvalidStructureError(
                f"the periodic cell has zero volume ({volume:.3g} Å^3): set a proper cell"
            )
    if len(atoms) > 1:
        closest, pair = closest_pair(atoms)
        if closest < min_distance:
            raise InvalidStructureError(
                f"atoms {pair[0]} and {pair[1]} are {closest:.3f} Å apart (< {min_distance} Å): "
                "the structure is unphysical; check units (Å) and duplicated atoms"
            )


def _count_frames(name: str) -> int:
    """Number of frames ``ase.io`` reads from ``name`` (0 if it cannot read it)."""
    from ase.io import iread

    try:
        return sum(1 for _ in iread(name, index=":"))
    except Exception:  # noqa: BLE001 - only used to word an error message
        return 0


def read_structures(path: str | os.PathLike, index: str | int = ":") -> list[Atoms]:
    """Read the frames ``index`` of a structure file with ``ase.io.read``, as a list.

    Parameters
    ----------
    path
        Any file ``ase.io.read`` understands (format guessed from the name and content).
    index
        ``ase.io`` frame selection: ``":"`` (all), ``"-1"``, ``"0:10:2"``, or an integer.

    Raises
    ------
    StructureFileError
        The file does not exist, is a directory, is empty, is in a format ase.io cannot read,
        or the selection leaves no frame. The message names the file and the fix.
    """
    from ase.io import read
    from ase.io.formats import UnknownFileTypeError

    name = os.fspath(path)
    if not os.path.exists(name):
        raise StructureFileError(f"structure file {name!r} does not exist: check the path")
    if os.path.isdir(name):
        raise StructureFileError(f"{name!r} is a directory, not a structure file: give a file")
    if os.path.getsize(name) == 0:
        raise StructureFileError(
            f"structure file {name!r} is empty: it holds no frame; write the structure(s) to it "
            "first (e.g. ase.io.write(path, atoms, format='extxyz'))"
        )
    try:
        frames = read(name, index=index)
    except (StopIteration, IndexError) as exc:
        # the file reads, but the selection points past its last frame
        n_frames = _count_frames(name)
        if n_frames:
            raise StructureFileError(
                f"frame selection {index!r} is out of range: {name!r} has {n_frames} frame(s), "
                f"indices 0..{n_frames - 1} (or -{n_frames}..-1)"
            ) from exc
        raise StructureFileError(
            f"cannot read structure file {name!r} ({type(exc).__name__}): give a file "
            "in a format ase.io reads (extxyz, POSCAR, cif, ...) with a matching extension"
        ) from exc
    except (UnknownFileTypeError, KeyError, ValueError, OSError) as exc:
        # ase.io raises a zoo of types for unreadable content; one message covers them all.
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise StructureFileError(
            f"cannot read structure file {name!r} ({type(exc).__name__}: {detail}): give a file "
            "in a format ase.io reads (extxyz, POSCAR, cif, ...) with a matching extension"
        ) from exc
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise StructureFileError(
            f"the frame selection {index!r} of {name!r} selects no frame: check the index"
        )
    return frames


def distinct_symbols(atoms: Atoms) -> set[str]:
    """The chemical symbols present in ``atoms`` (from the distinct atomic numbers: O(N) in
    numpy, not a Python string per atom)."""
    from ase.data import chemical_symbols

    return {chemical_symbols[number] for number in np.unique(atoms.numbers)}


def closest_pair(atoms: Atoms, probe: float = 1.5) -> tuple[float, tuple[int, int]]:
    """Return the shortest interatomic distance (Å, periodic images included) and its pair.

    Only distances below ``probe`` Å are searched, with vesin's O(N) cell list (ASE's takes ~20 s
    at 128,000 atoms, vesin ~0.1 s; its cells are one probe wide, so a sub-Å probe would make
    more cells than atoms); when no pair is that close, ``(inf, (-1, -1))`` is returned.
    """
    from vesin import NeighborList

    periodic = periodicity(atoms) == "periodic"
    box = atoms.cell.array if periodic else np.zeros((3, 3))
    i, j, d = NeighborList(cutoff=float(probe), full_list=False).compute(
        points=atoms.positions, box=box, periodic=periodic, quantities="ijd"
    )
    if len(d) == 0:
        return float("inf"), (-1, -1)
    k = int(np.argmin(d))
    return float(d[k]), (int(i[k]), int(j[k]))


def shortest_distance(atoms: Atoms, probe: float = 3.0) -> float:
    """The shortest interatomic distance of ``atoms``, Å, periodic images included (an atom and
    its own image in a small periodic cell count as a pair).

    :func:`closest_pair` with the search radius doubled from ``probe`` Å until a pair lies
    within it (one pass for condensed matter). ``inf`` for a single isolated atom.
    """
    if periodicity(atoms) == "isolated" and len(atoms) < 2:
        return float("inf")
    while True:
        closest, _ = closest_pair(atoms, probe)
        if np.isfinite(closest):
            return closest
        probe *= 2.0


def is_linear(atoms: Atoms, tol: float = 1e-6) -> bool:
    """True if all atoms of an isolated structure lie on one line (within ``tol`` Å)."""
    if len(atoms) <= 2:
        return True
    centered = atoms.positions - atoms.positions.mean(axis=0)
    singular = np.linalg.svd(centered, compute_uv=False)
    return bool(singular[1] < tol)


def n_zero_modes(atoms: Atoms) -> int:
    """Number of exact zero modes of the Hessian.

    3 uniform translations for a periodic cell; 3 translations + 3 rotations (2 if linear)
    for an isolated cluster; 3 for a single isolated atom (no rotation).
    """
    if periodicity(atoms) == "periodic":
        return 3
    if len(atoms) == 1:
        return 3
    return 5 if is_linear(atoms) else 6


def n_vibrational_modes(atoms: Atoms) -> int:
    """Number n' of non-zero harmonic modes: 3N - 3 periodic, 3N - 6 (3N - 5 linear) isolated.

    The classical entropy depends on T through n' k_B ln T (docs/theory.md, Eq. 2).
    """
    return 3 * len(atoms) - n_zero_modes(atoms)


def cell_key(atoms: Atoms) -> bytes:
    """Exact key of a structure's cell and periodicity: the bulk reference of a cell, and what
    is computed from it, is cached under it (the one rule of every bulk cache)."""
    return np.ascontiguousarray(atoms.cell.array, dtype=float).tobytes() + np.asarray(atoms.pbc, dtype=bool).tobytes()
