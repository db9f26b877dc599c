#!/bin/bash
# How the shipped default model was trained (lite preset, phantoms 0, 1, 3; held-out phantom 4).
# Phase 1 and phase 2 are two runs; phase 2 starts from phase 1's step-1400 state (--init-from)
# with a stronger L1 pull of c' towards the registered cryosection and a shorter EMA.
set -ex
date -u
mricolor prepare runs/ds128 --phantom --subjects 0,1,3 --test-subjects 4 --planes 4000 \
    --plane-size 128 --pixel-mm 3 --threads 1 --force
python -m train segmentation --data runs/ds128 --out runs/default/segmentation --preset lite \
    --max-minutes 5 --threads 1
# Phase 1: 1400 steps (stopped after the step-1400 checkpoint; 800 steps, then --resume).
python -m train colorization --data runs/ds128 --out runs/default --preset lite \
    --segmentation runs/default/segmentation/model.safetensors --max-steps 1400 --threads 1 \
    --set loss.lambda_l1_c_prime=10 --set train.checkpoint_every=100 --set train.sample_every=100 \
    --set train.epochs=1000
# Phase 2: a new run from phase 1's state (stopped by its --max-minutes budget; resumed once to
# go from 1 to 2 threads when the machine freed up).
python -m train colorization --data runs/ds128 --out runs/default_ft --preset lite \
    --segmentation runs/default/segmentation/model.safetensors --init-from runs/default \
    --max-minutes 68 --threads 2 \
    --set loss.lambda_l1_c_prime=40 --set train.ema_decay=0.99 --set train.checkpoint_every=200 \
    --set train.sample_every=200 --set train.epochs=1000
python -c "from core.colorize_volume import export_inference_checkpoint as e; \
    e('runs/default_ft/model.safetensors', 'resources/default_model', pixel_mm=3.0, serve='c_prime')"
date -u
