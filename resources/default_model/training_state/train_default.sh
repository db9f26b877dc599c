#!/bin/bash
# How the shipped default model (v10 = v5's network + a colour calibration with MRI windows from 1 mm to
# 48 mm, 3 hidden layers, 96000 steps at a peak rate of 5e-3, the tissue-mean term over the brain's
# tissues) was trained: lite preset, 2 mm pixels, truth-paired phantom
# scans (whole bodies, 1 mm heads, skull-stripped 1 mm heads and one ScanVariety draw of each),
# training seeds 10-13, dataset test seed 14; v2 first, then v2 continued with the losses scored
# inside the body (loss.body_only) = v3; v3 continued with L1(c', c) weighted per tissue
# (loss.l1_balance=0.5) = v4; v4 continued with L1(c', c) in CIE L*a*b* (loss.l1_space=lab) and
# the learning rates decayed to 0 (optim.decay_steps=1500) = v5; chosen on whole volumes of
# validation seed 200; reported on unseen seeds 100-102 (bodies) and 100 (heads). 2-core CPU, no
# GPU. v2's log and config: log-v2.csv, config-v2.json; v3's: log-v3.csv, config-v3.json (its
# state: git show 1dc273d:resources/default_model/training_state/checkpoints/state-00003174.pt);
# v4's: log-v4.csv, config-v4.json (its state: git show fe04d5e:resources/default_model/
# training_state/checkpoints/state-00002984.pt); v5's: log.csv, config.json. v6 adds to v5's network
# the colour calibration of the 'calibrated' output, fitted on the training subjects; v7 refits it
# with more features and per-tissue weights (last command block; its loss curve: calibration_log.csv;
# v6's: git show 4dae5eb:resources/default_model/training_state/calibration_log.csv).
# v8's calibration_log.csv: git show 07d636e:resources/default_model/training_state/calibration_log.csv.
# From v9 on, run folders live in /work/runs (runs/ below); runs/ds_scans and runs/ds128 were prepared
# again with the commands above (same phantom subjects and truth; ds128's registrations moved its
# lookup-table rows by about 0.03).
# The previous model's (v1) commands: git show 4a4db62:resources/default_model/training_state/train_default.sh
set -ex
date -u
# Dataset: no registration, each scan paired with its true colorization on its own grid (~4 min).
mricolor prepare runs/ds_scans --phantom --pairs truth --scans body head head-brain --variants 1 \
    --subjects 10-13 --test-subjects 14 --planes 6000 --plane-size 128 --pixel-mm 2 --min-foreground 0.2
# The frozen U-Net S: 12 min, then resumed for 8 more (1487 steps of batch 8, class-balanced).
python -m train segmentation --data runs/ds_scans --out runs/v2/segmentation --preset lite \
    --max-minutes 12 --epochs 100 --threads 2
python -m train segmentation --data runs/ds_scans --out runs/v2/segmentation --preset lite \
    --max-minutes 8 --epochs 100 --threads 2 --resume
# Colorization: from v1's last state (git show 4a4db62:resources/default_model/training_state/
# checkpoints/state-00000200.pt), every checkpoint's model kept as a candidate.
python -m train colorization --data runs/ds_scans --out runs/v2/color --preset lite \
    --segmentation runs/v2/segmentation/model.safetensors \
    --init-from resources/default_model/training_state/checkpoints/state-00000200.pt \
    --max-minutes 70 --threads 2 \
    --set loss.lambda_l1_c_prime=40 --set train.ema_decay=0.99 --set train.checkpoint_every=250 \
    --set train.sample_every=250 --set train.epochs=1000 --set train.keep_checkpoints=3 \
    --set train.keep_exports=true --set augment.mri_noise=0.01 --set train.serve=guided
# Stopped (SIGTERM) at step 1853 to look at the candidates (states every 250 steps), then resumed:
python -m train colorization --data runs/ds_scans --out runs/v2/color --preset lite \
    --segmentation runs/v2/segmentation/model.safetensors --resume --max-minutes 33 --threads 2
# Choice on whole volumes of validation seed 200 (never a training or test subject):
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v2/color/exports/model-*.safetensors \
    --outputs guided --out runs/v2/val --volumes 200 --scans body head head-brain
# v2 = step 3587 (mean ΔE 11.91 on validation seed 200; steps 1000-3500: 14.15-12.00), exported to runs/v2_model:
python -c "from core.model.checkpoint import export_inference_checkpoint as e; \
    e('runs/v2/color/exports/model-00003587.safetensors', 'runs/v2_model', pixel_mm=2.0, serve='guided')"
# v3: v2's state continued for 75 min twice side by side (one thread each, optimiser restarted):
# the same objective (the control) and with loss.body_only (the change).
for run in whole body; do
  extra=""; [ $run = body ] && extra="--set loss.body_only=true"
  python -m train colorization --data runs/ds_scans --out runs/v3/$run --preset lite \
      --segmentation runs/v2/segmentation/model.safetensors --init-from runs/v2/color/checkpoints/state-00003587.pt \
      --max-minutes 75 --threads 1 \
      --set loss.lambda_l1_c_prime=40 --set train.ema_decay=0.99 --set train.checkpoint_every=250 \
      --set train.sample_every=250 --set train.epochs=1000 --set train.keep_checkpoints=2 \
      --set train.keep_exports=true --set augment.mri_noise=0.01 --set train.serve=guided $extra &
done; wait
# Choice on validation seed 200 among v2 and steps 1000, 2000 and the last of both runs, guided and fused
# (lowest mean ΔE: body 3174, guided, 10.95; the control's last 11.37; v2 11.91):
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v2_model \
    runs/v3/{whole,body}/exports/model-0000{1000,2000}.safetensors runs/v3/whole/exports/model-00003205.safetensors \
    runs/v3/body/exports/model-00003174.safetensors --names v2 whole1000 whole2000 body1000 body2000 whole3205 body3174 \
    --outputs guided fused --out runs/v3/val --volumes 200 --scans body head head-brain
python -c "from core.model.checkpoint import export_inference_checkpoint as e; \
    e('runs/v3/body/exports/model-00003174.safetensors', 'resources/default_model', pixel_mm=2.0, serve='guided')"
# Report on test seeds: bodies 100-102, heads 100 (with skull and brain-only), beside v2.
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v2_model resources/default_model \
    --names v2 v3 --out runs/v3/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v2_model resources/default_model \
    --names v2 v3 --out runs/v3/test_heads --volumes 100 --scans head head-brain
# v4 (with the body region grown by one voxel and closed, core.normalize.body_region, in every
# path and every evaluation from here on): v3's state continued for 75 min twice side by side
# (one thread each, optimiser restarted) with L1(c', c) weighted per tissue, p = 0.5 and 0.25.
# The control is v3's own continuation without the weights (runs/v3/body, steps 3750 and 4000).
for p in 0.5 0.25; do
  python -m train colorization --data runs/ds_scans --out runs/v4/bal$p --preset lite \
      --segmentation runs/v2/segmentation/model.safetensors \
      --init-from runs/v3/body/checkpoints/state-00003174.pt \
      --max-minutes 75 --threads 1 \
      --set loss.lambda_l1_c_prime=40 --set train.ema_decay=0.99 --set train.checkpoint_every=250 \
      --set train.sample_every=250 --set train.epochs=1000 --set train.keep_checkpoints=2 \
      --set train.keep_exports=true --set augment.mri_noise=0.01 --set train.serve=guided \
      --set loss.body_only=true --set loss.l1_balance=$p &
done; wait
# Choice on validation seed 200 (lowest mean ΔE: bal0.5 step 2984, 9.85; v3 10.19):
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints resources/default_model \
    runs/v4/bal0.5/exports/model-0000{1000,2000,2500,2984}.safetensors runs/v4/bal0.25/exports/model-0000{1000,2000,2977}.safetensors \
    runs/v3/body/exports/model-0000{3750,4000}.safetensors \
    --names v3 bal0.5_1000 bal0.5_2000 bal0.5_2500 bal0.5_2984 bal0.25_1000 bal0.25_2000 bal0.25_2977 v3cont_3750 v3cont_4000 \
    --outputs guided --out runs/v4/val --volumes 200 --scans body head head-brain
python -c "from core.model.checkpoint import export_inference_checkpoint as e; \
    e('runs/v4/bal0.5/exports/model-00002984.safetensors', 'resources/default_model', pixel_mm=2.0, serve='guided')"
# Report on test seeds, beside v3:
python -c "from core.model.checkpoint import export_inference_checkpoint as e; \
    e('runs/v3/body/exports/model-00003174.safetensors', 'runs/v3_model', pixel_mm=2.0, serve='guided')"
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v3_model resources/default_model \
    --names v3 v4 --out runs/v4/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v3_model resources/default_model \
    --names v3 v4 --out runs/v4/test_heads --volumes 100 --scans head head-brain
# v5 (with the guided filter fitted over the body's voxels only, eps 1e-4, in every path and every
# evaluation from here on; core/inference/fusion.py): v4's state continued, learning rates decayed
# linearly to 0 (optim.decay_steps). First two runs side by side, one thread each: v4's objective
# ("decay", 2800 steps planned, 2705 in its 80 min) and lambda_l1_c_prime 80 ("decay_l1x2", stopped
# at step 1000 to free its thread); then, in that thread, L1(c', c) in CIE L*a*b* ("lab": lambda 47,
# 40 x the RGB/Lab L1 ratio 1.18 of v4's c' on 64 test planes).
for run in decay decay_l1x2; do
  extra=""; [ $run = decay_l1x2 ] && extra="--set loss.lambda_l1_c_prime=80"
  python -m train colorization --data runs/ds_scans --out runs/v6/$run --preset lite \
      --segmentation runs/v2/segmentation/model.safetensors \
      --init-from runs/v4/bal0.5/checkpoints/state-00002984.pt \
      --max-minutes 80 --max-steps 2800 --threads 1 \
      --set loss.lambda_l1_c_prime=40 --set train.ema_decay=0.99 --set train.checkpoint_every=250 \
      --set train.sample_every=250 --set train.epochs=1000 --set train.keep_checkpoints=2 \
      --set train.keep_exports=true --set augment.mri_noise=0.01 --set train.serve=guided \
      --set loss.body_only=true --set loss.l1_balance=0.5 --set optim.decay_steps=2800 $extra &
done
python -m train colorization --data runs/ds_scans --out runs/v6/lab --preset lite \
    --segmentation runs/v2/segmentation/model.safetensors \
    --init-from runs/v4/bal0.5/checkpoints/state-00002984.pt \
    --max-minutes 55 --max-steps 1500 --threads 1 \
    --set loss.lambda_l1_c_prime=47 --set train.ema_decay=0.99 --set train.checkpoint_every=250 \
    --set train.sample_every=250 --set train.epochs=1000 --set train.keep_checkpoints=2 \
    --set train.keep_exports=true --set augment.mri_noise=0.01 --set train.serve=guided \
    --set loss.body_only=true --set loss.l1_balance=0.5 --set optim.decay_steps=1500 --set loss.l1_space=lab
wait
# Choice on validation seed 200 with the shipped filter (lowest mean ΔE: lab step 1500, 9.47; decay's
# last 9.55; v4 9.69; earlier readings with the radius-2 filter: decay_l1x2 step 1000 9.53,
# decay steps 1000/2000/2500 9.62/9.54/9.52, lab step 1000 9.49):
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v4/v4_model \
    runs/v6/lab/exports/model-00001500.safetensors runs/v6/decay/exports/model-00002705.safetensors \
    --names v4 lab_1500 decay_2705 --outputs guided --out runs/v6/val_r3 --volumes 200 --scans body head head-brain
python -c "from core.model.checkpoint import export_inference_checkpoint as e; \
    e('runs/v6/lab/exports/model-00001500.safetensors', 'resources/default_model', pixel_mm=2.0, serve='guided')"
# Report on test seeds, beside v4 (runs/v4/v4_model: v4's export):
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v4/v4_model resources/default_model \
    --names v4 v5 --out runs/v6/test_heads --volumes 100 --scans head head-brain
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v4/v4_model resources/default_model \
    --names v4 v5 --out runs/v6/test_bodies --volumes 100-102 --scans body
# v6: the colour calibration, fitted after the GAN on every training scan of runs/ds_scans (seeds
# 10-13, all variants; 150000 voxels each, 128 hidden units, 24000 steps at 1e-2: the defaults,
# chosen on validation seed 200 with runs/v7/sweep.py), then chosen over v5 on validation seed 200.
mkdir -p runs/v7/v5_model && cp resources/default_model/{model.safetensors,model.json,labels.csv} runs/v7/v5_model/
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v7/cal_v6 --threads 2
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v7/cal_v6 \
    --names v6 --outputs guided calibrated --out runs/v7/val_v6 --volumes 200 --scans body head head-brain
cp runs/v7/cal_v6/model.safetensors runs/v7/cal_v6/model.json runs/v7/cal_v6/labels.csv resources/default_model/
cp runs/v7/cal_v6/calibration_log.csv resources/default_model/training_state/
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v7/v5_model runs/v7/cal_v6 \
    --names v5 v6 --out runs/v7/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v7/v5_model runs/v7/cal_v6 \
    --names v5 v6 --out runs/v7/test_heads --volumes 100 --scans head head-brain
# v7: the calibration refitted with calibrate's new defaults (MRI context 3-48 mm, the guided
# colour's context 6/12/24 mm, the body's share 12/24/48 mm, the MRI's spread 3 mm, --balance 0.25,
# 48000 steps; features chosen on validation seed 200 with runs/v7/sweep2.py, sweep3.py, sweep4.py on
# cached features), then chosen over v6, --balance 0.25 alone (runs/v7/cal_b025) and the same fit at
# 24000 steps (runs/v8/cal_v7) on validation seed 200.
# (cal_b025 was run as "--balance 0.25" and cal_v7 without --steps when they were the defaults;
# written here with the flags that give the same fits under today's defaults.)
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v7/cal_b025 --balance 0.25 \
    --context-mm 3 6 12 --colour-mm --body-mm --spread-mm --steps 24000 --threads 2
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v7/cal_b025 \
    --names b025 --outputs guided calibrated --out runs/v7/val_b025 --volumes 200 --scans body head head-brain
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v8/cal_v7 --steps 24000 --threads 2
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v8/cal_v7 \
    --names v7 --outputs guided calibrated --out runs/v8/val_v7 --volumes 200 --scans body head head-brain
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v8/cal_v7_48k --steps 48000 --threads 2
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v8/cal_v7_48k \
    --names v7_48k --outputs calibrated --out runs/v8/val_v7_48k --volumes 200 --scans body head head-brain
cp runs/v8/cal_v7_48k/model.safetensors runs/v8/cal_v7_48k/model.json runs/v8/cal_v7_48k/labels.csv resources/default_model/
cp runs/v8/cal_v7_48k/calibration_log.csv resources/default_model/training_state/
# Report on test seeds (the 24000-step fit was tested beside v6 before the 48000-step one existed):
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v7/cal_v6 runs/v8/cal_v7 \
    --names v6 v7 --out runs/v8/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v7/cal_v6 runs/v8/cal_v7 \
    --names v6 v7 --out runs/v8/test_heads --volumes 100 --scans head head-brain
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v8/cal_v7_48k \
    --names v7 --out runs/v8/test_bodies_48k --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v8/cal_v7_48k \
    --names v7 --out runs/v8/test_heads_48k --volumes 100 --scans head head-brain
# v8: the same fit at 96000 steps (now the default), chosen over v7 on validation seed 200, then tested.
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v9/cal_96k --steps 96000 --threads 2
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v9/cal_96k \
    --names v7_96k --outputs calibrated --out runs/v9/val_96k --volumes 200 --scans body head head-brain
cp runs/v9/cal_96k/model.safetensors runs/v9/cal_96k/model.json runs/v9/cal_96k/labels.csv resources/default_model/
cp runs/v9/cal_96k/calibration_log.csv resources/default_model/training_state/
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v9/cal_96k \
    --names v7_96k --out runs/v9/test_bodies_96k --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v9/cal_96k \
    --names v7_96k --out runs/v9/test_heads_96k --volumes 100 --scans head head-brain
# v8's own time and paper metrics (benchmarks/bench_colorize.py --volume head|default, bench_viewer.py):
python -m train evaluate --data runs/ds_scans --checkpoints resources/default_model --names v8 --planes 200 \
    --out runs/v10/planes
# After v8, on validation seed 200 only, not shipped: 192000 steps, and the tissue-mean term.
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v10/cal_192k --steps 192000
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v10/cal_192k \
    --names v8_192k --outputs calibrated --out runs/v10/val_192k --volumes 200 --scans body head head-brain
for w in 0.05 0.1 0.25; do
    python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v10/cal_96k_tm$w \
        --steps 96000 --tissue-mean $w --threads 1
done
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v10/cal_96k_tm0.05 \
    runs/v10/cal_96k_tm0.1 --names tm005 tm01 --outputs calibrated --out runs/v10/val_tm --volumes 200 \
    --scans body head head-brain
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v10/cal_96k_tm0.25 \
    --names tm025 --outputs calibrated --out runs/v10/val_tm025 --volumes 200 --scans body head head-brain
# W 0.25 met every target on validation, so it was tested; it missed the bodies' target there: v8 stays.
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v10/cal_96k_tm0.25 \
    --names tm025 --out runs/v10/test_bodies_tm025 --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v10/cal_96k_tm0.25 \
    --names tm025 --out runs/v10/test_heads_tm025 --volumes 100 --scans head head-brain
# two more validation bodies, afterwards, for the next choices
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints resources/default_model \
    runs/v10/cal_96k_tm0.25 --names v8 tm025 --outputs calibrated --out runs/v10/val_bodies_201 \
    --volumes 201-202 --scans body
# 256 units, alone and with the tissue-mean term at 0.1, scored on validation 200-202: no gain, v8 stays.
for w in 0 0.1; do
    python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v11/cal_96k_h256_tm$w \
        --steps 96000 --hidden 256 --tissue-mean $w --threads 1
done
for scans in body "head head-brain"; do
    mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints resources/default_model \
        runs/v11/cal_96k_h256_tm0 runs/v11/cal_96k_h256_tm0.1 --names v8 h256 h256tm01 --outputs calibrated \
        --out runs/v11/val_$([ "$scans" = body ] && echo bodies || echo heads) --volumes 200-202 --scans $scans
done
# Three hidden layers (the best of a cached depth sweep, runs/v11/sweep8.py), scored on validation 200-202.
python -m train calibrate --checkpoint runs/v7/v5_model --data runs/ds_scans --out runs/v11/cal_96k_l3 --steps 96000 \
    --layers 3
for scans in body "head head-brain"; do
    mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v11/cal_96k_l3 --names l3 \
        --outputs calibrated --out runs/v11/val_$([ "$scans" = body ] && echo bodies || echo heads)_l3 \
        --volumes 200-202 --scans $scans
done
# v9: the 3-layer calibration refitted from the shipped v8 (same network) diverged at 1e-2 (loss 0.043 ->
# 0.068 at step ~24000, killed); fitted at 5e-3, alone and with the tissue-mean term at 0.25, side by side:
for w in 0 0.25; do
    python -m train calibrate --checkpoint resources/default_model --data runs/ds_scans \
        --out runs/v12/cal_96k_l3_lr5e-3_tm$w --steps 96000 --layers 3 --lr 5e-3 --tissue-mean $w --threads 1 &
done; wait
# Choice on validation 200-202 (lowest mean over the nine scans: tm0, 7.29; v8 7.31; tm0.25 7.38):
for scans in body "head head-brain"; do
    out=$([ "$scans" = body ] && echo bodies || echo heads)
    mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v12/cal_96k_l3_lr5e-3_tm0 \
        runs/v12/cal_96k_l3_lr5e-3_tm0.25 --names l3 l3tm025 --outputs calibrated --out runs/v12/val_$out \
        --volumes 200-202 --scans $scans
    mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints resources/default_model --names v8 \
        --outputs calibrated --out runs/v12/val_${out}_v8 --volumes 200-202 --scans $scans
done
cp runs/v12/cal_96k_l3_lr5e-3_tm0/{model.safetensors,model.json,labels.csv} resources/default_model/
cp runs/v12/cal_96k_l3_lr5e-3_tm0/calibration_log.csv resources/default_model/training_state/
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v12/cal_96k_l3_lr5e-3_tm0 \
    --names l3 --out runs/v12/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v12/cal_96k_l3_lr5e-3_tm0 \
    --names l3 --out runs/v12/test_heads --volumes 100 --scans head head-brain
python -m train evaluate --data runs/ds_scans --checkpoints resources/default_model --names v9 --planes 200 \
    --out runs/v12/planes
# v10: screened on cached voxels of validation 200 (runs/v13/sweep2.py; 24000 steps at 5e-3): the 1-2 mm
# MRI windows, and the tissue-mean term over every tissue or the brain's only; then fitted side by side:
for term in "" "--tissue-mean 0.25 --mean-tissues grey_matter white_matter csf deep_grey_matter"; do
    python -m train calibrate --checkpoint resources/default_model --data runs/ds_scans \
        --out runs/v13/cal_fine$([ -n "$term" ] && echo _brain0.25) --steps 96000 --layers 3 --lr 5e-3 \
        --context-mm 1 2 3 6 12 24 48 --spread-mm 1 3 $term --threads 1 &
done; wait
# Choice on validation 200-202 by runs/v13/rule.md (most targets met, then the lowest mean over nine scans):
# fine_brain025 meets 5 of 6 (CSF 7.74), fine and v9 4 of 6.
for scans in body "head head-brain"; do
    mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v13/cal_fine \
        runs/v13/cal_fine_brain0.25 --names fine fine_brain025 --outputs calibrated \
        --out runs/v13/val_$([ "$scans" = body ] && echo bodies || echo heads) --volumes 200-202 --scans $scans
done
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v13/cal_fine_brain0.25 \
    --names fine_brain025 --out runs/v13/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans --checkpoints runs/v13/cal_fine_brain0.25 \
    --names fine_brain025 --out runs/v13/test_heads --volumes 100 --scans head head-brain
cp runs/v13/cal_fine_brain0.25/{model.safetensors,model.json,labels.csv} resources/default_model/
cp runs/v13/cal_fine_brain0.25/calibration_log.csv resources/default_model/training_state/
python -m train evaluate --data runs/ds_scans --checkpoints resources/default_model --names v10 --planes 200 \
    --out runs/v13/planes
date -u
# v11: v10's calibration settings fitted on ten subjects: the network's training seeds 10-13 and six
# phantom seeds it never saw (20-25; seed 26 is the test subject prepare requires, unused).
mricolor prepare runs/ds_cal --phantom --pairs truth --scans body head head-brain --variants 1 \
    --subjects 20-25 --test-subjects 26 --planes 200 --plane-size 128 --pixel-mm 2 --min-foreground 0.2
python -m train calibrate --checkpoint resources/default_model --data runs/ds_scans runs/ds_cal \
    --out runs/v14/cal_more --steps 96000 --layers 3 --lr 5e-3 --context-mm 1 2 3 6 12 24 48 \
    --spread-mm 1 3 --tissue-mean 0.25 --mean-tissues grey_matter white_matter csf deep_grey_matter
# Choice on validation 200-202 by runs/v14/rule.md: more meets 6 of 6 (v10 5 of 6); then tested once.
for scans in body "head head-brain"; do
    mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans runs/ds_cal --checkpoints runs/v14/cal_more \
        --names more --outputs calibrated --out runs/v14/val_$([ "$scans" = body ] && echo bodies || echo heads)_more \
        --volumes 200-202 --scans $scans
done
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans runs/ds_cal --checkpoints runs/v14/cal_more \
    --names more --out runs/v14/test_bodies --volumes 100-102 --scans body
mricolor evaluate --data runs/ds128 --trained-on runs/ds_scans runs/ds_cal --checkpoints runs/v14/cal_more \
    --names more --out runs/v14/test_heads --volumes 100 --scans head head-brain
cp runs/v14/cal_more/{model.safetensors,model.json,labels.csv} resources/default_model/
cp runs/v14/cal_more/calibration_log.csv resources/default_model/training_state/
python -m train evaluate --data runs/ds_scans --checkpoints resources/default_model --names v11 --planes 200 \
    --out runs/v14/planes
