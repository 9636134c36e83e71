#!/usr/bin/env python3
"""Figures for the offline reports and the IR gate (bench/figures.txt, `bench/run report ir`).

- report.log_1m_epochs_mb, report.log_1m_epochs_build_s: `mmsb report` on a 1,000,000-epoch,
  1,000-page log (the report test fixture, tests/report/fixture_log.h). Baseline in the same run:
  `mmsb log verify` reading the same log (the report reads it twice: records, then a replay).
- report.open_ms: headless Chromium (network off) loading that report until its scrubber is drawn
  (performance.now() when drawn; the page records it on <body>). Skipped without Chromium.
- ir.gate_5k_functions_s: `mmsb ir gate` on two generations of 5,000 functions (10 TUs; 5% grew,
  1% renamed). Baseline in the same run: `mmsb ir diff --stat` of the same generations.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MMSB_BUILD_DIR", os.path.join(ROOT, "build"))
MMSB = os.path.join(BUILD, "tools", "mmsb")
FIXTURE = os.path.join(BUILD, "tests", "report", "mmsb_report_fixture")


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd):
    """Wall seconds and the finished process; prints the CPU seconds too (a loaded machine
    inflates wall time, not CPU time)."""
    c, t = cpu_children(), time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    print(f"  {os.path.basename(cmd[0])} {' '.join(cmd[1:3])}: {wall:.2f} s wall, "
          f"{cpu_children() - c:.2f} s CPU", file=sys.stderr)
    return wall, p


def main():
    rounds = max(1, int(os.environ.get("MMSB_BENCH_ROUNDS", "1")))
    subprocess.run(["ninja", "-C", BUILD, "mmsb-cli", "mmsb_report_fixture"], check=True,
                   stdout=sys.stderr)
    work = tempfile.mkdtemp(prefix="mmsb-report-bench-")
    try:
        log = os.path.join(work, "run.tlog")
        t, p = timed([FIXTURE, "log", log, "1000000", "1000"])
        if p.returncode != 0:
            sys.exit("fixture failed: " + p.stderr)
        print(f"1M-epoch log written in {t:.1f} s", file=sys.stderr)
        page = os.path.join(work, "report.html")
        for _ in range(rounds):  # one line per round: bench/run takes the median
            base, p = timed([MMSB, "log", "verify", log])
            build, p = timed([MMSB, "report", log, "-o", page, "-q"])
            if p.returncode != 0:
                sys.exit("mmsb report failed: " + p.stderr)
            print(f"baseline: mmsb log verify of the same log {base:.2f} s; report {build:.2f} s "
                  f"({build / base:.2f}x)", file=sys.stderr)
            print(f"FIGURE report.log_1m_epochs_build_s {build:.3f} s")
        size = os.path.getsize(page) / 1e6
        print(f"FIGURE report.log_1m_epochs_mb {size:.3f} MB")
        chromium = shutil.which("chromium")
        if chromium:
            p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "report", "browser_test.py"),
                                "--mmsb", MMSB, "--out", work, "--open-ms", page],
                               stdout=subprocess.PIPE, text=True)
            sys.stdout.write(p.stdout)
        else:
            print("report.open_ms: skipped, chromium not installed", file=sys.stderr)

        db = os.path.join(work, "ir.db")
        subprocess.run([FIXTURE, "ir", db, "5000"], check=True)
        budget = os.path.join(work, "budget.json")
        with open(budget, "w") as f:
            json.dump({"total_growth_percent": 5, "function_growth": 10,
                       "unchanged": ["renamed"], "no_growth_at_post": ["work<4999>"]}, f)
        for _ in range(rounds):
            base, p = timed([MMSB, "ir", "diff", "1", "2", "--stat", "--store", db])
            gate, p = timed([MMSB, "ir", "gate", "1", "2", "--store", db, "--budget", budget])
            if p.returncode not in (0, 1):
                sys.exit("mmsb ir gate failed: " + p.stderr)
            print(f"baseline: mmsb ir diff --stat of the same generations {base:.2f} s; gate "
                  f"{gate:.2f} s ({gate / base:.2f}x)", file=sys.stderr)
            print(f"FIGURE ir.gate_5k_functions_s {gate:.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
