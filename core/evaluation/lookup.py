"""Colour lookup tables: the references a learnt colorization is measured against (docs/method.md).

- `IntensityLookup` paints every MRI intensity with the mean cryosection colour seen at that
  intensity on the training planes. It knows nothing of anatomy — tissues of equal T1 brightness
  get one colour — so a model that does not beat it has learnt nothing the histogram did not
  already say.
- `TissueLookup` paints every tissue with its mean cryosection colour on the training planes.
  Given the true labels of a phantom's MRI it is an oracle: a perfect segmentation coloured
  perfectly per tissue. What remains of its ΔE to the true colorization is the texture and the
  per-slice exposure of the cryosection, which no MRI holds — the floor of any colorization that
  paints tissues, learnt or not.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from core.dataset.plane_data import resize_batch


def _mean_colours(dataset: Dataset, bins: int, index: Callable[[dict], torch.Tensor], max_planes: int | None,
                  batch_size: int, image_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean cryosection RGB per bin over (up to ``max_planes``) planes, and which bins were seen;
    ``index`` maps a batch to its (N, H, W) bin per pixel."""
    sums = torch.zeros(bins, 3, dtype=torch.float64)
    counts = torch.zeros(bins, dtype=torch.float64)
    seen = 0
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate", None)):
        if image_size is not None:
            batch = resize_batch(batch, image_size)
        take = len(batch["mri"]) if max_planes is None else max_planes - seen
        batch = {k: v[:take] for k, v in batch.items() if isinstance(v, torch.Tensor)}
        where = index(batch).flatten()
        colours = batch["cryo"].float().permute(0, 2, 3, 1).reshape(-1, 3).double()
        sums.index_add_(0, where, colours)
        counts += torch.bincount(where, minlength=bins).double()
        seen += len(batch["mri"])
        if max_planes is not None and seen >= max_planes:
            break
    filled = counts.numpy() > 0
    if not filled.any():
        raise ValueError("no training planes to fit the lookup table on")
    return (sums / counts.clamp(min=1)[:, None]).numpy(), filled


class _ColourTable:
    """An (entries, 3) float32 RGB table and the painting of an index map with it."""

    min_entries = 1

    def __init__(self, table: np.ndarray):
        table = np.asarray(table, dtype=np.float32)
        if table.ndim != 2 or table.shape[1] != 3 or len(table) < self.min_entries:
            raise ValueError(f"a colour table is (entries ≥ {self.min_entries}, 3), got {table.shape}")
        self.table = table

    def _paint(self, index: torch.Tensor) -> torch.Tensor:
        """(N, H, W) entries → (N, 3, H, W) colours."""
        return torch.from_numpy(self.table).to(index.device)[index].permute(0, 3, 1, 2).contiguous()


class IntensityLookup(_ColourTable):
    """Mean RGB per MRI intensity bin over [0, 1]; empty bins interpolated from their neighbours."""

    min_entries = 2

    @property
    def bins(self) -> int:
        return len(self.table)

    @classmethod
    def fit(cls, dataset: Dataset, bins: int = 64, max_planes: int | None = None, batch_size: int = 16,
            image_size: int | None = None) -> "IntensityLookup":
        """Accumulate colour sums per intensity bin over (up to ``max_planes``) training planes."""
        means, filled = _mean_colours(dataset, bins, lambda b: cls._index(b["mri"].float(), bins), max_planes,
                                      batch_size, image_size)
        centres = np.arange(bins)
        table = np.stack([np.interp(centres, centres[filled], means[filled, c]) for c in range(3)], axis=1)
        return cls(table)

    @staticmethod
    def _index(mri: torch.Tensor, bins: int) -> torch.Tensor:
        return (mri[:, 0].clamp(0.0, 1.0) * bins).long().clamp_(max=bins - 1)

    def __call__(self, mri: torch.Tensor) -> torch.Tensor:
        """Colour (N, 3, H, W) of MRI planes (N, 1, H, W) in [0, 1]."""
        return self._paint(self._index(mri.float(), self.bins))


class TissueLookup(_ColourTable):
    """Mean RGB per label id, fitted on the training planes' cryosection labels; ids never seen in
    training are painted with the background's (id 0) colour."""

    @classmethod
    def fit(cls, dataset: Dataset, max_planes: int | None = None, batch_size: int = 16,
            image_size: int | None = None, max_label: int = 255) -> "TissueLookup":
        """Accumulate colour sums per label of ``labels`` over (up to ``max_planes``) training planes."""
        def index(batch: dict) -> torch.Tensor:
            labels = batch["labels"].long()
            if labels.min() < 0 or labels.max() > max_label:
                raise ValueError(f"label ids outside 0…{max_label} in the training planes")
            return labels
        means, filled = _mean_colours(dataset, max_label + 1, index, max_planes, batch_size, image_size)
        means[~filled] = means[0] if filled[0] else 0.0
        return cls(means)

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        """Colour (N, 3, H, W) of label maps (N, H, W)."""
        return self._paint(labels.long().clamp(0, len(self.table) - 1))
