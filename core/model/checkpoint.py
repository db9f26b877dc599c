"""Model checkpoints: one safetensors file, weights plus JSON metadata, no code to unpickle.

Layout of ``*.safetensors`` (the header's ``__metadata__`` holds strings only):

- tensors ``<network>.<state_dict key>`` for each saved network, network names from
  ``Networks.modules()``: ``g_mc``, ``g_cm``, ``d_c``, ``d_m``, ``seg``, and ``calib`` (the
  ``calibrated`` output's colour calibration, `core.model.calibration`, whose architecture is
  ``extra["calibration"]``);
- metadata ``format`` = ``"mricolor.checkpoint"``, ``format_version`` = ``"1"``,
  ``model`` = the ``ModelConfig`` as JSON (enough to rebuild every network),
  ``networks`` = JSON list of the saved network names,
  ``serve`` = the output the ``Colorizer`` serves (a name of ``core.model.outputs.OUTPUTS``),
  ``labels`` = the label table as JSON (optional; S's classes),
  ``extra`` = a JSON object for anything else (training step, preset, data normalisation…).

Reading parses a JSON header and copies raw tensor bytes, so a hostile file cannot run code;
anything that is not such a file, or whose weights do not fit the architecture it declares,
raises ``InputError`` naming the file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import safetensors
import safetensors.torch
import torch
from torch import nn

from core.atomic import write_bytes, write_text
from core.model.config import ModelConfig
from core.errors import InputError
from core.labels import LabelTable
from core.model.outputs import check_output

FORMAT = "mricolor.checkpoint"
FORMAT_VERSION = 1
NETWORK_NAMES = ("g_mc", "g_cm", "d_c", "d_m", "seg", "calib")
#: The key of ``extra`` holding the colour calibration's architecture.
CALIBRATION_KEY = "calibration"
#: File name of a checkpoint inside a checkpoint folder (e.g. ``resources/default_model/``).
CHECKPOINT_FILE = "model.safetensors"


def _unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    for attr in ("module", "_orig_mod"):
        inner = getattr(module, attr, None)
        if isinstance(inner, nn.Module):
            return _unwrap(inner)
    return module


def check_serve(serve: str, config: ModelConfig, calibrated: bool = False) -> None:
    """Raise ``ValueError`` when ``serve`` is unknown, needs a c' decoder the config lacks, or a
    colour calibration the model does not carry (``calibrated``)."""
    try:
        check_output(serve, config, calibrated)
    except ValueError as exc:
        raise ValueError(f"serve: {exc}") from None


def save_checkpoint(path: str | os.PathLike, modules: Mapping[str, nn.Module], config: ModelConfig, *,
                    serve: str = "c_hat", label_table: LabelTable | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``modules`` (name → network, e.g. ``nets.modules()``) atomically; returns the path.

    A folder path gets ``model.safetensors`` inside it. DDP/compile wrappers are unwrapped.
    """
    unknown = sorted(set(modules) - set(NETWORK_NAMES))
    if unknown:
        raise ValueError(f"unknown network name(s) {unknown}; use {NETWORK_NAMES}")
    check_serve(serve, config, "calib" in modules)
    if "calib" in modules and CALIBRATION_KEY not in (extra or {}):
        raise ValueError(f"a checkpoint with a 'calib' network needs its architecture in extra[{CALIBRATION_KEY!r}]")
    if label_table is not None and config.num_classes not in (None, label_table.num_classes):
        raise ValueError(f"label table has {label_table.num_classes} classes, the architecture {config.num_classes}")
    target = Path(path)
    if target.is_dir() or not target.suffix:
        target = target / CHECKPOINT_FILE
    tensors = {f"{name}.{key}": value.detach().to("cpu").contiguous()
               for name, module in modules.items() for key, value in _unwrap(module).state_dict().items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "model": json.dumps(config.to_dict()), "networks": json.dumps(list(modules)),
                "serve": serve, "extra": json.dumps(dict(extra or {}))}
    if label_table is not None:
        metadata["labels"] = label_table.to_json()
    write_bytes(target, safetensors.torch.save(tensors, metadata=metadata))
    return target


@dataclass
class Checkpoint:
    """A loaded checkpoint: the architecture, the weights per network and the metadata."""

    path: Path
    config: ModelConfig
    weights: dict[str, dict[str, torch.Tensor]]
    serve: str = "c_hat"
    label_table: LabelTable | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def load_into(self, name: str, module: nn.Module) -> nn.Module:
        """Copy network ``name``'s weights into ``module``; ``InputError`` when they do not fit."""
        if name not in self.weights:
            raise InputError(self.path, f"checkpoint has no '{name}' network (it has: {', '.join(self.networks)})")
        target = _unwrap(module)
        state = self.weights[name]
        expected = target.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
        if missing or unexpected or reshaped:
            def few(keys: list[str]) -> str:
                return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
            problems = [f"{label}: {few(keys)}" for label, keys in
                        (("missing", missing), ("unexpected", unexpected), ("different shape", reshaped)) if keys]
            raise InputError(self.path, f"weights of '{name}' do not match the architecture ({'; '.join(problems)})")
        target.load_state_dict(state)
        return module

    def build(self, name: str) -> nn.Module:
        """Build network ``name`` from the stored architecture and load its weights."""
        from core.model.calibration import ColourCalibration
        from core.model.networks import build_discriminator, build_generator, build_segmentation

        builders = {"g_mc": lambda: build_generator(self.config, "colorization"),
                    "g_cm": lambda: build_generator(self.config, "grayscale"),
                    "d_c": lambda: build_discriminator(self.config, 3),
                    "d_m": lambda: build_discriminator(self.config, 1),
                    "seg": lambda: build_segmentation(self.config),
                    "calib": lambda: ColourCalibration.from_spec(self.extra.get(CALIBRATION_KEY))}
        if name not in builders:
            raise ValueError(f"unknown network {name!r}; use {NETWORK_NAMES}")
        try:
            module = builders[name]()
        except ValueError as exc:
            raise InputError(self.path, f"cannot build '{name}' from the stored architecture ({exc})") from None
        return self.load_into(name, module)


def resolve_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the ``model.safetensors`` inside a checkpoint folder."""
    p = Path(path)
    return p / CHECKPOINT_FILE if p.is_dir() else p


def _json(metadata: dict[str, str], key: str, source: Path, default: Any = None) -> Any:
    if key not in metadata:
        if default is not None:
            return default
        raise InputError(source, f"not a mricolor checkpoint (metadata '{key}' missing)")
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise InputError(source, f"corrupt checkpoint metadata '{key}' ({exc})") from None


def _read(p: Path, device: str | torch.device) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file; anything else is an ``InputError``."""
    try:
        with safetensors.safe_open(str(p), framework="pt", device=str(device)) as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                return metadata, {}
            return metadata, {key: f.get_tensor(key) for key in f.keys()}
    except (safetensors.SafetensorError, OSError, RuntimeError, ValueError, TypeError) as exc:
        raise InputError(p, f"not a mricolor checkpoint (cannot read it as safetensors: {exc})") from None


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (a file or a folder holding one)."""
    p = resolve_path(path)
    if not p.is_file():
        raise InputError(p, "checkpoint not found")
    metadata, flat = _read(p, device)
    if metadata.get("format") != FORMAT:
        raise InputError(p, "not a mricolor checkpoint (a safetensors file without mricolor metadata)")
    version = metadata.get("format_version", "")
    if not version.isdigit():
        raise InputError(p, "corrupt checkpoint metadata 'format_version'")
    if int(version) > FORMAT_VERSION:
        raise InputError(p, f"checkpoint format {version} is newer than this mricolor reads ({FORMAT_VERSION})")
    model = _json(metadata, "model", p)
    try:
        config = ModelConfig.from_dict(model)
    except (TypeError, ValueError) as exc:
        raise InputError(p, f"invalid architecture in checkpoint ({exc})") from None
    names = _json(metadata, "networks", p)
    if not isinstance(names, list) or not set(names) <= set(NETWORK_NAMES):
        raise InputError(p, f"invalid network list in checkpoint: {names!r}")
    weights: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
    for key, value in flat.items():
        name, _, sub = key.partition(".")
        if name not in weights or not sub:
            raise InputError(p, f"tensor '{key}' belongs to no declared network")
        weights[name][sub] = value
    serve = metadata.get("serve", "c_hat")
    try:
        check_serve(serve, config, "calib" in names)
    except ValueError as exc:
        raise InputError(p, str(exc)) from None
    labels = LabelTable.from_json(metadata["labels"], str(p)) if "labels" in metadata else None
    extra = _json(metadata, "extra", p, default={})
    if not isinstance(extra, dict):
        raise InputError(p, "checkpoint metadata 'extra' must be a JSON object")
    if "calib" in names and CALIBRATION_KEY not in extra:
        raise InputError(p, f"checkpoint has a 'calib' network but no extra[{CALIBRATION_KEY!r}] architecture")
    return Checkpoint(p, config, weights, serve, labels, extra)


def export_inference_checkpoint(source: str | os.PathLike, folder: str | os.PathLike, *, pixel_mm: float,
                                serve: str | None = None, extra: dict | None = None,
                                calibration: nn.Module | None = None) -> Path:
    """Write a slim inference checkpoint into ``folder``: G_m→ĉ only (no discriminators, no
    G_c→m, no U-Net) and the colour calibration (``calibration``, else the source's own if it has
    one), the architecture, the label table, the served output and ``pixel_mm`` in its metadata,
    plus ``model.json`` (architecture and metadata) and ``labels.csv`` (the label table) beside it
    for people to read. Returns the checkpoint path."""
    ck = load_checkpoint(source)
    modules = {"g_mc": ck.build("g_mc")}
    meta = {**ck.extra, **(extra or {}), "pixel_mm": float(pixel_mm)}
    if calibration is None and "calib" in ck.networks:
        calibration = ck.build("calib")
    if calibration is not None:
        modules["calib"] = calibration
        meta[CALIBRATION_KEY] = calibration.spec()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(folder / CHECKPOINT_FILE, modules, ck.config, serve=serve or ck.serve,
                           label_table=ck.label_table, extra=meta)
    write_text(folder / "model.json", json.dumps({"model": ck.config.to_dict(), "serve": serve or ck.serve,
                                                  "extra": meta}, indent=1, default=str) + "\n")
    if ck.label_table is not None:
        ck.label_table.write(folder / "labels.csv")
    return path
