"""Elastix parameter files: read, check, override and write them without importing ``itk``.

Users tune registration by editing plain elastix parameter files (``resources/registration``
ships the defaults, one file per stage). They are parsed here rather than by
``itk.ParameterObject.ReadParameterFile`` so that a typo is reported at once, naming the file
and the line, instead of after the ~10 s ``import itk`` and deep inside elastix.

A parameter map is ``dict[str, list[str]]``: elastix keeps every value as a list of strings.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from core.errors import InputError

ParameterMap = dict[str, list[str]]

#: The stages run by default: rigid, then B-spline (as the paper does).
DEFAULT_STAGES = ("rigid", "bspline")

#: Keys every stage needs; elastix would otherwise fail with a message about a missing component.
REQUIRED_KEYS = ("Transform", "Metric", "Optimizer", "Registration")
#: Keys every transform file (elastix's output) holds.
TRANSFORM_KEYS = ("Transform", "TransformParameters")

_ENTRY = re.compile(r"^\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*(.*)\)\s*$")
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


def default_parameter_file(stage: str) -> Path:
    """The shipped parameter file of a default stage (``"rigid"`` or ``"bspline"``)."""
    from resources import path

    if stage not in DEFAULT_STAGES:
        raise ValueError(f"default stages are {DEFAULT_STAGES}, got {stage!r}")
    return path(f"registration/{stage}.txt")


def parse_parameter_text(text: str, source: str = "parameter file") -> ParameterMap:
    """Parse elastix's ``(Key value value …)`` syntax; ``//`` starts a comment."""
    out: ParameterMap = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise InputError(source, f"line {number} is not an elastix entry '(Key value …)': {raw.strip()!r}")
        key, rest = match.groups()
        values = [quoted if quoted else bare for quoted, bare in _TOKEN.findall(rest)]
        if not values:
            raise InputError(source, f"line {number}: '{key}' has no value")
        if key in out:
            raise InputError(source, f"line {number}: '{key}' is given twice")
        out[key] = values
    return out


def check_parameter_map(pmap: ParameterMap, source: str, required: tuple[str, ...] = REQUIRED_KEYS) -> ParameterMap:
    """Refuse a map elastix could not run, with a message that names the missing keys."""
    missing = [k for k in required if k not in pmap]
    if missing:
        raise InputError(source, f"lacks {', '.join(missing)}; it needs {', '.join(required)}")
    for key in ("MaximumNumberOfIterations", "NumberOfResolutions", "NumberOfSpatialSamples"):
        for value in pmap.get(key, []):
            if not value.isdigit() or int(value) < 1:
                raise InputError(source, f"{key} must be a positive integer, got {value!r}")
    return pmap


def read_parameter_file(path: str | os.PathLike, required: tuple[str, ...] = REQUIRED_KEYS) -> ParameterMap:
    """Read and check one elastix parameter file (``required``: keys it must define)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "parameter file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot be read as text ({exc})") from None
    return check_parameter_map(parse_parameter_text(text, str(p)), str(p), required)


def load_stages(paths: list[str | os.PathLike] | None = None,
                overrides: dict[str, str | list[str]] | None = None) -> list[ParameterMap]:
    """The parameter maps to run, one per stage: ``paths`` or the shipped rigid + B-spline files.

    ``overrides`` (e.g. ``{"MaximumNumberOfIterations": "64"}``) are applied to every stage, so
    tests and quick trials can shorten a run without copying the files.
    """
    files = [Path(p) for p in paths] if paths else [default_parameter_file(s) for s in DEFAULT_STAGES]
    maps = [read_parameter_file(p) for p in files]
    for pmap, source in zip(maps, files):
        for key, value in (overrides or {}).items():
            pmap[key] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        check_parameter_map(pmap, str(source))
    return maps


def _format_value(value: str) -> str:
    try:
        float(value)
    except ValueError:
        return f'"{value}"'
    return value


def format_parameter_map(pmap: ParameterMap) -> str:
    """elastix text for ``pmap`` (numbers bare, everything else quoted, as elastix writes them)."""
    return "".join(f"({key} {' '.join(_format_value(v) for v in values)})\n" for key, values in pmap.items())
