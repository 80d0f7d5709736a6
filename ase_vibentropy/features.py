"""Descriptor sums stored in an ase.db, and the training rows built from them.

Rows follow the database row contract of ``docs/architecture.md``: key-value pairs ``S_kB``,
``Sf_kB``, ``S_bulk_kB``, ``n_bulk``, ``family``, ``lattice``, ``a0``, ``element``,
``temperature``, ... and data ``descriptor_sums`` / ``bulk_descriptor_sums``, both
``{descriptor hash: (dim,) array}``. :func:`featurize_database` fills the data (resumable: one
transaction per row, rows already featurized for that hash are skipped);
:func:`load_training_set` turns the rows into the feature matrix of :class:`~ase_vibentropy.model.LDMLModel`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from tqdm.auto import tqdm

from .dblock import exclusive_writer
from .errors import (
    DatabaseError,
    InvalidOptionError,
    MixedPotentialError,
    NotAFirstOrderSaddleError,
    UnknownNameError,
)
from .harmonic.jump_core import DEFAULT_MOVED_A, core_terms
from .model import formation_features
from .parallel import descriptor_sum
from .potentials import labelling_potential
from .structure import cell_key, n_vibrational_modes, shortest_distance

__all__ = [
    "BulkSumCache",
    "TrainingSet",
    "check_writable",
    "connect",
    "featurize_database",
    "load_training_set",
    "missing_rows",
]

SUMS_KEY = "descriptor_sums"
BULK_SUMS_KEY = "bulk_descriptor_sums"


def connect(db: Any):
    """An ase.db connection from a path or an existing connection.

    Raises
    ------
    DatabaseError
        The path does not exist (a typo would otherwise create an empty database).
    """
    import ase.db
    from ase.db.core import Database

    if isinstance(db, Database):
        return db
    path = Path(db)
    if not path.exists():
        raise DatabaseError(f"database {str(path)!r} does not exist; build one with 'vibentropy generate'")
    return ase.db.connect(str(path))


def check_writable(db: Any) -> None:
    """Raise :class:`DatabaseError` unless the SQLite file behind ``db`` can be written.

    Checked before any descriptor is computed, so a read-only database fails at once instead of
    after the first (possibly long) row. Other backends (PostgreSQL, ...) are not checked here.
    """
    import os

    filename = getattr(db, "filename", None)
    if not isinstance(filename, str) or "://" in filename:
        return
    folder = os.path.dirname(os.path.abspath(filename))
    if os.path.exists(filename) and not os.access(filename, os.W_OK):
        raise DatabaseError(
            f"database {filename!r} is not writable (file permissions): make it writable "
            "(chmod u+w) or featurize a copy in a writable folder"
        )
    if not os.access(folder, os.W_OK):
        raise DatabaseError(
            f"the folder of database {filename!r} is not writable (SQLite needs it for its "
            "journal): move the database to a writable folder"
        )


def _write_error(row_id: int, exc: Exception) -> DatabaseError:
    return DatabaseError(
        f"cannot write the descriptor sums of row {row_id} ({type(exc).__name__}: {exc}): make "
        "the database writable and rerun; rows featurized before it are kept"
    )


def _has_bulk(row) -> bool:
    """True when the row describes a defect in a periodic lattice (a bulk reference exists)."""
    return row.get("lattice") is not None and bool(np.all(row.pbc))


class BulkSumCache:
    """Σ_i D_i of perfect-lattice cells, computed once per distinct (lattice, element, cell).

    The bulk of a row is ``harmonic.bulk_for_cell(atoms, lattice, a0, element)``: the perfect
    lattice filling the same cell, so strained cells get strained bulks.
    """

    def __init__(self, provider):
        self.provider = provider
        self._sums: dict[tuple, tuple[np.ndarray, int]] = {}

    def __len__(self) -> int:
        """Distinct bulk cells computed so far."""
        return len(self._sums)

    def bulk_sum(self, atoms: Atoms, lattice: str, a0: float, element: str) -> tuple[np.ndarray, int]:
        """(Σ_i D_i^b (dim,), N_b) of the bulk filling the cell of ``atoms``."""
        key = (lattice, element, float(a0), cell_key(atoms))
        if key not in self._sums:
            from .harmonic import bulk_for_cell

            bulk = bulk_for_cell(atoms, lattice, a0, element)
            self._sums[key] = (descriptor_sum(self.provider, bulk), len(bulk))
        return self._sums[key]


def _row_element(row) -> str:
    element = row.get("element")
    if element is not None:
        return str(element)
    symbols = sorted(set(row.symbols))
    return symbols[0]


def _stored(row, key: str, provider_hash: str) -> np.ndarray | None:
    sums = row.data.get(key) if row.data else None
    if not sums or provider_hash not in sums:
        return None
    return np.asarray(sums[provider_hash], dtype=float)


def missing_rows(db: Any, provider_hash: str) -> list[int]:
    """Ids of rows lacking the descriptor sum (or, for lattice rows, the bulk sum) of that hash."""
    db = connect(db)
    missing = []
    for row in db.select():
        if _stored(row, SUMS_KEY, provider_hash) is None or (
            _has_bulk(row) and _stored(row, BULK_SUMS_KEY, provider_hash) is None
        ):
            missing.append(row.id)
    return missing


def featurize_database(
    db: Any,
    provider,
    *,
    chunk_size: int = 20_000,
    progress: bool = True,
    workers: int = 1,
) -> dict[str, int]:
    """Store Σ_i D_i (and the bulk's Σ_i D_i^b) of every row under ``provider.hash``.

    Each row is written in its own transaction, and rows already holding both sums for this
    hash are skipped, so an interrupted run resumes where it stopped. Bulk sums are computed
    once per distinct cell (per worker). A row that cannot be featurized (e.g. overlapping
    atoms) stops the run with an error naming its id; the rows featurized before it stay in the
    database.

    Parameters
    ----------
    db
        Path of an ase.db file or a connection.
    provider
        A :class:`~ase_vibentropy.descriptors.base.DescriptorProvider`.
    chunk_size
        Centre atoms per spatial chunk of :meth:`DescriptorProvider.compute_sum`.
    progress
        Show a tqdm progress bar.
    workers
        Processes computing rows at once (each with one BLAS thread; this process writes). The
        sums do not depend on it.

    Returns
    -------
    dict
        ``{"featurized": rows written, "skipped": rows already done, "bulk_cells": distinct
        bulk cells computed}`` (bulk cells summed over the workers).

    Raises
    ------
    DatabaseError
        The database is not writable (checked before any computation).
    InvalidOptionError
        ``workers`` < 1.
    VibEntropyError
        A row cannot be described; the message starts with ``row <id>``.
    DatabaseError
        Another process is writing the database (:func:`ase_vibentropy.dblock.exclusive_writer`).
    """
    if workers < 1:
        raise InvalidOptionError(f"workers must be at least 1, got {workers}")
    db = connect(db)
    check_writable(db)
    with exclusive_writer(db, f"vibentropy featurize {provider.name}"):
        return _featurize_locked(db, provider, chunk_size, progress, workers)


def _featurize_locked(db: Any, provider, chunk_size: int, progress: bool, workers: int) -> dict[str, int]:
    """:func:`featurize_database` once the database's write lock is held."""
    import sqlite3

    from tqdm.auto import tqdm

    from .errors import VibEntropyError

    todo = missing_rows(db, provider.hash)
    n_rows = db.count()
    results, bulk_cells = _featurized_rows(db, provider, todo, chunk_size, workers)
    bar = tqdm(total=len(todo), desc=f"featurize {provider.name}", disable=not progress, unit="row")
    with bar:
        for done, row_id in enumerate(todo):
            try:
                data = next(results)
            except VibEntropyError as exc:
                message = exc.args[0] if exc.args else str(exc)
                exc.args = (
                    f"row {row_id}: {message} (the {done} row(s) featurized before it are stored; "
                    "fix or delete this row and rerun to resume)",
                    *exc.args[1:],
                )
                raise
            try:
                db.update(row_id, data=data)  # one transaction per row: resumable
            except (sqlite3.Error, OSError) as exc:
                raise _write_error(row_id, exc) from exc
            bar.update()
    return {"featurized": len(todo), "skipped": n_rows - len(todo), "bulk_cells": bulk_cells()}


def _featurized_rows(db, provider, row_ids: list[int], chunk_size: int, workers: int):
    """(iterator over the new ``data`` of each row of ``row_ids``, in order; a callable giving
    the number of distinct bulk cells computed so far)."""
    if workers == 1 or len(row_ids) < 2:
        cache = BulkSumCache(provider)
        rows = (_row_sums(db.get(id=row_id), provider, cache, chunk_size) for row_id in row_ids)
        return rows, lambda: len(cache)
    return _pooled_rows(db.filename, provider, row_ids, chunk_size, workers)


def _pooled_rows(path: str, provider, row_ids: list[int], chunk_size: int, workers: int):
    from .parallel import process_pool

    cells: list[int] = []

    def rows():
        with process_pool(workers, _worker_init, (path, provider, chunk_size)) as pool:
            for data, n_cells in pool.map(_worker_row, row_ids):
                cells.append(n_cells)
                yield data

    return rows(), lambda: sum(cells)


_WORKER: dict[str, Any] = {}


def _worker_init(path: str, provider, chunk_size: int) -> None:
    from .parallel import with_threads

    provider = with_threads(provider, 1)
    _WORKER.update(db=connect(path), provider=provider, cache=BulkSumCache(provider),
                   chunk_size=chunk_size)


def _worker_row(row_id: int) -> tuple[dict, int]:
    """(new data of the row, 1 if it needed a bulk cell this worker had not computed, else 0)."""
    cache = _WORKER["cache"]
    before = len(cache)
    data = _row_sums(_WORKER["db"].get(id=row_id), _WORKER["provider"], cache, _WORKER["chunk_size"])
    return data, len(cache) - before


def _row_sums(row, provider, cache: BulkSumCache, chunk_size: int) -> dict[str, dict]:
    """The row's ``data`` with this provider's Σ_i D_i (and bulk Σ_i D_i^b) added."""
    atoms = row.toatoms()
    data = {}
    sums = dict(row.data.get(SUMS_KEY, {}))
    if provider.hash not in sums:
        sums[provider.hash] = descriptor_sum(provider, atoms, chunk_size=chunk_size)
    data[SUMS_KEY] = sums
    if _has_bulk(row):
        bulk_sums = dict(row.data.get(BULK_SUMS_KEY, {}))
        if provider.hash not in bulk_sums:
            a0 = row.get("a0")
            if a0 is None:
                raise DatabaseError(
                    f"lattice={row.lattice!r} but no a0: the bulk reference cannot be built; "
                    "add the a0 key (Å)"
                )
            bulk_sums[provider.hash], _ = cache.bulk_sum(atoms, row.lattice, a0, _row_element(row))
        data[BULK_SUMS_KEY] = bulk_sums
    return data


@dataclass
class TrainingSet:
    """Rows of a training or test set in the layout of :meth:`LDMLModel.fit`.

    Attributes
    ----------
    X : (n, dim) descriptor features (Σ D for total rows, Eq. 15 differences for formation rows)
    y : (n,) entropies, k_B, at :attr:`temperature`
    n_atoms : (n,) per-atom-constant column (N for total rows, 0 for formation rows)
    kind : (n,) ``"formation"`` or ``"total"``
    family : (n,) defect family of the row (``"bulk"`` for perfect-lattice rows)
    row_id : (n,) ase.db row id (-1 for perfect-lattice rows)
    anchor : (n,) True for rows that only pin the bulk (kept in every training split)
    core : (n,) exact core ΔS_core (k_B) of jump rows fitted with a core, whose ``y`` is then
        ΔS_m - ΔS_core (``load_training_set(..., core_radius=R)``); None without
    """

    X: np.ndarray
    y: np.ndarray
    n_atoms: np.ndarray
    kind: np.ndarray
    family: np.ndarray
    row_id: np.ndarray
    anchor: np.ndarray
    temperature: float
    descriptor_hash: str
    element: str | None = None
    lattice: str | None = None
    a0: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    core: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def core_kB(self) -> np.ndarray:
        """(n,) exact core ΔS_core of jump rows with a core (their ``y`` is ΔS_m - ΔS_core), k_B;
        zeros otherwise. ``y + core_kB`` is the entropy itself."""
        return np.zeros(len(self.y)) if self.core is None else np.asarray(self.core, dtype=float)

    def row_kinds(self) -> dict[str, np.ndarray]:
        """``n_atoms`` and ``is_total`` of every row, the keyword arguments of
        :meth:`LDMLModel.fit` and :meth:`LDMLModel.predict`."""
        return {"n_atoms": self.n_atoms, "is_total": self.kind == "total"}

    def subset(self, mask: np.ndarray) -> TrainingSet:
        """The rows selected by a boolean mask or index array."""
        return TrainingSet(
            self.X[mask], self.y[mask], self.n_atoms[mask], self.kind[mask], self.family[mask],
            self.row_id[mask], self.anchor[mask], self.temperature, self.descriptor_hash,
            self.element, self.lattice, self.a0, dict(self.extra),
            None if self.core is None else self.core[mask],
        )

    def summary(self) -> dict[str, Any]:
        """Row counts, families and target ranges (k_B), JSON-serialisable."""
        out: dict[str, Any] = {
            "n_rows": int(len(self)),
            "temperature_K": float(self.temperature),
            "families": dict(sorted(Counter(self.family.tolist()).items())),
        }
        for kind in ("formation", "total", "migration"):
            sel = self.kind == kind
            out[f"n_{kind}"] = int(sel.sum())
            if sel.any():
                y = (self.y + self.core_kB)[sel]  # the entropies, not a core's residuals
                out[f"{kind}_range_kB"] = [float(y.min()), float(y.max())]
        if "n_atoms_range" in self.extra:
            out["n_atoms_range"] = [int(v) for v in self.extra["n_atoms_range"]]
        if self.extra.get("strain_range") is not None:
            out["strain_range"] = [float(v) for v in self.extra["strain_range"]]
        if self.extra.get("min_distance_range_A") is not None:
            out["min_distance_range_A"] = [float(v) for v in self.extra["min_distance_range_A"]]
            out["min_distance_n_structures"] = int(self.extra["min_distance_n_structures"])
        if self.extra.get("potential"):
            out["potential"] = str(self.extra["potential"])
        if self.extra.get("n_skipped_not_minimum"):
            out["n_skipped_not_minimum"] = int(self.extra["n_skipped_not_minimum"])
        if "core_radius_A" in self.extra:
            out["core_radius_A"] = float(self.extra["core_radius_A"])
            out["core_moved_A"] = float(self.extra["core_moved_A"])
            out["n_skipped_core"] = int(self.extra["n_skipped_core"])
        return out


def _unique(values: list):
    """The single distinct non-None value, or None when there are none or several."""
    values = [v for v in values if v is not None]
    distinct = sorted(set(values), key=str)
    if len(distinct) > 1:
        return None
    return distinct[0] if distinct else None


def row_groups(db: Any, data: TrainingSet, key: str, select: str | None = None) -> list[str]:
    """The value of row key ``key`` for every row of ``data`` (loaded from ``db``), as text;
    ``key`` may name several keys separated by commas (``"family,strain"``: one group per
    combination). ``"row <id>"`` where a row lacks a key (its own group), ``"perfect lattice"``
    for the perfect-lattice rows of a joint fit."""
    keys = [k.strip() for k in key.split(",") if k.strip()]
    if not keys:
        raise InvalidOptionError(f"a group key must name at least one row key (e.g. family), got {key!r}")

    def label(row) -> str:
        values = [row.get(k) for k in keys]
        if any(v is None for v in values):
            return f"row {row.id}"
        return ",".join(f"{k}={v}" for k, v in zip(keys, values)) if len(keys) > 1 else str(values[0])

    labels = {row.id: label(row) for row in db.select(select)}
    return [labels.get(int(row_id), "perfect lattice") for row_id in data.row_id]


def load_training_set(
    db: Any,
    provider_hash: str,
    target: str,
    temperature: float | None = None,
    selection: Any = None,
    core_radius: float | None = None,
    provider: Any = None,
    core_moved: float = DEFAULT_MOVED_A,
    progress: bool = True,
) -> TrainingSet:
    """Build training rows for ``target`` from featurized database rows.

    Parameters
    ----------
    db
        Path of an ase.db file or a connection.
    provider_hash
        Hash of the descriptor whose stored sums are used.
    target
        ``"formation"``: one row (ΔD of Eq. 15, S_f) per row with ``Sf_kB``. ``"total"``: one row
        (Σ D, N; S) per row with ``S_kB``. ``"joint"``: the formation rows plus one total row per
        distinct perfect-lattice cell (Σ D^b, N_b; S_bulk_kB), plus total rows of rows without a
        bulk reference (isolated clusters).
    temperature
        Temperature of the returned targets, K (default: that of the rows, which must agree).
        Targets at other temperatures are shifted exactly (S by n' k_B ln(T/T_row), S_f by
        3(N_d/N_b - 1) k_B ln(T/T_row)).
    selection
        ase.db selection string or None (all rows).
    core_radius
        ``"migration"`` only: the radius R (Å) of the jumps' exact cores
        (:mod:`ase_vibentropy.harmonic.jump_core`). Each jump row's features become the outer
        atoms' Σ (D^saddle - D^minimum) and its target the residual ΔS_m - ΔS_core(R), with
        ΔS_core from the rows' reference potential (:attr:`TrainingSet.core`), and
        ``extra["n_skipped_core"]`` counts jumps whose core at R has no unstable mode (left
        out). None: plain jump rows.
    provider
        The descriptor provider of ``provider_hash``, needed with ``core_radius``.
    core_moved
        Displacement (Å) that makes an atom part of a jump's moving set, with ``core_radius``.
    progress
        Show a progress bar while the jumps' cores are computed.

    Rows with ``n_imaginary > 0`` (not minima) are left out and counted in
    ``extra["n_skipped_not_minimum"]``; the rows' reference potential (their ``potential`` key)
    is kept in ``extra["potential"]`` and reaches the model's training summary. So do the
    training strains (``extra["strain_range"]``, the rows' ``strain`` keys) and the neighbour
    distances: ``extra["min_distance_range_A"]`` is [lowest, highest] over the structures of the
    rows used of each structure's shortest interatomic distance, Å, periodic images included
    (:func:`ase_vibentropy.structure.shortest_distance`), and ``extra["min_distance_n_structures"]``
    the number of those structures.

    Raises
    ------
    DatabaseError
        No usable row, or rows not featurized for this hash (run ``vibentropy featurize``).
    MixedPotentialError
        Rows labelled with different reference potentials, or different revisions of one
        (:func:`ase_vibentropy.potentials.labelling_potential`).
    """
    from .model import TARGETS

    if target not in TARGETS:
        raise UnknownNameError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    db = connect(db)
    rows = list(db.select(selection))
    if not rows:
        raise DatabaseError("the database (selection) has no rows")
    temps = {float(r.temperature) for r in rows if r.get("temperature") is not None}
    if temperature is None:
        if len(temps) > 1:
            raise DatabaseError(
                f"rows were computed at several temperatures {sorted(temps)} K: pass the "
                "temperature to train at (targets are shifted exactly)"
            )
        temperature = temps.pop() if temps else 300.0
    temperature = float(temperature)
    potentials = sorted({labelling_potential(str(r.potential), r.get("potential_version"))
                         for r in rows if r.get("potential") is not None})
    if len(potentials) > 1:
        raise MixedPotentialError(
            f"rows were labelled with several reference potentials ({', '.join(potentials)}): "
            "their entropies are different physics and cannot be fitted together. Relabel the "
            "rows onto one potential (python benchmarks/reproduction/relabel.py SOURCE DEST "
            "--potential NAME, then vibentropy featurize DEST), or select one set "
            "(--select potential=NAME, and potential_version=K for one revision of a name)"
        )

    if target == "migration":
        return _jump_set(db, rows, provider_hash, temperature, potentials,
                         _jump_core(core_radius, core_moved, provider, provider_hash, potentials),
                         progress)
    if core_radius is not None:
        raise InvalidOptionError(f"a core radius belongs to 'migration' fits, not {target!r}")
    X, y, n_col, kind, family, row_id, anchor, sizes = [], [], [], [], [], [], [], []
    strains: list[float] = []  # isotropic strains of the rows used (the model's strain domain)
    closest: list[float] = []  # shortest interatomic distance (Å) of each row used
    bulk_seen: set[bytes] = set()
    not_featurized = []
    n_not_minimum = 0
    for row in rows:
        if (row.get("n_imaginary") or 0) > 0:
            n_not_minimum += 1  # saddle points: their harmonic entropy is not defined
            continue
        sums = _stored(row, SUMS_KEY, provider_hash)
        if sums is None:
            not_featurized.append(row.id)
            continue
        log_t = np.log(temperature / float(row.get("temperature", temperature)))
        n_d = row.natoms
        has_formation = row.get("Sf_kB") is not None and _has_bulk(row)
        bulk_sums = _stored(row, BULK_SUMS_KEY, provider_hash) if _has_bulk(row) else None
        if has_formation and bulk_sums is None:
            not_featurized.append(row.id)
            continue
        fam = str(row.get("family", "unknown"))
        if row.get("strain") is not None:
            strains.append(float(row.strain))
        n_before = len(y)
        if target in ("formation", "joint") and has_formation:
            n_b = int(row.n_bulk)
            delta = formation_features(sums, n_d, bulk_sums, n_b)
            # The perfect lattice itself (a pipeline "bulk" row) has ΔD = 0 and S_f = 0: no
            # information, and scoring it would flatter the errors.
            perfect = n_d == n_b and np.abs(delta).max() <= 1e-9 * max(np.abs(bulk_sums).max(), 1.0)
            if not perfect:
                X.append(delta)
                y.append(row.Sf_kB + 3.0 * (n_d / n_b - 1.0) * log_t)  # exact S_f(T) shift (docs/theory.md, Eq. 3-4)
                n_col.append(0.0)
                kind.append("formation")
                family.append(fam)
                row_id.append(row.id)
                anchor.append(False)
                sizes.append(n_d)
            if target == "joint" and row.get("S_bulk_kB") is not None:
                key = np.round(bulk_sums / n_b, 9).tobytes() + str(n_b).encode()
                if key not in bulk_seen:
                    bulk_seen.add(key)
                    X.append(bulk_sums)
                    y.append(row.S_bulk_kB + (3 * n_b - 3) * log_t)  # n' of the periodic bulk
                    n_col.append(float(n_b))
                    kind.append("total")
                    family.append("bulk")
                    row_id.append(-1)
                    anchor.append(True)
                    sizes.append(n_b)
        elif (target == "total" or (target == "joint" and not _has_bulk(row))) and row.get(
            "S_kB"
        ) is not None:
            n_modes = n_vibrational_modes(row.toatoms())
            X.append(sums)
            y.append(row.S_kB + n_modes * log_t)
            n_col.append(float(n_d))
            kind.append("total")
            family.append(fam)
            row_id.append(row.id)
            anchor.append(False)
            sizes.append(n_d)
        distance = shortest_distance(row.toatoms()) if len(y) > n_before else np.inf
        if np.isfinite(distance):  # a lone isolated atom has no pair
            closest.append(distance)
    if not_featurized:
        raise _not_featurized_error(not_featurized, provider_hash)
    if not y:
        need = {"formation": "Sf_kB with a lattice", "total": "S_kB", "joint": "Sf_kB or S_kB",
                "migration": "saddle rows"}
        raise DatabaseError(f"no row of the database has the labels a {target!r} fit needs ({need[target]})")
    return TrainingSet(
        X=np.array(X, dtype=float),
        y=np.array(y, dtype=float),
        n_atoms=np.array(n_col, dtype=float),
        kind=np.array(kind),
        family=np.array(family),
        row_id=np.array(row_id, dtype=int),
        anchor=np.array(anchor, dtype=bool),
        temperature=temperature,
        descriptor_hash=provider_hash,
        element=_unique([_row_element(r) for r in rows]),
        lattice=_unique([r.get("lattice") for r in rows]),
        a0=_unique([r.get("a0") for r in rows]),
        extra={"n_atoms_range": [min(sizes), max(sizes)], "n_skipped_not_minimum": n_not_minimum,
               "potential": potentials[0] if potentials else None,
               "strain_range": [min(strains), max(strains)] if strains else None,
               "min_distance_range_A": [min(closest), max(closest)] if closest else None,
               "min_distance_n_structures": len(closest)},
    )


def _not_featurized_error(row_ids: list[int], provider_hash: str, hint: str = "") -> DatabaseError:
    """The error for rows without this descriptor's sums, with what to run."""
    return DatabaseError(
        f"{len(row_ids)} row(s) (first id {row_ids[0]}) have no descriptor sums for descriptor "
        f"hash {provider_hash}: run 'vibentropy featurize DB --descriptor NAME' with the same "
        f"descriptor parameters first{hint}"
    )


def _jump_core(core_radius: float | None, core_moved: float, provider: Any, provider_hash: str,
               potentials: list[str]) -> tuple[float, float, Any, Any] | None:
    """(R, moved, descriptor provider, Hessian calculator of the rows' potential) of a jump
    fit with a core, or None without one."""
    if core_radius is None:
        return None
    if provider is None or provider.hash != provider_hash:
        raise InvalidOptionError("a migration fit with a core needs the descriptor provider "
                                 f"of hash {provider_hash} (provider=...)")
    from .potentials import get_potential

    if not potentials:
        raise DatabaseError("a migration fit with a core needs the rows' reference potential "
                            "(their 'potential' key) for the cores' Hessians")
    potential = get_potential(potentials[0].split("@")[0])
    if labelling_potential(potential.name, potential.version) != potentials[0]:
        raise MixedPotentialError(
            f"the rows were labelled with {potentials[0]}, but this install's "
            f"{potential.name} is {labelling_potential(potential.name, potential.version)}: "
            "the cores would not be the rows' physics; relabel the rows first")
    return float(core_radius), float(core_moved), provider, potential.hessian_calculator()


def _jump_set(db: Any, rows: list, provider_hash: str, temperature: float,
              potentials: list[str], core: tuple[float, float, Any, Any] | None = None,
              progress: bool = True) -> TrainingSet:
    """Jump rows of a ``"migration"`` fit (:func:`load_training_set`): for every selected saddle
    row (``stationary_point = "saddle"``) and each minimum it links (``from_minimum`` and
    ``to_minimum`` of its job), features Σ D^saddle - Σ D^minimum and target ΔS_m (k_B) of that
    direction, shifted to ``temperature`` exactly (one mode fewer at the saddle:
    ΔS_m(T) = ΔS_m(T0) - ln(T/T0), classical). Both directions carry the saddle's row id, so
    splits by row keep them together; a symmetric jump (both ends the same minimum, e.g. a
    vacancy hop) gives one row. With ``core`` (:func:`_jump_core`), outer features and
    residual targets (:func:`load_training_set`)."""
    minima = {(row.get("job_id"), row.get("minimum_index")): row for row in db.select()
              if row.get("stationary_point") != "saddle" and row.get("job_id") is not None}
    X, y, family, row_id, sizes, strains, closest = [], [], [], [], [], [], []
    not_featurized, core_kB, n_skipped_core = [], [], 0
    rows = [row for row in rows if row.get("stationary_point") == "saddle"]
    for row in tqdm(rows, desc="jump cores", disable=core is None or not progress, leave=False):
        saddle_sums = _stored(row, SUMS_KEY, provider_hash)
        if saddle_sums is None:
            not_featurized.append(row.id)
            continue
        log_t = np.log(temperature / float(row.get("temperature", temperature)))
        sides = [("forward", row.get("from_minimum")), ("backward", row.get("to_minimum"))]
        if sides[0][1] == sides[1][1]:
            sides = sides[:1]  # a jump to a copy of its own minimum: both directions are one
        for side, index in sides:
            minimum = minima.get((row.get("job_id"), index))
            if minimum is None or row.get(f"dS_m_{side}_kB") is None:
                raise DatabaseError(
                    f"saddle row {row.id}: the {side} minimum (job {row.get('job_id')}, "
                    f"minimum_index {index}) or its dS_m_{side}_kB is missing; a saddle row needs "
                    "its two minima in the same database (vibentropy generate stores both)"
                )
            minimum_sums = _stored(minimum, SUMS_KEY, provider_hash)
            if minimum_sums is None:
                not_featurized.append(minimum.id)
                continue
            target = float(row.get(f"dS_m_{side}_kB")) - log_t
            if core is None:
                X.append(saddle_sums - minimum_sums)
                y.append(target)
            else:
                try:
                    terms = core_terms(minimum.toatoms(), row.toatoms(), core[3], core[2],
                                       temperature, saddle_sums, minimum_sums, radius=core[0],
                                       moved=core[1])
                except NotAFirstOrderSaddleError:
                    n_skipped_core += 1  # the unstable mode reaches past R
                    continue
                X.append(terms.outer_features)
                y.append(target - terms.delta_s_kB)
                core_kB.append(terms.delta_s_kB)
            family.append(str(row.get("family", "unknown")))
            row_id.append(row.id)
            sizes.append(row.natoms)
        if row.get("strain") is not None:
            strains.append(float(row.strain))
        closest.append(shortest_distance(row.toatoms()))
    if not_featurized:
        raise _not_featurized_error(
            not_featurized, provider_hash,
            " (saddle rows need a descriptor defined at saddle points, e.g. stiffness with "
            "saddle_points=true)")
    if not y and n_skipped_core:
        raise DatabaseError(f"all {n_skipped_core} jumps of the selection have a core of "
                            f"{core[0]:g} Å without an unstable mode: use a larger core radius")
    if not y:
        raise DatabaseError("no saddle row in the database (selection): a 'migration' fit needs "
                            "saddle rows (recipes with exploration.store_saddles = true)")
    n = len(y)
    return TrainingSet(
        X=np.array(X, dtype=float), y=np.array(y, dtype=float), n_atoms=np.zeros(n),
        kind=np.full(n, "migration"), family=np.array(family), row_id=np.array(row_id, dtype=int),
        anchor=np.zeros(n, dtype=bool), temperature=temperature, descriptor_hash=provider_hash,
        core=None if core is None else np.array(core_kB),
        element=_unique([_row_element(r) for r in rows]),
        lattice=_unique([r.get("lattice") for r in rows]),
        a0=_unique([r.get("a0") for r in rows]),
        extra={"n_atoms_range": [min(sizes), max(sizes)], "n_skipped_not_minimum": 0,
               "potential": potentials[0] if potentials else None,
               **({"core_radius_A": core[0], "core_moved_A": core[1],
                   "n_skipped_core": n_skipped_core} if core is not None else {}),
               "strain_range": [min(strains), max(strains)] if strains else None,
               "min_distance_range_A": [min(closest), max(closest)] if closest else None,
               "min_distance_n_structures": len(closest)},
    )
