"""The colorization network the viewer runs, loaded with a visible fallback (no Qt).

An explicit checkpoint that fails is an error the user sees; a missing shipped default falls
back to an untrained ``lite`` network so everything else still works, and the viewer says so.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from core.errors import InputError
from core.inference import Colorizer

UNTRAINED_NOTICE = "untrained model — colours are not meaningful"
#: File names that are opened as checkpoints, not volumes.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


@dataclass(frozen=True)
class LoadedNetwork:
    """A colorizer, where it came from, and the notice to show (None when it is a real checkpoint)."""

    colorizer: Colorizer
    source: str
    notice: str | None = None

    def on(self, device: str) -> "LoadedNetwork":
        """The same network on ``device`` (a copy: this one keeps serving until the copy is ready)."""
        return LoadedNetwork(self.colorizer.to(device), self.source, self.notice)


def load_network(checkpoint: str | os.PathLike | None = None, device: str | None = None,
                 fallback_preset: str = "lite", warm_size: int | None = None) -> LoadedNetwork:
    """Load ``checkpoint`` (None: the shipped default) on ``device``.

    An explicit checkpoint that fails raises `InputError` (the user asked for it); a missing
    shipped default falls back to an untrained ``fallback_preset`` network with a notice.
    ``warm_size`` runs one plane of that size so the first live plane does not pay the
    one-off kernel set-up (on a CPU the first forward costs several times a later one).
    """
    if checkpoint is not None:
        loaded = LoadedNetwork(Colorizer.from_checkpoint(checkpoint, device=device), os.fspath(checkpoint))
    else:
        try:
            loaded = LoadedNetwork(Colorizer.from_checkpoint(None, device=device), "default checkpoint")
        except InputError:
            loaded = LoadedNetwork(Colorizer.untrained(fallback_preset, device=device),
                                   f"untrained {fallback_preset}", UNTRAINED_NOTICE)
    if warm_size:
        loaded.colorizer.colorize(np.zeros((1, warm_size, warm_size), dtype=np.float32))
    return loaded
