"""Fit the colour calibration of a trained model on phantom subjects: ``python -m train calibrate``.

The model's ``guided`` output is corrected pixel by pixel by a small map learnt from whole scans
and their true colorizations (`core.model.calibration`, `core.training.calibration`): the
training split of each dataset given, every scan variant included (resampled, re-weighted,
skull-stripped), read from the dataset folders. The first is the dataset the model learnt from;
further ones, prepared from phantom seeds the model never saw, show the calibration the errors
the model makes on new subjects (on its own training subjects it errs less than on a user's scan).
OUT gets an inference checkpoint (G_m→ĉ and the calibration,
serving ``calibrated``; ``model.json`` and ``labels.csv`` beside it) and ``calibration_log.csv``
(the loss curve). Choose between it and the uncalibrated model on validation subjects with
``mricolor evaluate --volumes SEEDS --outputs guided calibrated``.

Only the datasets' training subjects are fitted on (all of them by default), so the subjects that
score the model later stay unseen; ``calibration_fit`` records their seeds, and ``mricolor evaluate
--volumes`` refuses them.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from core.errors import InputError
from core.training.calibration import CalibrationSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="the trained model (a checkpoint file or folder, e.g. a run's model.safetensors)")
    parser.add_argument("--data", required=True, nargs="+", metavar="DATASET",
                        help="the dataset the model was trained on, then any further truth-paired phantom "
                             "datasets of seeds it never saw: the training splits' phantom seeds are the "
                             "subjects fitted on (never validation or test seeds)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the calibrated checkpoint")
    parser.add_argument("--seeds", metavar="SEEDS",
                        help="only these training seeds (e.g. 10-13; default: every training seed of each --data)")
    parser.add_argument("--scans", nargs="+", metavar="KIND",
                        help="only these kinds of phantom scan, e.g. body head head-brain (default: all)")
    parser.add_argument("--samples-per-scan", type=int, default=CalibrationSettings.samples_per_scan,
                        help=f"body voxels drawn from each scan (default: {CalibrationSettings.samples_per_scan})")
    parser.add_argument("--steps", type=int, default=CalibrationSettings.steps,
                        help=f"optimiser steps (default: {CalibrationSettings.steps})")
    parser.add_argument("--lr", type=float, default=CalibrationSettings.lr,
                        help=f"peak learning rate of the one-cycle schedule (default: {CalibrationSettings.lr:g})")
    parser.add_argument("--hidden", type=int, default=CalibrationSettings.hidden,
                        help=f"units of each hidden layer (default: {CalibrationSettings.hidden})")
    parser.add_argument("--layers", type=int, default=CalibrationSettings.layers,
                        help=f"hidden layers of the perceptron (default: {CalibrationSettings.layers})")
    parser.add_argument("--context-mm", type=float, nargs="+", default=list(CalibrationSettings.context_mm),
                        metavar="MM", help="half-widths (mm) of the in-plane windows of MRI context "
                                           f"(default: {' '.join(f'{r:g}' for r in CalibrationSettings.context_mm)})")
    for flag, what in (("--colour-mm", "windows of the guided colour's body-only mean"),
                       ("--body-mm", "windows of the body's share (how deep inside the body)"),
                       ("--spread-mm", "windows of the MRI's body-only spread")):
        default = getattr(CalibrationSettings, flag[2:].replace("-", "_"))
        parser.add_argument(flag, type=float, nargs="*", default=list(default), metavar="MM",
                            help=f"half-widths (mm) of the {what}; none to leave the feature out "
                                 f"(default: {' '.join(f'{r:g}' for r in default) or 'none'})")
    parser.add_argument("--balance", type=float, default=CalibrationSettings.balance,
                        help="weigh each voxel by (median f / f_tissue)^BALANCE, 0-1, 0 for every voxel alike "
                             f"(default: {CalibrationSettings.balance:g})")
    parser.add_argument("--tissue-mean", type=float, default=CalibrationSettings.tissue_mean,
                        help="weight of the pull of each tissue's mean colour to its true mean, beside the "
                             f"voxels' L1; 0 for none (default: {CalibrationSettings.tissue_mean:g})")
    parser.add_argument("--mean-tissues", nargs="+", default=[], metavar="TISSUE",
                        help="only these tissues' means are pulled (label names, e.g. grey_matter white_matter "
                             "csf; default: every tissue)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the voxel draw and the fit (default: 0)")
    parser.add_argument("--device", default=None, help="device of the colorizing network (default: the best)")


def training_seeds(datasets: list[str], requested: str | None) -> dict[str, list[int]]:
    """The phantom seeds of each dataset's training split, or of the ``requested`` ones, each of
    which must be one of them (``InputError`` otherwise), by dataset. A seed in two datasets'
    training splits is refused: it would be one subject counted twice."""
    from core.dataset.build import parse_ids
    from core.dataset.manifest import Manifest

    train: dict[str, list[int]] = {}
    for data in datasets:
        seeds = sorted({s.metadata["seed"] for s in Manifest.load(data).subjects
                        if s.split == "train" and s.metadata.get("source") == "phantom" and "seed" in s.metadata})
        if not seeds:
            raise InputError(data, "has no phantom subjects in its training split to fit a calibration on")
        for other, known in train.items():
            if set(seeds) & set(known):
                raise InputError(data, f"shares training seeds {sorted(set(seeds) & set(known))} with {other}: "
                                       "give each subject once")
        train[data] = seeds
    if requested is None:
        return train
    wanted = parse_ids(requested, "--seeds")
    every = sorted(seed for seeds in train.values() for seed in seeds)
    foreign = sorted(set(wanted) - set(every))
    if foreign:
        raise InputError("--seeds", f"{foreign} are not training subjects of {', '.join(datasets)} (their training "
                                    f"seeds: {', '.join(map(str, every))}); fit only on training subjects")
    return {data: [s for s in seeds if s in wanted] for data, seeds in train.items() if set(seeds) & set(wanted)}


def run(args: argparse.Namespace) -> int:
    from core.atomic import write_text
    from core.devices import parse_device
    from core.evaluation.volumes import dataset_subjects
    from core.inference import Colorizer
    from core.model.checkpoint import export_inference_checkpoint
    from core.phantom.scans import check_kinds
    from core.training.calibration import fit_calibration

    try:
        settings = CalibrationSettings(samples_per_scan=args.samples_per_scan, steps=args.steps, lr=args.lr,
                                       seed=args.seed, hidden=args.hidden, layers=args.layers, balance=args.balance,
                                       tissue_mean=args.tissue_mean, mean_tissues=tuple(args.mean_tissues),
                                       context_mm=tuple(args.context_mm), colour_mm=tuple(args.colour_mm),
                                       body_mm=tuple(args.body_mm), spread_mm=tuple(args.spread_mm))
    except ValueError as exc:
        raise InputError("calibrate", str(exc)) from None
    scans = None if args.scans is None else check_kinds(tuple(args.scans))
    by_data = training_seeds(args.data, args.seeds)
    seeds = sorted(seed for chosen in by_data.values() for seed in chosen)
    colorizer = Colorizer.from_checkpoint(args.checkpoint, device=parse_device(args.device))
    if "guided" not in colorizer.outputs:
        raise InputError(args.checkpoint, "has no c′ decoder: the calibration corrects the 'guided' output")
    try:
        settings.mean_ids(colorizer.label_table)
    except ValueError as exc:
        raise InputError("--mean-tissues", str(exc)) from None
    say = lambda message: print(message, file=sys.stderr)  # noqa: E731
    subjects = itertools.chain.from_iterable(dataset_subjects(data, chosen, scans) for data, chosen in by_data.items())
    calibration, curve = fit_calibration(colorizer, subjects, settings, say=say)
    fitted = {"seeds": seeds, "scans": list(scans or ["all"]), "data": [str(d) for d in by_data], **settings.to_dict(),
              "final_l1": curve[-1][1]}
    path = export_inference_checkpoint(args.checkpoint, args.out, pixel_mm=colorizer.pixel_mm, serve="calibrated",
                                       calibration=calibration, extra={"calibration_fit": fitted})
    write_text(Path(args.out) / "calibration_log.csv",
               "step,l1_lab\n" + "".join(f"{step},{loss:.6f}\n" for step, loss in curve))
    print(f"calibrated model: {path} (fitted on seeds {', '.join(map(str, seeds))}; final L1 {curve[-1][1]:.4f})")
    return 0
