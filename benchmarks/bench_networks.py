"""Speed and size of the colorization generator G_m→ĉ per preset, against CycleGAN's ResNet-9.

For 256×256 planes: parameters and GFLOPs per plane of each preset's G_m→ĉ (counted with
``torch.utils.flop_counter.FlopCounterMode``; one multiply-add = 2 FLOPs), and milliseconds per
plane at batch 1 and batch 16 on the CPU for ``lite``, ``paper`` and the reference ResNet-9
generator, all in this one process so the ratios compare like with like. With CUDA, the same
in fp32, fp16 and bf16 autocast. Targets (docs/method.md): ``lite`` ≤ 100 ms per plane at batch 1 on a
2-core CPU and ≥ 10× faster than ResNet-9.

Our generators run channels-last, as the ``Colorizer`` runs them (depthwise convolutions are
several times faster so); the ResNet-9 yardstick runs in whichever of NCHW and channels-last a
short probe finds faster. Timings report the median and the minimum of the repeats; on a
machine shared with other jobs the minimum is the better estimate of the model's own cost, and
the process CPU time per thread (also printed) is nearly independent of the other jobs.

    python benchmarks/bench_networks.py            # full run (paper at batch 16 takes minutes)
    python benchmarks/bench_networks.py --quick    # skips paper and ResNet-9 at batch 16
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.model.config import load_preset  # noqa: E402
from core.inference import Colorizer  # noqa: E402
from core.model.networks import build_generator  # noqa: E402

SIZE = 256


class ResnetBlock(nn.Module):
    """CycleGAN's residual block: reflect-pad, conv3, IN, ReLU, reflect-pad, conv3, IN, + x."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet9_generator(in_ch: int = 1, out_ch: int = 3, ngf: int = 64) -> nn.Sequential:
    """The yardstick: junyanz/pytorch-CycleGAN-and-pix2pix ``ResnetGenerator`` (resnet_9blocks,
    64 base filters, instance norm, reflect padding, no dropout), 1 → 3 channels here."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(9)]
    for mult in (4, 2):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1),
                   nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def size_of(model: nn.Module) -> tuple[float, float]:
    """(million parameters, GFLOPs per 256² plane)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.rand(1, 1, SIZE, SIZE))
    return sum(p.numel() for p in model.parameters()) / 1e6, counter.get_total_flops() / 1e9


def time_per_plane(model: nn.Module, batch: int, repeats: int, device: torch.device,
                   dtype: torch.dtype | None = None, channels_last: bool = False) -> tuple[list[float], float]:
    """Wall milliseconds per plane of each repeat (after one warm-up forward), and the least
    process CPU milliseconds per plane divided by the thread count: on a shared machine the
    wall time includes waiting for other jobs, the CPU time hardly does."""
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x = torch.rand(batch, 1, SIZE, SIZE, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    wall, cpu = [], []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        model(x)
        sync()
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            model(x)
            sync()
            wall.append((time.perf_counter() - start) * 1000 / batch)
            cpu.append((time.process_time() - start_cpu) * 1000 / batch / torch.get_num_threads())
    return wall, min(cpu)


def faster_layout(model: nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> bool:
    """True when channels-last beats NCHW for ``model`` (one batch-1 probe each, best of two)."""
    nchw = min(time_per_plane(model, 1, 2, device, dtype, False)[0])
    nhwc = min(time_per_plane(model, 1, 2, device, dtype, True)[0])
    return nhwc < nchw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip paper and ResNet-9 at batch 16")
    parser.add_argument("--repeats", type=int, default=30, help="repeats for lite (slower models run fewer)")
    args = parser.parse_args()
    torch.manual_seed(0)

    models = {name: build_generator(load_preset(name).model).eval() for name in ("tiny", "lite", "paper")}
    models["resnet9"] = resnet9_generator().eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"load average {os.getloadavg()[0]:.2f} (others' jobs slow every timing)")
    print(f"\nG_m→ĉ at {SIZE}×{SIZE}, one plane:")
    print(f"{'model':10s} {'params (M)':>11s} {'GFLOPs':>9s}")
    sizes = {}
    for name, model in models.items():
        sizes[name] = size_of(model)
        print(f"{name:10s} {sizes[name][0]:11.3f} {sizes[name][1]:9.2f}")

    cpu = torch.device("cpu")
    repeats = {"lite": args.repeats, "paper": 2, "resnet9": 3}
    batch16_repeats = {"lite": max(2, args.repeats // 6), "paper": 1, "resnet9": 1}
    results: dict[tuple[str, int], float] = {}
    cpu_results: dict[tuple[str, int], float] = {}
    print("\nCPU, ms per plane: wall median / min of repeats, least CPU time / threads (layout):")
    layouts = {"lite": True, "paper": True, "resnet9": faster_layout(models["resnet9"], cpu)}
    for batch in (1, 16):
        for name in ("lite", "resnet9", "paper"):
            if batch == 16 and args.quick and name != "lite":
                continue
            reps = repeats[name] if batch == 1 else batch16_repeats[name]
            times, cpu_ms = time_per_plane(models[name], batch, reps, cpu, None, layouts[name])
            results[(name, batch)] = min(times)
            cpu_results[(name, batch)] = cpu_ms
            layout = "channels_last" if layouts[name] else "nchw"
            print(f"  batch {batch:2d}  {name:8s} {statistics.median(times):9.1f} / {min(times):9.1f}"
                  f"   cpu/thread {cpu_ms:9.1f}  ({layout}, {reps} repeats)", flush=True)
    colorizer = Colorizer(models["lite"], load_preset("lite").model, device=cpu)
    plane = torch.rand(SIZE, SIZE).numpy()
    colorizer.colorize(plane)
    viewer = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        colorizer.colorize(plane)
        viewer.append((time.perf_counter() - start) * 1000)
    print(f"  viewer path: Colorizer(lite).colorize(one numpy plane) {statistics.median(viewer):.1f} / {min(viewer):.1f}")

    print("\nRatios, wall (min) and CPU time:")
    for batch in (1, 16):
        for name in ("resnet9", "paper"):
            if (name, batch) in results:
                print(f"  batch {batch:2d}  {name} / lite = {results[(name, batch)] / results[('lite', batch)]:6.1f}× wall,"
                      f" {cpu_results[(name, batch)] / cpu_results[('lite', batch)]:6.1f}× cpu")
    for label, table in (("wall (min)", results), ("cpu/thread", cpu_results)):
        lite1, ratio = table[("lite", 1)], table[("resnet9", 1)] / table[("lite", 1)]
        print(f"Targets by {label}: lite {lite1:.1f} ms per plane at batch 1 (≤ 100: {'met' if lite1 <= 100 else 'MISSED'}),"
              f" {ratio:.1f}× faster than ResNet-9 (≥ 10: {'met' if ratio >= 10 else 'MISSED'})")

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        print(f"\nCUDA ({torch.cuda.get_device_name()}), ms per plane (median / min), planes/s from the min:")
        for dtype_name, dtype in (("fp32", None), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
            for name in ("lite", "resnet9", "paper"):
                channels_last = faster_layout(models[name], gpu, dtype)
                for batch in (1, 16):
                    times, _ = time_per_plane(models[name], batch, 20, gpu, dtype, channels_last)
                    print(f"  {dtype_name} batch {batch:2d} {name:8s} {statistics.median(times):8.3f} / {min(times):8.3f}"
                          f"  {1000 / min(times):8.0f} planes/s ({'channels_last' if channels_last else 'nchw'})",
                          flush=True)

if __name__ == "__main__":
    main()
