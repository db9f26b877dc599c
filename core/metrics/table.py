"""One row of the paper's Table I for a set of planes, and its aggregation to mean ± std.

Pairs as in the paper's Table I (docs/metrics.md): CF of the colorized plane; ΔCF between the
cryosection and the colorized plane; SSIM and MS-SSIM between the MRI and the colorized plane's
BT.601 luma; FSIM (FSIMc, both RGB) and STSIM (STSIM-2) between the cryosection and the colorized
plane. Companion values that cost nothing extra are kept beside them (luma FSIM, STSIM-1, the
MS-SSIM scale count, CF of the cryosection), and on the phantom ΔE and PSNR against the true
colorization, overall and per tissue. Work shared between a metric and its companion (the finest
SSIM scale, the phase congruency maps, the steerable pyramid) is done once.

Column names (stable: the evaluate command writes them to CSV):
  CF, dCF, SSIM, MS-SSIM, STSIM, FSIM — the paper's six, in Table I's order (``PAPER_COLUMNS``);
  CF_cryo, |dCF|, MS-SSIM_scales, FSIM_lum, STSIM-1 — companions;
  dE, PSNR, dE[<tissue>], PSNR[<tissue>] — truth metrics (when a truth plane is given);
  dCF_dataset — added by ``aggregate``: |mean CF_cryo − mean CF| over all planes (no std).
Without a cryosection plane the columns comparing with it are absent.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from core.errors import InputError
from core.labels import LabelTable
from core.metrics._validate import image_batch, image_pair, require_size
from core.metrics.color import batch_colorfulness
from core.metrics.fsim import MIN_SIZE as FSIM_MIN_SIZE
from core.metrics.fsim import fsim_both
from core.metrics.ssim import WINDOW as SSIM_WINDOW
from core.metrics.ssim import ms_ssim_scales, ssim_and_ms_ssim
from core.metrics.stsim import MIN_SIZE as STSIM_MIN_SIZE
from core.metrics.stsim import stsim_terms
from core.metrics.truth import delta_e, psnr

#: Smallest plane side a table row can be scored at (the windows of STSIM and FSIM).
MIN_SIZE = max(STSIM_MIN_SIZE, FSIM_MIN_SIZE)
#: Pairs whose image columns are computed together on a CPU. One: the intermediate maps of one
#: pair (a few hundred kB at 256²) stay in the core's cache, while those of a batch of 8 (MBs each)
#: stream from memory at every elementwise operation, and batched ``conv2d`` takes a slower path:
#: together they cost more per pair than batching saves in per-call overhead (benchmarks/
#: bench_metrics.py, "all six, batch of 8"). On a GPU the batch goes whole.
CPU_CHUNK = 1

PAPER_COLUMNS = ("CF", "dCF", "SSIM", "MS-SSIM", "STSIM", "FSIM")
COMPANION_COLUMNS = ("CF_cryo", "|dCF|", "MS-SSIM_scales", "FSIM_lum", "STSIM-1")

Value = float | np.ndarray


def table_row(mri: np.ndarray | torch.Tensor, colorized: np.ndarray | torch.Tensor,
              cryo: np.ndarray | torch.Tensor | None, truth: np.ndarray | torch.Tensor | None = None,
              labels: np.ndarray | torch.Tensor | None = None,
              label_table: LabelTable | None = None,
              body: np.ndarray | torch.Tensor | None = None) -> dict[str, Value]:
    """All Table-I metrics for one set of planes: floats for numpy planes, arrays (N,) for (N, C, H, W) batches.

    ``mri`` is the grey network input (H×W, or (N, 1, H, W)); ``colorized``, ``cryo`` and ``truth`` are RGB
    in [0, 1]; ``labels`` (integer, same plane size) splits the truth metrics per tissue, named from
    ``label_table`` when given (else "label <id>"). Columns as in the module docstring; without a
    cryosection (an MRI opened alone) the columns that compare with it (dCF, STSIM, FSIM and their
    companions) are left out rather than guessed. ``body`` (bool, same plane size): ``dE`` and
    ``PSNR`` average over the body's pixels only, as the whole-volume evaluation scores, so the
    air (background in both images, ΔE ≈ 0) does not dilute them (NaN for a plane without body);
    None: over the whole plane, as the paper's planes are scored.
    """
    col, batched = image_batch(colorized, "colorized")
    if col.shape[1] != 3:
        raise InputError("colorized", "the colorized plane must be RGB")
    grey, col_luma, _ = image_pair(mri, colorized, ("mri", "colorized"))
    if grey.shape[1] != 1:
        raise InputError("mri", "the MRI plane must be grey (one channel)")
    if labels is not None and truth is None:
        raise InputError("labels", "per-tissue metrics need the true colorization (truth=...)")
    require_size(col, SSIM_WINDOW, "table_row", "the SSIM window")
    values = _image_columns(grey, col, col_luma, cryo)
    if truth is not None:
        for name, metric in (("dE", delta_e), ("PSNR", psnr)):
            values[name] = metric(col, truth) if body is None else _inside_body(metric, col, truth, body)
        if labels is not None:
            for name, metric in (("dE", delta_e), ("PSNR", psnr)):
                for label_id, value in metric(col, truth, labels).items():
                    values[f"{name}[{_tissue(label_id, label_table)}]"] = value
    ordered = [k for k in (*PAPER_COLUMNS, *COMPANION_COLUMNS) if k in values]
    ordered += [k for k in values if k not in ordered]
    return {key: _plain(values[key], batched) for key in ordered}


def _inside_body(metric, col: torch.Tensor, truth, body: np.ndarray | torch.Tensor) -> Value | torch.Tensor:
    """``metric`` (`delta_e` or `psnr`) of ``col`` against ``truth`` over the ``body`` pixels only."""
    inside = body.detach().cpu().numpy() if isinstance(body, torch.Tensor) else np.asarray(body)
    if inside.dtype != np.bool_:
        raise InputError("body", f"the body must be a boolean mask, got dtype {inside.dtype}")
    scores = metric(col, truth, inside.astype(np.int64))
    return scores.get(1, torch.full((col.shape[0],), float("nan"), dtype=torch.float64))   # no body: NaN per plane


def _image_columns(grey: torch.Tensor, col: torch.Tensor, col_luma: torch.Tensor,
                   cryo: np.ndarray | torch.Tensor | None) -> dict[str, torch.Tensor]:
    """CF, SSIM, MS-SSIM and the cryosection columns, ``CPU_CHUNK`` pairs at a time on a CPU."""
    step = CPU_CHUNK if col.device.type == "cpu" else col.shape[0]
    if col.shape[0] <= step:
        return _pair_columns(grey, col, col_luma, cryo)
    parts = [_pair_columns(grey[i:i + step], col[i:i + step], col_luma[i:i + step],
                           None if cryo is None else cryo[i:i + step]) for i in range(0, col.shape[0], step)]
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def _pair_columns(grey: torch.Tensor, col: torch.Tensor, col_luma: torch.Tensor,
                  cryo: np.ndarray | torch.Tensor | None) -> dict[str, torch.Tensor]:
    cf = batch_colorfulness(col)
    ssim_value, ms_value = ssim_and_ms_ssim(grey, col_luma)
    values = {"CF": cf, "SSIM": ssim_value, "MS-SSIM": ms_value,
              "MS-SSIM_scales": torch.full_like(cf, ms_ssim_scales(*col.shape[-2:]))}
    if cryo is not None:
        values.update(_cryosection_columns(col, cryo, cf))
    return values


def _cryosection_columns(col: torch.Tensor, cryo: np.ndarray | torch.Tensor, cf: torch.Tensor) -> dict:
    """ΔCF, STSIM and FSIM of the colorized plane against the cryosection, with their companions."""
    col, ref, _ = image_pair(col, cryo, ("colorized", "cryo"))
    if ref.shape[1] != 3:
        raise InputError("cryo", "the cryosection plane must be RGB")
    require_size(col, MIN_SIZE, "table_row", "the windows of STSIM and FSIM")
    cf_cryo = batch_colorfulness(ref)
    fsim_lum, fsim_col = fsim_both(col, ref, chromatic=True)
    single, cross = stsim_terms(col, ref)
    return {"dCF": cf_cryo - cf, "STSIM": torch.cat([single, cross], dim=1).mean(dim=1), "FSIM": fsim_col,
            "CF_cryo": cf_cryo, "|dCF|": (cf_cryo - cf).abs(), "FSIM_lum": fsim_lum, "STSIM-1": single.mean(dim=1)}


def aggregate(rows: Iterable[Mapping[str, Value]]) -> dict[str, tuple[float, float]]:
    """Mean ± std (population, ddof 0) of every column over all planes of ``rows`` (single or batched).

    NaN entries (a tissue absent from a plane) are left out of that column; a column with no value
    gives (nan, nan). Adds ``dCF_dataset`` = (|mean CF_cryo − mean CF|, nan), DDColor-style ΔCF
    over the whole set, beside the per-plane signed ``dCF`` and ``|dCF|``.
    """
    columns: dict[str, list[np.ndarray]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(np.atleast_1d(np.asarray(value, dtype=np.float64)))
    out = {}
    with np.errstate(invalid="ignore"):
        for key, parts in columns.items():
            values = np.concatenate(parts)
            values = values[~np.isnan(values)]
            out[key] = (float(values.mean()), float(values.std())) if len(values) else (float("nan"), float("nan"))
    if "CF" in out and "CF_cryo" in out:
        out["dCF_dataset"] = (abs(out["CF_cryo"][0] - out["CF"][0]), float("nan"))
    return out


def _tissue(label_id: int, label_table: LabelTable | None) -> str:
    return label_table.name(label_id) if label_table is not None else f"label {label_id}"


def _plain(value: torch.Tensor | float, batched: bool) -> Value:
    """Table values leave torch: numpy arrays (N,) for batches, floats for single planes."""
    array = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return array if batched else float(array.reshape(-1)[0])
