"""The plane pipeline and the session without a window: request ids, latest-wins, preview then
refine, metrics only once the plane has settled, and what opening another study resets."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from core.labels import Label, LabelTable
from core.volume import Volume
from helpers import fake_colorizer
from viewer import jobs
from viewer.framing import framing
from viewer.network import LoadedNetwork
from viewer.pipeline import METRICS_DELAY_MS, SCROLL_MS, PlanePipeline
from viewer.session import Session
from viewer.study import Study

SIZE = 64
TIMEOUT_MS = 20_000
TABLE = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "fat", "adipose", (230, 200, 140)),
                    Label(2, "liver", "digestive", (115, 45, 35))])


def _study(name: str = "body", brightness: float = 1.0) -> Study:
    """An ellipsoid body (fat) with a liver ball, its cryosection in the table's colours, its labels."""
    z, y, x = np.mgrid[0:30, 0:50, 0:40].astype(np.float32)
    labels = np.zeros(z.shape, np.int16)
    body = ((x - 20) / 17) ** 2 + ((y - 25) / 20) ** 2 + ((z - 15) / 13) ** 2 < 1
    labels[body] = 1
    labels[body & (((x - 24) / 6) ** 2 + ((y - 22) / 6) ** 2 + ((z - 15) / 5) ** 2 < 1)] = 2
    frame = dict(spacing=(2.0, 2.0, 3.0), origin=(-40.0, -30.0, 100.0))
    mri = Volume((np.choose(labels, [0.0, 0.9, 0.4]) * brightness).astype(np.float32), **frame)
    cryo = Volume(TABLE.color_lut()[labels].astype(np.uint8), **frame)
    return Study(mri, cryo, Volume(labels, label_table=TABLE, **frame), name=name)


class _Gate:
    """A stand-in network (red = MRI) that holds every forward until the gate opens."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()

    def __call__(self, planes: torch.Tensor) -> torch.Tensor:
        assert self.open.wait(10), "the test never opened the gate"
        return torch.cat([planes, planes / 2, torch.zeros_like(planes)], dim=1)


@pytest.fixture
def gate() -> _Gate:
    return _Gate()


@pytest.fixture
def session(gate) -> Session:
    session = Session(size=SIZE)
    session.set_network(LoadedNetwork(fake_colorizer(gate), "gated stand-in"))
    return session


@pytest.fixture
def pipeline(qtbot, session, gate):
    pipeline = PlanePipeline(session)
    yield pipeline
    gate.open.set()
    pipeline.stop()


def _record(signal) -> list[tuple]:
    """Every emission of ``signal`` as (time, *args)."""
    seen: list[tuple] = []
    signal.connect(lambda *args: seen.append((time.perf_counter(), *args)))
    return seen


def _open(qtbot, session: Session, pipeline: PlanePipeline, study: Study) -> None:
    study_framing = framing(study.mri, SIZE)
    session.open_study(study, study_framing)
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)


def test_every_plane_change_gets_the_next_request_id_and_its_mri_plane_at_once(qtbot, session, pipeline):
    _open(qtbot, session, pipeline, _study())
    cuts = _record(pipeline.mri_cut)
    first = pipeline.request_id
    for _ in range(3):
        session.state.scroll(1)
    assert [rid for _, rid, _, _ in cuts] == [first + 1, first + 2, first + 3]  # synchronous, one id each
    _, _, mri_plane, plane = cuts[-1]
    assert plane is session.state.plane()
    assert np.array_equal(mri_plane, jobs.slice_mri(session.study, plane))


def test_while_the_network_is_busy_only_the_newest_plane_is_colorized(qtbot, session, pipeline, gate):
    _open(qtbot, session, pipeline, _study())
    colorized = _record(pipeline.colorized)
    runs = pipeline.model_worker.runs
    gate.open.clear()
    session.state.scroll(1)  # starts, then waits at the gate
    busy_id = pipeline.request_id
    qtbot.waitUntil(lambda: pipeline.model_worker.runs == runs + 1, timeout=TIMEOUT_MS)
    for _ in range(10):
        session.state.scroll(1)
    gate.open.set()
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)
    ids = [rid for _, rid, _ in colorized]
    assert set(ids) <= {busy_id, pipeline.request_id}  # the nine planes in between never ran
    assert ids == sorted(ids) and ids[-1] == pipeline.request_id
    assert pipeline.model_worker.runs - runs <= 3  # the busy plane, the newest one's preview, its full plane
    final = colorized[-1][2]
    assert not final.preview
    assert np.array_equal(final.rgb, jobs.colorize(session.colorize_request(session.state.plane())).rgb)


def test_a_result_requested_before_the_network_changed_is_never_shown(qtbot, session, pipeline, gate):
    _open(qtbot, session, pipeline, _study())
    colorized = _record(pipeline.colorized)
    gate.open.clear()
    session.state.scroll(1)
    stale_id = pipeline.request_id
    qtbot.waitUntil(lambda: pipeline.model_worker.busy, timeout=TIMEOUT_MS)
    session.set_network(LoadedNetwork(fake_colorizer(), "grey stand-in"))  # restarts the current plane
    gate.open.set()
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)
    ids = [rid for _, rid, _ in colorized]
    assert stale_id not in ids and ids[-1] == pipeline.request_id > stale_id
    rgb = colorized[-1][2].rgb
    assert np.array_equal(rgb[..., 0], rgb[..., 1])  # grey: the new network's colours, not the old one's


def test_scrolling_shows_previews_then_the_full_plane_once_it_rests(qtbot, session, pipeline):
    _open(qtbot, session, pipeline, _study())
    colorized = _record(pipeline.colorized)
    for step in range(5):
        qtbot.wait(20 if step else 0)  # a wheel: far closer together than SCROLL_MS
        session.state.scroll(1)
        last_change = time.perf_counter()
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)
    previews = [result.preview for _, _, result in colorized]
    assert any(previews) and not previews[-1]
    full_at = colorized[-1][0]
    assert full_at - last_change >= SCROLL_MS / 1000 * 0.9  # the full plane waited for the plane to rest
    assert colorized[-1][1] == pipeline.request_id


def test_metrics_come_only_after_the_full_plane_has_settled(qtbot, session, pipeline):
    _open(qtbot, session, pipeline, _study())
    with qtbot.waitSignal(pipeline.metrics_ready, timeout=TIMEOUT_MS):
        pass  # the first plane's metrics
    colorized, metrics = _record(pipeline.colorized), _record(pipeline.metrics_ready)
    for _ in range(6):
        session.state.scroll(1)
        qtbot.wait(40)
    assert metrics == []  # nothing while the plane moves
    with qtbot.waitSignal(pipeline.metrics_ready, timeout=TIMEOUT_MS) as blocker:
        pass
    rid, values = blocker.args
    assert rid == pipeline.request_id == pipeline.shown["metrics"]
    full_at = next(t for t, r, result in colorized if r == rid and not result.preview)
    assert metrics[0][0] - full_at >= METRICS_DELAY_MS / 1000 * 0.9
    assert {"CF", "SSIM", "FSIM", "STSIM"} <= set(values) and all(np.isfinite(list(values.values())))


def test_opening_another_study_drops_everything_from_the_old_one(qtbot, session, pipeline):
    _open(qtbot, session, pipeline, _study("first"))
    qtbot.waitUntil(lambda: pipeline.shown["metrics"] == pipeline.request_id, timeout=TIMEOUT_MS)
    cleared, statuses, metrics = _record(pipeline.metrics_cleared), _record(pipeline.metrics_status), \
        _record(pipeline.metrics_ready)
    second = Study(_study().mri.with_array(_study().mri.array * 3), name="second, MRI alone")
    _open(qtbot, session, pipeline, second)
    qtbot.wait(METRICS_DELAY_MS * 2)
    assert len(cleared) == 1 and pipeline.shown["metrics"] == 0 and metrics == []
    assert "need a cryosection" in statuses[-1][1]
    assert np.array_equal(pipeline.mri_plane, jobs.slice_mri(second, session.state.plane()))


def test_the_session_opens_a_study_before_moving_the_plane_onto_it():
    session = Session(size=SIZE)
    study = _study()
    study_framing = framing(study.mri, SIZE)
    events: list[str] = []
    session.study_opened.connect(lambda s: events.append(f"study {s.name}"))
    session.state.plane_changed.connect(lambda _p: events.append("plane"))
    session.open_study(study, study_framing)
    assert events == ["study body", "plane"]  # observers forget the old study before the new plane
    assert (session.state.window, session.state.level) == next(iter(study_framing.presets.values()))
    session.open_study(study, study_framing, key="remembered", window_level=(0.3, 0.2))
    assert session.study_key == "remembered" and (session.state.window, session.state.level) == (0.3, 0.2)


def test_a_network_shows_its_own_output_unless_the_current_one_is_kept():
    session = Session(size=SIZE)
    outputs: list[str] = []
    session.state.output_changed.connect(outputs.append)
    session.state.set_output("c_prime")
    network = LoadedNetwork(fake_colorizer(), "stand-in serving ĉ")
    session.set_network(network)
    assert session.network is network and session.state.output == "c_hat"  # what its checkpoint serves
    session.state.set_output("c_prime")
    session.set_network(network.on("cpu"), keep_output=True)  # a device move keeps what is shown
    assert session.state.output == "c_prime" and outputs == ["c_prime", "c_hat", "c_prime"]


def test_with_the_colorized_volume_planes_are_cut_from_it_and_the_network_never_runs(qtbot, session, pipeline,
                                                                                    gate):
    """Once `ColourVolume` holds the MRI colorized whole, a scroll is served from it: every result
    at full resolution (no preview), each the volume's trilinear cut at the plane, and the network
    is not called (the gate stays shut: a forward would hang the test)."""
    from core.imaging import to_uint8
    from core.planes import sample
    from viewer.export import colorize_volume

    _open(qtbot, session, pipeline, _study())
    volume = pipeline.colour_volume
    volume.request()
    qtbot.waitUntil(lambda: volume.ready and pipeline.idle, timeout=TIMEOUT_MS)
    exported = colorize_volume(session.study.mri, session.network.colorizer, session.state.output)
    assert np.array_equal(volume.volume.array, exported.array)
    gate.open.clear()
    colorized = _record(pipeline.colorized)
    for step in range(5):
        qtbot.wait(20 if step else 0)  # closer together than SCROLL_MS: live, these would be previews
        session.state.scroll(1)
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)
    assert colorized and not any(result.preview for *_, result in colorized)
    assert colorized[-1][1] == pipeline.request_id
    expected = to_uint8(sample(exported, session.state.plane())[0].permute(1, 2, 0).numpy())
    assert np.array_equal(colorized[-1][2].rgb, expected)
    volume.set_enabled(False)  # off: the next plane goes to the network again
    gate.open.set()
    session.state.scroll(1)
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)
    live = jobs.colorize(session.colorize_request(session.state.plane())).rgb
    assert np.array_equal(colorized[-1][2].rgb, live) and not np.array_equal(live, expected)


def test_a_failed_volume_colorization_is_reported_once_and_planes_stay_live(qtbot, session, pipeline, monkeypatch):
    from viewer import colour_volume

    calls = []

    def broken(*_args, **_kwargs):
        calls.append(1)
        raise RuntimeError("out of memory for the whole volume")
    monkeypatch.setattr(colour_volume, "colorize_volume", broken)
    _open(qtbot, session, pipeline, _study())
    volume = pipeline.colour_volume
    with qtbot.waitSignal(volume.failed, timeout=TIMEOUT_MS) as failed:
        volume.request()
    assert failed.args == ["RuntimeError: out of memory for the whole volume"]
    assert not volume.ready and not volume.running and volume.failure == failed.args[0]
    session.state.scroll(1)
    qtbot.waitUntil(lambda: pipeline.idle, timeout=TIMEOUT_MS)
    assert np.array_equal(pipeline.colorized_rgb, jobs.colorize(session.colorize_request(session.state.plane())).rgb)
    volume.request()  # the three views ask at every crosshair move: a failure is not retried for this network
    assert calls == [1] and not volume.running
    session.set_network(LoadedNetwork(session.network.colorizer, "the same, reloaded"))
    with qtbot.waitSignal(volume.failed, timeout=TIMEOUT_MS):
        volume.request()  # a new network is tried again
    assert calls == [1, 1]


def test_an_mri_too_large_to_colorize_whole_stays_live_and_says_why(qtbot, session, pipeline, monkeypatch):
    from viewer import colour_volume

    monkeypatch.setattr(colour_volume, "MAX_VOXELS", 1000)
    _open(qtbot, session, pipeline, _study())
    volume = pipeline.colour_volume
    with qtbot.waitSignal(volume.failed, timeout=1000) as failed:
        volume.request()
    assert failed.args == ["the MRI has 60,000 voxels, more than the 1,000 colorized whole"]
    assert not volume.running and not volume.ready


def test_the_truth_delta_e_is_scored_over_the_phantoms_body_not_the_air():
    from skimage.color import deltaE_ciede2000, rgb2lab

    from core.planes import Plane, sample
    from viewer.study import default_study

    study = default_study(size="small")
    frame = framing(study.mri).frame
    plane = Plane.preset("axial", frame.center, pixel_mm=frame.pixel_mm["axial"] * 256 / 96, width=96, height=96)
    truth = sample(study.truth, plane)[0].permute(1, 2, 0).numpy()
    body = sample(study.truth_labels, plane)[0].numpy() > 0
    assert 0.1 < body.mean() < 0.9                                   # a plane with body and air
    shown = np.clip(truth + np.where(body[..., None], 0.08, 0.0), 0, 1)   # wrong inside, right outside
    rgb = (shown * 255 + 0.5).astype(np.uint8)
    mri01 = np.clip(sample(study.mri, plane)[0, 0].numpy() / float(study.mri.array.max()), 0, 1)
    row = jobs.plane_metrics(jobs.MetricsRequest(study, plane, mri01, rgb))
    want = deltaE_ciede2000(rgb2lab(rgb[body] / 255.0), rgb2lab(truth[body])).mean()
    assert row["dE"] == pytest.approx(want, rel=1e-3)
    assert row["dE"] > 1.3 * deltaE_ciede2000(rgb2lab(rgb / 255.0), rgb2lab(truth)).mean()   # the whole plane's, diluted
