#!/usr/bin/env bash
# The tutorial's two runs (examples/tutorial/tutorial.cc): the first logs, replays, diffs; the
# second is a new process that restores the static pages from the log and continues it.
#
# usage: tutorial.sh <tutorial binary> <work dir>      (ctest: example_tutorial)
set -euo pipefail
tutorial="${1:?usage: tutorial.sh <tutorial binary> <work dir>}"
work="${2:?usage: tutorial.sh <tutorial binary> <work dir>}"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
echo "# first run: tutorial --log run.tlog"
"$tutorial" --log run.tlog
echo
echo "# second run: tutorial --log run.tlog --resume"
"$tutorial" --log run.tlog --resume
