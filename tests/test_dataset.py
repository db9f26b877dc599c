"""Datasets: manifests, splits, on-the-fly slicing, batching, augmentation, DDP sharding, PNGs.

Most tests use a hand-built two-subject dataset of small synthetic volumes (no registration);
the end-to-end `mricolor prepare --phantom` run, which registers phantom subjects, is slow.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from core.cli import main
from core.dataset import Augment, Manifest, PlaneDataset, PlaneSettings, SubjectBatchSampler, SubjectEntry
from core.dataset.build import normalise_mri, parse_ids, phantom_bodies
from core.dataset.manifest import draw_planes, plane_arrays, split_planes, subject_seed
from core.dataset.materialise import materialise, slice_name
from core.errors import InputError
from core.io import read_volume, write_volume
from core.labels import Label, LabelTable
from core.planes import sample
from core.registration.params import default_parameter_file
from core.volume import Volume

TABLE = LabelTable([Label(0, "background", "", (20, 20, 25)), Label(1, "body", "", (200, 150, 120)),
                    Label(2, "organ", "", (120, 40, 40))])
SETTINGS = PlaneSettings(width=32, height=24, pixel_mm=2.0, min_foreground=0.3)


def body_volumes(seed: int) -> dict[str, Volume]:
    """An ellipsoid body with an off-centre organ, as MRI, RGB, labels and truth on one grid."""
    rng = np.random.default_rng(seed)
    shape = (30, 26, 28)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    labels = np.zeros(shape, np.int16)
    labels[x ** 2 / 0.8 + y ** 2 / 0.6 + z ** 2 / 0.9 < 1] = 1
    labels[(x - 0.3) ** 2 + (y + 0.1) ** 2 + z ** 2 < 0.12] = 2
    frame = Volume(np.zeros(shape, np.float32), spacing=(2.0, 2.5, 3.0), origin=(-20.0 + seed, 5.0, 100.0))
    mri = np.array([0, 0.8, 0.3], np.float32)[labels] + 0.05 * rng.random(shape, dtype=np.float32) * (labels > 0)
    rgb = np.clip(TABLE.color_lut()[labels] + rng.integers(-10, 10, shape + (3,)), 0, 255).astype(np.uint8)
    return {"mri": frame.with_array(mri), "cryo": frame.with_array(rgb), "labels": frame.with_array(labels, TABLE),
            "truth": frame.with_array(np.flip(rgb, axis=2).copy())}


def build_manifest(root, seeds_and_splits, n_per_subject: int = 20, seed: int = 0) -> Manifest:
    """A dataset folder written by hand: what `build_dataset` does, minus registration."""
    subjects, columns = [], []
    for i, (s, split) in enumerate(seeds_and_splits):
        paths = {}
        for kind, volume in body_volumes(s).items():
            rel = f"subjects/s{s}/{kind}.nii.gz"
            write_volume(volume, root / rel)
            paths[kind] = rel
        subjects.append(SubjectEntry(f"s{s}", split, paths, {"seed": s}))
        vols = body_volumes(s)
        planes = draw_planes(vols["cryo"], vols["labels"].array != 0, n_per_subject, subject_seed(seed, i), SETTINGS)
        split_col = split_planes(n_per_subject, 0.25, seed) if split == "mixed" else np.full(n_per_subject, split)
        columns.append((np.full(n_per_subject, i), split_col, *plane_arrays(planes)))
    manifest = Manifest(root, seed, "subject", SETTINGS, subjects, *(np.concatenate(c) for c in zip(*columns)))
    manifest.validate("test")
    manifest.save()
    return Manifest.load(root)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return build_manifest(tmp_path_factory.mktemp("ds"), [(0, "train"), (1, "train"), (2, "test")])


def test_manifest_round_trips_exactly(manifest):
    again = Manifest.load(manifest.root / "dataset.json")
    for name in ("plane_subject", "plane_split", "centers", "us", "vs"):
        np.testing.assert_array_equal(getattr(again, name), getattr(manifest, name))
    assert again.settings == SETTINGS and [s.id for s in again.subjects] == ["s0", "s1", "s2"]
    plane = again.plane(5)
    assert (plane.width, plane.height, plane.pixel_mm) == (32, 24, 2.0)


def test_train_and_test_subjects_never_mix(manifest):
    train = set(manifest.plane_subject[manifest.indices("train")].tolist())
    test = set(manifest.plane_subject[manifest.indices("test")].tolist())
    assert train == {0, 1} and test == {2}
    ds = PlaneDataset(manifest, "test")
    assert set(ds.__getitems__(range(len(ds)))["subject"].tolist()) == {2}
    manifest.plane_split[manifest.plane_subject == 2] = "train"
    manifest.plane_split[np.flatnonzero(manifest.plane_subject == 2)[0]] = "test"
    try:
        with pytest.raises(InputError, match="train and test would mix"):
            manifest.validate("edited")
    finally:
        manifest.plane_split[manifest.plane_subject == 2] = "test"


def test_batched_cuts_equal_plane_sampling_bit_for_bit(manifest):
    ds = PlaneDataset(manifest, "train", fields=("mri", "cryo", "labels", "truth"))
    items = [0, 25, 3, 30, 7]  # two subjects, interleaved
    batch = ds.__getitems__(items)
    for row, item in enumerate(items):
        subject = int(ds.subjects_of([item])[0])
        plane = manifest.plane(int(ds.positions[item]))
        for field in ("mri", "cryo", "labels", "truth"):
            expect = sample(read_volume(manifest.volume_path(subject, field)), [plane])[0]
            assert torch.equal(batch[field][row], expect), field
    assert batch["mri"].shape == (5, 1, 24, 32) and batch["cryo"].shape == (5, 3, 24, 32)
    assert batch["labels"].dtype == torch.int64 and batch["labels"].shape == (5, 24, 32)
    assert ds.slicer(0).images.stride()[1] == 1  # channels-last: all channels of a voxel together


def test_same_manifest_and_seed_give_the_same_slices(manifest):
    aug = Augment(flip_horizontal=0.5, flip_vertical=0.5, rotate_deg=15, mri_noise=0.02)
    a = PlaneDataset(Manifest.load(manifest.root), "train", augment=aug, seed=3)
    b = PlaneDataset(Manifest.load(manifest.root), "train", augment=aug, seed=3)
    whole = a.__getitems__(range(len(a)))
    single = b.__getitem__(17)
    for field in ("mri", "cryo", "labels"):
        assert torch.equal(whole[field][17], single[field])
    again = b.__getitems__(range(len(b)))
    assert all(torch.equal(whole[k], again[k]) for k in whole)
    b.set_epoch(1)
    assert not torch.equal(b.__getitems__(range(len(b)))["cryo"], whole["cryo"])


def test_augmentation_moves_the_plane_for_every_field(manifest):
    plain = PlaneDataset(manifest, "train")
    flipped = PlaneDataset(manifest, "train", augment=Augment(flip_horizontal=1, rotate_deg=0, mri_gain=0,
                                                              mri_gamma=0, mri_offset=0, mri_noise=0))
    a, b = plain.__getitems__(range(8)), flipped.__getitems__(range(8))
    for field in ("mri", "cryo"):  # same points, reached through float32 grids built the other way round
        torch.testing.assert_close(torch.flip(a[field], dims=[-1]), b[field], atol=1e-4, rtol=0)
    assert (torch.flip(a["labels"], dims=[-1]) == b["labels"]).float().mean() > 0.999
    jitter = PlaneDataset(manifest, "train", augment=Augment(flip_horizontal=0, rotate_deg=0))
    c = jitter.__getitems__(range(8))
    assert torch.equal(c["cryo"], a["cryo"]) and torch.equal(c["labels"], a["labels"])
    assert not torch.equal(c["mri"], a["mri"])
    assert torch.all(c["mri"][a["mri"] == 0] == 0) and c["mri"].max() <= 1


def test_rotation_keeps_centre_and_normal(manifest):
    aug = Augment(flip_horizontal=0, rotate_deg=30)
    plane = manifest.plane(0)
    spun = aug.plane(plane, np.random.default_rng(0))
    np.testing.assert_allclose(spun.center, plane.center)
    np.testing.assert_allclose(np.cross(spun.u, spun.v), plane.normal, atol=1e-12)
    with pytest.raises(InputError, match="probability"):
        Augment(flip_horizontal=2)
    with pytest.raises(InputError, match="unknown settings"):
        Augment.from_dict({"flip": 0.5})


def test_subject_batches_and_ddp_shards(manifest):
    ds = PlaneDataset(manifest, "train")
    sampler = SubjectBatchSampler(ds, 6, seed=1)
    batches = list(sampler)
    assert all(len(set(ds.subjects_of(b).tolist())) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(len(ds)))
    shards = [list(SubjectBatchSampler(ds, 6, seed=1, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(SubjectBatchSampler(ds, 6, num_replicas=3))
    assert {i for s in shards for b in s for i in b} == set(range(len(ds)))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    loader = DataLoader(ds, batch_sampler=SubjectBatchSampler(ds, 6), collate_fn=PlaneDataset.collate)
    first = next(iter(loader))
    assert first["cryo"].shape == (6, 3, 24, 32)


def test_distributed_sampler_with_plain_batches(manifest):
    ds = PlaneDataset(manifest, "train")
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=7, sampler=sampler, collate_fn=PlaneDataset.collate, num_workers=1)
    seen = torch.cat([batch["index"] for batch in loader])
    assert len(seen) == len(sampler) and set(seen.tolist()) <= set(manifest.indices("train").tolist())


def test_single_body_split_by_plane(tmp_path):
    m = build_manifest(tmp_path, [(0, "mixed")], n_per_subject=40)
    train, test = m.indices("train"), m.indices("test")
    assert len(test) == 10 and len(train) == 30 and not set(train) & set(test)
    np.testing.assert_array_equal(split_planes(40, 0.25, 0), split_planes(40, 0.25, 0))


def test_materialised_pngs_match_the_cut_slices(manifest, tmp_path):
    count = materialise(tmp_path, manifest, batch_size=8)
    assert count == len(manifest)
    name = slice_name(manifest, 21)
    assert name == f"train_s1_{21:05d}"
    ds = PlaneDataset(manifest, "train", fields=("mri", "cryo", "labels"))
    item = ds[int(np.flatnonzero(ds.positions == 21)[0])]
    mri = np.asarray(Image.open(tmp_path / "mri" / f"{name}.png"))
    cryo = np.asarray(Image.open(tmp_path / "cryo" / f"{name}.png"))
    seg = np.asarray(Image.open(tmp_path / "seg" / f"{name}.png"))
    assert mri.shape == (24, 32) and cryo.shape == (24, 32, 3)
    np.testing.assert_array_equal(seg, item["labels"].numpy())
    np.testing.assert_allclose(cryo / 255, item["cryo"].permute(1, 2, 0).numpy(), atol=0.5 / 255 + 1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cryo", "mri", "seg", "truth"]


def test_bad_dataset_inputs(manifest, tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        Manifest.load(tmp_path)
    (tmp_path / "dataset.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="is not a mricolor-dataset manifest"):
        Manifest.load(tmp_path)
    with pytest.raises(InputError, match="unknown field"):
        PlaneDataset(manifest, "train", fields=("mri", "colour"))
    with pytest.raises(InputError, match="no 'mri_labels' volume"):
        PlaneDataset(manifest, "train", fields=("mri", "mri_labels"))
    with pytest.raises(InputError, match="in both the training and the test"):
        phantom_bodies([0, 1], [1], "small")
    assert parse_ids("0-3,7") == [0, 1, 2, 3, 7]
    with pytest.raises(InputError, match="ranges"):
        parse_ids("3-1")
    vol = body_volumes(0)
    scaled, scale = normalise_mri(vol["mri"], vol["labels"].array != 0)
    assert scaled.array.max() == 1 and scale > 0.8


def test_prepare_command_refuses_bad_arguments(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "ds")]) == 2
    assert "give --phantom, or a real body" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "ds"), "--phantom", "--subjects", "0-1", "--test-subjects", "1"]) == 2
    assert "in both the training and the test" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_prepare_one_real_body_splits_by_plane(tmp_path, capsys):
    vols = body_volumes(0)
    mri = vols["mri"]
    vols["mri"] = Volume(mri.array, spacing=mri.spacing, origin=mri.origin + [4, -3, 5])  # misaligned by ~7 mm
    paths = {k: write_volume(v, tmp_path / f"{k}.nii.gz") for k, v in vols.items()}
    out = tmp_path / "ds"
    rigid = str(default_parameter_file("rigid"))
    assert main(["prepare", str(out), "--mri", str(paths["mri"]), "--cryo", str(paths["cryo"]), "--labels",
                 str(paths["labels"]), "--planes", "30", "--plane-size", "32", "--pixel-mm", "2", "--params", rigid,
                 "--threads", "2"]) == 0
    manifest = Manifest.load(out)
    assert manifest.split_by == "plane" and [s.split for s in manifest.subjects] == ["mixed"]
    assert len(manifest.indices("test")) == 6 and len(manifest.indices("train")) == 24
    for name in ("mri", "cryo", "labels", "mask"):
        assert (out / "subjects" / "body" / f"{name}.nii.gz").is_file()
    assert (out / "subjects" / "body" / "registration" / "TransformParameters.0.txt").is_file()
    batch = PlaneDataset(out, "test").__getitems__(range(6))
    assert batch["mri"].max() <= 1 and batch["labels"].max() == 2
    assert "24 training and 6 test planes" in capsys.readouterr().out


def agreement_with_mri_grid_labels(subject, plane, cut_labels: torch.Tensor) -> float:
    """Share of a cryosection-space label slice equal to the phantom's MRI-grid labels at the same
    tissue: each pixel carried into MRI space by the phantom's true transform, read nearest-neighbour."""
    mri_points = subject.transform.cryo_to_mri(plane.points().reshape(-1, 3))
    index = np.rint(subject.mri_labels.physical_to_index(mri_points)).astype(int)
    inside = np.all((index >= 0) & (index < subject.mri_labels.size_xyz), axis=1)
    expect = np.zeros(len(index), np.int64)
    expect[inside] = subject.mri_labels.array[index[inside, 2], index[inside, 1], index[inside, 0]]
    return float((cut_labels.reshape(-1).numpy() == expect).mean())


def test_phantom_slices_line_up_with_the_mri_grid_labels(tmp_path):
    from core.phantom import make_subject

    subject = make_subject(0, "small")
    paths = {"mri": "mri.nii.gz", "cryo": "cryo.nii.gz", "labels": "labels.nii.gz"}
    write_volume(subject.cryo.with_array(subject.cryo.array[..., 1].astype(np.float32) / 255), tmp_path / paths["mri"])
    write_volume(subject.cryo, tmp_path / paths["cryo"])
    write_volume(subject.labels, tmp_path / paths["labels"])
    settings = PlaneSettings(64, 64, 5.0, 0.4)
    planes = draw_planes(subject.cryo, subject.labels.array != 0, 12, 0, settings)
    manifest = Manifest(tmp_path, 0, "subject", settings, [SubjectEntry("phantom-0", "train", paths)],
                        np.zeros(12, np.int64), np.full(12, "train"), *plane_arrays(planes))
    manifest.save()
    ds = PlaneDataset(tmp_path, "train")
    batch = ds.__getitems__(range(12))
    scores = [agreement_with_mri_grid_labels(subject, manifest.plane(i), batch["labels"][i]) for i in range(12)]
    # equal up to nearest-neighbour edges (5 mm vs 7.5×7.5×10 mm voxels) and the re-drawn bowel
    assert min(scores) > 0.75 and np.mean(scores) > 0.85
    shifted = [agreement_with_mri_grid_labels(subject, manifest.plane(i).translated(15.0), batch["labels"][i])
               for i in range(12)]
    assert np.mean(shifted) < np.mean(scores) - 0.05  # the check can tell a 15 mm misalignment


@pytest.mark.slow
def test_prepare_phantom_end_to_end_slices_line_up(tmp_path):
    from core.phantom import make_subject

    out = tmp_path / "ds"
    assert main(["prepare", str(out), "--phantom", "--size", "small", "--subjects", "0", "--test-subjects", "1",
                 "--planes", "24", "--plane-size", "64", "--pixel-mm", "5", "--set", "MaximumNumberOfIterations=64",
                 "--threads", "2", "--materialise"]) == 0
    manifest = Manifest.load(out)
    assert [(s.id, s.split) for s in manifest.subjects] == [("phantom-0", "train"), ("phantom-1", "test")]
    assert len(list((out / "seg").glob("test_phantom-1_*.png"))) == 12
    reg = manifest.subjects[0].metadata["registration"]
    assert reg["tre_mean_mm"]["after"] < reg["tre_mean_mm"]["before"]
    ds = PlaneDataset(manifest, "train", fields=("labels", "mri_labels", "truth"))
    batch = ds.__getitems__(range(len(ds)))
    subject = make_subject(0, "small")
    for row in range(len(ds)):
        plane = manifest.plane(int(ds.positions[row]))
        assert agreement_with_mri_grid_labels(subject, plane, batch["labels"][row]) > 0.75
        body = batch["labels"][row] != 0
        assert (batch["mri_labels"][row][body] != 0).float().mean() > 0.9  # registered MRI labels cover the body
