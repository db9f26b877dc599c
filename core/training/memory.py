"""How much device memory a colorization step needs, known before the first step.

A step keeps, between its forward and backward passes, every tensor autograd saves: for the
``paper`` preset at 256² about 4 GiB per plane (G_m→ĉ twice, G_c→m̂ twice, the frozen U-Net the
gradients pass through; under bf16 autocast GroupNorm keeps fp32 copies of its bf16 inputs). The
estimate measures this on small planes (batch 1) with the run's own networks, device and
precision — `saved_bytes` adds up the distinct storages autograd saves — and scales it
by the pixels and planes of one pass: every network is fully convolutional, so saved activations
grow with H × W. Two probes (32² and 64²) separate what grows with the pixels from what does not
(the bf16 copies of the weights autocast keeps for backward). Weights, their gradients and Adam's
two moments (and the EMA copy) come on top.

`check_fits` prints the estimate before training starts and, on CUDA, refuses a configuration
that cannot fit the memory `torch.cuda.mem_get_info` reports free, saying which switches would
(``model.checkpointing``, ``train.micro_batch``). On a CPU it only prints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import AbstractSet, Callable

import torch
from torch import nn

from core.errors import InputError
from core.model.losses import discriminator_objective, generator_objective
from core.model.networks import Networks
from core.model.run_config import RunConfig
from core.training import distributed
from core.training.distributed import Context
from core.training.task import autocast

GIB = 1024 ** 3
#: Kept free beyond the estimate: the CUDA context, cuDNN workspaces, allocator fragmentation.
MARGIN_FRACTION, MARGIN_BYTES = 0.10, 1 * GIB


def saved_bytes(run: Callable[[], object], exclude: AbstractSet[int] = frozenset()) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``run()`` runs (storages
    whose pointer is in ``exclude``, e.g. the parameters, left out); what ``run`` returns is
    dropped, so its graph is freed."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in exclude:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def step_saved_bytes(nets: Networks, cfg: RunConfig, ctx: Context, planes: int, size: int) -> int:
    """Saved-tensor bytes of the larger of a training step's two passes (generators, then the
    discriminators on the detached fakes) for ``planes`` random planes of ``size``², on ``nets``
    as they are (nothing is stepped, no gradient is kept; the global RNG is left alone)."""
    rng = torch.Generator().manual_seed(0)
    m, c = (torch.rand(planes, ch, size, size, generator=rng).to(ctx.device) for ch in (1, 3))
    classes = nets.config.num_classes or 2
    s = torch.randint(0, classes, (planes, size, size), generator=rng).to(ctx.device)
    params = {p.untyped_storage().data_ptr() for module in nets.modules().values() for p in module.parameters()}
    precision, loss = cfg.train.precision, cfg.preset.loss
    fakes: dict[str, torch.Tensor] = {}

    def generators() -> torch.Tensor:
        with autocast(ctx, precision):
            g = generator_objective(nets, m, c, s, loss)
        fakes.update(g.fakes)
        return g.total

    def discriminators() -> torch.Tensor:
        with autocast(ctx, precision):
            return discriminator_objective(nets, m, c, fakes, loss).total

    g_bytes = saved_bytes(generators, params)
    return max(g_bytes, saved_bytes(discriminators, params))


def _bytes(modules: list[nn.Module]) -> int:
    return sum(p.numel() * p.element_size() for module in modules for p in module.parameters())


@dataclass(frozen=True)
class Estimate:
    """Device memory of one colorization step, in bytes."""

    per_plane: float          # saved activations of one plane at the training size
    planes: int               # planes per forward/backward pass (micro-batch or batch)
    fixed: float              # saved tensors that do not grow with the planes (autocast's weight copies)
    states: int               # weights, gradients, Adam moments, EMA, frozen U-Net

    def total_for(self, planes: int) -> float:
        return self.per_plane * planes + self.fixed + self.states

    @property
    def total(self) -> float:
        return self.total_for(self.planes)

    def describe(self) -> str:
        return (f"memory estimate: {_size(self.per_plane)} of activations per plane × {self.planes} planes per pass "
                f"+ {_size(self.fixed)} of weight copies + {_size(self.states)} of weights, gradients and "
                f"optimiser moments = {_size(self.total)}")


def _size(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / 1024 ** 2:.1f} MiB"


def estimate(nets: Networks, cfg: RunConfig, ctx: Context, probes: tuple[int, int] = (32, 64)) -> Estimate:
    """The `Estimate` of ``cfg``'s colorization step on ``nets`` (already on ``ctx.device``), from
    single planes of the two ``probes`` sizes, extrapolated to ``train.image_size``²."""
    small, large = (step_saved_bytes(nets, cfg, ctx, 1, size) for size in probes)
    per_pixel = (large - small) / (probes[1] ** 2 - probes[0] ** 2)
    fixed = max(small - per_pixel * probes[0] ** 2, 0.0)
    trained = [nets.g_mc, nets.g_cm, nets.d_c, nets.d_m]
    copies = 4 if ctx.world_size == 1 else 5          # weights, gradients, 2 Adam moments (+ DDP's buckets)
    states = copies * _bytes(trained) + _bytes([nets.seg] if nets.seg is not None else [])
    if cfg.train.ema_decay > 0:
        states += _bytes([nets.g_mc])
    return Estimate(per_pixel * cfg.train.image_size ** 2, cfg.train.micro_batch or cfg.train.batch_size, fixed, states)


def largest_micro_batch(est: Estimate, batch_size: int, budget: float) -> int | None:
    """The largest divisor of ``batch_size`` whose pass fits ``budget`` bytes, or None."""
    fitting = [n for n in range(1, batch_size + 1) if batch_size % n == 0 and est.total_for(n) <= budget]
    return max(fitting) if fitting else None


def fit_problem(est: Estimate, cfg: RunConfig, device: torch.device, free: int) -> str | None:
    """Why a step of ``est`` cannot run in ``free`` bytes of ``device`` and what would fit; None if it fits."""
    budget = free * (1 - MARGIN_FRACTION) - MARGIN_BYTES
    if est.total <= budget:
        return None
    fits = largest_micro_batch(est, cfg.train.batch_size, budget)
    advice = (f"--set train.micro_batch={fits} keeps the global batch in the memory of {fits} planes"
              if fits is not None else "even one plane per pass does not fit")
    if not cfg.preset.model.checkpointing:
        advice += "; --set model.checkpointing=true keeps a fraction of the activations (recomputed in backward)"
    return (f"one training step needs about {math.ceil(est.total / GIB)} GiB on {device}, {budget / GIB:.0f} GiB "
            f"are usable ({free / GIB:.0f} GiB free less a margin): {advice}")


def check_fits(nets: Networks, cfg: RunConfig, ctx: Context, print_line: Callable[[str], None]) -> Estimate:
    """Print the estimate (rank 0); on CUDA stop every rank with one ``InputError`` when a step
    cannot fit the free memory of any rank's GPU."""
    est = estimate(nets, cfg, ctx)
    if ctx.device.type != "cuda":
        if ctx.is_main:
            print_line(f"{est.describe()} (on {ctx.device}: not checked against free memory)")
        return est
    free, _ = torch.cuda.mem_get_info(ctx.device)
    if ctx.is_main:
        print_line(f"{est.describe()}; {free / GIB:.1f} GiB free on {ctx.device}")
    problems = [p for p in distributed.gather_objects(ctx, fit_problem(est, cfg, ctx.device, free)) if p]
    if problems:
        raise InputError("--preset", problems[0])
    return est
