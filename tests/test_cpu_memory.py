"""The CPU judge keeps freed heap memory: big blocks are reused, not page-faulted in afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_phyjudge.judges.local.cpu_memory import keep_freed_memory

# Allocates and writes a 64 MiB block five times; prints the page faults of the last four.
_CHURN = """
import resource, sys
from pytest_phyjudge.judges.local.cpu_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
data = b"x" * (64 << 20)
del data
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    data = b"x" * (64 << 20)
    del data
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_big_blocks_are_reused_instead_of_faulted_in_again() -> None:
    if not keep_freed_memory():
        pytest.skip("this C library has no glibc mallopt")
    pages = 4 * (64 << 20) // 4096
    assert _faults("default") > pages // 2  # each block mapped and touched afresh
    assert _faults("keep") < pages // 20  # the same heap memory, already mapped


def test_asking_twice_is_harmless() -> None:
    assert keep_freed_memory() == keep_freed_memory()
