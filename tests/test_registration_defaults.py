"""Registration defaults that work on a new subject: the initial pose from the body masks, the
parameters that follow the geometry, and keeping the rigid result when the B-spline stage fails.

Fast tests run the initialiser on synthetic masks and on a small phantom (no elastix), the
fallback decision on hand-made stage checks, and one tiny elastix run in which the B-spline
stage is made to fail; the full default registration of a small phantom subject is slow.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from core.cli import main
from core.io import write_volume
from core.phantom import make_subject
from core.registration import QualityLimits, RegistrationError, load_stages, register
from core.registration.adapt import adapt_stages, bspline_grid_mm, pyramid_levels
from core.registration.grids import registration_grid
from core.registration.initialise import Pose, axes_rotation, initial_pose
from core.registration.masks import cryo_body_mask, luminance, mri_body_mask
from core.registration.measures import body_points, target_registration_error
from core.registration.quality import choose_stage, refusal
from core.volume import Volume
from tests.test_registration import FAST, rotation, synthetic_pair

#: A seed no other test and no training preset uses.
SEED = 131
#: Short elastix runs for the tiny synthetic pair.
QUICK = {**FAST, "NumberOfSpatialSamples": "1024"}


def ellipsoid_mask(volume: Volume, to_body=lambda p: p) -> np.ndarray:
    """Voxels of ``volume`` whose point, mapped by ``to_body``, lies in an egg-shaped body."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in volume.array.shape[:3]], indexing="ij")
    p = to_body(volume.index_to_physical(np.stack([x, y, z], axis=-1).astype(np.float64)))
    egg = (p[..., 0] / 70) ** 2 + (p[..., 1] / 40) ** 2 + (p[..., 2] / (25 + 0.1 * p[..., 0])) ** 2 < 1
    return egg


def moved(volume: Volume, rot: np.ndarray, shift: np.ndarray, centre: np.ndarray) -> Volume:
    """The same voxels with their physical frame moved rigidly: x → rot (x − centre) + centre + shift."""
    origin = rot @ (volume.origin - centre) + centre + shift
    return Volume(volume.array, spacing=volume.spacing, origin=origin, direction=rot @ volume.direction,
                  label_table=volume.label_table)


# --- the initial pose ------------------------------------------------------------------------------
def test_axes_rotation_picks_the_smallest_rotation_among_sign_flips():
    rot = rotation((10, -5, 20))
    axes = np.eye(3)[[2, 0, 1]]
    found = axes_rotation(axes, -(axes @ rot.T))  # moving axes: rotated and sign-flipped
    np.testing.assert_allclose(found, rot, atol=1e-9)


def test_initial_pose_on_synthetic_masks_recovers_rotation_and_shift():
    fixed = Volume(np.zeros((40, 40, 48), np.float32), spacing=(4, 4, 4), origin=(-94, -78, -78))
    rot, shift = rotation((0, 8, 20)), np.array([40.0, -15.0, 10.0])
    # fixed point p ↦ moving point q = rot p + shift, so q is in the body where rot⁻¹(q − shift) is
    moving = Volume(np.zeros((44, 44, 52), np.float32), spacing=(4, 4, 4), origin=(-60, -100, -80))
    pose, report = initial_pose(fixed, ellipsoid_mask(fixed), moving,
                                ellipsoid_mask(moving, lambda q: (q - shift) @ rot), threads=1)
    points = fixed.index_to_physical(np.argwhere(ellipsoid_mask(fixed))[:, ::-1].astype(np.float64))
    error = np.linalg.norm(pose.map_points(points) - (points @ rot.T + shift), axis=1)
    assert error.mean() < 3.0, report  # 4 mm voxels; the start was off by ~50 mm
    assert report["start"] != "frames"


def test_pose_parameter_map_is_the_same_rigid_map():
    pose = Pose(rotation((3, -7, 12)), np.array([10.0, -5.0, 30.0]), np.array([4.0, 2.0, -9.0]))
    points = np.array([[0.0, 0.0, 0.0], [100.0, -40.0, 250.0]])
    np.testing.assert_allclose(Pose.from_euler(pose.euler()).map_points(points), pose.map_points(points), atol=1e-9)
    pmap = pose.parameter_map(Volume(np.zeros((4, 5, 6), np.float32), spacing=(2, 2, 3)))
    assert pmap["Transform"] == ["EulerTransform"] and pmap["Size"] == ["6", "5", "4"]
    assert [float(v) for v in pmap["CenterOfRotationPoint"]] == [10.0, -5.0, 30.0]


def test_initial_pose_recovers_40_mm_and_15_degrees_on_a_small_phantom():
    subject = make_subject(SEED, "small")
    centre = subject.mri.center
    offset_rot, offset_shift = rotation((15, 0, 0)) @ rotation((0, 0, 4)), np.array([0.0, 24.0, 32.0])
    assert np.linalg.norm(offset_shift) == pytest.approx(40)
    mri = moved(subject.mri, offset_rot, offset_shift, centre)

    def truth(q):  # the moved MRI's points back to the original MRI frame, then the phantom's truth
        return subject.transform.mri_to_cryo((np.asarray(q) - centre - offset_shift) @ offset_rot + centre)

    body = cryo_body_mask(subject.cryo)
    fixed, fixed_mask = registration_grid(luminance(subject.cryo), body, float(mri.spacing.max()))
    pose, report = initial_pose(fixed, fixed_mask, mri, mri_body_mask(mri), threads=1)
    tre = target_registration_error(pose.map_points, truth, body_points(body, subject.cryo, 3000))
    assert tre["before"]["mean"] > 60
    assert tre["after"]["mean"] < 10, report  # what is left is mostly the phantom's non-rigid part
    assert report["start"] != "frames" and 10 < report["rotation_deg"] < 20


# --- parameters that follow the geometry ---------------------------------------------------------
def test_pyramid_and_grid_follow_extent_and_voxel_size():
    assert pyramid_levels(6) == 1 and pyramid_levels(20) == 2 and pyramid_levels(50) == 3
    assert pyramid_levels(180) == 4  # capped
    assert bspline_grid_mm(10.0, 250.0) == 40.0  # coarse voxels: at least 4 voxels apart
    assert bspline_grid_mm(4.0, 250.0) == 31.0   # whole body at 4 mm: ~8 control points across
    assert bspline_grid_mm(1.0, 150.0) == 19.0   # a head at 1 mm: finer


def test_adapted_keys_fill_only_what_the_files_leave_out():
    grid = Volume(np.zeros((100, 50, 60), np.float32), spacing=(4, 4, 4))
    mask = np.zeros(grid.array.shape, bool)
    mask[10:90, 5:45, 10:50] = True  # 160 × 160 × 320 mm: 40 voxels across at least
    stages, filled = adapt_stages(load_stages(), grid, mask)
    assert stages[0]["NumberOfResolutions"] == ["3"] and len(stages[0]["MaximumNumberOfIterations"]) == 3
    assert stages[1]["NumberOfResolutions"] == ["2"] and stages[1]["GridSpacingSchedule"] == ["2", "1"]
    assert stages[1]["FinalGridSpacingInPhysicalUnits"] == ["20.0"]
    assert filled[1]["FinalGridSpacingInPhysicalUnits"] == "20.0"
    own, filled = adapt_stages(load_stages(overrides={"NumberOfResolutions": "1",
                                                      "FinalGridSpacingInPhysicalUnits": "55"}), grid, mask)
    assert own[1]["FinalGridSpacingInPhysicalUnits"] == ["55"] and own[1]["GridSpacingSchedule"] == ["1"]
    assert own[0]["MaximumNumberOfIterations"] == ["256"] and "NumberOfResolutions" not in filled[0]


# --- which stage to keep ----------------------------------------------------------------------------
def test_a_failing_bspline_stage_falls_back_to_rigid_with_a_warning():
    choice = choose_stage(["rigid", "B-spline"], [[], ["the non-rigid stage moves tissue by up to 58 mm (> 40 mm)"]])
    assert choice.kept == 0 and choice.passed and not choice.problems
    assert len(choice.warnings) == 1 and "B-spline stage failed" in choice.warnings[0]
    assert "58 mm" in choice.warnings[0] and "rigid stage is kept" in choice.warnings[0]
    sound = choose_stage(["rigid", "B-spline"], [[], []])
    assert sound.kept == 1 and sound.passed and not sound.warnings


def test_no_trustworthy_stage_is_refused_with_every_reason():
    problems = [["image similarity got worse (NMI 1.10 → 1.05)"], ["the deformation folds over 2.00% of the body"]]
    choice = choose_stage(["rigid", "B-spline"], problems)
    assert choice.kept == 1 and not choice.passed and choice.problems == problems[1]
    message = refusal(["rigid", "B-spline"], problems)
    assert "rigid: image similarity got worse" in message and "B-spline: the deformation folds" in message


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair()


def test_register_keeps_the_rigid_result_when_bspline_fails(pair):
    mri, cryo, labels, mri_labels, truth = pair
    messages = []
    limits = QualityLimits(max_nonrigid_mm=0.0)  # any non-rigid motion fails: the B-spline stage must
    result = register(mri, cryo, stages=load_stages(overrides=QUICK), threads=2, truth=truth, limits=limits,
                      tre_points=2000, progress=messages.append)
    report = result.report
    assert [s["name"] for s in report["stages"]] == ["rigid", "B-spline"]
    assert report["kept_stage"] == "rigid" and report["checks"]["passed"]
    assert report["stages"][1]["problems"] and not report["stages"][0]["problems"]
    assert any(m.startswith("warning: the B-spline stage failed") for m in messages)
    assert "BSplineTransform" not in [m["Transform"][0] for m in result.transform]
    assert report["tre_mm"]["after"]["mean"] == pytest.approx(report["stages"][0]["tre_mean_mm"])
    assert report["tre_mm"]["after"]["mean"] < 0.35 * report["tre_mm"]["before"]["mean"]


def test_register_refuses_only_when_no_stage_passes_and_force_keeps_the_last(pair):
    mri, cryo, _, _, _ = pair
    limits = QualityLimits(min_body_dice=0.9999)
    with pytest.raises(RegistrationError, match="any stage .*rigid: the body outlines overlap poorly.*B-spline:"):
        register(mri, cryo, stages=load_stages(overrides=QUICK), threads=2, limits=limits)
    kept = register(mri, cryo, stages=load_stages(overrides=QUICK), threads=2, limits=limits, strict=False)
    assert kept.report["kept_stage"] == "B-spline" and not kept.report["checks"]["passed"]
    assert "overlap poorly" in kept.report["checks"]["problems"][0]


def test_cli_prints_the_fallback_warning(tmp_path, pair, capsys, monkeypatch):
    module = importlib.import_module("core.registration.register")  # the package's `register` is the function
    mri, cryo, _, _, _ = pair
    checks = module.quality_problems
    # a mocked check: the B-spline stage (the only one that moves tissue non-rigidly) fails
    monkeypatch.setattr(module, "quality_problems", lambda report, limits, previous=None: (
        ["mocked: moves tissue"] if report["deformation"]["max_nonrigid_mm"] > 0 else checks(report, limits, previous)))
    args = ["register", "--mri", str(write_volume(mri, tmp_path / "m.nii.gz")), "--cryo",
            str(write_volume(cryo, tmp_path / "c.nii.gz")), "--out", str(tmp_path / "o"), "--threads", "2",
            "--set", "MaximumNumberOfIterations=48", "--set", "NumberOfSpatialSamples=1024"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "warning: the B-spline stage failed its quality checks (mocked: moves tissue)" in err
    assert "warning: the B-spline stage failed" in out
    assert "kept: the rigid result" in (tmp_path / "o" / "report.txt").read_text(encoding="utf-8")
    assert "BSplineTransform" not in "".join(p.read_text() for p in (tmp_path / "o" / "transform").iterdir())


@pytest.mark.slow
def test_defaults_register_a_small_phantom_subject():
    subject = make_subject(SEED, "small")
    result = register(subject.mri, subject.cryo, truth=subject.transform.mri_to_cryo, threads=2)
    report = result.report
    assert report["checks"]["passed"], report["checks"]
    before = report["tre_mm"]["before"]["mean"]
    assert report["initial_pose"]["tre_mean_mm"] < 0.5 * before
    assert report["tre_mm"]["after"]["mean"] < 0.35 * before  # the small phantom's 10 mm grid limits precision
    assert report["body_dice"]["after"] > 0.9
