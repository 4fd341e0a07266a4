#!/bin/bash
# Embeds CIFAR-10 train and test with each kept model version of a run, for cross_version.py
# (issue 14: can version B's queries search version A's catalog?).
#   tools/quality/cross_version.sh runs/stream-hour/versions runs/cross-version 1 2 5 6 8 9
set -eu
cd "$(dirname "$0")/../.."
G=${GLF:-/tmp/quality-glf}
VERSIONS=$1; OUT=$2; shift 2
mkdir -p "$OUT"
for v in "$@"; do
    model=$(printf "%s/%06d" "$VERSIONS" "$v")
    for split in train test; do
        [ -f "$OUT/v$v-$split.npy" ] || $G embed --model "$model" --data /tmp/cifar/$split --out "$OUT/v$v-$split" --threads 2
    done
done
