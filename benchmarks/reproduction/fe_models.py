"""Train, validate and (optionally) ship the bcc-Fe models from a labelled database.

One command gives every Fe number of docs/REPRODUCTION.md:

    python benchmarks/reproduction/fe_models.py \
        --db runs/fe_shipped.db runs/fe_clusters.db runs/fe_random.db \
        --descriptors afs bso4 --repeats 100 --ship

Several databases are merged into ``--merged`` (rebuilt on every run, each row tagged with
``source`` = the stem of its database file and ``role`` = ``random`` or ``clusters``, repeated
configurations removed); rows of the ``--random-db`` files (default: those named
``fe_random.db`` and ``fe_random_dense.db``) form the random-damage database of the paper's
Fig. 6b, every other row of a cluster family the cluster database. ``--descriptor-db NAME=DB...`` restricts a
descriptor to some of the databases (the wavelet scattering descriptor costs ~3 s per 1024-atom
cell, so it is trained on a subset).

For each descriptor it featurizes the source databases (resumable: the sums stay in them), then
through the `vibentropy` CLI:
  1. trains a joint model on every labelled row (train RMSE/MAE, parity PNG), and on the
     8a0 clusters without (paper's Fig. 2) and with (Fig. 3) the strained copies;
  2. cross-validates over test fractions 0.1..0.9 (`--repeats` random splits each; PNG) on
     every row, on the cluster rows, and on the 8a0 cluster rows (the paper's Fig. 3 cells),
     and on the cluster rows with the strained copies of a configuration kept together;
  3. transfer tests: trained on the cluster families only, validated on the random-damage
     rows; trained on the 6a0 cells only, validated on the 8a0 cells; trained on the 6a0 and
     8a0 clusters, validated on the 10a0 clusters (parity PNGs); and clusters -> random again
     with the paper's formation-only target instead of the joint one;
and writes `results/fe_<descriptor>.json`. With `--ship` the full-data models are copied to
`ase_vibentropy/pretrained/fe-mendelev2003-<descriptor>.json`, and the descriptor sums,
targets and metadata of every row to `benchmarks/reproduction/data/fe_shipped_<descriptor>.npz` (a table anyone
can refit from without the structures).

Nothing here is tuned on a test set: descriptor parameters are the paper's, the priors are
scikit-learn's defaults, and the splits are random with a fixed seed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ase_vibentropy.cli.main import main as vibentropy

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PRETRAINED = REPO / "ase_vibentropy" / "pretrained"
#: The shipped models: label (the model is ``fe-mendelev2003-<label>``) -> descriptor name and
#: the ``--param`` assignments where they differ from the provider defaults. Scattering on a
#: 0.28 Å grid (7e-7 relative to 0.14 Å on 1024-atom cells, 10x cheaper); ``afs-einstein`` is
#: AFS(20,10) next to the local Einstein component of the labelling potential (section 2e),
#: ``afs-einstein-relaxed`` next to its relaxed-neighbour form (section 2f), ``afs-stiffness``
#: (the default model) is AFS(8,4) next to the three local stiffness components (section 2).
SHIPPED_MODELS = {
    "afs": ("afs", []),
    "bso4": ("bso4", []),
    "scattering": ("scattering", ["grid_spacing=0.28"]),
    "afs-einstein": ("stack", ['parts=[["afs", {}], ["einstein", {"potential": "fe-mendelev2003"}]]']),
    "afs-einstein-relaxed": (
        "stack", ['parts=[["afs", {}], ["einstein-relaxed", {"potential": "fe-mendelev2003"}]]']
    ),
    "afs-stiffness": (
        "stack",
        ['parts=[["afs", {"n_max": 8, "l_max": 4}], ["stiffness", {"potential": "fe-mendelev2003"}]]'],
    ),
}


def run_cli(*argv: str) -> str:
    """Run one `vibentropy` command, fail loudly on a non-zero exit, return its stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = vibentropy([str(a) for a in argv])
    if code != 0:
        sys.exit(f"vibentropy {' '.join(map(str, argv))} exited with {code}")
    return buffer.getvalue()


def merge_databases(sources: list[Path], merged: Path, random_dbs: list[str]) -> dict:
    """Copy every row (structure, key-value pairs, data) of ``sources`` into a fresh ``merged``
    database, adding the keys ``source`` = file stem, ``role`` = ``random`` (a database
    named in ``random_dbs``) or ``clusters`` and ``config`` = the configuration a row is a
    strained copy of (``copy_of``, relabel.py --strain) or else its own unique id, then delete
    the rows that repeat an
    earlier configuration (same family, cell and strain, energy within 1e-2 eV, same inertia
    fingerprint): a repeated configuration would sit on both sides of a random split.

    Returns {"rows": rows copied, "duplicates_removed": n, "distinct": {family: counts}}.
    """
    import ase.db

    from ase_vibentropy.data.store import distinct_configurations

    merged.unlink(missing_ok=True)
    n_rows = 0
    with ase.db.connect(str(merged)) as out:
        for path in sources:
            for row in ase.db.connect(str(path)).select():
                role = "random" if path.stem in random_dbs else "clusters"
                config = row.get("copy_of", row.unique_id)
                out.write(row.toatoms(), key_value_pairs={**row.key_value_pairs, "source": path.stem,
                                                          "role": role, "config": config},
                          data=row.get("data", {}))
                n_rows += 1
    db = ase.db.connect(str(merged))
    distinct = distinct_configurations(db)
    db.delete(distinct.duplicate_ids)
    return {"rows": n_rows, "duplicates_removed": len(distinct.duplicate_ids),
            "distinct": distinct.counts}


def count_rows(db: Path, selection: str) -> int:
    """Defect rows (not perfect lattices) of ``db`` matching ``selection``."""
    import ase.db

    return ase.db.connect(str(db)).count(f"{selection},family!=bulk")


def descriptor_arguments(label: str) -> list[str]:
    """``--descriptor NAME --param ...`` arguments of the shipped model ``label``."""
    if label not in SHIPPED_MODELS:
        sys.exit(f"unknown model {label!r}; known: {', '.join(SHIPPED_MODELS)}")
    name, assignments = SHIPPED_MODELS[label]
    return ["--descriptor", name, *(arg for assignment in assignments for arg in ("--param", assignment))]


def export_table(db_path: Path, label: str, out: Path) -> None:
    """Write descriptor sums, targets and metadata of every labelled row to an .npz table."""
    import ase.db

    from ase_vibentropy import descriptors
    from ase_vibentropy.cli.featurize import parse_params
    from ase_vibentropy.potentials import labelling_potential

    descriptor, assignments = SHIPPED_MODELS[label]
    provider = descriptors.get(descriptor, **parse_params(assignments))
    columns: dict[str, list] = {key: [] for key in (
        "row_id", "source", "potential", "family", "n_atoms", "n_cells", "strain", "n_vac", "n_int",
        "energy_eV", "S_kB", "Sf_kB", "S_bulk_kB", "n_bulk", "D_sum", "D_bulk_sum")}
    for row in ase.db.connect(str(db_path)).select("n_imaginary=0"):
        if row.get("family") == "bulk" or row.get("Sf_kB") is None:
            continue
        columns["row_id"].append(row.id)
        columns["source"].append(row.get("source", db_path.stem))
        columns["family"].append(row.family)
        columns["n_atoms"].append(row.natoms)
        # the labelling potential with its revision, as the model's training summary has it
        columns["potential"].append(labelling_potential(row.potential, row.get("potential_version")))
        for key in ("n_cells", "strain", "n_vac", "n_int", "S_kB", "Sf_kB", "S_bulk_kB", "n_bulk"):
            columns[key].append(row.get(key))
        columns["energy_eV"].append(row.energy)
        columns["D_sum"].append(row.data["descriptor_sums"][provider.hash])
        columns["D_bulk_sum"].append(row.data["bulk_descriptor_sums"][provider.hash])
    np.savez_compressed(
        out, descriptor=descriptor, descriptor_params=json.dumps(provider.params),
        descriptor_hash=provider.hash, temperature_K=300.0,
        **{k: np.asarray(v) for k, v in columns.items()},
    )


def selections(sources: list[Path], random_dbs: list[str]) -> tuple[str, str]:
    """ase.db selections of the cluster rows and of the random-damage rows (merged database)."""
    if any(path.stem in random_dbs for path in sources):
        return "role=clusters,family!=random,family!=cascade", "role=random"
    return "family!=random,family!=cascade", "family=random"


def parse_descriptor_dbs(assignments: list[str], known: list[Path]) -> dict[str, list[Path]]:
    """``["scattering=runs/a.db,runs/b.db"]`` -> {"scattering": [Path(...), ...]}."""
    out: dict[str, list[Path]] = {}
    for item in assignments:
        name, sep, paths = item.partition("=")
        chosen = [Path(p) for p in paths.split(",") if p]
        if not sep or not chosen or any(p not in known for p in chosen):
            sys.exit(f"--descriptor-db expects NAME=DB[,DB...] with databases given to --db, got {item!r}")
        out[name] = chosen
    return out


def evaluate_descriptor(name: str, db: Path, cluster_sel: str, random_sel: str, args) -> dict:
    """Train, cross-validate and transfer-test one descriptor on the merged database ``db``."""
    params = descriptor_arguments(name)
    calibrate = ("--calibrate-std-by", args.calibrate_std_by) if args.calibrate_std_by else ()
    model = args.out / f"fe-mendelev2003-{name}.json"
    run_cli("train", db, *params, "--target", "joint", "-o", model, *calibrate,
            "--plot", args.out / f"fe_{name}_train_parity.png", "--quiet")
    train = json.loads(run_cli("validate", db, "--model", model, "--json", "--quiet"))
    crossval = {}
    for label, selection, png in (
        ("all", None, f"fe_{name}_crossval.png"),
        ("clusters", cluster_sel, f"fe_{name}_clusters_crossval.png"),
        ("clusters_8a0", f"n_cells=8,{cluster_sel}", f"fe_{name}_clusters_8a0_crossval.png"),
        ("clusters_unstrained", f"strain=0,{cluster_sel}", f"fe_{name}_clusters_unstrained_crossval.png"),
    ):
        crossval[label] = json.loads(run_cli(
            "crossval", db, *params, "--target", "joint",
            "--repeats", args.repeats, "--json", "--quiet", "--plot", args.out / png,
            *(("--select", selection) if selection else ())))
    # strained copies of one configuration kept on one side of every split
    crossval["clusters_grouped"] = json.loads(run_cli(
        "crossval", db, *params, "--target", "joint", "--repeats", args.repeats,
        "--json", "--quiet", "--plot", args.out / f"fe_{name}_clusters_grouped_crossval.png",
        "--select", cluster_sel, "--group-by", "config"))
    subsets = {}
    for label, selection in (
        ("fig2_8a0_clusters_unstrained", f"n_cells=8,strain=0,{cluster_sel}"),
        ("fig3_8a0_clusters_all_strains", f"n_cells=8,{cluster_sel}"),
    ):
        partial = args.out / f"fe_{name}_{label}_model.json"
        run_cli("train", db, *params, "--target", "joint", "-o", partial,
                "--select", selection, "--quiet")
        subsets[label] = json.loads(run_cli(
            "validate", db, "--model", partial, "--select", selection, "--json", "--quiet"))
        partial.unlink()
    transfers = {}
    # The shipped models fit the joint target (formation rows and perfect-lattice totals, so that
    # they also predict total and local entropies); the paper fits formation entropies alone,
    # which the last transfer repeats.
    for label, train_sel, test_sel, target in (
        ("clusters_to_random", cluster_sel, random_sel, "joint"),
        ("6a0_to_8a0", "n_cells=6", "n_cells=8", "joint"),
        ("6a0_8a0_to_10a0_12a0_clusters", f"n_cells<10,{cluster_sel}", f"n_cells>=10,{cluster_sel}", "joint"),
        ("clusters_to_random_formation_target", cluster_sel, random_sel, "formation"),
    ):
        empty = [sel for sel in (train_sel, test_sel) if not count_rows(db, sel)]
        if empty:
            transfers[label] = {"skipped": f"no rows in {empty[0]}"}
            continue
        partial = args.out / f"fe_{name}_{label}_model.json"
        run_cli("train", db, *params, "--target", target, "-o", partial,
                "--select", train_sel, "--quiet", *calibrate)
        transfers[label] = json.loads(run_cli(
            "validate", db, "--model", partial, "--select", test_sel, "--json", "--quiet",
            "--plot", args.out / f"fe_{name}_{label}_parity.png"))
        partial.unlink()
    return {"model": model, "train": train, "train_subsets": subsets, "crossval": crossval,
            "transfer": transfers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, nargs="+", required=True,
                        help="labelled ase.db files (vibentropy generate)")
    parser.add_argument("--descriptors", nargs="+", default=["afs", "bso4"], metavar="MODEL",
                        help=f"shipped models to build: {', '.join(SHIPPED_MODELS)}")
    parser.add_argument("--descriptor-db", action="append", default=[], metavar="NAME=DB[,DB]",
                        help="use only these databases for one descriptor (repeatable)")
    parser.add_argument("--random-db", nargs="+", default=["fe_random", "fe_random_dense"],
                        help="stems of the random-damage databases (default fe_random fe_random_dense)")
    parser.add_argument("--merged", type=Path, default=REPO / "runs" / "fe_models.db",
                        help="merged database to (re)build; one per descriptor subset")
    parser.add_argument("--repeats", type=int, default=100, help="random splits per test fraction")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--ship", action="store_true", help="copy models and tables into the repo")
    parser.add_argument("--calibrate-std-by", metavar="KEY",
                        help="calibrate the std of the full-data and transfer models on "
                             "leave-one-group-out residuals of this row key (e.g. family)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.merged.parent.mkdir(parents=True, exist_ok=True)
    subsets = parse_descriptor_dbs(args.descriptor_db, args.db)

    for name in args.descriptors:
        sources = subsets.get(name, args.db)
        for source in sources:
            run_cli("featurize", source, *descriptor_arguments(name), "--quiet")
        merged = args.merged.with_name(f"{args.merged.stem}_{name}{args.merged.suffix}")
        merge = merge_databases(sources, merged, args.random_db)
        cluster_sel, random_sel = selections(sources, args.random_db)
        result = evaluate_descriptor(name, merged, cluster_sel, random_sel, args)
        model = result.pop("model")
        summary = {"descriptor": name, "databases": [str(p) for p in sources], "merge": merge,
                   "cluster_selection": cluster_sel, "random_selection": random_sel, **result}
        (args.out / f"fe_{name}.json").write_text(json.dumps(summary, indent=1))
        print(f"{name}: train RMSE {result['train']['overall']['rmse_kB']:.3f} k_B; transfer "
              + ", ".join(f"{k} {v['overall']['rmse_kB']:.3f}" for k, v in result["transfer"].items()
                          if "overall" in v))
        if args.ship:
            shutil.copyfile(model, PRETRAINED / model.name)
            tables = HERE / "data"
            tables.mkdir(exist_ok=True)
            export_table(merged, name, tables / f"fe_shipped_{name}.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
