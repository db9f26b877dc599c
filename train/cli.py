"""Command line of the launcher: ``segmentation``, ``colorization``, ``calibrate``, ``evaluate``, ``ablation``.

Single process (CPU or one GPU)::

    python -m train colorization --data DATASET --out runs/lite --preset lite

Several processes on one machine (DDP; gloo on CPU, NCCL on GPUs)::

    torchrun --standalone --nproc_per_node=2 -m train colorization --data DATASET --out runs/lite

Several machines (run on every node, same endpoint; node ranks 0..N-1)::

    torchrun --nnodes=2 --nproc_per_node=4 --node_rank=0 --rdzv_id=job1 --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST0:29500 -m train colorization --data DATASET --out runs/paper --preset paper

The data folder must be readable at the same path on every node, and ``--out`` too for
``--resume`` (every rank reads the checkpoint); only global rank 0 writes. ``--batch-size`` is per
process: the global batch is it × the number of processes.

Exit status: 0 done, 2 bad input or a full disk (one line on stderr), 3 stopped on a non-finite
loss (the last good checkpoint is kept and named), 4 processes out of sync (--check-sync), 130
interrupted (Ctrl-C or SIGTERM; resume with --resume).
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from core.errors import InputError, run_command

if TYPE_CHECKING:
    from core.dataset.plane_data import PlaneData
    from core.model.run_config import RunConfig
    from core.training.distributed import Context


#: What each training command does, for its ``--help`` page.
DESCRIPTIONS = {
    "segmentation": "Pre-train the U-Net S that segments cryosection planes into tissues (its Dice per tissue "
                    "is written to OUT/dice.md). Colorization and ablation pre-train it themselves when no "
                    "--segmentation is given.",
    "colorization": "Train the colorization GAN (MRI → cryosection colours) into OUT: checkpoints/, log.csv, "
                    "samples/, model.safetensors. --resume continues a run; --init-from starts a new one from "
                    "another run's state (e.g. with other learning rates).",
    "ablation": "Train the full model and the ablations A1–A5 with one preset and one budget into "
                "OUT/<variant>, then write Table II (OUT/ablation.md). The table's metrics need planes of at "
                "least 49 px (--image-size 64 or more).",
}


def _preset_defaults(kind: str, name: str) -> str:
    """The epochs, batch size and image size a preset gives ``kind``, e.g. "lite: 10 epochs, batch 4,
    128 px" (read from the shipped preset, so the help never goes stale)."""
    from core.model.run_config import resolve
    from core.model.train_config import task_key

    train = resolve(name).train
    epochs, batch = getattr(train, task_key(kind, "epochs")), getattr(train, task_key(kind, "batch_size"))
    return f"{name}: {epochs} epochs, batch {batch}, {train.image_size} px"


def _add_training_arguments(p: argparse.ArgumentParser, kind: str) -> None:
    task = "segmentation" if kind == "segmentation" else "colorization"
    defaults = "; ".join(_preset_defaults(task, name) for name in ("tiny", "lite", "paper"))
    p.add_argument("--data", required=True, help="dataset folder written by `mricolor prepare`")
    p.add_argument("--out", required=True, type=Path, help="run folder: checkpoints, logs, samples, config")
    p.add_argument("--preset", default="lite", help=f"paper, lite, tiny or a preset JSON file (default: lite). "
                                                    f"The presets' budgets: {defaults}")
    if kind == "colorization":
        p.add_argument("--ablation", choices=("A1", "A2", "A3", "A4", "A5"), help="train an ablation of the paper")
    p.add_argument("--epochs", type=int, help="passes over the training planes (default: the preset's)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (default: no limit)")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes of training")
    p.add_argument("--batch-size", type=int, help="planes per process and step (default: the preset's)")
    p.add_argument("--image-size", type=int,
                   help="plane size the networks train at, planes are resized (default: the preset's)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when present)")
    p.add_argument("--threads", type=int, help="CPU threads per process (default: torch's; torchrun sets 1). "
                                               "On a CPU shared with other jobs, 1 thread per process is often "
                                               "much faster than several")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--seed", type=int, help="seed of initialisation and data order")
    p.add_argument("--check-sync", action="store_true", default=None,
                   help="after every step, verify all processes hold identical weights (debug)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any preset value, e.g. --set loss.lambda_l1_c_prime=10 (repeatable)")
    if kind == "colorization":
        p.add_argument("--init-from", type=Path, metavar="STATE",
                       help="start this new run from another run's networks and optimisers (a "
                            "checkpoints/state-*.pt file or a run folder: its newest state), with this "
                            "run's configuration, e.g. other loss weights; steps count from 0")
    if kind in ("colorization", "ablation"):
        p.add_argument("--segmentation", type=Path,
                       help="pre-trained U-Net checkpoint (default: OUT/segmentation/model.safetensors, "
                            "pre-trained there first when missing)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_training_arguments(sub.add_parser("segmentation", help="pre-train the cryosection U-Net",
                                           description=DESCRIPTIONS["segmentation"]), "segmentation")
    _add_training_arguments(sub.add_parser("colorization", help="train the colorization GAN",
                                           description=DESCRIPTIONS["colorization"]), "colorization")
    ablation = sub.add_parser("ablation", help="train the full model and A1–A5 with one budget; Table II",
                              description=DESCRIPTIONS["ablation"])
    _add_training_arguments(ablation, "ablation")
    ablation.add_argument("--variants", default="full,A1,A2,A3,A4,A5",
                          help="comma-separated variants to train (default: full,A1,A2,A3,A4,A5)")
    ablation.add_argument("--planes", type=int, help="evaluate on at most this many test planes")
    from core.commands import calibrate as calibrate_command
    from core.commands import evaluate as evaluate_command

    calibrate = sub.add_parser("calibrate", help="fit the colour calibration of a trained model (the 'calibrated' output)",
                               description=calibrate_command.__doc__.split("\n\n")[0])
    calibrate_command.add_arguments(calibrate)
    calibrate.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    evaluate = sub.add_parser("evaluate", help="Table-I style table for checkpoints, with reference rows",
                              description=evaluate_command.__doc__.split("\n\n")[0])
    evaluate_command.add_arguments(evaluate)
    return parser


def _overrides(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """Explicit command-line values as ``section.key`` overrides (None: not given); the budget
    flags set the U-Net's own ``seg_*`` keys for ``segmentation``."""
    from core.model.train_config import task_key
    from core.model.run_config import parse_assignment

    values = {task_key(kind, name): getattr(args, name) for name in ("epochs", "max_steps", "max_minutes", "batch_size")}
    values.update(image_size=args.image_size, seed=args.seed, check_sync=args.check_sync)
    values.update(parse_assignment(text) for text in args.assignments)
    return {k: v for k, v in values.items() if v is not None}


def run_config(args: argparse.Namespace, kind: str, out: Path, ablation: str | None = None) -> "RunConfig":
    """The configuration of a run: preset + ablation + overrides, or on ``--resume`` the stored one
    with only schedule keys (budget, cadence) changeable."""
    from core.model.run_config import CONFIG_FILE, resolve, resume_config

    overrides = _overrides(args, kind)
    stored = out / CONFIG_FILE
    if args.resume and stored.is_file():
        return resume_config(stored, overrides)
    return resolve(args.preset, ablation, overrides)


def _open_data(args: argparse.Namespace, cfg: "RunConfig") -> "PlaneData":
    """The dataset of ``--data``, its training planes augmented as ``cfg`` says."""
    from core.dataset import Augment
    from core.dataset.plane_data import open_data

    return open_data(args.data, seed=cfg.train.seed, augment=None if cfg.augment is None else Augment.of(cfg.augment))


def _set_threads(threads: int | None) -> None:
    import torch

    if threads is not None:
        if threads < 1:
            raise InputError("--threads", f"must be at least 1, got {threads}")
        torch.set_num_threads(threads)


def _run_ablation(args: argparse.Namespace, ctx: "Context") -> int:
    from core.training.ablation import FULL, parse_variants, run_ablation

    configs = {v: run_config(args, "colorization", args.out / v, None if v == FULL else v)
               for v in parse_variants(args.variants)}
    data = _open_data(args, next(iter(configs.values())))
    table = run_ablation(configs, data, ctx, args.out, segmentation=args.segmentation, resume=args.resume,
                         planes=args.planes)
    if table is not None:
        print(table.markdown(), end="")
    return 0


def _run_training(args: argparse.Namespace) -> int:
    from core.training import distributed

    _set_threads(args.threads)
    with distributed.session(args.device) as ctx:
        if args.command == "ablation":
            return _run_ablation(args, ctx)
        cfg = run_config(args, args.command, args.out, getattr(args, "ablation", None))
        data = _open_data(args, cfg)
        if args.command == "segmentation":
            from core.training.segmentation import train_segmentation

            _, result, report = train_segmentation(cfg, data, ctx, args.out, resume=args.resume)
            if report is not None:
                print(report.markdown(), end="")
        else:
            from core.training.colorization import train_colorization

            _, result = train_colorization(cfg, data, ctx, args.out, segmentation=args.segmentation,
                                           resume=args.resume, init_from=args.init_from)
        if ctx.is_main:
            print(f"model: {result.export}  (step {result.step}; checkpoints in {args.out / 'checkpoints'})",
                  file=sys.stderr)
    return 0


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (torchrun stopping its workers, `kill`) unwinds like Ctrl-C, so temporary files go."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Install ``_terminate`` for the duration of a command (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 2 bad input, 3 stopped on a non-finite loss, 4 out of sync, 130
    interrupted (`core.errors.run_command`)."""
    args = build_parser().parse_args(argv)
    with _sigterm_as_interrupt():
        return run_command(f"python -m train {args.command}", lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "evaluate":
        from core.commands import evaluate as evaluate_command

        return evaluate_command.run(args)
    if args.command == "calibrate":
        from core.commands import calibrate as calibrate_command

        _set_threads(args.threads)
        return calibrate_command.run(args)
    return _run_training(args)
