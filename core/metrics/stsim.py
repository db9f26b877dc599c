"""STSIM-1 and STSIM-2 (Zhao et al. 2008; Zujovic, Pappas & Neuhoff, IEEE TIP 2013), local version.

Texture similarity compares local statistics of complex steerable pyramid subbands instead of
pixels, so it tolerates small shifts and resynthesised texture that SSIM punishes. Conventions of
andreydung's ``perceptual/metric.py`` (a port of the authors' code, the only public one; no STSIM
package exists), summarised in docs/metrics.md:

* grey images on the 0–255 scale (the constant C = 0.001 is absolute); RGB is reduced to BT.601 luma;
* pyramid: matlabPyrTools ``buildSCFpyr`` (= ``pyrtools.SteerablePyramidFreq(height=3, order=3,
  is_complex=True)``): a real high-pass residual, 3 levels × 4 complex orientation bands decimated by
  2 per level, a real low-pass residual: 14 subbands;
* per subband, over 7×7 windows ('valid'): luminance l and contrast c from Gaussian-weighted
  (σ = 7/6) moments, and c01, c10 comparing the horizontal / vertical lag-1 correlation
  coefficients over 7×6 / 6×7 box windows; the subband score is the window mean of (l·c·c01·c10)^¼,
  and STSIM-1 is the mean over the 14 subbands. Variances are clipped at 0 (the reference takes
  square roots of tiny negative round-off and returns NaN on flat black backgrounds);
* STSIM-2 adds 26 cross-band terms, 1 − ½|ρx − ρy| averaged over 7×7 box windows, where ρ is the
  local correlation coefficient between magnitudes of undecimated bands of the same image: each
  orientation at adjacent levels (8) and each pair of orientations within a level (18); STSIM-2 is
  the mean of all 40 terms.

Speed: pyramid filters are cached per (size, device, dtype) and applied by one batched inverse FFT
per level; window sums use shared doubling sums (``_filters``) on the bands of both images at once.
"""
from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations

import numpy as np
import torch

from core.errors import InputError
from core.metrics._filters import gaussian_valid, window_sums_6_7
from core.imaging import luma
from core.metrics._validate import as_result, image_pair, require_size

HEIGHT, ORIENTATIONS = 3, 4
C = 0.001
WINDOW = 7
SIGMA = WINDOW / 6
VERSIONS = (1, 2)


def _reduced(n: int) -> int:
    """Side of the next pyramid level: matlabPyrTools' ceil((n − 0.5) / 2)."""
    return math.ceil((n - 0.5) / 2)


def _lowpass_side(n: int) -> int:
    for _ in range(HEIGHT):
        n = _reduced(n)
    return n


#: Smallest side whose low-pass residual still holds one 7×7 window (49 → 25 → 13 → 7).
MIN_SIZE = next(n for n in range(WINDOW, 1024) if _lowpass_side(n) >= WINDOW)


def stsim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, version: int = 2) -> float | torch.Tensor:
    """STSIM-2 (``version=2``, default) or STSIM-1 of two images in [0, 1]; symmetric, 1 for identical images.

    A float for numpy planes, a tensor (N,) for (N, C, H, W) batches.
    """
    if version not in VERSIONS:
        raise InputError("version", f"STSIM version must be 1 or 2, got {version!r}")
    x, y, batched = image_pair(a, b)
    require_size(x, MIN_SIZE, "stsim", "a 7×7 window in the low-pass residual of a 3-level pyramid")
    single, cross = stsim_terms(x, y, cross=version == 2)
    terms = single if version == 1 else torch.cat([single, cross], dim=1)
    return as_result(terms.mean(dim=1), batched)


def stsim_terms(x: torch.Tensor, y: torch.Tensor, cross: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The 14 subband terms (N, 14) and, if ``cross``, the 26 cross-band terms (N, 26) of validated batches.

    STSIM-1 is the mean of the first, STSIM-2 the mean of both together. Pairs are processed one at
    a time and every statistic one band at a time: on a CPU, maps of a few hundred kB stay in cache
    and in the allocator's free lists, which makes the whole metric several times faster than
    batched arithmetic on many-megabyte tensors.
    """
    if x.shape[1] == 3:
        x, y = luma(x), luma(y)
    x, y = x * 255.0, y * 255.0
    singles, crosses = [], []
    for i in range(x.shape[0]):
        pyr = steerable_pyramid(torch.cat([x[i:i + 1], y[i:i + 1]]), undecimated=cross)
        singles.append(torch.cat([_subband_terms(band) for band in _subband_groups(pyr)]))
        if cross:
            crosses.append(_cross_terms([pyr[("undecimated", l, b)] for l in range(HEIGHT) for b in range(ORIENTATIONS)]))
    return torch.stack(singles), torch.stack(crosses) if cross else None


def _subband_groups(pyr: dict) -> list[torch.Tensor]:
    """The 14 subbands as (2, B, H, W) groups: full-size ones alone (they fill the cache), coarser
    levels with their 4 orientations together (per-operation overhead dominates there)."""
    return [pyr["residual_highpass"][:, None], *(pyr[(0, b)][:, None] for b in range(ORIENTATIONS)),
            *(torch.stack([pyr[(level, b)] for b in range(ORIENTATIONS)], dim=1) for level in range(1, HEIGHT)),
            pyr["residual_lowpass"][:, None]]


def steerable_pyramid(images: torch.Tensor, undecimated: bool = False) -> dict:
    """Complex steerable pyramid (height 3, 4 orientations) of an (N, 1, H, W) batch, pyrtools semantics.

    Keys as pyrtools' ``SteerablePyramidFreq(height=3, order=3, is_complex=True).pyr_coeffs``:
    ``residual_highpass`` (N, H, W) real, ``(level, band)`` (N, H_l, W_l) complex with the sides
    roughly halved per level, ``residual_lowpass`` (N, H_3, W_3) real. With ``undecimated`` also
    ``("undecimated", level, band)`` (N, H, W): the same bands without decimation (andreydung's
    ``SteerableNoSub``), which STSIM-2's cross-band terms compare; at level 0 they are the same tensors.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1 \
            or not images.is_floating_point():
        raise InputError("images", f"expected a float (N, 1, H, W) tensor, got {getattr(images, 'shape', images)!r}")
    n, _, h, w = images.shape
    if min(h, w) < 2 ** (HEIGHT + 2):
        raise InputError("images", f"a {HEIGHT}-level pyramid needs planes of at least {2 ** (HEIGHT + 2)} px, got {h}×{w}")
    bank = _pyramid_bank(h, w, str(images.device), images.dtype)
    spectrum = torch.fft.fft2(images[:, 0])
    centred = torch.fft.fftshift(spectrum, dim=(-2, -1))
    out: dict = {"residual_highpass": torch.fft.ifft2(spectrum * bank["highpass"]).real}
    for level, ((r0, r1, c0, c1), filters) in enumerate(bank["levels"]):
        region = torch.fft.ifftshift(centred[..., r0:r1, c0:c1], dim=(-2, -1))
        for b in range(ORIENTATIONS):
            out[(level, b)] = torch.fft.ifft2(region * filters[b])
    r0, r1, c0, c1 = bank["lowpass_region"]
    region = torch.fft.ifftshift(centred[..., r0:r1, c0:c1], dim=(-2, -1))
    out["residual_lowpass"] = torch.fft.ifft2(region * bank["lowpass"]).real
    if undecimated:
        for b in range(ORIENTATIONS):
            out[("undecimated", 0, b)] = out[(0, b)]
            for level in range(1, HEIGHT):
                out[("undecimated", level, b)] = torch.fft.ifft2(spectrum * bank["undecimated"][level - 1, b])
    return out


@lru_cache(maxsize=16)
def _pyramid_bank(h: int, w: int, device: str, dtype: torch.dtype) -> dict:
    """Frequency masks of ``steerable_pyramid`` for one plane size, DC at [0, 0] (ifftshifted).

    Built exactly as pyrtools builds them (its grids, raised-cosine and angular lookup tables with
    linear interpolation), because pyrtools is the test oracle; level l's masks are the full-grid
    masks restricted to the centred frequency region that l decimations keep.
    """
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64

    def tensor(mask: np.ndarray) -> torch.Tensor:
        mask = np.fft.ifftshift(mask, axes=(-2, -1))
        return torch.as_tensor(mask, device=device).to(complex_dtype if np.iscomplexobj(mask) else dtype)

    log_rad, angle = _polar_grid(h, w)
    x_rcos, y_rcos = _raised_cosine()
    y_rcos = np.sqrt(y_rcos)
    yi_rcos = np.sqrt(1.0 - y_rcos ** 2)
    x_cosn, y_cosn = _angular_table()
    highpass = tensor(np.interp(log_rad, x_rcos, y_rcos))
    lowpass = np.interp(log_rad, x_rcos, yi_rcos)  # cumulative low-pass on the full grid
    region, levels, undecimated = (0, h, 0, w), [], []
    for level in range(HEIGHT):
        x_rcos = x_rcos - 1.0
        bands = np.stack([(-1j) ** (ORIENTATIONS - 1) * lowpass * np.interp(log_rad, x_rcos, y_rcos)
                          * np.interp(angle, x_cosn + math.pi * b / ORIENTATIONS, y_cosn) for b in range(ORIENTATIONS)])
        r0, r1, c0, c1 = region
        levels.append((region, tensor(bands[:, r0:r1, c0:c1])))
        if level:
            undecimated.append(tensor(bands))
        region = _next_region(*region)
        lowpass = lowpass * np.interp(log_rad, x_rcos, yi_rcos)
    r0, r1, c0, c1 = region
    return {"highpass": highpass, "levels": levels, "undecimated": torch.stack(undecimated),
            "lowpass_region": region, "lowpass": tensor(lowpass[r0:r1, c0:c1])}


def _polar_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """pyrtools' centred log2-radius and angle grids (the DC radius copied from its left neighbour)."""
    xramp, yramp = np.meshgrid(np.linspace(-1, 1, w + 1)[:-1], np.linspace(-1, 1, h + 1)[:-1])
    angle = np.arctan2(yramp, xramp)
    rad = np.sqrt(xramp ** 2 + yramp ** 2)
    cr, cc = math.ceil((h + 0.5) / 2) - 1, math.ceil((w + 0.5) / 2) - 1
    rad[cr, cc] = rad[cr, cc - 1]
    return np.log2(rad), angle


def _raised_cosine() -> tuple[np.ndarray, np.ndarray]:
    """pyrtools' ``rcosFn(1, -0.5)`` lookup table: a raised cosine over one octave, ends repeated."""
    size = 256
    x = math.pi * np.arange(-size - 1, 2) / (2 * size)
    y = np.cos(x) ** 2
    y[0], y[size + 2] = y[1], y[size + 1]
    return -0.5 + (2 / math.pi) * (x + math.pi / 4), y


def _angular_table() -> tuple[np.ndarray, np.ndarray]:
    """pyrtools' one-sided (analytic) angular lookup table 2√const·cos³(θ) for |θ| < π/2."""
    order, lut = ORIENTATIONS - 1, 1024
    x = math.pi * np.arange(-(2 * lut + 1), lut + 2) / lut
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (ORIENTATIONS * math.factorial(2 * order))
    alpha = (math.pi + x) % (2 * math.pi) - math.pi
    return x, 2 * math.sqrt(const) * np.cos(x) ** order * (np.abs(alpha) < math.pi / 2)


def _next_region(r0: int, r1: int, c0: int, c1: int) -> tuple[int, int, int, int]:
    """The centred sub-region matlabPyrTools keeps when it decimates a (centred) spectrum by 2."""
    def axis(start: int, stop: int) -> tuple[int, int]:
        n = stop - start
        ctr, lo = math.ceil((n + 0.5) / 2), _reduced(n)
        first = start + ctr - math.ceil((lo + 0.5) / 2)
        return first, first + lo
    (r0, r1), (c0, c1) = axis(r0, r1), axis(c0, c1)
    return r0, r1, c0, c1


def _power(band: torch.Tensor) -> torch.Tensor:
    """|band|² (complex abs and pow are several times slower than this on the CPU)."""
    return (band * band.conj()).real if band.is_complex() else band * band


def _subband_terms(band: torch.Tensor) -> torch.Tensor:
    """STSIM-1 score of subbands: ``band`` is (2, B, H, W), image x first, y second; returns (B,)."""
    power = _power(band)
    mu_sq = _power(gaussian_valid(band, WINDOW, SIGMA))
    var = torch.clamp_(gaussian_valid(power, WINDOW, SIGMA) - mu_sq, min=0)
    terms = (2 * torch.sqrt(mu_sq[0] * mu_sq[1]) + C) * torch.reciprocal(mu_sq[0] + mu_sq[1] + C)
    terms *= (2 * torch.sqrt(var[0] * var[1]) + C) * torch.reciprocal(var[0] + var[1] + C)
    for dim in (-1, -2):
        rho = _lag_correlation(band, power, dim)
        terms *= 1 - 0.5 * torch.sqrt(_power(rho[0] - rho[1]))
    return torch.sqrt(torch.sqrt(terms.clamp_(min=0))).mean(dim=(-2, -1))


def _lag_correlation(band: torch.Tensor, power: torch.Tensor, dim: int) -> torch.Tensor:
    """Local correlation coefficient between a band and itself shifted by one pixel along ``dim``.

    Windows are 6 long along ``dim`` and 7 across it, so the map aligns with the 7×7 ones.
    """
    across = -2 if dim == -1 else -1
    n = band.shape[dim] - 1
    a, b = band.narrow(dim, 0, n), band.narrow(dim, 1, n)

    def box(t: torch.Tensor) -> torch.Tensor:
        return window_sums_6_7(window_sums_6_7(t, across)[1], dim)[0] * (1 / (WINDOW * (WINDOW - 1)))

    mean, mean_power, cross = box(band), box(power), box(a * b.conj() if band.is_complex() else a * b)
    m = mean.shape[dim] - 1
    mu_a, mu_b = mean.narrow(dim, 0, m), mean.narrow(dim, 1, m)
    var = torch.clamp_(mean_power - _power(mean), min=0)
    covariance = cross - mu_a * (mu_b.conj() if band.is_complex() else mu_b)
    return (covariance + C) * torch.reciprocal(torch.sqrt(var.narrow(dim, 0, m) * var.narrow(dim, 1, m)) + C)


_SCALE_PAIRS = [((l, b), (l + 1, b)) for l in range(HEIGHT - 1) for b in range(ORIENTATIONS)]
_ORIENTATION_PAIRS = [((l, b1), (l, b2)) for l in range(HEIGHT) for b1, b2 in combinations(range(ORIENTATIONS), 2)]


def _cross_terms(bands: list[torch.Tensor]) -> torch.Tensor:
    """The 26 STSIM-2 cross-band terms from the 12 undecimated bands (level-major), each (2, H, W); returns (26,)."""
    def box(t: torch.Tensor) -> torch.Tensor:
        return window_sums_6_7(window_sums_6_7(t, -2)[1], -1)[1] * (1 / (WINDOW * WINDOW))

    mags, means, sds = [], [], []
    for band in bands:
        power = _power(band)
        mag = torch.sqrt(power)
        mean = box(mag)
        mags.append(mag)
        means.append(mean)
        sds.append(torch.sqrt(torch.clamp_(box(power) - mean * mean, min=0)))
    terms = []
    for (l1, b1), (l2, b2) in _SCALE_PAIRS + _ORIENTATION_PAIRS:
        i, j = l1 * ORIENTATIONS + b1, l2 * ORIENTATIONS + b2
        rho = (box(mags[i] * mags[j]) - means[i] * means[j] + C) / (sds[i] * sds[j] + C)
        terms.append(1 - 0.5 * (rho[0] - rho[1]).abs().mean())
    return torch.stack(terms)
