"""A run's configuration: a preset's sections with the command line's overrides, as a run writes
it beside its checkpoints (``config.json``) and reads it back on ``--resume``.

Overrides are applied here, so the file on disk always states what actually ran. A resumed run may
change only its schedule (`SCHEDULE_KEYS`); anything that changes what it learns needs a new run.
Files written by older versions still load: keys since retired (`RETIRED`) are dropped on reading.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.jsonfile import read_json_object
from core.model.config import Preset, apply_ablation, load_preset_dict, preset_path
from core.model.train_config import AugmentConfig, TrainConfig

#: The file a run writes its resolved configuration to, in its output folder.
CONFIG_FILE = "config.json"
#: Keys a resumed run may change: they extend or re-pace the run without changing what it learns.
SCHEDULE_KEYS = ("epochs", "max_steps", "max_minutes", "checkpoint_every", "keep_checkpoints", "keep_exports",
                 "serve_volumes", "serve_scans", "sample_every", "log_every", "check_sync", "num_workers",
                 "seg_epochs", "seg_max_steps", "seg_max_minutes", "checkpointing", "micro_batch")
#: Keys older versions wrote and this one no longer has, per section: S's own learning rate during
#: colorization and the switch to fine-tune it, which could only ever be off.
RETIRED = {"optim": ("lr_s", "fine_tune_segmentation")}


@dataclass(frozen=True)
class RunConfig:
    """A preset (model, loss, optim), its training schedule and augmentation: all a run depends on."""

    preset: Preset
    train: TrainConfig
    augment: AugmentConfig | None = None

    @property
    def ablation(self) -> str | None:
        return self.preset.raw.get("ablation")

    def to_dict(self) -> dict[str, Any]:
        out = self.preset.to_dict()
        out["train"] = self.train.to_dict()
        if self.augment is not None:
            out["augment"] = self.augment.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "RunConfig":
        """Build from a mapping (a preset file or a run's ``config.json``); ``InputError`` when bad.
        Without an ``augment`` section the run has no augmentation, as runs had before it existed."""
        preset = Preset.from_dict(data, source=source)
        try:
            augment = data.get("augment")
            return cls(preset, TrainConfig.from_dict(data.get("train", {})),
                       None if augment is None else AugmentConfig.from_dict(augment))
        except ValueError as exc:
            raise InputError(source, f"invalid preset: {exc}") from None

    def with_overrides(self, overrides: dict[str, Any], source: str = "overrides") -> "RunConfig":
        """A copy with ``{"section.key": value}`` (or bare train keys) replaced and re-validated."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides), source)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``data`` with dotted keys set: ``train.batch_size``, ``loss.lambda_l1_c_prime``…;
    a key without a dot is a ``train`` key. ``None`` values are skipped (flag not given)."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        out.setdefault(section or "train", {})[name] = value
    return out


def resolve(preset: str | Path = "lite", ablation: str | None = None,
            overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a shipped preset name or a JSON path, apply an ablation (A1–A5) and overrides."""
    source = str(preset_path(preset))
    data = apply_ablation(load_preset_dict(preset), ablation)
    data.setdefault("name", Path(source).stem)
    return RunConfig.from_dict(apply_overrides(data, overrides or {}), source)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``section.key=value`` from the command line; the value is JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InputError("--set", f"expected section.key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def read_saved(path: str | Path) -> dict[str, Any]:
    """The sections of a run's ``config.json``, without its launch record (``run``) and without
    `RETIRED` keys, so the configuration of a run from an older version still resumes."""
    data = read_json_object(Path(path), "run configuration")
    data.pop("run", None)
    for section, keys in RETIRED.items():
        if isinstance(data.get(section), dict):
            for key in keys:
                data[section].pop(key, None)
    return data


def resume_config(path: str | Path, overrides: dict[str, Any]) -> RunConfig:
    """The stored configuration of a run in progress with ``overrides`` applied, refusing any that
    would change what the run learns (only `SCHEDULE_KEYS` may differ from the stored values)."""
    data = read_saved(path)

    def current(key: str) -> Any:
        section, _, name = key.rpartition(".")
        return data.get(section or "train", {}).get(name)

    changed = sorted(k for k, v in overrides.items() if k.rpartition(".")[2] not in SCHEDULE_KEYS and current(k) != v)
    if changed:
        raise InputError("--resume", f"cannot change {', '.join(changed)} of a run in progress "
                                     f"(only {', '.join(SCHEDULE_KEYS)}); start a new --out instead")
    return RunConfig.from_dict(data, str(path)).with_overrides(overrides)
