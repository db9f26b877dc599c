"""Evaluate checkpoints on a dataset's test planes: a Table-I style table (Markdown + CSV).

Rows: reference rows computed without learning (the true colorization on phantom data, the
registered cryosection itself, an intensity→colour lookup table fitted on the training planes,
the tissue oracle on phantom data), then every output of every checkpoint (ĉ, c′, fused, guided:
`core.model.outputs`). Columns: CF, ΔCF, SSIM, MS-SSIM, STSIM, FSIM as
mean ± std, plus ΔE and PSNR against the true colorization on phantom data.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder written by `mricolor prepare`")
    parser.add_argument("--checkpoints", nargs="*", default=[], metavar="CKPT",
                        help="model checkpoints (files or run folders); none: reference rows only")
    parser.add_argument("--names", nargs="*", metavar="NAME", help="row names, one per checkpoint "
                                                                   "(default: the run folder's name)")
    parser.add_argument("--out", required=True, type=Path, help="folder for table.md and table.csv")
    parser.add_argument("--planes", type=int, help="evaluate on at most this many test planes (default: all)")
    parser.add_argument("--image-size", type=int,
                        help="resize planes to this size (default: the size the checkpoints were trained at)")
    parser.add_argument("--batch-size", type=int, default=8, help="planes per batch (default: 8)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")


def run(args: argparse.Namespace) -> int:
    from core.model.checkpoint import resolve_path
    from core.dataset.plane_data import open_data
    from core.evaluation.evaluate import evaluate_checkpoints

    data = open_data(args.data)
    checkpoints = [resolve_path(p) for p in args.checkpoints]
    table = evaluate_checkpoints(checkpoints, data, names=args.names, device=args.device, planes=args.planes,
                                 batch_size=args.batch_size, image_size=args.image_size)
    md, csv_path = table.write(args.out, "table", title=f"Evaluation on {data.source}")
    print(table.markdown(), end="")
    print(f"wrote {md} and {csv_path}", file=sys.stderr)
    return 0
