"""The mricolor desktop viewer (PyQt6 + pyqtgraph): any MRI plane, colorized live, beside the cryosection.

Qt-free modules (`state`, `data`, `jobs`, `model`, `export`'s volume path) hold the logic; the
widgets (`panels`, `navigator`, `controls`, `metrics_panel`, `main_window`) only mirror and drive
it. Start it with ``mricolor view`` or ``python -m viewer``.
"""
