"""Training datasets: registered volumes plus a seeded manifest of planes, cut on the fly.

    from core.dataset import PlaneDataset, SubjectBatchSampler, Augment
    ds = PlaneDataset("dataset/", "train", augment=Augment())
    batch = ds.__getitems__(range(28))   # dict: mri (28,1,H,W), cryo (28,3,H,W), labels (28,H,W), …

Build a dataset with ``mricolor prepare`` or `core.dataset.build.build_dataset`.
"""
from core.dataset.augment import Augment
from core.dataset.manifest import Manifest, PlaneSettings, SubjectEntry
from core.dataset.torch_dataset import PlaneDataset, SubjectBatchSampler, SubjectSlicer

__all__ = ["Manifest", "PlaneSettings", "SubjectEntry", "PlaneDataset", "SubjectBatchSampler", "SubjectSlicer",
           "Augment"]
