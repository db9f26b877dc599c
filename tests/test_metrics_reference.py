"""The shared test material of ``helpers_metrics`` is itself right: the golden pair is a valid
image set, and the independent reference transcriptions reproduce the golden values, which were
computed with other libraries (scikit-image, pytorch_msssim, piq; docs/metrics.md)."""
from __future__ import annotations

import numpy as np
import pyrtools as pt
import pytest

from helpers_metrics import (GOLDEN, LUMA, golden_pair, ref_fsim, ref_ms_ssim, ref_ssim_cs,
                             ref_undecimated_bands)


@pytest.mark.parametrize("h", [256, 128, 64])
def test_golden_pair_is_in_range(h):
    for img in golden_pair(h):
        assert img.shape[:2] == (h, h)
        assert 0.0 <= img.min() and img.max() <= 1.0


@pytest.mark.parametrize("h", [128, 64])
def test_reference_ssim_and_ms_ssim_match_golden_values(h):
    mri, _, _, y = golden_pair(h)
    assert ref_ssim_cs(mri, y)[0] == pytest.approx(GOLDEN[h][0], abs=1e-6)
    assert ref_ms_ssim(mri, y) == pytest.approx(GOLDEN[h][1], abs=1e-6)


@pytest.mark.parametrize("h", [128, 64])
def test_reference_fsim_matches_golden_values(h):
    _, cryo, col, _ = golden_pair(h)
    assert ref_fsim(col, cryo) == pytest.approx(GOLDEN[h][2], abs=1e-6)
    assert ref_fsim(col @ LUMA, cryo @ LUMA, chromatic=False) == pytest.approx(GOLDEN[h][3], abs=1e-6)


def test_reference_undecimated_level0_equals_pyrtools():
    img = golden_pair(64)[0]
    pyr = pt.pyramids.SteerablePyramidFreq(img, height=3, order=3, is_complex=True).pyr_coeffs
    bands = ref_undecimated_bands(img)
    for o in range(4):
        np.testing.assert_allclose(bands[(0, o)], pyr[(0, o)], atol=1e-10)
