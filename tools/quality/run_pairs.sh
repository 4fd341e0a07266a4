#!/bin/bash
# Runs a list of `glf train` runs two at a time, one core each (both cores busy, equal conditions
# within a pair), then scores each with kNN on CIFAR-10 test. A list file has one run per line:
#   <name> <glf train arguments...>          (# starts a comment)
# Common arguments: CIFAR-10 train, batch 256, SGD 0.06, 50 warm-up steps, one thread; a line adds
# the method, --steps and whatever it varies. Results: runs/<list>/<name>.{train,knn}.log (and
# <name>.online.knn.log for the online weights of a run whose model is their average).
#   swift build -c release && cp .build/release/glf /tmp/quality-glf
#   tools/quality/run_pairs.sh tools/quality/adc_sweep.txt
set -u
cd "$(dirname "$0")/../.."
G=${GLF:-/tmp/quality-glf}
LIST=$1
R=$PWD/runs/${RUNS:-$(basename "$LIST" .txt)}     # RUNS=name: results under runs/name instead
COMMON="--data /tmp/cifar/train --batch 256 --lr 0.06 --warmup 50 --threads 1"
mkdir -p "$R"
run() {
    local name=$1; shift
    [ -f "$R/$name.knn.log" ] && grep -q "kNN top-1" "$R/$name.knn.log" && return   # done before: resumable
    /usr/bin/time -f "%e s wall" $G train $COMMON --out "$R/$name" "$@" > "$R/$name.train.log" 2>&1
    $G eval knn --model "$R/$name" --train /tmp/cifar/train --test /tmp/cifar/test --threads 1 > "$R/$name.knn.log" 2>&1
    if [ -f "$R/$name/online.safetensors" ]; then   # --average-decay: the model is the average; score the online weights too
        mkdir -p "$R/$name.online"
        cp "$R/$name/config.json" "$R/$name.online/" && cp "$R/$name/online.safetensors" "$R/$name.online/model.safetensors"
        $G eval knn --model "$R/$name.online" --train /tmp/cifar/train --test /tmp/cifar/test --threads 1 > "$R/$name.online.knn.log" 2>&1
    fi
}
mapfile -t lines < <(grep -v '^\s*#' "$LIST" | grep -v '^\s*$')
for ((i = 0; i < ${#lines[@]}; i += 2)); do
    echo "$(date -u +%H:%M:%S) ${lines[i]%% *} ${lines[i+1]:-}" | cut -d" " -f1-3 >> "$R/driver.log"
    run ${lines[i]} &
    [ -n "${lines[i+1]:-}" ] && run ${lines[i+1]} &
    wait
done
echo "$(date -u +%H:%M:%S) done" >> "$R/driver.log"
