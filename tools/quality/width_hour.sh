#!/bin/bash
# The hour's recipe at another encoder width (issue 11: width 24 beat width 32 by 2.48 kNN points at
# 15 equal minutes, runs/recipe_time). Alone on the idle machine, judged by wall clock: steps from
# the width's steady speed in its 15-minute run (steps = 3,600 / seconds per step, rounded down so
# the cosine ends inside the hour), --minutes 60 as the cap. Then kNN and linear probe.
#   tools/quality/width_hour.sh 24 7350        # runs/hour/simclr-adc-w24-s0{,.train.log,.knn.log,.linear.log}
cd "$(dirname "$0")/../.."
G=${GLF:-.build/release/glf}
WIDTH=$1; STEPS=$2; SEED=${3:-0}
out=runs/hour/simclr-adc-w$WIDTH-s$SEED
if ! { [ -f $out.train.log ] && grep -q "^saved step" $out.train.log; }; then
  /usr/bin/time -f "%e s wall" $G train --data /tmp/cifar/train --method simclr --batch 256 --lr 0.5 --warmup 50 \
     --width $WIDTH --steps $STEPS --minutes 60 --threads 2 --seed $SEED --keep-every-minutes 10 --out $out > $out.train.log 2>&1
fi
$G eval knn --model $out --train /tmp/cifar/train --test /tmp/cifar/test > $out.knn.log 2>&1
$G eval linear --model $out --train /tmp/cifar/train --test /tmp/cifar/test > $out.linear.log 2>&1
