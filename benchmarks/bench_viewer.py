"""The viewer's live path: launch to the first colorized plane, plane change to colorized plane, UI stalls.

    python benchmarks/bench_viewer.py [--devices cpu cuda] [--planes 100] [--rate 10] [--size default]

For each device:
- launch: a fresh process runs what ``mricolor view`` runs (imports, window, phantom from a warm
  cache, default checkpoint or the untrained ``lite`` fallback) until the first colorized plane is
  on screen; measured from before the process is spawned;
- a scripted scroll of N planes, twice: *sequential* (each step waits until the viewer is idle
  again: pure latency of a full-resolution plane) and *paced* at R planes a second (a wheel: the latest-wins worker
  skips planes, and changes closer than 150 ms are previewed at half resolution); latency of a
  plane change = time until the colorized panel shows that plane or a newer one; *settle* = time
  from the last change until the full-resolution plane (and the cryosection) is on screen;
- the longest UI-thread stall during the scrolls: the largest gap between ticks of a 5 ms timer,
  minus the 5 ms;
- the three-view layout with colour: the crosshair dragged diagonally (sequential and paced as above),
  so the axial, coronal and sagittal views and the current plane all change; latency = time until
  all four show a colorization of that crosshair (or a newer one), a half-resolution preview
  included; step by step also the median time until all four show it at full resolution. Twice:
  *live* (every plane through the network, as before the whole volume is colorized) and, after
  the time the layout takes to colorize the whole MRI in the background, *volume* (the views'
  colour cut from it, `viewer.colour_volume`);
- the reference, in the same run: the model alone on one 256² plane, which is the stall every plane
  change would cause if the model ran on the UI thread.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TICK_MS = 5


def _child_launch(device: str, size: str) -> None:
    """Runs in the spawned process: start the viewer as `viewer.app.run` does, print the time of
    the first colorized plane (epoch seconds) and exit."""
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from viewer.main_window import MainWindow
    from viewer.settings import ViewerSettings

    app = QApplication([])
    ini = Path(os.environ["MRICOLOR_BENCH_INI"])
    window = MainWindow(settings=ViewerSettings(QSettings(str(ini), QSettings.Format.IniFormat)))
    window.resize(1600, 900)

    def first(_rid: int, _result: object) -> None:
        print(f"FIRST {time.time():.6f} {window.session.network.source}", flush=True)
        app.exit(0)
    window.pipeline.colorized.connect(first)
    window.error_shown.connect(lambda m: (print(f"ERROR {m}", flush=True), app.exit(1)))
    window.show()
    window.loader.load_default(0, size)
    window.loader.load_checkpoint(None, device)
    sys.exit(app.exec())


def launch_seconds(device: str, size: str, tmp: Path) -> tuple[float, str]:
    env = {**os.environ, "MRICOLOR_BENCH_INI": str(tmp / f"launch-{device}.ini")}
    start = time.time()
    out = subprocess.run([sys.executable, __file__, "--child-launch", device, "--size", size], env=env,
                         capture_output=True, encoding="utf-8", timeout=600)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(("FIRST", "ERROR"))), None)
    if line is None or line.startswith("ERROR"):
        raise RuntimeError(f"launch failed: {line or out.stderr[-2000:]}")
    _, stamp, source = line.split(" ", 2)
    return float(stamp) - start, source


class _StallMeter:
    """Largest gap between ticks of a 5 ms QTimer: how long the UI thread could not respond."""

    def __init__(self):
        from PyQt6.QtCore import QTimer

        self.timer = QTimer(interval=_TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.worst = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.worst = max(self.worst, (now - self.last) * 1000 - _TICK_MS)
        self.last = now

    def start(self) -> None:
        self.last, self.worst = None, 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def _wait(app, condition, timeout_s: float = 120.0) -> None:
    """Run the event loop until ``condition()``, sleeping between events (no busy wait stealing a core)."""
    from PyQt6.QtCore import QEventLoop

    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the viewer did not settle")
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)


def scroll(app, window, planes: int, rate: float | None) -> dict:
    """Scroll ``planes`` steps (sequentially, or at ``rate`` per second); latencies in ms."""
    asked: dict[int, float] = {}
    done: dict[int, float] = {}
    ui_ms: list[float] = []

    def shown(rid: int, _result: object) -> None:
        now = time.perf_counter()
        for r in asked:
            if r <= rid and r not in done:
                done[r] = (now - asked[r]) * 1000
    pipeline = window.pipeline
    pipeline.colorized.connect(shown)
    runs = pipeline.model_worker.runs
    state = window.state
    direction = 1
    meter = _StallMeter()
    meter.start()
    for _ in range(planes):
        if abs(state.offset_mm + direction * state.frame.step_mm(state.plane().normal)) > state.offset_limit():
            direction = -direction  # bounce at the end of the volume
        t0 = time.perf_counter()
        state.scroll(direction)
        ui_ms.append((time.perf_counter() - t0) * 1000)
        asked[pipeline.request_id] = t0
        _pace(app, window, t0, rate)
    settle, stall = _settle(app, window, t0, meter)
    pipeline.colorized.disconnect(shown)
    latency = np.array([done[r] for r in asked])
    return {"median": float(np.median(latency)), "p95": float(np.percentile(latency, 95)), "settle": settle,
            "stall": stall, "ui_ms": float(np.max(ui_ms)), "ui_median": float(np.median(ui_ms)), "runs": pipeline.model_worker.runs - runs}


def _pace(app, window, t0: float, rate: float | None) -> None:
    """After a change at ``t0``: sequentially, wait until everything is shown and past the scroll
    threshold (so every step is a full plane, no preview); paced, wait for the next tick."""
    if rate is None:
        _wait(app, lambda: window.idle and time.perf_counter() >= t0 + 0.2)
    else:
        _wait(app, lambda: time.perf_counter() >= t0 + 1.0 / rate)


def _settle(app, window, t0: float, meter: "_StallMeter") -> tuple[float, float]:
    """Milliseconds from the last change at ``t0`` until the window is idle, and the longest UI stall."""
    _wait(app, lambda: window.idle)
    return (time.perf_counter() - t0) * 1000, meter.stop()


def three_view_drag(app, window, planes: int, rate: float | None) -> dict:
    """Move the crosshair ``planes`` voxel steps diagonally in the three-view layout with colour
    (sequentially, or at ``rate`` per second); latencies in ms until all four views show it."""
    layouts, pipeline, state = window.layouts, window.pipeline, window.state
    work = layouts.ortho_pipeline
    asked: list[tuple[float, dict[str, int], int]] = []  # (time, id per orthogonal view, main plane id)
    done: list[float] = []  # until all four show a colorization of that crosshair (or a newer one)
    sharp: list[float] = []  # until all four show it (or a newer one) at full resolution

    def reached(step: tuple[float, dict[str, int], int]) -> bool:
        _, ids, main = step
        return pipeline.shown["colorized"] >= main and all(work.shown[v] >= rid for v, rid in ids.items())

    def shown(*_args) -> None:
        now = time.perf_counter()
        while len(done) < len(asked) and reached(asked[len(done)]):
            done.append((now - asked[len(done)][0]) * 1000)
        full = not pipeline.preview_shown and not any(work._preview_shown.values())
        while full and len(sharp) < len(asked) and reached(asked[len(sharp)]):
            sharp.append((now - asked[len(sharp)][0]) * 1000)
    work.colorized.connect(shown)
    pipeline.colorized.connect(shown)
    runs = pipeline.model_worker.runs  # the current plane's and the views' network thread
    step = np.array([state.frame.step_mm(np.eye(3)[axis]) for axis in range(3)])
    start = state.frame.center  # 10 steps from here stay inside the MRI: every step moves all four planes
    meter = _StallMeter()
    meter.start()
    for i in range(planes):
        t0 = time.perf_counter()
        state.set_crosshair(start + (10 - abs(i % 20 - 10)) * step)  # back and forth over 10 steps
        asked.append((t0, dict(work.request_id), pipeline.request_id))
        shown()  # cut from the colorized volume, the views were shown within the call
        _pace(app, window, t0, rate)
    settle, stall = _settle(app, window, t0, meter)
    shown()
    work.colorized.disconnect(shown)
    pipeline.colorized.disconnect(shown)
    latency = np.array(done)
    return {"median": float(np.median(latency)), "p95": float(np.percentile(latency, 95)), "settle": settle,
            "stall": stall, "runs": pipeline.model_worker.runs - runs, "sharp": float(np.median(sharp))}


def model_alone_ms(app, window, repeats: int = 10) -> float:
    """The model on one full plane, in the viewer's own model thread with nothing else running:
    median of ``repeats`` runs of the worker's own timing."""
    times: list[float] = []
    collect = lambda key, _rid, result: key == "reference" and times.append(result.ms)  # noqa: E731
    worker = window.pipeline.model_worker
    worker.finished.connect(collect)
    plane = window.state.plane()
    for i in range(repeats + 1):  # planes 0.1 mm apart: the worker answers a repeated request from its result
        request = window.session.colorize_request(plane.translated(0.1 * (i + 1)))
        worker.submit("reference", -1, request)  # a key nothing shows
        _wait(app, lambda: len(times) > i)
    worker.finished.disconnect(collect)
    return float(np.median(times[1:]))


def bench_device(app, device: str, size: str, planes: int, rate: float, tmp: Path) -> None:
    from PyQt6.QtCore import QSettings

    from viewer.main_window import MainWindow
    from viewer.settings import ViewerSettings

    launch, source = launch_seconds(device, size, tmp)
    window = MainWindow(settings=ViewerSettings(QSettings(str(tmp / f"{device}.ini"), QSettings.Format.IniFormat)))
    window.resize(1600, 900)
    window.show()
    window.loader.load_default(0, size)
    window.loader.load_checkpoint(None, device)
    _wait(app, lambda: window.idle and window.pipeline.shown["metrics"] == window.pipeline.request_id)
    reference = model_alone_ms(app, window)
    sequential = scroll(app, window, planes, None)
    paced = scroll(app, window, planes, rate)
    volume = window.pipeline.colour_volume
    volume.set_enabled(False)  # first live: every plane through the network
    window.layouts.set_layout("three")
    window.layouts.set_colour(True)
    window.state.set_crosshair(window.state.frame.center)
    _wait(app, lambda: window.idle)
    three = {"sequential": three_view_drag(app, window, planes, None),
             f"paced {rate:g}/s": three_view_drag(app, window, planes, rate)}
    start = time.perf_counter()
    volume.set_enabled(True)  # then the whole MRI colorized in the background, the views cut from it
    window.layouts.ortho_pipeline.update()
    _wait(app, lambda: volume.ready and window.idle, timeout_s=1200)
    made = time.perf_counter() - start
    cut = {"sequential": three_view_drag(app, window, planes, None),
           f"paced {rate:g}/s": three_view_drag(app, window, planes, rate)}
    window.close()
    print(f"\n[{device}] model: {source}; plane {window.state.size}²; phantom size {size!r}; "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(f"launch → first colorized plane (warm phantom cache): {launch:6.2f} s")
    print(f"model alone, one plane (the reference):              {reference:6.1f} ms")
    for name, r in (("sequential", sequential), (f"paced {rate:g}/s", paced)):
        print(f"{name:>13} scroll of {planes}: latency median {r['median']:6.1f} ms, p95 {r['p95']:6.1f} ms, "
              f"settle {r['settle']:6.1f} ms; model ran {r['runs']} times; longest UI stall {r['stall']:5.1f} ms "
              f"(UI work per change: median {r['ui_median']:.1f} ms, max {r['ui_ms']:.1f} ms)")
    def sharp(name: str, r: dict) -> str:  # paced, the views show previews until the drag ends
        return f" (full resolution in all four: median {r['sharp']:6.1f} ms)" if name == "sequential" else ""
    for source, results in (("live", three), ("volume", cut)):
        if source == "volume":
            print(f"the whole MRI colorized in the background for the views in {made:5.1f} s; from then on:")
        for name, r in results.items():
            print(f"three views, colour {source:>6}, {name:>11} crosshair drag of {planes}: latency median "
                  f"{r['median']:6.1f} ms, p95 {r['p95']:6.1f} ms{sharp(name, r)}, "
                  f"settle {r['settle']:6.1f} ms; its worker ran {r['runs']} times (planes); "
                  f"longest UI stall {r['stall']:5.1f} ms")
    worst = max(sequential["stall"], paced["stall"], *(r["stall"] for r in (*three.values(), *cut.values())))
    print(f"UI stall vs model on the UI thread: {worst:.1f} ms vs ≥ {reference:.1f} ms per plane "
          f"(×{reference / max(worst, 1e-3):.1f} more responsive)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--planes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="planes per second of the paced scroll")
    parser.add_argument("--size", default="default", choices=("default", "small"), help="phantom size")
    parser.add_argument("--child-launch", metavar="DEVICE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_launch:
        _child_launch(args.child_launch, args.size)
        return
    import tempfile

    import torch
    from PyQt6.QtWidgets import QApplication

    from viewer.study import default_study

    start = time.perf_counter()
    default_study(0, args.size)  # warms the phantom cache
    print(f"phantom {args.size!r} ready in {time.perf_counter() - start:.1f} s (cache warm from now on); "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            bench_device(app, device, args.size, args.planes, args.rate, Path(tmp))


if __name__ == "__main__":
    main()
