"""The procedural phantom: determinism, anatomy, truth consistency, transform, cache and CLI.

All on ``size="small"`` (5 mm cryosection, ~2 s a subject); a few subjects are shared per module.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from core.errors import InputError
from core.phantom import SIZES, PhantomTransform, generate, make_subject
from core.phantom.mri import tissue_signal
from core.phantom.subject import VOLUMES, cache_path, save_cached
from core.phantom.tissues import load_table

ARRAYS = VOLUMES


@pytest.fixture(scope="module")
def subject():
    return generate(0, "small")


@pytest.fixture(scope="module")
def other():
    return generate(1, "small")


def ids(subject) -> dict[str, int]:
    return {lab.name: lab.id for lab in subject.label_table}


def voxel_centres(volume) -> np.ndarray:
    z, y, x = np.meshgrid(*(np.arange(n) for n in volume.array.shape[:3]), indexing="ij")
    return volume.index_to_physical(np.stack([x, y, z], axis=-1).astype(np.float64))


def sample(volume, points: np.ndarray, order: int) -> np.ndarray:
    """Independent reference: scipy at continuous indices (clamped at the edges)."""
    idx = np.moveaxis(volume.physical_to_index(points)[..., ::-1], -1, 0)
    arr = volume.array
    if arr.ndim == 3:
        return ndi.map_coordinates(arr, idx, order=order, mode="nearest")
    return np.stack([ndi.map_coordinates(arr[..., c].astype(np.float32), idx, order=order, mode="nearest")
                     for c in range(arr.shape[3])], axis=-1)


# --- determinism and variety ----------------------------------------------------------------------
def test_same_seed_is_bit_identical(subject):
    again = generate(0, "small")
    for name in ARRAYS:
        a, b = getattr(subject, name), getattr(again, name)
        assert a.array.dtype == b.array.dtype and np.array_equal(a.array, b.array), name
        assert a.same_frame(b)
    for key, value in subject.transform.to_arrays().items():
        assert np.array_equal(value, again.transform.to_arrays()[key]), key


def test_different_seeds_are_different_bodies(subject, other):
    a, b = subject.labels.array, other.labels.array
    body_a, body_b = a > 0, b > 0
    assert (a != b).mean() > 0.03
    assert abs(int(body_a.sum()) - int(body_b.sum())) > 0.01 * body_a.sum()
    fat = ids(subject)["fat"]
    assert abs((a == fat).sum() / body_a.sum() - (b == fat).sum() / body_b.sum()) > 0.005
    assert not np.allclose(subject.transform.rigid, other.transform.rigid)
    assert np.abs(subject.mri.array - other.mri.array).mean() > 0.01


# --- anatomy and grids ----------------------------------------------------------------------------
def test_label_table_is_the_shipped_csv(subject):
    table = subject.label_table
    assert table == load_table()
    assert table.ids == list(range(len(table))) and 18 <= len(table) <= 24
    assert table[0].name == "background" and len({lab.system for lab in table}) >= 8


@pytest.mark.parametrize("name", ["labels", "mri_labels"])
def test_every_tissue_is_present(subject, other, name):
    for s in (subject, other):
        present = set(np.unique(getattr(s, name).array).tolist())
        assert present == set(s.label_table.ids), sorted(set(s.label_table.ids) - present)


def test_grids_dtypes_and_frames(subject):
    s = subject
    assert s.mri.array.dtype == np.float32 and s.mri.array.ndim == 3
    assert s.cryo.array.dtype == np.uint8 and s.cryo.array.shape[3] == 3
    assert s.true_colorization.array.dtype == np.uint8 and s.true_colorization.array.shape[3] == 3
    assert np.issubdtype(s.labels.array.dtype, np.integer) and np.issubdtype(s.mri_labels.array.dtype, np.integer)
    assert s.labels.same_frame(s.cryo) and s.labels.array.shape == s.cryo.array.shape[:3]
    for name in ("mri_labels", "true_colorization"):
        assert getattr(s, name).same_frame(s.mri), name
    assert s.labels.label_table == s.label_table and s.mri_labels.label_table == s.label_table
    for name in ARRAYS:
        assert np.allclose(getattr(s, name).direction, np.eye(3)), name
    spec = SIZES["small"]
    assert np.allclose(s.cryo.spacing, spec.cryo_mm)
    assert np.all(s.mri.spacing[:2] > s.cryo.spacing[:2]) and s.mri.spacing[2] > s.mri.spacing[0]
    # LPS, feet → head: the brain is at the top of z, the bladder low; the liver on the right (−x)
    i = ids(s)
    zc = [np.argwhere(s.labels.array == i[t])[:, 0].mean() for t in ("white_matter", "lung", "bladder")]
    assert zc[0] > zc[1] > zc[2]
    assert np.argwhere(s.labels.array == i["liver"])[:, 2].mean() < s.labels.array.shape[2] / 2


def test_mri_intensity_range_and_t1_ordering(subject, other):
    for s in (subject, other):
        mri, lab, i = s.mri.array, s.mri_labels.array, ids(s)
        assert np.isfinite(mri).all() and mri.min() >= 0
        assert np.percentile(mri[lab > 0], 99.5) == pytest.approx(1.0, rel=1e-3)
        median = {t: np.median(mri[lab == i[t]]) for t in ("fat", "muscle", "csf", "white_matter", "lung",
                                                             "cortical_bone", "marrow")}
        assert median["fat"] > 1.5 * median["muscle"]
        assert median["csf"] < median["white_matter"]
        assert median["lung"] < 0.5 * median["muscle"] and median["cortical_bone"] < median["marrow"]
        assert np.median(mri[lab == 0]) < 0.1


@pytest.mark.parametrize("seed", range(8))
def test_tissue_means_follow_t1_for_every_subject(seed):
    table = load_table()
    s = tissue_signal(table, seed)
    i = {lab.name: lab.id for lab in table}
    assert s[i["fat"]] > s[i["marrow"]] > s[i["muscle"]]
    assert s[i["white_matter"]] > s[i["grey_matter"]] > s[i["csf"]]
    assert s[i["liver"]] > s[i["muscle"]] and max(s[i["lung"]], s[i["cortical_bone"]]) < 0.1


# --- the truth --------------------------------------------------------------------------------------
def test_true_colorization_is_the_cryosection_through_the_transform(subject):
    s, i = subject, ids(subject)
    points = voxel_centres(s.mri)
    mapped = s.transform.mri_to_cryo(points)
    reference = sample(s.cryo, mapped, order=1)
    # outside the region where the MRI's bowel was redrawn (the box around all bowel, with a margin)
    bowel = np.argwhere(np.isin(s.labels.array, [i["bowel_wall"], i["bowel_content"]]))
    lo = s.labels.index_to_physical(bowel.min(axis=0)[::-1].astype(float)) - 15
    hi = s.labels.index_to_physical(bowel.max(axis=0)[::-1].astype(float)) + 15
    keep = ~np.all((mapped > lo) & (mapped < hi), axis=-1)
    assert keep.mean() > 0.6
    diff = np.abs(reference - s.true_colorization.array.astype(np.float32)).max(axis=-1)
    assert diff[keep].max() <= 1.0
    # and the MRI labels are the cryosection labels seen through the same transform
    nearest = sample(s.labels, mapped, order=0)
    assert (nearest == s.mri_labels.array)[keep].mean() > 0.999


def test_mri_bowel_is_redrawn(subject):
    s, i = subject, ids(subject)
    nearest = sample(s.labels, s.transform.mri_to_cryo(voxel_centres(s.mri)), order=0)
    content = s.mri_labels.array == i["bowel_content"]
    assert content.sum() > 50
    assert (nearest[content] != i["bowel_content"]).mean() > 0.2  # loops moved
    colour = np.array(s.label_table[i["bowel_content"]].color, dtype=float)
    moved = content & (nearest != i["bowel_content"])
    # …and are coloured as bowel content where they moved
    assert np.linalg.norm(s.true_colorization.array[moved].mean(axis=0) - colour) < 40


def test_transform_magnitudes(subject, other):
    for s in (subject, other):
        t = s.transform
        assert 4.0 <= t.rotation_deg <= 6.0
        centre = s.cryo.center
        shift = np.linalg.norm(t.rigid[:3, :3] @ centre + t.rigid[:3, 3] - centre)
        assert 5.0 <= shift <= 10.0
        for field, (lo, hi) in ((t.smooth, (3, 8)), (t.fine, (1, 2))):
            rms = np.sqrt((field.values.astype(np.float64) ** 2).sum(axis=-1).mean())
            assert lo - 1e-3 <= rms <= hi + 1e-3
        body = voxel_centres(s.mri)[s.mri_labels.array > 0][::7]
        fine = np.sqrt((t.fine.at(body) ** 2).sum(axis=-1).mean())
        smooth = np.sqrt((t.smooth.at(body) ** 2).sum(axis=-1).mean())
        assert 0.5 < fine < 3 and 1.5 < smooth < 12
        assert np.linalg.norm(t.mri_to_cryo(body) - body, axis=-1).mean() > 5  # not the identity


def test_transform_grid_inverse_and_storage(subject, tmp_path):
    t = subject.transform
    zc, yc, xc = np.linspace(650, 1700, 5), np.linspace(-150, 150, 4), np.linspace(-250, 250, 6)
    grid = t.mri_to_cryo_grid(zc, yc, xc)
    z, y, x = np.meshgrid(zc, yc, xc, indexing="ij")
    assert np.abs(grid - t.mri_to_cryo(np.stack([x, y, z], axis=-1))).max() < 1e-2
    p = np.random.default_rng(0).uniform((-200, -100, 700), (200, 100, 1700), (500, 3))
    assert np.abs(t.cryo_to_mri(t.mri_to_cryo(p)) - p).max() < 1e-3
    t.save(tmp_path / "t.npz")
    back = PhantomTransform.load(tmp_path / "t.npz")
    assert np.array_equal(back.mri_to_cryo(p), t.mri_to_cryo(p))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz"):
        PhantomTransform.load(tmp_path / "bad.npz")


# --- cache, arguments, CLI --------------------------------------------------------------------------
def test_cache_round_trip_and_corruption(subject, tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOLOR_CACHE_DIR", str(tmp_path))
    path = save_cached(subject)
    assert path == cache_path(0, "small") and path.is_file() and path.parent.parent == tmp_path
    cached = make_subject(0, "small")
    for name in ARRAYS:
        assert np.array_equal(getattr(cached, name).array, getattr(subject, name).array), name
        assert getattr(cached, name).same_frame(getattr(subject, name))
    assert cached.label_table == subject.label_table
    assert np.array_equal(cached.transform.rigid, subject.transform.rigid)
    data = path.read_bytes()
    for broken in (data[: len(data) // 2], data[:1000] + b"\0" * 64 + data[1064:]):
        path.write_bytes(broken)
        with pytest.warns(UserWarning, match="regenerating"):
            again = make_subject(0, "small")
        assert np.array_equal(again.cryo.array, subject.cryo.array)
        assert make_subject(0, "small").mri.array.tobytes() == subject.mri.array.tobytes()  # rewritten, valid


def test_bad_arguments_name_the_valid_values():
    with pytest.raises(ValueError, match="small.*default"):
        make_subject(0, "huge")
    for seed in (-1, 1.5, "3", True):
        with pytest.raises(InputError, match="seed"):
            make_subject(seed, "small", cache=False)


def test_cli_writes_readable_volumes(tmp_path, capsys):
    from core.cli import main
    from core.io import read_volume

    out = tmp_path / "subject"
    assert main(["phantom", str(out), "--seed", "2", "--size", "small"]) == 0
    printed = capsys.readouterr().out
    s = make_subject(2, "small")
    for name in ARRAYS:
        path = out / f"{name}.nii.gz"
        assert str(path) in printed
        volume = read_volume(path)
        assert np.array_equal(volume.array, getattr(s, name).array.astype(volume.array.dtype)), name
        assert volume.same_frame(getattr(s, name), atol=1e-4)
    assert read_volume(out / "labels.nii.gz").label_table == s.label_table
    assert np.array_equal(PhantomTransform.load(out / "transform.npz").rigid, s.transform.rigid)
    assert (out / "tissues.csv").read_text(encoding="utf-8").startswith("id,name,system,r,g,b")


def test_cli_bad_size_is_one_line(tmp_path, capsys):
    from core.cli import main

    assert main(["phantom", str(tmp_path), "--size", "bogus"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bogus" in err and "small" in err
