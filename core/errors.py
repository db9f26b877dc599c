"""The project's error types and the one exit-status policy of its commands.

``mricolor …`` and ``python -m train …`` both end through `run_command`: 0 done, 2 bad input
(one line on stderr), a `Stopped` error's own status (3 a non-finite training loss, 4 training
processes out of sync, 5 a calibration fit that diverged), 130 interrupted.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

#: Exit statuses shared by every command.
EXIT_OK, EXIT_INPUT, EXIT_INTERRUPTED = 0, 2, 130


class InputError(ValueError):
    """Bad input that the user can fix: names the file (or argument) and the problem.

    Raised instead of letting a library's traceback reach the user; the CLI prints it as
    one line and exits non-zero, the viewer shows it in a message box.
    """

    def __init__(self, source: str | os.PathLike | None, problem: str):
        self.source = None if source is None else os.fspath(source)
        self.problem = problem
        super().__init__(problem if self.source is None else f"{self.source}: {problem}")


class Stopped(RuntimeError):
    """A run that stopped on purpose with something to say (its message) and its own exit status."""

    exit_status = 1


def run_command(prog: str, call: Callable[[], int | None]) -> int:
    """Run a command's body and turn the project's errors into one line on stderr and an exit status."""
    try:
        return int(call() or EXIT_OK)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Stopped as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
