"""Reading the project's small JSON files (presets, sidecars) with one clear error wording."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import InputError


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; `InputError` naming the file if it is not valid JSON or not an
    object. ``what`` names the file's role in messages ("preset", "sidecar")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"{what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"{what} must be a JSON object")
    return data
