"""Training-time scan variety: seeded, shape-keeping where promised, and each change does its job."""
from __future__ import annotations

import numpy as np
import pytest

from core.dataset.scan_variety import ScanVariety
from core.errors import InputError
from core.phantom import generate
from core.phantom.options import PhantomOptions
from core.phantom.relaxation import sequence_signal
from core.phantom.variety import crop, intensity_curve, reorient, retarget_contrast


@pytest.fixture(scope="module")
def head():
    return generate(1, "default", PhantomOptions(region="head", mri_mm=3.0))


def test_same_generator_same_scan(head):
    sv = ScanVariety(p_sequence=1, p_brain_only=1, p_resample=1, p_ras=1)
    a = sv.apply(head.mri, head.mri_labels, head.true_colorization, head.label_table, np.random.default_rng(5))
    b = sv.apply(head.mri, head.mri_labels, head.true_colorization, head.label_table, np.random.default_rng(5))
    for x, y in zip(a, b):
        assert np.array_equal(x.array, y.array) and x.same_frame(y)


def test_all_changes_at_once(head):
    sv = ScanVariety(p_sequence=1, p_brain_only=1, p_resample=1, p_ras=1, voxel_mm=(0.8, 4.0))
    mri, lab, truth = sv.apply(head.mri, head.mri_labels, head.true_colorization, head.label_table,
                               np.random.default_rng(0))
    assert mri.same_frame(lab) and truth.same_frame(mri)
    assert np.allclose(np.diag(mri.direction), (-1, -1, 1))
    assert 0.8 <= mri.spacing[0] <= 4.0 and mri.spacing[2] >= mri.spacing[0]  # slices at least as thick
    # skull stripping on the scan's own grid (before a resampling blurs the mask's edge)
    mri, lab, truth = ScanVariety(p_brain_only=1, p_resample=0, p_ras=0).apply(
        head.mri, head.mri_labels, head.true_colorization, head.label_table, np.random.default_rng(0))
    i = {t.name: t.id for t in head.label_table}
    outside = np.isin(lab.array, [i["skin"], i["fat"], i["muscle"], i["cortical_bone"]])
    assert not mri.array[outside].any() and not truth.array[outside].any()


def test_region_cut_from_a_whole_body():
    body = generate(0, "small")
    mri, lab, truth = ScanVariety(p_region=1, p_sequence=0, curve=0, bias=0, noise=0, p_brain_only=0,
                                  p_resample=0, p_ras=0).apply(body.mri, body.mri_labels, body.true_colorization,
                                                               body.label_table, np.random.default_rng(2))
    assert mri.same_frame(lab) and truth.same_frame(mri) and mri.array.size < 0.5 * body.mri.array.size
    lo = mri.index_to_physical(np.zeros(3))
    index = np.rint(body.mri.physical_to_index(lo)).astype(int)  # the cut is a block of the same voxels
    z, y, x = index[::-1]
    nz, ny, nx = mri.array.shape
    assert np.array_equal(mri.array, body.mri.array[z:z + nz, y:y + ny, x:x + nx])


def test_crop_is_the_same_box_whatever_the_storage(head):
    lo, hi = (-30.0, -40.0, 1600.0), (30.0, 20.0, 1650.0)
    lps = crop(head.mri_labels, lo, hi)
    ras = crop(reorient(head.mri_labels, "RAS"), lo, hi)
    assert np.array_equal(reorient(ras, "LPS").array, lps.array)
    assert crop(head.mri_labels, (500, 500, 0), (600, 600, 10)) is None


def test_none_changes_nothing(head):
    mri, lab, truth = ScanVariety.none().apply(head.mri, head.mri_labels, head.true_colorization, head.label_table,
                                               np.random.default_rng(0))
    assert np.array_equal(mri.array, head.mri.array) and lab is head.mri_labels
    with pytest.raises(InputError, match="probability"):
        ScanVariety(p_ras=2)


def test_retarget_contrast_reaches_the_target_ratios(head):
    i = {t.name: t.id for t in head.label_table}
    lab = head.mri_labels.array
    target = sequence_signal(head.label_table, "spin_echo", 1.5)
    out = retarget_contrast(head.mri.array, lab, target)
    wm, gm = (np.median(out[lab == i[t]]) for t in ("white_matter", "grey_matter"))
    before = np.median(head.mri.array[lab == i["white_matter"]]) / np.median(head.mri.array[lab == i["grey_matter"]])
    want = target[i["white_matter"]] / target[i["grey_matter"]]
    assert abs(wm / gm - want) < abs(before - want) and abs(wm / gm - want) < 0.15


def test_intensity_curve_is_monotone_and_fixes_the_ends():
    x = np.linspace(0, 1.2, 241, dtype=np.float32)
    y = intensity_curve(x, np.random.default_rng(3), 0.5)
    assert np.all(np.diff(y) > 0) and y[0] == 0 and abs(y[200] - 1) < 1e-6 and np.abs(y - x).max() > 0.02
