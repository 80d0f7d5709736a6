"""S_f of the Fe vacancy and <110> dumbbell against the cell size: exact by embedding, and the
shipped models' predictions for the same relaxed cells.

Reads the relaxed cells and rows written by
``python benchmarks/reference_scaling.py --embedding --save DIR`` and prints a markdown table
(k_B): the exact S_f at R = 4a0, its convergence estimate and S_f at R = 6a0, the full log-det
route where it was run, and the four shipped models' S_f. Writes the rows to
``benchmarks/reproduction/results/embedding_convergence.json``.

Usage::

    python benchmarks/reproduction/embedding_convergence.py DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

MODELS = ("fe-mendelev2003-afs-stiffness", "fe-mendelev2003-afs", "fe-mendelev2003-afs-einstein",
          "fe-mendelev2003-afs-einstein-relaxed")
A0 = 2.855324  # Å
HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", help="--save DIR of reference_scaling.py --embedding")
    args = parser.parse_args(argv)

    from ase.io import read

    from ase_vibentropy.harmonic import bulk_for_cell
    from ase_vibentropy.harmonic.embedding import convergence_estimate
    from ase_vibentropy.predictor import EntropyPredictor
    from ase_vibentropy.units import KB_EV_PER_K

    with open(os.path.join(args.directory, "rows.jsonl")) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    models = {name: EntropyPredictor(name) for name in MODELS}
    out = []
    print("| cell (atoms) | defect | exact S_f (R = 4a0) | error estimate | S_f (R = 6a0) | "
          "full log-det | "
          + " | ".join(f"`{m}`" for m in MODELS) + " |")
    print("| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in MODELS) + " |")
    for row in sorted(rows, key=lambda r: (r["defect"], r["n_atoms"])):
        n = round((row["n_atoms"] / 2) ** (1 / 3))
        path = os.path.join(args.directory, f"{row['defect']}_{n}a0.extxyz")
        atoms = read(path)
        bulk = bulk_for_cell(atoms, "bcc", A0, "Fe")
        predicted = {}
        for name, model in models.items():
            start = time.perf_counter()
            predicted[name] = model.predict_formation_entropy(atoms, bulk) / KB_EV_PER_K
            predicted[name + ":seconds"] = time.perf_counter() - start
        sf = row["Sf_kB"]
        estimate = convergence_estimate(sf)
        full = row["Sf_full_kB"]
        full_text = f"{full:.4f}" if full == full else "-"
        print(f"| {n}a0 ({row['n_atoms']:,}) | {row['defect']} | {sf[0]:.4f} | {estimate:.1e} | "
              f"{sf[2]:.4f} | {full_text} | " + " | ".join(f"{predicted[m]:.2f}" for m in MODELS) + " |",
              flush=True)
        out.append({**row, "cells": n, "error_estimate_kB": estimate, "predicted_Sf_kB": predicted})
    with open(os.path.join(HERE, "results", "embedding_convergence.json"), "w") as handle:
        json.dump(out, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
