"""What the viewer remembers between sessions (QSettings): recent files, layout, window/level per study.

Lists are stored as JSON strings because QSettings' own list round trip differs between the
native and INI back ends (a one-element list comes back as a plain string).
"""
from __future__ import annotations

import json

from PyQt6.QtCore import QSettings

ORGANIZATION = "mricolor"
APPLICATION = "viewer"
_MAX_RECENT = 10


def default_settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)


class ViewerSettings:
    """Typed access to the viewer's QSettings (tests pass an INI file in a temporary folder)."""

    def __init__(self, settings: QSettings | None = None):
        self.qsettings = settings if settings is not None else default_settings()

    def recent(self) -> list[tuple[str, str]]:
        """(kind, path) pairs, newest first; kind is mri, cryo, labels or checkpoint."""
        try:
            pairs = json.loads(str(self.qsettings.value("recent", "[]")))
        except json.JSONDecodeError:
            return []
        return [(str(k), str(p)) for k, p in pairs if isinstance(k, str)] if isinstance(pairs, list) else []

    def add_recent(self, kind: str, path: str) -> None:
        pairs = [(kind, path)] + [pair for pair in self.recent() if pair != (kind, path)]
        self.qsettings.setValue("recent", json.dumps(pairs[:_MAX_RECENT]))

    def window_level(self, study_key: str) -> tuple[float, float] | None:
        value = self.qsettings.value(f"window_level/{_safe(study_key)}")
        try:
            window, level = json.loads(str(value))
            return float(window), float(level)
        except (TypeError, ValueError, json.JSONDecodeError):
            return None

    def set_window_level(self, study_key: str, window: float, level: float) -> None:
        self.qsettings.setValue(f"window_level/{_safe(study_key)}", json.dumps([window, level]))

    def value(self, key: str, default: str | None = None):
        return self.qsettings.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()


def _safe(key: str) -> str:
    """QSettings keys treat '/' as groups: flatten paths into one key."""
    return key.replace("\\", "|").replace("/", "|")
