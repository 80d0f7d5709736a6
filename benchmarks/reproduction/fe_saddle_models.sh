#!/usr/bin/env bash
# The plain bcc-Fe migration model (no exact core) from the saddle database, the baseline of
# docs/REPRODUCTION.md section 7, with the command-line interface only: featurize,
# cross-validate by saddle and by whole job, test transfer to an unseen strain, train. A few
# minutes on one core once the database exists (vibentropy generate
# examples/recipes/fe_saddles.toml --db DB). The shipped model, with a core, comes from
# fe_core_migration_model.py.
#
#   bash benchmarks/reproduction/fe_saddle_models.sh [DB]
set -euo pipefail
DB=${1:-runs/saddles/fe_saddles.db}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results/saddles
PARTS='parts=[["afs", {"n_max": 8, "l_max": 4}], ["stiffness", {"potential": "fe-mendelev2003", "saddle_points": true}]]'
DESCRIPTOR=(--descriptor stack --param "$PARTS")
# jumps over barriers of at most 2 eV both ways: the rest (a few % of the stored saddles, up to
# 4.3 eV) are irrelevant to kinetics next to the 0.1-0.7 eV jumps of the same defects
JUMPS='stationary_point=saddle,dE_forward_eV<2,dE_backward_eV<2'
mkdir -p "$OUT"

vibentropy featurize "$DB" "${DESCRIPTOR[@]}" --quiet
vibentropy db-stats "$DB" --json > "$OUT/fe_saddles_db_stats.json"
# cross-validation: whole saddles (both directions of a jump on one side), then whole jobs
# (every saddle of a defect's exploration on one side)
vibentropy crossval "$DB" "${DESCRIPTOR[@]}" --target migration --select "$JUMPS" \
    --fractions 0.1 0.3 0.5 --repeats 50 --json --quiet --plot "$OUT/fe_saddles_crossval.png" \
    > "$OUT/fe_saddles_crossval.json"
vibentropy crossval "$DB" "${DESCRIPTOR[@]}" --target migration --select "$JUMPS" \
    --fractions 0.1 0.3 0.5 --repeats 50 --group-by job_id --json --quiet \
    > "$OUT/fe_saddles_crossval_by_job.json"
# transfer in 8a0 cells: -1, 0 and +1 % strain -> +2 %
vibentropy train "$DB" "${DESCRIPTOR[@]}" --target migration --select "$JUMPS,n_cells=8,strain<0.015" \
    --calibrate-std-by family,strain --quiet -o "$OUT/fe_saddles_strain_model.json"
vibentropy validate "$DB" --model "$OUT/fe_saddles_strain_model.json" --select "$JUMPS,n_cells=8,strain>0.015" \
    --json --quiet --plot "$OUT/fe_saddles_to_2pc_parity.png" > "$OUT/fe_saddles_to_2pc.json"
rm "$OUT/fe_saddles_strain_model.json"
# the plain model on every jump
vibentropy train "$DB" "${DESCRIPTOR[@]}" --target migration --select "$JUMPS" \
    --calibrate-std-by family,strain --quiet -o "$OUT/plain_migration_model.json" \
    --plot "$OUT/fe_saddles_train_parity.png"
