#!/usr/bin/env python3
"""Tracking-fidelity figures (bench/run fidelity). Prints `FIGURE <key> <value> <unit>` lines.

  fidelity.generated_functions   generated test functions in the campaign (tests/fidelity/
                                 fidelity.py): MMSB_FIDELITY_COUNT programs (default 1000) of
                                 MMSB_FIDELITY_FUNCTIONS functions (default 24) from seed
                                 MMSB_FIDELITY_SEED (default 1000).
  fidelity.generated_failures    failing programs among them: plugin compile failures where the
                                 plain build compiled, crashes, replay mismatches.
  fidelity.rediscovered_classes  the same campaign against the code as it was before issue 13's
                                 fixes (a build tree given by MMSB_FIDELITY_BASELINE_BUILD, e.g. of
                                 commit 7bea466): how many of the issue's defect classes the
                                 failing programs' productions point at. Skipped without it.
                                 Such a build needs only mmsb-plugin, mmsb and a fidelity_replay
                                 (tests/fidelity/fidelity_replay.cc compiled against its runtime
                                 into <build>/tests/fidelity/).

Environment: MMSB_BUILD_DIR (default build/), MMSB_BENCH_JOBS (default 2), MMSB_FIDELITY_RESULTS
(a results file, `fidelity.py run --results`: the campaign resumes it, running only the seeds it
lacks, so a campaign run earlier, or stopped and resumed, gives the figures). Needs mmsb-plugin,
the runtime and fidelity_replay (built here with ninja).
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MMSB_BUILD_DIR", os.path.join(ROOT, "build"))
FIDELITY = os.path.join(ROOT, "tests", "fidelity", "fidelity.py")


def campaign(build, extra):
    cmd = [sys.executable, FIDELITY, "run", "--build", build,
           "--seed", os.environ.get("MMSB_FIDELITY_SEED", "1000"),
           "--count", os.environ.get("MMSB_FIDELITY_COUNT", "1000"),
           "--functions", os.environ.get("MMSB_FIDELITY_FUNCTIONS", "24"),
           "--jobs", os.environ.get("MMSB_BENCH_JOBS", "2"), "--figures", *extra]
    if os.environ.get("MMSB_FIDELITY_RESULTS") and not extra:
        cmd += ["--results", os.environ["MMSB_FIDELITY_RESULTS"]]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True).stdout
    sys.stderr.write(out)
    return dict((m.group(1), m.group(2)) for m in re.finditer(r"^FIGURE (\S+) (\S+)", out, re.M))


def main():
    subprocess.run(["ninja", "-C", BUILD, "mmsb-plugin", "mmsb", "fidelity_replay"], check=True)
    figures = campaign(BUILD, [])
    print(f"FIGURE fidelity.generated_functions {figures['fidelity.generated_functions']} functions")
    print(f"FIGURE fidelity.generated_failures {figures['fidelity.generated_failures']} programs")
    baseline = os.environ.get("MMSB_FIDELITY_BASELINE_BUILD")
    if baseline:
        # The old plugin predates the fixes that make precompiled headers work with it, and the
        # old code's failures need no plain build to be seen.
        before = campaign(baseline, ["--pch-every", "0", "--plain-every", "1000"])
        print(f"FIGURE fidelity.rediscovered_classes {before['fidelity.rediscovered_classes']} "
              "classes")
    else:
        print("fidelity_bench: set MMSB_FIDELITY_BASELINE_BUILD to a build of the code before the "
              "fixes (e.g. commit 7bea466) for fidelity.rediscovered_classes", file=sys.stderr)
        print("FIGURE fidelity.rediscovered_classes nan classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
