"""The whole-volume evaluation as tables: one row per painter, subjects side by side (Markdown),
and every score of every subject in long form (CSV)."""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from core.atomic import write_text
from core.evaluation.volumes import VolumeResult
from core.labels import LabelTable

#: Tissues with at least this share of the pooled body voxels get a column in the per-tissue table.
TISSUE_SHARE = 0.01


def _rows(results: list[VolumeResult]) -> dict[str, list[VolumeResult]]:
    rows: dict[str, list[VolumeResult]] = {}
    for r in results:
        rows.setdefault(r.row, []).append(r)
    return rows


def main_table(results: list[VolumeResult]) -> str:
    """Row | body ΔE00 per subject | mean | SSIM(MRI, L*) | background L* std | banding | s/volume."""
    rows = _rows(results)
    subjects = list(dict.fromkeys(r.subject for r in results))
    head = ["row", *(f"ΔE {s}" for s in subjects), "ΔE mean ↓", "SSIM(MRI, L*)", "background L* std ↓",
            "banding (max) ↓", "MRI's banding", "s / volume"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, rs in rows.items():
        by_subject = {r.subject: r for r in rs}
        cells = [f"{by_subject[s].scores.delta_e:.2f}" if s in by_subject else "—" for s in subjects]
        cells += [f"{np.mean([r.scores.delta_e for r in rs]):.2f}",
                  f"{np.mean([r.scores.structure for r in rs]):.3f}",
                  f"{np.nanmax([r.scores.background_std for r in rs]):.2f}",
                  f"{max(max(r.scores.banding.values()) for r in rs):.2f}",
                  f"{max(max(r.scores.mri_banding.values()) for r in rs):.2f}",
                  f"{np.mean([r.seconds for r in rs]):.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def best_model_row(results: list[VolumeResult]) -> tuple[str, float] | None:
    """The model row (not a *reference*) with the lowest ΔE averaged over every subject, and that
    mean: how a model is chosen on validation subjects."""
    means = {name: float(np.mean([r.scores.delta_e for r in rs])) for name, rs in _rows(results).items()
             if not name.startswith("*")}
    return min(means.items(), key=lambda kv: kv[1]) if means else None


def tissue_table(results: list[VolumeResult], table: LabelTable | None) -> str:
    """Mean ΔE00 per tissue (voxels pooled over subjects), tissues with ≥ ``TISSUE_SHARE`` of the body."""
    rows = _rows(results)
    first = next(iter(rows.values()))
    counts: dict[int, int] = {}
    for r in first:
        for tissue, (_, n) in r.scores.per_tissue.items():
            counts[tissue] = counts.get(tissue, 0) + n
    total = sum(counts.values())
    tissues = [t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= TISSUE_SHARE * total]
    names = [table.name(t) if table is not None and t in table else str(t) for t in tissues]
    lines = ["| row | " + " | ".join(n.replace("_", " ") for n in names) + " |",
             "| --- |" + " ---: |" * len(names)]
    for name, rs in rows.items():
        cells = []
        for t in tissues:
            pairs = [r.scores.per_tissue[t] for r in rs if t in r.scores.per_tissue]
            n = sum(c for _, c in pairs)
            cells.append(f"{sum(m * c for m, c in pairs) / n:.2f}" if n else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    shares = ", ".join(f"{nm.replace('_', ' ')} {counts[t] / total:.0%}" for t, nm in zip(tissues, names))
    return "\n".join(lines) + f"\n\nShare of the body's voxels: {shares}.\n"


#: The brain tissues whose mean colour is compared with the palette, and the pair that must stay apart.
BRAIN_TISSUES = ("grey_matter", "white_matter", "csf")


def pooled_lab(rs: list[VolumeResult], tissue: int) -> np.ndarray | None:
    """Mean L*a*b* of ``tissue`` over the subjects of one row, weighted by its voxels (None if absent)."""
    pairs = [(np.asarray(r.scores.tissue_lab[tissue]), r.scores.per_tissue[tissue][1]) for r in rs
             if tissue in r.scores.tissue_lab]
    n = sum(c for _, c in pairs)
    return sum(m * c for m, c in pairs) / n if n else None


def palette_lab(table: LabelTable) -> dict[str, tuple[int, np.ndarray]]:
    """Brain tissue name → (its id, its palette colour in L*a*b*), for the tissues of ``table``."""
    from core.evaluation.volume_scores import lab

    return {label.name: (label.id, lab(np.asarray(label.color, dtype=np.uint8))) for label in table
            if label.name in BRAIN_TISSUES}


def brain_colours(results: list[VolumeResult], table: LabelTable) -> dict[str, dict[str, float]]:
    """Row → {tissue: ΔE00 of its mean colour to its palette colour, "grey–white": ΔE00 between the
    mean grey and white matter colours}; empty when the subjects hold no brain."""
    from skimage.color import deltaE_ciede2000

    palette = palette_lab(table)
    out: dict[str, dict[str, float]] = {}
    for name, rs in _rows(results).items():
        means = {t: pooled_lab(rs, i) for t, (i, _) in palette.items()}
        row = {t: float(deltaE_ciede2000(m, palette[t][1])) for t, m in means.items() if m is not None}
        if means.get("grey_matter") is not None and means.get("white_matter") is not None:
            row["grey–white"] = float(deltaE_ciede2000(means["grey_matter"], means["white_matter"]))
        if row:
            out[name] = row
    return out


def brain_table(results: list[VolumeResult], table: LabelTable | None) -> str:
    """Brain tissues' mean colours against the palette (empty string when no subject has a brain)."""
    colours = brain_colours(results, table) if table is not None else {}
    if not colours:
        return ""
    from skimage.color import deltaE_ciede2000

    palette = palette_lab(table)
    apart = (f"{float(deltaE_ciede2000(palette['grey_matter'][1], palette['white_matter'][1])):.2f}"
             if {"grey_matter", "white_matter"} <= set(palette) else "—")
    head = [*(f"{t.replace('_', ' ')} → palette ↓" for t in BRAIN_TISSUES), "grey–white apart ↑"]
    lines = ["| row | " + " | ".join(head) + " |", "| --- |" + " ---: |" * len(head)]
    for name, row in colours.items():
        cells = [f"{row[k]:.2f}" if k in row else "—" for k in (*BRAIN_TISSUES, "grey–white")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return ("\n".join(lines) + f"\n\nΔE00 of each tissue's mean output colour (L*a*b*, pooled over subjects) to its "
            f"palette colour; grey–white: ΔE00 between the mean grey- and white-matter colours (palette: {apart}).\n")


def long_csv(results: list[VolumeResult], table: LabelTable | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "subject", "metric", "value", "voxels"])
    for r in results:
        s = r.scores
        scalars = {"dE": s.delta_e, "SSIM(MRI, L*)": s.structure, "background L* std": s.background_std,
                   "seconds": r.seconds}
        scalars.update({f"banding {k}": v for k, v in s.banding.items()})
        scalars.update({f"MRI banding {k}": v for k, v in s.mri_banding.items()})
        for metric, value in scalars.items():
            writer.writerow([r.row, r.subject, metric, "" if math.isnan(value) else f"{value:.6g}", ""])
        for t, (value, n) in s.per_tissue.items():
            name = table.name(t) if table is not None and t in table else str(t)
            writer.writerow([r.row, r.subject, f"dE {name}", f"{value:.6g}", n])
            for channel, v in zip(("L", "a", "b"), s.tissue_lab[t]):
                writer.writerow([r.row, r.subject, f"mean {channel}* {name}", f"{v:.6g}", n])
    return buffer.getvalue()


def write_tables(results: list[VolumeResult], folder: str | os.PathLike, table: LabelTable | None,
                 title: str) -> tuple[Path, Path]:
    """``volumes.md`` (both tables, with how to read them) and ``volumes.csv`` in ``folder``."""
    folder = Path(folder)
    md = (f"### {title}\n\n{main_table(results)}\n"
          "ΔE: CIEDE2000 to the true colorization over the body's voxels, on the MRI's own grid. "
          "SSIM(MRI, L*): structure kept, in the body's box. Background: L* spread outside the body. "
          "Banding: colour change across slices over that within slices in the reformats containing the "
          "slicing axis (the MRI's own ratio beside it).\n\n"
          f"#### ΔE per tissue\n\n{tissue_table(results, table)}")
    brain = brain_table(results, table)
    if brain:
        md += f"\n#### Brain colours\n\n{brain}"
    write_text(folder / "volumes.md", md)
    write_text(folder / "volumes.csv", long_csv(results, table))
    return folder / "volumes.md", folder / "volumes.csv"
