"""The training schedule (the ``train`` section of a preset) and a run's resolved configuration.

Model, loss and optimiser settings live in ``core.model.config``; this module adds what only training
needs (image size, batch, budget, how often to checkpoint, log and draw samples) and joins both
into a ``RunConfig``, the object a run writes beside its checkpoints and resumes from. Command-line
overrides are applied here, so the file on disk always states what actually ran.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.model.config import Preset, _from_dict, apply_ablation, load_preset_dict, preset_path
from core.errors import InputError
from core.model.outputs import OUTPUTS

if TYPE_CHECKING:
    from core.dataset.augment import Augment

PRECISIONS = ("auto", "fp32", "bf16")
SERVE_CHOICES = ("auto", *OUTPUTS)
#: Keys a resumed run may change: they extend or re-pace the run without changing what it learns.
SCHEDULE_KEYS = ("epochs", "max_steps", "max_minutes", "checkpoint_every", "keep_checkpoints", "sample_every",
                 "log_every", "check_sync", "num_workers", "seg_epochs", "seg_max_steps", "seg_max_minutes")


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and bookkeeping of a training run.

    ``batch_size`` is per process (the authors' 28 was per GPU); the global batch is
    ``batch_size × world size`` and is logged. The run stops after ``epochs`` passes over the
    training planes, at ``max_steps`` optimiser steps or after ``max_minutes`` of training
    (checkpointed like a normal end), whichever comes first. ``ema_decay`` > 0
    keeps an exponential moving average of G_m→ĉ's weights, used for samples, evaluation and the
    exported model (0: off). ``precision`` "auto" means bf16 autocast on CUDA, fp32 elsewhere.
    ``serve`` is the output the exported checkpoint declares; "auto" picks the one with the lowest
    ΔE to the true colorization on the test planes when the data has it, else ĉ.
    ``check_sync`` gathers a checksum of every network from every process after each step and
    stops when they differ (a debug switch that proves gradients are all-reduced).
    The ``seg_*`` keys schedule the U-Net pre-training; ``seg_class_balance`` weights its
    cross-entropy by median frequency (unless ``loss.class_weights`` are given).
    """

    image_size: int = 128
    batch_size: int = 4
    epochs: int = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    sample_every: int = 200
    sample_count: int = 4
    log_every: int = 10
    ema_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0
    precision: str = "auto"
    serve: str = "auto"
    eval_planes: int | None = None
    check_sync: bool = False
    seg_epochs: int = 5
    seg_max_steps: int | None = None
    seg_max_minutes: float | None = None
    seg_batch_size: int = 8
    seg_lr: float = 1e-3
    seg_class_balance: bool = False

    def __post_init__(self) -> None:
        positive = ("image_size", "batch_size", "epochs", "checkpoint_every", "keep_checkpoints", "sample_every",
                    "sample_count", "log_every", "seg_epochs", "seg_batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_steps", "seg_max_steps", "eval_planes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or null, got {value!r}")
        for name in ("max_minutes", "seg_max_minutes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"{name} must be a positive number or null, got {value!r}")
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (the generators halve twice), got {self.image_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {self.num_workers!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.serve not in SERVE_CHOICES:
            raise ValueError(f"serve must be one of {SERVE_CHOICES}, got {self.serve!r}")
        if not self.seg_lr > 0:
            raise ValueError(f"seg_lr must be positive, got {self.seg_lr!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, data, "train")


@dataclass(frozen=True)
class RunConfig:
    """A preset (model, loss, optim) plus its training schedule: everything a run depends on."""

    preset: Preset
    train: TrainConfig

    @property
    def ablation(self) -> str | None:
        return self.preset.raw.get("ablation")

    @property
    def augment(self) -> "Augment | None":
        """The training planes' augmentation: the preset's ``augment`` section (``core.dataset.Augment``
        fields; keys not given take Augment's defaults), or None — no augmentation — without one,
        so runs and presets from before the section existed train as they did."""
        from core.dataset.augment import Augment   # torch: only when a run asks

        section = self.preset.raw.get("augment")
        return None if section is None else Augment.from_dict(section)

    def to_dict(self) -> dict[str, Any]:
        out = self.preset.to_dict()
        out["train"] = self.train.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "RunConfig":
        """Build from a mapping (a preset file or a run's ``config.json``); ``InputError`` when bad."""
        preset = Preset.from_dict(data, source=source)
        try:
            train = TrainConfig.from_dict(data.get("train", {}))
        except (TypeError, ValueError) as exc:
            raise InputError(source, f"invalid preset: {exc}") from None
        config = cls(preset, train)
        try:
            config.augment
        except (TypeError, ValueError) as exc:
            raise InputError(source, f"invalid preset: 'augment': {str(exc).removeprefix('augmentation: ')}") from None
        return config

    def with_overrides(self, overrides: dict[str, Any], source: str = "overrides") -> "RunConfig":
        """A copy with ``{"section.key": value}`` (or bare train keys) replaced and re-validated."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides), source)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``data`` with dotted keys set: ``train.batch_size``, ``loss.lambda_l1_c_prime``…;
    a key without a dot is a ``train`` key. ``None`` values are skipped (flag not given)."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        out.setdefault(section or "train", {})[name] = value
    return out


def resolve(preset: str | Path = "lite", ablation: str | None = None,
            overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a shipped preset name or a JSON path, apply an ablation (A1–A5) and overrides."""
    source = str(preset_path(preset))
    data = apply_ablation(load_preset_dict(preset), ablation)
    data.setdefault("name", Path(source).stem)
    return RunConfig.from_dict(apply_overrides(data, overrides or {}), source)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``section.key=value`` from the command line; the value is JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InputError("--set", f"expected section.key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value
