"""The run configuration: presets with their train and augment sections, overrides, the schedule
of each task, and what a resumed run may change — including configurations written by older
versions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.dataset import Augment
from core.errors import InputError
from core.model.config import LossConfig, ModelConfig, OptimConfig
from core.model.train_config import AugmentConfig, TrainConfig, task_key
from core.model.run_config import RunConfig, parse_assignment, read_saved, resolve, resume_config

ROOT = Path(__file__).resolve().parents[1]


def test_presets_resolve_with_train_section_and_overrides():
    cfg = resolve("tiny", "A1", {"batch_size": 3, "loss.lambda_l1_c_prime": 10.0, "max_steps": None})
    assert cfg.train.batch_size == 3 and cfg.preset.loss.lambda_l1_c_prime == 10.0
    assert cfg.ablation == "A1" and cfg.preset.loss.cycle is False
    again = RunConfig.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert resolve("paper").train.batch_size == 28 and resolve("lite").train.image_size == 128


@pytest.mark.parametrize("section", [ModelConfig(), LossConfig(class_weights=(1.0, 2.0)), OptimConfig(),
                                     TrainConfig(max_steps=5, serve_volumes="200-201", serve_scans=("body", "head")),
                                     AugmentConfig(mri_noise=0.02)])
def test_every_section_round_trips_through_json(section):
    data = json.loads(json.dumps(section.to_dict()))
    assert type(section).from_dict(data) == section
    with pytest.raises(ValueError, match=f"'{section.name}': unknown key"):
        type(section).from_dict({**data, "typo": 1})


def test_the_augment_section_is_optional_validated_and_recorded():
    """No section: no augmentation (runs from before it train as they did); a section takes the
    defaults for keys it does not give and is written out whole; typos and negative values are
    refused with the preset named."""
    assert resolve("lite").augment is None and "augment" not in resolve("lite").to_dict()
    cfg = resolve("lite", overrides={"augment.mri_noise": 0.02})
    assert cfg.augment == AugmentConfig(mri_noise=0.02) and cfg.augment.flip_horizontal == 0.5
    assert cfg.to_dict()["augment"] == {**AugmentConfig().to_dict(), "mri_noise": 0.02}   # config.json
    assert RunConfig.from_dict(cfg.to_dict()).augment == cfg.augment                      # and back on resume
    augment = Augment.of(cfg.augment)                                                    # what the data applies
    assert isinstance(augment, Augment) and augment.mri_noise == 0.02 and augment.rotate_deg == 10.0
    for bad, message in (({"augment.mri_nose": 0.02}, "unknown key.*mri_nose"),
                         ({"augment.rotate_deg": -5}, "rotate_deg must not be negative"),
                         ({"augment.flip_vertical": 2}, "flip_vertical is a probability")):
        with pytest.raises(InputError, match=f"lite.json: invalid preset: 'augment': {message}"):
            resolve("lite", overrides=bad)


@pytest.mark.parametrize("bad", [{"image_size": 30}, {"batch_size": 0}, {"ema_decay": 1.0},
                                 {"precision": "fp16"}, {"epochs": "many"}, {"batch_sise": 2},
                                 {"model.widths": [1, 2]}, {"serve": "nothing"}, {"max_steps": 0},
                                 {"serve_scans": "body"}, {"serve_scans": []}])
def test_bad_values_name_the_problem(bad):
    with pytest.raises(InputError, match="invalid preset"):
        resolve("tiny", overrides=bad)


def test_settings_only_ever_refused_are_gone():
    """S is pre-trained on its own and frozen: no learning rate or switch for fine-tuning it."""
    for key in ("optim.lr_s", "optim.fine_tune_segmentation"):
        with pytest.raises(InputError, match="'optim': unknown key"):
            resolve("tiny", overrides={key: 1e-6})


def test_each_task_gets_its_own_batch_and_budget():
    train = resolve("tiny", overrides={"epochs": 7, "seg_epochs": 2, "seg_max_steps": 9, "batch_size": 3,
                                       "max_minutes": 5.0}).train
    seg, gan = train.schedule("segmentation"), train.schedule("colorization")
    assert (seg.batch_size, seg.epochs, seg.max_steps, seg.max_minutes) == (train.seg_batch_size, 2, 9, None)
    assert (gan.batch_size, gan.epochs, gan.max_steps, gan.max_minutes) == (3, 7, None, 5.0)
    assert seg.checkpoint_every == gan.checkpoint_every == train.checkpoint_every
    assert task_key("segmentation", "epochs") == "seg_epochs" and task_key("colorization", "epochs") == "epochs"
    assert task_key("segmentation", "image_size") == "image_size"


def test_assignments_parse_json_or_text():
    assert parse_assignment("loss.lambda_rec=1") == ("loss.lambda_rec", 1)
    assert parse_assignment("train.precision=fp32") == ("train.precision", "fp32")
    assert parse_assignment("model.widths=[8,16,32]") == ("model.widths", [8, 16, 32])
    with pytest.raises(InputError):
        parse_assignment("no-equals-sign")


def _old_config(tmp_path: Path) -> Path:
    """A run's config.json as versions with ``optim.lr_s`` and ``fine_tune_segmentation`` wrote it."""
    data = resolve("tiny").to_dict()
    data["optim"].update(lr_s=1e-6, fine_tune_segmentation=False)
    data["run"] = {"kind": "colorization", "world_size": 1}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_an_old_config_with_retired_optimiser_keys_still_resumes(tmp_path):
    path = _old_config(tmp_path)
    cfg = resume_config(path, {"max_steps": 9})
    assert cfg.train.max_steps == 9 and cfg.preset.optim == resolve("tiny").preset.optim
    assert "lr_s" not in cfg.to_dict()["optim"] and "run" not in read_saved(path)
    with pytest.raises(InputError, match="cannot change loss.lambda_rec of a run in progress"):
        resume_config(path, {"loss.lambda_rec": 1.0})


def test_the_shipped_models_training_configs_still_load():
    """Written before lr_s and fine_tune_segmentation went: both keep resuming."""
    for path in (ROOT / "resources/default_model/training_state").glob("**/config.json"):
        cfg = RunConfig.from_dict(read_saved(path), str(path))
        assert cfg.preset.optim.lr_g > 0
