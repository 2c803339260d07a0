"""Child process of ``timing.peak_memory``: ``python -m benchmarks._memory CASE SIDE THREADS MODE``.

Builds the inputs of one side of a case and, with MODE "run", calls the operation once (its
result dropped); with MODE "setup" it stops after building them.  It then prints its peak
resident set size, ``VmHWM`` of /proc/self/status in bytes.  ``VmHWM`` belongs to the process's
own address space; ``ru_maxrss`` (getrusage, wait4) would not do: exec carries the parent's
high-water mark over into the child's, so a child of a big harness process reads the parent's.
"""

from __future__ import annotations

import gc
import sys


def main(case: str, side: str, threads: int, mode: str) -> None:
    """Build ``MEMORY_SETUPS[case](side)`` and, if ``mode == "run"``, call it once."""
    import numpy  # noqa: F401 - load both OpenBLAS libraries before limiting them
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    from benchmarks.cases import MEMORY_SETUPS

    threadpool_limits(threads)
    if side == "anchor":
        import torch

        torch.set_num_threads(threads)
    op = MEMORY_SETUPS[case](side)
    gc.collect()
    if mode == "run":
        op()
        gc.collect()
    print(vm_hwm())


def vm_hwm() -> int:
    """Peak resident set size of this process in bytes (``VmHWM``, Linux)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
