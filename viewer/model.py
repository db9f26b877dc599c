"""The viewer's side of `core.inference.Colorizer`: loading with a visible fallback, devices, outputs (no Qt).

Until trained weights ship, ``from_checkpoint()`` without a path raises `InputError`; the viewer
then runs an untrained ``lite`` model so everything else still works, and says so on screen.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import InputError

UNTRAINED_NOTICE = "untrained model — colours are not meaningful"


@dataclass(frozen=True)
class LoadedModel:
    """A colorizer, where it came from, and the notice to show (None when it is a real checkpoint)."""

    colorizer: object
    source: str
    notice: str | None = None
    pixel_mm: float | None = None  # in-plane pixel size the model was trained at (None: unknown)


def available_devices() -> list[str]:
    """Devices the chooser offers, best first (CUDA > MPS > CPU, as the Colorizer picks)."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices + ["cpu"]


def load_model(checkpoint: str | os.PathLike | None = None, device: str | None = None,
               fallback_preset: str = "lite", warm_size: int | None = None) -> LoadedModel:
    """Load ``checkpoint`` (None: the shipped default) on ``device``.

    An explicit checkpoint that fails raises `InputError` (the user asked for it); a missing
    shipped default falls back to an untrained ``fallback_preset`` model with a notice.
    ``warm_size`` runs one plane of that size so the first live plane does not pay the
    one-off kernel set-up (on a CPU the first forward costs several times a later one).
    """
    from core.inference import Colorizer

    from core.inference.volume import checkpoint_pixel_mm

    if checkpoint is not None:
        loaded = LoadedModel(Colorizer.from_checkpoint(checkpoint, device=device), os.fspath(checkpoint),
                             pixel_mm=checkpoint_pixel_mm(checkpoint))
    else:
        try:
            loaded = LoadedModel(Colorizer.from_checkpoint(None, device=device), "default checkpoint",
                                 pixel_mm=checkpoint_pixel_mm(None))
        except InputError:
            loaded = LoadedModel(untrained(fallback_preset, device), f"untrained {fallback_preset}", UNTRAINED_NOTICE)
    if warm_size:
        loaded.colorizer.colorize(np.zeros((1, warm_size, warm_size), dtype=np.float32))
    return loaded


def untrained(preset: str = "lite", device: str | None = None, seed: int = 0) -> object:
    """An untrained colorizer (tests, and the fallback while no weights ship)."""
    from core.inference import Colorizer

    return Colorizer.untrained(preset=preset, seed=seed, device=device)


def on_device(colorizer, device: str) -> object:
    """A copy of ``colorizer`` on ``device``; the original keeps serving until the copy is ready.

    The generator is copied rather than moved because the live worker may be running it.
    """
    from core.inference import Colorizer

    return Colorizer(copy.deepcopy(colorizer.generator), colorizer.config, serve=colorizer.serve, device=device,
                     max_batch=colorizer.max_batch, label_table=colorizer.label_table, source=colorizer.source)


def outputs_of(colorizer) -> tuple[str, ...]:
    """The outputs ``colorize`` can return (ĉ always; c′ and their fusion with a c′ decoder)."""
    return tuple(getattr(colorizer, "outputs", ("c_hat",)))


def served_output(colorizer) -> str:
    """The output the checkpoint declares as its colorization."""
    return str(getattr(colorizer, "serve", "c_hat"))


def device_name(colorizer) -> str:
    return str(getattr(colorizer, "device", "cpu"))
