"""Benchmark: registration of a phantom subject, and slices per second from the on-the-fly dataset.

    python benchmarks/bench_data.py [--size default|small] [--seed 0] [--threads 2] [--batches 20]

Prints registration time and TRE/Dice before and after (target: mean TRE cut by ≥ 60 % in
≤ 120 s on a 2-core CPU), then data-loading throughput for batches of 28 slices at 256×256:
the dataset's fused cut (MRI, cryosection, labels), the same through a DataLoader with worker
processes, and the reference of one `core.planes.sample` call per volume in the same run.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from core.dataset import PlaneDataset, PlaneSettings, SubjectBatchSampler
from core.dataset.build import build_dataset, phantom_body
from core.io import read_volume
from core.phantom import make_subject
from core.planes import sample
from core.registration import load_stages, register, report_text
from core.registration.params import default_parameter_file

BATCH = 28


def bench_registration(seed: int, size: str, threads: int) -> dict:
    subject = make_subject(seed, size)
    start = time.perf_counter()
    result = register(subject.mri, subject.cryo, mri_labels=subject.mri_labels, labels=subject.labels,
                      truth=subject.transform.mri_to_cryo, threads=threads, strict=False,
                      progress=lambda m: print(f"  [{time.perf_counter() - start:6.1f} s] {m}", flush=True))
    print(report_text(result.report))
    return result.report


def throughput(cut, n_batches: int) -> tuple[float, float]:
    """(slices per second of wall time, CPU ms per batch) of ``cut(batch_index)`` over ``n_batches``.

    The CPU time shows what an idle machine would do when the benchmark shares its cores.
    """
    cut(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for b in range(n_batches):
        cut(b + 1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n_batches * BATCH / wall, 1000 * cpu / n_batches


def bench_loading(seed: int, size: str, threads: int, n_batches: int, workers: int) -> None:
    settings = PlaneSettings(256, 256, 1.5, 0.4)
    planes = n_batches * BATCH * 2
    with tempfile.TemporaryDirectory(prefix="mricolor-bench-") as tmp:
        root = Path(tmp) / "ds"
        start = time.perf_counter()
        rigid_only = load_stages([default_parameter_file("rigid")])
        bodies = [(partial(phantom_body, seed, size), "train"), (partial(phantom_body, seed + 1, size), "test")]
        build_dataset(root, bodies, planes=planes, settings=settings, seed=0,
                      registration={"threads": threads, "strict": False, "stages": rigid_only})
        print(f"dataset of {planes} planes built in {time.perf_counter() - start:.1f} s (rigid-only registration)")
        torch.set_num_threads(threads)
        ds = PlaneDataset(root, "train").preload()
        order = np.random.default_rng(0).permutation(len(ds))
        batches = [order[i * BATCH:(i + 1) * BATCH].tolist() for i in range(len(ds) // BATCH)]
        volumes = [read_volume(ds.manifest.volume_path(0, f)) for f in ("mri", "cryo", "labels")]

        def per_volume(b: int) -> None:
            for volume in volumes:
                sample(volume, ds.planes(batches[b % len(batches)]))

        reference, reference_cpu = throughput(per_volume, max(2, n_batches // 4))
        print(f"reference, one core.planes.sample() per volume (mri, cryo, labels): {reference:.0f} slices/s, "
              f"{reference_cpu:.0f} ms CPU per batch")
        for fields in (("mri", "cryo"), ("mri", "cryo", "labels")):
            cutter = PlaneDataset(root, "train", fields=fields).preload()
            rate, cpu = throughput(lambda b: cutter.__getitems__(batches[b % len(batches)]), n_batches)
            print(f"on-the-fly fused cut of {'+'.join(fields)}, batch {BATCH} at 256×256, {threads} threads: "
                  f"{rate:.0f} slices/s (×{rate / reference:.1f} the reference), {cpu:.0f} ms CPU per batch "
                  f"= {threads * 1000 * BATCH / cpu:.0f} slices/s on {threads} idle cores")
        loader = DataLoader(ds, batch_sampler=SubjectBatchSampler(ds, BATCH, seed=0),
                            collate_fn=PlaneDataset.collate, num_workers=workers, persistent_workers=workers > 0)
        next(iter(loader))  # start the workers
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch["index"])
        print(f"DataLoader with {workers} worker(s), subject batches of {BATCH}: "
              f"{count / (time.perf_counter() - start):.0f} slices/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("default", "small"), default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-registration", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads available")
    if not args.skip_registration:
        print(f"== registration of phantom subject {args.seed} ({args.size}) on {args.threads} threads")
        report = bench_registration(args.seed, args.size, args.threads)
        tre, sec = report["tre_mm"], report["seconds"]
        print(f"TRE mean {tre['before']['mean']:.2f} → {tre['after']['mean']:.2f} mm (cut by {tre['reduction']:.0%}, "
              f"target ≥ 60 %); {sec['total']:.0f} s wall, {sec['cpu']:.0f} s CPU (target ≤ 120 s on 2 cores; "
              f"on {args.threads} idle cores the wall time lies between {sec['cpu'] / args.threads:.0f} and "
              f"{sec['cpu']:.0f} s)")
    print(f"== data loading ({args.size} phantom)")
    bench_loading(args.seed, args.size, args.threads, args.batches, args.workers)


if __name__ == "__main__":
    main()
