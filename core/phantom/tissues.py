"""The phantom's tissue table, read from ``resources/tissues.csv`` (its single source).

The anatomy refers to tissues by name, so ids and colours can be edited in the CSV; the names
the phantom paints must all be there, and ids must be 0..N-1 (segmentation targets).
"""
from __future__ import annotations

from core.errors import InputError
from core.labels import LabelTable

TISSUES = ("background", "skin", "fat", "muscle", "cortical_bone", "marrow", "grey_matter", "white_matter",
           "csf", "lung", "myocardium", "blood", "liver", "kidney", "spleen", "bowel_wall", "bowel_content",
           "bladder", "spinal_cord", "cartilage")


def load_table() -> LabelTable:
    """The shipped tissue table, checked for every tissue the phantom paints."""
    import resources

    path = resources.path("tissues.csv")
    table = LabelTable.read(path)
    names = {lab.name for lab in table}
    missing = [t for t in TISSUES if t not in names]
    if missing:
        raise InputError(path, f"lacks the phantom tissues {missing}")
    if table.ids != list(range(len(table))):
        raise InputError(path, "label ids must be 0..N-1 without gaps")
    if table[0].name != "background":
        raise InputError(path, "id 0 must be the background")
    return table


def tissue_ids(table: LabelTable) -> dict[str, int]:
    """Name → id of every label in ``table``."""
    return {lab.name: lab.id for lab in table}
