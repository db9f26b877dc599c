"""Shipped data: default checkpoint, tissue tables, presets.

A package (not a bare folder) so that a non-editable install carries the files along.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """Absolute path of a shipped resource file, e.g. ``path("presets/lite.json")``."""
    return ROOT / name
