"""Benchmark: the default registration on unseen phantom subjects of each size.

    python benchmarks/bench_registration.py [--sizes small default] [--seeds 100-119] [--threads 1]
                                            [--json results.json]

Seeds 100 and up are never used for training (the presets train and test on 0-4). Every
subject is registered with the shipped defaults (no overrides; ``strict=False`` only so that a
refused subject's figures are still printed). Per subject: success (a stage passed its quality
checks, the run would not be refused), the stage kept, the target registration error before /
after the initial pose / after registration, measured through the phantom's known transform,
body and mean tissue Dice after, and wall time (phantom generation excluded; it is cached).
Per size: success rate, median TRE before and after with the reduction against the unregistered
start (the reference, computed in the same run), how many results pass their checks with a TRE
worse than their start, Dice medians and wall time. Targets of issue 17: ≥ 95 % success, median
TRE cut by ≥ 70 %, no passing result worse than its start.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.atomic import write_text
from core.dataset.build import parse_ids
from core.phantom import make_subject
from core.registration import register


def run_subject(seed: int, size: str, threads: int | None) -> dict:
    """Register one phantom subject with the defaults and return its figures."""
    subject = make_subject(seed, size)
    start = time.perf_counter()
    report = register(subject.mri, subject.cryo, mri_labels=subject.mri_labels, labels=subject.labels,
                      truth=subject.transform.mri_to_cryo, threads=threads, strict=False).report
    tre = report["tre_mm"]
    return {"seed": seed, "size": size, "success": report["checks"]["passed"], "kept": report["kept_stage"],
            "tre_before": tre["before"]["mean"], "tre_initial": report["initial_pose"]["tre_mean_mm"],
            "tre_after": tre["after"]["mean"], "body_dice": report["body_dice"]["after"],
            "tissue_dice_before": report["dice"]["mean_before"], "tissue_dice": report["dice"]["mean_after"],
            "seconds": time.perf_counter() - start, "problems": report["checks"]["problems"],
            "warnings": report["checks"]["warnings"]}


def print_row(r: dict) -> None:
    verdict = "ok  " if r["success"] else "FAIL"
    print(f"{r['size']:>7} {r['seed']:>4} {verdict} {r['kept']:>8}  TRE {r['tre_before']:6.2f} → init "
          f"{r['tre_initial']:5.2f} → {r['tre_after']:5.2f} mm  body Dice {r['body_dice']:.3f}  tissue Dice "
          f"{r['tissue_dice_before']:.3f} → {r['tissue_dice']:.3f}  {r['seconds']:6.1f} s", flush=True)
    for line in r["problems"] + r["warnings"]:
        print(f"{'':13}{line}", flush=True)


def totals(rows: list[dict]) -> dict:
    """Success rate, TRE medians and reduction, passing-but-worse count, Dice medians, time."""
    before = np.median([r["tre_before"] for r in rows])
    after = np.median([r["tre_after"] for r in rows])
    return {"subjects": len(rows), "succeeded": sum(r["success"] for r in rows),
            "success_rate": float(np.mean([r["success"] for r in rows])),
            "kept_rigid": sum(r["kept"] == "rigid" for r in rows),
            "median_tre_before": float(before), "median_tre_after": float(after),
            "median_tre_reduction": float(1 - after / before),
            "passing_but_worse_than_start": sum(r["success"] and r["tre_after"] > r["tre_before"] for r in rows),
            "median_body_dice": float(np.median([r["body_dice"] for r in rows])),
            "median_tissue_dice": float(np.median([r["tissue_dice"] for r in rows])),
            "median_seconds": float(np.median([r["seconds"] for r in rows])),
            "total_seconds": float(sum(r["seconds"] for r in rows))}


def print_totals(size: str, t: dict) -> None:
    print(f"{size}: {t['succeeded']}/{t['subjects']} succeeded ({t['success_rate']:.0%}; rigid kept on "
          f"{t['kept_rigid']}), median TRE {t['median_tre_before']:.2f} → {t['median_tre_after']:.2f} mm "
          f"({t['median_tre_reduction']:.0%} less), passing but worse than the start: "
          f"{t['passing_but_worse_than_start']}, median body Dice {t['median_body_dice']:.3f}, median tissue "
          f"Dice {t['median_tissue_dice']:.3f}, wall time median {t['median_seconds']:.1f} s, total "
          f"{t['total_seconds']:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "default"], help="phantom sizes")
    parser.add_argument("--seeds", default="100-119", help="subject seeds, e.g. 100-119 (never used in training)")
    parser.add_argument("--threads", type=int, help="elastix threads (default: all available)")
    parser.add_argument("--json", type=Path, help="also write every row and the totals here")
    args = parser.parse_args(argv)
    seeds = parse_ids(args.seeds)
    rows: dict[str, list[dict]] = {}
    for size in args.sizes:
        rows[size] = []
        for seed in seeds:
            rows[size].append(run_subject(seed, size, args.threads))
            print_row(rows[size][-1])
            if args.json:
                write_text(args.json, json.dumps({"rows": rows}, indent=1))
    summary = {size: totals(r) for size, r in rows.items()}
    for size, t in summary.items():
        print_totals(size, t)
    if args.json:
        write_text(args.json, json.dumps({"rows": rows, "totals": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
