"""The launcher end to end on a small prepared dataset: ``python -m train`` subcommands in-process,
``mricolor evaluate``, and a 2-process gloo run under ``torchrun`` whose ranks must hold
identical weights after every step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.model.checkpoint import load_checkpoint
from core.cli import main as mricolor
from core.training.runlog import read_log
from helpers_training import write_dataset
from train.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--device", "cpu", "--image-size", "64", "--batch-size", "2",
        "--set", "train.seg_max_steps=2", "--set", "train.seg_batch_size=2", "--set", "train.sample_every=100",
        "--set", "train.serve=c_hat"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """64-pixel planes: the metrics of the evaluation need at least 49."""
    return write_dataset(tmp_path_factory.mktemp("data") / "ds", planes=6, size=64)


def test_colorization_resume_and_evaluate_from_the_command_line(tmp_path, dataset, capsys):
    out = tmp_path / "run"
    assert main(["colorization", "--data", str(dataset), "--out", str(out), "--max-steps", "2", *TINY]) == 0
    assert main(["colorization", "--data", str(dataset), "--out", str(out), "--max-steps", "3", "--resume",
                 *TINY]) == 0
    assert [r["step"] for r in read_log(out / "log.csv")[1]] == [1.0, 2.0, 3.0]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["train"]["max_steps"] == 3 and config["run"]["global_batch"] == 2
    exported = load_checkpoint(out / "model.safetensors")
    assert (out / "segmentation" / "dice.md").is_file() and exported.extra["step"] == 3
    # the pixel size the network learnt at (planes of 30 mm over 32 px, trained at image_size):
    # what the Colorizer resamples a user's planes to
    size = config["train"]["image_size"]
    assert exported.extra["pixel_mm"] == pytest.approx(30.0 / 32 * 32 / size)

    capsys.readouterr()
    assert main(["colorization", "--data", str(dataset), "--out", str(out), "--resume", "--preset", "tiny",
                 "--set", "loss.lambda_rec=1"]) == 2
    assert "cannot change loss.lambda_rec of a run in progress" in capsys.readouterr().err

    assert mricolor(["evaluate", "--data", str(dataset), "--checkpoints", str(out), "--out", str(tmp_path / "eval"),
                     "--planes", "2"]) == 0
    table = (tmp_path / "eval" / "table.md").read_text(encoding="utf-8")
    assert table.index("*true colorization*") < table.index("*registered cryosection*") < table.index("run ĉ")


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["colorization", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset manifest not found" in err[0]
    assert main(["colorization", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--preset", "tiny",
                 "--set", "train.image_size=30"]) == 2


def test_ablation_writes_table_two(tmp_path, dataset):
    out = tmp_path / "ablation"
    assert main(["ablation", "--data", str(dataset), "--out", str(out), "--variants", "full,A3", "--max-steps", "1",
                 "--planes", "2", *TINY]) == 0
    table = (out / "ablation.md").read_text(encoding="utf-8")
    assert "full ĉ" in table and "A3 ĉ" in table and "A3 c′" not in table and "A3: no segmentation" in table
    assert (out / "ablation.csv").is_file() and not (out / "A3" / "segmentation").exists()


def test_torchrun_two_gloo_processes_stay_in_sync(tmp_path, dataset):
    """``--check-sync`` gathers a checksum of every network from both ranks after every step
    (U-Net pre-training and GAN) and fails the run on any difference."""
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "train", "colorization", "--data", str(dataset), "--out", str(out),
                          "--epochs", "10", "--max-steps", "3", "--check-sync", *TINY], cwd=ROOT, env=env, capture_output=True,
                         encoding="utf-8", timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))["run"]
    assert config["world_size"] == 2 and config["global_batch"] == 4 and config["backend"] == "gloo"
    assert [r["step"] for r in read_log(out / "log.csv")[1]] == [1.0, 2.0, 3.0]
    assert len(list((out / "tensorboard").iterdir())) == 1                   # rank 0 alone writes
    assert load_checkpoint(out / "model.safetensors").extra["step"] == 3


@pytest.mark.parametrize("command", ["segmentation", "colorization", "ablation", "evaluate"])
def test_every_help_page_describes_its_command_and_the_preset_budgets(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    page = capsys.readouterr().out
    described = page.split("\n\n")[1]                       # the paragraph after the usage lines
    assert not described.lstrip().startswith(("options:", "-")) and len(described) > 40, page
    if command != "evaluate":
        budget = "lite: 3 epochs, batch 8, 128 px" if command == "segmentation" else "lite: 10 epochs, batch 4, 128 px"
        assert budget in " ".join(page.split()), page
    assert ("--ablation" in page) == (command == "colorization")
