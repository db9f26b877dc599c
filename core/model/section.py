"""A preset section: a frozen dataclass read from, and written back to, one JSON object.

Every section of a preset (``model``, ``loss``, ``optim``, ``train``, ``augment``) is a subclass,
so all of them refuse unknown keys and report bad values the same way, naming the section: a typo
in a preset or an override fails loudly instead of silently training the wrong model.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound="Section")


class Section:
    """Base of the section dataclasses; ``name`` is the section's key in a preset."""

    name: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON values (tuples become lists)."""
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[S], data: Any) -> S:
        """Build from a JSON object; ``ValueError`` naming the section for unknown keys or bad values."""
        if not isinstance(data, dict):
            raise ValueError(f"'{cls.name}' must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"'{cls.name}': unknown key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"'{cls.name}': {exc}") from None


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def check_positive_int(section: Section, *names: str, optional: bool = False) -> None:
    """Refuse values of ``names`` that are not positive integers (or None when ``optional``)."""
    for name in names:
        value = getattr(section, name)
        if optional and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            suffix = " or null" if optional else ""
            raise ValueError(f"{name} must be a positive integer{suffix}, got {value!r}")
