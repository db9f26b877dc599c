"""Registration: parameter files, masks, measures, warping, input checks, and small elastix runs.

Elastix runs use tiny synthetic pairs (a body ellipsoid with blobs, a known rigid motion) so
that the fast test finishes in seconds after the ~10 s ``import itk``; the rigid + B-spline run
on a 48³ pair and the phantom run are marked slow.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from core.cli import main
from core.errors import InputError
from core.io import write_volume
from core.labels import Label, LabelTable
from core.registration import (QualityLimits, RegistrationError, apply_transform, cryo_body_mask, dice_per_label,
                               load_stages, luminance, read_transform, register, save_result)
from core.registration.grids import block_mean
from core.registration.masks import check_mask
from core.registration.measures import body_points, invert_mapping, target_registration_error
from core.registration.output import atomic_directory
from core.registration.params import (DEFAULT_STAGES, default_parameter_file, format_parameter_map,
                                      parse_parameter_text, read_parameter_file)
from core.registration.quality import label_problems, quality_problems
from core.registration.register import check_modalities, check_overlap
from core.registration.warp import DisplacementField, identity_field
from core.registration.masks import mri_body_mask
from core.volume import Volume

TABLE = LabelTable([Label(0, "background", "", (20, 20, 25)), Label(1, "fat", "", (232, 205, 140)),
                    Label(2, "muscle", "", (150, 55, 45)), Label(3, "bone", "", (225, 215, 190)),
                    Label(4, "organ", "", (115, 45, 35))])
#: T1-like MRI level per label: non-monotonic against the cryosection luminance (bone dark).
MRI_LEVEL = np.array([0.0, 1.0, 0.4, 0.05, 0.6], np.float32)
FAST = {"MaximumNumberOfIterations": "48", "NumberOfResolutions": "2"}


def rotation(degrees_xyz) -> np.ndarray:
    ax, ay, az = np.radians(degrees_xyz)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def tissue_at(points: np.ndarray, scale: float) -> np.ndarray:
    """Labels of a body ellipsoid (fat shell, muscle, a bone and two organ blobs) at physical points."""
    x, y, z = (points[..., k] / scale for k in range(3))
    lab = np.zeros(points.shape[:-1], np.int16)
    lab[(x / 40) ** 2 + (y / 28) ** 2 + (z / 44) ** 2 < 1] = 1
    lab[(x / 34) ** 2 + (y / 22) ** 2 + (z / 38) ** 2 < 1] = 2
    lab[((x - 12) / 7) ** 2 + ((y + 4) / 7) ** 2 + ((z - 8) / 14) ** 2 < 1] = 3
    lab[((x + 14) / 10) ** 2 + ((y - 5) / 8) ** 2 + ((z + 10) / 9) ** 2 < 1] = 4
    lab[((x + 2) / 5) ** 2 + ((y + 10) / 5) ** 2 + ((z - 20) / 6) ** 2 < 1] = 4
    return lab


def grid_points(volume: Volume) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n) for n in volume.array.shape[:3]], indexing="ij")
    return volume.index_to_physical(np.stack([x, y, z], axis=-1))


def synthetic_pair(n: int = 32, spacing: float = 3.0, mri_spacing: float = 3.6, rotate=(4, -3, 5),
                   shift=(5, -4, 6), seed: int = 0):
    """(mri, cryo, labels, mri_labels, mri_to_cryo) with a known rigid misalignment."""
    rng = np.random.default_rng(seed)
    rot, t = rotation(rotate), np.asarray(shift, float)

    def mri_to_cryo(q):
        return np.asarray(q, float) @ rot.T + t

    scale = n * spacing / 96
    cryo_grid = Volume(np.zeros((n, n, n), np.float32), spacing=(spacing,) * 3, origin=(-(n - 1) / 2 * spacing,) * 3)
    labels = tissue_at(grid_points(cryo_grid), scale)
    rgb = TABLE.color_lut().astype(np.float32)[labels] * (1 + 0.05 * rng.standard_normal(labels.shape + (1,)))
    cryo = cryo_grid.with_array(np.clip(rgb, 0, 255).astype(np.uint8), label_table=None)
    m = int(round(n * spacing / mri_spacing)) + 4
    mri_grid = Volume(np.zeros((m, m, m), np.float32), spacing=(mri_spacing,) * 3,
                      origin=(-(m - 1) / 2 * mri_spacing,) * 3)
    mri_labels = tissue_at(mri_to_cryo(grid_points(mri_grid)), scale)
    mri = ndi.gaussian_filter(MRI_LEVEL[mri_labels], 0.7) + 0.02 * rng.standard_normal(mri_labels.shape)
    return (mri_grid.with_array(mri.astype(np.float32)), cryo, cryo.with_array(labels, label_table=TABLE),
            mri_grid.with_array(mri_labels, label_table=TABLE), mri_to_cryo)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair()


# --- parameter files ----------------------------------------------------------------------------
def test_default_parameter_files_load_and_round_trip():
    maps = load_stages()
    assert [m["Transform"][0] for m in maps] == ["EulerTransform", "BSplineTransform"]
    assert len(maps) == len(DEFAULT_STAGES)
    for stage in DEFAULT_STAGES:
        pmap = read_parameter_file(default_parameter_file(stage))
        assert parse_parameter_text(format_parameter_map(pmap)) == pmap
    assert maps[1]["Metric"] == ["AdvancedMattesMutualInformation", "TransformBendingEnergyPenalty"]


def test_overrides_apply_to_every_stage():
    maps = load_stages(overrides={"MaximumNumberOfIterations": 32, "GridSpacingSchedule": [2, 1]})
    assert all(m["MaximumNumberOfIterations"] == ["32"] for m in maps)
    assert maps[0]["GridSpacingSchedule"] == ["2", "1"]


@pytest.mark.parametrize("text, problem", [
    ('(Transform "EulerTransform"\n', "line 1 is not an elastix entry"),
    ('(Transform "A")\n(Transform "B")\n', "given twice"),
    ("(Transform)\n", "has no value"),
])
def test_parameter_syntax_errors_name_the_line(tmp_path, text, problem):
    path = tmp_path / "p.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as info:
        read_parameter_file(path)
    assert str(path) in str(info.value)


def test_parameter_files_missing_keys_or_bad_numbers(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text('// only a transform\n(Transform "EulerTransform")\n')
    with pytest.raises(InputError, match="lacks Metric, Optimizer, Registration; it needs"):
        read_parameter_file(path)
    with pytest.raises(InputError, match="MaximumNumberOfIterations must be a positive integer"):
        load_stages(overrides={"MaximumNumberOfIterations": "many"})
    with pytest.raises(InputError, match="not found"):
        read_parameter_file(tmp_path / "missing.txt")


# --- masks, grids, measures, warping -------------------------------------------------------------
def test_luminance_is_bt601(pair):
    cryo = pair[1]
    y = luminance(cryo).array
    expect = (0.299 * cryo.array[..., 0] + 0.587 * cryo.array[..., 1] + 0.114 * cryo.array[..., 2]) / 255
    np.testing.assert_allclose(y, expect, atol=1e-5)
    assert y.dtype == np.float32


def test_cryo_body_mask_finds_the_body(pair):
    _, cryo, labels, _, _ = pair
    mask = cryo_body_mask(cryo)
    assert dice_per_label(mask.astype(int), (labels.array != 0).astype(int))[1] > 0.97


def test_mask_errors(pair):
    cryo = pair[1]
    with pytest.raises(InputError, match="single colour"):
        cryo_body_mask(cryo.with_array(np.full_like(cryo.array, 30)))
    with pytest.raises(InputError, match="is empty"):
        check_mask(np.zeros(cryo.array.shape[:3]), cryo)
    with pytest.raises(InputError, match="another grid"):
        check_mask(Volume(np.ones((4, 4, 4), np.uint8)), cryo)
    with pytest.raises(InputError, match="RGB"):
        check_mask(cryo, cryo)


def test_block_mean_keeps_the_physical_frame():
    vol = Volume(np.arange(8 * 6 * 4, dtype=np.float32).reshape(8, 6, 4), spacing=(1, 2, 0.5), origin=(3, 4, 5))
    coarse = block_mean(vol, (2, 3, 4))
    assert coarse.array.shape == (2, 2, 2)
    np.testing.assert_allclose(coarse.array[0, 0, 0], vol.array[:4, :3, :2].mean())
    first_block_centre = vol.index_to_physical(np.array([0.5, 1.0, 1.5]))
    np.testing.assert_allclose(coarse.index_to_physical(np.zeros(3)), first_block_centre)


def test_dice_per_label_counts_exactly():
    a = np.array([0, 1, 1, 2, 2, 2, 3])
    b = np.array([0, 1, 2, 2, 2, 0, 4])
    d = dice_per_label(a, b)
    assert d[1] == pytest.approx(2 * 1 / 3) and d[2] == pytest.approx(2 * 2 / 6)
    assert d[3] == 0 and d[4] == 0 and 0 not in d


def test_tre_inverts_the_truth_and_is_zero_for_a_perfect_estimate(pair):
    _, cryo, labels, _, mri_to_cryo = pair
    points = body_points(labels.array != 0, cryo, 500)
    rot = rotation((4, -3, 5))
    exact = lambda p: (np.asarray(p) - np.array([5, -4, 6])) @ rot  # noqa: E731 - the inverse of mri_to_cryo
    q, residual = invert_mapping(mri_to_cryo, points)
    assert residual < 1e-3 and np.abs(q - exact(points)).max() < 1e-2
    perfect = target_registration_error(exact, mri_to_cryo, points)
    assert perfect["after"]["mean"] < 1e-2
    assert perfect["before"]["mean"] == pytest.approx(np.linalg.norm(points - exact(points), axis=1).mean(), rel=1e-3)
    assert perfect["reduction"] > 0.99


def test_displacement_field_maps_points_and_measures_jacobians():
    ref = Volume(np.zeros((10, 12, 14), np.float32), spacing=(2, 1.5, 3), origin=(5, -3, 2))
    a = np.array([[0.1, 0.02, 0], [0, -0.05, 0.03], [0.01, 0, 0.2]])
    p = grid_points(ref)
    field = DisplacementField(ref.with_array((p @ a.T + [1, 2, -3]).astype(np.float32)))
    np.testing.assert_allclose(field.jacobian_determinant(), np.linalg.det(np.eye(3) + a), rtol=1e-4)
    inner = p[3:6, 4:7, 5:8]
    np.testing.assert_allclose(field.map_points(inner), inner + inner @ a.T + [1, 2, -3], atol=1e-4)
    np.testing.assert_allclose(identity_field().map_points(inner), inner)


def test_identity_warp_matches_map_coordinates_and_keeps_labels(pair):
    mri, cryo, _, mri_labels, _ = pair
    warped = identity_field().warp(mri, cryo)
    index = mri.physical_to_index(grid_points(cryo))
    expect = ndi.map_coordinates(mri.array, [index[..., 2], index[..., 1], index[..., 0]], order=1)
    np.testing.assert_allclose(warped.array, expect, atol=1e-5)
    labels = identity_field().warp(mri_labels, cryo)
    assert labels.array.dtype == mri_labels.array.dtype and labels.label_table == TABLE
    assert set(np.unique(labels.array)) <= set(TABLE.ids)


# --- input checks (before itk is imported) ---------------------------------------------------------
def test_modality_checks(pair):
    mri, cryo, labels, _, _ = pair
    with pytest.raises(InputError, match="RGB volume; the MRI must be a single-channel"):
        check_modalities(cryo, cryo)
    with pytest.raises(InputError, match="cryosection must be an RGB"):
        check_modalities(mri, mri)
    with pytest.raises(InputError, match="label volume"):
        check_modalities(labels, cryo)
    with pytest.raises(InputError, match="constant"):
        check_modalities(mri.with_array(np.zeros_like(mri.array)), cryo)


def test_volumes_that_do_not_overlap_are_refused(pair):
    mri, cryo, labels, _, _ = pair
    far = Volume(mri.array, spacing=mri.spacing, origin=mri.origin + [0, 0, 500])
    with pytest.raises(InputError, match="do not overlap in physical space") as info:
        check_overlap(far, mri_body_mask(far), cryo, labels.array != 0)
    assert "--init center" in str(info.value)
    with pytest.raises(InputError, match="do not overlap"):
        register(far, cryo)


def test_quality_problems_name_every_failure():
    report = {"body_dice": {"before": 0.8, "after": 0.4}, "similarity": {"nmi_before": 1.1, "nmi_after": 1.05},
              "deformation": {"folding_fraction": 0.02, "min_jacobian": -0.5, "max_nonrigid_mm": 80.0},
              "dice": {"mean_before": 0.6, "mean_after": 0.3}}
    previous = {"body_dice": {"after": 0.9}, "similarity": {"nmi_after": 1.2}}
    problems = " | ".join(quality_problems(report, QualityLimits(), previous) + label_problems(report, QualityLimits()))
    for words in ("overlap poorly", "overlap less than before", "similarity got worse", "folds over 2.00%",
                  "up to 80 mm", "tissue Dice got worse", "similarity is worse than after the previous stage",
                  "overlap less than after the previous stage"):
        assert words in problems
    assert quality_problems({**report, "body_dice": {"before": 0.8, "after": 0.85}, "similarity":
                             {"nmi_before": 1.1, "nmi_after": 1.12}, "deformation": {"folding_fraction": 0,
                             "min_jacobian": 0.5, "max_nonrigid_mm": 10.0}}, QualityLimits()) == []


def test_cli_register_bad_inputs_give_one_line(tmp_path, pair, capsys):
    mri, cryo, _, _, _ = pair
    write_volume(mri, tmp_path / "mri.nii.gz")
    write_volume(cryo, tmp_path / "cryo.nii.gz")
    base = ["register", "--out", str(tmp_path / "out")]
    cases = [(["--mri", str(tmp_path / "cryo.nii.gz"), "--cryo", str(tmp_path / "cryo.nii.gz")], "single-channel MRI"),
             (["--mri", str(tmp_path / "mri.nii.gz"), "--cryo", str(tmp_path / "mri.nii.gz")], "RGB cryosection"),
             (["--mri", str(tmp_path / "mri.nii.gz"), "--cryo", str(tmp_path / "cryo.nii.gz"),
               "--mask", str(tmp_path / "nomask.nii.gz")], "not found"),
             (["--mri", str(tmp_path / "mri.nii.gz"), "--cryo", str(tmp_path / "cryo.nii.gz"),
               "--labels", str(tmp_path / "cryo.nii.gz")], "give both"),
             (["--mri", str(tmp_path / "mri.nii.gz"), "--cryo", str(tmp_path / "cryo.nii.gz"), "--set", "Oops"],
              "KEY=VALUE")]
    for args, message in cases:
        assert main(base + args) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "out").exists()


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "old.txt").exists()
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- elastix ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rigid_result(pair):
    mri, cryo, labels, mri_labels, truth = pair
    stages = load_stages([default_parameter_file("rigid")], FAST)
    return register(mri, cryo, stages=stages, threads=2, mri_labels=mri_labels, labels=labels, truth=truth,
                    tre_points=2000)


def test_rigid_registration_recovers_a_known_motion(rigid_result, pair):
    report = rigid_result.report
    assert report["checks"]["passed"], report["checks"]
    assert report["tre_mm"]["after"]["mean"] < 0.35 * report["tre_mm"]["before"]["mean"]
    assert report["dice"]["mean_after"] > report["dice"]["mean_before"] + 0.1
    assert report["similarity"]["nmi_after"] > report["similarity"]["nmi_before"]
    assert report["stages"][0]["metric"] and report["seconds"]["total"] > 0
    assert rigid_result.registered.same_frame(pair[1]) and rigid_result.registered.array.dtype == np.float32


def test_saved_transform_reapplies_with_transformix(rigid_result, pair, tmp_path):
    mri, cryo, _, mri_labels, _ = pair
    save_result(rigid_result, tmp_path / "reg", {"mri_labels_registered": rigid_result.warp(mri_labels)})
    files = sorted(p.name for p in tmp_path.joinpath("reg").rglob("*") if p.is_file())
    for name in ("mri_registered.nii.gz", "mask.nii.gz", "deformation_field.nii.gz", "report.json", "report.txt",
                 "TransformParameters.0.txt", "mri_labels_registered.nii.gz", "mri_labels_registered.labels.csv"):
        assert name in files
    report = json.loads((tmp_path / "reg" / "report.json").read_text(encoding="utf-8"))
    assert report["tre_mm"]["after"]["mean"] == pytest.approx(rigid_result.report["tre_mm"]["after"]["mean"])
    maps = read_transform(tmp_path / "reg")
    by_transformix = apply_transform(mri_labels, maps, cryo)
    by_field = rigid_result.warp(mri_labels)
    assert by_transformix.array.dtype == mri_labels.array.dtype
    assert (by_transformix.array == by_field.array).mean() > 0.98


def test_a_rejected_registration_raises_with_the_reasons(pair):
    mri, cryo, _, _, _ = pair
    stages = load_stages([default_parameter_file("rigid")], FAST)
    with pytest.raises(RegistrationError, match="did not converge.*overlap poorly"):
        register(mri, cryo, stages=stages, threads=2, limits=QualityLimits(min_body_dice=0.9999))


def test_elastix_failures_are_wrapped(pair):
    mri, cryo, _, _, _ = pair
    stages = load_stages([default_parameter_file("rigid")], {**FAST, "Metric": "NoSuchMetric"})
    with pytest.raises(RegistrationError, match="elastix failed in the rigid stage: .*NoSuchMetric"):
        register(mri, cryo, stages=stages, threads=2)


@pytest.mark.slow
def test_rigid_then_bspline_on_a_48_cube(tmp_path):
    mri, cryo, labels, mri_labels, truth = synthetic_pair(n=48, spacing=2.0, mri_spacing=2.5)
    stages = load_stages(overrides={"MaximumNumberOfIterations": "96"})
    result = register(mri, cryo, stages=stages, threads=2, mri_labels=mri_labels, labels=labels, truth=truth)
    assert result.report["tre_mm"]["reduction"] > 0.8
    assert result.report["deformation"]["folding_fraction"] == 0
    assert main(["register", "--mri", str(write_volume(mri, tmp_path / "m.nii.gz")),
                 "--cryo", str(write_volume(cryo, tmp_path / "c.nii.gz")), "--out", str(tmp_path / "o"),
                 "--set", "MaximumNumberOfIterations=32", "--threads", "2"]) == 0
    assert (tmp_path / "o" / "transform" / "TransformParameters.1.txt").is_file()
