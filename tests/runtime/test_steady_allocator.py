"""``services/runtime/process.py``: ``steady_allocator`` keeps a long-running process's RSS
flat while its large, bounded tables are rebuilt (the soak's +4.7 % ingest step)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from services.runtime import process
from services.runtime.process import steady_allocator

# A child interpreter churns the ingest's own dedupe window (RecentKeys) far past its
# capacity and reports its RSS once the table has reached its steady size and at the end.
# Without the fixed threshold glibc's rising mmap threshold moves one of the later table
# rebuilds onto the heap, and RSS steps up (+4 MiB at this capacity, 2026-12-06); with it,
# nothing moves.
CHURN = textwrap.dedent(
    """
    import json, sys
    from services.runtime.process import steady_allocator
    from services.ingest.dedupe import RecentKeys

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    fixed = steady_allocator()
    capacity = 100_000
    window = RecentKeys(capacity)
    settled = None
    for i in range(9 * capacity):
        window.seen(("x", f"soak-{i:09d}"))
        if i == 3 * capacity:
            settled = rss_mib()
    print(json.dumps({"fixed": fixed, "settled": settled, "end": rss_mib()}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt, /proc")
def test_rss_stays_flat_while_the_dedupe_window_is_rebuilt_again_and_again() -> None:
    out = subprocess.run(  # noqa: S603 (a fixed command line)
        [sys.executable, "-c", CHURN], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(out.stdout)
    assert report["fixed"] is True
    # 6 × capacity more keys after the first reading: several rebuilds of a ~17 MiB table.
    assert report["end"] - report["settled"] < 1.0, report


def test_an_operators_own_malloc_tuning_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[object] = []
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"):
        monkeypatch.delenv(name, raising=False)

    class Libc:
        def mallopt(self, *args: object) -> int:
            called.append(args)
            return 1

    monkeypatch.setattr("ctypes.CDLL", lambda _name: Libc())
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "262144")
    assert steady_allocator() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=262144")
    assert steady_allocator() is False
    assert called == []
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert steady_allocator() is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert steady_allocator() is False
    assert called == []
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=512")  # not malloc's
    assert steady_allocator() is True
    assert called == [
        (process._M_TRIM_THRESHOLD, process.TRIM_THRESHOLD_BYTES),
        (process._M_MMAP_THRESHOLD, process.MMAP_THRESHOLD_BYTES),
    ]


def test_a_c_library_without_a_working_mallopt_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Musl:
        def mallopt(self, *args: object) -> int:
            return 0  # musl's: accepts the call, does nothing

    class NoMallopt:
        pass

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    monkeypatch.setattr("ctypes.CDLL", lambda _name: Musl())
    assert steady_allocator() is False
    monkeypatch.setattr("ctypes.CDLL", lambda _name: NoMallopt())
    assert steady_allocator() is False
    monkeypatch.setattr("sys.platform", "darwin")
    assert steady_allocator() is False
