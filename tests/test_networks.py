"""Networks: shapes and ranges for every preset and ablation, the dual decoder, the gradient paths."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from core.model.config import ABLATIONS, ModelConfig, load_preset
from core.errors import InputError
from core.model.networks import Networks, build_discriminator, build_generator, build_networks
from core.model.networks.blocks import SqueezeExcitation

NUM_CLASSES = 5


def _nets(preset: str, ablation: str | None = None, seed: int = 0) -> Networks:
    return build_networks(load_preset(preset, ablation).model, num_classes=NUM_CLASSES, seed=seed)


def _check_forward(nets: Networks, size: int, batch: int = 1) -> None:
    torch.manual_seed(size)
    m = torch.rand(batch, 1, size, size)
    c = torch.rand(batch, 3, size, size)
    with torch.no_grad():
        out = nets.g_mc(m)
        assert set(out) == set(nets.config.generator_outputs)
        for image in out.values():
            assert image.shape == (batch, 3, size, size)
            assert image.min() >= 0 and image.max() <= 1 and torch.isfinite(image).all()
        m_hat = nets.g_cm(c)["m_hat"]
        assert m_hat.shape == (batch, 1, size, size) and m_hat.min() >= 0 and m_hat.max() <= 1
        assert nets.d_c(c).shape == (batch,) and nets.d_m(m).shape == (batch,)
        if nets.seg is not None:
            assert nets.seg(c).shape == (batch, NUM_CLASSES, size, size)


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("preset", ["tiny", "lite"])
def test_presets_shapes_and_ranges(preset, size):
    _check_forward(_nets(preset), size, batch=2 if size == 64 else 1)


def test_paper_preset_forward_at_64():
    """Only G_m→ĉ and D_c: the other networks share their code with the presets above."""
    config = load_preset("paper").model
    assert config.widths == (128, 256, 512) and config.n_blocks == 9
    with torch.no_grad():
        out = build_generator(config)(torch.rand(1, 1, 64, 64))
        assert build_discriminator(config, 3)(torch.rand(1, 3, 64, 64)).shape == (1,)
    for image in out.values():
        assert image.shape == (1, 3, 64, 64) and image.min() >= 0 and image.max() <= 1


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_ablations_shapes_and_ranges(ablation, size):
    _check_forward(_nets("tiny", ablation), size)


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_lite_ablations_forward(ablation):
    _check_forward(_nets("lite", ablation), 64)


def test_ablations_build_no_dead_branches():
    full = _nets("tiny")
    assert full.g_mc.aux_decoder is not None and full.g_mc.decoder.cross_gates is not None and full.seg is not None
    a2 = _nets("tiny", "A2")
    assert a2.seg is None and a2.g_mc.aux_decoder is not None
    for name in ("A3", "A4"):
        nets = _nets("tiny", name)
        assert nets.g_mc.aux_decoder is None and nets.g_mc.decoder.cross_gates is None
        assert nets.config.generator_outputs == ("c_hat",)
    assert _nets("tiny", "A3").seg is None and _nets("tiny", "A4").seg is not None
    a5 = _nets("tiny", "A5")
    gates = [*a5.g_mc.decoder.skip_gates, *a5.g_mc.decoder.cross_gates, *a5.g_mc.aux_decoder.skip_gates]
    assert all(isinstance(g, torch.nn.Conv2d) and g.kernel_size == (1, 1) for g in gates)
    full_gates = [*full.g_mc.decoder.skip_gates, *full.g_mc.decoder.cross_gates]
    assert all(isinstance(g, SqueezeExcitation) for g in full_gates)
    # the bottleneck keeps its SE blocks in A5: only the skips change
    assert any(isinstance(mod, SqueezeExcitation) for mod in a5.g_mc.encoder.bottleneck.modules())


@pytest.mark.parametrize("upsample", ["deconv", "resize_conv"])
@pytest.mark.parametrize("separable", [False, True])
def test_upsampling_and_separable_switches(upsample, separable):
    config = dataclasses.replace(load_preset("tiny").model, upsample=upsample, separable=separable)
    g = build_generator(config)
    with torch.no_grad():
        out = g(torch.rand(1, 1, 32, 48))
    assert out["c_hat"].shape == out["c_prime"].shape == (1, 3, 32, 48)


def test_generator_refuses_sizes_not_divisible_by_four():
    g = build_generator(load_preset("tiny").model)
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.rand(1, 1, 30, 32))


def test_grayscale_generator_has_one_decoder():
    g = build_generator(load_preset("tiny").model, "grayscale")
    assert g.aux_decoder is None and g.output_names == ("m_hat",) and g.in_channels == 3


def test_two_decoders_share_no_parameter_and_differ():
    g = _nets("tiny").g_mc
    main = {id(p) for p in g.decoder.parameters()}
    aux = {id(p) for p in g.aux_decoder.parameters()}
    assert main and aux and not main & aux
    main_ptr = {p.data_ptr() for p in g.decoder.parameters()}
    assert not main_ptr & {p.data_ptr() for p in g.aux_decoder.parameters()}
    with torch.no_grad():
        out = g(torch.rand(2, 1, 64, 64))
    assert (out["c_hat"] - out["c_prime"]).abs().max() > 1e-3


def _grads_nonzero(module: torch.nn.Module) -> bool:
    return all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_segmentation_loss_reaches_encoder_through_c_prime():
    """L_seg = CE(S(c'), s) with S frozen: the gradient flows through S and c' into the c'
    decoder and the shared encoder. The ĉ decoder receives none of it: the link goes c' → ĉ."""
    nets = _nets("tiny")
    nets.freeze_segmentation()
    c_prime = nets.g_mc(torch.rand(2, 1, 64, 64))["c_prime"]
    loss = F.cross_entropy(nets.seg(c_prime), torch.randint(0, NUM_CLASSES, (2, 64, 64)))
    loss.backward()
    assert _grads_nonzero(nets.g_mc.encoder)
    assert _grads_nonzero(nets.g_mc.aux_decoder)
    assert all(p.grad is None for p in nets.g_mc.decoder.parameters())
    assert all(p.grad is None for p in nets.seg.parameters())


def test_c_prime_features_reach_c_hat_decoder_through_se_skips():
    """What segmentation teaches the c' decoder reaches ĉ through the SE gates: a loss on ĉ
    alone back-propagates into the c' decoder's stages and into every cross gate."""
    g = _nets("tiny").g_mc
    g(torch.rand(2, 1, 64, 64))["c_hat"].mean().backward()
    assert all(isinstance(gate, SqueezeExcitation) for gate in g.decoder.cross_gates)
    assert _grads_nonzero(g.decoder.cross_gates)
    assert _grads_nonzero(g.aux_decoder.ups)
    assert _grads_nonzero(g.aux_decoder.skip_gates)
    assert all(p.grad is None for p in g.aux_decoder.head.parameters())


def test_builder_seed_is_reproducible_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = _nets("tiny", seed=3), _nets("tiny", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, pa), (kb, pb) in zip(a.g_mc.state_dict().items(), b.g_mc.state_dict().items()):
        assert ka == kb and torch.equal(pa, pb)


def test_num_classes_come_from_the_label_table():
    nets = build_networks(load_preset("tiny").model, num_classes=7)
    assert nets.seg.num_classes == 7 and nets.config.num_classes == 7
    with pytest.raises(ValueError, match="num_classes"):
        build_networks(load_preset("tiny").model)


def test_presets_validate():
    assert load_preset("lite").model.separable
    with pytest.raises(ValueError, match="needs the c' decoder"):
        ModelConfig(dual_decoder=False, segmentation="c_prime")
    with pytest.raises(ValueError, match="unknown key"):
        ModelConfig.from_dict({"widht": [1, 2, 3]})
    with pytest.raises(InputError, match="unknown ablation"):
        load_preset("tiny", "A9")
    with pytest.raises(InputError, match="preset not found"):
        load_preset("nonexistent")


def test_asking_for_c_prime_alone_skips_the_c_hat_decoder_and_gives_the_same_c_prime():
    from core.model.config import load_preset
    from core.model.networks import build_generator

    torch.manual_seed(0)
    g = build_generator(load_preset("tiny").model, "colorization").eval()
    calls = []
    g.decoder.register_forward_hook(lambda *_: calls.append("c_hat decoder"))
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        both = g(x)
        alone = g(x, ("c_prime",))
    assert set(both) == {"c_hat", "c_prime"} and set(alone) == {"c_prime"}
    assert calls == ["c_hat decoder"]  # run for the full forward only
    torch.testing.assert_close(alone["c_prime"], both["c_prime"])
