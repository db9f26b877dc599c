"""Sidecar JSON for formats without a physical header (image stacks, raw slices, .npy).

Keys (all optional): ``spacing`` [dx, dy, dz] mm, ``origin`` [x, y, z] mm, ``direction``
(9 numbers, ITK order), ``flip_z`` (reverse slice order), ``layout`` ("planar" |
"interleaved" | "auto") and ``shape`` [w, h] or [w, h, d] and ``header_bytes`` and ``dtype``
for raw files, ``downsample`` [fx, fy, fz], ``label_table`` (a CSV/JSON file name beside it).
"""
from __future__ import annotations

from pathlib import Path

from core.errors import InputError
from core.jsonfile import read_json_object

KNOWN_KEYS = {"spacing", "origin", "direction", "flip_z", "layout", "shape", "header_bytes", "dtype",
              "downsample", "label_table"}


def sidecar_for(path: Path) -> Path | None:
    """The sidecar of a file (``x.raw.json`` or ``x.json``) or a folder (``volume.json`` inside)."""
    candidates = ([path / "volume.json"] if path.is_dir()
                  else [path.with_name(path.name + ".json"), path.with_suffix(".json")])
    return next((c for c in candidates if c.is_file() and c != path), None)


def read_sidecar(path: Path) -> dict:
    """Options from the sidecar of ``path`` ({} when there is none)."""
    side = sidecar_for(path)
    if side is None:
        return {}
    data = read_json_object(side, "sidecar")
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise InputError(side, f"unknown sidecar keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    if "label_table" in data:
        data["label_table"] = str(side.parent / data["label_table"])
    return data
