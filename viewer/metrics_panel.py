"""The metrics of the plane on screen, computed in the background and marked when out of date.

The paper's metrics (CF, ΔCF, SSIM, MS-SSIM, FSIM, STSIM) come first; on the phantom the truth
ΔE follows, the one figure that punishes wrong colours and displaced structures alike (SPEC §7).
"""
from __future__ import annotations

from PyQt6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

#: Display name and tooltip per metric key, in display order; unknown keys follow as they come.
METRICS = {
    "cf": ("CF", "colourfulness of the colorized plane (Hasler–Süsstrunk, [0, 1] scale)"),
    "delta_cf": ("ΔCF", "colourfulness difference: colorized − cryosection"),
    "ssim": ("SSIM", "structure: colorized luma vs MRI"),
    "ms_ssim": ("MS-SSIM", "multiscale SSIM: colorized luma vs MRI"),
    "fsim": ("FSIM", "feature similarity (FSIMc): colorized vs cryosection"),
    "stsim": ("STSIM", "texture similarity: colorized vs cryosection"),
    "delta_e": ("ΔE (truth)", "CIEDE2000 to the phantom's true colorization (lower is better)"),
    "psnr": ("PSNR (truth)", "dB against the phantom's true colorization"),
}


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_").replace("δ", "delta_")


class MetricsPanel(QWidget):
    """A two-column table (metric, value) plus a line saying what the figures belong to."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["metric", "value"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.status = QLabel("metrics: waiting for the first colorized plane")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        self.values: dict[str, float] = {}

    def show_values(self, values: dict[str, float]) -> None:
        known = [k for k in METRICS if k in {_key(n) for n in values}]
        by_key = {_key(n): v for n, v in values.items()}
        order = known + [k for k in by_key if k not in METRICS]
        self.values = {k: by_key[k] for k in order}
        self.table.setRowCount(len(order))
        for row, key in enumerate(order):
            name, tip = METRICS.get(key, (key, ""))
            label = QTableWidgetItem(name)
            label.setToolTip(tip)
            self.table.setItem(row, 0, label)
            self.table.setItem(row, 1, QTableWidgetItem(f"{self.values[key]:.3f}"))
        self.status.setText("metrics of the plane on screen")

    def set_status(self, text: str) -> None:
        self.status.setText(text)
