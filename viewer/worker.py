"""Worker threads: latest-wins mailboxes for per-plane work, a FIFO for loading and exports.

`LatestWinsWorker` runs one function on its own QThread. ``submit`` overwrites a single slot, so
however fast the requests come, only the newest is ever started; results carry the request id
and the plane pipeline drops any id older than the one on screen (docs/viewer.md: 60
back-to-back requests ran the model once). A running torch forward cannot be interrupted, so
discarding is the practical cancel. Exceptions never escape a worker: PyQt6 aborts the process
when one leaves a slot, so they come back as ``failed`` with a readable message.

`KeyedLatestWinsWorker` is the same with one slot per key on one thread: the current plane and
the three orthogonal views of the three-view layout share it (one network thread whatever the
number of views), and a request that gives the same result as one just run (the current plane
is also one of the orthogonal views) is answered from that result instead of being run again.
"""
from __future__ import annotations

import logging
import os
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from core.errors import InputError

log = logging.getLogger("mricolor.viewer")


def describe(exc: BaseException) -> str:
    """A message for the user: the InputError text as it is, anything else with its type."""
    if isinstance(exc, InputError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _WorkerThread(QObject):
    """The QThread a latest-wins worker lives on: started once its state exists, configured from
    inside itself (niceness and torch threads are per thread), ended after the running request."""

    _wake = pyqtSignal()

    def _start_thread(self, name: str, torch_threads: int | None, nice: int) -> None:
        self._torch_threads, self._nice = torch_threads, nice
        self.runs = 0
        self._thread = QThread()
        self._thread.setObjectName(name)
        self.moveToThread(self._thread)
        self._wake.connect(self._process)
        # a slot of this object, which lives in the worker thread: a lambda would run in the thread
        # that connected it and lower the UI thread's priority instead
        self._thread.started.connect(self._configure)
        self._thread.start()

    @pyqtSlot()
    def _configure(self) -> None:
        _configure_thread(self._nice, self._torch_threads)

    def _end_thread(self) -> None:
        self._thread.quit()
        self._thread.wait()


class LatestWinsWorker(_WorkerThread):
    """Runs ``function(request)`` on a QThread for the newest submitted request only.

    ``torch_threads`` sets the worker thread's own torch intra-op threads (the setting is per
    thread): slicing and metrics run on one, so that on a 2-core machine they do not fight the
    model's threads. ``nice`` lowers the thread's scheduling priority (Linux, where niceness is
    per thread and inherited by the threads torch starts from it), so that the UI thread wins the
    cores whenever it has work: the UI never waits for a worker.
    """

    finished = pyqtSignal(int, object)  # request id, result
    failed = pyqtSignal(int, str)  # request id, message

    def __init__(self, function: Callable[[Any], Any], name: str, torch_threads: int | None = None,
                 nice: int = 0):
        super().__init__()
        self._function = function
        self._lock = threading.Lock()
        self._latest: tuple[int, Any] | None = None
        self._running = False
        self._start_thread(name, torch_threads, nice)

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
        self._end_thread()


def _configure_thread(nice: int, torch_threads: int | None) -> None:
    """Lower the calling thread's priority by ``nice`` (relative to what it inherited: the viewer
    may itself run under ``nice``) and set its torch intra-op threads."""
    if nice and hasattr(os, "setpriority"):
        try:
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(os.getpriority(os.PRIO_PROCESS, me) + nice, 19))
        except OSError:  # not Linux-like per-thread niceness: run at normal priority
            pass
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)


class KeyedLatestWinsWorker(_WorkerThread):
    """Runs ``function(request)`` on one QThread for the newest request of each key.

    ``submit(key, request_id, request)`` replaces what waits under ``key`` only, and keeps its
    place in the line: the thread takes one waiting request at a time, that of the key which has
    waited longest for an answer (ties in ``priority`` order), and looks at the slots again after
    each run. So a newer request overtakes everything stale, nothing waits behind a batch that is
    out of date, and no key starves while others keep changing (a drag moves all four planes of
    the three-view layout ten times a second, faster than the network can follow). ``same(a,
    b)`` says whether two requests give the same result: the other keys' waiting requests that
    are the same as the one taken are answered by its single run, and so is a request the same
    as one of the last few run (a key submitted while its twin was running). Results come back
    as ``finished(key, request id, result)`` one by one, as soon as each is ready; ``runs``
    counts the function's calls.
    """

    finished = pyqtSignal(str, int, object)  # key, request id, result
    failed = pyqtSignal(str, int, str)  # key, request id, message

    #: How many recent results a new request may be answered from.
    REMEMBERED = 4

    def __init__(self, function: Callable[[Any], Any], name: str, *, priority: Sequence[str] = (),
                 same: Callable[[Any, Any], bool] | None = None, torch_threads: int | None = None, nice: int = 0):
        super().__init__()
        self._function, self._same = function, same
        self._rank = {key: i for i, key in enumerate(priority)}
        self._lock = threading.Lock()
        self._slots: dict[str, tuple[int, Any]] = {}
        self._since: dict[str, int] = {}  # per waiting key: its place in the line
        self._ticket = 0
        self._running: tuple[str, ...] = ()  # the keys the running request answers
        self._recent: list[tuple[Any, Any]] = []  # worker thread only: (request, result), newest last
        self._start_thread(name, torch_threads, nice)

    def submit(self, key: str, request_id: int, request: Any) -> None:
        """Replace whatever waits under ``key`` with this request (never blocks on the running one)."""
        with self._lock:
            self._slots[key] = (request_id, request)
            if key not in self._since:
                self._ticket += 1
                self._since[key] = self._ticket
        self._wake.emit()

    def cancel(self, keys: Sequence[str] | None = None) -> None:
        """Drop what waits under ``keys`` (all keys when None); a running request still finishes."""
        with self._lock:
            for key in list(self._slots) if keys is None else keys:
                self._slots.pop(key, None)
                self._since.pop(key, None)

    @property
    def busy(self) -> bool:
        """True while a request runs or waits."""
        with self._lock:
            return bool(self._running or self._slots)

    def busy_with(self, keys: Sequence[str]) -> bool:
        """True while a request of one of ``keys`` runs or waits."""
        with self._lock:
            return any(key in self._slots or key in self._running for key in keys)

    def _order(self, key: str) -> tuple[int, int, str]:
        return self._since[key], self._rank.get(key, len(self._rank)), key

    def _take(self) -> list[tuple[str, int, Any]]:
        """The first waiting request in priority order and the others' requests that are the same."""
        with self._lock:
            if not self._slots:
                self._running = ()
                return []
            first = min(self._slots, key=self._order)
            rid, request = self._slots.pop(first)
            del self._since[first]
            taken = [(first, rid, request)]
            if self._same is not None:
                for key in sorted(self._slots, key=self._order):
                    if self._same(self._slots[key][1], request):
                        taken.append((key, *self._slots.pop(key)))
                        del self._since[key]
            self._running = tuple(key for key, _, _ in taken)
            return taken

    @pyqtSlot()
    def _process(self) -> None:
        while taken := self._take():
            request = taken[0][2]
            try:
                result = next((done for old, done in reversed(self._recent)
                               if self._same is not None and self._same(old, request)), None)
                if result is None:
                    self.runs += 1
                    result = self._function(request)
                    self._recent = [*self._recent[1 - self.REMEMBERED:], (request, result)]
            except Exception as exc:  # noqa: BLE001 — reported to the user, never lost
                log.error("%s failed on %s:\n%s", self._thread.objectName(),
                          ", ".join(f"{key} {rid}" for key, rid, _ in taken), traceback.format_exc())
                self._done()
                for key, rid, _ in taken:
                    self.failed.emit(key, rid, describe(exc))
            else:
                self._done()  # before the results go out: whoever receives them may ask whether all is done
                for key, rid, _ in taken:
                    self.finished.emit(key, rid, result)

    def _done(self) -> None:
        with self._lock:
            self._running = ()

    def stop(self) -> None:
        """Let the running request finish, drop the waiting ones, then end the thread."""
        self.cancel()
        self._end_thread()


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
