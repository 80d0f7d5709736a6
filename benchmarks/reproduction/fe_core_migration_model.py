"""The bcc-Fe migration model with an exact core, from the saddle databases (docs/REPRODUCTION.md §7).

ΔS_m = ΔS_core(R) + w · Σ_{outside the core} ΔD + b (docs/model.md): the jumps' cores are
computed once (about 0.4 s per jump on one core), then the same rows serve every measurement:

1. cross-validation by saddle (both directions of a jump on one side) and by whole job;
2. transfer in strain: fitted on -1, 0, +1 % and tested on +2 %;
3. the shipped model: every jump of the training database, std calibrated on
   leave-one-(family, strain)-out residuals;
4. held-out jumps that no choice above has seen (``--held-out DB[:SELECT]``, repeatable), e.g.
   the 10a0 saddle database and the 8a0 rows added after the fit.

    OPENBLAS_NUM_THREADS=1 python benchmarks/reproduction/fe_core_migration_model.py \
        runs/saddles/fe_saddles.db --select 'id<=1844' \
        --held-out runs/saddles/fe_saddles_10a0.db --held-out 'runs/saddles/fe_saddles.db:id>1844' \
        [--ship]

writes ``benchmarks/reproduction/results/saddles/core_R<R>_*.json`` and parity plots, and with
``--ship`` copies the model to ``ase_vibentropy/pretrained/fe-mendelev2003-saddles.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from ase_vibentropy import descriptors
from ase_vibentropy.evaluation import calibrate_std, evaluate, repeated_random_splits
from ase_vibentropy.features import connect, load_training_set, row_groups
from ase_vibentropy.model import LDMLModel
from ase_vibentropy.model_io import save_model
from ase_vibentropy.plotting import crossval_plot, parity_plot

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "saddles"
PARTS = [["afs", {"n_max": 8, "l_max": 4}],
         ["stiffness", {"potential": "fe-mendelev2003", "saddle_points": True}]]
#: Jumps over barriers of at most 2 eV both ways (the kinetics of these defects).
JUMPS = "stationary_point=saddle,dE_forward_eV<2,dE_backward_eV<2"


def jump_set(path: str, select: str | None, provider, radius: float):
    """Jump rows of ``path`` (``JUMPS`` and ``select``) with cores of radius ``radius`` Å."""
    selection = JUMPS + (f",{select}" if select else "")
    return load_training_set(connect(path), provider.hash, "migration", None, selection,
                             core_radius=radius, provider=provider, progress=False)


def estimator(provider, data, radius: float) -> LDMLModel:
    return LDMLModel(descriptor=provider.name, descriptor_params=provider.params,
                     target="migration", temperature=data.temperature, element=data.element,
                     lattice=data.lattice, a0=data.a0, core_radius=radius,
                     core_moved=data.extra["core_moved_A"])


def fitted(provider, data, db_path: str, select: str, radius: float) -> LDMLModel:
    """The model on every row of ``data``, std calibrated by (family, strain)."""
    model = estimator(provider, data, radius).fit(data.X, data.y, **data.row_kinds())
    model.training_summary_ = {**model.training_summary_, **data.summary(),
                               "database": str(Path(db_path).resolve()),
                               "training_row_ids": sorted({int(i) for i in data.row_id})}
    groups = row_groups(connect(db_path), data, "family,strain", JUMPS + (f",{select}" if select else ""))
    calibration = calibrate_std(model, data, groups)
    model.std_scale_ = calibration["std_scale"]
    model.training_summary_["std_calibration"] = {"group_by": "family,strain", **calibration}
    result = evaluate(model, data)
    model.metrics_ = {**model.metrics_, "scored_kind": "migration", "train": result["overall"],
                      "by_family": result["by_family"]}
    return model


def scored(model: LDMLModel, data, name: str, plot: Path) -> dict:
    """Errors of ``model`` on ``data`` (metrics of the entropies, core included) and a plot."""
    result = evaluate(model, data)
    parity_plot(data.y + data.core_kB, result["predictions"] + data.core_kB, data.family, plot,
                std=result["std"], quantity=r"\Delta S_m", title=name)
    overall = result["overall"]
    print(f"{name}: {overall['n']} jumps, RMSE {overall['rmse_kB']:.3f} k_B, within 2σ "
          f"{overall['coverage_2sigma']:.0%}, ν* within 1.35x {overall['nu_within_factor']:.0%}")
    return {"overall": overall, "by_family": result["by_family"],
            "summary": data.summary(), "plot": plot.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db")
    parser.add_argument("--select", default=None, help="extra ase.db selection of the fit")
    parser.add_argument("--radius", type=float, default=6.0, help="core radius R, Å")
    parser.add_argument("--held-out", action="append", default=[], metavar="DB[:SELECT]")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--ship", action="store_true")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    stem = f"core_R{args.radius:g}"
    provider = descriptors.get("stack", parts=PARTS)
    db = connect(args.db)
    data = jump_set(args.db, args.select, provider, args.radius)
    report: dict = {"args": vars(args), "training_set": data.summary()}

    for name, groups in (("by_saddle", data.row_id), ("by_job", row_groups(db, data, "job_id", None))):
        cv = repeated_random_splits(estimator(provider, data, args.radius), data, (0.1, 0.3, 0.5),
                                    args.repeats, 0, progress=False, groups=groups)
        report[f"crossval_{name}"] = cv.to_dict()
        print(f"CV {name}: p = 0.1/0.3/0.5 test RMSE "
              + " / ".join(f"{v:.3f}" for v in cv.test_rmse_mean) + " k_B, ν* within 1.35x "
              + " / ".join(f"{v:.0%}" for v in cv.test_nu_within_factor_mean) + ", 2σ coverage "
              + " / ".join(f"{v:.0%}" for v in cv.test_coverage_mean))
        if name == "by_saddle":
            crossval_plot(cv, OUT / f"{stem}_crossval.png", title=f"ΔS_m with a {args.radius:g} Å core")

    strain = np.array([float(s) for s in row_groups(db, data, "strain", None)])
    low = strain < 0.015
    to_2pc = estimator(provider, data, args.radius).fit(
        data.X[low], data.y[low], **data.subset(low).row_kinds())
    report["strain_to_2pc"] = scored(to_2pc, data.subset(~low), "-1..+1 % -> +2 %",
                                     OUT / f"{stem}_to_2pc_parity.png")

    model = fitted(provider, data, args.db, args.select, args.radius)
    report["train"] = model.metrics_["train"]
    path = save_model(model, OUT / f"{stem}_model.json")
    for spec in args.held_out:
        held_db, _, select = spec.partition(":")
        held = jump_set(held_db, select or None, provider, args.radius)
        name = Path(held_db).stem + (f" ({select})" if select else "")
        slug = "".join(c if c.isalnum() else "_" for c in name).strip("_")
        report[f"held_out {name}"] = scored(model, held, f"held out: {name}",
                                            OUT / f"{stem}_held_out_{slug}.png")
    (OUT / f"{stem}_report.json").write_text(json.dumps(report, indent=1, default=float))
    if args.ship:
        shutil.copy(path, HERE.parents[1] / "ase_vibentropy" / "pretrained" / "fe-mendelev2003-saddles.json")


if __name__ == "__main__":
    main()
