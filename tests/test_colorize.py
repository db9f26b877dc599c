"""Whole-volume colorization (`core.inference.volume`), MRI normalisation (`core.normalize`) and
``mricolor colorize``: frames, shapes, ranges, axes, resampling, bad input, a tiny model end to end."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from core.cli import main
from core.inference.colorizer import DEFAULT_PIXEL_MM
from core.inference.volume import colorize_volume, slicing_axis
from core.model.checkpoint import export_inference_checkpoint
from core.errors import InputError
from core.inference import Colorizer
from core.io import read_volume, write_volume
from core.normalize import intensity_range, normalize, normalize_array
from core.volume import Volume
from helpers import fake_colorizer


def _body(shape=(12, 20, 16), seed=0) -> np.ndarray:
    """A bright ellipsoid with texture in a dark background, float32."""
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    inside = (z / 0.9) ** 2 + (y / 0.8) ** 2 + (x / 0.7) ** 2 < 1
    rng = np.random.default_rng(seed)
    return np.where(inside, 0.6 + 0.3 * np.sin(5 * x) * np.cos(3 * y), 0.0).astype(np.float32) \
        + rng.uniform(0, 0.01, shape).astype(np.float32)


def _volume(array=None, spacing=(2.0, 1.5, 3.0), direction=None) -> Volume:
    array = _body() if array is None else array
    direction = np.eye(3) if direction is None else direction
    return Volume(array, spacing=spacing, origin=(-10.0, 5.0, 100.0), direction=direction)


@pytest.fixture(scope="module")
def tiny() -> Colorizer:
    return Colorizer.untrained("tiny", device="cpu")


# --- normalisation ----------------------------------------------------------------------------
def test_normalize_maps_zero_and_body_percentile():
    vol = _volume()
    norm, (low, high) = normalize(vol)
    assert low == 0.0
    body = vol.array[vol.array > 0.3]
    assert high == pytest.approx(np.percentile(body, 99.5), rel=0.02)
    assert norm.array.dtype == np.float32 and norm.array.min() >= 0 and norm.array.max() <= 1
    assert norm.same_frame(vol)


def test_normalize_is_invariant_to_scanner_units():
    vol = _volume()
    a = normalize(vol)[0].array
    b = normalize(vol.with_array(vol.array * 3217.0))[0].array
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_normalize_hot_voxels_do_not_move_the_scale():
    vol = _volume()
    hot = vol.array.copy()
    hot[6, 10, 8] = 1e6
    np.testing.assert_allclose(intensity_range(vol)[1], intensity_range(vol.with_array(hot))[1], rtol=0.02)


def test_normalize_negative_background_lands_on_zero():
    vol = _volume()
    shifted = vol.with_array(vol.array - 0.5)  # e.g. mean-subtracted data
    norm = normalize(shifted)[0].array
    assert norm[0, 0, 0] == pytest.approx(0.0, abs=0.02)
    assert norm.max() == pytest.approx(1.0)


def test_normalize_refuses_constant_volume():
    with pytest.raises(InputError, match="no contrast"):
        normalize(_volume(np.full((4, 5, 6), 7.0, dtype=np.float32)))


def test_normalize_array_clips_and_cleans():
    out = normalize_array(np.array([-1.0, 0.5, 2.0, np.nan]), 0.0, 1.0)
    np.testing.assert_array_equal(out, np.array([0.0, 0.5, 1.0, 0.0], dtype=np.float32))


# --- slicing ---------------------------------------------------------------------------------
def test_slicing_axis_follows_the_direction_matrix():
    vol = _volume()
    assert [slicing_axis(vol, a) for a in ("axial", "coronal", "sagittal")] == [0, 1, 2]
    # index x runs superior, index z runs left: axial slices are then along array axis 2 (x)
    perm = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    vol2 = _volume(direction=perm)
    assert slicing_axis(vol2, "axial") == 2 and slicing_axis(vol2, "sagittal") == 0
    with pytest.raises(InputError, match="unknown axis"):
        slicing_axis(vol, "oblique")


@pytest.mark.parametrize("axis, n, plane", [("axial", 12, (20, 16)), ("coronal", 20, (12, 16)),
                                             ("sagittal", 16, (12, 20))])
def test_axis_changes_slicing_not_frame(axis, n, plane):
    vol = _volume()
    fake = fake_colorizer()
    out = colorize_volume(vol, fake, axis=axis, batch_size=5, crop=False)
    assert out.same_frame(vol) and out.array.shape == vol.array.shape + (3,) and out.array.dtype == np.uint8
    assert sum(s[0] for s in fake.generator.shapes) == n
    assert {s[2:] for s in fake.generator.shapes} == {plane}
    # the identity model gives the normalised MRI back in every channel, whatever the axis
    expected = np.round(normalize(vol)[0].array * 255).astype(np.uint8)
    np.testing.assert_array_equal(out.array[..., 1], expected)


def test_in_plane_resampling_to_the_model_pixel_size():
    vol = _volume()  # spacing x 2.0, y 1.5, z 3.0 mm
    fake = fake_colorizer(pixel_mm=1.0)
    out = colorize_volume(vol, fake, axis="axial", batch_size=100, crop=False)
    # rows y: 20 × 1.5 mm = 30, cols x: 16 × 2 mm = 32 at 1 mm; the network pads 30 rows to 32
    assert fake.generator.shapes == [(12, 1, 32, 32)]
    assert out.same_frame(vol)
    expected = normalize(vol)[0].array * 255
    # up to 1 mm and back down: close to the input (bilinear both ways blurs edges a little)
    assert np.abs(out.array[..., 0].astype(float) - expected).mean() < 10
    assert np.corrcoef(out.array[..., 0].ravel(), expected.ravel())[0, 1] > 0.97
    fake = fake_colorizer(pixel_mm=6.0)
    colorize_volume(vol, fake, axis="sagittal", crop=False)
    assert {s[2:] for s in fake.generator.shapes} == {(8, 8)}  # at least 8 pixels a side


def test_progress_and_batches():
    seen = []
    fake = fake_colorizer()
    colorize_volume(_volume(), fake, batch_size=5, progress=seen.append, crop=False)
    assert seen == [5, 10, 12] and [s[0] for s in fake.generator.shapes] == [5, 5, 2]


BACKGROUND = (20, 20, 25)  # label 0 of resources/tissues.csv


def test_crop_runs_the_network_on_the_body_only(tiny):
    """With crop, the network sees each batch's body box plus a margin and nothing of slices
    without body; inside the body the colours are those of the whole slice (a pointwise stand-in
    model), outside it the palette's background. The body is the thresholded one grown by one
    voxel (`core.normalize.GROW_VOXELS`): that rim takes the model's colour too. (Instance norm
    makes a real model's colours inside the body differ somewhat with and without crop.)"""
    from scipy import ndimage as ndi

    array = np.zeros((10, 64, 72), np.float32)
    array[3:8, 8:30, 40:66] = _body((5, 22, 26))
    vol = _volume(array, spacing=(1.0, 1.0, 1.0))
    fake = fake_colorizer()
    cropped = colorize_volume(vol, fake, batch_size=2).array
    plain = colorize_volume(vol, fake_colorizer(), crop=False).array
    body = ndi.binary_dilation(array > 0.3)
    np.testing.assert_array_equal(cropped[body], plain[body])
    planes = fake.generator.shapes
    assert sum(s[0] for s in planes) == 6 and all(s[3] < 72 for s in planes)  # body grown into slices 3-7: 3 batches of 2
    assert (cropped[~body] == BACKGROUND).all() and not (cropped[body] == BACKGROUND).all(axis=-1).any()
    out = colorize_volume(vol, tiny, batch_size=2).array
    assert out.shape == vol.array.shape + (3,)
    assert (out[0] == BACKGROUND).all()  # a slice of air is all background, with no network run


def _framing_dependent() -> Colorizer:
    """Grey in every channel plus a blue that grows with the plane's width: a model whose colour
    for air depends on the framing, as instance norm makes a real one's do."""
    def rgb(x: torch.Tensor) -> torch.Tensor:
        out = x.repeat(1, 3, 1, 1)
        out[:, 2] += x.shape[-1] / 1000
        return out
    return fake_colorizer(rgb)


def test_the_background_is_one_colour_in_every_slice_and_the_body_keeps_its_cavities():
    """No crop-box rectangle, no mottled air, no fill colour per slice: the palette's background
    outside the body; a dark cavity inside the body (lungs, ventricles) is body, not background."""
    rng = np.random.default_rng(1)
    array = np.abs(rng.normal(0, 0.02, (6, 96, 160))).astype(np.float32)  # noisy air (Rician-like)
    array[:, 40:70, 60:110] = 0.8 + rng.normal(0, 0.02, (6, 30, 50))
    array[:, 50:60, 75:95] = 0.02  # a dark cavity enclosed by the body
    out = colorize_volume(_volume(array, spacing=(1.0, 1.0, 1.0)), _framing_dependent()).array
    outside = np.ones(array.shape, bool)
    outside[:, 39:71, 59:111] = False  # the body grown by one voxel (core.normalize.GROW_VOXELS)
    assert (out[outside] == BACKGROUND).all()
    cavity = out[:, 50:60, 75:95]
    assert not (cavity == BACKGROUND).all(axis=-1).any()  # the model's colour, not background


def test_the_body_region_takes_its_dark_edge_and_narrow_grooves_but_not_wide_gaps():
    """A threshold leaves out the partial-volume voxels at the skin and dark CSF in sulci open to
    the air; the body region takes them back (a 1-voxel rim, grooves a few voxels wide), while
    a wide notch of air stays background, and specks of noise in the air stay dropped."""
    from core.normalize import body_region

    mask = np.zeros((8, 60, 80), bool)
    mask[1:7, 10:50, 10:70] = True
    mask[1:7, 10:30, 20:23] = False    # a groove 3 voxels wide, open to the air at the top
    mask[1:7, 10:30, 40:55] = False    # a notch 15 voxels wide
    mask[4, 55, 75] = True             # a speck of noise
    region = body_region(mask)
    assert region[1:7, 12:30, 20:23].all()                      # the groove is body below its mouth
    assert not region[2:6, 12:28, 43:52].any()                  # the notch's middle is air
    assert region[1:7, 9, 30].all() and region[0, 20, 30]       # a rim of one voxel all round
    assert not region[1:7, 8, 30].any() and not region[4, 55, 75]
    assert body_region(mask[3])[12:30, 20:23].all() and not body_region(mask[3])[12:28, 43:52].any()  # planes alike


def test_real_model_range_and_frame(tiny):
    vol = _volume(direction=np.diag([-1.0, -1.0, 1.0]))
    out = colorize_volume(vol, Colorizer.untrained("tiny", device="cpu", pixel_mm=2.0), axis="coronal", batch_size=7)
    assert out.same_frame(vol) and out.array.dtype == np.uint8 and out.array.shape == vol.array.shape + (3,)
    assert out.array.max() > out.array.min()


def test_colorize_volume_refuses_bad_input(tiny):
    with pytest.raises(InputError, match="RGB"):
        colorize_volume(Volume(np.zeros((4, 5, 6, 3), np.uint8)), tiny)
    bad = _body()
    bad[1, 2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        colorize_volume(_volume(bad), tiny)
    with pytest.raises(InputError, match="unknown output"):
        colorize_volume(_volume(), tiny, output="sepia")
    with pytest.raises(InputError):
        colorize_volume(_volume(), tiny, batch_size=0)


# --- checkpoints -----------------------------------------------------------------------------
def _tiny_checkpoint(tmp_path, pixel_mm=None):
    from core.model.checkpoint import save_checkpoint
    from core.model.config import load_preset
    from core.model.networks import build_generator

    config = load_preset("tiny").model
    torch.manual_seed(0)
    nets = {"g_mc": build_generator(config, "colorization"), "g_cm": build_generator(config, "grayscale")}
    extra = {} if pixel_mm is None else {"pixel_mm": pixel_mm}
    return save_checkpoint(tmp_path / "run" / "model.safetensors", nets, config, extra=extra)


def test_export_keeps_the_generator_and_records_pixel_size(tmp_path):
    source = _tiny_checkpoint(tmp_path)
    assert Colorizer.from_checkpoint(source, device="cpu").pixel_mm == DEFAULT_PIXEL_MM  # none recorded
    path = export_inference_checkpoint(source, tmp_path / "default", pixel_mm=3.0, extra={"note": "test"})
    from core.model.checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    assert ck.networks == ("g_mc",) and ck.extra["pixel_mm"] == 3.0 and ck.extra["note"] == "test"
    assert Colorizer.from_checkpoint(tmp_path / "default", device="cpu").pixel_mm == 3.0
    assert (tmp_path / "default" / "model.json").is_file()
    planes = np.random.default_rng(0).uniform(0, 1, (2, 16, 16)).astype(np.float32)
    a = Colorizer.from_checkpoint(source, device="cpu").colorize(planes)
    b = Colorizer.from_checkpoint(path, device="cpu").colorize(planes)
    np.testing.assert_array_equal(a, b)


# --- the command -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_phantom(tmp_path_factory):
    """The small phantom MRI (and its cryosection) written as NIfTI."""
    from core.phantom import generate

    subject = generate(0, "small")
    folder = tmp_path_factory.mktemp("phantom")
    write_volume(subject.mri, folder / "mri.nii.gz")
    write_volume(subject.cryo, folder / "cryo.nii.gz")
    return folder


def test_cli_tiny_model_end_to_end_on_the_small_phantom(small_phantom, tmp_path, capsys):
    ck = _tiny_checkpoint(tmp_path, pixel_mm=10.0)
    out = tmp_path / "out" / "rgb.nii.gz"
    assert main(["colorize", str(small_phantom / "mri.nii.gz"), "--out", str(out), "--checkpoint", str(ck),
                 "--device", "cpu", "--batch-size", "16", "--axis", "coronal"]) == 0
    assert "10 mm" in capsys.readouterr().err
    mri, rgb = read_volume(small_phantom / "mri.nii.gz"), read_volume(out, expect="rgb")
    assert rgb.same_frame(mri) and rgb.array.shape == mri.array.shape + (3,) and rgb.array.dtype == np.uint8
    assert not list(out.parent.glob(".*tmp*"))  # nothing left over from the atomic write
    mha = tmp_path / "rgb.mha"
    assert main(["colorize", str(small_phantom / "mri.nii.gz"), "--out", str(mha), "--untrained", "tiny",
                 "--pixel-mm", "15", "--no-progress"]) == 0
    assert read_volume(mha).same_frame(mri)


def test_cli_says_when_no_model_is_shipped(small_phantom, tmp_path, capsys, monkeypatch):
    import core.inference.colorizer

    monkeypatch.setattr(core.inference.colorizer, "DEFAULT_CHECKPOINT", "no_such_model/model.safetensors")
    assert main(["colorize", str(small_phantom / "mri.nii.gz"), "--out", str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "no shipped default model" in err and "--untrained" in err and len(err.strip().splitlines()) == 1


def _bad(tmp_path, name, array, spacing=(1.0, 1.0, 1.0)):
    image = sitk.GetImageFromArray(array, isVector=array.ndim == 4)
    image.SetSpacing(spacing[:image.GetDimension()])
    path = tmp_path / name
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize("case, message", [
    ("2d", "2-D"), ("rgb", "channels"), ("nan", "NaN"), ("missing", "not found"),
    ("output", "unknown output"), ("suffix", "unsupported output format"), ("parent", "not a folder"),
    ("batch", "at least 1"), ("same", "input MRI itself"), ("folder", "is a folder"),
])
def test_cli_refuses_bad_input(case, message, small_phantom, tmp_path, capsys):
    mri = small_phantom / "mri.nii.gz"
    out = tmp_path / "o.nii.gz"
    extra: list[str] = []
    if case == "2d":
        mri = _bad(tmp_path, "flat.nii.gz", np.ones((8, 9), np.float32))
    elif case == "rgb":
        mri = small_phantom / "cryo.nii.gz"
    elif case == "nan":
        array = _body()
        array[2, 3, 4] = np.nan
        mri = _bad(tmp_path, "nan.nii.gz", array)
    elif case == "missing":
        mri = tmp_path / "nothing.nii.gz"
    elif case == "output":
        extra = ["--output", "sepia"]
    elif case == "suffix":
        out = tmp_path / "o.png"
    elif case == "parent":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "o.nii.gz"
    elif case == "batch":
        extra = ["--batch-size", "0"]
    elif case == "same":
        out = mri
    elif case == "folder":
        out = tmp_path
    code = main(["colorize", str(mri), "--out", str(out), "--untrained", "tiny", "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_default_pixel_size_is_documented():
    assert DEFAULT_PIXEL_MM == 2.0


@pytest.mark.parametrize("slab_voxels", [1, 7 * 40 * 36, 10 * 40 * 36])
def test_the_guided_filter_in_slabs_equals_the_filter_in_one_piece(slab_voxels, monkeypatch):
    """A large volume is filtered slab by slab (bounded memory); each slab carries the slices
    its windows reach, so the result is the one-piece filter's, body edges and volume ends included."""
    import core.inference.volume as volume

    rng = np.random.default_rng(3)
    mri01 = rng.random((31, 40, 36)).astype(np.float32)
    body = np.zeros(mri01.shape, dtype=bool)
    body[2:29, 5:37, 3:33] = True
    c_prime = rng.random(mri01.shape + (3,)).astype(np.float32)
    colorizer = Colorizer.untrained("tiny", device="cpu", pixel_mm=2.0)
    spacing = np.array([1.0, 1.0, 1.5])  # x, y, z: radius 4 across slices, 6 in-plane
    whole = volume.guided_volume(c_prime, mri01, spacing, colorizer, body)
    monkeypatch.setattr(volume, "GUIDE_SLAB_VOXELS", slab_voxels)
    slabs = volume.guided_volume(c_prime, mri01, spacing, colorizer, body)
    np.testing.assert_allclose(slabs, whole, atol=2e-6)
    assert not np.allclose(whole[body], c_prime[body], atol=0.05)  # the filter did act
