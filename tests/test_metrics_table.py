"""The Table-I row equals the individual metrics on the paper's pairs; aggregation to mean ± std."""
import math

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.labels import Label, LabelTable
from core.metrics import (PAPER_COLUMNS, aggregate, colorfulness, delta_e, fsim, ms_ssim, psnr, ssim, stsim,
                          table_row)
from helpers_metrics import golden_pair


def planes(h=64):
    mri, cryo, col, _ = golden_pair(h)
    return mri, col, cryo


def test_row_holds_the_paper_metrics_on_the_paper_pairs():
    mri, col, cryo = planes()
    row = table_row(mri, col, cryo)
    assert list(row)[:6] == list(PAPER_COLUMNS)
    assert row["CF"] == pytest.approx(colorfulness(col))
    assert row["CF_cryo"] == pytest.approx(colorfulness(cryo))
    assert row["dCF"] == pytest.approx(colorfulness(cryo) - colorfulness(col))
    assert row["|dCF|"] == pytest.approx(abs(row["dCF"]))
    assert row["SSIM"] == pytest.approx(ssim(mri, col))
    assert row["MS-SSIM"] == pytest.approx(ms_ssim(mri, col))
    assert row["MS-SSIM_scales"] == 3
    assert row["FSIM"] == pytest.approx(fsim(col, cryo))
    assert row["FSIM_lum"] == pytest.approx(fsim(col, cryo, chromatic=False))
    assert row["STSIM"] == pytest.approx(stsim(col, cryo))
    assert row["STSIM-1"] == pytest.approx(stsim(col, cryo, version=1))
    assert all(isinstance(v, float) for v in row.values())


def test_without_cryosection_the_columns_that_need_it_are_absent():
    mri, col, cryo = planes()
    row = table_row(mri, col, None, truth=cryo)
    assert list(row) == ["CF", "SSIM", "MS-SSIM", "MS-SSIM_scales", "dE", "PSNR"]
    assert row["SSIM"] == pytest.approx(ssim(mri, col))


def test_truth_columns_per_tissue_with_names():
    mri, col, cryo = planes()
    labels = np.digitize(mri, [0.5]).astype(np.int64)
    table = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "liver", "digestive", (150, 60, 50))])
    row = table_row(mri, col, cryo, truth=cryo, labels=labels, label_table=table)
    assert row["dE"] == pytest.approx(delta_e(col, cryo))
    assert row["PSNR"] == pytest.approx(psnr(col, cryo))
    assert row["dE[liver]"] == pytest.approx(delta_e(col, cryo, labels)[1])
    assert row["PSNR[background]"] == pytest.approx(psnr(col, cryo, labels)[0])
    assert "dE[label 1]" in table_row(mri, col, cryo, truth=cryo, labels=labels)


def test_truth_columns_over_the_body_only():
    from skimage.color import deltaE_ciede2000, rgb2lab

    mri, col, cryo = planes()
    body = np.zeros(mri.shape, dtype=bool)
    body[10:50, 5:40] = True
    air_col, air_truth = col.copy(), cryo.copy()
    air_col[~body], air_truth[~body] = 20 / 255, 20 / 255            # background alike in both: ΔE 0 there
    row = table_row(mri, air_col, None, truth=air_truth, body=body)
    want = deltaE_ciede2000(rgb2lab(air_col[body]), rgb2lab(air_truth[body])).mean()
    assert row["dE"] == pytest.approx(want, rel=1e-6)
    whole = table_row(mri, air_col, None, truth=air_truth)["dE"]
    assert whole == pytest.approx(want * body.mean(), rel=1e-6)     # the air dilutes the whole plane's mean
    mse = ((air_col[body] - air_truth[body]) ** 2).mean()
    assert row["PSNR"] == pytest.approx(-10 * np.log10(mse), rel=1e-6)
    assert math.isnan(table_row(mri, col, None, truth=cryo, body=np.zeros_like(body))["dE"])
    one = table_row(torch.from_numpy(mri)[None, None].float(), torch.from_numpy(col).permute(2, 0, 1)[None].float(),
                    None, truth=torch.from_numpy(cryo).permute(2, 0, 1)[None].float(), body=np.zeros((1, *body.shape), bool))
    assert one["dE"].shape == (1,) and np.isnan(one["dE"]).all()          # a batch of one keeps its shape
    with pytest.raises(InputError, match="boolean"):
        table_row(mri, col, None, truth=cryo, body=body.astype(np.uint8))


def test_batched_row_equals_rows_of_single_planes():
    sets = [planes(64), tuple(np.flip(p, axis=1).copy() for p in planes(64))]
    single = [table_row(*s) for s in sets]

    def batch(i):
        return torch.from_numpy(np.stack([s[i] if s[i].ndim == 3 else s[i][..., None] for s in sets])
                                .transpose(0, 3, 1, 2)).float()

    batched = table_row(batch(0), batch(1), batch(2))
    for key, values in batched.items():
        assert values.shape == (2,)
        np.testing.assert_allclose(values, [r[key] for r in single], atol=2e-5, err_msg=key)


def test_aggregate_mean_std_and_dataset_dcf():
    rows = [{"CF": 0.2, "CF_cryo": 0.3, "dE[liver]": 4.0},
            {"CF": np.array([0.4, 0.6]), "CF_cryo": np.array([0.3, 0.3]), "dE[liver]": np.array([np.nan, 2.0])}]
    out = aggregate(rows)
    assert out["CF"] == pytest.approx((0.4, np.std([0.2, 0.4, 0.6])))
    assert out["dE[liver]"] == pytest.approx((3.0, 1.0))  # the plane without liver is left out
    value, spread = out["dCF_dataset"]
    assert value == pytest.approx(0.1) and math.isnan(spread)
    assert all(math.isnan(v) for v in aggregate([{"dE[x]": float("nan")}])["dE[x]"])


def test_aggregate_of_real_rows():
    rows = [table_row(*planes(h)) for h in (128, 64)]
    out = aggregate(rows)
    assert out["SSIM"][0] == pytest.approx((rows[0]["SSIM"] + rows[1]["SSIM"]) / 2)
    assert out["MS-SSIM_scales"] == (3.5, 0.5)


def test_bad_planes():
    mri, col, cryo = planes()
    with pytest.raises(InputError, match="grey"):
        table_row(col, col, cryo)
    with pytest.raises(InputError, match="RGB"):
        table_row(mri, mri, cryo)
    with pytest.raises(InputError, match="truth"):
        table_row(mri, col, cryo, labels=np.zeros((64, 64), dtype=int))
    with pytest.raises(InputError, match="shapes differ"):
        table_row(mri[:60], col, cryo)


def test_a_batch_on_the_cpu_is_scored_one_pair_at_a_time_with_the_same_values(monkeypatch):
    """Batched maps of 8 pairs at 256² no longer fit in cache and cost more per pair than one pair
    at a time (benchmarks/bench_metrics.py): the image columns go pair by pair on a CPU."""
    import core.metrics.table as table

    seen = []
    real = table.ssim_and_ms_ssim
    monkeypatch.setattr(table, "ssim_and_ms_ssim", lambda grey, luma: seen.append(len(grey)) or real(grey, luma))
    pairs = [planes(64), tuple(np.ascontiguousarray(np.flip(p, axis=0)) for p in planes(64))] * 2
    as_batch = [torch.stack([torch.from_numpy(p[k].reshape(64, 64, -1)).permute(2, 0, 1) for p in pairs])
                for k in range(3)]
    batched = table_row(*as_batch)
    assert seen == [1, 1, 1, 1]
    for i, pair in enumerate(pairs):
        single = table_row(*pair)
        for name, value in single.items():
            assert batched[name][i] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, i)
