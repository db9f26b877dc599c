"""The ``calibrated`` output: the colour calibration's features, its identity start, its storage in
checkpoints, the plane and volume paths, the fit, and the ``calibrate`` command's subject guard."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter
from skimage.color import deltaE_ciede2000, rgb2lab

from core.errors import InputError
from core.evaluation.volumes import TruthSubject
from core.inference import Colorizer
from core.inference.volume import calibrated_volume, colorize_volume
from core.labels import LabelTable
from core.model.calibration import LAB_SCALE, ColourCalibration
from core.model.checkpoint import export_inference_checkpoint, load_checkpoint, save_checkpoint
from core.model.config import load_preset
from core.model.networks import build_generator
from core.training.calibration import (CalibrationDiverged, CalibrationSettings, fit_calibration, tissue_mean_gap,
                                      tissue_weights, train_calibration)
from core.volume import Volume


def _planes(n=2, h=30, w=26, seed=0):
    g = torch.Generator().manual_seed(seed)
    guided, c_prime = torch.rand(n, 3, h, w, generator=g), torch.rand(n, 3, h, w, generator=g)
    mri = torch.rand(n, 1, h, w, generator=g)
    body = torch.zeros(n, 1, h, w, dtype=torch.bool)
    body[:, :, 4:25, 5:20] = True
    return guided, c_prime, mri, body


def _shifted(calibration: ColourCalibration, shift_lab: tuple[float, float, float]) -> ColourCalibration:
    """A calibration whose correction is a constant L*a*b* shift (weights 0, bias = shift)."""
    with torch.no_grad():
        calibration.net[-1].bias.copy_(torch.tensor(shift_lab) / LAB_SCALE)
    return calibration


def test_context_features_are_body_only_window_means():
    guided, c_prime, mri, body = _planes()
    cal = ColourCalibration(context_mm=(2.0, 6.0))
    pixel_mm = (1.0, 2.0)
    feats = cal.features(guided, c_prime, mri, body, pixel_mm)
    assert feats.shape == (2, cal.n_features, 30, 26) and cal.n_features == 9
    m, b = mri.numpy()[:, 0], body.numpy()[:, 0].astype(np.float64)
    for k, r_mm in enumerate((2.0, 6.0)):
        size = [2 * max(1, round(r_mm / p)) + 1 for p in pixel_mm]       # rows 1 mm, columns 2 mm
        for n in range(2):
            ref = uniform_filter(m[n] * b[n], size, mode="mirror") / np.maximum(uniform_filter(b[n], size, mode="mirror"), 1e-9)
            inside = b[n] > 0
            np.testing.assert_allclose(feats[n, 7 + k].numpy()[inside], ref[inside], rtol=1e-4, atol=1e-5)
    lab = rgb2lab(guided.permute(0, 2, 3, 1).numpy()) / LAB_SCALE
    np.testing.assert_allclose(feats[:, :3].permute(0, 2, 3, 1).numpy(), lab, atol=1e-4)
    np.testing.assert_allclose(feats[:, 6].numpy(), mri[:, 0].numpy())


def test_optional_features_are_colour_means_body_shares_and_spreads():
    """The optional windows against scipy references: the guided colour's body-only mean per
    L*a*b* channel, the body's share of the window, the MRI's body-only standard deviation."""
    guided, c_prime, mri, body = _planes()
    cal = ColourCalibration(context_mm=(2.0,), colour_mm=(4.0,), body_mm=(6.0, 3.0), spread_mm=(2.0,))
    pixel_mm = (1.0, 2.0)
    feats = cal.features(guided, c_prime, mri, body, pixel_mm)
    assert cal.n_features == 3 + 3 + 1 + 1 + 3 + 2 + 1 == feats.shape[1]
    size = lambda r: [2 * max(1, round(r / p)) + 1 for p in pixel_mm]
    box = lambda x, r: uniform_filter(x, size(r), mode="mirror")
    lab = rgb2lab(guided.permute(0, 2, 3, 1).numpy()) / LAB_SCALE
    m, b = mri.numpy()[:, 0].astype(np.float64), body.numpy()[:, 0].astype(np.float64)
    for n in range(2):
        inside = b[n] > 0
        mass4 = np.maximum(box(b[n], 4.0), 1e-9)
        for c in range(3):
            np.testing.assert_allclose(feats[n, 8 + c].numpy()[inside], (box(lab[n, ..., c] * b[n], 4.0) / mass4)[inside],
                                       rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(feats[n, 11].numpy(), box(b[n], 6.0), atol=1e-6)
        np.testing.assert_allclose(feats[n, 12].numpy(), box(b[n], 3.0), atol=1e-6)
        mass2 = np.maximum(box(b[n], 2.0), 1e-9)
        mean, square = box(m[n] * b[n], 2.0) / mass2, box(m[n] ** 2 * b[n], 2.0) / mass2
        np.testing.assert_allclose(feats[n, 13].numpy()[inside], np.sqrt(np.maximum(square - mean ** 2, 0))[inside],
                                   atol=2e-3)
    # the body's share is 1 deep inside the body, 0 far from it
    assert feats[:, 12].max() == pytest.approx(1.0) and feats[:, 12].min() == pytest.approx(0.0)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_untrained_calibration_is_the_identity_and_keeps_the_background(layers):
    guided, c_prime, mri, body = _planes()
    cal = ColourCalibration(hidden=16, layers=layers)
    assert sum(isinstance(m, torch.nn.Linear) for m in cal.net) == layers + 1
    out = cal(guided, c_prime, mri, body, 1.0).detach()
    np.testing.assert_allclose(out.numpy(), guided.numpy(), atol=2e-4)       # an L*a*b* round trip
    outside = ~body.expand_as(guided)
    assert torch.equal(out[outside], guided[outside])


def test_the_perceptron_runs_in_chunks_with_the_same_output(monkeypatch):
    """The plane path sends body pixels through the perceptron a chunk at a time (for the CPU's
    cache): with chunks of 50 pixels (the body has 630 in all) the output is the one-pass one."""
    import core.model.calibration

    guided, c_prime, mri, body = _planes()
    cal = ColourCalibration(hidden=16, layers=2)
    torch.nn.init.normal_(cal.net[-1].weight, std=0.5)                     # not the identity
    one_pass = cal(guided, c_prime, mri, body, 1.0).detach()
    monkeypatch.setattr(core.model.calibration, "CHUNK", 50)
    chunked = cal(guided, c_prime, mri, body, 1.0).detach()
    assert int(body.sum()) > 10 * 50 and not torch.allclose(one_pass, guided, atol=1e-2)
    torch.testing.assert_close(chunked, one_pass, rtol=0, atol=1e-6)


def test_a_learnt_shift_moves_the_body_by_that_many_units_of_lab():
    guided, c_prime, mri, body = _planes()
    guided = 0.3 + 0.4 * guided                                            # inside the gamut after the shift
    out = _shifted(ColourCalibration(), (6.0, -4.0, 3.0))(guided, c_prime, mri, body, 1.0).detach()
    inside = body[:, 0].numpy()
    before = rgb2lab(guided.permute(0, 2, 3, 1).numpy())[inside]
    after = rgb2lab(out.permute(0, 2, 3, 1).numpy())[inside]
    np.testing.assert_allclose((after - before).mean(0), (6.0, -4.0, 3.0), atol=0.05)
    assert torch.equal(out[~body.expand_as(out)], guided[~body.expand_as(guided)])


def test_spec_round_trip_and_refusals():
    cal = ColourCalibration(context_mm=(3, 9), hidden=8)
    again = ColourCalibration.from_spec(json.loads(json.dumps(cal.spec())))
    assert again.context_mm == (3.0, 9.0) and again.hidden == 8 and again.n_features == cal.n_features
    full = ColourCalibration(context_mm=(3,), hidden=4, colour_mm=(6, 12), body_mm=(24,), spread_mm=(3,))
    again = ColourCalibration.from_spec(json.loads(json.dumps(full.spec())))
    assert (again.colour_mm, again.body_mm, again.spread_mm) == ((6.0, 12.0), (24.0,), (3.0,))
    assert again.n_features == full.n_features == 7 + 1 + 6 + 1 + 1
    v6 = ColourCalibration.from_spec({"context_mm": [3, 6, 12], "hidden": 128})     # v6's spec: no optional windows
    assert (v6.colour_mm, v6.body_mm, v6.spread_mm) == ((), (), ()) and v6.n_features == 10
    assert v6.layers == 2 and sum(isinstance(m, torch.nn.Linear) for m in v6.net) == 3    # v6-v8 name no layers
    deep = ColourCalibration.from_spec(json.loads(json.dumps(ColourCalibration(hidden=4, layers=3).spec())))
    assert deep.layers == 3 and [m.out_features for m in deep.net if isinstance(m, torch.nn.Linear)] == [4, 4, 4, 3]
    for bad in ({"context_mm": [3]}, {"context_mm": [-1], "hidden": 4}, {"context_mm": [3], "hidden": 0}, None,
                {"context_mm": [3], "hidden": 4, "layers": 0},
                {"context_mm": [3], "hidden": 4, "colour_mm": [0]}, {"context_mm": [3], "hidden": 4, "other": [1]}):
        with pytest.raises(ValueError):
            ColourCalibration.from_spec(bad)


def _colorizer(calibration=None, serve="guided") -> Colorizer:
    config = load_preset("tiny").model
    torch.manual_seed(0)
    return Colorizer(build_generator(config), config, device="cpu", serve=serve, pixel_mm=2.0, calibration=calibration)


def test_checkpoint_carries_the_calibration_and_serves_it(tmp_path):
    torch.manual_seed(1)
    cal = ColourCalibration(hidden=16)
    torch.nn.init.normal_(cal.net[-1].weight, std=0.1)
    col = _colorizer()
    assert "calibrated" not in col.outputs
    path = save_checkpoint(tmp_path / "a", {"g_mc": col.generator, "calib": cal}, col.config, serve="calibrated",
                           extra={"calibration": cal.spec(), "pixel_mm": 2.0})
    loaded = Colorizer.from_checkpoint(path, device="cpu")
    assert loaded.serve == "calibrated" and "calibrated" in loaded.outputs
    for key, value in cal.state_dict().items():
        assert torch.equal(loaded.calibration.state_dict()[key], value)
    # the slim export keeps it
    exported = export_inference_checkpoint(path, tmp_path / "slim", pixel_mm=2.0)
    assert load_checkpoint(exported).networks == ("g_mc", "calib")
    assert Colorizer.from_checkpoint(exported, device="cpu").serve == "calibrated"
    # refusals: a calib network without its architecture, a calibrated serve without a calib network
    with pytest.raises(ValueError, match="extra\\['calibration'\\]"):
        save_checkpoint(tmp_path / "b", {"g_mc": col.generator, "calib": cal}, col.config)
    with pytest.raises(ValueError, match="needs a colour calibration"):
        save_checkpoint(tmp_path / "c", {"g_mc": col.generator}, col.config, serve="calibrated")
    with pytest.raises(ValueError, match="needs a colour calibration"):
        _colorizer(serve="calibrated")


def _subject(shape=(10, 36, 32), seed=0) -> TruthSubject:
    """A small ellipsoid 'body' with two intensity regions; truth comes later."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    body = ((z - 4.5) / 6) ** 2 + ((y - 17.5) / 14) ** 2 + ((x - 15.5) / 12) ** 2 < 1
    mri = np.where(body, np.where(x < 16, 0.8, 0.35), 0.0) + 0.02 * rng.random(shape) * body
    vol = Volume(mri.astype(np.float32), np.array([1.5, 1.5, 3.0]))
    labels = vol.with_array(np.where(body, np.where(x < 16, 1, 2), 0).astype(np.uint8))
    return TruthSubject("blob", vol, vol.with_array(np.zeros(shape + (3,), np.uint8)), labels)


def test_volume_path_applies_the_calibration_slice_by_slice_in_the_body():
    subject = _subject()
    col = _colorizer(_shifted(ColourCalibration(), (8.0, 0.0, 0.0)))
    guided = colorize_volume(subject.mri, col, output="guided").array
    calibrated = colorize_volume(subject.mri, col, output="calibrated").array
    body = subject.body
    shift = rgb2lab(calibrated[body]) - rgb2lab(guided[body])
    assert abs(shift[:, 0].mean() - 8.0) < 0.5 and np.abs(shift[:, 1:]).mean() < 0.5
    assert np.array_equal(calibrated[~body], guided[~body])
    # the plane path: the same shift on a plane of that volume
    plane = subject.mri01[5][None]
    out = col.colorize_planes(plane, (1.5, 1.5), ["guided", "calibrated"], body=body[5])
    inside = body[5]
    d = rgb2lab(out["calibrated"][0][inside]) - rgb2lab(out["guided"][0][inside])
    assert abs(d[:, 0].mean() - 8.0) < 0.5


def test_volume_path_with_every_feature_equals_the_plane_forward_slice_by_slice():
    """A calibration with every optional window and non-zero weights: `calibrated_volume` along a
    non-axial axis, in batches, gives each slice what the module gives that slice alone (no window
    reaches across slices or batches)."""
    torch.manual_seed(3)
    cal = ColourCalibration(context_mm=(2.0, 8.0), hidden=16, colour_mm=(3.0,), body_mm=(6.0,), spread_mm=(2.0,))
    torch.nn.init.normal_(cal.net[-1].weight, std=0.05)
    col = _colorizer(cal)
    rng = np.random.default_rng(0)
    shape = (9, 7, 12)
    guided = (0.2 + 0.6 * rng.random(shape + (3,))).astype(np.float32)
    c_prime = rng.random(shape + (3,)).astype(np.float32)
    mri = rng.random(shape).astype(np.float32)
    body = np.zeros(shape, bool)
    body[1:8, 1:6, 2:11] = True
    pixel_mm = (3.0, 1.5)                                          # the in-plane (z, x) spacing of axis-1 slices
    out = calibrated_volume(guided, c_prime, mri, body, 1, pixel_mm, col, batch_size=3)
    assert np.array_equal(out[~body], guided[~body]) and not np.allclose(out[body], guided[body], atol=1e-3)
    for k in (0, 2, 4, 6):
        as_plane = lambda x: torch.from_numpy(np.ascontiguousarray(x[:, k]))[None]
        with torch.no_grad():
            ref = cal(as_plane(guided).permute(0, 3, 1, 2), as_plane(c_prime).permute(0, 3, 1, 2),
                      as_plane(mri)[:, None], as_plane(body)[:, None], pixel_mm)
        np.testing.assert_allclose(out[:, k], ref[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_fit_learns_a_colour_bias_it_can_see(one_torch_thread):
    subject = _subject()
    col = _colorizer()
    guided = colorize_volume(subject.mri, col, output="guided").array
    # the truth: the guided colour, lighter in the bright half and bluer in the dark half
    lab = rgb2lab(guided)
    lab[..., 0] += np.where(subject.mri01 > 0.6, 10.0, 0.0)
    lab[..., 2] -= np.where(subject.mri01 <= 0.6, 12.0, 0.0)
    from skimage.color import lab2rgb
    truth = np.clip(np.rint(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)
    subject = TruthSubject("blob", subject.mri, subject.mri.with_array(truth), subject.labels)
    settings = CalibrationSettings(samples_per_scan=4000, steps=400, batch_size=512, hidden=16)
    cal, curve = fit_calibration(col, [subject], settings)
    assert curve[-1][1] < 0.5 * curve[0][1]
    fitted = Colorizer(col.generator, col.config, device="cpu", pixel_mm=2.0, calibration=cal)
    out = colorize_volume(subject.mri, fitted, output="calibrated").array
    body = subject.body
    before = deltaE_ciede2000(rgb2lab(guided[body]), rgb2lab(truth[body])).mean()
    after = deltaE_ciede2000(rgb2lab(out[body]), rgb2lab(truth[body])).mean()
    assert before > 5 and after < 0.3 * before
    with pytest.raises(ValueError, match="at least one subject"):
        fit_calibration(col, [], settings)
    with pytest.raises(ValueError, match="steps"):
        CalibrationSettings(steps=0)


def _manifest(folder, seeds_and_splits):
    """A dataset manifest in ``folder`` whose phantom subjects have these (seed, split) pairs."""
    subjects = [{"id": f"phantom-{s}-body-0", "split": split,
                 "volumes": {k: f"{k}.nii.gz" for k in ("mri", "cryo", "labels")},
                 "metadata": {"source": "phantom", "seed": s}}
                for s, split in seeds_and_splits]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps({
        "format": "mricolor-dataset", "version": 1, "seed": 0, "split_by": "subject",
        "plane": {"width": 8, "height": 8, "pixel_mm": 2.0, "min_foreground": 0.2}, "label_table": None,
        "subjects": subjects, "planes": {"subject": [], "split": [], "center": [], "u": [], "v": []}}))
    return str(folder)


def test_calibrate_fits_only_on_training_seeds(tmp_path):
    from core.commands.calibrate import training_seeds

    data = _manifest(tmp_path, ((10, "train"), (11, "train"), (14, "test")))
    extra = _manifest(tmp_path / "extra", ((20, "train"), (21, "train"), (26, "test")))
    assert training_seeds([data], None) == {data: [10, 11]}
    assert training_seeds([data], "11") == {data: [11]}
    assert training_seeds([data, extra], None) == {data: [10, 11], extra: [20, 21]}
    assert training_seeds([data, extra], "11,20-21") == {data: [11], extra: [20, 21]}
    assert training_seeds([data, extra], "21") == {extra: [21]}
    with pytest.raises(InputError, match=r"\[14\] are not training subjects"):
        training_seeds([data], "10,14")
    with pytest.raises(InputError, match=r"\[26\] are not training subjects"):
        training_seeds([data, extra], "20,26")
    twice = _manifest(tmp_path / "twice", ((11, "train"), (30, "train")))
    with pytest.raises(InputError, match=r"shares training seeds \[11\]"):
        training_seeds([data, twice], None)
    from core.evaluation.volumes import dataset_subjects

    with pytest.raises(InputError, match="no true colorization on the MRI grid"):
        next(dataset_subjects(tmp_path))
    with pytest.raises(InputError, match="no training subjects"):
        next(dataset_subjects(tmp_path, seeds=[14]))


def _small_dataset_and_network(tmp_path):
    """A truth-paired dataset of one small phantom in ``tmp_path / "ds"`` (returned) and an
    untrained network checkpoint serving ``guided`` with the dataset's label table in
    ``tmp_path / "net"``: a command's inputs."""
    from core.cli import main as mricolor

    data = tmp_path / "ds"
    assert mricolor(["prepare", str(data), "--phantom", "--pairs", "truth", "--scans", "small", "--variants", "1",
                     "--subjects", "0", "--test-subjects", "1", "--planes", "10", "--plane-size", "32",
                     "--pixel-mm", "8", "--min-foreground", "0.1"]) == 0
    col = _colorizer()
    save_checkpoint(tmp_path / "net", {"g_mc": col.generator}, col.config, serve="guided", extra={"pixel_mm": 2.0},
                    label_table=LabelTable.read(data / "labels.csv"))
    return data


def test_calibrate_command_writes_a_model_that_serves_calibrated(tmp_path, one_torch_thread):
    from train.cli import main as train

    data = _small_dataset_and_network(tmp_path)
    out = tmp_path / "cal"
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out", str(out),
                  "--samples-per-scan", "3000", "--steps", "200", "--hidden", "8", "--context-mm", "4", "16",
                  "--layers", "3", "--body-mm", "24", "--colour-mm", "--tissue-mean", "0.5",
                  "--mean-tissues", "csf", "grey_matter"]) == 0
    ck = load_checkpoint(out)
    assert ck.serve == "calibrated" and ck.networks == ("g_mc", "calib")
    fit = ck.extra["calibration_fit"]
    assert fit["seeds"] == [0] and fit["data"] == [str(data)]
    assert fit["steps"] == 200 and fit["hidden"] == 8 and ck.extra["pixel_mm"] == 2.0
    assert fit["context_mm"] == [4.0, 16.0] and fit["body_mm"] == [24.0] and fit["colour_mm"] == []
    assert fit["tissue_mean"] == 0.5 and fit["mean_tissues"] == ["csf", "grey_matter"]
    assert fit["layers"] == 3
    assert ck.extra["calibration"] == {"context_mm": [4.0, 16.0], "hidden": 8, "colour_mm": [], "body_mm": [24.0],
                                       "spread_mm": list(CalibrationSettings.spread_mm), "layers": 3}
    log = (out / "calibration_log.csv").read_text().splitlines()
    assert log[0] == "step,l1_lab" and len(log) == 3 and float(log[-1].split(",")[1]) < float(log[1].split(",")[1])
    assert Colorizer.from_checkpoint(out, device="cpu").serve == "calibrated"
    # a test seed is refused, and so is a second dataset that repeats the first's subjects
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "x"), "--seeds", "1"]) == 2
    assert not (tmp_path / "x").exists()
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), str(data), "--out",
                  str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    # a window that is not a positive size is refused before any work
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "x"), "--context-mm", "3", "0"]) == 2
    assert not (tmp_path / "x").exists()
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "x"), "--tissue-mean", "-1"]) == 2
    assert not (tmp_path / "x").exists()
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "x"), "--layers", "0"]) == 2
    assert not (tmp_path / "x").exists()
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "x"), "--lr", "0"]) == 2
    assert not (tmp_path / "x").exists()
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "x"), "--tissue-mean", "0.5", "--mean-tissues", "csf", "brain"]) == 2
    assert not (tmp_path / "x").exists()


def test_calibrate_command_writes_nothing_when_the_fit_diverges(tmp_path, monkeypatch, one_torch_thread, capsys):
    """A diverged fit stops the command with status 5 and a message naming the step and --lr;
    no checkpoint is left. (The limit is lowered so that any fit counts as diverged at its
    first reading: what is tested is the command's handling, the detection is tested below.)"""
    import core.training.calibration
    from train.cli import main as train

    data = _small_dataset_and_network(tmp_path)
    monkeypatch.setattr(core.training.calibration, "DIVERGED", 0.5)
    capsys.readouterr()
    assert train(["calibrate", "--checkpoint", str(tmp_path / "net"), "--data", str(data), "--out",
                  str(tmp_path / "cal"), "--samples-per-scan", "500", "--steps", "300", "--hidden", "8",
                  "--lr", "3e-3"]) == 5
    assert "diverged at step 100" in capsys.readouterr().err and not (tmp_path / "cal").exists()


def test_a_fit_that_diverges_stops_and_a_steady_one_does_not():
    """Truth = the guided colour + a little noise: the identity start is nearly right. At the
    default rate the loss only falls; at a peak rate of 1 the perceptron overshoots, its loss
    rises far above its lowest, and the fit stops instead of returning a broken calibration."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2000, CalibrationSettings(hidden=8).calibration().n_features, generator=g)
    y = x[:, :3] + 0.01 * torch.randn(2000, 3, generator=g)
    settings = dict(hidden=8, batch_size=256, steps=600, balance=0.0)
    _, curve = train_calibration(x, y, CalibrationSettings(**settings))
    assert len(curve) == 6 and curve[-1][1] <= curve[0][1] < 0.02
    with pytest.raises(CalibrationDiverged, match=r"diverged at step \d+: its loss rose from .*--lr \(now 1\)"):
        train_calibration(x, y, CalibrationSettings(lr=1.0, **settings))
    assert CalibrationDiverged.exit_status == 5
    with pytest.raises(ValueError, match="lr must be a positive number"):
        CalibrationSettings(lr=float("nan"))


def test_tissue_weights_follow_median_frequency_balancing():
    labels = torch.tensor([3, 3, 3, 3, 5, 5, 7])                # frequencies 4/7, 2/7, 1/7; median 2/7
    expected = np.array([0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 2.0]) ** 0.5
    np.testing.assert_allclose(tissue_weights(labels, 0.5).numpy(), expected / expected.mean(), rtol=1e-6)
    assert torch.equal(tissue_weights(labels, 0.0), torch.ones(7))
    capped = tissue_weights(torch.tensor([1] * 100 + [2] * 100 + [3]), 1.0)     # 100× rarer: capped at 10
    assert float(capped[-1] / capped[100]) == pytest.approx(10.0, rel=1e-5)
    with pytest.raises(ValueError, match="balance"):
        CalibrationSettings(balance=1.5)
    x, y = torch.zeros(8, ColourCalibration().n_features), torch.zeros(8, 3)
    with pytest.raises(ValueError, match="pass their labels"):
        train_calibration(x, y, CalibrationSettings(balance=0.5, steps=1, batch_size=4))


def _one_feature_vector(n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` voxels that all have the same features: a fit can only learn one colour for them."""
    return torch.rand(1, CalibrationSettings(hidden=8).calibration().n_features, generator=g).repeat(n, 1)


def _fitted_a_star(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, **settings) -> float:
    """The a* (/ LAB_SCALE) a small calibration fitted on ``x``, ``y`` gives those voxels."""
    cal, _ = train_calibration(x, y, CalibrationSettings(batch_size=256, hidden=8, **settings), labels=labels)
    with torch.no_grad():
        return float(cal.correct(x[:1])[0, 1])


def test_balanced_fit_pulls_rare_tissues_harder():
    """Three tissues with the same features: the common one (85 %) has one true colour, two rare
    ones (10 %, 5 %) another. L1 lands on the weighted median: the unweighted fit on the common
    colour; with median-frequency weights (power 1) each tissue weighs the same in all, so the two
    rare ones outweigh the common one and the fit lands on theirs."""
    x = _one_feature_vector(2000, torch.Generator().manual_seed(0))
    labels = torch.tensor([1] * 1700 + [2] * 200 + [3] * 100)
    y = torch.where((labels == 1)[:, None], torch.tensor([0.5, 0.1, 0.1]), torch.tensor([0.5, -0.1, -0.1]))
    ends = {balance: _fitted_a_star(x, y, labels, steps=300, balance=balance) for balance in (0.0, 1.0)}
    assert ends[0.0] > 0.07 and ends[1.0] < -0.07


def test_tissue_mean_gap_against_a_per_tissue_reference():
    g = torch.Generator().manual_seed(1)
    predicted, target = torch.rand(300, 3, generator=g), torch.rand(300, 3, generator=g)
    labels = torch.tensor([4] * 150 + [9] * 140 + [2] * 10)
    p, t, k = predicted.numpy(), target.numpy(), labels.numpy()
    gaps = {i: np.linalg.norm(p[k == i].mean(0) - t[k == i].mean(0)) for i in (4, 9, 2)}
    expected = (150 * gaps[4] + 140 * gaps[9] + 10 * gaps[2]) / 300
    assert float(tissue_mean_gap(predicted, target, labels)) == pytest.approx(expected, rel=1e-5)
    # voxels off their truth by noise of mean zero in each tissue: a gap of zero, a finite gradient
    noise = torch.zeros_like(predicted)
    for i in (4, 9, 2):
        noise[labels == i] = predicted[labels == i] - predicted[labels == i].mean(0)
    exact = (target + noise).requires_grad_(True)
    gap = tissue_mean_gap(exact, target, labels)
    gap.backward()
    assert gap.item() < 1e-5 and torch.isfinite(exact.grad).all()
    with pytest.raises(ValueError, match="tissue_mean"):
        CalibrationSettings(tissue_mean=-0.5)


def test_tissue_mean_gap_over_chosen_tissues_keeps_each_voxels_weight():
    """Over tissues 4 and 2 only: their gaps weighed by their share of *all* the voxels (tissue 9
    neither counts nor dilutes them); over every id, the plain gap; over an absent id, zero."""
    g = torch.Generator().manual_seed(2)
    predicted, target = torch.rand(300, 3, generator=g), torch.rand(300, 3, generator=g)
    labels = torch.tensor([4] * 150 + [9] * 140 + [2] * 10)
    p, t, k = predicted.numpy(), target.numpy(), labels.numpy()
    gaps = {i: np.linalg.norm(p[k == i].mean(0) - t[k == i].mean(0)) for i in (4, 9, 2)}
    chosen = tissue_mean_gap(predicted, target, labels, torch.tensor([4, 2]))
    assert float(chosen) == pytest.approx((150 * gaps[4] + 10 * gaps[2]) / 300, rel=1e-5)
    every = tissue_mean_gap(predicted, target, labels, torch.tensor([2, 4, 9]))
    assert float(every) == pytest.approx(float(tissue_mean_gap(predicted, target, labels)), rel=1e-6)
    assert float(tissue_mean_gap(predicted, target, labels, torch.tensor([7]))) == 0.0


def test_mean_tissues_are_named_in_the_label_table():
    from core.labels import Label

    table = LabelTable([Label(0, "background", "other", (0, 0, 0)), Label(6, "grey_matter", "nervous", (185, 150, 130)),
                        Label(8, "csf", "nervous", (90, 90, 105))])
    settings = CalibrationSettings(tissue_mean=0.25, mean_tissues=("csf", "grey_matter"))
    assert settings.mean_ids(table) == [8, 6] and CalibrationSettings().mean_ids(table) is None
    assert settings.to_dict()["mean_tissues"] == ["csf", "grey_matter"]
    with pytest.raises(ValueError, match=r"\['liver'\] are not in the label table \(its tissues: background, grey_matter, csf\)"):
        CalibrationSettings(tissue_mean=0.25, mean_tissues=("csf", "liver")).mean_ids(table)
    with pytest.raises(ValueError, match="need a tissue_mean weight > 0"):
        CalibrationSettings(mean_tissues=("csf",))
    with pytest.raises(ValueError, match="need the model's label table"):
        settings.mean_ids(None)


def test_tissue_mean_term_over_one_tissue_leaves_the_others_on_their_median():
    """Two tissues with the same skewed truth (a* 0 for 80 %, 0.5 for the rest) and features that
    tell them apart: with the term over tissue 1 only, tissue 1 lands on its mean (0.1) and
    tissue 2 stays on its median (0)."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([_one_feature_vector(2000, g), _one_feature_vector(2000, g)])      # the features tell them apart
    labels = torch.tensor([1] * 2000 + [2] * 2000)
    y = torch.zeros(4000, 3)
    for half in (0, 2000):
        y[half + torch.randperm(2000, generator=g)[:400], 1] = 0.5
    cal, _ = train_calibration(x, y, CalibrationSettings(batch_size=512, hidden=8, steps=600, balance=0.0,
                                                         tissue_mean=1.0), labels=labels, mean_ids=[1])
    with torch.no_grad():
        a_star = cal.correct(x[[0, 2000]])[:, 1]
    assert abs(float(a_star[0]) - 0.1) < 0.03 and abs(float(a_star[1])) < 0.03


def test_tissue_mean_term_moves_a_skewed_tissue_from_its_median_to_its_mean():
    """One tissue, one feature vector, a skewed truth: a* is 0 for 80 % of the voxels and 0.5 for
    the rest. L1 alone lands on the median (0); the tissue-mean term, weighing more than L1's
    pull (0.6 / 3 per unit), lands on the mean (0.1) that a viewer sees the tissue as."""
    g = torch.Generator().manual_seed(0)
    x = _one_feature_vector(2000, g)
    labels = torch.ones(2000, dtype=torch.long)
    y = torch.zeros(2000, 3)
    y[torch.randperm(2000, generator=g)[:400], 1] = 0.5
    ends = {w: _fitted_a_star(x, y, labels, steps=400, balance=0.0, tissue_mean=w) for w in (0.0, 1.0)}
    assert abs(ends[0.0]) < 0.03 and abs(ends[1.0] - 0.1) < 0.03
    with pytest.raises(ValueError, match="pass their labels"):
        train_calibration(x, y, CalibrationSettings(tissue_mean=1.0, balance=0.0, steps=1, batch_size=4))
