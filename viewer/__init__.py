"""The mricolor desktop viewer (PyQt6 + pyqtgraph): any MRI plane, colorized live, beside the cryosection.

Qt-free modules hold the logic: `session` (what is open: `study`, `framing`, `network`, and the
viewer `state`) and `jobs` (the work done for one plane). `pipeline` runs that work on worker
threads, newest plane first, and `loader` opens files in the background; the widgets (`panels`,
`navigator`, `controls`, `metrics_panel`, `status`, `main_window`) only mirror and drive them.
Design notes: docs/viewer.md. Start it with ``mricolor view`` or ``python -m viewer``.
"""
