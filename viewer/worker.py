"""Worker threads: a latest-wins mailbox for per-plane work, a FIFO for loading and exports.

`LatestWinsWorker` runs one function on its own QThread. ``submit`` overwrites a single slot, so
however fast the requests come, only the newest is ever started; results carry the request id
and the plane pipeline drops any id older than the one on screen (docs/viewer.md: 60
back-to-back requests ran the model once). A running torch forward cannot be interrupted, so
discarding is the practical cancel. Exceptions never escape a worker: PyQt6 aborts the process
when one leaves a slot, so they come back as ``failed`` with a readable message.
"""
from __future__ import annotations

import logging
import os
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from core.errors import InputError

log = logging.getLogger("mricolor.viewer")


def describe(exc: BaseException) -> str:
    """A message for the user: the InputError text as it is, anything else with its type."""
    if isinstance(exc, InputError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class LatestWinsWorker(QObject):
    """Runs ``function(request)`` on a QThread for the newest submitted request only.

    ``torch_threads`` sets the worker thread's own torch intra-op threads (the setting is per
    thread): slicing and metrics run on one, so that on a 2-core machine they do not fight the
    model's threads. ``nice`` lowers the thread's scheduling priority (Linux, where niceness is
    per thread and inherited by the threads torch starts from it), so that the UI thread wins the
    cores whenever it has work: the UI never waits for a worker.
    """

    finished = pyqtSignal(int, object)  # request id, result
    failed = pyqtSignal(int, str)  # request id, message
    _wake = pyqtSignal()

    def __init__(self, function: Callable[[Any], Any], name: str, torch_threads: int | None = None,
                 nice: int = 0):
        super().__init__()
        self._torch_threads, self._nice = torch_threads, nice
        self._function = function
        self._lock = threading.Lock()
        self._latest: tuple[int, Any] | None = None
        self._running = False
        self.runs = 0
        self._thread = QThread()
        self._thread.setObjectName(name)
        self.moveToThread(self._thread)
        self._wake.connect(self._process)
        self._thread.started.connect(self._configure)
        self._thread.start()

    def submit(self, request_id: int, request: Any) -> None:
        """Replace whatever is waiting with this request (never blocks on the running one)."""
        with self._lock:
            self._latest = (request_id, request)
        self._wake.emit()

    @property
    def busy(self) -> bool:
        """True while a request runs or waits."""
        with self._lock:
            return self._running or self._latest is not None

    @pyqtSlot()
    def _configure(self) -> None:
        if self._nice and hasattr(os, "setpriority"):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except OSError:  # not Linux-like per-thread niceness: run at normal priority
                pass
        if self._torch_threads is not None:
            import torch

            torch.set_num_threads(self._torch_threads)

    @pyqtSlot()
    def _process(self) -> None:
        with self._lock:
            item, self._latest = self._latest, None
            self._running = item is not None
        if item is None:  # this wake was coalesced into an earlier one
            return
        request_id, request = item
        self.runs += 1
        try:
            result = self._function(request)
        except Exception as exc:  # noqa: BLE001 — reported to the user, never lost
            log.error("%s failed on request %d:\n%s", self._thread.objectName(), request_id,
                      traceback.format_exc())
            self.failed.emit(request_id, describe(exc))
        else:
            self.finished.emit(request_id, result)
        finally:
            with self._lock:
                self._running = False

    def stop(self) -> None:
        """Let the running request finish, then end the thread (called when the window closes)."""
        with self._lock:
            self._latest = None
        self._thread.quit()
        self._thread.wait()


class BackgroundTasks(QObject):
    """One FIFO worker thread for loading files and models and for exports.

    ``submit(function, on_done, on_error)`` runs ``function()`` off the UI thread and calls
    ``on_done(result)`` or ``on_error(message)`` back on the UI thread.
    """

    _settled = pyqtSignal(object, object)  # callback, argument

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mricolor-tasks")
        self._settled.connect(self._call)
        self.pending = 0

    def submit(self, function: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[str], None]) -> Future:
        self.pending += 1

        def settle(future: Future) -> None:
            exc = future.exception()
            if exc is None:
                self._settled.emit(on_done, future.result())
            else:
                log.error("background task failed:\n%s",
                          "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
                self._settled.emit(on_error, describe(exc))

        future = self._pool.submit(function)
        future.add_done_callback(settle)
        return future

    @pyqtSlot(object, object)
    def _call(self, callback: Callable, argument: Any) -> None:
        self.pending -= 1
        callback(argument)

    def stop(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
