"""Spatial chunks with halos, so local descriptors can be summed in bounded memory.

A chunk is a box of the (fractional) cell holding about ``chunk_size`` centre atoms, plus every
atom or periodic image within ``halo`` Å of it. It is returned as an isolated ``Atoms`` (pbc
False) whose first ``n_centers`` atoms are the centres: a local descriptor of those centres is
then identical to its value in the full periodic cell, because their whole environment is there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from ase import Atoms

from ..structure import periodicity


def chunk_grid(n_atoms: int, chunk_size: int) -> int:
    """Number of chunks per axis so that each holds about ``chunk_size`` atoms."""
    return max(1, math.ceil((n_atoms / max(chunk_size, 1)) ** (1.0 / 3.0)))


def _frame(atoms: Atoms, halo: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Fractional coordinates (N, 3), box (3, 3) and halo width per axis in fractional units."""
    if periodicity(atoms) == "periodic":
        cell = atoms.cell.array
        frac = atoms.cell.scaled_positions(atoms.positions) % 1.0
        heights = 1.0 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)
        return frac, cell, halo / heights, True
    lo = atoms.positions.min(axis=0)
    extent = np.maximum(atoms.positions.max(axis=0) - lo, 1e-9) * (1 + 1e-9)
    box = np.diag(extent)
    frac = (atoms.positions - lo) / extent
    return frac, box, halo / extent, False


def iter_spatial_chunks(
    atoms: Atoms, halo: float, chunk_size: int
) -> Iterator[tuple[Atoms, int]]:
    """Yield ``(sub_atoms, n_centers)`` covering every atom of ``atoms`` exactly once as a centre.

    Parameters
    ----------
    atoms
        Periodic (pbc all True) or isolated structure.
    halo
        Environment radius to include around each chunk, Å (the descriptor cut-off).
    chunk_size
        Target number of centre atoms per chunk.
    """
    frac, box, halo_frac, periodic = _frame(atoms, halo)
    n_per_axis = chunk_grid(len(atoms), chunk_size)
    numbers = atoms.numbers
    masses = atoms.get_masses()
    origin = 0.0 if periodic else atoms.positions.min(axis=0)
    n_images = np.ceil(halo_frac).astype(int) if periodic else np.zeros(3, dtype=int)
    edges = np.linspace(0.0, 1.0, n_per_axis + 1)
    edges[-1] = 1.0 + 1e-12

    def split(index, shifted, is_center, axis):
        for c in range(n_per_axis):
            lo, hi = edges[c], edges[c + 1]
            parts_index, parts_pos, parts_center = [], [], []
            for s in range(-n_images[axis], n_images[axis] + 1):
                x = shifted[:, axis] + s
                keep = (x >= lo - halo_frac[axis]) & (x < hi + halo_frac[axis])
                pos = shifted[keep].copy()
                pos[:, axis] += s
                parts_index.append(index[keep])
                parts_pos.append(pos)
                parts_center.append(is_center[keep] & (s == 0) & (x[keep] >= lo) & (x[keep] < hi))
            yield np.concatenate(parts_index), np.concatenate(parts_pos), np.concatenate(parts_center)

    def recurse(index, shifted, is_center, axis):
        if axis == 3:
            yield index, shifted, is_center
            return
        for sub in split(index, shifted, is_center, axis):
            if sub[2].any():
                yield from recurse(*sub, axis + 1)

    all_index = np.arange(len(atoms))
    for index, shifted, is_center in recurse(all_index, frac, np.ones(len(atoms), bool), 0):
        order = np.concatenate([np.flatnonzero(is_center), np.flatnonzero(~is_center)])
        positions = shifted[order] @ box + origin
        sub = Atoms(numbers=numbers[index[order]], positions=positions, pbc=False)
        sub.set_masses(masses[index[order]])
        sub.arrays["parent_index"] = index[order]
        yield sub, int(is_center.sum())
