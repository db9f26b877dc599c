"""The intensity→colour lookup table: the baseline a learnt colorization has to beat.

Fitted on the training planes, it paints every MRI intensity with the mean cryosection colour
seen at that intensity. It knows nothing of anatomy — tissues of equal T1 brightness get one
colour — so a model that does not beat it has learnt nothing the histogram did not already say
(SPEC §7).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from core.training.data import resize_batch


class IntensityLookup:
    """Mean RGB per MRI intensity bin over [0, 1]; empty bins interpolated from their neighbours."""

    def __init__(self, table: np.ndarray):
        table = np.asarray(table, dtype=np.float32)
        if table.ndim != 2 or table.shape[1] != 3 or len(table) < 2:
            raise ValueError(f"a lookup table is (bins ≥ 2, 3), got {table.shape}")
        self.table = table

    @property
    def bins(self) -> int:
        return len(self.table)

    @classmethod
    def fit(cls, dataset: Dataset, bins: int = 64, max_planes: int | None = None, batch_size: int = 16,
            image_size: int | None = None) -> "IntensityLookup":
        """Accumulate colour sums per intensity bin over (up to ``max_planes``) training planes."""
        sums = torch.zeros(bins, 3, dtype=torch.float64)
        counts = torch.zeros(bins, dtype=torch.float64)
        seen = 0
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate", None)):
            if image_size is not None:
                batch = resize_batch(batch, image_size)
            mri, cryo = batch["mri"].float(), batch["cryo"].float()
            if max_planes is not None:
                mri, cryo = mri[: max_planes - seen], cryo[: max_planes - seen]
            index = cls._index(mri, bins).flatten()
            colours = cryo.permute(0, 2, 3, 1).reshape(-1, 3).double()
            sums.index_add_(0, index, colours)
            counts += torch.bincount(index, minlength=bins).double()
            seen += len(mri)
            if max_planes is not None and seen >= max_planes:
                break
        filled = counts.numpy() > 0
        if not filled.any():
            raise ValueError("no training planes to fit the lookup table on")
        means = (sums / counts.clamp(min=1)[:, None]).numpy()
        centres = np.arange(bins)
        table = np.stack([np.interp(centres, centres[filled], means[filled, c]) for c in range(3)], axis=1)
        return cls(table)

    @staticmethod
    def _index(mri: torch.Tensor, bins: int) -> torch.Tensor:
        return (mri[:, 0].clamp(0.0, 1.0) * bins).long().clamp_(max=bins - 1)

    def __call__(self, mri: torch.Tensor) -> torch.Tensor:
        """Colour (N, 3, H, W) of MRI planes (N, 1, H, W) in [0, 1]."""
        table = torch.from_numpy(self.table).to(mri.device)
        return table[self._index(mri.float(), self.bins)].permute(0, 3, 1, 2).contiguous()
