#!/bin/bash
# Recipe variants at equal wall clock (issue 11: what learns most per CPU-hour: width, depth,
# progressive resolution, small crops). Each line of a list runs ALONE on the idle machine, two
# threads, for the same minutes; its cosine ends inside them at a step count set from probes of
# its own speed. Then kNN on CIFAR-10 test.
#
# A list line: <name> <glf train options...> [progressive START FRACTION]
#   "progressive 16 0.5" ramps the views from 16 pixels to the full side over the first half of
#   the steps (glf train --progressive-start 16 --progressive-steps S/2).
# Steps: each side the run will see is probed for 1.5 minutes (a constant rate, nothing kept); with
# t(s) the seconds per step at side s, a ramp spends equal steps at each side START, START + 8, …
# below the full side, so
#   S = 60 · minutes / (FRACTION · mean t(ramp sides) + (1 − FRACTION) · t(full)).
# Common options: CIFAR-10 train, SimCLR + ADC at the recipe (batch 256, SGD lr 0.5, 50 warm-up
# steps, cosine), seed 0, --threads 2; a line adds what it varies.
#   swift build -c release && cp .build/release/glf /tmp/quality-glf
#   tools/quality/recipe_time.sh tools/quality/recipe_time.txt 15      # results in runs/recipe_time/
#   JUDGE=steps tools/quality/recipe_time.sh ...   # probes on the idle machine, runs judged by steps
set -u
cd "$(dirname "$0")/../.."
G=${GLF:-/tmp/quality-glf}
LIST=$1; MINUTES=$2; LINES=${3:-1000}     # LINES: only the first so many lines not finished yet
R=$PWD/runs/$(basename "$LIST" .txt)
COMMON="--data /tmp/cifar/train --method simclr --batch 256 --lr 0.5 --warmup 50 --threads 2 --seed 0"
mkdir -p "$R"
seconds_per_step() {   # options... → seconds per step of a 1.5-minute probe (the first 20 steps left out)
    local probe; probe=$(mktemp -d)
    $G train $COMMON --schedule constant --steps 1000000 --minutes 1.5 --progress-every 10 --save-every 1000000 \
        --out "$probe" "$@" 2>&1 | awk '/^step/ && $2 > 20 { sum += $3; n++ } END { if (n) printf "%.5f\n", 256 / (sum / n) }'
    rm -rf "$probe"
}
finished() { [ -f "$R/$1.knn.log" ] && grep -q "kNN top-1" "$R/$1.knn.log"; }
lines() {
    grep -v '^\s*#' "$LIST" | grep -v '^\s*$' | while read -r name rest; do
        finished "$name" || echo "$name $rest"
    done | head -n "$LINES"
}
# First every pending line's probes (these need the idle machine), each line's steps kept in
# $R/<name>.steps; then the runs.
lines | while read -r name rest; do
    [ -f "$R/$name.steps" ] && continue
    rest=" $rest"
    options=${rest%% progressive *}
    if [[ "$rest" == *" progressive "* ]]; then
        read -r start fraction <<< "${rest##*progressive }"
        full=$(seconds_per_step $options)
        ramp=0; sides=0
        for ((side = start; side < 32; side += 8)); do
            t=$(seconds_per_step $options --progressive-start $side --progressive-steps 1000000)
            ramp=$(python3 -c "print($ramp + $t)"); sides=$((sides + 1))
        done
        steps=$(python3 -c "print(int(60 * $MINUTES / ($fraction * $ramp / $sides + (1 - $fraction) * $full)))")
        echo "$(date -u +%H:%M:%S) $name: full $full s/step, ramp mean $(python3 -c "print($ramp / $sides)") s/step → $steps steps" >> "$R/driver.log"
    else
        t=$(seconds_per_step $options)
        steps=$(python3 -c "print(int(60 * $MINUTES / $t))")
        echo "$(date -u +%H:%M:%S) $name: $t s/step → $steps steps" >> "$R/driver.log"
    fi
    echo "$steps" > "$R/$name.steps"
done
# By wall clock (the default) each run is capped at the minutes and needs the idle machine; with
# JUDGE=steps the cap is left out, the cosine ends at the probed steps whatever else runs beside.
cap="--minutes $MINUTES"; [ "${JUDGE:-}" = steps ] && cap=""
lines | while read -r name rest; do
    rest=" $rest"
    options=${rest%% progressive *}
    steps=$(cat "$R/$name.steps")
    if [[ "$rest" == *" progressive "* ]]; then
        read -r start fraction <<< "${rest##*progressive }"
        options="$options --progressive-start $start --progressive-steps $(python3 -c "print(int($steps * $fraction))")"
    fi
    echo "$(date -u +%H:%M:%S) $name: $steps steps ${cap:-judged by steps}" >> "$R/driver.log"
    /usr/bin/time -f "%e s wall" $G train $COMMON $options --steps "$steps" $cap --out "$R/$name" > "$R/$name.train.log" 2>&1
    $G eval knn --model "$R/$name" --train /tmp/cifar/train --test /tmp/cifar/test --threads 2 > "$R/$name.knn.log" 2>&1
done
echo "$(date -u +%H:%M:%S) done" >> "$R/driver.log"
