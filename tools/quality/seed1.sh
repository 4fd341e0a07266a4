#!/bin/bash
# Seed 1 of the hour recipe, with and without ADC, one after the other (2 threads each), then scored.
cd "$(dirname "$0")/../.."
G=${GLF:-.build/release/glf}
R=runs/hour
for variant in adc noadc; do
  extra=""; [ $variant = noadc ] && extra="--no-adc"
  out=$R/simclr-$variant-s1
  [ -f $out.train.log ] && grep -q "^saved step 4400" $out.train.log && continue
  echo "$(date -u +%T) train $variant" >> $R/seed1.driver.log
  /usr/bin/time -f "%e s wall" $G train --data /tmp/cifar/train --method simclr --batch 256 --lr 0.5 --warmup 50 \
     --steps 4400 --threads 2 --seed 1 --keep-every-minutes 10 $extra --out $out > $out.train.log 2>&1
done
for variant in adc noadc; do
  out=$R/simclr-$variant-s1
  echo "$(date -u +%T) eval $variant" >> $R/seed1.driver.log
  $G eval knn --model $out --train /tmp/cifar/train --test /tmp/cifar/test > $out.knn.log 2>&1
  $G eval linear --model $out --train /tmp/cifar/train --test /tmp/cifar/test > $out.linear.log 2>&1
done
echo "$(date -u +%T) done" >> $R/seed1.driver.log
