"""The project's own error type for bad user input."""
from __future__ import annotations

import os


class InputError(ValueError):
    """Bad input that the user can fix: names the file (or argument) and the problem.

    Raised instead of letting a library's traceback reach the user; the CLI prints it as
    one line and exits non-zero, the viewer shows it in a message box.
    """

    def __init__(self, source: str | os.PathLike | None, problem: str):
        self.source = None if source is None else os.fspath(source)
        self.problem = problem
        super().__init__(problem if self.source is None else f"{self.source}: {problem}")
