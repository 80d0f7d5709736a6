"""Exact ΔS_m of fixed-boundary clusters around a jump, against the exact ΔS_m of the whole cell.

For each sampled saddle row of a saddle database (docs/REPRODUCTION.md §7) and each of its two
minima, the region is every atom within R (Å) of an atom that moves by more than ``--moved`` Å
between minimum and saddle (after removing the mean displacement, so a rigid drift of the cell
does not count as motion). The classical migration entropy of the region with all other atoms
fixed is

    ΔS_m(R) = Σ_{saddle block, ω² > 0} s(ω²) - Σ_{minimum block} s(ω²),
    s(ω²) = 1 + ln(k_B T / ħω)        (k_B; ase_vibentropy.harmonic.jump_core)

with exactly one negative ω² in the saddle block and none in the minimum block
(one mode fewer at the saddle, as in the whole-cell ΔS_m stored in the row). A jump whose blocks
have other mode counts (the unstable mode reaching past R) is counted, not used.

    python benchmarks/reproduction/cluster_migration.py runs/saddles/fe_saddles.db \
        --saddles 40 --radii 6 8 --json cluster_migration.json

prints RMSE, median |error| and the fraction with ν* within 1.35× (|error| < ln 1.35) per R.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from ase.db import connect
from tqdm import tqdm

from ase_vibentropy.errors import NotAFirstOrderSaddleError
from ase_vibentropy.evaluation import ATTEMPT_FREQUENCY_FACTOR
from ase_vibentropy.harmonic.jump_core import core_migration_entropy, jump_core_region
from ase_vibentropy.potentials.registry import get_potential


def cluster_delta_s(minimum, saddle, radius: float, moved: float, calc, temperature: float):
    """(ΔS_core in k_B or None when the core has no unstable mode, core atom count)."""
    region = jump_core_region(minimum, saddle, radius, moved)
    try:
        return core_migration_entropy(minimum, saddle, region, calc, temperature), int(region.size)
    except NotAFirstOrderSaddleError:
        return None, int(region.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db")
    parser.add_argument("--saddles", type=int, default=40, help="saddle rows sampled")
    parser.add_argument("--radii", type=float, nargs="+", default=[6.0, 8.0], help="Å")
    parser.add_argument("--moved", type=float, default=0.1, help="Å")
    parser.add_argument("--max-barrier", type=float, default=2.0, help="eV, both directions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    db = connect(args.db)
    potential = get_potential("fe-mendelev2003")
    calc = potential.hessian_calculator()
    minima = {(r.job_id, r.get("minimum_index")): r for r in db.select()
              if r.get("stationary_point") != "saddle" and r.get("job_id") is not None}
    saddles = list(db.select("stationary_point=saddle"))
    picked = np.random.default_rng(args.seed).choice(len(saddles), min(args.saddles, len(saddles)),
                                                     replace=False)
    jumps = []
    for k in tqdm(picked, desc="saddles"):
        row = saddles[k]
        if max(row.dE_forward_eV, row.dE_backward_eV) > args.max_barrier:
            continue
        saddle = row.toatoms()
        sides = [("forward", row.from_minimum), ("backward", row.to_minimum)]
        for side, index in sides[:1] if row.from_minimum == row.to_minimum else sides:
            minimum = minima[(row.job_id, index)].toatoms()
            jump = {"id": row.id, "side": side, "family": row.family,
                    "exact": float(row.get(f"dS_m_{side}_kB"))}
            for radius in args.radii:
                jump[f"R{radius:g}"], jump[f"n_atoms_R{radius:g}"] = cluster_delta_s(
                    minimum, saddle, radius, args.moved, calc, row.temperature)
            jumps.append(jump)

    threshold = np.log(ATTEMPT_FREQUENCY_FACTOR)
    summary = {}
    print(f"{'R (Å)':>6} {'jumps':>6} {'left out':>8} {'RMSE':>6} {'median':>7} "
          f"{'nu in 1.35x':>11} {'atoms':>10}")
    for radius in args.radii:
        key = f"R{radius:g}"
        used = [j for j in jumps if j[key] is not None]
        error = np.array([j[key] - j["exact"] for j in used])
        atoms = [j[f"n_atoms_{key}"] for j in used]
        summary[key] = {"n_jumps": len(used), "n_left_out": len(jumps) - len(used),
                        "rmse_kB": float(np.sqrt(np.mean(error**2))),
                        "median_abs_kB": float(np.median(np.abs(error))),
                        "nu_within_factor": float(np.mean(np.abs(error) < threshold)),
                        "region_atoms": [min(atoms), max(atoms)]}
        s = summary[key]
        print(f"{radius:6g} {s['n_jumps']:6d} {s['n_left_out']:8d} {s['rmse_kB']:6.3f} "
              f"{s['median_abs_kB']:7.3f} {100 * s['nu_within_factor']:10.0f}% "
              f"{min(atoms):4d}-{max(atoms):d}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"summary": summary, "jumps": jumps, "args": vars(args)}, handle, indent=1)


if __name__ == "__main__":
    main()
