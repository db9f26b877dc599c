"""What only shows with several processes (gloo, short timeouts) or on a GPU (mocked): files one
node cannot see, evaluation spread over the ranks, the device each rank takes."""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest
import torch

from core.errors import InputError
from core.evaluation.evaluate import evaluate
from core.training import distributed
from core.training.colorization import ensure_segmentation
from core.training.distributed import pick_device
from helpers_ranks import run_ranks
from helpers_training import SyntheticPlanes, synthetic_data, tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pretrained_unet(ctx, folders: list[str]) -> str:
    return str(ensure_segmentation(tiny(), synthetic_data(8, 2), ctx, folders[ctx.rank]))


def test_a_unet_only_rank_0_can_see_stops_every_rank_with_one_message(tmp_path):
    """Two nodes without a shared --out: rank 0 finds the U-Net, rank 1 does not. Each rank
    deciding alone, rank 1 would start pre-training by itself and hang in its first collective."""
    seen, unseen = tmp_path / "node0", tmp_path / "node1"
    seen.mkdir(), unseen.mkdir()
    (seen / "model.safetensors").write_bytes(b"rank 0 wrote this")
    results = run_ranks(_pretrained_unet, [str(seen), str(unseen)], timeout_s=15)
    for result in results:
        assert result.startswith("InputError") and "is missing on rank(s) 1: " in result
        assert "every node shares" in result


class _Slow:
    """A source that takes 0.4 s per batch: rank 0 alone would need 8 × 0.4 s, past the timeout."""

    def __call__(self, batch):
        time.sleep(0.4)
        return {"slow": batch["cryo"]}


def _spread_table(ctx, planes: int):
    table = evaluate([("model", _Slow())], SyntheticPlanes(planes, 64, seed=1), batch_size=2,
                     part=(ctx.rank, ctx.world_size), gather=partial(distributed.gather_objects, ctx))
    distributed.barrier(ctx)
    return table.planes, table.stats["slow"]["FSIM"]


def test_evaluation_is_spread_over_the_ranks_and_equals_one_process(one_torch_thread):
    """8 batches over 2 ranks with a 2.5 s timeout: with rank 0 scoring alone, rank 1 would wait
    3.2 s in the barrier and fail."""
    alone = evaluate([("model", lambda b: {"slow": b["cryo"]})], SyntheticPlanes(16, 64, seed=1), batch_size=2)
    results = run_ranks(_spread_table, 16, timeout_s=2.5)
    assert results[0] == results[1] == (16, pytest.approx(alone.stats["slow"]["FSIM"], rel=1e-12))


def _ablation(ctx, out: str) -> bool:
    """Two variants for one step each, then the table, with every plane's scores slowed down."""
    import core.metrics
    from core.model.run_config import resolve
    from core.training.ablation import run_ablation

    scores = core.metrics.table_row
    core.metrics.table_row = lambda *args, **kwargs: time.sleep(0.5) or scores(*args, **kwargs)
    configs = {v: resolve("tiny", v, {"image_size": 64, "batch_size": 2, "max_steps": 1, "serve": "c_hat"})
               for v in ("A2", "A3")}
    run_ablation(configs, synthetic_data(4, 16, size=64), ctx, out)
    return (Path(out) / "ablation.md").is_file()


@pytest.mark.slow
def test_the_ablation_table_is_written_when_rank_0_alone_would_outlast_the_timeout(tmp_path):
    """The issue's reproduction: 2 batches × 9 rows × 0.5 s is 9 s for one rank, past a 7 s
    timeout; each rank scoring one batch, both finish."""
    assert run_ranks(_ablation, str(tmp_path), timeout_s=7) == [True, True]


def test_an_explicit_gpu_index_is_refused_with_several_processes():
    with pytest.raises(InputError, match="all 8 processes on one GPU"):
        pick_device("cuda:1", local_rank=3, world_size=8)


def test_cuda_training_benchmarks_cudnn_for_its_fixed_plane_size(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert pick_device("cuda", local_rank=1) == torch.device("cuda", 1) and torch.backends.cudnn.benchmark


@pytest.mark.parametrize("capability, bf16", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_auto_precision_trains_in_bf16_only_on_gpus_that_run_it_natively(monkeypatch, capability, bf16):
    from core.training.task import uses_bf16

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert uses_bf16(torch.device("cuda", 0), "auto") is bf16 and uses_bf16(torch.device("cuda", 0), "bf16")
    assert not uses_bf16(torch.device("cpu"), "auto") and not uses_bf16(torch.device("cuda", 0), "fp32")
