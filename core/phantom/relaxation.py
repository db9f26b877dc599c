"""T1-weighted tissue signal from relaxation times and a sequence's signal equation.

The whole body's default MRI keeps its precomputed spin-echo table (`core.phantom.mri.T1_SIGNAL`);
this module serves the clinical head and any explicitly chosen sequence, so that MPRAGE and spin
echo at 1.5 T and 3 T get their contrasts from physics instead of hand-tuned numbers.

Relaxation times (ms) and proton density: body tissues from the project's reference table §1.5
(Stanisz et al., MRM 2005; de Bazelaire et al., Radiology 2004; BrainWeb). Brain tissues follow
in-vivo brain measurements, which agree better with clinical T1 contrast than Stanisz's
excised-tissue values: 3 T white/grey matter 832/1331 ms (Wansapura et al., JMRI 1999), 1.5 T
about 650/1100 ms and deep grey nuclei between the two, about 0.8–0.9 of cortical T1
(Rooney et al., MRM 2007, field dependence T1 ∝ B0^0.38 in white matter). CSF and vitreous
~4300 ms (3 T) / ~3800 ms (1.5 T). Skin is an estimate (docs/phantom.md: "not well
characterised"). Air, lung and cortical bone have almost no signal (PD ≈ 0.05–0.1, T2* ≪ TE).
"""
from __future__ import annotations

import numpy as np

from core.errors import InputError
from core.labels import LabelTable

# name: (T1 1.5 T, T2 1.5 T, T1 3 T, T2 3 T, PD)
RELAXATION = {
    "background": (1.0, 1.0, 1.0, 1.0, 0.0),
    "skin": (800, 45, 1000, 42, 0.75),
    "fat": (343, 58, 382, 68, 0.9),
    "muscle": (1008, 44, 1412, 50, 0.8),
    "cortical_bone": (300, 1.0, 300, 1.0, 0.05),
    "marrow": (549, 49, 586, 49, 0.9),
    "grey_matter": (1100, 95, 1331, 110, 0.86),
    "white_matter": (650, 72, 832, 80, 0.77),
    "deep_grey_matter": (900, 80, 1100, 85, 0.82),
    "csf": (3800, 1500, 4300, 2000, 1.0),
    "vitreous": (3800, 1500, 4300, 2000, 1.0),
    "lung": (1200, 2.0, 1300, 2.0, 0.1),
    "air": (1.0, 1.0, 1.0, 1.0, 0.0),
    "myocardium": (1030, 40, 1471, 47, 0.8),
    "blood": (1441, 290, 1932, 275, 0.9),
    "liver": (576, 46, 812, 42, 0.75),
    "kidney": (966, 87, 1142, 76, 0.85),
    "spleen": (1057, 79, 1328, 61, 0.85),
    "bowel_wall": (1000, 45, 1350, 48, 0.8),
    "bowel_content": (1500, 150, 1800, 150, 0.6),
    "bladder": (3000, 1000, 3500, 1200, 0.95),
    "spinal_cord": (745, 74, 993, 78, 0.8),
    "cartilage": (1024, 30, 1168, 27, 0.7),
}


def spin_echo(t1, t2, pd, tr: float = 500.0, te: float = 15.0) -> np.ndarray:
    """S = PD·(1 − e^(−TR/T1))·e^(−TE/T2) (docs/phantom.md)."""
    t1, t2, pd = (np.asarray(v, dtype=np.float64) for v in (t1, t2, pd))
    return pd * (1 - np.exp(-tr / t1)) * np.exp(-te / t2)


def mprage(t1, t2, pd, tr: float = 2300.0, ti: float = 900.0, flip_deg: float = 9.0, n: int = 176,
           spacing: float = 7.0, te: float = 3.0, shots: int = 6) -> np.ndarray:
    """Magnitude of an MPRAGE at the k-space centre (Deichmann et al., NeuroImage 2000).

    Inversion, a train of ``n`` small-angle excitations ``spacing`` ms apart centred at TI, and a
    recovery to TR; the longitudinal magnetization is followed through ``shots`` repetitions,
    which reaches the steady state. Defaults: the ADNI 3 T protocol (TR 2300, TI 900, 9°).
    """
    t1, t2, pd = (np.asarray(v, dtype=np.float64) for v in (t1, t2, pd))
    alpha = np.deg2rad(flip_deg)
    start = ti - n / 2 * spacing
    if start <= 0 or start + n * spacing >= tr:
        raise InputError("mprage", f"TI {ti} ms and the {n}-pulse train do not fit in TR {tr} ms")

    def relax(m, ms):
        return 1 - (1 - m) * np.exp(-ms / t1)

    m = np.ones_like(t1)
    centre = m
    for _ in range(shots):
        m = relax(-m, start)
        for i in range(n):
            if i == n // 2:
                centre = m
            m = relax(m * np.cos(alpha), spacing)
        m = relax(m, tr - start - n * spacing)
    return pd * np.abs(centre) * np.sin(alpha) * np.exp(-te / t2)


SEQUENCES = {
    "mprage": {1.5: dict(tr=2400.0, ti=1000.0, flip_deg=8.0), 3.0: dict(tr=2300.0, ti=900.0, flip_deg=9.0)},
    "spin_echo": {1.5: dict(tr=500.0, te=15.0), 3.0: dict(tr=500.0, te=15.0)},
}
FIELDS = (1.5, 3.0)


def sequence_signal(table: LabelTable, sequence: str, field_t: float) -> np.ndarray:
    """Relative signal of every label id (fat = 1) for ``sequence`` at ``field_t`` tesla."""
    if sequence not in SEQUENCES:
        raise InputError("sequence", f"unknown T1 sequence {sequence!r}; valid: {', '.join(SEQUENCES)}")
    if field_t not in FIELDS:
        raise InputError("field", f"field strength must be one of {FIELDS} T, got {field_t!r}")
    k = FIELDS.index(field_t)
    values = np.array([RELAXATION[lab.name] for lab in table], dtype=np.float64)
    t1, t2, pd = values[:, 2 * k], values[:, 2 * k + 1], values[:, 4]
    equation = mprage if sequence == "mprage" else spin_echo
    signal = equation(t1, t2, pd, **SEQUENCES[sequence][field_t])
    fat = equation(*(np.array([v]) for v in RELAXATION["fat"][2 * k:2 * k + 2] + RELAXATION["fat"][4:]),
                   **SEQUENCES[sequence][field_t])
    out = np.zeros(table.num_classes, dtype=np.float32)
    out[[lab.id for lab in table]] = signal / fat[0]
    return out
