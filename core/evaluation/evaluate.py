"""Table-I style evaluation of checkpoints on the test planes, with reference rows (docs/method.md).

Rows, in this order:

- reference rows, computed without learning — the true colorization itself (phantom data only:
  what a perfect colorization scores on the paper's metrics), the registered cryosection itself,
  the intensity→colour lookup table fitted on the training planes, and (phantom data only) the
  tissue oracle: the MRI's true labels painted with each tissue's mean training colour, the
  floor of any colorization that paints tissues (`core.evaluation.lookup`);
- per checkpoint, one row per output of G_m→ĉ: ĉ, c′ and their fusions (``fused``, ``guided``),
  each a colorization in its own right.

Columns: the paper's CF, ΔCF, SSIM, MS-SSIM, STSIM, FSIM as mean ± std over planes, and on
phantom data ΔE (CIEDE2000) and PSNR against the true colorization. ΔE is what counts; SSIM against
the MRI rewards keeping the MRI's lightness, which the truth row shows by scoring low on it.
The CSV carries every column ``core.metrics.table_row`` produces, per-tissue ΔE included.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from core.atomic import write_text
from core.labels import LabelTable
from core.model.outputs import OUTPUTS
from core.dataset.plane_data import PlaneData, resize_batch
from core.evaluation.lookup import IntensityLookup, TissueLookup

TRUTH_ROW, CRYO_ROW, LOOKUP_ROW = "true colorization", "registered cryosection", "lookup table"
#: Phantom data only: the true MRI labels painted with each tissue's mean training colour.
ORACLE_ROW = "tissue oracle"
#: Markdown columns: (metric key, header with the better direction).
MAIN_COLUMNS = (("CF", "CF ↑"), ("dCF", "ΔCF ↓"), ("SSIM", "SSIM ↑"), ("MS-SSIM", "MS-SSIM ↑"),
                ("STSIM", "STSIM ↑"), ("FSIM", "FSIM ↑"), ("dE", "ΔE ↓"), ("PSNR", "PSNR ↑"))

Batch = dict[str, torch.Tensor]
Source = Callable[[Batch], dict[str, torch.Tensor]]
#: Every process's object in rank order (`core.training.distributed.gather_objects`); alone: [obj].
Gather = Callable[[Any], list[Any]]


def alone(obj: Any) -> list[Any]:
    """The `Gather` of a single process."""
    return [obj]


@dataclass
class Table:
    """Rows in order: name → kind ("reference"/"model") and mean ± std per metric."""

    kinds: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    planes: int = 0

    def mean(self, row: str, metric: str) -> float:
        return self.stats[row].get(metric, (math.nan, math.nan))[0]

    def columns(self) -> list[tuple[str, str]]:
        present = set().union(*(s.keys() for s in self.stats.values())) if self.stats else set()
        return [(key, header) for key, header in MAIN_COLUMNS if key in present]

    def markdown(self, title: str = "") -> str:
        columns = self.columns()
        lines = [f"### {title}\n"] if title else []
        lines += ["| row | " + " | ".join(h for _, h in columns) + " |",
                 "| --- | " + " | ".join("---:" for _ in columns) + " |"]
        for name, kind in self.kinds.items():
            label = f"*{name}* (reference)" if kind == "reference" else name
            cells = [_pm(*self.stats[name].get(key, (math.nan, math.nan))) for key, _ in columns]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append(f"\nMean ± std over {self.planes} test planes. Reference rows involve no learning.")
        if ORACLE_ROW in self.kinds:
            lines.append(f"The tissue oracle ({self.mean(ORACLE_ROW, 'dE'):.2f}) paints the true labels of the MRI "
                         "with each tissue's mean training colour: a perfect segmentation. Its ΔE is the "
                         "cryosection's texture and exposure, which no MRI holds, so no colorization of tissues "
                         "can go far below it.")
        if TRUTH_ROW in self.kinds:
            lines.append(f"The true colorization scores SSIM {self.mean(TRUTH_ROW, 'SSIM'):.3f} against the MRI: "
                         "tissue lightness in a cryosection does not follow T1 contrast, so SSIM to the MRI is "
                         "no measure of correct colour; ΔE to the true colorization is.")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        keys = sorted(set().union(*(s.keys() for s in self.stats.values()))) if self.stats else []
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["row", "kind", "planes"] + [f"{k} {part}" for k in keys for part in ("mean", "std")])
        for name, kind in self.kinds.items():
            values = [self.stats[name].get(k, (math.nan, math.nan)) for k in keys]
            writer.writerow([name, kind, self.planes] + [_num(v) for pair in values for v in pair])
        return buffer.getvalue()

    def write(self, folder: str | os.PathLike, stem: str = "table", title: str = "") -> tuple[Path, Path]:
        folder = Path(folder)
        md, table_csv = folder / f"{stem}.md", folder / f"{stem}.csv"
        write_text(md, self.markdown(title))
        write_text(table_csv, self.csv())
        return md, table_csv


def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def _num(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"


def has_mri_labels(data: PlaneData) -> bool:
    """Whether the test planes carry the true colorization and the MRI's true labels (phantom
    data), which the tissue oracle row needs."""
    return data.has_truth and "mri_labels" in data.test[0]


def reference_sources(data: PlaneData, lookup: IntensityLookup,
                      tissues: TissueLookup | None = None) -> list[tuple[str, Source]]:
    """The rows computed without learning, in table order (the tissue oracle where ``tissues``
    is given, see `has_mri_labels`)."""
    sources: list[tuple[str, Source]] = []
    if data.has_truth:
        sources.append(("reference", lambda b: {TRUTH_ROW: b["truth"]}))
    sources.append(("reference", lambda b: {CRYO_ROW: b["cryo"]}))
    sources.append(("reference", lambda b: {LOOKUP_ROW: lookup(b["mri"])}))
    if tissues is not None:
        sources.append(("reference", lambda b: {ORACLE_ROW: tissues(b["mri_labels"])}))
    return sources


def checkpoint_source(path: str | os.PathLike, name: str, device: str | torch.device | None = None) -> Source:
    """Every output a checkpoint's G_m→ĉ offers, as rows ``<name> ĉ``, ``<name> c′``, ``<name> fused``,
    ``<name> guided``."""
    from core.inference import Colorizer

    colorizer = Colorizer.from_checkpoint(path, device=device)
    outputs = list(colorizer.outputs)

    def run(batch: Batch) -> dict[str, torch.Tensor]:
        result = served_planes(colorizer, batch, outputs)
        return {f"{name} {OUTPUTS[k].label}": v for k, v in result.items()}
    return run


def served_planes(colorizer, batch: Batch, outputs: list[str]) -> dict[str, torch.Tensor]:
    """The planes colorized as the product serves them: framed as in training, and, where the
    planes carry the MRI's labels (phantom data), every pixel outside the body painted with the
    background, as `mricolor colorize` and the viewer paint it outside the MRI's body region (a
    model trained with `loss.body_only` never learnt to paint the air). Without MRI labels every
    pixel goes through the network."""
    labels = batch.get("mri_labels")
    body = None if labels is None else (labels > 0).cpu().numpy()
    return colorizer.colorize_planes(batch["mri"], outputs=outputs, body=body)


def checkpoint_image_size(paths: Sequence[str | os.PathLike]) -> int | None:
    """The training image size all ``paths`` record, or None when they disagree or do not say."""
    from core.model.checkpoint import load_checkpoint

    sizes = {load_checkpoint(p).extra.get("image_size") for p in paths}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def _batches(dataset: Dataset, planes: int | None, batch_size: int, image_size: int | None,
             part: tuple[int, int] = (0, 1)):
    """(index, batch) of the test batches, resized to ``image_size`` when given, of the first
    ``planes`` planes; with ``part`` (rank, world size) only every world-th batch from the rank-th,
    so several processes share the work (each batch has the same planes whatever the split)."""
    count = len(dataset) if planes is None else min(planes, len(dataset))
    chunks = [list(range(i, min(i + batch_size, count))) for i in range(0, count, batch_size)]
    rank, world = part
    mine = list(range(rank, len(chunks), world))
    loader = DataLoader(dataset, batch_sampler=[chunks[i] for i in mine], collate_fn=getattr(dataset, "collate", None))
    for index, batch in zip(mine, loader):
        batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        yield index, resize_batch(batch, image_size) if image_size is not None else batch


def evaluate(sources: Sequence[tuple[str, Source]], dataset: Dataset, label_table: LabelTable | None = None, *,
             planes: int | None = None, batch_size: int = 8, image_size: int | None = None,
             part: tuple[int, int] = (0, 1), gather: Gather = alone) -> Table:
    """Score every row of every source on the test planes and aggregate to mean ± std.

    Several processes share the planes: each scores its ``part`` (rank, world size) and ``gather``
    brings every process's scores to all, in the order one process would have found them. Under
    DDP this keeps every rank working, instead of the others waiting (past the process group's
    timeout) while rank 0 scores the whole table."""
    from core.metrics import aggregate, table_row

    scored: list[tuple[int, str, str, dict]] = []
    for index, batch in _batches(dataset, planes, batch_size, image_size, part):
        truth = batch.get("truth")
        labels = batch.get("mri_labels") if truth is not None else None
        for kind, source in sources:
            for name, image in source(batch).items():
                scored.append((index, kind, name, table_row(
                    batch["mri"].cpu(), image.float().clamp(0, 1).cpu(), batch["cryo"].cpu(),
                    None if truth is None else truth.cpu(), None if labels is None else labels.cpu(), label_table)))
    everything = [entry for share in gather(scored) for entry in share]
    everything.sort(key=lambda entry: entry[0])                       # stable: rows keep their order
    kinds: dict[str, str] = {}
    per_row: dict[str, list[dict]] = {}
    for _, kind, name, row in everything:
        kinds.setdefault(name, kind)
        per_row.setdefault(name, []).append(row)
    count = len(dataset) if planes is None else min(planes, len(dataset))
    return Table(kinds, {name: aggregate(rows) for name, rows in per_row.items()}, count)


def evaluate_checkpoints(checkpoints: Sequence[str | os.PathLike], data: PlaneData, *,
                         names: Sequence[str] | None = None, device: str | torch.device | None = None,
                         planes: int | None = None, batch_size: int = 8, image_size: int | None = None,
                         lookup_planes: int | None = 500, part: tuple[int, int] = (0, 1),
                         gather: Gather = alone) -> Table:
    """The full table: reference rows, then every output of every checkpoint. ``image_size``
    None uses the size the checkpoints were trained at (native planes when they do not agree);
    ``part`` and ``gather`` share the planes between processes (`evaluate`)."""
    if names is None:
        names = [_default_name(p) for p in checkpoints]
    if len(names) != len(checkpoints):
        raise ValueError(f"{len(names)} names for {len(checkpoints)} checkpoints")
    if image_size is None and checkpoints:
        image_size = checkpoint_image_size(checkpoints)
    lookup = IntensityLookup.fit(data.train, max_planes=lookup_planes, image_size=image_size)
    tissues = (TissueLookup.fit(data.train, max_planes=lookup_planes, image_size=image_size)
               if has_mri_labels(data) else None)
    sources = reference_sources(data, lookup, tissues)
    sources += [("model", checkpoint_source(p, n, device)) for p, n in zip(checkpoints, names)]
    return evaluate(sources, data.test, data.label_table, planes=planes, batch_size=batch_size,
                    image_size=image_size, part=part, gather=gather)


def _default_name(path: str | os.PathLike) -> str:
    """A run's folder name for ``run/model.safetensors``, else the file's stem."""
    p = Path(path)
    return p.parent.name if p.name == "model.safetensors" and p.parent.name else p.stem if p.is_file() else p.name


def choose_serve(checkpoint: str | os.PathLike, data: PlaneData, *, device: str | torch.device | None = None,
                 planes: int | None = 200, image_size: int | None = None, part: tuple[int, int] = (0, 1),
                 gather: Gather = alone) -> tuple[str, dict[str, float]]:
    """The output (ĉ, c′, fused or guided) with the lowest mean ΔE to the true colorization on the test
    planes, and every output's ΔE; ("c_hat", {}) when the data has no truth. ``part`` and
    ``gather`` share the planes between processes (`evaluate`)."""
    from core.inference import Colorizer
    from core.metrics import delta_e

    colorizer = Colorizer.from_checkpoint(checkpoint, device=device)
    outputs = list(colorizer.outputs)
    if not data.has_truth or len(outputs) == 1:
        return "c_hat", {}
    errors: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
    for _, batch in _batches(data.test, planes, 8, image_size, part):
        result = served_planes(colorizer, batch, outputs)
        for k in outputs:
            errors[k].append(np.asarray(delta_e(result[k].float().clamp(0, 1).cpu(), batch["truth"].cpu())))
    shares = gather(errors)
    means = {k: float(np.concatenate([e for share in shares for e in share[k]]).mean()) for k in outputs}
    return min(means, key=means.get), means
