"""The phantom's tissue table, read from ``resources/tissues.csv`` (its single source).

The anatomy refers to tissues by name, so ids and colours can be edited in the CSV; the names
the phantom paints must all be there, and ids must be 0..N-1 (segmentation targets). A subject
carries the table only up to the highest id its region paints: the whole body keeps the 20
tissues it always had (so models trained on it, whose heads predict 20 classes, still fit),
the clinical head adds the tissues appended for it.
"""
from __future__ import annotations

from core.errors import InputError
from core.labels import LabelTable

TISSUES = ("background", "skin", "fat", "muscle", "cortical_bone", "marrow", "grey_matter", "white_matter",
           "csf", "lung", "myocardium", "blood", "liver", "kidney", "spleen", "bowel_wall", "bowel_content",
           "bladder", "spinal_cord", "cartilage")
HEAD_TISSUES = TISSUES + ("deep_grey_matter", "air", "vitreous")


def load_table(tissues: tuple[str, ...] = TISSUES) -> LabelTable:
    """The shipped tissue table up to the highest id among ``tissues``, checked for all of them."""
    import resources

    path = resources.path("tissues.csv")
    table = LabelTable.read(path)
    names = {lab.name for lab in table}
    missing = [t for t in tissues if t not in names]
    if missing:
        raise InputError(path, f"lacks the phantom tissues {missing}")
    if table.ids != list(range(len(table))):
        raise InputError(path, "label ids must be 0..N-1 without gaps")
    if table[0].name != "background":
        raise InputError(path, "id 0 must be the background")
    last = max(lab.id for lab in table if lab.name in tissues)
    return LabelTable([lab for lab in table if lab.id <= last])


def tissue_ids(table: LabelTable) -> dict[str, int]:
    """Name → id of every label in ``table``."""
    return {lab.name: lab.id for lab in table}
