"""The objective of the paper (docs/method.md) as two functions, so a training step stays short:

    g = generator_objective(nets, m, c, s, loss_cfg)      # G step: g.total.backward()
    d = discriminator_objective(nets, m, c, g.fakes, loss_cfg)   # D step: d.total.backward()

Both return the weighted total (a tensor to back-propagate) and the unweighted components as
detached 0-d tensors for logging (read back to the host together, once, by the training step). Which terms exist follows the built networks and the loss config, so the
ablations need no special cases in the training loop: no c' → no SSIM(c, c'); no S → no L_seg;
``cycle`` off (A1) → no reconstructions are computed; A4 segments the reconstructed cryosection.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch
import torch.nn.functional as F

from core.imaging import luma, rgb_to_lab
from core.model.config import LossConfig
from core.model.networks.builder import Networks
from core.model.ssim_loss import multiwindow_ssim_loss

def adversarial_loss(logits: torch.Tensor, real: bool, mode: str = "bce") -> torch.Tensor:
    """Loss pushing discriminator logits towards 'real' or 'fake'.

    ``bce``: sigmoid + binary cross-entropy as in eq. 1, computed from logits (stable and
    autocast-safe); ``lsgan``: squared distance of the logit to 1 or 0 (the authors' code).
    """
    logits = logits.float()
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    raise ValueError(f"unknown adversarial loss {mode!r} (bce or lsgan)")


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 reconstruction loss of one cycle direction (eq. 2)."""
    return F.l1_loss(reconstruction.float(), original.float())


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      class_weights: tuple[float, ...] | torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of class logits (N, K, H, W) against integer labels (N, H, W) (eq. 7–8).

    Integer targets instead of the authors' one-hot maps save K× the memory; ``class_weights``
    (length K) counter the dominance of background and large organs.
    """
    weight = None
    if class_weights is not None:
        weight = (class_weights.to(logits.device, torch.float32) if isinstance(class_weights, torch.Tensor)
                  else _weights_tensor(tuple(class_weights), logits.device))
        if weight.numel() != logits.shape[1]:
            raise ValueError(f"{weight.numel()} class weights for {logits.shape[1]} classes")
    return F.cross_entropy(logits.float(), labels.long(), weight=weight)


@lru_cache(maxsize=8)
def _weights_tensor(weights: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """Class weights on ``device``, copied there once rather than at every step."""
    return torch.tensor(weights, dtype=torch.float32, device=device)


class Objective(NamedTuple):
    """A weighted total to back-propagate and its unweighted components (detached) for logging."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


class GeneratorObjective(NamedTuple):
    """``Objective`` plus the translated images, detached, for the discriminator step and sample
    grids: ``c_hat``, ``m_hat`` and, when built, ``c_prime``."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]
    fakes: dict[str, torch.Tensor]


def _detached(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The components for logging, left on the device: reading each back would wait for the GPU."""
    return {k: t.detach().float() for k, t in terms.items()}


def _inside_body(x: torch.Tensor | None, target: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor | None:
    """``x`` inside the body (labels > 0), the target's own pixels outside: nothing outside the
    body reaches a loss, as nothing outside it reaches the screen (`LossConfig.body_only`)."""
    if x is None:
        return None
    if s is None:
        raise ValueError("loss.body_only needs the label maps s: the body is where they are not background")
    return torch.where((s > 0).unsqueeze(1), x, target.to(x.dtype))


def tissue_weighted_l1(x: torch.Tensor, target: torch.Tensor, s: torch.Tensor | None,
                       weights: torch.Tensor | None, space: str = "rgb") -> torch.Tensor:
    """L1(x, target), each pixel weighted by its tissue's weight (``weights[s]``) and divided by
    the weights' sum, so its scale stays that of the plain mean; ``weights`` None: the plain mean.
    ``space`` "lab": both images in CIE L*a*b* / 100 first (`LossConfig.l1_space`)."""
    if space == "lab":
        x, target = rgb_to_lab(x) / 100.0, rgb_to_lab(target) / 100.0
    if weights is None:
        return F.l1_loss(x.float(), target.float())
    if s is None:
        raise ValueError("loss.l1_balance needs the label maps s: the weights are per tissue")
    w = weights.to(x.device, torch.float32)[s.long()].unsqueeze(1)
    return ((x.float() - target.float()).abs() * w).sum() / (w.sum() * x.shape[1]).clamp_min(1e-12)


def generator_objective(nets: Networks, m: torch.Tensor, c: torch.Tensor, s: torch.Tensor | None,
                        cfg: LossConfig, l1_weights: torch.Tensor | None = None) -> GeneratorObjective:
    """L = λ_adv·L_adv + λ_rec·L_rec + λ_ssim·L_ssim + λ_seg·L_seg (+ λ_l1·L1(c', c)) for one batch.

    ``m`` (N, 1, H, W) and ``c`` (N, 3, H, W) in [0, 1]; ``s`` (N, H, W) integer labels of ``c``,
    needed only when a segmentation net is built. S must already be frozen
    (``nets.freeze_segmentation()``): gradients pass *through* it into the generators. The
    discriminators' parameters also collect gradients here unless the caller switched them off.
    Components: ``adv_c``, ``adv_m``, ``rec_m``, ``rec_c``, ``ssim_m_c_hat``, ``ssim_c_m_hat``,
    ``ssim_c_c_prime``, ``seg``, ``l1_c_prime`` — those the configuration computes.
    ``l1_weights`` (one per class; `LossConfig.l1_balance`) weight L1(c', c) per pixel by tissue.
    """
    arch = nets.config
    out = nets.g_mc(m)
    c_hat, c_prime = out["c_hat"], out.get("c_prime")
    if cfg.body_only:
        c_hat, c_prime = (_inside_body(x, c, s) for x in (c_hat, c_prime))
    m_hat = nets.g_cm(c)["m_hat"]

    terms: dict[str, torch.Tensor] = {
        "adv_c": adversarial_loss(nets.d_c(c_hat), True, cfg.adversarial),
        "adv_m": adversarial_loss(nets.d_m(m_hat), True, cfg.adversarial),
    }
    total = cfg.lambda_adv * (terms["adv_c"] + terms["adv_m"])

    rec_c = None
    if cfg.cycle or arch.segmentation == "reconstruction":
        rec_c = nets.g_mc(m_hat)["c_hat"]
    if cfg.cycle:
        terms["rec_m"] = cycle_loss(nets.g_cm(c_hat)["m_hat"], m)
        terms["rec_c"] = cycle_loss(rec_c, c)
        total = total + cfg.lambda_rec * (terms["rec_m"] + terms["rec_c"])

    terms["ssim_m_c_hat"] = multiwindow_ssim_loss(m, luma(c_hat.float()), cfg.ssim_windows)
    terms["ssim_c_m_hat"] = multiwindow_ssim_loss(luma(c.float()), m_hat, cfg.ssim_windows)
    ssim_total = terms["ssim_m_c_hat"] + terms["ssim_c_m_hat"]
    if c_prime is not None:
        terms["ssim_c_c_prime"] = multiwindow_ssim_loss(c, c_prime, cfg.ssim_windows)
        ssim_total = ssim_total + terms["ssim_c_c_prime"]
    total = total + cfg.lambda_ssim * ssim_total

    if nets.seg is not None:
        if s is None:
            raise ValueError("this configuration has a segmentation loss: pass the label maps s")
        seg_input = c_prime if arch.segmentation == "c_prime" else rec_c
        terms["seg"] = segmentation_loss(nets.seg(seg_input), s, cfg.class_weights)
        total = total + cfg.lambda_seg * terms["seg"]

    if cfg.lambda_l1_c_prime > 0 and c_prime is not None:
        terms["l1_c_prime"] = tissue_weighted_l1(c_prime, c, s, l1_weights, cfg.l1_space)
        total = total + cfg.lambda_l1_c_prime * terms["l1_c_prime"]

    fakes = {"c_hat": c_hat.detach(), "m_hat": m_hat.detach()}
    if c_prime is not None:
        fakes["c_prime"] = c_prime.detach()
    return GeneratorObjective(total, _detached(terms), fakes)


def _real_fake_loss(disc, real: torch.Tensor, fake: torch.Tensor, mode: str) -> torch.Tensor:
    """0.5·(loss(D(real), real) + loss(D(fake), fake)) with one forward of the concatenated batch:
    one call per step keeps DDP's hooks simple, and instance norm never mixes samples."""
    logits = disc(torch.cat([real, fake.detach()], dim=0))
    n = real.shape[0]
    return 0.5 * (adversarial_loss(logits[:n], True, mode) + adversarial_loss(logits[n:], False, mode))


def discriminator_objective(nets: Networks, m: torch.Tensor, c: torch.Tensor, fakes: dict[str, torch.Tensor],
                            cfg: LossConfig) -> Objective:
    """Loss of D_c (real c vs ĉ) and D_m (real m vs m̂), each 0.5·(real + fake), summed.

    ``fakes`` is ``GeneratorObjective.fakes`` (or images drawn from an image pool)."""
    terms = {"d_c": _real_fake_loss(nets.d_c, c, fakes["c_hat"], cfg.adversarial),
             "d_m": _real_fake_loss(nets.d_m, m, fakes["m_hat"], cfg.adversarial)}
    return Objective(terms["d_c"] + terms["d_m"], _detached(terms))
