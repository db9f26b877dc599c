"""Training building blocks: full-state files, RNG, sampler, checkpointer, logs, pictures, EMA,
Dice, lookup table, ablation variants. The run configuration is tested in test_training_config.py,
the loops themselves in test_training_runs.py."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from core.atomic import remove_stale
from core.errors import InputError, Stopped, run_command
from core.model.train_config import TrainConfig
from core.training import state
from core.training.ablation import parse_variants, run_ablation
from core.training.distributed import Context, OutOfSyncError, check_in_sync, checksum, mean_over_ranks
from core.training.ema import EMA
from core.training.runlog import RunLog, read_log, truncate_log
from core.evaluation.lookup import IntensityLookup, TissueLookup
from core.training.batches import Batches, ResumableSampler
from core.training.checkpointer import Checkpointer, Position
from core.training.loop import take_step
from core.training.samples import label_colors, loss_curves, sample_grid
from core.training.segmentation import balanced_class_weights, dice_per_class
from core.training.task import NonFiniteLossError, Task, reduce_and_check
from helpers_training import LABELS, SyntheticPlanes, tiny, write_dataset


# --- full training state -------------------------------------------------------------------------
def _payload(value: float) -> dict:
    return {"modules": {"net": {"w": torch.full((3,), value)}}, "rng": [state.capture_rng()], "epoch": 1}


def test_state_round_trip_and_pruning(tmp_path):
    for step in (2, 4, 6):
        state.save_state(tmp_path, step, _payload(step), keep=2)
    assert [p.name for p in state.list_states(tmp_path)] == ["state-00000004.pt", "state-00000006.pt"]
    path, payload = state.load_latest(tmp_path)
    assert path.name == "state-00000006.pt" and payload["step"] == 6
    assert torch.equal(payload["modules"]["net"]["w"], torch.full((3,), 6.0))


def test_damaged_or_foreign_states_are_skipped_never_resumed(tmp_path):
    state.save_state(tmp_path, 1, _payload(1), keep=5)
    good = state.state_path(tmp_path, 1).read_bytes()
    state.state_path(tmp_path, 2).write_bytes(good[: len(good) // 2])           # truncated
    torch.save({"format": "something else"}, state.state_path(tmp_path, 3))      # foreign
    (tmp_path / ".state-00000004.0123456789ab.tmp.pt").write_bytes(good)         # a killed save
    with pytest.warns(RuntimeWarning, match="skipping"):
        path, payload = state.load_latest(tmp_path)
    assert payload["step"] == 1
    assert [p.name for p in remove_stale(tmp_path)] == [".state-00000004.0123456789ab.tmp.pt"]


def test_states_never_unpickle_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": state.FORMAT, "x": Evil()}, state.state_path(tmp_path, 1))
    with pytest.raises(ValueError, match="refused: .*could run code") as caught:
        state.load_state(state.state_path(tmp_path, 1))
    state.state_path(tmp_path, 2).write_bytes(state.state_path(tmp_path, 1).read_bytes()[:100])
    with pytest.raises(ValueError, match="unreadable training state, truncated or damaged") as truncated:
        state.load_state(state.state_path(tmp_path, 2))
    for message in (str(caught.value), str(truncated.value)):                 # one plain line, no unsafe advice
        assert "\n" not in message and "\x1b" not in message and "weights_only" not in message, message


def test_rng_states_restore_every_generator():
    snapshot = state.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    state.restore_rng(snapshot)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


# --- distributed helpers in a world of one ---------------------------------------------------------
def test_world_of_one_reductions_and_checksums():
    ctx = Context()
    assert mean_over_ranks(ctx, {"a": 1.5}) == {"a": 1.5}
    net = nn.Linear(2, 2)
    assert check_in_sync(ctx, {"net": net}, 1) == {"net": checksum(net)}
    before = checksum(net)
    with torch.no_grad():
        net.weight[0, 0] += 1e-7
    assert checksum(net) != before


def test_non_finite_losses_stop():
    assert reduce_and_check(Context(), {"a": 1.0}, 3) == {"a": 1.0}
    with pytest.raises(NonFiniteLossError, match=r"step 3 \(b=nan\)"):
        reduce_and_check(Context(), {"a": 1.0, "b": float("nan")}, 3)


def test_resumable_sampler_continues_the_same_epoch_order():
    sampler = ResumableSampler(SyntheticPlanes(10), Context(), seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_start(4)
    assert list(sampler) == full[4:] and len(sampler) == 6
    sampler.set_start(0)
    sampler.set_epoch(3)
    assert list(sampler) != full and sorted(sampler) == sorted(full)


class _Linear(Task):
    """A task of one linear layer that records what it exported."""

    kind = "linear"

    def __init__(self, seed: int):
        self.net = nn.Linear(2, 1).requires_grad_(False)
        torch.nn.init.constant_(self.net.weight, float(seed))
        self.exported: list[int] = []

    def modules(self) -> dict:
        return {"net": self.net}

    def state_dict(self) -> dict:
        return {"modules": {"net": self.net.state_dict()}}

    def load_state_dict(self, payload: dict) -> None:
        self.net.load_state_dict(payload["modules"]["net"])

    def export(self, folder, step):
        self.exported.append(step)
        return folder / f"model-{step}"


def test_checkpointer_restores_position_weights_and_random_state(tmp_path):
    cfg, saved = tiny(), _Linear(1)
    first = Checkpointer(saved, Context(), cfg, tmp_path, keep=2)
    assert first.restore(resume=False, init_from=None) == (Position(), None)
    first.save(Position(step=5, epoch=1, sample_in_epoch=4), global_batch=2)
    expected = torch.rand(3)                                       # what comes after the save
    assert first.last.name == "state-00000005.pt" and saved.exported == [5]
    payload = state.load_state(first.last)
    assert payload["samples"] == 10 and json.loads(payload["config"]) == cfg.to_dict()

    resumed = _Linear(2)
    second = Checkpointer(resumed, Context(), cfg, tmp_path, keep=2)
    at, message = second.restore(resume=True, init_from=None)
    assert Position.of({"step": 5, "epoch": 1, "batch_in_epoch": 2, "samples": 20}) == Position(5, 1, 8)  # older states
    assert at == Position(5, 1, 4) and message.startswith("resumed from") and second.last == first.last
    assert torch.equal(resumed.net.weight, saved.net.weight) and torch.equal(torch.rand(3), expected)
    assert second.final_export(5) == tmp_path / "model-5" and resumed.exported == [5]   # nothing left to train
    with pytest.raises(InputError, match="continue it with --resume"):                  # never overwritten
        Checkpointer(_Linear(3), Context(), cfg, tmp_path, keep=2).restore(resume=False, init_from=None)


def test_a_run_initialised_from_another_counts_from_zero_and_records_its_origin(tmp_path):
    source = Checkpointer(_Linear(1), Context(), tiny(), tmp_path / "source", keep=2)
    source.save(Position(step=4), global_batch=2)
    task = _Linear(2)
    new = Checkpointer(task, Context(), tiny(), tmp_path / "new", keep=2)
    at, message = new.restore(resume=True, init_from=tmp_path / "source")
    assert at == Position() and "its step 4" in message and torch.equal(task.net.weight, torch.ones(1, 2))
    new.write_config(batch_per_process=2)
    run = json.loads((tmp_path / "new" / "config.json").read_text(encoding="utf-8"))["run"]
    assert run["init_from"] == str(source.last) and run["global_batch"] == 2 and run["kind"] == "linear"


def test_batches_resume_mid_epoch_and_need_one_global_batch():
    train = TrainConfig(seed=3, max_steps=7)
    batches = Batches(SyntheticPlanes(10), Context(), 2, train)
    assert batches.per_epoch == 5 and batches.total_steps(train.schedule("colorization")) == 7
    assert Batches(SyntheticPlanes(10), Context(), 2, TrainConfig(epochs=2)).total_steps(
        TrainConfig(epochs=2).schedule("colorization")) == 10
    whole = [b["labels"] for b in batches.epoch(1, 0)]
    rest = [b["labels"] for b in batches.epoch(1, 6)]
    assert len(whole) == 5 and len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(whole[3:], rest))
    with pytest.raises(InputError, match="fewer than one global batch"):
        Batches(SyntheticPlanes(3), Context(), 4, train)


class _Planes(torch.utils.data.Dataset):
    """Planes that say their index and which epoch their dataset object was told."""

    def __init__(self, count: int = 4):
        self.count, self.epoch = count, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(i), "epoch": torch.tensor(self.epoch)}


def test_a_run_resumed_on_another_number_of_processes_sees_each_plane_of_the_epoch_once():
    """Two ranks take 2 batches of 2 (8 planes), then the run goes on with one process or four."""
    train, data = TrainConfig(seed=5), _Planes(24)
    taken = [int(i) for rank in (0, 1)
             for b in list(Batches(data, Context(rank=rank, world_size=2), 2, train).epoch(3, 0))[:2]
             for i in b["index"]]
    for world in (1, 4):
        rest = [int(i) for rank in range(world)
                for b in Batches(data, Context(rank=rank, world_size=world), 2, train).epoch(3, 8) for i in b["index"]]
        assert len(taken) == 8 and sorted(taken + rest) == list(range(24)), world


@pytest.mark.parametrize("workers", [0, 2])
def test_every_loader_worker_sees_the_epoch_its_augmentation_draws_from(workers):
    batches = Batches(_Planes(), Context(), 2, TrainConfig(num_workers=workers))
    seen = [int(b["epoch"][0]) for epoch in range(3) for b in batches.epoch(epoch, 0)]
    assert seen == [0, 0, 1, 1, 2, 2]


def test_a_non_finite_loss_names_the_last_good_state_and_exits_3(tmp_path, capsys):
    class Poisoned(_Linear):
        kind = "colorization"

        def step(self, batch, step):
            return reduce_and_check(Context(), {"adv": float("inf")}, step)

    task, cfg = Poisoned(0), tiny()
    checkpoints = Checkpointer(task, Context(), cfg, tmp_path, keep=2)
    checkpoints.save(Position(step=3), global_batch=2)
    checkpoints.confirm()
    good = state.state_path(tmp_path / "checkpoints", 3)
    with pytest.raises(NonFiniteLossError, match=rf"step 4 \(adv=inf\): .*last good checkpoint is {good}\. .*"
                                                 rf"--init-from {good} --out NEW_FOLDER --set optim\.lr_g=") as caught:
        take_step(task, {}, 4, checkpoints, cfg)
    assert isinstance(caught.value, Stopped)

    def stop():
        raise caught.value

    assert run_command("python -m train colorization", stop) == 3
    assert capsys.readouterr().err.startswith("python -m train colorization: non-finite loss at step 4")


def test_processes_out_of_sync_end_in_one_line_and_exit_4(capsys):
    def diverged():
        raise OutOfSyncError("step 2: processes hold different weights for net")

    assert run_command("python -m train colorization", diverged) == 4
    assert capsys.readouterr().err == "python -m train colorization: step 2: processes hold different weights for net\n"


# --- logs and pictures ---------------------------------------------------------------------------
def test_run_log_appends_truncates_on_resume_and_skips_partial_lines(tmp_path):
    log = RunLog(Context(), tmp_path, total_steps=4, tensorboard=False)
    for step in (1, 2, 3):
        log.record(step, 0, 2 * step, 10.0, {"adv": 0.5 + step, "rec": 1.0 / step})
    log.close()
    with open(tmp_path / "log.csv", "a") as f:
        f.write("4,0,8,1")                                                        # killed mid-line
    columns, rows = read_log(tmp_path / "log.csv")
    assert columns == ["step", "epoch", "samples", "samples_per_s", "adv", "rec"] and len(rows) == 3
    truncate_log(tmp_path / "log.csv", 2)
    assert [r["step"] for r in read_log(tmp_path / "log.csv")[1]] == [1.0, 2.0]
    RunLog(Context(rank=1, world_size=2), tmp_path / "other", total_steps=1).record(1, 0, 1, 1.0, {"a": 1.0})
    assert not (tmp_path / "other").exists()                                     # only rank 0 writes


def test_sample_grid_and_loss_curves_draw():
    grid = sample_grid({"MRI": torch.rand(2, 1, 16, 16), "c_hat": torch.rand(2, 3, 16, 16),
                        "labels": label_colors(torch.randint(0, 4, (2, 16, 16)), LABELS.color_lut())})
    assert grid.size == (3 * 128 + 4, 18 + 2 * 130)
    curves = loss_curves([1, 2, 3], {"a": [3.0, 2.0, 1.0], "b": [1.0, float("nan"), 0.5], "c": [float("nan")] * 3})
    assert curves.size == (900, 170)
    assert label_colors(np.array([[0, 9]]), LABELS.color_lut()).shape == (1, 2, 3)  # ids past the table


def test_ema_follows_the_weights_with_a_warm_up():
    net = nn.Linear(1, 1, bias=False)
    ema = EMA(net, decay=0.99)
    with torch.no_grad():
        net.weight.fill_(1.0)
    start = ema.module.weight.item()
    ema.update(net)                                                               # decay min(0.99, 2/11)
    assert ema.module.weight.item() == pytest.approx(start + (1 - 2 / 11) * (1 - start))
    restored = EMA(net, 0.99)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 1 and torch.equal(restored.module.weight, ema.module.weight)


# --- evaluation helpers --------------------------------------------------------------------------
class _Oracle(nn.Module):
    """A 'segmentation net' returning the true labels as logits (Dice 1 for every class)."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def forward(self, cryo):
        colours = torch.from_numpy(LABELS.color_lut()).float().div(255)[:, :, None, None]
        distance = ((cryo[:, None] - colours[None]) ** 2).sum(2)
        return -distance


def test_dice_is_one_for_a_perfect_segmentation():
    report = dice_per_class(_Oracle(None), SyntheticPlanes(3), LABELS, torch.device("cpu"))
    assert report.mean_foreground == pytest.approx(1.0, abs=0.02)
    assert "| 3 | bone |" in report.markdown() and report.csv().startswith("id,class,dice")


def test_class_balance_weights_rare_tissues_up():
    weights = balanced_class_weights(SyntheticPlanes(6), 5, planes=4)
    background, muscle, fat, bone, unseen = weights
    assert bone > fat > background and bone <= 10.0 and unseen == 1.0
    assert min(weights[:4]) < 1.0 < max(weights[:4])                          # 1 at the median frequency


def test_class_balance_counts_planes_from_the_whole_dataset():
    """The dataset's planes come subject by subject: the first half all muscle, the second half
    half background, half bone. Weights from the first planes alone would see muscle only (every
    weight 1); spread over the dataset, muscle is twice as frequent as the median and weighs 0.5."""
    muscle = {"labels": torch.ones(4, 4, dtype=torch.long)}
    split = {"labels": torch.cat([torch.zeros(2, 4), torch.full((2, 4), 3)]).long()}
    planes = [muscle] * 6 + [split] * 6
    weights = balanced_class_weights(planes, 5, planes=4)
    assert weights == pytest.approx((1.0, 0.5, 1.0, 1.0, 1.0))


def test_tissue_l1_weights_follow_the_power():
    """``loss.l1_balance`` p: the class-balance weights to the power p; 0 (or no L1 term): none."""
    from types import SimpleNamespace

    from core.model.run_config import resolve
    from core.training.colorization import tissue_l1_weights

    data = SimpleNamespace(train=SyntheticPlanes(6), label_table=LABELS)
    k = LABELS.num_classes
    balanced = torch.tensor(balanced_class_weights(data.train, k))
    for power, l1 in ((0.5, 40.0), (1.0, 40.0)):
        cfg = resolve("tiny", None, {"loss.l1_balance": power, "loss.lambda_l1_c_prime": l1})
        torch.testing.assert_close(tissue_l1_weights(cfg, data, Context()), (balanced ** power).float())
    for power, l1 in ((0.0, 40.0), (0.5, 0.0)):
        cfg = resolve("tiny", None, {"loss.l1_balance": power, "loss.lambda_l1_c_prime": l1})
        assert tissue_l1_weights(cfg, data, Context()) is None


def test_tissue_lookup_paints_each_label_with_its_mean_training_colour():
    """Label 1 is red on half the planes and blue on the others (mean: purple), label 2 green;
    label 3, never seen in training, gets the background's colour."""
    labels = torch.tensor([[0, 1], [2, 2]])
    red, blue, green = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0]), torch.tensor([0, 1.0, 0])
    black = torch.zeros(3)
    planes = [{"mri": torch.zeros(1, 2, 2), "labels": labels,
               "cryo": torch.stack([torch.stack([black, red if i % 2 else blue]),
                                    torch.stack([green] * 2)]).permute(2, 0, 1)} for i in range(4)]
    tissues = TissueLookup.fit(planes, max_label=7)
    out = tissues(torch.tensor([[[1, 2, 3, 0]]]))[0, :, 0]  # (3, 4)
    torch.testing.assert_close(out.T, torch.stack([torch.tensor([0.5, 0, 0.5]), green, black, black]))
    with pytest.raises(ValueError, match="label ids"):
        TissueLookup.fit([{**planes[0], "labels": labels + 10}], max_label=7)


def test_lookup_table_maps_intensity_to_mean_colour():
    """Dark pixels are red or blue half the time each (mean: purple), bright ones green; the
    bins between are interpolated."""
    mri = torch.tensor([[0.1, 0.1], [0.9, 0.9]]).expand(4, 1, 2, 2)
    red, blue, green = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0]), torch.tensor([0, 1.0, 0])
    planes = [{"mri": mri[i], "cryo": torch.stack([torch.stack([red if i % 2 else blue] * 2),
                                                   torch.stack([green] * 2)]).permute(2, 0, 1)} for i in range(4)]
    lookup = IntensityLookup.fit(planes, bins=10)
    out = lookup(torch.tensor([0.1, 0.5, 0.95]).view(1, 1, 1, 3))[0, :, 0]
    assert torch.allclose(out[:, 0], torch.tensor([0.5, 0, 0.5])) and torch.allclose(out[:, 2], torch.tensor([0, 1.0, 0]))
    assert torch.allclose(out[:, 1], torch.tensor([0.25, 0.5, 0.25]))
    assert lookup.table.shape == (10, 3)


def test_ablation_variants_parse():
    assert parse_variants("full, A1,A5") == ["full", "A1", "A5"]
    for bad in ("A9", "A1,A1", ""):
        with pytest.raises(InputError):
            parse_variants(bad)


def _no_reading(*args, **kwargs):
    raise AssertionError("a loader worker read a volume again")


def test_loader_workers_share_the_volumes_read_once_before_they_start(tmp_path, monkeypatch):
    """Each worker of each rank holding its own float32 copy of every volume is tens of GB on a node."""
    import core.io
    from core.dataset import PlaneDataset

    batches = Batches(PlaneDataset(write_dataset(tmp_path, planes=4, size=16), "train"), Context(), 2,
                      TrainConfig(num_workers=2))
    monkeypatch.setattr(core.io, "read_volume", _no_reading)            # the workers fork after this
    assert [len(b["mri"]) for b in batches.epoch(0, 0)] == [2, 2]


def test_an_ablation_too_small_for_its_metrics_is_refused_before_any_training(tmp_path):
    """The README's ``--preset tiny`` ablation trained all six variants at 32 px, then failed in
    the metrics, which need planes of at least 49 px."""
    from helpers_training import synthetic_data

    with pytest.raises(InputError, match=r"--image-size: 32 px is below the 49 px .*nothing was trained"):
        run_ablation({"full": tiny(), "A1": tiny()}, synthetic_data(4, 2), Context(), tmp_path / "ablation")
    assert not (tmp_path / "ablation").exists()


def test_learning_rates_fall_linearly_to_zero_over_decay_steps():
    """``optim.decay_steps``: step 1 trains at the full rates, step 1 + n/2 at half, the last at 0
    (and a step at 0 leaves the weights alone); 0 keeps them constant; nonsense is refused."""
    from core.model.config import OptimConfig
    from core.model.run_config import resolve
    from core.training.colorization import ColorizationTask
    from helpers_training import synthetic_data

    cfg = resolve("tiny", ablation="A2", overrides={"batch_size": 2, "ema_decay": 0.0, "optim.decay_steps": 4,
                                                    "optim.lr_g": 1e-3, "optim.lr_d": 4e-4})
    data = synthetic_data(2, 1)
    task = ColorizationTask(cfg, Context(), data, None)
    batch = {k: torch.stack([data.train[i][k] for i in range(2)]) for k in ("mri", "cryo", "labels")}
    for step, factor in ((1, 1.0), (3, 0.5), (5, 0.0)):
        before = {name: p.detach().clone() for name, p in task.nets.g_mc.named_parameters()}
        task.step(batch, step)
        assert [g["lr"] for g in task.opt_g.param_groups] == pytest.approx([1e-3 * factor] * len(task.opt_g.param_groups))
        assert [g["lr"] for g in task.opt_d.param_groups] == pytest.approx([4e-4 * factor] * len(task.opt_d.param_groups))
        moved = max(float((p.detach() - before[name]).abs().max()) for name, p in task.nets.g_mc.named_parameters())
        assert (moved == 0.0) == (factor == 0.0), (step, moved)
    assert OptimConfig().rate_factor(10_000) == 1.0
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="decay_steps"):
            OptimConfig(decay_steps=bad)
