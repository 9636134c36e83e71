#!/usr/bin/env python3
"""Figures of the CLI robustness campaign (tests/robust/cli_campaign.py), for bench/run:

  FIGURE robustness.cli_cases N count              wrong-input cases run
  FIGURE robustness.silent_wrong_answers N count   of those, exit 0 with another question's answer

Builds mmsb and robust_fixtures in MMSB_BUILD_DIR (default build/) when needed.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MMSB_BUILD_DIR", os.path.join(ROOT, "build"))

subprocess.run(["ninja", "-C", BUILD, "mmsb-cli", "robust_fixtures"], check=True,
               stdout=sys.stderr)
p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "robust", "cli_campaign.py"),
                    "--mmsb", os.path.join(BUILD, "tools", "mmsb"),
                    "--fixtures", os.path.join(BUILD, "tests", "robust", "robust_fixtures"),
                    "--figures"], capture_output=True, text=True)
sys.stderr.write(p.stderr)
figures = 0
for line in p.stdout.splitlines():
    figures += line.startswith("FIGURE ")
    (sys.stdout if line.startswith("FIGURE ") else sys.stderr).write(line + "\n")
# The figures report failures themselves (the ctest robust.cli_campaign is the gate).
sys.exit(0 if figures == 2 else p.returncode or 1)
