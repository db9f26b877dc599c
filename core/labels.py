"""Label tables: id, name, anatomical system and display colour of each tissue class.

Stored as CSV with the columns ``id,name,system,r,g,b`` (the layout real colour-coded
segmentations ship with), or as JSON inside checkpoints.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    system: str
    color: tuple[int, int, int]


class LabelTable:
    """An ordered set of labels with unique ids; id 0 is background by convention."""

    def __init__(self, labels: list[Label]):
        ids = [lab.id for lab in labels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate label ids in {ids}")
        if any(i < 0 for i in ids):
            raise ValueError("label ids must be non-negative")
        self.labels = sorted(labels, key=lambda lab: lab.id)
        self._by_id = {lab.id: lab for lab in self.labels}

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):
        return iter(self.labels)

    def __getitem__(self, label_id: int) -> Label:
        return self._by_id[int(label_id)]

    def __contains__(self, label_id: int) -> bool:
        return int(label_id) in self._by_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelTable) and self.labels == other.labels

    @property
    def ids(self) -> list[int]:
        return [lab.id for lab in self.labels]

    @property
    def num_classes(self) -> int:
        """Classes a segmentation network predicts: ids must be 0..N-1 for integer targets."""
        return max(self.ids) + 1

    def union(self, other: "LabelTable", source: str | None = None) -> "LabelTable":
        """Both tables' labels in one (bodies of one dataset may each hold only some tissues, e.g.
        a head's); an id that means different tissues in the two is refused."""
        clash = [i for i in set(self.ids) & set(other.ids) if self[i] != other[i]]
        if clash:
            raise InputError(source, f"label ids {sorted(clash)} mean different tissues in two of the label tables")
        return LabelTable([*self.labels, *(lab for lab in other if lab.id not in self)])

    def name(self, label_id: int) -> str:
        lab = self._by_id.get(int(label_id))
        return lab.name if lab else f"label {int(label_id)}"

    def color_lut(self) -> np.ndarray:
        """uint8 array (max_id + 1, 3): display colour of each id (black where undefined)."""
        lut = np.zeros((self.num_classes, 3), dtype=np.uint8)
        for lab in self.labels:
            lut[lab.id] = lab.color
        return lut

    # --- (de)serialisation -------------------------------------------------------------------
    def to_records(self) -> list[dict]:
        return [{"id": lab.id, "name": lab.name, "system": lab.system, "color": list(lab.color)}
                for lab in self.labels]

    @classmethod
    def from_records(cls, records: list[dict], source: str | None = None) -> "LabelTable":
        try:
            return cls([Label(int(r["id"]), str(r["name"]), str(r.get("system", "")),
                              tuple(int(c) for c in r["color"])) for r in records])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(source, f"not a valid label table ({exc})") from None

    def to_json(self) -> str:
        return json.dumps(self.to_records(), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "LabelTable":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(source, f"label table is not valid JSON ({exc})") from None
        if not isinstance(records, list):
            raise InputError(source, "label table JSON must be a list of {id, name, system, color}")
        return cls.from_records(records, source)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "name", "system", "r", "g", "b"])
        for lab in self.labels:
            w.writerow([lab.id, lab.name, lab.system, *lab.color])
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str, source: str | None = None) -> "LabelTable":
        rows = list(csv.DictReader(io.StringIO(text)))
        need = {"id", "name", "r", "g", "b"}
        if not rows or not need <= set(rows[0]):
            raise InputError(source, f"label table CSV needs the columns {sorted(need)} (and optionally system)")
        return cls.from_records([{"id": r["id"], "name": r["name"], "system": r.get("system", ""),
                                  "color": (r["r"], r["g"], r["b"])} for r in rows], source)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "LabelTable":
        """Read a label table from ``.csv`` or ``.json``."""
        p = Path(path)
        if not p.is_file():
            raise InputError(p, "label table file not found")
        text = p.read_text(encoding="utf-8", errors="replace")
        return cls.from_json(text, str(p)) if p.suffix.lower() == ".json" else cls.from_csv(text, str(p))

    def write(self, path: str | os.PathLike) -> None:
        from core.atomic import write_text

        p = Path(path)
        write_text(p, self.to_json() if p.suffix.lower() == ".json" else self.to_csv())

    # --- colour-coded segmentations ------------------------------------------------------------
    def labels_from_colors(self, rgb: np.ndarray, tolerance: float = 24.0) -> np.ndarray:
        """Map a colour-coded segmentation (…, 3) to label ids.

        Exact table colours map directly; other colours (anti-aliasing, JPEG) go to the nearest
        table colour within ``tolerance`` (Euclidean, 0–255 units), otherwise to 0.
        """
        rgb = np.asarray(rgb)
        if rgb.shape[-1] != 3:
            raise ValueError(f"colour-coded segmentation needs 3 channels, got shape {rgb.shape}")
        colors = np.array([lab.color for lab in self.labels], dtype=np.int64)
        ids = np.array(self.ids, dtype=np.int32)
        packed_table = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
        order = np.argsort(packed_table)
        packed_sorted, ids_sorted = packed_table[order], ids[order]
        flat = rgb.reshape(-1, 3).astype(np.int64)
        packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
        uniq, inverse = np.unique(packed, return_inverse=True)
        pos = np.clip(np.searchsorted(packed_sorted, uniq), 0, len(packed_sorted) - 1)
        exact = packed_sorted[pos] == uniq
        out_u = np.where(exact, ids_sorted[pos], 0).astype(np.int32)
        if not exact.all():
            miss = ~exact
            ucol = np.stack([(uniq[miss] >> 16) & 255, (uniq[miss] >> 8) & 255, uniq[miss] & 255], axis=1)
            d = np.linalg.norm(ucol[:, None, :] - colors[None, :, :], axis=2)
            nearest = d.argmin(axis=1)
            out_u[miss] = np.where(d[np.arange(len(nearest)), nearest] <= tolerance, ids[nearest], 0)
        return out_u[inverse.reshape(-1)].reshape(rgb.shape[:-1])
