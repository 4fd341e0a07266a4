#!/bin/bash
# The hour's recipe with one thing changed (issue 11), alone on the idle machine, judged by wall
# clock: steps from the variant's steady speed (steps = 3,600 / seconds per step, rounded down so
# the cosine ends inside the hour), --minutes 60 as the cap. Then kNN and linear probe.
#   tools/quality/hour.sh w24 7350 --width 24          # runs/hour/simclr-adc-w24-s0{,.train.log,.knn.log,.linear.log}
#   tools/quality/hour.sh progressive16 6350 --progressive-start 16 --progressive-steps 3175
#     (0.355 s a step at 16 and 24 pixels, 0.763 at 32, from recipe_time's probes: 3,600 / 0.559 = 6,440)
# SEED=1 for the second seed.
cd "$(dirname "$0")/../.."
G=${GLF:-.build/release/glf}
NAME=$1; STEPS=$2; shift 2
out=runs/hour/simclr-adc-$NAME-s${SEED:-0}
if ! { [ -f $out.train.log ] && grep -q "^saved step" $out.train.log; }; then
  /usr/bin/time -f "%e s wall" $G train --data /tmp/cifar/train --method simclr --batch 256 --lr 0.5 --warmup 50 \
     --steps $STEPS --minutes 60 --threads 2 --seed ${SEED:-0} --keep-every-minutes 10 "$@" --out $out > $out.train.log 2>&1
fi
$G eval knn --model $out --train /tmp/cifar/train --test /tmp/cifar/test > $out.knn.log 2>&1
$G eval linear --model $out --train /tmp/cifar/train --test /tmp/cifar/test > $out.linear.log 2>&1
