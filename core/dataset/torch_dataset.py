"""A map-style torch Dataset that cuts (MRI, cryosection, labels[, truth]) slices on the fly.

Item ``i`` of a split is plane ``i`` of the manifest's planes of that split. Cutting is batched:
``__getitems__`` (which torch's DataLoader calls with a whole batch of indices) groups the
planes by subject and cuts each subject's planes in one fused ``grid_sample`` call for the
images plus one for the labels (`SubjectSlicer`), instead of one call per slice and volume.

Use with a DataLoader:

    ds = PlaneDataset("dataset/", "train", augment=Augment())
    loader = DataLoader(ds, batch_sampler=SubjectBatchSampler(ds, 28, seed=0),
                        collate_fn=PlaneDataset.collate, num_workers=2)

or, under DDP, ``SubjectBatchSampler(ds, 28, num_replicas=world, rank=rank)`` (every rank gets
the same number of batches), or a plain ``DistributedSampler(ds)`` with ``batch_size=28`` and
``collate_fn=PlaneDataset.collate`` (batches may then span subjects; still one call per
subject). Call ``set_epoch(e)`` on the dataset and the sampler each epoch so augmentation and
order change between epochs yet repeat exactly for the same seed.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from core.dataset.augment import Augment
from core.dataset.manifest import Manifest
from core.errors import InputError
from core.planes import Plane, plane_grid
from core.volume import Volume

#: Fields a sample may carry and the kind of volume each is read as.
FIELD_KINDS = {"mri": "scalar", "cryo": "rgb", "labels": "labels", "truth": "rgb", "mri_labels": "labels"}
#: What training needs; ask for "truth" (phantom) or "mri_labels" explicitly, e.g. for evaluation.
DEFAULT_FIELDS = ("mri", "cryo", "labels")


class SubjectSlicer:
    """One subject's volumes (all on one grid), fused so a batch of planes costs two grid_sample calls.

    The image volumes (MRI, cryosection, truth) are stacked into one channels-last float tensor:
    ``grid_sample`` then reads every channel of a voxel from the same cache line, which makes
    seven channels cost barely more than one (the 3-D CPU kernel is bound by memory latency).
    Labels are cut in a second, nearest-neighbour call. Values equal `core.planes.sample`'s.
    """

    def __init__(self, volumes: dict[str, Volume], device: torch.device | str | None = None, name: str = "subject"):
        self.frame = next(iter(volumes.values()))
        for f, v in volumes.items():
            if not v.same_frame(self.frame, atol=1e-4):
                raise InputError(name, f"volume '{f}' lies on another grid than the others; a dataset's volumes "
                                       f"must share the cryosection grid (rebuild it with `mricolor prepare`)")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        images = {f: v for f, v in volumes.items() if not v.is_labels}
        self.channels: dict[str, slice] = {}
        start = 0
        for f, v in images.items():
            self.channels[f] = slice(start, start + v.channels)
            start += v.channels
        z, y, x = self.frame.array.shape[:3]
        fused = torch.empty((1, z, y, x, start), dtype=torch.float32)
        for f, v in images.items():
            values = torch.from_numpy(np.ascontiguousarray(v.array)).reshape(z, y, x, -1)
            fused[0, ..., self.channels[f]] = values.float() / 255 if v.array.dtype == np.uint8 else values.float()
        self.images = fused.permute(0, 4, 1, 2, 3).to(self.device)  # (1, C, Z, Y, X), channels-last strides
        self.labels = {f: torch.from_numpy(np.ascontiguousarray(v.array)).float()[None, None].to(self.device)
                       for f, v in volumes.items() if v.is_labels}

    def cut(self, planes: list[Plane]) -> dict[str, torch.Tensor]:
        """Every field of ``planes``: images (n, C, H, W) float32, labels (n, H, W) int64.

        Each plane is its own batch element (the volume is expanded, not copied), because the
        3-D ``grid_sample`` CPU kernel parallelises over the batch only.
        """
        grid = plane_grid(self.frame, planes, self.device)  # (n, 1, H, W, 3)
        n = len(planes)
        out: dict[str, torch.Tensor] = {}
        if self.channels:
            cut = F.grid_sample(self.images.expand(n, -1, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                                align_corners=True)[:, :, 0]
            for f, sl in self.channels.items():
                out[f] = cut[:, sl].contiguous()
        for f, volume in self.labels.items():
            cut = F.grid_sample(volume.expand(n, -1, -1, -1, -1), grid, mode="nearest", padding_mode="zeros",
                                align_corners=True)
            out[f] = cut[:, 0, 0].long()
        return out


class PlaneDataset(Dataset):
    """Slices of one split of a dataset; items are dicts of tensors.

    ``mri`` (1, H, W) float32 in [0, 1], ``cryo`` and ``truth`` (3, H, W) float32 in [0, 1],
    ``labels``/``mri_labels`` (H, W) int64, plus ``index`` (the manifest plane index) and
    ``subject`` (the subject index). ``fields`` defaults to mri, cryo, labels. ``device`` cuts
    slices where the volumes live (e.g. "cuda" with ``num_workers=0``).
    """

    def __init__(self, manifest: Manifest | str | os.PathLike, split: str | None = "train", *,
                 fields: Sequence[str] | None = None, augment: Augment | None = None, seed: int = 0,
                 device: torch.device | str | None = None):
        self.manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
        self.split = split
        self.positions = self.manifest.indices(split)
        if len(self.positions) == 0:
            raise InputError(self.manifest.root, f"has no {split or 'any'} planes")
        subjects = sorted(set(self.manifest.plane_subject[self.positions].tolist()))
        have = [set(self.manifest.subjects[s].volumes) for s in subjects]
        self.fields = tuple(fields) if fields is not None else DEFAULT_FIELDS
        for f in self.fields:
            if f not in FIELD_KINDS:
                raise InputError("fields", f"unknown field {f!r}; known: {sorted(FIELD_KINDS)}")
            lacking = [self.manifest.subjects[s].id for s, h in zip(subjects, have) if f not in h]
            if lacking:
                raise InputError(self.manifest.root, f"subjects {lacking} have no '{f}' volume")
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.device = device
        self._slicers: dict[int, SubjectSlicer] = {}

    def __len__(self) -> int:
        return len(self.positions)

    def __getstate__(self) -> dict:
        """Pickle without the loaded volumes (spawned workers load their own)."""
        state = self.__dict__.copy()
        state["_slicers"] = {}
        return state

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (deterministically) for a new epoch."""
        self.epoch = int(epoch)

    def subjects_of(self, items: Sequence[int]) -> np.ndarray:
        """Subject index of each dataset item."""
        return self.manifest.plane_subject[self.positions[np.asarray(items, dtype=np.int64)]]

    def slicer(self, subject: int) -> SubjectSlicer:
        """The subject's volumes, read once per process and kept fused for cutting."""
        if subject not in self._slicers:
            from core.io import read_volume     # here: training on planes needs no SimpleITK until it reads

            volumes = {}
            for f in self.fields:
                path = self.manifest.volume_path(subject, f)
                volumes[f] = read_volume(path, expect=FIELD_KINDS[f])
                if (FIELD_KINDS[f] == "labels") != volumes[f].is_labels:
                    raise InputError(path, "is a label volume without its .labels.csv table" if FIELD_KINDS[f] == "labels"
                                     else f"is a label volume, but '{f}' must be an image")
            self._slicers[subject] = SubjectSlicer(volumes, self.device, self.manifest.subjects[subject].id)
        return self._slicers[subject]

    def preload(self) -> "PlaneDataset":
        """Read every volume now, e.g. before DataLoader workers fork and share the memory."""
        for subject in sorted(set(self.subjects_of(range(len(self))).tolist())):
            self.slicer(subject)
        return self

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        """Generator of one plane's geometry (stream 0) or intensity (stream 1) augmentation."""
        return np.random.default_rng([self.seed, self.epoch, int(index), stream])

    def planes(self, items: Sequence[int]) -> list[Plane]:
        """The (augmented) planes of dataset items."""
        out = []
        for item in items:
            index = int(self.positions[item])
            plane = self.manifest.plane(index)
            out.append(self.augment.plane(plane, self._rng(index, 0)) if self.augment else plane)
        return out

    def __getitems__(self, items: Sequence[int]) -> dict[str, torch.Tensor]:
        """A whole batch as one dict of stacked tensors (see the class doc for the keys)."""
        items = [int(i) for i in items]
        if any(i < 0 or i >= len(self) for i in items):
            raise IndexError(f"items out of range 0..{len(self) - 1}")
        planes = self.planes(items)
        subjects = self.subjects_of(items)
        groups: dict[int, list[int]] = defaultdict(list)
        for pos, s in enumerate(subjects.tolist()):
            groups[s].append(pos)
        batch: dict[str, torch.Tensor] = {}
        for s, where in groups.items():
            for f, cut in self.slicer(s).cut([planes[p] for p in where]).items():
                if len(groups) == 1:
                    batch[f] = cut
                    continue
                if f not in batch:
                    batch[f] = torch.empty((len(items),) + tuple(cut.shape[1:]), dtype=cut.dtype, device=cut.device)
                batch[f][torch.as_tensor(where, device=cut.device)] = cut
        if self.augment is not None and self.augment.changes_mri and "mri" in batch:
            for pos, item in enumerate(items):
                params = self.augment.mri_params(self._rng(int(self.positions[item]), 1))
                batch["mri"][pos] = self.augment.mri(batch["mri"][pos], params)
        batch["index"] = torch.as_tensor(self.positions[items], dtype=torch.int64)
        batch["subject"] = torch.as_tensor(subjects, dtype=torch.int64)
        return batch

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([item]).items()}

    @staticmethod
    def collate(batch: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """DataLoader ``collate_fn``: passes a batch from ``__getitems__`` through, stacks single items."""
        if isinstance(batch, dict):
            return batch
        return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


class SubjectBatchSampler(Sampler[list[int]]):
    """Batches of items from one subject each, shuffled per epoch, optionally sharded for DDP.

    Every rank receives the same number of batches (the list is padded by repeating batches),
    as DDP needs; ``drop_last`` drops each subject's incomplete last batch.
    """

    def __init__(self, dataset: PlaneDataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, num_replicas: int = 1, rank: int = 0):
        if batch_size < 1:
            raise InputError("batch size", f"must be at least 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise InputError("rank", f"must lie in 0..{num_replicas - 1}, got {rank}")
        self.subjects = dataset.subjects_of(range(len(dataset)))
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, int(seed)
        self.drop_last, self.num_replicas, self.rank = drop_last, num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = []
        for s in np.unique(self.subjects):
            items = np.flatnonzero(self.subjects == s)
            if self.shuffle:
                items = rng.permutation(items)
            for start in range(0, len(items), self.batch_size):
                chunk = items[start:start + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append(chunk.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        per_rank = -(-len(batches) // self.num_replicas)
        return [batches[i % len(batches)] for i in range(per_rank * self.num_replicas)] if batches else []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._all_batches()[self.rank::self.num_replicas])

    def __len__(self) -> int:
        return len(self._all_batches()) // self.num_replicas
