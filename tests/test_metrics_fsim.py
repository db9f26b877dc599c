"""FSIM / FSIMc against values computed with piq 0.8.0's ``fsim`` (the golden values of docs/metrics.md
and those below).

piq cannot be imported beside the CPU torch wheel (it imports torchvision), so the values were
computed once with piq behind a stub ``torchvision`` module and are listed here. When piq is
importable that way, ``test_against_live_piq`` also compares on random batches.
"""
import importlib.machinery
import sys
import types

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.metrics import fsim
from helpers_metrics import GOLDEN, LUMA, golden_pair, ref_fsim

# (FSIMc, FSIM) from piq.fsim(x, y, data_range=1., chromatic=True / False) in float64
PIQ_CROPS = {  # crop (row0, row1, col0, col1) of golden_pair(128): non-square and odd sizes
    (0, 96, 0, 80): (0.9266534585014485, 0.9516756196773503),
    (10, 85, 20, 81): (0.9295817786363384, 0.9561948736093556),
}
PIQ_MASKED_256 = (0.9694618015089336, 0.9785051367470725)  # black background, cryo shifted by 3 px


@pytest.mark.parametrize("h", [256, 128, 64])
def test_golden_values(h):
    _, cryo, col, _ = golden_pair(h)
    assert fsim(col, cryo) == pytest.approx(GOLDEN[h][2], abs=1e-6)
    assert fsim(col, cryo, chromatic=False) == pytest.approx(GOLDEN[h][3], abs=1e-6)
    assert fsim(col.astype(np.float32), cryo.astype(np.float32)) == pytest.approx(GOLDEN[h][2], abs=1e-5)


@pytest.mark.parametrize("crop", list(PIQ_CROPS))
def test_piq_values_on_odd_and_non_square_planes(crop):
    _, cryo, col, _ = golden_pair(128)
    r0, r1, c0, c1 = crop
    a, b = col[r0:r1, c0:c1], cryo[r0:r1, c0:c1]
    fsimc, lum = PIQ_CROPS[crop]
    assert fsim(a, b) == pytest.approx(fsimc, abs=1e-9)
    assert fsim(a, b, chromatic=False) == pytest.approx(lum, abs=1e-9)


def test_piq_values_with_black_background():
    mri, cryo, col, _ = golden_pair(256)
    mask = (mri > 0.35)[..., None]
    a, b = col * mask, np.roll(cryo, 3, axis=1) * mask
    assert fsim(a, b) == pytest.approx(PIQ_MASKED_256[0], abs=1e-9)
    assert fsim(a, b, chromatic=False) == pytest.approx(PIQ_MASKED_256[1], abs=1e-9)


def test_large_planes_are_pooled_like_featuresim():
    _, cryo, col, _ = golden_pair(256)
    up = np.ones((2, 2, 1))
    assert fsim(np.kron(col, up), np.kron(cryo, up)) == pytest.approx(GOLDEN[256][2], abs=1e-6)


def test_matches_numpy_reference_transcription():
    _, cryo, col, _ = golden_pair(64)
    a, b = col[:, :50], np.flipud(cryo[:, :50])
    assert fsim(a, b) == pytest.approx(ref_fsim(a, b), abs=1e-9)


def test_properties():
    _, cryo, col, y = golden_pair(64)
    assert fsim(col, col) == pytest.approx(1.0, abs=1e-12)
    assert fsim(col, cryo) == pytest.approx(fsim(cryo, col), abs=1e-12)
    assert fsim(col, cryo) <= fsim(col, cryo, chromatic=False)
    grey = np.repeat(y[..., None], 3, axis=2)
    assert fsim(col, grey) < fsim(col, grey, chromatic=False)  # the chroma term sees the missing colour
    assert fsim(y, cryo) == pytest.approx(fsim(y, cryo @ LUMA), abs=1e-12)  # grey side: luma FSIM


def test_batches():
    _, cryo, col, _ = golden_pair(64)
    x = torch.from_numpy(np.stack([col, cryo]).transpose(0, 3, 1, 2))
    y = torch.from_numpy(np.stack([cryo, cryo]).transpose(0, 3, 1, 2))
    values = fsim(x, y)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(GOLDEN[64][2], abs=1e-6)
    assert values[1].item() == pytest.approx(1.0, abs=1e-12)


def test_too_small():
    with pytest.raises(InputError, match="at least 32"):
        fsim(np.zeros((16, 40)), np.zeros((16, 40)))


def _import_piq():
    """piq with a stub torchvision (its fsim never uses torchvision); None when even that fails."""
    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            sub = Stub(f"{self.__name__}.{name}")
            sub.__spec__ = importlib.machinery.ModuleSpec(sub.__name__, None)
            sys.modules[sub.__name__] = sub
            setattr(self, name, sub)
            return sub

        def __call__(self, *args, **kwargs):
            return self

        def __mro_entries__(self, bases):
            return (object,)

    saved = {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}
    stub = Stub("torchvision")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    sys.modules["torchvision"] = stub
    try:
        import piq
        return piq
    except Exception:
        return None
    finally:
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_against_live_piq():
    piq = _import_piq()
    if piq is None:
        pytest.skip("piq not importable here (it imports torchvision); covered by the stored piq values")
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((2, 3, 70, 90)))
    y = (x + 0.1 * torch.from_numpy(rng.standard_normal(x.shape))).clamp(0, 1)
    for chromatic in (True, False):
        expected = piq.fsim(x, y, data_range=1.0, reduction="none", chromatic=chromatic)
        np.testing.assert_allclose(fsim(x, y, chromatic=chromatic).numpy(), expected.numpy(), atol=1e-9)
