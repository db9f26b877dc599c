"""The fusions of `core.inference.fusion`: the guided filter against an independent NumPy/SciPy transcription
of He et al.'s algorithm, its defining properties, and the Colorizer's ``guided`` output."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from core.model.config import load_preset
from core.inference.fusion import GUIDE_EPS, GUIDE_RADIUS, guided_filter, mri_guided
from core.inference import Colorizer
from core.model.networks import build_generator
from core.model.outputs import OUTPUTS, available, check_output


def reference_guided(p: np.ndarray, guide: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Algorithm 1 of He, Sun & Tang (TPAMI 2013) in float64, box means by scipy (mirrored edges)."""
    def mean(x):
        return ndi.uniform_filter(x, size=2 * radius + 1, mode="mirror")
    mean_i, mean_p = mean(guide), mean(p)
    a = (mean(guide * p) - mean_i * mean_p) / (mean(guide * guide) - mean_i ** 2 + eps)
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)


def test_guided_filter_matches_the_papers_algorithm():
    rng = np.random.default_rng(0)
    guide = rng.random((2, 1, 37, 29))
    source = rng.random((2, 3, 37, 29))
    for radius, eps in ((1, 1e-2), (3, 1e-3), (5, 1e-4)):
        got = guided_filter(torch.from_numpy(source).float(), torch.from_numpy(guide).float(), radius, eps).numpy()
        for n in range(2):
            for c in range(3):
                want = reference_guided(source[n, c], guide[n, 0], radius, eps)
                np.testing.assert_allclose(got[n, c], want, atol=2e-4)


def reference_weighted_guided(source, guide, weights, radius, eps):
    """The guided filter with every window mean taken over the weighted samples only, in scipy."""
    def mean(x):
        return ndi.uniform_filter(x * weights, size=2 * radius + 1, mode="mirror") \
            / ndi.uniform_filter(weights, size=2 * radius + 1, mode="mirror")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_i, mean_p = mean(guide), mean(source)
        a = (mean(guide * source) - mean_i * mean_p) / (mean(guide * guide) - mean_i ** 2 + eps)
        b = mean_p - a * mean_i
        a, b = np.nan_to_num(a), np.nan_to_num(b)     # windows without body: their (a, b) weigh 0
        return mean(a) * guide + mean(b)


def test_body_weighted_filter_matches_normalised_windows_and_ignores_the_air():
    rng = np.random.default_rng(3)
    guide, source = rng.random((1, 1, 40, 33)), rng.random((1, 3, 40, 33))
    body = np.zeros((1, 1, 40, 33))
    body[..., 8:34, 5:30] = 1
    got = guided_filter(torch.from_numpy(source).float(), torch.from_numpy(guide).float(), 3, 1e-3,
                        torch.from_numpy(body).float()).numpy()
    inside = body[0, 0] > 0
    for c in range(3):
        want = reference_weighted_guided(source[0, c], guide[0, 0], body[0, 0], 3, 1e-3)
        np.testing.assert_allclose(got[0, c][inside], want[inside], atol=2e-4)
    # Whatever lies outside the body (air at 0, background colour) changes nothing inside it.
    air_guide, air_source = guide.copy(), source.copy()
    air_guide[..., ~inside], air_source[..., ~inside] = 0.0, 0.08
    again = mri_guided(torch.from_numpy(air_source).float(), torch.from_numpy(air_guide).float(), 3,
                       torch.from_numpy(body > 0))
    first = mri_guided(torch.from_numpy(source).float(), torch.from_numpy(guide).float(), 3, torch.from_numpy(body > 0))
    keep = torch.from_numpy(inside)
    torch.testing.assert_close(again[..., keep], first[..., keep], atol=1e-5, rtol=0)
    plain = mri_guided(torch.from_numpy(air_source).float(), torch.from_numpy(air_guide).float(), 3)
    assert (plain[..., keep] - first[..., keep]).abs().max() > 0.05    # unweighted, the air leaks in
    with pytest.raises(ValueError, match="weights"):
        guided_filter(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8), 2, 1e-3, torch.ones(1, 1, 8, 7))


def test_a_source_linear_in_the_guide_passes_unchanged():
    guide = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    source = torch.cat([0.2 + 0.5 * guide, 0.9 - 0.6 * guide, 0.4 + 0.0 * guide], dim=1)
    out = guided_filter(source, guide, 3, 1e-7)
    assert torch.allclose(out, source, atol=1e-3)
    smoothed = guided_filter(source, torch.full_like(guide, 0.5), 3, 1e-3)   # flat guide: a blur
    assert (smoothed - source).abs().max() > 0.05


def test_a_blurred_colour_edge_is_moved_onto_the_mri_edge():
    x = torch.arange(48, dtype=torch.float32)
    mri = ((x >= 24).float() * 0.6 + 0.2).expand(1, 1, 48, 48)
    for shift in (0, 1, 2):       # a blurred colour edge on the MRI's edge, and one displaced by 1-2 px
        ramp = torch.sigmoid((x - 24 - shift + 0.5) / 1.5)
        blurred = torch.stack([0.3 + 0.5 * ramp, 0.5 - 0.3 * ramp, torch.full_like(x, 0.4)])[None, :, None, :]
        out = mri_guided(blurred.expand(1, 3, 48, 48), mri, radius=3)   # a window reaching past the shift
        steps_in, steps_out = blurred[0, 0, 0].diff(), out[0, 0, 10].diff()
        assert int(steps_out.argmax()) == 23, shift                      # the jump sits on the MRI's edge
        assert steps_out.max() > 2.3 * steps_in.max(), (shift, float(steps_out.max()), float(steps_in.max()))
        assert out[0, 1, 10].diff()[23] < -0.3 * 0.3                       # green falls there, as in c′
        assert torch.allclose(out[0, 2], torch.tensor(0.4), atol=1e-5)     # a flat channel stays flat


def test_guided_filter_refuses_mismatched_planes_and_bad_settings():
    with pytest.raises(ValueError, match="guide"):
        guided_filter(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), 2, 1e-3)
    with pytest.raises(ValueError, match="guide"):
        guided_filter(torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 15), 2, 1e-3)
    with pytest.raises(ValueError, match="radius"):
        guided_filter(torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16), 0, 1e-3)


def test_planes_smaller_than_the_window_still_filter():
    out = guided_filter(torch.rand(1, 3, 3, 5), torch.rand(1, 1, 3, 5), 4, 1e-3)
    assert out.shape == (1, 3, 3, 5) and torch.isfinite(out).all()


def test_colorizer_guides_c_prime_by_the_unpadded_plane():
    config = load_preset("tiny").model
    torch.manual_seed(0)
    col = Colorizer(build_generator(config), config, device="cpu", serve="guided")
    mri = torch.rand(3, 1, 50, 38, generator=torch.Generator().manual_seed(2))   # not a multiple of 4: padded
    out = col.colorize(mri, outputs=["c_prime", "guided"])
    assert out["guided"].shape == (3, 3, 50, 38)
    torch.testing.assert_close(out["guided"], mri_guided(out["c_prime"], mri), atol=1e-5, rtol=0)
    assert col.colorize(mri).shape == (3, 3, 50, 38)      # served
    assert GUIDE_RADIUS >= 1 and GUIDE_EPS > 0


def test_output_catalogue_follows_the_architecture():
    full, a3 = load_preset("tiny").model, load_preset("tiny", "A3").model
    assert available(full) == ("c_hat", "c_prime", "fused", "guided")
    assert available(full, calibrated=True) == tuple(OUTPUTS) and available(a3) == ("c_hat",)
    check_output("guided", full)
    check_output("calibrated", full, calibrated=True)
    with pytest.raises(ValueError, match="c' decoder"):
        check_output("guided", a3)
    with pytest.raises(ValueError, match="needs a colour calibration"):
        check_output("calibrated", full)
    with pytest.raises(ValueError, match="one of"):
        check_output("rainbow", full)
