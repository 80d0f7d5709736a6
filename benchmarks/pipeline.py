"""Throughput of the database pipeline: labelled 1024-atom bcc Fe configurations per hour.

Each configuration is relaxed with fe-mendelev2003 (LAMMPS conjugate gradients, then L-BFGS
with the package's EAM calculator, ``ase_vibentropy.eam.SparseHessianEAM``, to 1e-5 eV/Å), its
Hessian is that calculator's analytic one (matscipy's to 1e-14) and its entropy comes from the
exact log-determinant (docs/theory.md). The bulk reference of the cell is labelled
once and excluded from the timing; "Hessian+S s" is the mean time of the harmonic step alone
(analytic Hessian and log-det), the rest of a configuration's time is its relaxation. Target:
>= 1 labelled configuration per 3 s per core.

    python benchmarks/pipeline.py --configs 4 --workers 1 2

Prints a table; needs the lammps extra.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from ase_vibentropy.data.pipeline import generate
from ase_vibentropy.data.recipe import parse_recipe
from ase_vibentropy.data.store import connect


def _recipe(n_configs: int, size: int):
    # Method "none": every job is one built configuration, so the timing is pure labelling.
    families = {"V1": {"count": 1}, "V2": {"count": 1}, "I1": {"count": 1}, "I2": {"count": 1}}
    names = list(families)
    counts = {name: 0 for name in names}
    for k in range(n_configs):
        counts[names[k % len(names)]] += 1
    return parse_recipe({
        "potential": "fe-mendelev2003",
        "sizes": [size],
        "strains": [0.0],
        "seed": 1,
        "reference": {"hessian": "analytic", "solver": "logdet", "fmax": 1e-5},
        "families": {name: {"count": c} for name, c in counts.items() if c},
    })


def run(n_configs: int, workers: int, size: int) -> dict[str, float]:
    """Run the benchmark recipe with ``workers`` processes; return timings (s) and rates."""
    recipe = _recipe(n_configs, size)
    stamps: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate(recipe, os.path.join(tmp, "bench.db"), workers=workers, progress=False,
                           on_job=lambda outcome: stamps.append((time.perf_counter(), outcome.job_id)))
        end = time.perf_counter()
        rows = [r for r in connect(os.path.join(tmp, "bench.db")).select() if r.family != "bulk"]
        label_s = sum(r.label_seconds for r in rows) / max(len(rows), 1)
    bulk_done = max(t for t, job_id in stamps if job_id.startswith("bulk"))
    n_defect = sum(1 for _, job_id in stamps if not job_id.startswith("bulk"))
    defect_seconds = end - bulk_done
    return {
        "workers": workers,
        "configs": n_defect,
        "failed": summary.n_failed,
        "bulk_s": bulk_done - start,
        "defect_s": defect_seconds,
        "label_s": label_s,
        "per_hour": 3600.0 * n_defect / defect_seconds,
        "core_s_per_config": workers * defect_seconds / n_defect,
    }


def main() -> None:
    """Command line: ``--configs N --workers 1 2 --size 8``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=4, help="defect configurations per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=8, help="cell edge in conventional cells")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bcc Fe {args.size}a0 ({2 * args.size**3} sites), {args.configs} configurations per run, "
          f"{os.cpu_count()} cores, load average {load:.1f}")
    print(f"{'workers':>7} {'configs':>7} {'bulk s':>8} {'defect s':>9} {'configs/h':>10} "
          f"{'core-s/config':>14} {'Hessian+S s':>12} {'target':>8}")
    for workers in args.workers:
        r = run(args.configs, workers, args.size)
        ok = "met" if r["core_s_per_config"] <= 3.0 else "missed"
        print(f"{r['workers']:>7} {r['configs']:>7} {r['bulk_s']:>8.1f} {r['defect_s']:>9.1f} "
              f"{r['per_hour']:>10.1f} {r['core_s_per_config']:>14.1f} {r['label_s']:>12.1f} {ok:>8}")


if __name__ == "__main__":
    main()
