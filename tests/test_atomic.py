"""Atomic writes (`core.atomic`): finished files get the umask's mode without the umask being touched."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from core.atomic import atomic_directory, atomic_path, write_text


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_files_and_folders_get_the_mode_the_umask_gives_without_reading_it(tmp_path, umask_027, monkeypatch):
    def no_umask(_mask):
        raise AssertionError("os.umask was called: it changes the process-wide mask other threads use")
    monkeypatch.setattr(os, "umask", no_umask)
    write_text(tmp_path / "a.txt", "hello")
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("x")
    monkeypatch.undo()
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o750
    assert (tmp_path / "a.txt").read_text() == "hello" and (tmp_path / "folder" / "inside.txt").is_file()


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.nii.gz") as tmp:
            assert tmp.name.endswith(".tmp.nii.gz") and tmp.parent == tmp_path
            tmp.write_bytes(b"half")
            raise RuntimeError("killed midway")
    assert list(tmp_path.iterdir()) == []


def test_concurrent_writers_never_collide(tmp_path):
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(20):
                write_text(tmp_path / f"f{i}.txt", f"{i}-{j}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}.txt" for i in range(4)]
    assert all((tmp_path / f"f{i}.txt").read_text() == f"{i}-19" for i in range(4))
