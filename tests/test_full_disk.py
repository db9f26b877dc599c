"""A write that runs out of room (full disk, quota, file-size limit) ends in one line naming the
file and a non-zero exit, and leaves no file — neither a truncated result nor a temporary one."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from core.atomic import write_bytes
from core.errors import InputError
from helpers_limits import run_limited

WRITE = """
import sys
import numpy as np
from core.errors import run_command
from core.io import write_volume
from core.volume import Volume
rgb = np.random.default_rng(0).integers(0, 255, (4, 120, 120, 3), dtype=np.uint8)
sys.exit(run_command("write", lambda: write_volume(Volume(rgb), sys.argv[1], format=sys.argv[2] or None) and 0))
"""


@pytest.mark.parametrize("name, fmt", [("out.nii", ""), ("out.nii.gz", ""), ("out.mha", ""), ("out.nrrd", ""),
                                       ("out.mhd", ""), ("out.raw", ""), ("stack", "png")])
def test_every_volume_writer_refuses_a_full_disk_in_one_line_and_leaves_nothing(tmp_path, name, fmt):
    out = tmp_path / "full" / name
    out.parent.mkdir()
    run = run_limited(["-c", WRITE, str(out), fmt], max_file_bytes=20_000)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and str(out) in lines[0] and "could not be written" in lines[0], run.stderr
    assert list(out.parent.iterdir()) == []


def test_colorize_on_a_full_disk_exits_non_zero_without_a_truncated_result(tmp_path):
    from core.io import write_volume
    from core.volume import Volume

    mri = tmp_path / "mri.nii.gz"
    z, y, x = np.mgrid[-1:1:24j, -1:1:24j, -1:1:24j]
    write_volume(Volume(np.where(z**2 + y**2 + x**2 < 0.8, 100.0, 0.0).astype(np.float32)), mri)
    out = tmp_path / "full" / "rgb.nii"
    run = run_limited(["-m", "core.cli", "colorize", str(mri), "--out", str(out), "--untrained", "tiny",
                       "--pixel-mm", "2", "--no-progress", "--device", "cpu"], max_file_bytes=20_000)
    said = (run.stdout + run.stderr).strip().splitlines()
    assert run.returncode == 2 and not any(line.startswith("wrote") for line in said), run.stderr
    assert str(out) in said[-1] and "could not be written" in said[-1]
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_an_oserror_for_want_of_room_becomes_one_input_error(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(InputError, match="No space left on device") as caught:
        write_bytes(tmp_path / "x.json", b"{}")
    assert caught.value.source == str(tmp_path / "x.json") and list(tmp_path.iterdir()) == []


def test_training_on_a_full_disk_stops_in_one_line_naming_the_file(tmp_path):
    """The tiny U-Net's state (~130 kB) is the first file past the limit; the run before used to
    end in torch's "unexpected pos" traceback."""
    from helpers_training import write_dataset

    data = write_dataset(tmp_path / "ds", planes=6, size=32)
    out = tmp_path / "run"
    run = run_limited(["-m", "train", "segmentation", "--data", str(data), "--out", str(out), "--preset", "tiny",
                       "--device", "cpu", "--image-size", "32", "--batch-size", "2", "--max-steps", "2",
                       "--threads", "1"], max_file_bytes=50_000)
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "state-00000002.pt: could not be written (File too large)" in last, last
    assert not [p for p in out.rglob(".*") if ".tmp" in p.name] and not (out / "run.lock").exists()
