"""FSIM and FSIMc (Zhang, Zhang, Mou & Zhang, IEEE TIP 2011), with phase congruency as FeatureSIM.m.

Follows the structure of piq 0.8.0's ``fsim`` (itself a port of the authors' FeatureSIM.m),
whose values the tests check against (docs/metrics.md): images on the 0–255 scale, average pooling by
round(min side / 256), YIQ, phase congruency of Y from 4 scales × 4 orientations of log-Gabor
filters applied by FFT, a Rayleigh noise threshold from the lower median of the finest scale's
energy, Scharr gradient magnitude, similarity maps with T1 = 0.85, T2 = 160 (T3 = T4 = 200 and
λ = 0.03 for the chroma term), pooled with max(PC_x, PC_y) as weight.

The chroma factor is |S_I·S_Q|^λ as piq computes it; FeatureSIM.m takes the real part of the
complex power, which is cos(λπ) ≈ 0.9956 times smaller where S_I·S_Q < 0.

Speed: the log-Gabor bank and its noise constants depend only on the plane size, so they are
built once per (size, device, dtype) and cached; the 16 filter responses of both images come from
one batched inverse FFT.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from core.metrics._validate import as_result, image_pair, require_size

SCALES, ORIENTATIONS, MIN_WAVELENGTH, MULT = 4, 4, 6, 2
SIGMA_F, DELTA_THETA, NOISE_K = 0.55, 1.2, 2.0
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03
MIN_SIZE = 32  # below this even the third log-Gabor scale (24 px wavelength) barely fits
YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))
SCHARR = ((-3.0, 0.0, 3.0), (-10.0, 0.0, 10.0), (-3.0, 0.0, 3.0))


def fsim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
         chromatic: bool = True) -> float | torch.Tensor:
    """FSIMc of two RGB images in [0, 1] (``chromatic=True``), else luma FSIM; symmetric in a, b.

    When one side is grey the pair is compared on luma and FSIM (not FSIMc) is returned.
    A float for numpy planes, a tensor (N,) for (N, C, H, W) batches.
    """
    x, y, batched = image_pair(a, b)
    require_size(x, MIN_SIZE, "fsim", "the log-Gabor scales of phase congruency")
    lum, col = fsim_both(x, y, chromatic and x.shape[1] == 3)
    return as_result(col if col is not None else lum, batched)


def fsim_both(x: torch.Tensor, y: torch.Tensor, chromatic: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(FSIM, FSIMc or None), each (N,), of validated batches sharing one phase congruency computation."""
    x, y = _pool(x * 255.0), _pool(y * 255.0)
    if x.shape[1] == 3:
        m = torch.tensor(YIQ, dtype=x.dtype, device=x.device)
        x, y = torch.einsum("kc,nchw->nkhw", m, x), torch.einsum("kc,nchw->nkhw", m, y)
    lum_x, lum_y = x[:, :1], y[:, :1]
    # one image at a time: on a CPU, small planes stay in cache and in the allocator's free lists
    pc_x = torch.cat([phase_congruency(lum_x[i:i + 1]) for i in range(x.shape[0])])
    pc_y = torch.cat([phase_congruency(lum_y[i:i + 1]) for i in range(x.shape[0])])
    score = _similarity(pc_x, pc_y, T1) * _similarity(_gradient(lum_x), _gradient(lum_y), T2)
    weight = torch.maximum(pc_x, pc_y)
    total = weight.sum(dim=(1, 2, 3))
    lum = (score * weight).sum(dim=(1, 2, 3)) / total
    if not chromatic:
        return lum, None
    chroma = (_similarity(x[:, 1:2], y[:, 1:2], T3) * _similarity(x[:, 2:3], y[:, 2:3], T4)).abs() ** LAMBDA
    return lum, (score * chroma * weight).sum(dim=(1, 2, 3)) / total


def phase_congruency(lum: torch.Tensor) -> torch.Tensor:
    """Phase congruency (Kovesi's PC_2 as in FeatureSIM.m) of an (N, 1, H, W) batch on the 0–255 scale."""
    n, _, h, w = lum.shape
    filters, noise_gain = _log_gabor_bank(h, w, str(lum.device), lum.dtype)
    eps = torch.finfo(lum.dtype).eps
    spectrum = torch.fft.fft2(lum[:, 0])[:, None]
    energy_sum, amplitude_sum = 0.0, 0.0
    for o in range(ORIENTATIONS):  # one orientation at a time: 4 complex planes per image stay in cache
        eo = torch.fft.ifft2(spectrum * filters[o])  # (N, scales, H, W): even part real, odd part imaginary
        power = (eo * eo.conj()).real
        amplitude_sum = amplitude_sum + torch.sqrt(power).sum(dim=1)
        total = eo.sum(dim=1, keepdim=True)
        total_amplitude = torch.sqrt((total * total.conj()).real)
        mean_phase = total * torch.reciprocal(total_amplitude + eps)
        # Σ_s e·mE + o·mO − |e·mO − o·mE|: the first sum is |Σ eo|² / (|Σ eo| + eps), the second the
        # imaginary parts of eo · conj(mean phase)
        deviation = (eo * mean_phase.conj()).imag.abs().sum(dim=1)
        energy = (total_amplitude * total_amplitude * torch.reciprocal(total_amplitude + eps))[:, 0] - deviation
        threshold = torch.sqrt(_lower_median(power[:, 0].reshape(n, h * w))) * noise_gain[o]
        energy_sum = energy_sum + torch.clamp(energy - threshold[:, None, None], min=0)
    return ((energy_sum + eps) / (amplitude_sum + eps))[:, None]


def _lower_median(values: torch.Tensor) -> torch.Tensor:
    """Lower median of each row, as ``torch.median`` and hence piq take it (numpy's partition is ~10× faster on CPU)."""
    k = (values.shape[-1] - 1) // 2
    if values.device.type == "cpu":
        return torch.from_numpy(np.partition(values.detach().numpy(), k, axis=-1)[:, k])
    return torch.kthvalue(values, k + 1, dim=-1).values


@lru_cache(maxsize=16)
def _log_gabor_bank(h: int, w: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-Gabor filters (orientations, scales, H, W) with DC at [0, 0], and each orientation's noise gain.

    The gain K turns the median finest-scale energy m into the noise threshold T = K·√m:
    T = τ(√(π/2) + k√(2 − π/2)) / 1.7 with τ² = m·(2 Σ An² + 4 Σ AiAj) / (2 ln 2 · Σ filter₀²),
    the sums being over the spatial filters of that orientation (FeatureSIM.m's Rayleigh model).
    """
    fy, fx = _frequency_axis(h), _frequency_axis(w)
    gx, gy = np.meshgrid(fy, fx, indexing="ij")  # piq's 'x' runs along rows; PC does not depend on it
    radius = np.fft.ifftshift(np.sqrt(gx ** 2 + gy ** 2))
    theta = np.fft.ifftshift(np.arctan2(-gy, gx))
    lowpass = np.fft.ifftshift(1.0 / (1.0 + (np.sqrt(gx ** 2 + gy ** 2) / 0.45) ** 30))
    radius[0, 0] = 1.0
    radial = []
    for s in range(SCALES):
        f0 = 1.0 / (MIN_WAVELENGTH * MULT ** s)
        g = np.exp(-np.log(radius / f0) ** 2 / (2 * math.log(SIGMA_F) ** 2)) * lowpass
        g[0, 0] = 0.0
        radial.append(g)
    sigma_theta = math.pi / (ORIENTATIONS * DELTA_THETA)
    filters, gains = [], []
    for o in range(ORIENTATIONS):
        angle = o * math.pi / ORIENTATIONS
        ds = np.sin(theta) * math.cos(angle) - np.cos(theta) * math.sin(angle)
        dc = np.cos(theta) * math.cos(angle) + np.sin(theta) * math.sin(angle)
        spread = np.exp(-np.arctan2(ds, dc) ** 2 / (2 * sigma_theta ** 2))
        bank = [g * spread for g in radial]
        spatial = [np.real(np.fft.ifft2(f)) * math.sqrt(h * w) for f in bank]
        sum_an2 = sum(float((f * f).sum()) for f in spatial)
        sum_ai_aj = sum(float((spatial[s] * spatial[t]).sum()) for s in range(SCALES) for t in range(s + 1, SCALES))
        em_n = float((bank[0] ** 2).sum())
        tau_per_median = math.sqrt((2 * sum_an2 + 4 * sum_ai_aj) / (2 * math.log(2) * em_n))
        gains.append(tau_per_median * (math.sqrt(math.pi / 2) + NOISE_K * math.sqrt(2 - math.pi / 2)) / 1.7)
        filters.extend(bank)
    bank = torch.as_tensor(np.stack(filters), dtype=dtype, device=device).view(ORIENTATIONS, SCALES, h, w)
    return bank, torch.tensor(gains, dtype=dtype, device=device)


def _frequency_axis(n: int) -> np.ndarray:
    """FeatureSIM.m's normalised frequencies along one axis, zero in the middle."""
    if n % 2:
        return (np.arange(n) - (n - 1) / 2) / (n - 1)
    return (np.arange(n) - n / 2) / n


def _pool(x: torch.Tensor) -> torch.Tensor:
    """FeatureSIM.m's average pooling by round(min side / 256): a no-op for planes up to 383 px."""
    f = max(1, round(min(x.shape[-2:]) / 256))
    return F.avg_pool2d(x, f) if f > 1 else x


def _gradient(lum: torch.Tensor) -> torch.Tensor:
    """Scharr gradient magnitude (zero padding, same size)."""
    k = torch.tensor(SCHARR, dtype=lum.dtype, device=lum.device) / 16
    g = F.conv2d(lum, torch.stack([k, k.T])[:, None], padding=1)
    return torch.sqrt((g * g).sum(dim=1, keepdim=True))


def _similarity(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    return (2 * a * b + c) / (a * a + b * b + c)
