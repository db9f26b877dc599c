"""Truth-paired scan datasets (`mricolor prepare --pairs truth`): no registration, the truth as the
cryosection, scan variants for training seeds only, and stripped tissue is no longer body."""
from __future__ import annotations

import numpy as np
import pytest

from core.cli import main
from core.dataset.manifest import Manifest
from core.dataset.scan_variety import ScanVariety
from core.dataset.scans import scan_bodies, scan_body
from core.io import read_volume
from core.phantom import make_subject


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("scans") / "ds"
    code = main(["prepare", str(out), "--phantom", "--pairs", "truth", "--scans", "small", "--variants", "1",
                 "--subjects", "0", "--test-subjects", "1", "--planes", "30", "--plane-size", "32",
                 "--pixel-mm", "8", "--min-foreground", "0.1"])
    assert code == 0
    return Manifest.load(out)


def test_truth_pairs_are_stored_on_the_mri_grid_without_registration(dataset):
    ids = [s.id for s in dataset.subjects]
    assert ids == ["phantom-0-small-0", "phantom-0-small-1", "phantom-1-small-0"]  # test seed: plain scan only
    assert [s.split for s in dataset.subjects] == ["train", "train", "test"]
    plain = dataset.subjects[0]
    assert plain.volumes["truth"] == plain.volumes["cryo"] and plain.volumes["mri_labels"] == plain.volumes["labels"]
    assert "registration" not in plain.metadata and plain.metadata["pairs"] == "truth"
    subject = make_subject(0, "small")
    cryo = read_volume(dataset.root / plain.volumes["cryo"])
    labels = read_volume(dataset.root / plain.volumes["labels"])
    mri = read_volume(dataset.root / plain.volumes["mri"])
    np.testing.assert_array_equal(cryo.array, subject.true_colorization.array)
    np.testing.assert_array_equal(labels.array, subject.mri_labels.array)
    assert cryo.same_frame(subject.mri) and mri.same_frame(subject.mri)
    body = labels.array > 0
    assert 0 <= mri.array.min() and mri.array.max() == pytest.approx(1.0)
    assert np.mean(mri.array[body] >= 1.0) == pytest.approx(0.005, abs=0.003)  # 99.5th percentile of the body


def test_a_variant_is_another_scan_of_the_same_subject(dataset):
    plain, variant = (read_volume(dataset.root / s.volumes["mri"]) for s in dataset.subjects[:2])
    assert not (plain.same_frame(variant) and np.array_equal(plain.array, variant.array))
    assert dataset.subjects[1].metadata["variant"] == 1


def test_skull_stripped_variants_drop_the_stripped_tissue_from_the_body():
    stripped = scan_body(0, "small", 1, ScanVariety(p_region=0, p_brain_only=1, p_resample=0, p_ras=0), data_seed=0)
    brain_ids = {t.id for t in stripped.labels.label_table if t.name in ("grey_matter", "white_matter", "csf",
                                                                         "deep_grey_matter")}
    body = stripped.labels.array > 0
    assert body.any() and np.all(stripped.cryo.array[body].any(axis=-1))
    assert not np.any(stripped.cryo.array[~body])
    assert np.mean(np.isin(stripped.labels.array[body], list(brain_ids))) > 0.8  # what is left is mostly brain


def test_bad_scan_requests_are_refused(tmp_path, capsys):
    with pytest.raises(Exception, match="unknown or no scan kind"):
        scan_bodies([0], [1], ("knee",), 0)
    with pytest.raises(Exception, match="in both"):
        scan_bodies([0, 1], [1], ("small",), 0)
    assert main(["prepare", str(tmp_path / "ds"), "--phantom", "--scans", "head"]) == 2
    assert "need --pairs truth" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "ds"), "--pairs", "truth", "--mri", "a", "--cryo", "b", "--labels", "c"]) == 2
    assert "need a phantom" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_the_dataset_label_table_is_the_union_of_its_bodies_tables():
    from core.labels import Label, LabelTable

    body = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "skin", "", (1, 2, 3))])
    head = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(20, "deep_grey_matter", "", (4, 5, 6))])
    both = body.union(head)
    assert both.ids == [0, 1, 20] and both.num_classes == 21 and both[20].name == "deep_grey_matter"
    with pytest.raises(Exception, match=r"label ids \[1\] mean different tissues"):
        body.union(LabelTable([Label(1, "fat", "", (1, 2, 3))]), "x")
