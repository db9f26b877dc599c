"""Running a child process that runs out of room: a file-size limit (``RLIMIT_FSIZE``, with
``SIGXFSZ`` ignored) makes every write past the limit fail with EFBIG, as a full disk fails with
ENOSPC — without mounting anything."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_limited(args: list[str], max_file_bytes: int, cwd: Path | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """``python args…`` with this worktree's code first on the path and no file allowed to grow
    past ``max_file_bytes``."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, *args], preexec_fn=limit, env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
