"""MRI-to-cryosection registration (itk-elastix, rigid then B-spline) and alignment measures.

The rigid stage starts from a pose found from the two body masks; when the B-spline stage fails
its quality checks, the rigid result is kept and ``result.report["checks"]["warnings"]`` says so.

Importing this package is cheap: ``itk`` is imported only when a registration or transformix
call runs (it takes about 10 s).

    from core.registration import register, save_result
    result = register(mri, cryo, mri_labels=mri_labels, labels=labels)
    result.registered            # the MRI on the cryosection grid (a Volume)
    result.warp(mri_space_volume)  # any MRI-space volume onto the same grid (labels: nearest)
    result.report                # times, metrics, body/tissue Dice, TRE, quality checks
    save_result(result, "out/")  # volumes, elastix transform files, report.json/.txt, atomically
"""
from core.registration.elastix import RegistrationError, apply_transform
from core.registration.masks import cryo_body_mask, luminance
from core.registration.measures import dice_per_label, target_registration_error
from core.registration.output import read_transform, report_text, save_result
from core.registration.params import default_parameter_file, load_stages, read_parameter_file
from core.registration.quality import QualityLimits
from core.registration.register import RegistrationResult, register
from core.registration.warp import DisplacementField

__all__ = ["register", "RegistrationResult", "RegistrationError", "QualityLimits", "DisplacementField",
           "apply_transform", "save_result", "read_transform", "report_text", "load_stages",
           "read_parameter_file", "default_parameter_file", "cryo_body_mask", "luminance",
           "dice_per_label", "target_registration_error"]
