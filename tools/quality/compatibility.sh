#!/bin/bash
# Does the compatibility term let version B's queries search version A's catalog? (issue 14)
# As glfd trains (SimCLR + ADC at its defaults, constant rate 0.5, weights averaged at 0.998,
# a version every 500 steps): a base run to step 500 is version A; it goes on to step 1000 as
# version B three ways: as it would (no term), and with the term against A at λ 1 and λ 0.3.
# One core per run, seed 0; then CIFAR-10 train and test embedded by each, and
# cross_version.py scores B's test queries in A's train catalog against B's own.
#   swift build -c release && cp .build/release/glf /tmp/quality-glf
#   tools/quality/compatibility.sh                     # results in runs/compat/
set -eu
cd "$(dirname "$0")/../.."
G=${GLF:-/tmp/quality-glf}
R=$PWD/runs/compat
mkdir -p "$R"
train() { /usr/bin/time -f "%e s wall" $G train --data /tmp/cifar/train --threads 1 "$@"; }
if [ ! -f "$R/base500/model.safetensors" ]; then
    train --method simclr --batch 256 --lr 0.5 --warmup 50 --schedule constant --average-decay 0.998 \
        --steps 500 --save-every 500 --seed 0 --out "$R/base500" > "$R/base500.train.log" 2>&1
fi
go_on() {   # name, then options for the second 500 steps
    local name=$1; shift
    [ -f "$R/$name/model.safetensors" ] && grep -q "saved step 1000" "$R/$name.train.log" && return
    rm -rf "$R/$name" && cp -r "$R/base500" "$R/$name"
    train --resume --steps 1000 --save-every 500 --out "$R/$name" "$@" > "$R/$name.train.log" 2>&1
}
go_on plain &
go_on compat1 --compatible-with "$R/base500" --compatibility-weight 1 &
go_on compat0.3 --compatible-with "$R/base500" --compatibility-weight 0.3 &
wait
# Version numbers for cross_version.py: 0 = A, 1 = B plain, 2 = B λ 1, 3 = B λ 0.3.
V=$R/vectors
mkdir -p "$V"
n=0
for model in base500 plain compat1 compat0.3; do
    for split in train test; do
        [ -f "$V/v$n-$split.npy" ] || $G embed --model "$R/$model" --data /tmp/cifar/$split --out "$V/v$n-$split" --threads 2
    done
    n=$((n + 1))
done
python3 tools/quality/cross_version.py --dir "$V" --pairs 0:1,0:2,0:3 | tee "$R/table.md"
