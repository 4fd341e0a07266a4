#!/bin/bash
# Issue 15's comparison: replay policy × LPM prior on a class-incremental and a camera-like
# stream, and the i.i.d. reference, each a fresh glfd in process (`glf-bench stream`), at the same
# update budget (training images per distinct image), judged by steps: every run sees the same
# images and takes the same steps whatever runs beside it; wall times are reported, not compared.
#   tools/bench/stream_compare.sh RUNS_DIR [PER_CLASS] [UPDATES_PER_IMAGE] [SEED]
# One JSON per run in RUNS_DIR (finished runs are skipped, and those named in SKIP), then one PNG
# per order. A run is named ORDER-REPLAY-PRIOR, with -noadc for ADC off (camera-minred-pixels,
# classes-reservoir-minred-previous-noadc) and -capN for a replay capacity of N instead of
# PER_CLASS (camera-reservoir-pixels-cap250); RUNS="name ..." runs those, in that order, instead of
# the whole grid. TRAIN and TEST choose the data (default CIFAR-10 unpacked in /tmp/cifar; for
# Fashion-MNIST, IDX files as "images.gz,labels.gz").
set -u
cd "$(dirname "$0")/../.."
B=${GLF_BENCH:-.build/release/glf-bench}
R=$1; PER_CLASS=${2:-1000}; UPDATES=${3:-8}; SEED=${4:-0}
TRAIN=${TRAIN:-/tmp/cifar/train}; TEST=${TEST:-/tmp/cifar/test}
mkdir -p "$R"
common="--train $TRAIN --test $TEST --per-class $PER_CLASS --test-per-class 200 --updates-per-image $UPDATES --seed $SEED"
run() {   # name: order-replay-prior[-noadc][-capN]
    local name=$1 rest options capacity=$PER_CLASS
    [ -f "$R/$name.json" ] && return
    case " ${SKIP:-} " in *" $name "*) return ;; esac   # SKIP="name ...": measured in an earlier checkout
    rest=$name; options=""
    case $rest in *-cap[0-9]*) capacity=${rest##*-cap}; rest=${rest%-cap*} ;; esac
    case $rest in *-noadc) options="--no-adc"; rest=${rest%-noadc} ;; esac
    local order=${rest%%-*}; rest=${rest#*-}
    local prior=${rest##*-}; local replay=${rest%-*}
    echo "$(date -u +%H:%M:%S) $name" >> "$R/driver.log"
    /usr/bin/time -f "%e s wall, %M KiB max resident" $B stream $common --order $order --replay $replay --prior $prior --replay-capacity $capacity $options \
        --out "$R/$name.json" > "$R/$name.log" 2>&1
}
if [ -n "${RUNS:-}" ]; then
    for name in $RUNS; do run $name; done
else
    run iid-fifo-pixels
    # The replay policies first (on both orders, pixel prior), then the previous-version prior.
    for prior in pixels previous; do
        for order in camera classes; do
            for replay in fifo reservoir minred reservoir-minred; do run $order-$replay-$prior; done
        done
    done
fi
for order in iid classes camera; do
    ls "$R"/$order-*.json > /dev/null 2>&1 || continue
    python3 tools/bench/stream_curves.py --out "$R/$order.png" $(ls "$R"/$order-*.json | sed "s|.*/\(.*\)\.json|\1=&|")
done
echo "$(date -u +%H:%M:%S) done" >> "$R/driver.log"
