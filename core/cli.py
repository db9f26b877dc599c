"""The ``mricolor`` command: one subcommand per module, each with ``add_arguments`` and ``run``.

Subcommand modules keep their heavy imports (torch, itk, Qt) inside ``run`` so that
``mricolor --help`` and argument errors answer at once. Commands that live above ``core``
(the desktop viewer's ``view``) join through the ``mricolor.commands`` entry-point group of the
installed package (``pyproject.toml``), so that ``core`` never imports the layers built on it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points
from types import ModuleType

from core.errors import run_command

#: Entry-point group through which packages above ``core`` add subcommands (name = module).
COMMAND_GROUP = "mricolor.commands"
# name -> module implementing add_arguments(parser) and run(args) -> int
SUBCOMMANDS: dict[str, str] = {
    "phantom": "core.commands.phantom",
    "register": "core.commands.register",
    "prepare": "core.commands.prepare",
    "colorize": "core.commands.colorize",
    "evaluate": "core.commands.evaluate",
}


def command_modules() -> dict[str, ModuleType]:
    """The core subcommands, then those installed packages register under ``COMMAND_GROUP``."""
    modules = {name: importlib.import_module(module) for name, module in SUBCOMMANDS.items()}
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        modules.setdefault(entry.name, entry.load())
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mricolor",
        description="Colorize MRI with the anatomical colours of cryosection photographs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in command_modules().items():
        doc = (module.__doc__ or "").strip().splitlines()
        p = sub.add_parser(name, help=doc[0] if doc else None, description=(module.__doc__ or "").strip())
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mricolor``; bad input ends in one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    return run_command(f"mricolor {args.command}", lambda: args._run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
