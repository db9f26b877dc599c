"""Training bodies that look like the scans users bring: phantom scans paired with their truth.

Users colorize whole bodies, body regions and 1 mm brain T1 (often skull-stripped), from many
scanners. Each training subject seed therefore gives every requested kind of scan
(`core.phantom.scans`: ``body``, ``head``, ``head-brain``…) as it is, plus ``variants`` draws of
`ScanVariety` (region crops, sequence, intensity curve, bias, noise, skull-stripping, voxel size,
RAS storage). Each is paired with its *true colorization* on its own grid — the phantom's
perfectly registered cryosection — so no registration error is learnt as blur. (The paper's
pairs, MRI registered to the cryosection, stay the default of `mricolor prepare`.)
"""
from __future__ import annotations

import zlib
from functools import partial
from typing import Callable

import numpy as np

from core.dataset.build import Body
from core.dataset.scan_variety import ScanVariety
from core.errors import InputError
from core.phantom.scans import check_kinds, phantom_scan, stripped_labels


def scan_body(seed: int, kind: str, variant: int, variety: ScanVariety, data_seed: int) -> Body:
    """Scan ``kind`` of phantom ``seed``; ``variant`` 0 as generated, k > 0 the k-th `ScanVariety` draw."""
    scan = phantom_scan(seed, kind)
    mri, labels, truth = scan.mri, scan.labels, scan.truth
    if variant:
        rng = np.random.default_rng([data_seed, seed, zlib.crc32(kind.encode()), variant])
        mri, labels, truth = variety.apply(mri, labels, truth, labels.label_table, rng)
        labels = stripped_labels(labels, truth)  # a variant may strip the skull
    metadata = {"source": "phantom", "seed": seed, "scan": kind, "variant": variant,
                "spacing_mm": [round(float(v), 3) for v in mri.spacing]}
    return Body(f"phantom-{seed}-{kind}-{variant}", mri, truth, labels, metadata, aligned=True)


def scan_bodies(train: list[int], test: list[int], kinds: tuple[str, ...], variants: int,
                variety: ScanVariety | None = None, data_seed: int = 0) -> list[tuple[Callable[[], Body], str]]:
    """Every kind of scan of every seed, split by subject; training seeds also give ``variants``
    `ScanVariety` draws each (test seeds only the plain scans)."""
    check_kinds(kinds)
    if set(train) & set(test):
        raise InputError("subjects", f"seeds {sorted(set(train) & set(test))} are in both the training and the test subjects")
    if not train or not test:
        raise InputError("subjects", "a split by subject needs at least one training and one test subject")
    if variants < 0:
        raise InputError("--variants", f"must be 0 or more, got {variants}")
    # voxels no finer than 1 mm: a 0.8 mm head holds twice the voxels, and every training volume
    # stays in memory while planes are cut (the model sees planes of its own pixel size anyway)
    variety = variety or ScanVariety(voxel_mm=(1.0, 4.0))
    out = []
    for split, seeds, count in (("train", train, variants), ("test", test, 0)):
        out += [(partial(scan_body, s, kind, v, variety, data_seed), split)
                for s in seeds for kind in kinds for v in range(count + 1)]
    return out
