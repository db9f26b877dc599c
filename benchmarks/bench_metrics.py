"""Milliseconds per 256×256 pair for each Table-I metric, against a direct NumPy/scikit-image computation.

    python benchmarks/bench_metrics.py [--repeats 15] [--threads N]

The references run in the same process on the same pair: scikit-image for SSIM, and for the
others the straightforward NumPy/SciPy transcriptions the tests check against (tests/
helpers_metrics.py; pytorch_msssim is listed too for MS-SSIM). Ours gets float32 planes,
as the viewer and training pass them (float64 numpy input computes in float64, about 3× slower).
"All six" is ``table_row`` (CF, ΔCF, SSIM, MS-SSIM, FSIMc, STSIM-2, plus the companions that
come free). Each figure is the median (and minimum) over the repeats; the load average is printed
because wall-clock figures are only comparable on an otherwise idle machine, and the last line gives
the process CPU time of "all six" on one thread, which other processes hardly change. On a shared
machine run it with OMP_WAIT_POLICY=PASSIVE too: torch's OpenMP threads otherwise spin at every
operation's barrier and a loaded 2-core machine makes each metric 10–50× slower.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pytorch_msssim  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

import core.metrics as metrics  # noqa: E402
from helpers_metrics import LUMA, golden_pair, ref_fsim, ref_ms_ssim, ref_stsim  # noqa: E402

TARGET_MS = 150.0  # the product's target for all six metrics of a 256² pair on a 2-core CPU (docs/metrics.md)


def timed(fn, repeats: int, clock=time.perf_counter) -> tuple[float, float]:
    """(median, min) milliseconds of ``fn()`` by ``clock`` after one warm-up call (caches, filter banks)."""
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append((clock() - start) * 1e3)
    return float(np.median(times)), float(np.min(times))


def numpy_colorfulness(rgb: np.ndarray) -> float:
    rg, yb = rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of our code per metric")
    parser.add_argument("--reference-repeats", type=int, default=3, help="timed calls of each slow reference")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    mri, cryo, col, col_luma = golden_pair(256)
    m32, cryo32, col32 = (a.astype(np.float32) for a in (mri, cryo, col))
    cryo_luma = cryo @ LUMA
    r = args.reference_repeats
    cases = [  # name, ours, reference name, reference
        ("CF + ΔCF (2 images)", lambda: (metrics.colorfulness(col32), metrics.delta_colorfulness(cryo32, col32)),
         "numpy", lambda: numpy_colorfulness(cryo) - numpy_colorfulness(col), args.repeats),
        ("SSIM", lambda: metrics.ssim(m32, col32), "skimage.metrics.structural_similarity",
         lambda: structural_similarity(mri, col_luma, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1.0), args.repeats),
        ("MS-SSIM", lambda: metrics.ms_ssim(m32, col32), "numpy transcription",
         lambda: ref_ms_ssim(mri, col_luma), args.repeats),
        ("MS-SSIM", lambda: metrics.ms_ssim(m32, col32), "pytorch_msssim (float32)",
         lambda: pytorch_msssim.ms_ssim(torch.from_numpy(m32)[None, None],
                                        torch.from_numpy(col_luma.astype(np.float32))[None, None], data_range=1.0),
         args.repeats),
        ("FSIMc", lambda: metrics.fsim(col32, cryo32), "numpy transcription", lambda: ref_fsim(col, cryo), r),
        ("STSIM-2", lambda: metrics.stsim(col32, cryo32), "numpy/scipy transcription",
         lambda: ref_stsim(col_luma, cryo_luma), r),
        ("STSIM-1", lambda: metrics.stsim(col32, cryo32, version=1), "numpy/scipy transcription",
         lambda: ref_stsim(col_luma, cryo_luma, version=1), r),
    ]

    print(f"mricolor metrics benchmark: one 256×256 pair, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPU(s), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'metric':<22} {'ours ms (min)':>16} {'reference ms (min)':>20}  {'ratio':>6}  reference")
    for name, ours, ref_name, reference, ref_repeats in cases:
        ours_ms, ours_min = timed(ours, args.repeats)
        ref_ms, ref_min = timed(reference, ref_repeats)
        print(f"{name:<22} {ours_ms:>8.1f} ({ours_min:>5.1f}) {ref_ms:>11.1f} ({ref_min:>6.1f})  "
              f"{ref_ms / ours_ms:>5.1f}×  {ref_name}")

    all_ms, all_min = timed(lambda: metrics.table_row(m32, col32, cryo32), args.repeats)
    batch = 8
    tensors = [torch.from_numpy(a.reshape(256, 256, -1)).permute(2, 0, 1)[None].repeat(batch, 1, 1, 1)
               for a in (m32, col32, cryo32)]
    batch_ms, _ = timed(lambda: metrics.table_row(*tensors), max(3, args.repeats // 3))
    print(f"{'all six (table_row)':<22} {all_ms:>8.1f} ({all_min:>5.1f})  target ≤ {TARGET_MS:.0f} ms per pair: "
          f"{'met' if all_ms <= TARGET_MS else 'NOT met'}")
    print(f"{'all six, batch of 8':<22} {batch_ms / batch:>8.1f} per pair")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU time of one thread is what an idle core would take, whatever the load
    cpu_ms, cpu_min = timed(lambda: metrics.table_row(m32, col32, cryo32), args.repeats, time.process_time)
    cpu_batch, cpu_batch_min = timed(lambda: metrics.table_row(*tensors), max(3, args.repeats // 3), time.process_time)
    torch.set_num_threads(threads)
    print(f"{'all six, CPU time':<22} {cpu_ms:>8.1f} ({cpu_min:>5.1f})  on one thread: the figure for an idle core")
    print(f"{'  batch of 8, CPU time':<22} {cpu_batch / batch:>8.1f} ({cpu_batch_min / batch:>5.1f})  per pair on one "
          f"thread: {cpu_batch / batch / cpu_ms:.2f}× one pair at a time (batching must not cost more than it saves)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
          " (a load above the core count means the machine was shared and the figures are inflated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
