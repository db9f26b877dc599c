"""Phantom generation time (uncached), memory and cache speed for each size.

    python benchmarks/bench_phantom.py [--sizes small default] [--seeds 0 1] [--region head --mri-mm 1]

Reference computed in the same run: loading the same subject from its cache file, which is what
every use after the first pays; the ratio says what the cache saves. Peak memory is numpy's
allocations during one generation (tracemalloc), separate from the timed runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.phantom import SIZES, generate  # noqa: E402
from core.phantom.options import PhantomOptions  # noqa: E402
from core.phantom.subject import VOLUMES, load_cached, save_cached  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--region", default="body", help="field of view (core.phantom.regions), e.g. head")
    ap.add_argument("--mri-mm", type=float, nargs="+", help="MRI voxel size, 1 or 3 values (mm)")
    args = ap.parse_args()
    scan = PhantomOptions(region=args.region, mri_mm=None if args.mri_mm is None else
                          (args.mri_mm[0] if len(args.mri_mm) == 1 else tuple(args.mri_mm)))
    os.environ["MRICOLOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="mricolor-bench-")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times grow with it; CPU time does not)")
    print(f"scan options: {scan.key() or 'default'}")
    print(f"{'size':8} {'seed':>4} {'generate s':>10} {'(CPU s)':>8} {'cache write s':>13} {'cache load s':>12} "
          f"{'gen/load':>8}")
    for size in args.sizes:
        for seed in args.seeds:
            t, cpu = time.perf_counter(), time.process_time()
            subject = generate(seed, size, scan)
            gen, cpu = time.perf_counter() - t, time.process_time() - cpu
            t = time.perf_counter()
            path = save_cached(subject)
            write = time.perf_counter() - t
            t = time.perf_counter()
            load_cached(seed, size, scan)
            load = time.perf_counter() - t
            print(f"{size:8} {seed:>4} {gen:10.2f} {cpu:8.2f} {write:13.2f} {load:12.2f} {gen / load:8.1f}")
        tracemalloc.start()
        generate(args.seeds[0], size, scan)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        held = sum(getattr(subject, n).array.nbytes for n in VOLUMES) + sum(
            a.nbytes for a in subject.transform.to_arrays().values())
        for name in VOLUMES:
            v = getattr(subject, name)
            print(f"  {name:18} {str(v.array.shape):22} {v.array.dtype!s:8} spacing {v.spacing.tolist()} mm "
                  f"{v.array[..., 0].size if v.is_rgb else v.array.size:>11,} voxels {v.array.nbytes / 2**20:7.1f} MiB")
        print(f"  subject {held / 2**20:.0f} MiB held, peak {peak / 2**20:.0f} MiB while generating, "
              f"cache file {path.stat().st_size / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
