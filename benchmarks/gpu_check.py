"""The figures a first GPU run needs, in one short script (no GPU has run this code yet).

    python benchmarks/gpu_check.py [--json OUT.json]   # on a GPU machine
    python benchmarks/gpu_check.py --dry-run           # on a CPU: every code path at small sizes

It reports, on the device:

1. a colorization training step of the ``paper`` and ``lite`` presets (bf16) at their own plane
   size and per-GPU batch: samples per second, peak memory, and the estimate printed before
   training (`core.training.memory`) beside it;
2. a 2-process NCCL run with ``check_sync`` (the networks' checksums compared after every step)
   when two GPUs are present;
3. ``--resume`` on the device: losses of a run stopped and resumed against an uninterrupted one;
4. colorized 256² planes per second through the ``Colorizer`` (lite and paper widths).

The data are random planes made in memory, so the script needs only torch, numpy, scipy,
scikit-image and safetensors (the usual GPU image): nothing on its path imports SimpleITK,
itk-elastix or Qt. ``--dry-run`` swaps the presets for small ones (``tiny`` for ``paper``: the same
dense convolutions and transposed-conv upsampling) at 32² on the CPU, with two gloo processes
for the sync check, and is run by the test suite.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from core.atomic import write_text  # noqa: E402
from core.dataset.plane_data import PlaneData  # noqa: E402
from core.inference import Colorizer  # noqa: E402
from core.labels import Label, LabelTable  # noqa: E402
from core.model.checkpoint import save_checkpoint  # noqa: E402
from core.model.networks import build_segmentation  # noqa: E402
from core.model.run_config import RunConfig, resolve  # noqa: E402
from core.training import distributed, memory  # noqa: E402
from core.training.batches import on_device  # noqa: E402
from core.training.colorization import ColorizationTask, train_colorization  # noqa: E402
from core.training.distributed import Context  # noqa: E402
from core.training.runlog import BASE_COLUMNS, LOG_FILE, read_log  # noqa: E402

GIB = 1024 ** 3
LABELS = LabelTable([Label(0, "background", "none", (0, 0, 0)), Label(1, "muscle", "muscular", (170, 60, 50)),
                     Label(2, "fat", "adipose", (230, 200, 120))])


class RandomPlanes(Dataset):
    """Random (MRI, cryosection, labels) planes, the same for the same index."""

    def __init__(self, count: int, size: int):
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        n = self.size
        return {"mri": torch.rand(1, n, n, generator=g), "cryo": torch.rand(3, n, n, generator=g),
                "labels": torch.randint(0, LABELS.num_classes, (n, n), generator=g)}


def random_data(size: int, planes: int = 16) -> PlaneData:
    return PlaneData(RandomPlanes(planes, size), RandomPlanes(4, size), LABELS, source="random")


def random_unet(cfg: RunConfig, folder: Path) -> Path:
    """A U-Net checkpoint of ``cfg``'s widths with random weights (the step's cost does not depend on them)."""
    config = dataclasses.replace(cfg.preset.model, num_classes=LABELS.num_classes)
    return save_checkpoint(folder / f"unet-{cfg.preset.name}.safetensors", {"seg": build_segmentation(config)},
                           config, label_table=LABELS)


def settings(dry_run: bool) -> dict[str, Any]:
    """What each check runs: the real presets on a GPU, small ones in a dry run."""
    if dry_run:
        return {"device": "cpu", "steps": 2, "presets": {"paper": ("tiny", {"image_size": 32, "batch_size": 2}),
                                                         "lite": ("lite", {"image_size": 32, "batch_size": 2})},
                "plane": 64, "planes": 4, "backend_ranks": 2}
    return {"device": "cuda", "steps": 10, "presets": {"paper": ("paper", {}), "lite": ("lite", {})},
            "plane": 256, "planes": 64, "backend_ranks": torch.cuda.device_count()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(name: str, preset: str, overrides: dict[str, Any], device: torch.device, steps: int,
                  folder: Path) -> dict[str, Any]:
    """Samples/s and peak memory of ``steps`` bf16 colorization steps after one warm-up step."""
    cfg = resolve(preset, overrides={**overrides, "precision": "bf16", "serve": "c_hat"})
    size, batch_size = cfg.train.image_size, cfg.train.batch_size
    data = random_data(size, batch_size)
    ctx = Context(device=device)
    task = ColorizationTask(cfg, ctx, data, random_unet(cfg, folder))
    est = memory.estimate(task.nets, cfg, ctx)
    batch = on_device({k: torch.stack([data.train[i][k] for i in range(batch_size)]) for k in ("mri", "cryo", "labels")},
                      device, size)
    task.step(batch, 1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        task.step(batch, step + 2)
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"check": f"training step {name}", "preset": preset, "size": size, "planes_per_step": batch_size,
            "samples_per_s": batch_size * steps / seconds, "peak_gib": None if peak is None else peak / GIB,
            "estimate_gib": est.total / GIB}


def _sync_rank(rank: int, world: int, port: int, device: str, folder: str, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    if device == "cpu":
        torch.set_num_threads(1)              # two processes on a CI machine's cores
    ctx = distributed.init(device, timeout_s=300)
    try:
        cfg = resolve("tiny", overrides={"image_size": 32, "batch_size": 2, "max_steps": 3, "checkpoint_every": 3,
                                         "check_sync": True, "serve": "c_hat"})
        _, result = train_colorization(cfg, random_data(32), ctx, Path(folder) / "sync",
                                       segmentation=Path(folder) / f"unet-{cfg.preset.name}.safetensors")
        results.put((rank, f"{ctx.backend}: {result.step} steps in sync"))
    except Exception as exc:  # noqa: BLE001 - reported, not hidden: the check is the report
        results.put((rank, f"failed: {type(exc).__name__}: {exc}"))
    finally:
        distributed.cleanup()


def sync_check(device: str, ranks: int, folder: Path) -> dict[str, Any]:
    """Two processes (NCCL on GPUs, gloo on the CPU) training with ``check_sync``."""
    if ranks < 2:
        return {"check": "2-rank check_sync", "result": f"skipped: {ranks} GPU(s)"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    random_unet(resolve("tiny"), folder)
    results = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_sync_rank, args=(2, port, device, str(folder), results), nprocs=2, start_method="spawn")
    outcome = sorted(results.get() for _ in range(2))
    return {"check": "2-rank check_sync", "result": "; ".join(f"rank {r}: {text}" for r, text in outcome)}


def _losses(folder: Path) -> dict[int, dict[str, float]]:
    columns, rows = read_log(folder / LOG_FILE)
    return {int(r["step"]): {k: r[k] for k in columns if k not in BASE_COLUMNS} for r in rows}


def resume_check(device: torch.device, folder: Path) -> dict[str, Any]:
    """Four steps in one go against two steps, stopped, then resumed for two more, on ``device``."""
    base = {"image_size": 32, "batch_size": 2, "checkpoint_every": 2, "serve": "c_hat", "seg_max_steps": 2}
    ctx, data = Context(device=device), random_data(32, 8)
    unet = random_unet(resolve("tiny"), folder)
    train_colorization(resolve("tiny", overrides={**base, "max_steps": 4}), data, ctx, folder / "whole",
                       segmentation=unet)
    train_colorization(resolve("tiny", overrides={**base, "max_steps": 2}), data, ctx, folder / "parts",
                       segmentation=unet)
    train_colorization(resolve("tiny", overrides={**base, "max_steps": 4}), data, ctx, folder / "parts",
                       segmentation=unet, resume=True)
    whole, parts = _losses(folder / "whole"), _losses(folder / "parts")
    worst = max(abs(whole[s][k] - parts[s][k]) for s in (3, 4) for k in whole[s])
    return {"check": "resume", "device": str(device), "max_loss_difference": worst,
            "result": "exact" if worst == 0 else "differs (cuDNN autotuning and atomics are not bit-exact)"}


def colorize_check(preset: str, device: torch.device, size: int, planes: int) -> dict[str, Any]:
    """Planes of ``size``² per second through ``Colorizer.colorize_planes`` (untrained weights)."""
    colorizer = Colorizer.untrained(preset, device=device)
    mri = torch.rand(planes, size, size)
    colorizer.colorize_planes(mri[: colorizer.max_batch])
    sync(device)
    start = time.perf_counter()
    colorizer.colorize_planes(mri)
    sync(device)
    return {"check": f"colorize {preset}", "size": size, "planes_per_s": planes / (time.perf_counter() - start),
            "precision": str(colorizer.autocast_dtype or torch.float32)}


def run(dry_run: bool) -> list[dict[str, Any]]:
    """Every check in turn, each figure with the seconds its check took; a check that fails is
    reported as such and the others still run (a first GPU run should show everything it can)."""
    plan = settings(dry_run)
    device = distributed.pick_device(plan["device"])
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checks = [(f"training step {name}", lambda name=name, preset=preset, overrides=overrides: training_step(
                      name, preset, overrides, device, plan["steps"], folder))
                  for name, (preset, overrides) in plan["presets"].items()]
        checks += [("2-rank check_sync", lambda: sync_check(plan["device"], plan["backend_ranks"], folder)),
                   ("resume", lambda: resume_check(device, folder))]
        checks += [(f"colorize {preset}", lambda preset=preset: colorize_check(preset, device, plan["plane"],
                                                                               plan["planes"]))
                   for preset in ("lite", "tiny" if dry_run else "paper")]
        for name, check in checks:
            start = time.perf_counter()
            try:
                figure = check()
            except Exception as exc:  # noqa: BLE001 - reported in the figures, and the exit status is 1
                figure = {"check": name, "result": f"failed: {type(exc).__name__}: {exc}"}
            figures.append({**figure, "wall_s": time.perf_counter() - start})
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, small sizes: every code path, no figures worth keeping")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device (use --dry-run on a CPU)", file=sys.stderr)
        return 2
    if args.dry_run:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    figures = run(args.dry_run)
    where = "dry run on the CPU" if args.dry_run else torch.cuda.get_device_name()
    print(f"gpu_check ({where}, torch {torch.__version__})")
    for figure in figures:
        print("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figure.items()))
    if args.json:
        write_text(args.json, json.dumps({"device": where, "figures": figures}, indent=2) + "\n")
    failed = [f for f in figures if "failed" in str(f.get("result", ""))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
