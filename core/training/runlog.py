"""What a researcher watches during a run, written by rank 0 only: a progress bar with the
running losses and throughput (or, when stderr is not a terminal, one line per logged step),
``log.csv`` (one row every ``log_every`` steps) and TensorBoard scalars under ``tensorboard/``.

The CSV is a stream: rows are appended and flushed as they come (rewriting the whole file
atomically every few steps would cost more than the step on long runs). A process killed
mid-line leaves at most one partial last line, which ``read_log`` skips; on resume the file is
rewritten atomically without the rows past the resumed step, so no step appears twice.
TensorBoard drops those steps itself (``purge_step``).
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from core.atomic import reporting_write_errors, write_text
from core.training.distributed import Context

LOG_FILE = "log.csv"
BASE_COLUMNS = ("step", "epoch", "samples", "samples_per_s")


def read_log(path: str | os.PathLike) -> tuple[list[str], list[dict[str, float]]]:
    """Columns and rows of a log CSV as floats; partial or malformed rows are skipped."""
    p = Path(path)
    if not p.is_file():
        return [], []
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            try:
                rows.append({k: float(v) for k, v in row.items() if k in columns})
            except (TypeError, ValueError):
                continue
            if len(rows[-1]) != len(columns):
                rows.pop()
    return columns, rows


def truncate_log(path: str | os.PathLike, last_step: int) -> None:
    """Keep only the rows up to ``last_step`` (atomically), e.g. when resuming from it."""
    columns, rows = read_log(path)
    if not columns:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        if row["step"] <= last_step:
            writer.writerow({k: _format(k, v) for k, v in row.items()})
    write_text(path, buffer.getvalue())


def _format(column: str, value: float) -> str:
    return str(int(value)) if column in ("step", "epoch", "samples") else repr(float(value))


class RunLog:
    """Progress bar, CSV and TensorBoard for one run; every method is a no-op off rank 0."""

    def __init__(self, ctx: Context, folder: str | os.PathLike, *, total_steps: int, start_step: int = 0,
                 description: str = "train", tensorboard: bool = True):
        self.enabled = ctx.is_main
        self.path = Path(folder) / LOG_FILE
        self._file = None
        self._writer: csv.DictWriter | None = None
        self._tb = None
        self._bar = None
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_log(self.path, start_step)
        if tensorboard:
            self._tb = _summary_writer(self.path.parent / "tensorboard", start_step + 1)
        from tqdm import tqdm

        self._bar = tqdm(total=total_steps, initial=start_step, desc=description, unit="step",
                         dynamic_ncols=True, file=sys.stderr, disable=None)

    def record(self, step: int, epoch: int, samples: int, samples_per_s: float, losses: dict[str, float]) -> None:
        """One row in the CSV and TensorBoard."""
        if not self.enabled:
            return
        row = {"step": step, "epoch": epoch, "samples": samples, "samples_per_s": samples_per_s, **losses}
        with reporting_write_errors(self.path):
            if self._writer is None:
                self._open(list(row))
            self._writer.writerow({k: _format(k, row.get(k, math.nan)) for k in self._writer.fieldnames})
            self._file.flush()
        if self._bar is None or self._bar.disable:
            shown = " ".join(f"{k} {v:.4g}" for k, v in losses.items())
            self.message(f"step {step} epoch {epoch}: {shown} | {samples_per_s:.2f} samples/s")
        if self._tb is not None:
            for name, value in losses.items():
                self._tb.add_scalar(f"loss/{name}", value, step)
            self._tb.add_scalar("throughput/samples_per_s", samples_per_s, step)

    def _open(self, columns: list[str]) -> None:
        existing, _ = read_log(self.path)
        if existing and existing != columns:
            warnings.warn(f"{self.path}: columns changed; starting a new log", RuntimeWarning, stacklevel=3)
            self.path.unlink()
            existing = []
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, lineterminator="\n")
        if not existing:
            self._writer.writeheader()

    def progress(self, step: int, losses: dict[str, float], samples_per_s: float) -> None:
        """Advance the bar to ``step`` showing the given (running) losses and throughput."""
        if self._bar is None:
            return
        shown = {k: f"{v:.3g}" for k, v in losses.items()}
        shown["samples/s"] = f"{samples_per_s:.1f}"
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(step - self._bar.n)

    def message(self, text: str) -> None:
        """A line above the bar (rank 0 only)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        for handle in (self._bar, self._tb, self._file):
            if handle is not None:
                handle.close()
        self._bar = self._tb = self._file = self._writer = None


def _summary_writer(folder: Path, purge_step: int) -> Any:
    """A TensorBoard writer, or None (with a warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("tensorboard is not installed: logging to CSV only (pip install tensorboard)",
                      RuntimeWarning, stacklevel=3)
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)
