"""The memory a colorization step needs, estimated before training, against a measurement; the
refusal of a step that cannot fit; activation checkpointing and micro-batches changing nothing
but memory; the host syncs a step makes."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from core.errors import InputError
from core.model.networks import build_generator, build_networks
from core.model.run_config import resolve
from core.training import memory
from core.training.colorization import ColorizationTask
from core.training.distributed import Context
from core.training.memory import GIB, Estimate
from helpers_training import synthetic_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CORE = str(Path(memory.__file__).resolve().parents[1])


def _nets(cfg):
    nets = build_networks(cfg.preset.model, num_classes=4, seed=0)
    nets.freeze_segmentation()
    return nets


@pytest.mark.parametrize("precision, checkpointing", [("fp32", False), ("bf16", False), ("fp32", True)])
def test_the_estimate_from_small_probes_agrees_with_a_measurement_at_the_training_size(precision, checkpointing):
    cfg = resolve("tiny", overrides={"image_size": 96, "batch_size": 2, "precision": precision,
                                     "model.checkpointing": checkpointing})
    nets = _nets(cfg)
    est = memory.estimate(nets, cfg, Context())
    measured = memory.step_saved_bytes(nets, cfg, Context(), 2, 96)
    assert est.total_for(2) - est.states == pytest.approx(measured, rel=0.25)


def test_checkpointing_keeps_less_and_bf16_keeps_less_than_fp32():
    sizes = {}
    for precision, checkpointing in (("fp32", False), ("bf16", False), ("fp32", True)):
        cfg = resolve("lite", overrides={"precision": precision, "model.checkpointing": checkpointing})
        sizes[precision, checkpointing] = memory.estimate(_nets(cfg), cfg, Context()).per_plane
    assert sizes["fp32", True] < 0.7 * sizes["fp32", False] and sizes["bf16", False] < sizes["fp32", False]


def test_a_step_that_cannot_fit_the_gpu_is_refused_with_what_would_fit(monkeypatch):
    """The paper preset's figures on an 80 GB card: 28 planes of ~4 GiB cannot fit, 14 can."""
    cfg = resolve("paper", overrides={"model.checkpointing": False})
    paper = Estimate(per_plane=4 * GIB, planes=28, fixed=0.25 * GIB, states=1.6 * GIB)
    monkeypatch.setattr(memory, "estimate", lambda *args, **kwargs: paper)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (79 * GIB, 80 * GIB))
    lines = []
    with pytest.raises(InputError, match=r"needs about 114 GiB .* --set train.micro_batch=14 .* model.checkpointing=true"):
        memory.check_fits(None, cfg, Context(device=torch.device("cuda", 0)), lines.append)
    assert lines and lines[0].startswith("memory estimate: 4.00 GiB of activations per plane × 28 planes")
    assert memory.fit_problem(paper, cfg, torch.device("cuda", 0), 140 * GIB) is None      # an H200 takes it


def test_checkpointing_changes_no_output_and_no_gradient():
    cfg = resolve("tiny").preset.model
    x = torch.rand(2, 1, 32, 32)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        g = build_generator(dataclasses.replace(cfg, checkpointing=checkpointing))
        sum(out.square().mean() for out in g(x).values()).backward()
        grads.append({name: p.grad.clone() for name, p in g.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    assert all(torch.allclose(grads[0][k], grads[1][k], atol=1e-6) for k in grads[0])


def _one_step(micro_batch):
    cfg = resolve("tiny", ablation="A2", overrides={"batch_size": 4, "micro_batch": micro_batch, "ema_decay": 0.0})
    data = synthetic_data(4, 1)
    task = ColorizationTask(cfg, Context(), data, None)
    batch = {k: torch.stack([data.train[i][k] for i in range(4)]) for k in ("mri", "cryo", "labels")}
    losses = task.step(batch, 1)
    return losses, {name: p.grad.clone() for module in (task.nets.g_mc, task.nets.d_c)
                    for name, p in module.named_parameters()}


def test_micro_batches_take_the_step_of_the_whole_batch():
    """The same losses and gradients (of the generators' and the discriminators' step)."""
    whole, grads = _one_step(None)
    parts, parted = _one_step(1)
    assert parts == pytest.approx(whole, rel=1e-4)
    assert all(torch.allclose(grads[k], parted[k], rtol=1e-3, atol=1e-6) for k in grads)


def test_a_colorization_step_reads_its_losses_back_twice_and_copies_nothing_to_the_device(monkeypatch):
    """One wait for the device per optimiser (the stop on a non-finite loss needs it); before, each
    SSIM window copied its taps to the device and every loss part was read back on its own."""
    cfg = resolve("tiny", ablation="A2", overrides={"batch_size": 2})
    data = synthetic_data(2, 1)
    task = ColorizationTask(cfg, Context(), data, None)
    batch = {k: torch.stack([data.train[i][k] for i in range(2)]) for k in ("mri", "cryo", "labels")}
    task.step(batch, 1)                                     # per-device constants are made once
    calls = []

    def counted(name, original):
        def call(*args, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith(CORE):     # the project's calls, not Adam's
                calls.append(name)
            return original(*args, **kwargs)
        return call

    for owner, name in ((torch.Tensor, "tolist"), (torch.Tensor, "item"), (torch.Tensor, "__float__"),
                        (torch, "tensor")):
        monkeypatch.setattr(owner, name, counted(name, getattr(owner, name)))
    task.step(batch, 2)
    assert calls.count("tolist") == 2 and not {"item", "__float__", "tensor"} & set(calls), calls


def test_the_paper_presets_step_is_estimated_at_the_start_and_fits_an_80_gb_card():
    """bf16 at 256², 28 planes per GPU, checkpointing on (the preset): ~1.6 GiB per plane (3.3 without)."""
    cfg = resolve("paper", overrides={"precision": "bf16"})
    lines = []
    est = memory.check_fits(_nets(cfg), cfg, Context(), lines.append)
    assert lines[0].startswith("memory estimate: ") and "× 28 planes per pass" in lines[0]
    assert 1.2 * GIB < est.per_plane < 2.0 * GIB and est.total < 70 * GIB
