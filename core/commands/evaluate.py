"""Evaluate checkpoints on a dataset's test planes: a Table-I style table (Markdown + CSV).

Rows: reference rows computed without learning (the true colorization on phantom data, the
registered cryosection itself, an intensity→colour lookup table fitted on the training planes,
the tissue oracle on phantom data), then every output of every checkpoint (ĉ, c′, fused, guided:
`core.model.outputs`). Columns: CF, ΔCF, SSIM, MS-SSIM, STSIM, FSIM as
mean ± std, plus ΔE and PSNR against the true colorization on phantom data.

With ``--volumes SEEDS``: the whole-volume evaluation that chooses models instead
(`core.evaluation.volumes`): unseen phantom subjects colorized exactly as ``mricolor colorize``
does, body ΔE per subject and per tissue beside lookup tables fitted on the dataset's training
subjects and the tissue oracle, with structure, background and banding; ``volumes.md`` and
``volumes.csv`` in OUT.
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
    parser.add_argument("--volumes", metavar="SEEDS",
                        help="whole-volume evaluation on these unseen phantom subjects (e.g. 100-102 or 100,105)")
    parser.add_argument("--scans", nargs="+", default=["body"], metavar="KIND",
                        help="kinds of phantom scan for --volumes: body (default), small, head (1 mm), "
                             "head-brain (1 mm, skull-stripped)")
    parser.add_argument("--outputs", nargs="+", metavar="OUTPUT",
                        help="for --volumes: the outputs of each checkpoint to evaluate (default: the one it "
                             "serves), e.g. c_prime guided")
    parser.add_argument("--trained-on", nargs="+", default=[], metavar="DATASET",
                        help="for --volumes: further datasets the checkpoints were trained on; their phantom "
                             "seeds are refused as evaluation subjects too")


def run(args: argparse.Namespace) -> int:
    if args.volumes:
        return run_volumes(args)
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


def run_volumes(args: argparse.Namespace) -> int:
    from core.dataset.build import parse_ids
    from core.dataset.manifest import Manifest
    from core.devices import parse_device
    from core.errors import InputError
    from core.evaluation.volume_table import best_model_row, write_tables
    from core.evaluation.volumes import References, evaluate_volumes, model_row, phantom_subjects
    from core.inference import Colorizer
    from core.model.checkpoint import load_checkpoint, resolve_path

    seeds = parse_ids(args.volumes, "--volumes")
    for data in (args.data, *args.trained_on):
        used = {s.metadata.get("seed") for s in Manifest.load(data).subjects if s.metadata.get("source") == "phantom"}
        if used & set(seeds):
            raise InputError("--volumes", f"seeds {sorted(used & set(seeds))} are subjects of {data}; "
                                          "evaluate on subjects never trained on")
    for path in args.checkpoints:
        fitted = set(load_checkpoint(path).extra.get("calibration_fit", {}).get("seeds", [])) & set(seeds)
        if fitted:
            raise InputError("--volumes", f"seeds {sorted(fitted)} are subjects {path}'s calibration was fitted on; "
                                          "evaluate on subjects never trained on")
    names = args.names or [resolve_path(p).parent.name for p in args.checkpoints]
    if len(names) != len(args.checkpoints):
        raise InputError("--names", f"{len(names)} names for {len(args.checkpoints)} checkpoints")
    device = parse_device(args.device)
    references = References.fit(args.data)
    rows = references.rows()
    for name, path in zip(names, args.checkpoints):
        colorizer = Colorizer.from_checkpoint(path, device=device)
        for output in args.outputs or [colorizer.serve]:
            if output not in colorizer.outputs:
                raise InputError("--outputs", f"{path} offers {', '.join(colorizer.outputs)}, not {output!r}")
            rows[f"{name} ({output})"] = model_row(colorizer, output=output)
    subjects = phantom_subjects(seeds, tuple(args.scans))
    table = max((s.labels.label_table for s in subjects if s.labels.label_table is not None), key=len, default=None)
    results = evaluate_volumes(subjects, rows, progress=lambda m: print(m, file=sys.stderr))
    md, csv_path = write_tables(results, args.out, table, f"Whole volumes of unseen subjects ({', '.join(args.scans)})")
    print(md.read_text(), end="")
    best = best_model_row(results)
    if best is not None:
        print(f"lowest mean ΔE over these subjects: {best[0]} ({best[1]:.2f})")
    print(f"wrote {md} and {csv_path}", file=sys.stderr)
    return 0
