#!/usr/bin/env python3
"""The campaign's children run at normal priority even when the campaign was started at a
real-time one (bench/run --realtime): a generated program that hands work between threads by
spinning livelocks at SCHED_FIFO when its threads outnumber the CPUs (fidtool/toolchain.py,
normal_priority). Exits 77 (skipped) where this process may not take a real-time policy."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fidtool import toolchain  # noqa: E402


def main():
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        print("realtime_test: skipped (taking SCHED_FIFO needs root or CAP_SYS_NICE)")
        return 77
    probe = [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"]
    # The probe itself: a child started without the toolchain's runner inherits SCHED_FIFO (so
    # the check below can tell the two apart).
    out = subprocess.run(probe, stdout=subprocess.PIPE, text=True, check=True).stdout
    if int(out) != os.SCHED_FIFO:
        print(f"realtime_test: a plain child runs at policy {out.strip()}, not SCHED_FIFO")
        return 1
    rc, out, err = toolchain._run(probe, cwd=os.getcwd(), timeout=30)
    if rc != 0:
        print(f"realtime_test: the probe failed ({rc}): {err}")
        return 1
    if int(out) != os.SCHED_OTHER:
        print(f"realtime_test: a program the campaign runs got policy {out.strip()}, "
              f"not SCHED_OTHER ({os.SCHED_OTHER})")
        return 1
    print("realtime_test: children run at SCHED_OTHER under a SCHED_FIFO campaign")
    return 0


if __name__ == "__main__":
    sys.exit(main())
