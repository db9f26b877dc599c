"""Where the rigid stage starts: a pose found from the two body masks alone.

Elastix's rigid stage (mutual information, stochastic gradient descent) converges only from a
pose near the truth: started from the files' frames when they are far off, it drifts, and on
coarse volumes it can even make its own metric worse, leaving the B-spline stage to drag tissue
tens of millimetres. The body outlines are known in both images, and their overlap is a smooth
measure of pose that does not depend on the modalities, so the start is chosen on them. Several
starts are tried: the files' frames, the bodies' centres of mass, and their principal axes
(SimpleITK's ``LabelShapeStatisticsImageFilter``); each is refined on coarse, smoothed copies of
the masks (SimpleITK's registration, mean squares) and the one whose outlines then agree best wins.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from core.registration.grids import block_factors, block_mean
from core.registration.params import ParameterMap
from core.volume import Volume

#: Voxels across the body's smallest extent on the coarse masks the pose is searched on.
SEARCH_VOXELS = 24
#: Principal axes are used only when consecutive principal moments differ by this factor at
#: least; a rounder body (a head seen end-on) has no well-defined axes to match.
DISTINCT_MOMENTS = 1.15


@dataclass(frozen=True)
class Pose:
    """A rigid map of fixed (cryosection) points p to moving (MRI) points q = R (p − c) + c + t."""

    rotation: np.ndarray     # 3×3
    centre: np.ndarray       # c, fixed space (mm)
    translation: np.ndarray  # t (mm)

    def map_points(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return (p - self.centre) @ self.rotation.T + self.centre + self.translation

    def euler(self):
        """The pose as a SimpleITK ``Euler3DTransform`` (the transform elastix's EulerTransform is)."""
        import SimpleITK as sitk

        transform = sitk.Euler3DTransform()
        transform.SetCenter([float(c) for c in self.centre])
        transform.SetMatrix([float(v) for v in self.rotation.ravel()])
        transform.SetTranslation([float(t) for t in self.translation])
        return transform

    @classmethod
    def from_euler(cls, transform) -> "Pose":
        return cls(np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(3, 3),
                   np.asarray(transform.GetCenter(), dtype=np.float64),
                   np.asarray(transform.GetTranslation(), dtype=np.float64))

    def rotation_deg(self) -> float:
        return float(np.degrees(np.arccos(np.clip((np.trace(self.rotation) - 1) / 2, -1.0, 1.0))))

    def parameter_map(self, fixed: Volume) -> ParameterMap:
        """An elastix EulerTransform map of this pose on ``fixed``'s grid: the rigid stage's initial transform."""
        euler = self.euler()
        numbers = lambda values: [repr(float(v)) for v in values]  # noqa: E731
        return {"Transform": ["EulerTransform"], "NumberOfParameters": ["6"],
                "TransformParameters": numbers(euler.GetParameters()),
                "CenterOfRotationPoint": numbers(self.centre), "ComputeZYX": ["false"],
                "InitialTransformParameterFileName": ["NoInitialTransform"], "HowToCombineTransforms": ["Compose"],
                "FixedImageDimension": ["3"], "MovingImageDimension": ["3"],
                "FixedInternalImagePixelType": ["float"], "MovingInternalImagePixelType": ["float"],
                "Size": [str(int(n)) for n in fixed.size_xyz], "Index": ["0", "0", "0"],
                "Spacing": numbers(fixed.spacing), "Origin": numbers(fixed.origin),
                "Direction": numbers(fixed.direction.T.reshape(-1)), "UseDirectionCosines": ["true"],
                "ResampleInterpolator": ["FinalBSplineInterpolator"], "FinalBSplineInterpolationOrder": ["3"],
                "Resampler": ["DefaultResampler"], "DefaultPixelValue": ["0"], "ResultImageFormat": ["nii"],
                "ResultImagePixelType": ["float"], "CompressResultImage": ["false"]}


def _coarse(volume: Volume, mask: np.ndarray, spacing_mm: float):
    """The mask as a SimpleITK float image of the voxel fractions on a grid of about ``spacing_mm``."""
    from core.io.sitk_formats import to_sitk

    import SimpleITK as sitk

    fractions = block_mean(volume.with_array(mask.astype(np.float32), label_table=None),
                           block_factors(volume.spacing, spacing_mm))
    return sitk.SmoothingRecursiveGaussian(to_sitk(fractions), spacing_mm)


def _shape(image):
    """(centroid, principal axes as rows, principal moments) of a fraction image's body (≥ 0.5)."""
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(image >= 0.5, sitk.sitkUInt8))
    return (np.asarray(stats.GetCentroid(1)), np.asarray(stats.GetPrincipalAxes(1)).reshape(3, 3),
            np.asarray(stats.GetPrincipalMoments(1)))


def axes_rotation(fixed_axes: np.ndarray, moving_axes: np.ndarray) -> np.ndarray:
    """The proper rotation taking each fixed principal axis onto the matching moving one, with the
    axes' signs (which moments leave open) chosen to make it the smallest such rotation."""
    best, best_trace = np.eye(3), -np.inf
    for signs in itertools.product((1.0, -1.0), repeat=3):
        rotation = moving_axes.T @ np.diag(signs) @ fixed_axes
        if np.linalg.det(rotation) > 0 and np.trace(rotation) > best_trace:
            best, best_trace = rotation, np.trace(rotation)
    return best


def starts(fixed_img, moving_img, frames: bool) -> dict[str, Pose]:
    """Candidate poses: the files' frames (when trusted), matched centres, matched principal axes."""
    c_fixed, axes_fixed, moments_fixed = _shape(fixed_img)
    c_moving, axes_moving, moments_moving = _shape(moving_img)
    shift = c_moving - c_fixed
    out = {"frames": Pose(np.eye(3), c_fixed, np.zeros(3))} if frames else {}
    out["centres"] = Pose(np.eye(3), c_fixed, shift)
    distinct = all(np.all(m[1:] >= DISTINCT_MOMENTS * m[:-1]) for m in (moments_fixed, moments_moving))
    if distinct:
        out["principal axes"] = Pose(axes_rotation(axes_fixed, axes_moving), c_fixed, shift)
    return out


def _refine(fixed_img, moving_img, pose: Pose, spacing_mm: float, iterations: int = 80) -> tuple[Pose, float]:
    """The pose after a short mean-squares registration of the smoothed masks, and its metric."""
    import SimpleITK as sitk

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=2 * spacing_mm, minStep=0.05 * spacing_mm,
                                                    numberOfIterations=iterations, relaxationFactor=0.6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(pose.euler(), inPlace=False)
    result = method.Execute(fixed_img, moving_img)
    final = sitk.Euler3DTransform(sitk.CompositeTransform(result).GetNthTransform(0))
    method.SetInitialTransform(final, inPlace=False)
    return Pose.from_euler(final), float(method.MetricEvaluate(fixed_img, moving_img))


def initial_pose(fixed: Volume, fixed_mask: np.ndarray, moving: Volume, moving_mask: np.ndarray,
                 frames: bool = True, threads: int | None = None) -> tuple[Pose, dict]:
    """The best start for the rigid stage, and a report of every start tried (mean squares of the
    masks after refinement: lower is better).

    ``frames``: whether the files' physical frames are one of the starts (``init="frames"``).
    """
    import SimpleITK as sitk

    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    body = np.argwhere(fixed_mask)
    extent = (body.max(axis=0) - body.min(axis=0) + 1)[::-1] * fixed.spacing
    spacing_mm = max(float(fixed.spacing.max()), float(extent.min()) / SEARCH_VOXELS)
    fixed_img, moving_img = _coarse(fixed, fixed_mask, spacing_mm), _coarse(moving, moving_mask, spacing_mm)
    tried = {name: _refine(fixed_img, moving_img, pose, spacing_mm)
             for name, pose in starts(fixed_img, moving_img, frames).items()}
    best = min(tried, key=lambda name: tried[name][1])
    pose = tried[best][0]
    report = {"start": best, "search_spacing_mm": round(spacing_mm, 2),
              "mask_mean_squares": {name: round(m, 5) for name, (_, m) in tried.items()},
              "rotation_deg": round(pose.rotation_deg(), 2), "translation_mm": np.round(pose.translation, 2).tolist()}
    return pose, report
