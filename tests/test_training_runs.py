"""Training runs in-process on synthetic planes (tiny preset, 32 px): exact resume, the stop on a
non-finite loss, a kill or Ctrl-C in the middle of a checkpoint save, the exported model, the
evaluation table, and the sync check between processes."""
from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from core.model.checkpoint import load_checkpoint, save_checkpoint
from core.errors import InputError
from core.inference import Colorizer
from core.model.networks import build_networks
from core.model.outputs import NEEDS_CALIBRATION, OUTPUTS
from core.model.run_config import resolve
from core.training import distributed, state
from core.training.colorization import train_colorization
from core.training.distributed import Context, OutOfSyncError
from core.evaluation.evaluate import CRYO_ROW, LOOKUP_ROW, ORACLE_ROW, TRUTH_ROW, evaluate_checkpoints
from core.training.runlog import BASE_COLUMNS, read_log
from core.training.batches import ResumableSampler
from core.training.segmentation import train_segmentation
from core.training.task import NonFiniteLossError
from helpers_training import LABELS, SyntheticPlanes, synthetic_data, tiny

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory) -> Path:
    """A U-Net pre-trained for two steps: enough to exercise the frozen-S path."""
    out = tmp_path_factory.mktemp("seg")
    _, result, report = train_segmentation(tiny(), synthetic_data(8, 2), Context(), out)
    assert (out / "dice.md").is_file() and report is not None
    assert load_checkpoint(result.export).label_table == LABELS
    return result.export


def _losses(folder: Path) -> dict[int, dict[str, float]]:
    columns, rows = read_log(folder / "log.csv")
    return {int(r["step"]): {k: r[k] for k in columns if k not in BASE_COLUMNS} for r in rows}


def test_resumed_run_repeats_the_uninterrupted_losses(tmp_path, segmentation):
    """8 planes at batch 2: four steps an epoch, so resuming from step 3 also crosses an epoch."""
    data = synthetic_data(8, 2)
    train_colorization(tiny(), data, Context(), tmp_path / "whole", segmentation=segmentation)
    train_colorization(tiny(max_steps=3), data, Context(), tmp_path / "split", segmentation=segmentation)
    _, result = train_colorization(tiny(), data, Context(), tmp_path / "split", segmentation=segmentation,
                                   resume=True)
    whole, split = _losses(tmp_path / "whole"), _losses(tmp_path / "split")
    assert sorted(split) == [1, 2, 3, 4, 5, 6] and result.step == 6 and result.epoch == 1
    for step in (4, 5, 6):
        for name, value in whole[step].items():
            assert split[step][name] == pytest.approx(value, abs=1e-6), (step, name)
    a = load_checkpoint(tmp_path / "whole" / "model.safetensors").weights["g_mc"]
    b = load_checkpoint(tmp_path / "split" / "model.safetensors").weights["g_mc"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    colorizer = Colorizer.from_checkpoint(result.export, device="cpu")      # the exported model serves
    assert colorizer.colorize(torch.rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    assert load_checkpoint(result.export).extra["step"] == 6
    assert (tmp_path / "split" / "config.json").is_file() and (tmp_path / "split" / "loss_curves.png").is_file()
    assert sorted(p.name for p in (tmp_path / "split" / "samples").iterdir()) == ["step_00000003.png", "step_00000006.png"]


def test_non_finite_loss_stops_before_the_step_and_keeps_the_last_good_checkpoint(tmp_path, segmentation):
    sampler = ResumableSampler(SyntheticPlanes(8), Context(), seed=0)
    poisoned = list(sampler)[4]                                               # in the batch of step 3
    data = synthetic_data(8, 2, nan_at=poisoned)
    cfg = tiny(checkpoint_every=1, max_steps=8)
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*last good checkpoint is .*state-00000001\.pt"):
        train_colorization(cfg, data, Context(), tmp_path, segmentation=segmentation)
    path, payload = state.load_latest(tmp_path / "checkpoints")
    assert payload["step"] == 2                   # kept: its weights met the poisoned plane, which may be all
    assert all(torch.isfinite(t).all() for m in payload["modules"].values() for t in m.values())
    with pytest.raises(InputError, match="continue it with --resume"):                # never overwritten
        train_colorization(cfg, data, Context(), tmp_path, segmentation=segmentation)


def test_serve_auto_picks_the_output_with_the_lowest_delta_e(tmp_path, segmentation, capsys):
    _, result = train_colorization(tiny(max_steps=1, serve="auto"), synthetic_data(4, 2), Context(), tmp_path,
                                   segmentation=segmentation)
    message = capsys.readouterr().err
    scores = dict(part.rsplit(" ", 1) for part in message.split("colorization on test planes: ")[1].split(")")[0].split(", "))
    # every output a training run's export offers was scored (a calibration comes after training)
    assert set(scores) == {o.label for name, o in OUTPUTS.items() if name not in NEEDS_CALIBRATION}
    served = load_checkpoint(result.export).serve
    assert float(scores[OUTPUTS[served].label]) == min(float(v) for v in scores.values())


def test_a_time_budget_ends_the_run_like_a_step_budget(tmp_path, segmentation):
    _, result = train_colorization(tiny(max_steps=50, max_minutes=1e-6), synthetic_data(4, 2), Context(), tmp_path,
                                   segmentation=segmentation)
    assert result.step == 1 and result.state.name == "state-00000001.pt"
    assert load_checkpoint(result.export).extra["step"] == 1


def test_a_unet_of_another_architecture_is_refused(tmp_path, segmentation):
    cfg = resolve("lite", overrides={"image_size": 32, "batch_size": 2})
    with pytest.raises(InputError, match="pre-trained with another architecture"):
        train_colorization(cfg, synthetic_data(4, 2), Context(), tmp_path, segmentation=segmentation)


def test_ablation_without_segmentation_needs_no_unet(tmp_path):
    _, result = train_colorization(resolve("tiny", "A3", {"image_size": 32, "batch_size": 2, "max_steps": 1,
                                                          "serve": "auto"}), synthetic_data(4, 2), Context(), tmp_path)
    assert load_checkpoint(result.export).networks == ("g_mc", "g_cm", "d_c", "d_m")
    assert not (tmp_path / "segmentation").exists()


# --- interrupted saves -------------------------------------------------------------------------
CHILD = """
import signal, sys, time, torch
signal.signal(signal.SIGINT, signal.default_int_handler)   # even when launched in the background (SIG_IGN)
from helpers_training import synthetic_data, tiny
from core.training.colorization import train_colorization
from core.training.distributed import Context

flag, out, seg = sys.argv[1:4]
real_save, calls = torch.save, []

def save_then_hang(obj, f):
    calls.append(1)
    if len(calls) == 2:                     # the state of step 4: half written, then stuck
        f.write(b"half a checkpoint")
        f.flush()
        open(flag, "w").close()
        time.sleep(120)
    real_save(obj, f)

torch.save = save_then_hang
train_colorization(tiny(max_steps=4, checkpoint_every=2), synthetic_data(8, 2), Context(), out, segmentation=seg)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_save_interrupted_midway_is_never_resumed(tmp_path, segmentation, how):
    out, flag = tmp_path / "run", tmp_path / "saving"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(flag), str(out), str(segmentation)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never reached its second save"
        time.sleep(0.1)
    child.send_signal(how)
    child.wait(timeout=60)
    ckpts = out / "checkpoints"
    assert [p.name for p in state.list_states(ckpts)] == ["state-00000002.pt"]
    leftovers = list(ckpts.glob(".state-*"))
    assert bool(leftovers) == (how == signal.SIGKILL)                        # Ctrl-C cleans up itself
    _, result = train_colorization(tiny(max_steps=4, checkpoint_every=2), synthetic_data(8, 2), Context(), out,
                                   segmentation=segmentation, resume=True)
    assert result.step == 4 and not list(ckpts.glob(".state-*"))
    assert sorted(_losses(out)) == [1, 2, 3, 4]


def test_a_new_run_can_start_from_another_runs_state(tmp_path, segmentation):
    """--init-from: the first step of the new run starts from the source's weights (its step-1
    loss is not the fresh run's), steps count from 0, and the new run's own loss weights and
    learning rates apply (torch's optimiser loading would bring back the source's)."""
    data = synthetic_data(8, 2)
    train_colorization(tiny(max_steps=3), data, Context(), tmp_path / "source", segmentation=segmentation)
    source_state = state.list_states(tmp_path / "source" / "checkpoints")[-1]
    weights = tiny(max_steps=2, **{"loss.lambda_l1_c_prime": 5.0, "optim.lr_g": 5e-5})
    _, fresh = train_colorization(weights, data, Context(), tmp_path / "fresh", segmentation=segmentation)
    _, tuned = train_colorization(weights, data, Context(), tmp_path / "tuned", segmentation=segmentation,
                                  init_from=tmp_path / "source")
    assert tuned.step == 2 and sorted(_losses(tmp_path / "tuned")) == [1, 2]
    first_fresh, first_tuned = _losses(tmp_path / "fresh")[1], _losses(tmp_path / "tuned")[1]
    assert "l1_c_prime" in first_tuned and first_tuned["rec_m"] != pytest.approx(first_fresh["rec_m"])
    payload = state.load_state(state.list_states(tmp_path / "tuned" / "checkpoints")[-1])
    source = state.load_state(source_state)
    lrs = [p["optimizers"]["g"]["param_groups"][0]["lr"] for p in (source, payload)]
    assert lrs == [resolve("tiny").preset.optim.lr_g, 5e-5]
    assert payload["step"] == 2 and any(not torch.equal(payload["modules"]["g_mc"][k], source["modules"]["g_mc"][k])
                                        for k in source["modules"]["g_mc"])
    config = (tmp_path / "tuned" / "config.json").read_text(encoding="utf-8")
    assert str(source_state) in config and '"lambda_l1_c_prime": 5.0' in config
    train_colorization(tiny(max_steps=3, **{"loss.lambda_l1_c_prime": 5.0, "optim.lr_g": 5e-5}), data, Context(), tmp_path / "tuned",
                       segmentation=segmentation, resume=True)  # a resume keeps the provenance
    assert str(source_state) in (tmp_path / "tuned" / "config.json").read_text(encoding="utf-8")
    with pytest.raises(InputError, match="no training state"):
        train_colorization(weights, data, Context(), tmp_path / "x", segmentation=segmentation, init_from=tmp_path)
    with pytest.raises(InputError, match="not a colorization"):
        train_colorization(weights, data, Context(), tmp_path / "y", segmentation=segmentation,
                           init_from=next((segmentation.parent / "checkpoints").glob("state-*.pt")))


# --- evaluation ----------------------------------------------------------------------------------
def test_evaluation_at_a_smaller_size_resizes_every_plane_including_the_mri_labels(tmp_path):
    """Ablations train below the dataset's plane size: the per-tissue ΔE needs the MRI's labels
    at the evaluated size too (they once stayed at the planes' size and the table failed)."""
    model = build_networks(resolve("tiny").preset.model, num_classes=LABELS.num_classes, seed=0)
    ckpt = save_checkpoint(tmp_path / "run" / "model.safetensors", model.modules(), model.config,
                           label_table=LABELS, extra={"image_size": 64})
    table = evaluate_checkpoints([ckpt], synthetic_data(8, 2, size=96), planes=2)
    assert table.planes == 2 and table.mean(ORACLE_ROW, "dE") < table.mean(LOOKUP_ROW, "dE")


def test_evaluation_rows_come_in_order_and_the_references_rank_as_expected(tmp_path):
    model = build_networks(resolve("tiny").preset.model, num_classes=LABELS.num_classes, seed=0)
    ckpt = save_checkpoint(tmp_path / "run" / "model.safetensors", model.modules(), model.config,
                           label_table=LABELS, extra={"image_size": 64})
    table = evaluate_checkpoints([ckpt], synthetic_data(16, 3, size=64), planes=3)
    assert list(table.kinds) == [TRUTH_ROW, CRYO_ROW, LOOKUP_ROW, ORACLE_ROW, "run ĉ", "run c′", "run fused", "run guided"]
    assert table.mean(TRUTH_ROW, "dE") == 0.0 and math.isinf(table.mean(TRUTH_ROW, "PSNR"))
    assert table.mean(CRYO_ROW, "dE") < table.mean(LOOKUP_ROW, "dE") < table.mean("run ĉ", "dE")
    # the synthetic cryosection has no texture: true labels with mean tissue colours are near exact
    assert table.mean(ORACLE_ROW, "dE") < min(1.0, table.mean(CRYO_ROW, "dE"))
    assert table.mean(CRYO_ROW, "FSIM") == pytest.approx(1.0) and table.planes == 3
    md, csv_path = table.write(tmp_path, "table")
    assert "| *true colorization* (reference) |" in md.read_text(encoding="utf-8") and "ΔE ↓" in md.read_text(encoding="utf-8")
    assert csv_path.read_text(encoding="utf-8").splitlines()[1].startswith("true colorization,reference,3,")


# --- processes out of sync -----------------------------------------------------------------------
def _diverge(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    ctx = distributed.init("cpu")
    try:
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 3)
        distributed.check_in_sync(ctx, {"net": net}, 1, {"mri": torch.full((2,), float(rank))})
        try:
            distributed.check_in_sync(ctx, {"net": net}, 1, {"mri": torch.zeros(2)})
        except OutOfSyncError as exc:
            results.put((rank, str(exc)))
        if rank == 1:
            with torch.no_grad():
                net.bias.add_(1e-6)
        try:
            distributed.check_in_sync(ctx, {"net": net}, 2)
            results.put((rank, "in sync"))
        except OutOfSyncError as exc:
            results.put((rank, str(exc)))
    finally:
        distributed.cleanup()


def test_the_sync_check_catches_ranks_that_diverge_or_read_the_same_planes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(_diverge, args=(port, results), nprocs=2, start_method="spawn")
    same = "step 1: all 2 processes read the same planes: the data is not split between them"
    differing = "step 2: processes hold different weights for net"
    assert sorted(results.get() for _ in range(4)) == [(0, same), (0, differing), (1, same), (1, differing)]


def test_kept_exports_are_each_checkpoints_model(tmp_path, segmentation):
    """With keep_exports every checkpoint's exported model stays (the candidates chosen among on
    validation volumes); without it, only the last is there."""
    _, result = train_colorization(tiny(keep_exports=True), synthetic_data(8, 2), Context(), tmp_path / "kept",
                                   segmentation=segmentation)
    kept = sorted((tmp_path / "kept" / "exports").iterdir())
    assert [p.name for p in kept] == ["model-00000003.safetensors", "model-00000006.safetensors"]
    assert [load_checkpoint(p).extra["step"] for p in kept] == [3, 6]
    assert kept[-1].read_bytes() == result.export.read_bytes()
    first, last = (load_checkpoint(p).weights["g_mc"] for p in kept)
    assert any(not torch.equal(first[k], last[k]) for k in first)
    train_colorization(tiny(), synthetic_data(8, 2), Context(), tmp_path / "plain", segmentation=segmentation)
    assert not (tmp_path / "plain" / "exports").exists()


def test_serve_auto_on_validation_volumes_picks_the_lowest_whole_volume_delta_e(tmp_path, segmentation, capsys):
    """With train.serve_volumes the served output is chosen on whole volumes of unseen phantom
    seeds, and the scores printed are those of an independent whole-volume evaluation."""
    from core.evaluation.volumes import evaluate_volumes, model_row, phantom_subjects

    cfg = tiny(max_steps=1, serve="auto", serve_volumes="1", serve_scans=["small"])
    _, result = train_colorization(cfg, synthetic_data(4, 2), Context(), tmp_path, segmentation=segmentation)
    message = capsys.readouterr().err
    assert "whole volumes of validation subjects 1" in message
    shown = message.split("validation subjects 1: ")[1].split(")")[0].split(", ")
    scores = {label: float(value) for label, value in (part.rsplit(" ", 1) for part in shown)}
    served = load_checkpoint(result.export).serve
    assert scores[OUTPUTS[served].label] == min(scores.values())
    colorizer = Colorizer.from_checkpoint(result.export, device="cpu")
    again = evaluate_volumes(phantom_subjects([1], ("small",)), {"c": model_row(colorizer, output="c_prime")})
    assert scores[OUTPUTS["c_prime"].label] == pytest.approx(again[0].scores.delta_e, abs=0.01)
