"""The ``mricolor`` command: one subcommand per module, each with ``add_arguments`` and ``run``.

Subcommand modules keep their heavy imports (torch, itk, Qt) inside ``run`` so that
``mricolor --help`` and argument errors answer at once.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import InputError

# name -> module implementing add_arguments(parser) and run(args) -> int
SUBCOMMANDS: dict[str, str] = {
    "phantom": "core.commands.phantom",
    "register": "core.commands.register",
    "prepare": "core.commands.prepare",
    "colorize": "core.commands.colorize",
    "evaluate": "core.commands.evaluate",
    "view": "viewer.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mricolor",
        description="Colorize MRI with the anatomical colours of cryosection photographs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip().splitlines()
        p = sub.add_parser(name, help=doc[0] if doc else None, description=(module.__doc__ or "").strip())
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mricolor``; bad input ends in one line on stderr and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        print(f"mricolor {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mricolor {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
