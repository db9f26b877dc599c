"""Serving a trained model: the `Colorizer` (how the model sees a plane), the output fusions and
whole-volume colorization."""
from core.inference.colorizer import DEFAULT_CHECKPOINT, PRECISIONS, Colorizer

__all__ = ["Colorizer", "DEFAULT_CHECKPOINT", "PRECISIONS"]
