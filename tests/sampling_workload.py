"""A controlled workload for the access-sampling tests (run as a script, root).

``python sampling_workload.py OUT.json MIB PASSES GAP_S FILE``: allocates MIB MiB
(numpy; the first pass is the allocation's own fill), touches every page
PASSES times in all, GAP_S seconds apart, frees it; before that it writes
FILE (MIB/4 MiB), maps it and reads every page twice, GAP_S apart. OUT.json gets
the physical frames of both (from /proc/self/pagemap, read while mapped), so
the test can find them in the trace.
"""

import json
import mmap
import os
import sys
import time

import numpy as np

_PRESENT, _PFN = 1 << 63, (1 << 55) - 1


def frames(view: np.ndarray) -> list[int]:
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        n = view.nbytes // 4096
        e = np.frombuffer(os.pread(fd, 8 * n, 8 * (view.ctypes.data // 4096)), np.uint64)
    finally:
        os.close(fd)
    return [int(x) for x in (e[(e & np.uint64(_PRESENT)) != 0] & np.uint64(_PFN))]


def main(out: str, mib: int, passes: int, gap_s: float, path: str) -> None:
    # The file first: its frames stay cached after it is unmapped, so the
    # array's frames (freed at the end) are none of them.
    with open(path, "wb") as f:
        f.write(np.ones(mib << 18, np.uint8).tobytes())
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        v = np.frombuffer(m, np.uint8)
        total = int(v[::4096].sum())
        filed = frames(v)
        time.sleep(gap_s)
        total += int(v[::4096].sum())
        time.sleep(gap_s)
        del v
        m.close()
    a = np.ones(mib << 20, np.uint8)  # pass 1: the allocation's fill
    anon = frames(a)
    for _ in range(passes - 1):
        time.sleep(gap_s)
        a[::4096] += 1
    time.sleep(gap_s)
    del a
    with open(out, "w") as f:
        json.dump({"anon": anon, "file": filed, "sum": total}, f)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
