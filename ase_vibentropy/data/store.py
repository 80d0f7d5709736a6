"""ase.db storage of labelled configurations (row contract in docs/architecture.md).

Any ``ase.db`` URL works (SQLite file by default, PostgreSQL/MySQL with the ase-db-backends
package). A finished job is written in ONE transaction (``with db:``): after a crash, even a
SIGKILL in the middle of a write, the database holds either all rows of a job or none, so
:func:`finished_job_ids` is exact and a rerun neither loses nor duplicates work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase.db
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..errors import DatabaseError


@dataclass
class LabelledRow:
    """One configuration ready for the database.

    Attributes
    ----------
    atoms : Atoms
        Relaxed structure, N atoms.
    energy : float
        Potential energy, eV (stored as the row's ``energy``).
    key_value_pairs : dict
        Scalar metadata (family, n_vac, n_int, strain, n_cells, S_kB, Sf_kB, ...).
    data : dict
        Arrays: ``local_entropies_kB`` (N,), ``descriptor_sums`` and ``bulk_descriptor_sums``
        {descriptor hash: (dim,)}.
    """

    atoms: Atoms
    energy: float
    key_value_pairs: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


def connect(url: str | Path, create: bool = True):
    """Open an ase.db database; a path without a known extension is taken as SQLite.

    Raises
    ------
    DatabaseError
        The file does not exist and ``create`` is False, or the URL cannot be opened.
    """
    text = str(url)
    if "://" not in text and not create and not Path(text).exists():
        raise DatabaseError(f"database {text!r} does not exist: run 'vibentropy generate' first")
    kind = "extract_from_name"
    if "://" not in text and Path(text).suffix not in (".db", ".json", ".sqlite"):
        kind = "db"
    try:
        return ase.db.connect(text, type=kind, append=True)
    except (ValueError, OSError) as exc:
        raise DatabaseError(f"cannot open database {text!r}: {exc}") from exc


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars (ase.db key-value pairs accept bool, int, float, str)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def write_job(db, rows: list[LabelledRow], job_id: str, seconds: float | None = None) -> list[int]:
    """Write all ``rows`` of one job in a single transaction; return the new row ids.

    Every row gets ``job_id`` and ``job_n_rows`` (the job's row count, so a reader can check
    that each job is complete and present once), and ``job_seconds`` (the job's wall time in
    its one-core worker, s) when ``seconds`` is given.
    """
    if not rows:
        raise DatabaseError(f"job {job_id} produced no rows; nothing would mark it finished")
    ids = []
    with db:
        for row in rows:
            atoms = row.atoms.copy()
            atoms.calc = SinglePointCalculator(atoms, energy=float(row.energy))
            kvp = {k: _plain(v) for k, v in row.key_value_pairs.items()}
            kvp.update(job_id=job_id, job_n_rows=len(rows))
            if seconds is not None:
                kvp["job_seconds"] = float(seconds)
            ids.append(db.write(atoms, key_value_pairs=kvp, data=row.data))
    return ids


def finished_job_ids(db) -> set[str]:
    """The ``job_id`` of every job with rows in ``db``."""
    return {row.get("job_id") for row in db.select(include_data=False) if row.get("job_id")}


def rows_of_job(db, job_id: str) -> list[Any]:
    """All rows (with data) written by job ``job_id``, in id order."""
    return sorted(db.select(job_id=job_id), key=lambda row: row.id)


def database_statistics(db) -> dict[str, Any]:
    """Counts per family, size and strain, and formation-entropy ranges of a database.

    Returns
    -------
    dict
        ``n_rows``, ``n_minima`` (rows with ``n_imaginary == 0``), ``n_non_minima``, ``n_saddles``
        (transition states stored by ``exploration.store_saddles``),
        ``families`` {family: {count, n_minima, Sf_min_kB, Sf_max_kB, Sf_mean_kB,
        n_vac_max, n_int_max}}, ``cells`` [{family, n_cells, strain, count}],
        ``Sf_range_kB`` [min, max] over defect rows (None when there are none),
        ``n_jobs_timed`` and ``core_hours`` (Σ ``job_seconds`` over the jobs that recorded it),
        and the per-row arrays ``Sf_kB``, ``family``, ``n_vac``, ``n_int`` (lists) for plotting.
    """
    families: dict[str, dict[str, Any]] = {}
    cells: dict[tuple[str, int, float], int] = {}
    sf, fam, n_vac, n_int = [], [], [], []
    job_seconds: dict[str, float] = {}
    n_rows = n_non_minima = n_saddles = 0
    for row in db.select(include_data=False):
        n_rows += 1
        if row.get("job_seconds") is not None:
            job_seconds[row.job_id] = float(row.job_seconds)
        family = str(row.get("family", "?"))
        entry = families.setdefault(family, {"count": 0, "n_minima": 0, "Sf": [], "n_vac_max": 0,
                                             "n_int_max": 0})
        entry["count"] += 1
        key = (family, int(row.get("n_cells", 0)), round(float(row.get("strain", 0.0)), 8))
        cells[key] = cells.get(key, 0) + 1
        if row.get("stationary_point") == "saddle":
            n_saddles += 1  # a stored transition state, not a failed relaxation
        elif int(row.get("n_imaginary", 0)) > 0:
            n_non_minima += 1
        else:
            entry["n_minima"] += 1
        entry["n_vac_max"] = max(entry["n_vac_max"], int(row.get("n_vac", 0)))
        entry["n_int_max"] = max(entry["n_int_max"], int(row.get("n_int", 0)))
        if row.get("Sf_kB") is not None and family != "bulk":
            entry["Sf"].append(float(row.Sf_kB))
            sf.append(float(row.Sf_kB))
            fam.append(family)
            n_vac.append(int(row.get("n_vac", 0)))
            n_int.append(int(row.get("n_int", 0)))
    for entry in families.values():
        values = entry.pop("Sf")
        entry["Sf_min_kB"] = min(values) if values else None
        entry["Sf_max_kB"] = max(values) if values else None
        entry["Sf_mean_kB"] = float(np.mean(values)) if values else None
    return {
        "n_rows": n_rows,
        "n_minima": n_rows - n_non_minima - n_saddles,
        "n_non_minima": n_non_minima,
        "n_saddles": n_saddles,
        "families": dict(sorted(families.items())),
        "cells": [
            {"family": f, "n_cells": n, "strain": s, "count": c}
            for (f, n, s), c in sorted(cells.items())
        ],
        "Sf_range_kB": [min(sf), max(sf)] if sf else None,
        "n_jobs_timed": len(job_seconds),
        "core_hours": sum(job_seconds.values()) / 3600.0,
        "Sf_kB": sf,
        "family": fam,
        "n_vac": n_vac,
        "n_int": n_int,
    }


@dataclass
class DistinctRows:
    """Outcome of :func:`distinct_configurations` (minima) and :func:`distinct_saddles`.

    Attributes
    ----------
    row_ids : list[int]
        Ids of the first row of every distinct configuration, ascending.
    duplicate_ids : list[int]
        Ids of the rows that repeat an earlier one.
    counts : dict
        {family: {"rows": rows of that kind, "distinct": distinct configurations}}.
    """

    row_ids: list[int]
    duplicate_ids: list[int]
    counts: dict[str, dict[str, int]]


def distinct_configurations(db, progress: bool = False) -> DistinctRows:
    """Distinct minima per family, by the pipeline's de-duplication rule across all jobs.

    Rows of one family, cell size and strain are the same configuration when their energies
    agree within 1e-2 eV and, if they hold interstitials, their inertia fingerprints agree
    (:func:`~ase_vibentropy.data.analysis.deduplicate`); explorers de-duplicate within a job,
    this works across jobs (random placement finds the same small clusters again and again).
    Non-minima and perfect-lattice rows are left out. The first row (lowest id) of each
    configuration is the one kept.
    """
    from tqdm.auto import tqdm

    from .analysis import deduplicate, inertia_fingerprint
    from .builders import apply_strain, perfect_lattice

    groups: dict[tuple[str, int, float], list[tuple[int, float, float | None]]] = {}
    references: dict[tuple[str, str, float, int, float], Atoms] = {}
    rows = [row for row in db.select("n_imaginary=0", include_data=False, sort="id")
            if row.get("family", "bulk") != "bulk"]
    for row in tqdm(rows, disable=not progress, desc="fingerprints", unit="row"):
        strain = round(float(row.get("strain", 0.0)), 8)
        lattice_key = (row.element, row.lattice, float(row.a0), int(row.n_cells), strain)
        if lattice_key not in references:
            references[lattice_key] = apply_strain(perfect_lattice(*lattice_key[:4]), strain)
        fingerprint = inertia_fingerprint(row.toatoms(), references[lattice_key])
        groups.setdefault((row.family, int(row.n_cells), strain), []).append(
            (row.id, float(row.energy), fingerprint))
    return _distinct_rows(groups, lambda *columns: deduplicate(*columns)[0])


def _distinct_rows(groups: dict[tuple, list[tuple]], distinct: Callable[..., np.ndarray]) -> DistinctRows:
    """Apply ``distinct`` to every group of rows and collect the outcome.

    ``groups`` maps (family, ...) to the group's rows as (row id, value, value, ...) in id order;
    ``distinct(*value_columns)`` returns the indices of the group's distinct rows.
    """
    kept_ids: list[int] = []
    duplicate_ids: list[int] = []
    counts: dict[str, dict[str, int]] = {}
    for (family, *_), members in sorted(groups.items()):
        ids, *columns = zip(*members)
        kept_set = {ids[k] for k in distinct(*columns)}
        kept_ids.extend(kept_set)
        duplicate_ids.extend(i for i in ids if i not in kept_set)
        entry = counts.setdefault(family, {"rows": 0, "distinct": 0})
        entry["rows"] += len(members)
        entry["distinct"] += len(kept_set)
    return DistinctRows(sorted(kept_ids), sorted(duplicate_ids), counts)


def distinct_saddles(db) -> DistinctRows:
    """Distinct stored saddles per family, across jobs.

    The pipeline keeps one row per saddle within a job; explorations of other jobs (other
    random placements of the same family, size and strain) cross the same saddle of a small
    cluster again. Saddle rows of one family, cell size and strain are one saddle when their
    energies, entropies and unordered barrier pairs agree
    (:func:`~ase_vibentropy.data.analysis.deduplicate_saddles`). The first row (lowest id) of
    each saddle is the one kept; ``counts`` is {family: {"rows": saddle rows, "distinct": ...}}.
    """
    from .analysis import deduplicate_saddles

    groups: dict[tuple[str, int, float], list[tuple[int, float, float, tuple[float, float]]]] = {}
    for row in db.select("stationary_point=saddle", include_data=False, sort="id"):
        key = (str(row.family), int(row.n_cells), round(float(row.get("strain", 0.0)), 8))
        groups.setdefault(key, []).append(
            (row.id, float(row.energy), float(row.S_kB),
             (float(row.dE_forward_eV), float(row.dE_backward_eV))))
    return _distinct_rows(groups, lambda *columns: deduplicate_saddles(*columns)[0])
