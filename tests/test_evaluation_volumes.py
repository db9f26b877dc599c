"""Whole-volume evaluation (`core.evaluation.volumes`, `volume_scores`, `volume_table`) and
``mricolor evaluate --volumes``: reference rows, scores against independent constructions, tables."""
from __future__ import annotations

import numpy as np
import pytest

from core.cli import main
from core.dataset.manifest import Manifest, PlaneSettings, SubjectEntry
from core.evaluation.volume_scores import background_std, banding, lab, score
from core.evaluation.volume_table import write_tables
from core.evaluation.volumes import References, TruthSubject, evaluate_volumes, model_row
from core.inference import Colorizer
from core.io import write_volume
from core.phantom import make_subject


@pytest.fixture(scope="module")
def subjects():
    """Small phantoms 0 and 1 as truth subjects (0 trains the references, 1 is unseen)."""
    out = {}
    for seed in (0, 1):
        s = make_subject(seed, "small")
        out[seed] = TruthSubject(f"phantom-{seed}", s.mri, s.true_colorization, s.mri_labels)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, subjects):
    """A phantom dataset written by hand as if registration were perfect: subject 0 on its own MRI
    grid with its truth as the cryosection (what `mricolor prepare` keeps, minus registration)."""
    from core.normalize import normalize

    root = tmp_path_factory.mktemp("ds")
    s = subjects[0]
    paths = {}
    for kind, volume in {"mri": normalize(s.mri)[0], "cryo": s.truth, "truth": s.truth,
                         "labels": s.labels, "mri_labels": s.labels}.items():
        write_volume(volume, root / f"subjects/p0/{kind}.nii.gz")
        paths[kind] = f"subjects/p0/{kind}.nii.gz"
    entry = SubjectEntry("phantom-0", "train", paths, {"source": "phantom", "seed": 0})
    planes = np.zeros((1, 3))
    manifest = Manifest(root, 0, "subject", PlaneSettings(16, 16, 8.0, 0.0), [entry], np.zeros(1, np.int64),
                        np.array(["train"]), planes, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    manifest.save()
    s.labels.label_table.write(root / "labels.csv")
    return root


def test_reference_rows_rank_as_they_must(subjects, dataset):
    refs = References.fit(dataset)
    results = {r.row: r.scores for r in evaluate_volumes([subjects[1]], refs.rows())}
    truth = results["*true colorization* (reference)"]
    oracle = results["*tissue oracle* (reference)"]
    lut = results["*lookup table, true colorization* (reference)"]
    assert truth.delta_e == 0.0 and truth.background_std < 2
    assert 0 < oracle.delta_e < lut.delta_e  # knowing the tissues beats knowing the intensity
    # the dataset's cryosection is its truth here, so both tables are the same table
    assert results["*lookup table, registered cryosection* (reference)"].delta_e == pytest.approx(lut.delta_e)
    assert lut.background_std <= 2  # one colour outside the body (edges of a thresholded mask aside)
    assert set(truth.per_tissue) == set(np.unique(subjects[1].labels.array)) - {0}


def test_banding_sees_slices_that_disagree(subjects):
    """Per-slice colour offsets (what a network run slice by slice does) raise the through-slice
    over in-plane ratio well above the truth's, in both reformats containing the slicing axis."""
    s = subjects[1]
    body = s.labels.array > 0
    rgb = s.truth.array.astype(np.int16)
    offsets = np.random.default_rng(0).integers(-25, 25, (rgb.shape[0], 1, 1, 3))
    striped = np.clip(rgb + offsets, 0, 255).astype(np.uint8)
    mri01 = s.mri.array / s.mri.array.max()
    plain, mri_ratio = banding(lab(s.truth.array), mri01, body, 0)
    stripes, _ = banding(lab(striped), mri01, body, 0)
    assert set(plain) == {"z/y", "z/x"} and set(mri_ratio) == {"z/y", "z/x"}
    assert all(stripes[k] > 1.3 * plain[k] for k in plain)


def test_background_flatness_and_structure_against_direct_computations(subjects):
    s = subjects[1]
    body = s.labels.array > 0
    lightness = lab(s.truth.array)[..., 0]
    noisy = lightness + np.random.default_rng(0).normal(0, 5, lightness.shape) * ~body
    assert background_std(noisy, body) == pytest.approx(5, rel=0.1)
    flat = np.where(body, lightness, 7.0)
    assert background_std(flat, body) == 0.0
    scores = score(s.truth, s.mri01, s.truth, s.labels, 0)
    from skimage.metrics import structural_similarity

    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(body))
    from core.normalize import normalize

    direct = structural_similarity(normalize(s.mri)[0].array[box], lightness[box] / 100, data_range=1.0, win_size=7)
    assert scores.structure == pytest.approx(direct, abs=1e-4)


def test_a_model_row_is_colorized_as_mricolor_colorize_does_and_tables_are_written(subjects, dataset, tmp_path):
    colorizer = Colorizer.untrained("tiny", device="cpu", pixel_mm=8.0)
    rows = {"tiny": model_row(colorizer), **References.fit(dataset).rows()}
    results = evaluate_volumes([subjects[1]], rows)
    model = next(r for r in results if r.row == "tiny")
    assert model.seconds > 0 and model.scores.background_std <= 2  # flat background, whatever the weights
    md, csv_path = write_tables(results, tmp_path, subjects[1].labels.label_table, "test")
    text = md.read_text()
    assert "| tiny |" in text and "ΔE per tissue" in text and "fat" in text
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "row,subject,metric,value,voxels" and any(line.startswith("tiny,phantom-1,dE,") for line in lines)


def test_cli_evaluates_whole_volumes_and_refuses_training_subjects(dataset, tmp_path, capsys):
    from core.model.checkpoint import save_checkpoint
    from core.model.networks import build_generator

    colorizer = Colorizer.untrained("tiny", device="cpu")
    ck = save_checkpoint(tmp_path / "ck" / "model.safetensors", {"g_mc": build_generator(colorizer.config, "colorization")},
                         colorizer.config, extra={"pixel_mm": 8.0})
    out = tmp_path / "eval"
    assert main(["evaluate", "--data", str(dataset), "--checkpoints", str(ck), "--names", "tiny", "--out", str(out),
                 "--volumes", "1", "--scans", "small", "--device", "cpu", "--outputs", "c_hat", "c_prime"]) == 0
    text = (out / "volumes.md").read_text()
    assert "| tiny (c_hat) |" in text and "| tiny (c_prime) |" in text
    printed = capsys.readouterr().out
    main_table = text.split("####")[0]
    rows = {line.split(" | ")[0].lstrip("| "): float(line.split(" | ")[2]) for line in main_table.splitlines()
            if line.startswith("| tiny")}  # row | ΔE 1 | ΔE mean
    best = min(rows, key=rows.get)
    assert f"lowest mean ΔE over these subjects: {best} ({rows[best]:.2f})" in printed
    assert main(["evaluate", "--data", str(dataset), "--out", str(out), "--volumes", "0", "--scans", "small"]) == 2
    err = capsys.readouterr().err
    assert "never trained on" in err and err.count("\n") == 1
    other = tmp_path / "other"  # a second training dataset whose seed 1 is then no longer unseen
    trained = Manifest.load(dataset)
    trained.subjects[0].metadata["seed"] = 1
    trained.save(other / "dataset.json")
    assert main(["evaluate", "--data", str(dataset), "--trained-on", str(other), "--out", str(out),
                 "--volumes", "1", "--scans", "small"]) == 2
    assert "never trained on" in capsys.readouterr().err
    fitted = save_checkpoint(tmp_path / "cal" / "model.safetensors",
                             {"g_mc": build_generator(colorizer.config, "colorization")}, colorizer.config,
                             extra={"pixel_mm": 8.0, "calibration_fit": {"seeds": [1, 20]}})
    assert main(["evaluate", "--data", str(dataset), "--checkpoints", str(ck), str(fitted), "--out", str(out),
                 "--volumes", "1", "--scans", "small"]) == 2  # its calibration learnt from subject 1
    err = capsys.readouterr().err
    assert "seeds [1] are subjects" in err and "cal" in err and "never trained on" in err
    assert main(["evaluate", "--data", str(dataset), "--checkpoints", str(ck), "--out", str(out), "--volumes", "1",
                 "--scans", "small", "--outputs", "sepia"]) == 2
    assert "not 'sepia'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_shipped_model_keeps_structure_a_flat_background_and_no_banding(subjects, dataset):
    """The properties `mricolor colorize`'s output must have on a whole volume, checked on an
    unseen small phantom with the shipped model: SSIM(MRI, L*) at least 0.9 × the tissue
    oracle's, background L* std ≤ 2, banding ≤ 1.15 in both reformats across the slices."""
    colorizer = Colorizer.from_checkpoint(device="cpu")
    rows = {"shipped": model_row(colorizer), "oracle": References.fit(dataset)._oracle}
    results = {r.row: r.scores for r in evaluate_volumes([subjects[1]], rows)}
    shipped, oracle = results["shipped"], results["oracle"]
    assert shipped.structure >= 0.9 * oracle.structure
    assert shipped.background_std <= 2
    assert max(shipped.banding.values()) <= 1.15


def test_brain_colours_pool_subjects_and_compare_with_the_palette():
    """Mean colours pooled by voxel count, ΔE00 against the palette and between grey and white
    matter, checked against skimage on hand-made means; no brain, no table."""
    from skimage.color import deltaE_ciede2000

    from core.evaluation.volume_scores import Scores
    from core.evaluation.volume_table import brain_colours, brain_table
    from core.evaluation.volumes import VolumeResult
    from core.labels import LabelTable
    import resources

    table = LabelTable.read(resources.path("tissues.csv"))
    ids = {t.name: t.id for t in table}
    gm, wm, csf = ids["grey_matter"], ids["white_matter"], ids["csf"]

    def result(subject: str, labs: dict[int, tuple], counts: dict[int, int]) -> VolumeResult:
        per_tissue = {t: (1.0, counts[t]) for t in labs}
        return VolumeResult("m", subject, Scores(1.0, per_tissue, labs, 0.5, 0.0, {"z": 1.0}, {"z": 1.0}), 1.0)

    a = result("a", {gm: (60.0, 10.0, 10.0), wm: (80.0, 0.0, 10.0)}, {gm: 100, wm: 300})
    b = result("b", {gm: (50.0, 20.0, 20.0), csf: (30.0, 0.0, -5.0)}, {gm: 300, csf: 50})
    row = brain_colours([a, b], table)["m"]
    pooled_gm = (np.array([60.0, 10, 10]) * 100 + np.array([50.0, 20, 20]) * 300) / 400
    palette = {n: lab(np.asarray(next(t.color for t in table if t.name == n), dtype=np.uint8))
               for n in ("grey_matter", "white_matter", "csf")}
    assert row["grey_matter"] == pytest.approx(float(deltaE_ciede2000(pooled_gm, palette["grey_matter"])), rel=1e-6)
    assert row["white_matter"] == pytest.approx(float(deltaE_ciede2000(np.array([80.0, 0, 10]), palette["white_matter"])))
    assert row["csf"] == pytest.approx(float(deltaE_ciede2000(np.array([30.0, 0, -5]), palette["csf"])))
    assert row["grey–white"] == pytest.approx(float(deltaE_ciede2000(pooled_gm, np.array([80.0, 0, 10]))))
    assert "grey–white apart" in brain_table([a, b], table)
    no_brain = result("c", {ids["muscle"]: (40.0, 30.0, 20.0)}, {ids["muscle"]: 10})
    assert brain_colours([no_brain], table) == {} and brain_table([no_brain], table) == ""
