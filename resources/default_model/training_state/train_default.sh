#!/bin/bash
# Default model: U-Net pre-training then lite colorization on runs/ds128 (phantoms 0,1,3 train; 4 test).
cd /work/main && . .venv/bin/activate
set -x
date -u
python -m train segmentation --data runs/ds128 --out runs/default/segmentation --preset lite --max-minutes 5 --threads 1
date -u
python -m train colorization --data runs/ds128 --out runs/default --preset lite \
  --segmentation runs/default/segmentation/model.safetensors --max-minutes 45 --threads 1 \
  --set loss.lambda_l1_c_prime=10 --set train.checkpoint_every=100 --set train.sample_every=100 --set train.epochs=1000
date -u
