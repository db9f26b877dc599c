"""Time per oblique 256×256 plane cut from a 256³ volume: `core.planes.sample` (batch 1 and 64)
against scipy.ndimage.map_coordinates(order=1) on the same planes, in the same run. Best (least
disturbed by other processes) and median of the repeats.

    python benchmarks/bench_planes.py [--threads N]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.ndimage import map_coordinates

from core.planes import Plane, sample, volume_tensor
from core.volume import Volume


def timings(fn, repeats: int) -> np.ndarray:
    """Wall times of ``repeats`` calls (seconds), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    volume = Volume(rng.random((256, 256, 256), dtype=np.float32), spacing=(1.0, 1.0, 1.0))
    planes = [Plane.oblique(o, volume.center + rng.uniform(-20, 20, 3), tilt_deg=rng.uniform(-40, 40),
                            rotate_deg=rng.uniform(-40, 40), pixel_mm=0.9, width=256, height=256)
              for o in ("axial", "coronal", "sagittal") for _ in range(22)][:64]
    volume_tensor(volume)  # conversion happens once per volume; not part of a plane's cost

    one_t = timings(lambda: sample(volume, planes[0]), args.repeats)
    batch_t = timings(lambda: sample(volume, planes), max(5, args.repeats // 2)) / len(planes)
    one, batch = one_t.min(), batch_t.min()

    def scipy_plane(p: Plane) -> np.ndarray:
        idx = volume.physical_to_index(p.points())
        return map_coordinates(volume.array, [idx[..., 2], idx[..., 1], idx[..., 0]], order=1, mode="constant")

    ref = timings(lambda: scipy_plane(planes[0]), max(3, args.repeats // 2)).min()
    idx = volume.physical_to_index(planes[0].points())
    inside = np.all((idx >= 0) & (idx <= 255), axis=-1)  # the two treat the outer half-voxel differently
    err = float(np.abs(sample(volume, planes[0])[0, 0].numpy() - scipy_plane(planes[0]))[inside].max())
    print(f"torch threads: {torch.get_num_threads()}; volume 256³ float32; oblique planes 256×256")
    print(f"core.planes.sample, batch 1 : {one * 1e3:7.2f} ms/plane (median {np.median(one_t) * 1e3:.2f})")
    print(f"core.planes.sample, batch 64: {batch * 1e3:7.2f} ms/plane (median {np.median(batch_t) * 1e3:.2f})")
    print(f"scipy map_coordinates order1: {ref * 1e3:7.2f} ms/plane")
    print(f"speed-up vs scipy: batch 1 ×{ref / one:.1f}, batch 64 ×{ref / batch:.1f}; max |diff| inside the volume {err:.2e}")


if __name__ == "__main__":
    main()
