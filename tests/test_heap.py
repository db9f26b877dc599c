"""core.heap: freed heap memory goes back to the system."""
import numpy as np
import pytest

from core.heap import _trim, release_free_memory


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_freed_small_blocks_are_returned_to_the_system():
    """Blocks under the mmap threshold stay in the heap once freed when a live block sits above
    them; only the trim gives their pages back."""
    blocks = [np.ones(16_000, dtype=np.float64) for _ in range(4_000)]  # 128 kB each, about 0.5 GB
    keep = blocks[-1]
    del blocks
    before = _resident_bytes()
    assert release_free_memory() is True
    after = _resident_bytes()
    assert before - after > 300_000_000, (before, after)
    assert keep.sum() == 16_000
