#!/bin/bash
# The daemon's hour (issue 11): glfd fresh on its defaults, the 50,000 CIFAR-10 training JPEGs
# streamed in with `glfctl ingest`, every published version kept as it appears, and after
# MINUTES (default 60) the latest version scored with `glf eval knn` (and `glf eval linear`).
# Judged by wall clock: run it on an idle machine (no build or test beside it).
#   swift build -c release && tools/quality/stream_hour.sh runs/stream-hour [MINUTES]
# Results in the run directory: glfd.log, ingest.log, versions/ (each version's model directory),
# versions.tsv (minutes since start, step, images seen, directory: what tools/quality/curves.py
# reads), final.knn.log, final.linear.log; with training.average_decay on, a version's model is
# the weights' average and its online weights are scored too (final-online.knn.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BIN=${BIN:-$REPO/.build/release}
OUT=$(realpath -m "${1:-runs/stream-hour}")
MINUTES=${2:-60}
TRAIN=${TRAIN:-/tmp/cifar/train}; TEST=${TEST:-/tmp/cifar/test}
[ -e "$OUT" ] && { echo "$OUT exists: choose a new run directory" >&2; exit 2; }
mkdir -p "$OUT/versions" "$OUT/work"
printf "minutes\tstep\timages\tdirectory\n" > "$OUT/versions.tsv"

cd "$OUT/work"                                    # ./state here: the embedded default
"$BIN/glfd" > "$OUT/glfd.log" 2>&1 &
GLFD=$!
trap 'kill $GLFD 2>/dev/null || true' EXIT
START=$(date +%s)
until grep -q "serving glfd/1" "$OUT/glfd.log"; do sleep 0.2; kill -0 $GLFD || { cat "$OUT/glfd.log"; exit 1; }; done
echo "glfd up after $(( $(date +%s) - START )) s"

# Keep each published version before models.keep retires it; its step is in training.json.
keep_versions() {
    for dir in state/models/[0-9]*; do
        [ -d "$dir" ] && [ -f "$dir/training.json" ] || continue
        name=$(basename "$dir")
        [ -d "$OUT/versions/$name" ] && continue
        cp -r "$dir" "$OUT/versions/$name"
        step=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$OUT/versions/$name/training.json")
        batch=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['config']['batch'])" "$OUT/versions/$name/training.json")
        minutes=$(python3 -c "print(round(($(date +%s) - $START) / 60, 2))")
        printf "%s\t%s\t%s\tversions/%s\n" "$minutes" "$step" "$((step * batch))" "$name" >> "$OUT/versions.tsv"
        echo "version $name: step $step at $minutes min"
    done
}

"$BIN/glfctl" ingest "$TRAIN" --source cifar10 > "$OUT/ingest.log" 2>&1
echo "ingested in $(( $(date +%s) - START )) s: $(tail -n 1 "$OUT/ingest.log")"
while [ $(( $(date +%s) - START )) -lt $(( MINUTES * 60 )) ]; do
    keep_versions
    sleep 10
done
keep_versions
"$BIN/glfctl" status > "$OUT/status.txt" 2>&1 || true
kill -TERM $GLFD; wait $GLFD || true
trap - EXIT
keep_versions
LATEST=$(tail -n 1 "$OUT/versions.tsv" | cut -f4)
echo "latest version: $LATEST"
"$BIN/glf" eval knn --model "$OUT/$LATEST" --train "$TRAIN" --test "$TEST" | tee "$OUT/final.knn.log"
"$BIN/glf" eval linear --model "$OUT/$LATEST" --train "$TRAIN" --test "$TEST" | tee "$OUT/final.linear.log"
if [ -f "$OUT/$LATEST/online.safetensors" ]; then          # the average's online weights, as a model directory
    mkdir -p "$OUT/final-online"
    cp "$OUT/$LATEST/config.json" "$OUT/final-online/"
    cp "$OUT/$LATEST/online.safetensors" "$OUT/final-online/model.safetensors"
    "$BIN/glf" eval knn --model "$OUT/final-online" --train "$TRAIN" --test "$TEST" | tee "$OUT/final-online.knn.log"
fi
