"""Colorizer: shapes and kinds in and out, padding, batching, outputs, errors, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model.checkpoint import save_checkpoint
from core.model.config import load_preset
from core.errors import InputError
from core.inference.fusion import fuse
from core.inference.colorizer import Colorizer, best_device
from core.model.networks import build_generator


@pytest.fixture(scope="module")
def colorizer():
    return Colorizer.untrained("tiny", seed=0, device="cpu")


def _planes(n=3, h=64, w=64, seed=0):
    return np.random.default_rng(seed).random((n, h, w)).astype(np.float32)


def test_untrained_lite_defaults():
    col = Colorizer.untrained()
    assert col.config == load_preset("lite").model and col.serve == "c_hat"
    assert col.device == best_device() and not col.generator.training
    assert col.outputs == ("c_hat", "c_prime", "fused", "guided")
    rgb = col.colorize(_planes(1, 256, 256)[0])
    assert rgb.shape == (256, 256, 3) and rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1


def test_untrained_is_reproducible_by_seed():
    x = _planes(1)
    a = Colorizer.untrained("tiny", seed=1, device="cpu").colorize(x)
    b = Colorizer.untrained("tiny", seed=1, device="cpu").colorize(x)
    c = Colorizer.untrained("tiny", seed=2, device="cpu").colorize(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_numpy_shapes(colorizer):
    x = _planes(3)
    assert colorizer.colorize(x[0]).shape == (64, 64, 3)
    batch = colorizer.colorize(x)
    assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(colorizer.colorize(x[:, None]), batch)
    np.testing.assert_allclose(colorizer.colorize(x[1]), batch[1], atol=1e-5)


def test_torch_in_torch_out(colorizer):
    x = torch.from_numpy(_planes(2))
    out = colorizer.colorize(x[:, None])
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 64, 64) and out.dtype == torch.float32
    assert colorizer.colorize(x[0]).shape == (3, 64, 64)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), colorizer.colorize(x.numpy()), atol=1e-6)


def test_matches_the_generator_and_pads_other_sizes(colorizer):
    x = _planes(2)
    with torch.no_grad():
        direct = colorizer.generator(torch.from_numpy(x)[:, None])["c_hat"]
    np.testing.assert_allclose(colorizer.colorize(x), direct.permute(0, 2, 3, 1).numpy(), atol=1e-5)
    for h, w in ((61, 70), (66, 63), (3, 5)):
        out = colorizer.colorize(_planes(2, h, w))
        assert out.shape == (2, h, w, 3) and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


def test_batching_does_not_change_results():
    x = _planes(5)
    big = Colorizer.untrained("tiny", device="cpu", max_batch=16).colorize(x)
    small = Colorizer.untrained("tiny", device="cpu", max_batch=2).colorize(x)
    np.testing.assert_allclose(small, big, atol=1e-5)


def test_outputs_option(colorizer):
    x = _planes(2)
    both = colorizer.colorize(x, outputs=("c_hat", "c_prime"))
    assert set(both) == {"c_hat", "c_prime"}
    np.testing.assert_array_equal(both["c_hat"], colorizer.colorize(x))
    assert not np.allclose(both["c_hat"], both["c_prime"])
    fused = colorizer.colorize(x, outputs="fused")
    assert fused.shape == (2, 64, 64, 3) and 0 <= fused.min() and fused.max() <= 1
    with pytest.raises(InputError, match="unknown output"):
        colorizer.colorize(x, outputs="rainbow")


def test_fuse_keeps_c_prime_colours_and_c_hat_edges():
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert torch.allclose(fuse(flat, torch.full((1, 3, 32, 32), 0.3)), torch.full((1, 3, 32, 32), 0.3), atol=1e-6)
    edge = flat.clone()
    edge[..., 16:] = 0.9
    fused = fuse(edge, torch.full((1, 3, 32, 32), 0.3))
    assert fused[0, 0, 10, 15] < 0.3 < fused[0, 0, 10, 16]


def test_single_decoder_model_serves_c_hat_only():
    config = load_preset("tiny", "A3").model
    col = Colorizer(build_generator(config), config, device="cpu")
    assert col.outputs == ("c_hat",)
    with pytest.raises(InputError):
        col.colorize(_planes(1), outputs="c_prime")
    with pytest.raises(ValueError):
        Colorizer(build_generator(config), config, serve="c_prime", device="cpu")


@pytest.mark.parametrize("bad, message", [
    (np.full((1, 8, 8), np.nan, dtype=np.float32), "NaN"),
    (np.full((1, 8, 8), 900.0, dtype=np.float32), "normalised"),
    (np.zeros((1, 8, 8), dtype=np.int64), "dtype"),
    (np.zeros((2, 3, 8, 8), dtype=np.float32), "shape"),
    (np.zeros((0, 8, 8), dtype=np.float32), "empty"),
    ([[0.0, 0.1]], "numpy array or torch tensor"),
])
def test_bad_input(colorizer, bad, message):
    with pytest.raises(InputError, match=message):
        colorizer.colorize(bad)


def test_uint8_is_scaled(colorizer):
    x = (_planes(1) * 255).round().astype(np.uint8)
    np.testing.assert_allclose(colorizer.colorize(x), colorizer.colorize(x.astype(np.float32) / 255), atol=1e-6)


def test_from_checkpoint(tmp_path):
    config = load_preset("tiny").model
    torch.manual_seed(5)
    g = build_generator(config)
    path = save_checkpoint(tmp_path / "m.safetensors", {"g_mc": g}, config, serve="c_prime")
    col = Colorizer.from_checkpoint(path, device="cpu", max_batch=4)
    assert col.serve == "c_prime" and col.max_batch == 4 and col.source == str(path)
    x = _planes(2)
    with torch.no_grad():
        expected = g.eval()(torch.from_numpy(x)[:, None])["c_prime"].permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(col.colorize(x), expected, atol=1e-5)


def test_the_shipped_default_checkpoint_loads():
    col = Colorizer.from_checkpoint(device="cpu")
    assert col.serve in col.outputs
    rgb = col.colorize(_planes(1)[0])
    assert rgb.shape == (64, 64, 3) and rgb.min() >= 0 and rgb.max() <= 1


def test_default_checkpoint_missing_is_a_clear_error(monkeypatch, tmp_path):
    import resources

    monkeypatch.setattr(resources, "ROOT", tmp_path)  # an install without shipped weights
    with pytest.raises(InputError, match="no default checkpoint"):
        Colorizer.from_checkpoint()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_autocast_close_to_fp32(precision):
    x = _planes(4, 128, 128)
    ref = Colorizer.untrained("lite", device="cuda", precision="fp32").colorize(x)
    low = Colorizer.untrained("lite", device="cuda", precision=precision).colorize(x)
    assert low.dtype == np.float32 and np.abs(low - ref).max() < 0.05


@pytest.mark.parametrize("capability, expected", [((7, 0), torch.float16), ((7, 5), torch.float16),
                                                  ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_auto_precision_takes_bf16_only_where_the_gpu_runs_it_natively(monkeypatch, capability, expected):
    """V100 (7.0) and T4 (7.5) emulate bf16, slower than fp16; Ampere (8.0) on runs it natively.
    ``is_bf16_supported`` says yes on both, so it cannot decide."""
    from core.inference.colorizer import autocast_dtype

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype(torch.device("cuda", 0), "auto") == expected
    assert autocast_dtype(torch.device("cuda", 0), "fp32") is None and autocast_dtype(torch.device("cpu"), "auto") is None


def test_a_colorizer_moved_to_another_device_takes_that_devices_batch():
    """The viewer switching to the GPU kept the CPU's batch of 2 before ``Colorizer.to``."""
    from core.inference.colorizer import CPU_BATCH, GPU_BATCH

    cpu = Colorizer.untrained("tiny", device="cpu")
    moved = cpu.to("meta")                              # any non-CPU device; no GPU needed
    assert (cpu.max_batch, moved.max_batch, moved.device.type) == (CPU_BATCH, GPU_BATCH, "meta")
    assert cpu.to("cpu").max_batch == CPU_BATCH and next(cpu.generator.parameters()).device.type == "cpu"
