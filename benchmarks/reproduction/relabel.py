"""Relabel the distinct minima of a labelled database with another reference potential.

For every distinct minimum of SOURCE (``vibentropy db-stats --distinct`` rule) and every
perfect-lattice row: relax at fixed cell with the new potential's own calculator, starting from
the stored minimum (no LAMMPS pre-relaxation: the minimum moves by far less than a bond), and
compute the exact S and S_f (log-det route, Eq. 2-3). Rows are written to DEST with the
source's metadata, so ``vibentropy featurize`` and ``fe_models.py`` use DEST like a generated
database. Resumable: a rerun skips the rows already relabelled. A row that is no longer a
minimum is stored with ``n_imaginary > 0`` and no entropies, as the pipeline does; one whose
relaxation does not converge is stored unrelaxed with ``relax_failed = 1`` and no entropies,
so the run goes on and a rerun does not retry it.

    python benchmarks/reproduction/relabel.py runs/fe_clusters.db runs/closed/fe_clusters.db \\
        --potential fe-mendelev2003 --workers 2

With ``--strain``, it makes the paper's strained copies instead (the paper: every configuration
"also under isotropic strain"): each selected minimum is scaled homogeneously from its own
strain to each given strain (cell and positions), relaxed at that fixed cell and labelled;
the row keeps ``copy_of`` = the source row's unique id, so the copies of one configuration can
be kept together in a grouped cross-validation (``vibentropy crossval --group-by copy_of``):

    python benchmarks/reproduction/relabel.py runs/closed/fe_clusters.db \\
        runs/closed/fe_clusters_copies.db --select "strain=0" --strain -0.01 0.01 0.02 0.03
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

from tqdm.auto import tqdm

from ase_vibentropy.data.store import LabelledRow, connect, distinct_configurations, finished_job_ids, write_job
from ase_vibentropy.errors import NotAMinimumError, NotRelaxedError
from ase_vibentropy.harmonic import formation_entropy_value


@lru_cache(maxsize=1)
def _potential(name: str):
    from ase_vibentropy.potentials import get_potential

    potential = get_potential(name)
    return potential, potential.hessian_calculator()


def relabel_row(task: tuple) -> tuple[str, LabelledRow, float]:
    """Relax one stored structure with ``potential`` and return its new labels (S in k_B)."""
    from ase_vibentropy.harmonic import harmonic_entropy

    job_id, name, atoms, kvp, fmax = task
    start = time.perf_counter()
    potential, calc = _potential(name)
    kvp = dict(kvp, potential=name, potential_version=potential.version)
    for key in ("S_kB", "Sf_kB", "S_bulk_kB", "n_bulk", "solver", "label_seconds", "n_imaginary"):
        kvp.pop(key, None)
    # a stored minimum moves by far less than a bond; a strained copy moves more (LAMMPS first)
    prerelax = "copy_of" in kvp
    try:
        relaxed = potential.relax(atoms, fmax=fmax, prerelax=prerelax, calc=calc)
    except NotRelaxedError:
        unrelaxed = atoms.copy()
        unrelaxed.calc = calc
        energy = float(unrelaxed.get_potential_energy())
        return job_id, LabelledRow(atoms.copy(), energy, dict(kvp, relax_failed=1)), time.perf_counter() - start
    try:
        result = harmonic_entropy(relaxed, calc, hessian="analytic", solver="logdet", fmax=None)
        kvp.update(S_kB=result.entropy_kB, solver=result.solver, label_seconds=result.seconds,
                   n_imaginary=0)
    except NotAMinimumError as exc:
        kvp["n_imaginary"] = max(1, int(exc.n_imaginary))
    energy = float(relaxed.get_potential_energy())
    return job_id, LabelledRow(relaxed.copy(), energy, kvp), time.perf_counter() - start


def row_tasks(row, args) -> list[tuple]:
    """The relabelling task of one source row, or with ``args.strain`` one strained copy per
    strain: (job id, potential name, start structure, key-value pairs, fmax)."""
    kvp = dict(row.key_value_pairs)
    if args.strain is None:
        return [(f"relabel-{row.unique_id}", args.potential, row.toatoms(), kvp, args.fmax)]
    tasks = []
    for strain in args.strain:
        atoms = row.toatoms()
        scale = (1.0 + strain) / (1.0 + kvp.get("strain", 0.0))
        atoms.set_cell(atoms.cell[:] * scale, scale_atoms=True)
        tasks.append((f"strain{strain:+.4f}-{row.unique_id}", args.potential, atoms,
                      dict(kvp, strain=strain, copy_of=row.unique_id), args.fmax))
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--potential", default="fe-mendelev2003")
    parser.add_argument("--fmax", type=float, default=1e-6, help="eV/Å")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--select", default=None, help="ase.db selection of the source rows")
    parser.add_argument("--strain", type=float, nargs="+", default=None, metavar="EPS",
                        help="make strained copies at these isotropic strains (fractions)")
    args = parser.parse_args(argv)
    source = connect(args.source, create=False)
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    dest = connect(args.dest)
    keep = set(distinct_configurations(source).row_ids)
    rows = [row for row in source.select(args.select) if row.get("family") != "bulk" and row.id in keep]
    # the perfect lattices of the selected rows' cells: their S_b is needed for S_f
    cells = {(row.n_cells, round(row.strain, 6)) for row in rows}
    rows += [row for row in source.select("family=bulk") if (row.n_cells, round(row.strain, 6)) in cells]
    done = finished_job_ids(dest)
    tasks = [task for row in rows for task in row_tasks(row, args) if task[0] not in done]
    # bulk rows first: defect rows need their cell's new S_b
    tasks.sort(key=lambda t: t[3].get("family") != "bulk")
    n_bulk_tasks = sum(t[3].get("family") == "bulk" for t in tasks)
    n_wanted = len(rows) * max(1, len(args.strain or []))
    print(f"{args.source}: {n_wanted} rows to label, {n_wanted - len(tasks)} already done", flush=True)
    bulk_entropy = {(r.n_cells, round(r.strain, 6)): (r.S_kB, r.natoms)
                    for r in dest.select("family=bulk,n_imaginary=0")}
    # one worker: in this process (no pickling, usable from an imported script)
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    mapper = pool.map if pool is not None else map
    with pool if pool is not None else contextlib.nullcontext():
        for phase in (tasks[:n_bulk_tasks], tasks[n_bulk_tasks:]):
            for job_id, row, seconds in tqdm(mapper(relabel_row, phase), total=len(phase), desc="relabel"):
                kvp = row.key_value_pairs
                cell = (kvp["n_cells"], round(kvp["strain"], 6))
                # rows that are not minima or did not relax are stored without labels
                if kvp.get("S_kB") is not None and kvp.get("family") == "bulk":
                    kvp.update(Sf_kB=0.0, S_bulk_kB=kvp["S_kB"], n_bulk=len(row.atoms))
                    bulk_entropy[cell] = (kvp["S_kB"], len(row.atoms))
                elif kvp.get("S_kB") is not None:
                    s_bulk, n_bulk = bulk_entropy[cell]
                    kvp.update(S_bulk_kB=s_bulk, n_bulk=n_bulk,
                               Sf_kB=formation_entropy_value(kvp["S_kB"], len(row.atoms), s_bulk, n_bulk))
                write_job(dest, [row], job_id, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
