"""What the metric tests share: the golden test pair, its golden values, and independent
reference transcriptions of the metrics (imported as ``helpers_metrics``; pytest puts tests/ on
sys.path). Nothing here imports ``core``: these are the evidence ``core.metrics`` is checked against.

``golden_pair`` is the recipe of docs/metrics.md ("Golden test pair"): the ``GOLDEN`` values
belong to exactly these arrays (they were computed with scikit-image, pytorch_msssim and piq,
not with our code), so the order of random draws must not change.

The ``ref_*`` functions are straightforward NumPy/SciPy transcriptions of the published
definitions, written independently of ``core.metrics`` (float64, scipy/numpy FFTs and
correlations, pyrtools for the decimated pyramid, no caching, no shared code): MS-SSIM from Wang
et al., FSIM from FeatureSIM.m's structure, STSIM from andreydung's ``perceptual/metric.py``,
whose window statistics are reproduced literally with ``scipy.signal.correlate(..., mode="valid")``.
``tests/test_metrics_reference.py`` checks them against the golden values; the benchmark
``benchmarks/bench_metrics.py`` times them as its "direct NumPy computation" baseline.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pyrtools as pt
from pyrtools.pyramids.c.wrapper import pointOp
from pyrtools.tools.utils import rcosFn
from scipy import ndimage, signal
from scipy.ndimage import gaussian_filter

#: BT.601 luma weights, written out here rather than taken from ``core.imaging``: the tests use
#: them as an independent statement of the convention (ITU-R BT.601, as OpenCV's RGB2GRAY, PIL's
#: "L" and the Y of YIQ), so a wrong constant in core fails them.
LUMA = np.array([0.299, 0.587, 0.114])


@lru_cache(maxsize=None)
def golden_pair(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mri, cryo, col, luma of col), float64 in [0, 1], for an h × h plane."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:h] / h
    mri = np.zeros((h, h))
    for _ in range(6):
        cx, cy = rng.uniform(.2, .8), rng.uniform(.2, .8)
        s, a = rng.uniform(.05, .2), rng.uniform(.3, 1)
        mri += a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    mri += 0.08 * np.sin(40 * xx) * np.sin(33 * yy) + 0.03 * rng.standard_normal((h, h))
    mri = np.clip(mri / mri.max(), 0, 1)
    cryo = np.stack([np.clip(.25 + .7 * mri, 0, 1), np.clip(.15 + .5 * mri ** 1.5, 0, 1),
                     np.clip(.35 - .25 * mri, 0, 1)], axis=-1)
    cryo = np.clip(cryo + .03 * gaussian_filter(rng.standard_normal((h, h, 3)), sigma=(1.5, 1.5, 0)), 0, 1)
    col = np.stack([np.clip(.2 + .75 * gaussian_filter(mri, 1), 0, 1), np.clip(.18 + .45 * mri, 0, 1),
                    np.clip(.3 - .2 * mri, 0, 1)], axis=-1)
    col = np.clip(col + .02 * rng.standard_normal((h, h, 3)), 0, 1)
    return mri, cryo, col, col @ LUMA


def texture(h: int, kind: int, instance: int) -> np.ndarray:
    """A grey texture in [0, 1]: ``kind`` fixes its orientations and periods, ``instance`` the phases and noise.

    Two instances of one kind are the same texture at different positions, as STSIM means it.
    """
    kind_rng, rng = np.random.default_rng(kind), np.random.default_rng(1000 + instance)
    yy, xx = np.mgrid[0:h, 0:h].astype(float)
    img = np.zeros((h, h))
    for theta, period in zip(kind_rng.uniform(0, np.pi, 3), kind_rng.uniform(5, 16, 3)):
        phase = rng.uniform(0, 2 * np.pi)
        img += np.sin(2 * np.pi / period * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    img += 0.5 * gaussian_filter(rng.standard_normal((h, h)), 1.0)
    return (img - img.min()) / (img.max() - img.min())


# --- golden values of docs/metrics.md ("Golden values"), computed with other libraries ----------

#: H: (SSIM, MS-SSIM, FSIMc, FSIM) of ``golden_pair(H)``: SSIM of (mri, luma) by scikit-image with Wang's
#: settings; MS-SSIM of the same pair by pytorch_msssim at 256 (5 scales) and by piq's multi_scale_ssim
#: with scale_weights=w[:L] at 128 (L = 4) and 64 (L = 3); FSIMc and FSIM of (col, cryo) by piq 0.8.0's fsim.
GOLDEN = {
    256: (0.616202, 0.807453, 0.910189, 0.932373),
    128: (0.637937, 0.782783, 0.926596, 0.949153),
    64: (0.664108, 0.761745, 0.935958, 0.957953),
}


# --- SSIM / MS-SSIM ----------------------------------------------------------------------------


def ref_ssim_cs(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Wang's SSIM and mean contrast-structure term of two grey float64 images (11-tap Gaussian, σ 1.5)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()

    def filt(img: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(ndimage.correlate1d(img, g, axis=0), g, axis=1)[5:-5, 5:-5]

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cov = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    return float(np.mean((2 * mx * my + c1) / (mx * mx + my * my + c1) * cs)), float(cs.mean())


def ref_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """MS-SSIM with as many scales as fit (weights renormalised when fewer than 5), 2×2 averaging (even sides)."""
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    levels = max(k for k in range(1, 6) if 10 * 2 ** (k - 1) + 1 <= min(x.shape))
    w = weights[:levels] if levels == 5 else weights[:levels] / weights[:levels].sum()
    value = 1.0
    for k in range(levels):
        s, cs = ref_ssim_cs(x, y)
        value *= max(cs if k < levels - 1 else s, 0.0) ** w[k]
        if k == levels - 1:
            break
        x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
        y = y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean(axis=(1, 3))
    return value


# --- FSIM / FSIMc ------------------------------------------------------------------------------


def ref_fsim(a: np.ndarray, b: np.ndarray, chromatic: bool = True) -> float:
    """FSIM (luma) or FSIMc of two images in [0, 1] (H×W or H×W×3, planes up to 383 px: no pooling)."""
    a, b = a * 255.0, b * 255.0
    if a.ndim == 3:
        yiq = np.array([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])
        a, b = a @ yiq.T, b @ yiq.T
        ya, yb = a[..., 0], b[..., 0]
    else:
        ya, yb = a, b
    pca, pcb = ref_phase_congruency(ya), ref_phase_congruency(yb)
    scharr = np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]) / 16.0

    def grad(img: np.ndarray) -> np.ndarray:
        return np.hypot(ndimage.correlate(img, scharr, mode="constant"), ndimage.correlate(img, scharr.T, mode="constant"))

    def sim(p: np.ndarray, q: np.ndarray, t: float) -> np.ndarray:
        return (2 * p * q + t) / (p ** 2 + q ** 2 + t)

    pcm = np.maximum(pca, pcb)
    score = sim(pca, pcb, 0.85) * sim(grad(ya), grad(yb), 160.0) * pcm
    if chromatic:
        score = score * np.abs(sim(a[..., 1], b[..., 1], 200.0) * sim(a[..., 2], b[..., 2], 200.0)) ** 0.03
    return float(score.sum() / pcm.sum())


def ref_phase_congruency(img: np.ndarray) -> np.ndarray:
    """Kovesi's phase congruency with FeatureSIM.m's parameters (4 scales, 4 orientations), float64."""
    h, w = img.shape
    eps = np.finfo(np.float64).eps

    def axis(n: int) -> np.ndarray:
        return (np.arange(n) - (n - 1) / 2) / (n - 1) if n % 2 else (np.arange(n) - n / 2) / n

    gx, gy = np.meshgrid(axis(h), axis(w), indexing="ij")
    radius = np.fft.ifftshift(np.hypot(gx, gy))
    radius[0, 0] = 1.0
    theta = np.fft.ifftshift(np.arctan2(-gy, gx))
    lowpass = np.fft.ifftshift(1.0 / (1.0 + (np.hypot(gx, gy) / 0.45) ** 30))
    spectrum = np.fft.fft2(img)
    energy_all, amplitude_all = np.zeros((h, w)), np.zeros((h, w))
    for o in range(4):
        phi = o * np.pi / 4
        dtheta = np.abs(np.arctan2(np.sin(theta) * np.cos(phi) - np.cos(theta) * np.sin(phi),
                                   np.cos(theta) * np.cos(phi) + np.sin(theta) * np.sin(phi)))
        spread = np.exp(-dtheta ** 2 / (2 * (np.pi / 4 / 1.2) ** 2))
        filters, responses = [], []
        for s in range(4):
            radial = np.exp(-np.log(radius * 6 * 2 ** s) ** 2 / (2 * np.log(0.55) ** 2)) * lowpass
            radial[0, 0] = 0.0
            filters.append(radial * spread)
            responses.append(np.fft.ifft2(spectrum * filters[-1]))
        even, odd = np.real(responses), np.imag(responses)
        amplitude_all += np.abs(responses).sum(axis=0)
        norm = np.sqrt(even.sum(axis=0) ** 2 + odd.sum(axis=0) ** 2) + eps
        me, mo = even.sum(axis=0) / norm, odd.sum(axis=0) / norm
        energy = (even * me + odd * mo - np.abs(even * mo - odd * me)).sum(axis=0)
        median = np.sort((np.abs(responses[0]) ** 2).ravel())[(h * w - 1) // 2]
        noise_power = -median / np.log(0.5) / (filters[0] ** 2).sum()
        spatial = [np.real(np.fft.ifft2(f)) * np.sqrt(h * w) for f in filters]
        sum_an2 = sum((f ** 2).sum() for f in spatial)
        sum_ai_aj = sum((spatial[i] * spatial[j]).sum() for i in range(4) for j in range(i + 1, 4))
        tau = np.sqrt((2 * noise_power * sum_an2 + 4 * noise_power * sum_ai_aj) / 2)
        threshold = (tau * np.sqrt(np.pi / 2) + 2 * np.sqrt(2 - np.pi / 2) * tau) / 1.7
        energy_all += np.maximum(energy - threshold, 0)
    return (energy_all + eps) / (amplitude_all + eps)


# --- STSIM-1 / STSIM-2 -------------------------------------------------------------------------


def ref_stsim(a: np.ndarray, b: np.ndarray, version: int = 2) -> float:
    """STSIM of two grey images in [0, 1], scaled to 0–255 as the reference code reads them."""
    a, b = a * 255.0, b * 255.0
    pa = pt.pyramids.SteerablePyramidFreq(a, height=3, order=3, is_complex=True).pyr_coeffs
    pb = pt.pyramids.SteerablePyramidFreq(b, height=3, order=3, is_complex=True).pyr_coeffs
    scores = [_ref_pooling(pa[k], pb[k]) for k in pa]
    if version == 2:
        na, nb = ref_undecimated_bands(a), ref_undecimated_bands(b)
        pairs = [((l, o), (l + 1, o)) for l in range(2) for o in range(4)]
        pairs += [((l, o1), (l, o2)) for l in range(3) for o1 in range(3) for o2 in range(o1 + 1, 4)]
        for p, q in pairs:
            ra = _ref_cross_rho(np.abs(na[p]), np.abs(na[q]))
            rb = _ref_cross_rho(np.abs(nb[p]), np.abs(nb[q]))
            scores.append(float(np.mean(1 - 0.5 * np.abs(ra - rb))))
    return float(np.mean(scores))


def ref_undecimated_bands(img: np.ndarray) -> dict:
    """andreydung's ``SteerableNoSub``: the pyramid's band masks on the full frequency grid, no cropping."""
    h, w = img.shape
    xramp, yramp = np.meshgrid(np.linspace(-1, 1, w + 1)[:-1], np.linspace(-1, 1, h + 1)[:-1])
    angle = np.arctan2(yramp, xramp)
    rad = np.hypot(xramp, yramp)
    ctr = (math.ceil((h + 0.5) / 2) - 1, math.ceil((w + 0.5) / 2) - 1)
    rad[ctr] = rad[ctr[0], ctr[1] - 1]
    log_rad = np.log2(rad)
    x_rcos, y_rcos = rcosFn(1, -0.5, np.asarray([0, 1]))
    y_rcos = np.sqrt(y_rcos)
    yi_rcos = np.sqrt(1.0 - y_rcos ** 2)

    def lookup(values: np.ndarray, lut: np.ndarray, x: np.ndarray) -> np.ndarray:
        return pointOp(values.reshape(1, -1), lut, x[0], x[1] - x[0]).reshape(values.shape)

    lodft = np.fft.fftshift(np.fft.fft2(img)) * lookup(log_rad, yi_rcos, x_rcos)
    x_cosn = np.pi * np.arange(-(2 * 1024 + 1), 1024 + 2) / 1024
    const = 2 ** 6 * math.factorial(3) ** 2 / (4 * math.factorial(6))
    alpha = (x_cosn + np.pi) % (2 * np.pi) - np.pi
    y_cosn = 2 * np.sqrt(const) * np.cos(x_cosn) ** 3 * (np.abs(alpha) < np.pi / 2)
    bands = {}
    for level in range(3):
        x_rcos = x_rcos - 1
        himask = lookup(log_rad, y_rcos, x_rcos)
        for o in range(4):
            anglemask = lookup(angle, y_cosn, x_cosn + np.pi * o / 4)
            bands[(level, o)] = np.fft.ifft2(np.fft.ifftshift((-1j) ** 3 * lodft * anglemask * himask))
        lodft = lodft * lookup(log_rad, yi_rcos, x_rcos)
    return bands


def _conv(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    return signal.correlate(img, window, mode="valid")


def _ref_pooling(x: np.ndarray, y: np.ndarray) -> float:
    c = 0.001
    g = np.exp(-(np.arange(-3, 4)[:, None] ** 2 + np.arange(-3, 4)[None, :] ** 2) / (2 * (7 / 6) ** 2))
    g /= g.sum()
    mx, my = np.abs(_conv(x, g)), np.abs(_conv(y, g))
    lum = (2 * mx * my + c) / (mx * mx + my * my + c)
    vx = np.maximum(_conv(np.abs(x) ** 2, g) - mx * mx, 0)
    vy = np.maximum(_conv(np.abs(y) ** 2, g) - my * my, 0)
    con = (2 * np.sqrt(vx) * np.sqrt(vy) + c) / (vx + vy + c)
    c01 = 1 - 0.5 * np.abs(_ref_lag_rho(x, 1) - _ref_lag_rho(y, 1))
    c10 = 1 - 0.5 * np.abs(_ref_lag_rho(x, 0) - _ref_lag_rho(y, 0))
    return float(np.mean((lum * con * c01 * c10) ** 0.25))


def _ref_lag_rho(x: np.ndarray, axis: int) -> np.ndarray:
    c = 0.001
    shape = (7, 6) if axis == 1 else (6, 7)
    window = np.ones(shape) / 42
    a, b = (x[:, :-1], x[:, 1:]) if axis == 1 else (x[:-1, :], x[1:, :])
    ma, mb = _conv(a, window), _conv(b, window)
    va = np.maximum(_conv(np.abs(a) ** 2, window) - np.abs(ma) ** 2, 0)
    vb = np.maximum(_conv(np.abs(b) ** 2, window) - np.abs(mb) ** 2, 0)
    cross = _conv(a * np.conj(b), window) - ma * np.conj(mb)
    return (cross + c) / (np.sqrt(va) * np.sqrt(vb) + c)


def _ref_cross_rho(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    c = 0.001
    window = np.ones((7, 7)) / 49
    mp, mq = _conv(p, window), _conv(q, window)
    vp, vq = np.maximum(_conv(p * p, window) - mp * mp, 0), np.maximum(_conv(q * q, window) - mq * mq, 0)
    return (_conv(p * q, window) - mp * mq + c) / (np.sqrt(vp) * np.sqrt(vq) + c)
