"""Nothing of a run is lost: unreadable checkpoints are never resumed over or rotated away, the
state kept after a non-finite loss is one whose weights gave a finite loss, temporary files of
killed writes go, one run at a time holds a run folder, states load on the CPU."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from core.errors import InputError
from core.training import state
from core.training.checkpointer import Checkpointer, Position
from core.training.distributed import Context
from core.training.loop import fit
from core.training.runlock import LOCK_FILE, run_lock
from core.training.task import NonFiniteLossError, Task, reduce_and_check
from helpers_training import SyntheticPlanes, tiny

ROOT = Path(__file__).resolve().parents[1]


class Scaled(Task):
    """One linear layer trained by hand: the loss is the sum of its squared weights (float32), and
    ``explode_at`` multiplies the weights by 1e30 after that step's (finite) loss — the next loss
    overflows, as after a learning rate far too high."""

    kind = "colorization"

    def __init__(self, explode_at: int | None = None, blow: float = 1e30):
        self.net = nn.Linear(2, 1).requires_grad_(False)
        nn.init.constant_(self.net.weight, 1.0)
        self.explode_at, self.blow, self.exported = explode_at, blow, []
        self.opt = torch.optim.Adam([nn.Parameter(torch.zeros(2))])

    def modules(self):
        return {"net": self.net}

    def state_dict(self):
        return {"modules": {"net": self.net.state_dict()}, "optimizers": {"a": self.opt.state_dict()}}

    def load_state_dict(self, payload):
        self.net.load_state_dict(payload["modules"]["net"])
        self.opt.load_state_dict(payload["optimizers"]["a"])

    def distribute(self, ctx):
        pass

    def step(self, batch, step):
        losses = reduce_and_check(Context(), {"w2": float((self.net.weight.float() ** 2).sum())}, step)
        self.net.weight.add_(0.01)
        if step == self.explode_at:
            self.net.weight.mul_(self.blow)
        return losses

    def export(self, folder, step):
        self.exported.append(step)
        return folder / "model.safetensors"


def _states(folder):
    return [p.name for p in state.list_states(folder / "checkpoints")]


def test_resume_with_only_unreadable_checkpoints_is_refused_and_changes_nothing(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    state.state_path(folder, 3).write_bytes(b"PK\x03\x04 not a whole zip")
    state.state_path(folder, 6).write_bytes(b"")
    (tmp_path / "log.csv").write_text("step,epoch,samples,samples_per_s,w2\n1,0,2,1.0,2.0\n")
    (tmp_path / "model.safetensors").write_bytes(b"the run's model")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match=r"no readable checkpoint \(state-00000003\.pt: .*; state-00000006\.pt: .*"
                                         r"nothing was changed") as caught:
        fit(Scaled(), SyntheticPlanes(8), Context(), tiny(), tmp_path, resume=True)
    assert "\n" not in str(caught.value)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_unreadable_states_newer_than_the_resumed_one_are_set_aside_not_rotated_over(tmp_path):
    fit(Scaled(), SyntheticPlanes(8), Context(), tiny(max_steps=2, checkpoint_every=1), tmp_path)
    state.state_path(tmp_path / "checkpoints", 4).write_bytes(b"damaged")
    first = Checkpointer(Scaled(), Context(), tiny(), tmp_path, keep=2)
    at, message = first.restore(resume=True, init_from=None)
    assert at.step == 2 and "set aside the unreadable state-00000004.pt" in message
    result = fit(Scaled(), SyntheticPlanes(8), Context(), tiny(max_steps=5, checkpoint_every=1), tmp_path,
                 resume=True)
    assert result.step == 5 and _states(tmp_path) == ["state-00000004.pt", "state-00000005.pt"]
    assert state.load_latest(tmp_path / "checkpoints")[1]["step"] == 5
    assert (tmp_path / "checkpoints" / "state-00000004.pt.unreadable").read_bytes() == b"damaged"


@pytest.mark.parametrize("keep", [1, 2])
def test_after_a_non_finite_loss_the_kept_state_is_one_whose_weights_gave_a_finite_loss(tmp_path, keep):
    """Step 3 blows the weights up (its own loss is finite), step 4's loss overflows: the state of
    step 3 led to it, so the good one is step 2's — kept even with keep 1, and re-exported."""
    task = Scaled(explode_at=3)
    cfg = tiny(max_steps=6, checkpoint_every=1, keep_checkpoints=keep)
    good = state.state_path(tmp_path / "checkpoints", 2)
    with pytest.raises(NonFiniteLossError, match=rf"step 4 .*last good checkpoint is {good}\. .*python -m train "
                                                 rf"colorization --init-from {good} --out NEW_FOLDER --set "
                                                 rf"optim\.lr_g=0\.0001 --set optim\.lr_d="):
        fit(task, SyntheticPlanes(8), Context(), cfg, tmp_path)
    assert "state-00000002.pt" in _states(tmp_path)
    weights = state.load_state(good)["modules"]["net"]["weight"]
    assert torch.isfinite(weights).all() and weights.abs().max() < 2
    assert task.exported[-1] == 2 and torch.equal(task.net.weight, weights)     # the model ends as the good state


def test_non_finite_weights_are_never_saved(tmp_path):
    with pytest.raises(NonFiniteLossError, match="non-finite weights in net after step 1: not saved; no checkpoint"):
        fit(Scaled(explode_at=1, blow=float("nan")), SyntheticPlanes(8), Context(), tiny(max_steps=1), tmp_path)
    assert _states(tmp_path) == []


def test_temporary_files_of_killed_writes_are_removed_at_the_next_start(tmp_path):
    left = [tmp_path / ".model.0123456789ab.tmp.safetensors", tmp_path / ".loss_curves.00112233aabb.tmp.png",
            tmp_path / "samples" / ".step_00000003.a1b2c3d4e5f6.tmp.png",
            tmp_path / "checkpoints" / ".state-00000003.ffeeddccbbaa.tmp.pt"]
    kept = [tmp_path / ".notes.txt", tmp_path / "samples" / "step_00000003.png"]
    for path in left + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    Checkpointer(Scaled(), Context(), tiny(), tmp_path, keep=2)
    assert [p for p in left if p.exists()] == [] and all(p.exists() for p in kept)


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_lives(tmp_path):
    with run_lock(Context(), tmp_path) as note:
        assert note is None and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(InputError, match=rf"in use by another run \(pid {os.getpid()} on host "):
            fit(Scaled(), SyntheticPlanes(8), Context(), tiny(max_steps=1), tmp_path)
    assert not (tmp_path / LOCK_FILE).exists()
    fit(Scaled(), SyntheticPlanes(8), Context(), tiny(max_steps=1), tmp_path)          # free again


def test_a_stale_lock_is_taken_over_and_one_from_another_host_is_explained(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": "then"}))
    with run_lock(Context(), tmp_path) as note:
        assert f"stale lock of a run that is no longer running (pid {pid}" in note
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": "elsewhere", "pid": 12, "started": "then"}))
    with pytest.raises(InputError, match="another host .*pid 12 on host elsewhere.*delete .*run.lock"):
        with run_lock(Context(), tmp_path):
            pass


def test_states_load_on_the_cpu_whatever_the_run_device(tmp_path):
    """Loading onto the run's device left the NumPy RNG key tensor there, and ``.numpy()`` failed
    (``meta`` stands in for a GPU)."""
    first = Checkpointer(Scaled(), Context(), tiny(), tmp_path, keep=2)
    first.task.opt.step()                                            # Adam gets its step counter
    first.save(Position(step=2), global_batch=2)
    resumed = Scaled()
    at, _ = Checkpointer(resumed, Context(device=torch.device("meta")), tiny(), tmp_path, keep=2).restore(
        resume=True, init_from=None)
    assert at.step == 2
    assert all(t.device.type == "cpu" for s in resumed.opt.state.values() for t in s.values())


def test_a_worker_stops_when_its_launcher_is_killed(tmp_path):
    """torchrun killed outright used to leave its workers training (and holding the run's lock)."""
    worker = ("import sys, time; from core.training.distributed import stop_with_launcher; stop_with_launcher(); "
              "print('ready', flush=True); time.sleep(60)")
    launcher = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', sys.argv[1]]); "
                "print(child.pid, flush=True); child.wait()")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", launcher, worker], stdout=subprocess.PIPE, text=True, env=env)
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "ready"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


class Drawing(Scaled):
    """Its loss draws from NumPy's and Python's global generators, as augmentations may."""

    def step(self, batch, step):
        import random

        import numpy as np
        return {"numpy": float(np.random.rand()), "python": random.random()}


def test_numpy_and_python_generators_are_seeded_by_the_run(tmp_path):
    import random

    import numpy as np
    from core.training.runlog import read_log

    logs = []
    for name in ("a", "b"):
        np.random.seed(None)
        random.seed()                                            # whatever came before the run
        fit(Drawing(), SyntheticPlanes(8), Context(), tiny(max_steps=2), tmp_path / name)
        logs.append(read_log(tmp_path / name / "log.csv")[1])
    assert [(r["numpy"], r["python"]) for r in logs[0]] == [(r["numpy"], r["python"]) for r in logs[1]]


def test_a_resumed_state_that_goes_non_finite_at_once_is_named_as_the_cause(tmp_path):
    with pytest.raises(NonFiniteLossError):
        fit(Scaled(explode_at=3), SyntheticPlanes(8), Context(), tiny(max_steps=6, checkpoint_every=3), tmp_path)
    assert _states(tmp_path) == ["state-00000003.pt"]                  # written after the exploding step
    with pytest.raises(NonFiniteLossError, match=r"step 4 .*the weights of the newest checkpoint \(.*state-00000003"
                                                 r"\.pt\) led to it; no checkpoint with a finite loss"):
        fit(Scaled(), SyntheticPlanes(8), Context(), tiny(max_steps=6, checkpoint_every=3), tmp_path, resume=True)
