"""Checkpoints: exact round trip, no code execution on load, clear errors on foreign or mismatched files."""
from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
import safetensors.torch
import torch
from torch import nn

from core.model.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from core.model.config import load_preset
from core.errors import InputError
from core.labels import Label, LabelTable
from core.model.networks import build_generator, build_networks

TABLE = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "fat", "soft tissue", (230, 200, 90)),
                    Label(2, "muscle", "soft tissue", (170, 60, 50))])


@pytest.fixture
def nets():
    return build_networks(load_preset("tiny").model, num_classes=len(TABLE), seed=0)


def test_round_trip_reproduces_outputs_exactly(nets, tmp_path):
    path = save_checkpoint(tmp_path / "run.safetensors", nets.modules(), nets.config, serve="fused",
                           label_table=TABLE, extra={"step": 12, "preset": "tiny"})
    ckpt = load_checkpoint(path)
    assert ckpt.config == nets.config and ckpt.serve == "fused" and ckpt.label_table == TABLE
    assert ckpt.extra == {"step": 12, "preset": "tiny"} and set(ckpt.networks) == set(nets.modules())
    m, c = torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        g_mc = ckpt.build("g_mc")
        for name in ("c_hat", "c_prime"):
            assert torch.equal(g_mc(m)[name], nets.g_mc(m)[name])
        assert torch.equal(ckpt.build("g_cm")(c)["m_hat"], nets.g_cm(c)["m_hat"])
        assert torch.equal(ckpt.build("d_c")(c), nets.d_c(c))
        assert torch.equal(ckpt.build("seg").eval()(c), nets.seg.eval()(c))


def test_folder_path_and_wrapped_modules(nets, tmp_path):
    class Wrapper(nn.Module):  # stands in for DDP / torch.compile, which hold the net as an attribute
        def __init__(self, module):
            super().__init__()
            self.module = module

    folder = tmp_path / "default_model"
    folder.mkdir()
    path = save_checkpoint(folder, {"g_mc": Wrapper(nets.g_mc)}, nets.config)
    assert path == folder / CHECKPOINT_FILE
    ckpt = load_checkpoint(folder)
    assert ckpt.networks == ("g_mc",) and ckpt.label_table is None and ckpt.serve == "c_hat"
    fresh = build_generator(nets.config)
    ckpt.load_into("g_mc", Wrapper(fresh))
    for a, b in zip(fresh.state_dict().values(), nets.g_mc.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="no 'g_cm'"):
        ckpt.build("g_cm")


class _Payload:
    """Unpickling this would create ``marker`` — the classic pickle code-execution attack."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_pickle_does_not_run(tmp_path, writer):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    if writer == "pickle":
        evil.write_bytes(pickle.dumps({"g_mc": _Payload(marker)}))
    else:
        torch.save({"g_mc": _Payload(marker)}, evil)
    assert not marker.exists()
    with pytest.raises(InputError, match="not a mricolor checkpoint"):
        load_checkpoint(evil)
    from core.inference import Colorizer

    with pytest.raises(InputError):
        Colorizer.from_checkpoint(evil)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"hello world, not a checkpoint", b'{"a": 1}'])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a mricolor checkpoint"):
        load_checkpoint(path)


def test_foreign_safetensors_and_missing_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(InputError, match="without mricolor metadata"):
        load_checkpoint(path)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_mismatched_architecture(nets, tmp_path):
    path = save_checkpoint(tmp_path / "tiny.safetensors", {"g_mc": nets.g_mc}, nets.config)
    lite = build_generator(load_preset("lite").model)
    with pytest.raises(InputError, match="do not match the architecture"):
        load_checkpoint(path).load_into("g_mc", lite)
    # weights of one architecture declared as another
    tensors = safetensors.torch.load_file(str(path))
    with safetensors.safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    wider = dataclasses.replace(nets.config, widths=(16, 32, 64))
    metadata["model"] = json.dumps(wider.to_dict())
    forged = tmp_path / "forged.safetensors"
    safetensors.torch.save_file(tensors, str(forged), metadata=metadata)
    with pytest.raises(InputError, match="different shape"):
        load_checkpoint(forged).build("g_mc")
    # a tensor missing
    del tensors[next(iter(tensors))]
    metadata["model"] = json.dumps(nets.config.to_dict())
    safetensors.torch.save_file(tensors, str(forged), metadata=metadata)
    with pytest.raises(InputError, match="missing"):
        load_checkpoint(forged).build("g_mc")


def test_corrupt_metadata(nets, tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", {"g_mc": nets.g_mc}, nets.config)
    tensors = safetensors.torch.load_file(str(path))
    with safetensors.safe_open(str(path), "pt") as f:
        good = f.metadata()
    for key, value, message in (("model", "{not json", "corrupt"), ("model", '{"widths": 3}', "invalid architecture"),
                                ("networks", '["g_mc", "evil"]', "invalid network list"),
                                ("format_version", "99", "newer"), ("serve", "rainbow", "serve")):
        bad = tmp_path / "bad.safetensors"
        safetensors.torch.save_file(tensors, str(bad), metadata={**good, key: value})
        with pytest.raises(InputError, match=message):
            load_checkpoint(bad)


def test_serve_must_exist_in_the_architecture(tmp_path):
    a3 = load_preset("tiny", "A3").model
    with pytest.raises(ValueError, match="c' decoder"):
        save_checkpoint(tmp_path / "a3.safetensors", {"g_mc": build_generator(a3)}, a3, serve="c_prime")


def test_label_table_must_fit_the_segmentation_net(nets, tmp_path):
    four = LabelTable([*TABLE, Label(3, "bone", "skeleton", (240, 240, 230))])
    with pytest.raises(ValueError, match="classes"):
        save_checkpoint(tmp_path / "x.safetensors", nets.modules(), nets.config, label_table=four)
