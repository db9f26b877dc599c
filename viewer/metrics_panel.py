"""The metrics of the plane on screen, computed in the background and marked when out of date.

The paper's metrics (CF, ΔCF, SSIM, MS-SSIM, FSIM, STSIM) come first; on the phantom the truth
ΔE follows, the one figure that punishes wrong colours and displaced structures alike.
"""
from __future__ import annotations

from PyQt6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

#: ``core.metrics.table_row`` column → display name and tooltip, in display order. The paper's six
#: come first, then the truth metrics (phantom only); companion and per-tissue columns are not shown.
METRICS = {
    "CF": ("CF", "colourfulness of the colorized plane (Hasler–Süsstrunk, [0, 1] scale)"),
    "dCF": ("ΔCF", "colourfulness difference: cryosection − colorized"),
    "SSIM": ("SSIM", "structure: colorized luma vs MRI"),
    "MS-SSIM": ("MS-SSIM", "multiscale SSIM: colorized luma vs MRI"),
    "FSIM": ("FSIM", "feature similarity (FSIMc): colorized vs cryosection"),
    "STSIM": ("STSIM", "texture similarity: colorized vs cryosection"),
    "dE": ("ΔE (truth)", "CIEDE2000 to the phantom's true colorization over its body (lower is better)"),
    "PSNR": ("PSNR (truth)", "dB against the phantom's true colorization over its body"),
}


_WAITING = "metrics: waiting for the first colorized plane"


class MetricsPanel(QWidget):
    """A two-column table (metric, value) plus a line saying what the figures belong to."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["metric", "value"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.status = QLabel(_WAITING)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        self.values: dict[str, float] = {}

    def show_values(self, values: dict[str, float]) -> None:
        """Show the known columns of a metrics row, in the paper's order."""
        self.values = {key: float(values[key]) for key in METRICS if key in values}
        self.table.setRowCount(len(self.values))
        for row, key in enumerate(self.values):
            name, tip = METRICS[key]
            label = QTableWidgetItem(name)
            label.setToolTip(tip)
            self.table.setItem(row, 0, label)
            self.table.setItem(row, 1, QTableWidgetItem(f"{self.values[key]:.3f}"))
        self.status.setText("metrics of the plane on screen")

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def clear(self) -> None:
        """Show no figures: what was on screen belonged to volumes that are no longer open."""
        self.values = {}
        self.table.setRowCount(0)
        self.status.setText(_WAITING)
