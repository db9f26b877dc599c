"""Quality checks of each registration stage, and which stage's result to keep.

A silently wrong registration would poison every training slice cut from it, so every stage's
result is measured (similarity, body overlap, folding, how far the non-rigid part moves tissue)
and checked. The B-spline stage is the one that goes wrong on unfamiliar data (it can "improve"
mutual information by dragging tissue tens of millimetres), while a rigid result that passes
the checks is still a sound, if less precise, alignment. So instead of refusing the whole run
when the last stage fails, the last stage that passes is kept with a warning; the run is refused
only when no stage passes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityLimits:
    """When a finished registration is refused as wrong rather than written."""

    min_body_dice: float = 0.6       # body outlines must overlap at least this much afterwards
    max_body_dice_drop: float = 0.05  # … and not overlap less than before (or than the previous stage)
    max_nmi_drop: float = 0.02       # normalised mutual information (1: independent, 2: identical) must not fall
    max_label_dice_drop: float = 0.05  # mean tissue Dice (when labels are given) must not fall
    max_folding_fraction: float = 1e-3  # share of body voxels where the mapping folds (det J ≤ 0)
    max_nonrigid_mm: float = 40.0    # largest displacement beyond the first (rigid) stage


def quality_problems(report: dict, limits: QualityLimits, previous: dict | None = None) -> list[str]:
    """Human-readable reasons to distrust one stage's result (empty when it looks sound).

    ``report`` holds the stage's ``body_dice``, ``similarity`` and ``deformation``; ``previous``
    the same for the stage it started from, which it must not undo.
    """
    problems = []
    body, sim, deform = report["body_dice"], report["similarity"], report["deformation"]
    if body["after"] < limits.min_body_dice:
        problems.append(f"the body outlines overlap poorly after registration (Dice {body['after']:.2f} "
                        f"< {limits.min_body_dice})")
    if body["after"] < body["before"] - limits.max_body_dice_drop:
        problems.append(f"the body outlines overlap less than before (Dice {body['before']:.2f} → {body['after']:.2f})")
    if sim["nmi_after"] < sim["nmi_before"] - limits.max_nmi_drop:
        problems.append(f"image similarity got worse (NMI {sim['nmi_before']:.3f} → {sim['nmi_after']:.3f})")
    if previous is not None:
        problems.extend(_worse_than(report, previous, limits))
    if deform["folding_fraction"] > limits.max_folding_fraction:
        problems.append(f"the deformation folds over {deform['folding_fraction']:.2%} of the body "
                        f"(Jacobian determinant down to {deform['min_jacobian']:.2f})")
    if deform["max_nonrigid_mm"] > limits.max_nonrigid_mm:
        problems.append(f"the non-rigid stage moves tissue by up to {deform['max_nonrigid_mm']:.0f} mm "
                        f"(> {limits.max_nonrigid_mm:.0f} mm)")
    return problems


def label_problems(report: dict, limits: QualityLimits) -> list[str]:
    """The tissue-Dice check, on the kept result only: labels are warped on the full cryosection
    grid, which costs too much to repeat for every stage."""
    dice = report.get("dice")
    if dice and dice["mean_after"] < dice["mean_before"] - limits.max_label_dice_drop:
        return [f"mean tissue Dice got worse ({dice['mean_before']:.2f} → {dice['mean_after']:.2f})"]
    return []


def _worse_than(report: dict, previous: dict, limits: QualityLimits) -> list[str]:
    """A later stage that undoes its predecessor's alignment is not trusted, even if it beats the start."""
    out = []
    nmi, nmi_prev = report["similarity"]["nmi_after"], previous["similarity"]["nmi_after"]
    if nmi < nmi_prev - limits.max_nmi_drop:
        out.append(f"image similarity is worse than after the previous stage (NMI {nmi_prev:.3f} → {nmi:.3f})")
    body, body_prev = report["body_dice"]["after"], previous["body_dice"]["after"]
    if body < body_prev - limits.max_body_dice_drop:
        out.append(f"the body outlines overlap less than after the previous stage (Dice {body_prev:.2f} → {body:.2f})")
    return out


@dataclass(frozen=True)
class Choice:
    """Which stage's result to keep (its index), whether it is trusted, and what to tell the user."""

    kept: int
    passed: bool
    problems: list[str]   # of the kept stage (empty when it passed)
    warnings: list[str]   # stages discarded in favour of an earlier one, and why


def choose_stage(names: list[str], problems: list[list[str]]) -> Choice:
    """Keep the last stage without problems; when every stage has problems, the last one (untrusted).

    ``names`` and ``problems`` are per stage, in the order they ran.
    """
    passing = [i for i, p in enumerate(problems) if not p]
    last = len(names) - 1
    if not passing:
        return Choice(last, False, problems[last], [])
    kept = passing[-1]
    warnings = [f"the {names[i]} stage failed its quality checks ({'; '.join(problems[i])}), so the result of "
                f"the {names[kept]} stage is kept instead" for i in range(kept + 1, len(names))]
    return Choice(kept, True, [], warnings)


def refusal(names: list[str], problems: list[list[str]]) -> str:
    """Why no stage can be trusted, stage by stage, and what the user can do about it."""
    reasons = "; ".join(f"{name}: {', '.join(p)}" for name, p in zip(names, problems))
    return (f"did not converge to a trustworthy alignment in any stage ({reasons}). Inspect the inputs "
            f"(are the MRI and the cryosection the same body, and is the body mask right?) or the parameters, "
            f"or keep the result anyway with strict=False / --force")
