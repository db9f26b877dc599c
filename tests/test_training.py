"""Training building blocks: run config, full-state files, RNG, sampler, logs, pictures, EMA,
Dice, lookup table, ablation variants. The loops themselves are in test_training_runs.py."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import InputError
from core.training import state
from core.training.ablation import parse_variants
from core.training.config import RunConfig, parse_assignment, resolve
from core.training.distributed import Context, check_in_sync, checksum, mean_over_ranks
from core.training.ema import EMA
from core.training.runlog import RunLog, read_log, truncate_log
from core.evaluation.lookup import IntensityLookup, TissueLookup
from core.training.loop import NonFiniteLossError, ResumableSampler, reduce_and_check
from core.training.samples import label_colors, loss_curves, sample_grid
from core.training.segmentation import balanced_class_weights, dice_per_class
from test_training_data import LABELS, SyntheticPlanes


# --- configuration ------------------------------------------------------------------------------
def test_presets_resolve_with_train_section_and_overrides():
    cfg = resolve("tiny", "A1", {"batch_size": 3, "loss.lambda_l1_c_prime": 10.0, "max_steps": None})
    assert cfg.train.batch_size == 3 and cfg.preset.loss.lambda_l1_c_prime == 10.0
    assert cfg.ablation == "A1" and cfg.preset.loss.cycle is False
    again = RunConfig.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert resolve("paper").train.batch_size == 28 and resolve("lite").train.image_size == 128


def test_the_augment_section_is_optional_validated_and_recorded():
    """No section: no augmentation (runs from before it train as they did); a section takes
    Augment's defaults for keys it does not give; typos and negative values are refused with the
    preset named."""
    assert resolve("lite").augment is None
    cfg = resolve("lite", overrides={"augment.mri_noise": 0.02})
    assert cfg.augment.mri_noise == 0.02 and cfg.augment.flip_horizontal == 0.5
    assert cfg.to_dict()["augment"] == {"mri_noise": 0.02}          # written to config.json as given
    assert RunConfig.from_dict(cfg.to_dict()).augment == cfg.augment   # and read back on resume
    for bad, message in (({"augment.mri_nose": 0.02}, "unknown settings"), ({"augment.rotate_deg": -5}, "negative")):
        with pytest.raises(InputError, match=f"lite.json: invalid preset: 'augment': .*{message}"):
            resolve("lite", overrides=bad)

@pytest.mark.parametrize("bad", [{"image_size": 30}, {"batch_size": 0}, {"ema_decay": 1.0},
                                 {"precision": "fp16"}, {"epochs": "many"}, {"batch_sise": 2},
                                 {"model.widths": [1, 2]}])
def test_bad_values_name_the_problem(bad):
    with pytest.raises(InputError, match="invalid preset"):
        resolve("tiny", overrides=bad)


def test_assignments_parse_json_or_text():
    assert parse_assignment("loss.lambda_rec=1") == ("loss.lambda_rec", 1)
    assert parse_assignment("train.precision=fp32") == ("train.precision", "fp32")
    assert parse_assignment("model.widths=[8,16,32]") == ("model.widths", [8, 16, 32])
    with pytest.raises(InputError):
        parse_assignment("no-equals-sign")


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
    (tmp_path / ".state-00000004.abc.tmp.pt").write_bytes(good)                  # a killed save
    with pytest.warns(RuntimeWarning, match="skipping"):
        path, payload = state.load_latest(tmp_path)
    assert payload["step"] == 1
    assert [p.name for p in state.remove_partial(tmp_path)] == [".state-00000004.abc.tmp.pt"]


def test_states_never_unpickle_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": state.FORMAT, "x": Evil()}, state.state_path(tmp_path, 1))
    with pytest.raises(ValueError, match="unreadable"):
        state.load_state(state.state_path(tmp_path, 1))


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
