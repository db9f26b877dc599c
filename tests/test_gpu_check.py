"""benchmarks/gpu_check.py --dry-run: every check a GPU machine would run, on the CPU at small
sizes, with SimpleITK, itk-elastix and Qt unimportable (the usual GPU image has none of them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = '''import sys


class _Blocked:
    """Makes the modules a GPU image lacks unimportable, in this process and every one it spawns."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("SimpleITK", "itk", "PyQt6", "PyQt5", "PySide6"):
            raise ImportError(f"{name} is not installed on a GPU image")
        return None


sys.meta_path.insert(0, _Blocked())
'''


def test_the_dry_run_exercises_every_check_without_simpleitk_elastix_or_qt(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    figures = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--json", str(figures)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    checks = {f["check"]: f for f in json.loads(figures.read_text(encoding="utf-8"))["figures"]}
    assert set(checks) == {"training step paper", "training step lite", "2-rank check_sync", "resume",
                           "colorize lite", "colorize tiny"}
    assert checks["2-rank check_sync"]["result"] == "rank 0: gloo: 3 steps in sync; rank 1: gloo: 3 steps in sync"
    assert checks["resume"]["result"] == "exact"
    assert all(checks[c]["samples_per_s"] > 0 and checks[c]["estimate_gib"] > 0 for c in checks if "training" in c)
    assert checks["colorize lite"]["planes_per_s"] > 0


def test_the_blocker_blocks(tmp_path):
    """The check above means something only if SimpleITK is importable here and not there."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    code = "import core.io"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True).returncode == 0
    blocked = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "SimpleITK is not installed on a GPU image" in blocked.stderr
