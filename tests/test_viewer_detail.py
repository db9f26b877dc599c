"""Zoomed-in views re-cut at the screen's pixel size (viewer.detail) under pytest-qt (offscreen)."""
from __future__ import annotations

import numpy as np
import pytest

from viewer import jobs
from viewer.detail import detail_plane
from core.planes import Plane
from test_viewer import TIMEOUT_MS, model, phantom, settings, window  # noqa: F401 (fixtures)


def test_the_detail_plane_covers_the_visible_region_at_one_pixel_per_screen_pixel():
    plane = Plane.preset("axial", np.zeros(3), pixel_mm=2.0, width=128, height=128)
    assert detail_plane(plane, ((0, 128), (0, 128)), (512, 512)) is None  # framed: the plane's own pixels
    assert detail_plane(plane, ((0, 100), (0, 100)), (110, 110)) is None  # barely magnified
    detail, rect = detail_plane(plane, ((40, 60), (30, 50)), (400, 400))
    assert (detail.width, detail.height) == (400, 400) and detail.pixel_mm == pytest.approx(0.1)
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == pytest.approx((40, 30, 20, 20))
    # the same physical point at the region's corner and centre in both planes
    assert np.allclose(detail.pixel_to_physical(-0.5, -0.5), plane.pixel_to_physical(29.5, 39.5))
    assert np.allclose(detail.center, plane.pixel_to_physical(39.5, 49.5))
    detail, rect = detail_plane(plane, ((-20, 20), (-20, 20)), (400, 400))  # partly off the plane: only the plane
    assert (rect.x(), rect.y()) == (0, 0) and (detail.width, detail.height) == (200, 200)
    detail, _ = detail_plane(plane, ((0, 100), (0, 100)), (5000, 5000))
    assert detail.pixel_mm == pytest.approx(2.0 * 100 / 1024)
    assert max(detail.width, detail.height) <= 1024


def test_zoomed_in_the_comparison_is_recut_for_the_screen_and_a_plane_change_hides_the_old_detail(qtbot, window):
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    study, state = window.session.study, window.state
    detail = window.layouts.details["comparison"]
    items = detail.items
    assert not any(item.isVisible() for item in items.values())
    window.panels.panels["mri"].view.setRange(xRange=(50, 70), yRange=(50, 70), padding=0.0)
    qtbot.waitUntil(lambda: window.idle and items["colorized"].isVisible(), timeout=TIMEOUT_MS)
    fine = detail.detail
    assert fine.pixel_mm < state.plane().pixel_mm / 4 and fine.width > 4 * 20
    assert np.array_equal(items["mri"].image, jobs.slice_mri(study, fine))
    assert np.array_equal(items["colorized"].image, jobs.colorize(window.session.colorize_request(fine)).rgb)
    assert items["cryo"].isVisible() and items["cryo"].image.shape[:2] == (fine.height, fine.width)
    labels = detail.labels["colorized"][0]  # the label layer is re-cut too, over the detail
    assert labels.isVisible() and labels.image.shape == (fine.height, fine.width)
    assert labels.zValue() > items["colorized"].zValue() > window.panels.panels["colorized"].overlay.zValue()
    state.set_overlay(visible=False)
    assert not labels.isVisible()
    state.set_overlay(visible=True)
    qtbot.waitUntil(lambda: window.idle and labels.isVisible(), timeout=TIMEOUT_MS)
    box = items["mri"].mapRectToView(items["mri"].boundingRect())
    assert 45 <= box.left() <= 50 and 70 <= box.right() <= 75  # on the visible region, in plane pixels
    state.scroll(1)
    assert not any(item.isVisible() for item in items.values())  # it showed the old plane
    qtbot.waitUntil(lambda: window.idle and items["colorized"].isVisible(), timeout=TIMEOUT_MS)
    assert np.array_equal(items["mri"].image, jobs.slice_mri(study, detail.detail))
    assert abs((detail.detail.center - fine.center) @ state.plane().normal) > 0.1
    state.set_window(state.window / 2, state.level)
    assert items["mri"].levels == pytest.approx(state.levels)
    window.layouts.reset_zoom()  # framed again: the plane's own pixels suffice
    qtbot.waitUntil(lambda: window.idle and not items["mri"].isVisible(), timeout=TIMEOUT_MS)


def test_zoomed_in_a_three_view_is_recut_in_what_it_shows(qtbot, window):
    layouts = window.layouts
    layouts.set_layout("three")
    layouts.set_colour(True)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    detail = layouts.details["coronal"]
    layouts.ortho.panels["coronal"].view.setRange(xRange=(30, 50), yRange=(30, 50), padding=0.0)
    qtbot.waitUntil(lambda: window.idle and detail.items["colorized"].isVisible(), timeout=TIMEOUT_MS)
    assert not detail.items["mri"].isVisible()
    fine = detail.detail
    assert fine.pixel_mm < layouts.ortho_pipeline.planes["coronal"].pixel_mm / 4
    assert np.array_equal(detail.items["colorized"].image,
                          jobs.colorize(window.session.colorize_request(fine)).rgb)
    assert not any(item.isVisible() for item in layouts.details["axial"].items.values())  # not zoomed in
    layouts.set_colour(False)  # the view shows the MRI now: its detail too
    qtbot.waitUntil(lambda: window.idle and detail.items["mri"].isVisible(), timeout=TIMEOUT_MS)
    assert not detail.items["colorized"].isVisible()
    assert np.array_equal(detail.items["mri"].image, jobs.slice_mri(window.session.study, detail.detail))
