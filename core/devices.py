"""Which torch devices this machine offers, and turning a user's device name into one.

One home for device probing: the Colorizer's default, the viewer's device chooser, the training
launcher and ``mricolor colorize --device`` all ask here, so they agree on what exists and on the
order of preference (CUDA, then Apple MPS, then the CPU).
"""
from __future__ import annotations

import torch

from core.errors import InputError


def has_mps() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """Device types present here, best first."""
    return (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if has_mps() else []) + ["cpu"]


def best_device() -> torch.device:
    """CUDA, else Apple MPS, else CPU."""
    return torch.device(available_devices()[0])


def parse_device(name: str | torch.device | None, source: str = "--device") -> torch.device:
    """``name`` (cpu, cuda, cuda:N, mps; None or "auto": the best) as a device that exists here;
    anything else is an ``InputError`` naming ``source``."""
    if name is None or name == "auto":
        return best_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(source, f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type not in available_devices():
        raise InputError(source, f"{device.type.upper() if device.type != 'mps' else 'MPS'} was asked for "
                                 "but is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(source, f"there is no {device} (this machine has {torch.cuda.device_count()} GPUs)")
    return device
