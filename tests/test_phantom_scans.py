"""Phantom scan options: regions, MRI voxel size, orientation, intensity curve, cache keys, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InputError
from core.phantom import generate
from core.phantom.options import PhantomOptions
from core.phantom.subject import cache_path
from core.phantom.variety import reorient


@pytest.fixture(scope="module")
def body():
    return generate(0, "small")


def test_region_is_a_box_of_the_same_body(body):
    thorax = generate(0, "small", PhantomOptions(region="thorax"))
    names = {thorax.label_table.name(int(t)) for t in np.unique(thorax.labels.array)}
    assert "lung" in names and "myocardium" in names and "white_matter" not in names
    assert thorax.labels.array.size < 0.5 * body.labels.array.size
    # same seed, same person: at the thorax's voxel centres the whole body has the same tissue
    z, y, x = np.meshgrid(*(np.arange(n) for n in thorax.labels.array.shape), indexing="ij")
    pts = thorax.labels.index_to_physical(np.stack([x, y, z], -1).reshape(-1, 3).astype(float))
    idx = np.rint(body.labels.physical_to_index(pts)).astype(int)[:, ::-1]
    inside = np.all((idx >= 0) & (idx < body.labels.array.shape), axis=1)
    same = body.labels.array[tuple(idx[inside].T)] == thorax.labels.array.reshape(-1)[inside]
    assert same.mean() > 0.85


def test_mri_voxel_size_option_and_matching_cryosection():
    s = generate(0, "small", PhantomOptions(region="limb", mri_mm=(2.0, 2.0, 4.0)))
    assert np.allclose(s.mri.spacing, (2, 2, 4)) and np.all(s.cryo.spacing <= 2.0)
    assert s.true_colorization.same_frame(s.mri) and s.mri_labels.same_frame(s.mri)
    with pytest.raises(InputError, match="mri_mm"):
        PhantomOptions(mri_mm=0.1)
    with pytest.raises(InputError, match="M voxels"):
        generate(0, "default", PhantomOptions(mri_mm=0.8))


def test_ras_storage_is_the_same_scan(body):
    ras = generate(0, "small", PhantomOptions(orientation="RAS"))
    for name in ("mri", "cryo"):
        assert np.allclose(np.diag(getattr(ras, name).direction), (-1, -1, 1)), name
    for name in ("mri", "cryo", "labels", "true_colorization"):
        back = reorient(getattr(ras, name), "LPS")
        assert np.array_equal(back.array, getattr(body, name).array) and back.same_frame(getattr(body, name)), name


def test_intensity_curve_bias_and_noise_options(body):
    plain = generate(0, "small", PhantomOptions(bias=0.0, noise=0.0))
    curved = generate(0, "small", PhantomOptions(bias=0.0, noise=0.0, nonlinearity=0.4))
    lab, i = body.mri_labels.array, {t.name: t.id for t in body.label_table}
    means = [(plain.mri.array[lab == i[t]].mean(), curved.mri.array[lab == i[t]].mean())
             for t in ("lung", "csf", "muscle", "white_matter", "marrow", "fat")]
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(means, means[1:]))  # monotone: order kept
    assert max(abs(a - b) for a, b in means) > 0.02
    air = lab == 0  # noise-free: the air is exactly black; with the default noise, never
    assert (plain.mri.array[air] == 0).mean() > 0.5 and (body.mri.array[air] == 0).mean() < 0.01


def test_cache_key_holds_every_option():
    default = cache_path(0, "default")
    assert default.name == "phantom-v1-seed0-default.npz"  # unchanged: old caches stay valid
    names = {cache_path(0, "default", PhantomOptions(**kw)).name for kw in
             ({}, {"region": "head"}, {"region": "head", "mri_mm": 2}, {"brain_only": True}, {"orientation": "RAS"},
              {"nonlinearity": 0.1}, {"bias": 0.1}, {"noise": 0.1}, {"sequence": "mprage"}, {"field_t": 1.5})}
    assert len(names) == 10


def test_cli_writes_a_head(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "head"
    rc = main(["phantom", str(out), "--region", "head", "--mri-mm", "3", "--brain-only", "--orientation", "RAS",
               "--no-cache"])
    assert rc == 0
    info = json.loads((out / "phantom.json").read_text())
    assert info["options"]["region"] == "head" and info["options"]["brain_only"] and info["mri_spacing_mm"] == [3.0] * 3
    assert info["cryo_spacing_mm"] <= 3.0
    for name in ("mri", "cryo", "labels", "mri_labels", "true_colorization"):
        assert (out / f"{name}.nii.gz").stat().st_size > 0
    assert "vitreous" in (out / "tissues.csv").read_text()


@pytest.mark.parametrize("args,word", [(["--region", "leg"], "region"), (["--mri-mm", "1", "2"], "mri_mm"),
                                       (["--region", "thorax", "--brain-only"], "brain"),
                                       (["--sequence", "flair"], "sequence")])
def test_cli_bad_scan_options_are_one_line(tmp_path, capsys, args, word):
    from core.cli import main

    rc = main(["phantom", str(tmp_path / "x"), "--size", "small", "--no-cache"] + args)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and word in err and len(err.splitlines()) == 1
