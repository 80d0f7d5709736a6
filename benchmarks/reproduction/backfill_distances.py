"""Record the training structures' shortest interatomic distances in the shipped Fe model files.

``vibentropy train`` records ``min_distance_range_A`` (Å: [lowest, highest] over the training
structures of each structure's shortest interatomic distance, periodic images included) and
``min_distance_n_structures`` in a model's training summary. The shipped Fe models were trained
before that; this script computes the same quantity from the same training rows and writes it
into their summaries, leaving every other byte of the files as it is (weights, covariance,
metrics: the models predict exactly what they predicted before):

    python benchmarks/reproduction/backfill_distances.py --workdir /tmp/fe_dbs

The training rows of a model are those of its table ``data/fe_shipped_<label>.npz`` (source
database, energy and atom count of each row); their structures are looked up in the stored
databases ``data/*.db.xz`` (decompressed into ``--workdir``). Those hold every cluster row but
only every fourth row of ``fe_random`` and none of ``fe_random_dense``, so the record covers the
stored structures only; ``min_distance_n_structures`` says how many. A structure left out can
only lower the true training minimum, so the check made against the record warns at least as
early as one made against every training structure.
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PRETRAINED = HERE.parents[1] / "ase_vibentropy" / "pretrained"
#: A stored database whose rows the tables name by the stem of the database they came from.
TABLE_SOURCE = {"fe_random.subset": "fe_random"}


def decompress(data: Path, workdir: Path) -> list[Path]:
    """Every ``data/*.db.xz``, decompressed into ``workdir`` (kept if already there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for packed in sorted(data.glob("*.db.xz")):
        target = workdir / packed.name.removesuffix(".xz")
        if not target.exists():
            with lzma.open(packed) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        out.append(target)
    return out


def table_distances(table: Path, databases: list[Path]) -> dict:
    """The distance record of the training rows of ``table`` whose structures ``databases`` hold.

    A row of the table is matched to the stored row of its source database with the same
    energy (eV, bit-exact: the table copies it) and atom count. Returns
    ``{"min_distance_range_A": [lowest, highest], "min_distance_n_structures": n,
    "n_table_rows": rows of the table}``.
    """
    import ase.db

    from ase_vibentropy.structure import shortest_distance

    rows = np.load(table, allow_pickle=False)
    keys = [(str(s), float(e), int(n)) for s, e, n in zip(rows["source"], rows["energy_eV"], rows["n_atoms"])]
    wanted = set(keys)
    closest: dict[tuple, float] = {}
    for path in databases:
        stem = path.name.removesuffix(".db")
        source = TABLE_SOURCE.get(stem, stem)
        for row in ase.db.connect(str(path)).select():
            key = (source, float(row.energy), row.natoms)
            if key in wanted and key not in closest:
                closest[key] = shortest_distance(row.toatoms())
    found = [closest[key] for key in keys if key in closest]
    if not found:
        sys.exit(f"no training row of {table.name} is stored in {', '.join(p.name for p in databases)}")
    return {"min_distance_range_A": [min(found), max(found)], "min_distance_n_structures": len(found),
            "n_table_rows": len(keys)}


def backfill(label: str, databases: list[Path]) -> dict:
    """Write the distance record of model ``fe-mendelev2003-<label>`` into its training summary
    (nothing else in the file changes); return the record."""
    from ase_vibentropy.model_io import _dumps

    record = table_distances(HERE / "data" / f"fe_shipped_{label}.npz", databases)
    path = PRETRAINED / f"fe-mendelev2003-{label}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["training_summary"].update({k: record[k] for k in ("min_distance_range_A", "min_distance_n_structures")})
    path.write_text(_dumps(doc) + "\n", encoding="utf-8")  # the layout save_model writes
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="folder for the decompressed databases (not in the repository)")
    parser.add_argument("--labels", nargs="+", metavar="LABEL",
                        help="shipped models fe-mendelev2003-LABEL (default: every one with a table)")
    args = parser.parse_args(argv)
    labels = args.labels or sorted(p.stem.removeprefix("fe_shipped_") for p in (HERE / "data").glob("fe_shipped_*.npz"))
    databases = decompress(HERE / "data", args.workdir)
    for label in labels:
        record = backfill(label, databases)
        low, high = record["min_distance_range_A"]
        print(f"fe-mendelev2003-{label}: shortest distances {low:.4f}..{high:.4f} Å over "
              f"{record['min_distance_n_structures']} of {record['n_table_rows']} training structures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
