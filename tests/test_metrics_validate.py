"""Bad input gives a clear InputError, never a number: a metric on NaN, on 0–255 data or on
mismatched planes would still return a plausible-looking one (issue 4)."""
import numpy as np
import pytest
import torch

from core.errors import InputError
from core.metrics import colorfulness, fsim, ms_ssim, ssim, stsim

METRICS = [ssim, ms_ssim, fsim, stsim]
GOOD = np.full((64, 64), 0.5)


@pytest.mark.parametrize("metric", METRICS)
def test_mismatched_shapes(metric):
    with pytest.raises(InputError, match="shapes differ"):
        metric(GOOD, np.full((64, 60), 0.5))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf(metric, bad):
    img = GOOD.copy()
    img[3, 4] = bad
    with pytest.raises(InputError, match="1 NaN or infinite"):
        metric(img, GOOD)


@pytest.mark.parametrize("metric", METRICS)
def test_wrong_range(metric):
    with pytest.raises(InputError, match=r"values must lie in \[0, 1\]"):
        metric(GOOD * 255, GOOD)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        metric(GOOD * 2 - 1.2, GOOD)


def test_round_off_outside_the_range_is_clipped():
    img = GOOD.copy()
    img[0, 0], img[0, 1] = -1e-6, 1 + 1e-6
    assert ssim(img, img) == pytest.approx(1.0)


@pytest.mark.parametrize("metric, size", [(ssim, 10), (ms_ssim, 10), (fsim, 31), (stsim, 48)])
def test_too_small(metric, size):
    with pytest.raises(InputError, match="at least"):
        metric(np.zeros((size, 80)), np.zeros((size, 80)))


def test_wrong_channels_and_dimensions():
    with pytest.raises(InputError, match="channels"):
        ssim(np.zeros((64, 64, 4)), np.zeros((64, 64, 4)))
    with pytest.raises(InputError, match="H×W"):
        ssim(np.zeros((2, 64, 64, 3)), np.zeros((2, 64, 64, 3)))
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        ssim(torch.zeros(64, 64), torch.zeros(64, 64))
    with pytest.raises(InputError, match="numpy array or a torch tensor"):
        ssim([[0.5]], [[0.5]])
    with pytest.raises(InputError, match="dtype"):
        colorfulness(np.zeros((8, 8, 3), dtype=bool))


def test_batch_sizes_must_match():
    with pytest.raises(InputError, match="shapes differ"):
        ssim(torch.zeros(2, 1, 32, 32), torch.zeros(3, 1, 32, 32))


def test_message_names_the_argument():
    with pytest.raises(InputError) as info:
        fsim(GOOD, GOOD * 255)
    assert str(info.value).startswith("b: ")
