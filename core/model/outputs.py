"""The colorizations G_m→ĉ offers (docs/method.md): names, labels, and which need the c′ decoder.

Torch-free, so command lines can list and check output names without loading a model; the
fusions themselves are computed in `core.inference.fusion`.

- ``c_hat`` (ĉ): the paper's colorized MRI, pulled towards the MRI's structure by SSIM(m, ĉ):
  sharp, but its lightness follows T1 contrast (bone dark).
- ``c_prime`` (c′): the pseudo-cryosection, pulled towards the registered cryosection: the right
  colours, blurred where the training volumes were misregistered (a thin structure displaced by
  a few mm has no consistent target, and an edge is learnt as the average over the shifts).
- ``fused``: the colours of c′ with the fine detail (high-pass luma) of ĉ.
- ``guided``: the colours of c′ with the edges of the MRI itself — c′ filtered by a guided
  filter (He, Sun & Tang, "Guided image filtering", ECCV 2010 / TPAMI 2013) whose guide is the
  input MRI plane. Inside each window the output is a linear function of the MRI intensity
  fitted to c′, so colour changes where the MRI changes and nowhere else: the assumption of
  Levin et al.'s "Colorization using optimization" (tissues meet where intensity changes).
  This undoes the misregistration blur at tissue boundaries without learning anything.
- ``calibrated``: ``guided`` corrected pixel by pixel by a small map learnt after the GAN on the
  training subjects' true colorizations (`core.model.calibration`): it takes out the network's
  systematic colour errors per tissue. Only a checkpoint that carries a calibration offers it.
"""
from __future__ import annotations

from typing import NamedTuple

from core.model.config import ModelConfig


class Output(NamedTuple):
    """How an output is named in tables (``label``, the paper's notation), for people who do not
    know the notation (``plain``: menus, titles), with its notation (``description``: tooltips,
    ``--help``), and which of the generator's decoder outputs it is made from (``decoders``)."""

    label: str
    plain: str
    description: str
    decoders: tuple[str, ...]

    @property
    def needs_c_prime(self) -> bool:
        return "c_prime" in self.decoders


OUTPUTS: dict[str, Output] = {
    "c_hat": Output("ĉ", "MRI-shaded colour", "ĉ (colorized MRI)", ("c_hat",)),
    "c_prime": Output("c′", "cryosection colour (soft)", "c′ (pseudo-cryosection)", ("c_prime",)),
    "fused": Output("fused", "cryosection colour, network detail", "c′ colours + ĉ edges", ("c_hat", "c_prime")),
    "guided": Output("guided", "cryosection colour, MRI edges", "c′ colours + MRI edges", ("c_prime",)),
    "calibrated": Output("calibrated", "cryosection colour, calibrated",
                         "c′ colours + MRI edges, calibrated per pixel", ("c_prime",)),
}
#: Outputs that need the checkpoint's colour calibration (the network ``calib``).
NEEDS_CALIBRATION = ("calibrated",)


def available(config: ModelConfig, calibrated: bool = False) -> tuple[str, ...]:
    """The outputs a generator of this architecture offers, in ``OUTPUTS`` order; ``calibrated``:
    the model carries a colour calibration."""
    return tuple(name for name, out in OUTPUTS.items()
                 if (config.dual_decoder or not out.needs_c_prime) and (calibrated or name not in NEEDS_CALIBRATION))


def check_output(name: str, config: ModelConfig, calibrated: bool = False) -> None:
    """Raise ``ValueError`` when ``name`` is no output, needs a c′ decoder ``config`` lacks, or
    needs a colour calibration the model does not carry."""
    if name not in OUTPUTS:
        raise ValueError(f"output must be one of {tuple(OUTPUTS)}, got {name!r}")
    if name not in available(config, calibrated):
        if name in NEEDS_CALIBRATION and config.dual_decoder:
            raise ValueError(f"output {name!r} needs a colour calibration, which this model does not carry")
        raise ValueError(f"output {name!r} needs the c' decoder, which this architecture lacks")
