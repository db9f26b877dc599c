"""Run a function on several gloo processes (spawned, one thread each) with a short timeout."""
from __future__ import annotations

import os
import socket
import traceback
from typing import Any, Callable

import torch
import torch.multiprocessing as mp

from core.training import distributed


def _rank_main(rank: int, world: int, port: int, timeout_s: float, fn: Callable, args: tuple, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    ctx = distributed.init("cpu", timeout_s=timeout_s)
    try:
        results.put((rank, fn(ctx, *args)))
    except Exception as exc:  # noqa: BLE001 - the test reads what each rank ended with
        results.put((rank, f"{type(exc).__name__}: {exc}"))
        traceback.print_exc()
    finally:
        distributed.cleanup()


def run_ranks(fn: Callable, *args: Any, world: int = 2, timeout_s: float = 20.0) -> list[Any]:
    """``fn(ctx, *args)`` on ``world`` gloo ranks; each rank's return value, or its exception as
    "Type: message", in rank order. ``fn`` must be a module-level function (it is pickled)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_rank_main, args=(world, port, timeout_s, fn, args, results), nprocs=world,
                       start_method="spawn")
    return [value for _, value in sorted(results.get() for _ in range(world))]
