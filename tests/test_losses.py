"""Losses: SSIM against scikit-image, the loss terms, and the objectives for every ablation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.ndimage
import skimage.metrics
import skimage.metrics._structural_similarity as skimage_ssim
import torch
import torch.nn.functional as F

from core.model.config import ABLATIONS, load_preset
from core.model.losses import (adversarial_loss, cycle_loss, discriminator_objective, generator_objective, luma,
                         segmentation_loss, tissue_weighted_l1)
from core.model.networks import build_networks
from core.model.networks.blocks import SqueezeExcitation
from core.model.ssim_loss import multiwindow_ssim_loss, ssim, ssim_map

NUM_CLASSES = 4


def _images(seed: int = 0, channels: int = 1, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Smooth structured image and a noisy, brightened copy: SSIM well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    a = scipy.ndimage.gaussian_filter(rng.random((size, size, channels)), (2, 2, 0))
    a = (a - a.min()) / (a.max() - a.min())
    b = np.clip(0.8 * a + 0.1 + 0.08 * rng.standard_normal(a.shape), 0, 1)
    return a.astype(np.float64), b.astype(np.float64)


def _torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1)[None].float()


def _skimage_ssim(a: np.ndarray, b: np.ndarray, window: int, monkeypatch) -> float:
    """scikit-image's SSIM with a Gaussian of ``window`` taps.

    With ``gaussian_weights=True`` scikit-image always filters with an 11-tap Gaussian
    (truncate=3.5 for σ=1.5) and uses ``win_size`` only to crop the border, so for windows other
    than 11 its filter is swapped for the same Gaussian truncated at the window's radius.
    """
    if window != 11:
        def gaussian(image, sigma, truncate, mode, **_):
            return scipy.ndimage.gaussian_filter(image, sigma, truncate=(window // 2) / sigma, mode=mode)
        monkeypatch.setattr(skimage_ssim, "gaussian", gaussian)
    channel_axis = 2 if a.shape[2] > 1 else None
    a, b = (a, b) if channel_axis else (a[..., 0], b[..., 0])
    value = skimage.metrics.structural_similarity(a, b, win_size=window, gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False, data_range=1.0,
                                                  channel_axis=channel_axis)
    monkeypatch.undo()
    return float(value)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("window", [3, 5, 7, 9, 11])
def test_ssim_matches_skimage_per_window(window, channels, monkeypatch):
    a, b = _images(window, channels)
    expected = _skimage_ssim(a, b, window, monkeypatch)
    assert 0.2 < expected < 0.95
    got = float(ssim(_torch(a), _torch(b), window))
    assert abs(got - expected) < 1e-4
    loss = float(multiwindow_ssim_loss(_torch(a), _torch(b), (window,)))
    assert abs(loss - (1 - expected)) < 1e-4


def test_multiwindow_loss_sums_windows_and_is_zero_for_equal_images():
    a, b = (_torch(x) for x in _images(1))
    total = multiwindow_ssim_loss(a, b)
    assert torch.allclose(total, sum(1 - ssim(a, b, w) for w in (3, 5, 7, 9)))
    assert float(multiwindow_ssim_loss(a, a)) == pytest.approx(0.0, abs=1e-5)


def test_ssim_map_covers_valid_positions_only():
    """The reference zero-pads and so compares border pixels against black; the valid map has
    no such bias: a constant image has SSIM 1 everywhere, borders included."""
    x = torch.full((1, 1, 20, 20), 0.7)
    sm = ssim_map(x, x.clone(), 7)
    assert sm.shape == (1, 1, 14, 14) and torch.allclose(sm, torch.ones_like(sm))


def test_ssim_is_float32_under_autocast():
    a, b = (_torch(x).bfloat16() for x in _images(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = ssim(a, b, 5)
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(float(ssim(a.float(), b.float(), 5)), abs=1e-6)


def test_ssim_rejects_bad_windows():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError):
        ssim(x, x, 4)
    with pytest.raises(ValueError):
        ssim(x, x, 9)


def test_luma_is_bt601():
    rgb = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    assert torch.allclose(luma(rgb), torch.full((1, 1, 2, 2), 0.299))
    assert torch.allclose(luma(torch.ones(1, 3, 2, 2)), torch.ones(1, 1, 2, 2))


def test_adversarial_losses():
    logits = torch.tensor([2.0, -1.0])
    assert float(adversarial_loss(logits, True, "bce")) == pytest.approx(float(-F.logsigmoid(logits).mean()))
    assert float(adversarial_loss(logits, False, "bce")) == pytest.approx(float(-F.logsigmoid(-logits).mean()))
    assert float(adversarial_loss(logits, True, "lsgan")) == pytest.approx(((1.0 + 4.0) / 2))
    assert float(adversarial_loss(logits, False, "lsgan")) == pytest.approx(((4.0 + 1.0) / 2))
    with pytest.raises(ValueError):
        adversarial_loss(logits, True, "wgan")


def test_cycle_loss_is_l1():
    assert float(cycle_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))) == pytest.approx(0.5)


def test_segmentation_loss_integer_labels_and_class_weights():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    logp = logits.log_softmax(1).gather(1, labels[:, None])[:, 0]
    assert float(segmentation_loss(logits, labels)) == pytest.approx(float(-logp.mean()), abs=1e-6)
    w = torch.tensor([0.2, 1.0, 3.0])
    weighted = float((-logp * w[labels]).sum() / w[labels].sum())
    assert float(segmentation_loss(logits, labels, (0.2, 1.0, 3.0))) == pytest.approx(weighted, abs=1e-6)
    with pytest.raises(ValueError, match="class weights"):
        segmentation_loss(logits, labels, (1.0, 2.0))


def _batch(size: int = 32, n: int = 2):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, size, size, generator=g), torch.rand(n, 3, size, size, generator=g),
            torch.randint(0, NUM_CLASSES, (n, size, size), generator=g))


EXPECTED_PARTS = {
    None: {"adv_c", "adv_m", "rec_m", "rec_c", "ssim_m_c_hat", "ssim_c_m_hat", "ssim_c_c_prime", "seg"},
    "A1": {"adv_c", "adv_m", "ssim_m_c_hat", "ssim_c_m_hat", "ssim_c_c_prime", "seg"},
    "A2": {"adv_c", "adv_m", "rec_m", "rec_c", "ssim_m_c_hat", "ssim_c_m_hat", "ssim_c_c_prime"},
    "A3": {"adv_c", "adv_m", "rec_m", "rec_c", "ssim_m_c_hat", "ssim_c_m_hat"},
    "A4": {"adv_c", "adv_m", "rec_m", "rec_c", "ssim_m_c_hat", "ssim_c_m_hat", "seg"},
    "A5": {"adv_c", "adv_m", "rec_m", "rec_c", "ssim_m_c_hat", "ssim_c_m_hat", "ssim_c_c_prime", "seg"},
}


@pytest.mark.parametrize("ablation", [None, *sorted(ABLATIONS)])
def test_every_parameter_gets_a_gradient_in_one_training_step(ablation):
    """No dead branches: after a G step and a D step every trainable parameter has a non-zero
    gradient (what DDP with find_unused_parameters=False needs); frozen S gets none.

    The tiny preset's SE gates have 4 hidden ReLU units, which a random init can leave all
    inactive (zero gradient by chance, not by structure); their biases start positive here so
    that only a structurally dead parameter can fail the test.
    """
    preset = load_preset("tiny", ablation)
    nets = build_networks(preset.model, num_classes=NUM_CLASSES, seed=0)
    nets.freeze_segmentation()
    for net in (nets.g_mc, nets.g_cm):
        for module in net.modules():
            if isinstance(module, SqueezeExcitation):
                torch.nn.init.constant_(module.fc1.bias, 1.0)
    m, c, s = _batch()
    g = generator_objective(nets, m, c, s, preset.loss)
    assert set(g.parts) == EXPECTED_PARTS[ablation]
    assert np.isfinite(list(g.parts.values())).all() and torch.isfinite(g.total)
    g.total.backward()
    for name in ("g_mc", "g_cm"):
        for pname, p in getattr(nets, name).named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"
    for module in (nets.d_c, nets.d_m):
        module.zero_grad(set_to_none=True)
    d = discriminator_objective(nets, m, c, g.fakes, preset.loss)
    assert set(d.parts) == {"d_c", "d_m"}
    d.total.backward()
    for name in ("d_c", "d_m"):
        for pname, p in getattr(nets, name).named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"
    if nets.seg is not None:
        assert all(p.grad is None for p in nets.seg.parameters())


def test_generator_total_is_the_weighted_sum():
    preset = load_preset("tiny")
    loss_cfg = dataclasses.replace(preset.loss, lambda_rec=3.0, lambda_ssim=0.5, lambda_seg=2.0,
                                   lambda_l1_c_prime=4.0, adversarial="lsgan")
    nets = build_networks(preset.model, num_classes=NUM_CLASSES, seed=1)
    nets.freeze_segmentation()
    g = generator_objective(nets, *_batch(), loss_cfg)
    p = g.parts
    expected = (p["adv_c"] + p["adv_m"] + 3.0 * (p["rec_m"] + p["rec_c"])
                + 0.5 * (p["ssim_m_c_hat"] + p["ssim_c_m_hat"] + p["ssim_c_c_prime"]) + 2.0 * p["seg"]
                + 4.0 * p["l1_c_prime"])
    assert g.total.item() == pytest.approx(float(expected), rel=1e-5)
    assert set(g.fakes) == {"c_hat", "m_hat", "c_prime"} and not g.fakes["c_hat"].requires_grad


def test_segmentation_labels_required_when_segmenting():
    preset = load_preset("tiny")
    nets = build_networks(preset.model, num_classes=NUM_CLASSES)
    m, c, _ = _batch()
    with pytest.raises(ValueError, match="label maps"):
        generator_objective(nets, m, c, None, preset.loss)


def test_luma_under_autograd_after_a_first_call_in_inference_mode():
    """The cached luma weights were an inference tensor when the Colorizer asked first, and every
    training loss after that failed ("Inference tensors cannot be saved for backward")."""
    from core.imaging import _luma_weights, luma

    _luma_weights.cache_clear()
    with torch.inference_mode():
        luma(torch.rand(1, 3, 4, 4))
    rgb = torch.rand(1, 3, 4, 4, requires_grad=True)
    luma(rgb).sum().backward()
    assert rgb.grad is not None


def test_body_only_scores_the_colorizations_inside_the_body_only():
    """With ``loss.body_only`` the fakes equal the target outside the body (labels 0) and the
    network's own output inside it; the objective then does not depend on what the network
    paints outside, so an all-background plane gives ĉ and c' no pull from L1, SSIM or the cycle."""
    preset = load_preset("tiny")
    whole = dataclasses.replace(preset.loss, lambda_l1_c_prime=5.0)
    loss = dataclasses.replace(whole, body_only=True)
    nets = build_networks(preset.model, num_classes=NUM_CLASSES, seed=0)
    nets.freeze_segmentation()
    m, c, s = _batch()
    s = s.clone()
    s[:, :, : s.shape[-1] // 2] = 0
    g = generator_objective(nets, m, c, s, loss)
    raw = generator_objective(nets, m, c, s, whole)
    outside = (s == 0).unsqueeze(1).expand_as(c)
    for name in ("c_hat", "c_prime"):
        assert torch.equal(g.fakes[name][outside], c[outside])
        assert torch.allclose(g.fakes[name][~outside], raw.fakes[name][~outside])
        assert not torch.allclose(raw.fakes[name][outside], c[outside])
    assert g.parts["l1_c_prime"] < raw.parts["l1_c_prime"]
    with pytest.raises(ValueError, match="body_only needs the label maps"):
        generator_objective(build_networks(load_preset("tiny", "A2").model, num_classes=NUM_CLASSES, seed=0),
                            m, c, None, dataclasses.replace(load_preset("tiny", "A2").loss, body_only=True))


def test_tissue_weighted_l1_against_a_numpy_reference():
    """Each pixel's |x - target| weighs its tissue's weight, over the weights' sum (× channels);
    without weights it is the plain mean; equal weights give the plain mean too."""
    gen = torch.Generator().manual_seed(3)
    x, target = torch.rand(2, 3, 5, 6, generator=gen), torch.rand(2, 3, 5, 6, generator=gen)
    s = torch.randint(0, 4, (2, 5, 6), generator=gen)
    weights = torch.tensor([0.0, 0.5, 2.0, 7.0])
    w = weights.numpy()[s.numpy()][:, None]
    expected = (np.abs(x.numpy() - target.numpy()) * w).sum() / (w.sum() * 3)
    assert tissue_weighted_l1(x, target, s, weights).item() == pytest.approx(float(expected), rel=1e-5)
    plain = torch.nn.functional.l1_loss(x, target).item()
    assert tissue_weighted_l1(x, target, s, None).item() == pytest.approx(plain)
    assert tissue_weighted_l1(x, target, s, torch.full((4,), 3.0)).item() == pytest.approx(plain, rel=1e-5)
    assert tissue_weighted_l1(x, target, s, weights).item() != pytest.approx(plain, rel=1e-3)
    with pytest.raises(ValueError, match="l1_balance needs the label maps"):
        tissue_weighted_l1(x, target, None, weights)


def test_l1_in_lab_space_against_scikit_image():
    """``l1_space="lab"``: |Δ(L*, a*, b*)| / 100 of scikit-image's rgb2lab, weighted alike; a hue
    error that RGB weighs below a small lightness error weighs above it there; the setting reaches
    the objective; nonsense is refused."""
    from skimage.color import rgb2lab

    gen = torch.Generator().manual_seed(4)
    x, target = torch.rand(2, 3, 5, 6, generator=gen), torch.rand(2, 3, 5, 6, generator=gen)
    s = torch.randint(0, 4, (2, 5, 6), generator=gen)
    weights = torch.tensor([0.0, 0.5, 2.0, 7.0])

    def lab(t):
        return rgb2lab(t.numpy().transpose(0, 2, 3, 1), channel_axis=-1).transpose(0, 3, 1, 2) / 100.0
    w = weights.numpy()[s.numpy()][:, None]
    expected = (np.abs(lab(x) - lab(target)) * w).sum() / (w.sum() * 3)
    assert tissue_weighted_l1(x, target, s, weights, "lab").item() == pytest.approx(float(expected), rel=1e-4)
    assert tissue_weighted_l1(x, target, s, None, "lab").item() == pytest.approx(float(np.abs(lab(x) - lab(target)).mean()), rel=1e-4)
    grey = torch.full((1, 3, 4, 4), 0.45)
    bluish = grey + torch.tensor([-0.02, 0.0, 0.04]).view(1, 3, 1, 1)      # CSF's blue-grey against warm grey
    lighter = grey + 0.03                                                  # the same grey, a little lighter

    def l1(a, space):
        return tissue_weighted_l1(a, grey, None, None, space).item()
    assert l1(bluish, "rgb") < l1(lighter, "rgb")          # RGB weighs the hue error less than the lightness one
    assert l1(bluish, "lab") > 1.5 * l1(lighter, "lab")    # L*a*b* (and ΔE) the other way round
    cfg = dataclasses.replace(load_preset("tiny", "A2").loss, lambda_l1_c_prime=1.0)
    nets = build_networks(load_preset("tiny", "A2").model, num_classes=NUM_CLASSES, seed=0)
    m, c = torch.rand(1, 1, 32, 32, generator=gen), torch.rand(1, 3, 32, 32, generator=gen)
    parts = {space: float(generator_objective(nets, m, c, None, dataclasses.replace(cfg, l1_space=space)).parts["l1_c_prime"])
             for space in ("rgb", "lab")}
    c_prime = nets.g_mc(m)["c_prime"].detach()
    assert parts["lab"] == pytest.approx(tissue_weighted_l1(c_prime, c, None, None, "lab").item(), rel=1e-4)
    assert parts["lab"] != pytest.approx(parts["rgb"], rel=1e-2)
    with pytest.raises(ValueError, match="l1_space"):
        dataclasses.replace(cfg, l1_space="hsv")


def test_l1_weights_reach_the_generator_objective():
    """Weighting one tissue alone makes L1(c', c) the error over that tissue's pixels only."""
    preset = load_preset("tiny")
    loss = dataclasses.replace(preset.loss, lambda_l1_c_prime=5.0)
    nets = build_networks(preset.model, num_classes=NUM_CLASSES, seed=0)
    nets.freeze_segmentation()
    m, c, s = _batch()
    only = torch.zeros(NUM_CLASSES)
    only[1] = 1.0
    g = generator_objective(nets, m, c, s, loss, only)
    inside = (s == 1).unsqueeze(1).expand_as(c)
    expected = (g.fakes["c_prime"] - c).abs()[inside].mean()
    assert g.parts["l1_c_prime"].item() == pytest.approx(expected.item(), rel=1e-4)
    plain = generator_objective(nets, m, c, s, loss).parts["l1_c_prime"]
    assert g.parts["l1_c_prime"].item() != pytest.approx(plain.item(), rel=1e-3)
    with pytest.raises(ValueError, match="l1_balance must be a non-negative"):
        dataclasses.replace(loss, l1_balance=-1.0)
