"""Synthetic image pairs shared by the metric tests.

``golden_pair`` is the recipe of ``shared/reference/metrics.md`` §2.1: the golden values listed
there (computed with scikit-image, pytorch_msssim and piq, not with our code) belong to exactly
these arrays, so the order of random draws must not change.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

LUMA = np.array([0.299, 0.587, 0.114])


@lru_cache(maxsize=None)
def golden_pair(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mri, cryo, col, luma of col), float64 in [0, 1], for an h × h plane."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:h] / h
    mri = np.zeros((h, h))
    for _ in range(6):
        cx, cy = rng.uniform(.2, .8), rng.uniform(.2, .8)
        s, a = rng.uniform(.05, .2), rng.uniform(.3, 1)
        mri += a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    mri += 0.08 * np.sin(40 * xx) * np.sin(33 * yy) + 0.03 * rng.standard_normal((h, h))
    mri = np.clip(mri / mri.max(), 0, 1)
    cryo = np.stack([np.clip(.25 + .7 * mri, 0, 1), np.clip(.15 + .5 * mri ** 1.5, 0, 1),
                     np.clip(.35 - .25 * mri, 0, 1)], axis=-1)
    cryo = np.clip(cryo + .03 * gaussian_filter(rng.standard_normal((h, h, 3)), sigma=(1.5, 1.5, 0)), 0, 1)
    col = np.stack([np.clip(.2 + .75 * gaussian_filter(mri, 1), 0, 1), np.clip(.18 + .45 * mri, 0, 1),
                    np.clip(.3 - .2 * mri, 0, 1)], axis=-1)
    col = np.clip(col + .02 * rng.standard_normal((h, h, 3)), 0, 1)
    return mri, cryo, col, col @ LUMA


def texture(h: int, kind: int, instance: int) -> np.ndarray:
    """A grey texture in [0, 1]: ``kind`` fixes its orientations and periods, ``instance`` the phases and noise.

    Two instances of one kind are the same texture at different positions, as STSIM means it.
    """
    kind_rng, rng = np.random.default_rng(kind), np.random.default_rng(1000 + instance)
    yy, xx = np.mgrid[0:h, 0:h].astype(float)
    img = np.zeros((h, h))
    for theta, period in zip(kind_rng.uniform(0, np.pi, 3), kind_rng.uniform(5, 16, 3)):
        phase = rng.uniform(0, 2 * np.pi)
        img += np.sin(2 * np.pi / period * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    img += 0.5 * gaussian_filter(rng.standard_normal((h, h)), 1.0)
    return (img - img.min()) / (img.max() - img.min())


@pytest.mark.parametrize("h", [256, 128, 64])
def test_golden_pair_is_in_range(h):
    for img in golden_pair(h):
        assert img.shape[:2] == (h, h)
        assert 0.0 <= img.min() and img.max() <= 1.0
