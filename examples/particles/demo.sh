#!/usr/bin/env bash
# The end-to-end demo (README command one): a particle simulation compiled with the MMSB plugin,
# its log, a field-level diff, a replay checked bit for bit, a restart from the checkpoint, and
# the IR diff of a one-function change, and the two offline HTML reports.
#
# usage: demo.sh <build dir>      (scripts/dev demo builds first and calls this)
set -euo pipefail
build="$(cd "${1:?usage: demo.sh <build dir>}" && pwd)"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mmsb="$build/tools/mmsb"
particles="$build/examples/particles/particles"
work="$build/demo"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

bold=""; plain=""
if [ -t 1 ]; then bold=$'\033[1m'; plain=$'\033[0m'; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
for f in "$mmsb" "$particles" "$build/bin/mmsb-c++"; do
  [ -x "$f" ] || { echo "demo: $f is missing; build first (scripts/dev build)" >&2; exit 1; }
done

step "1/6 The plugin rewrote every store to [[mmsb::page]] state into a barriered store (mmsb-rewrite shows it):"
rewritten="$("$build/rewriter/mmsb-rewrite" "$src/particles.cc" -- -std=c++20 -I"$src/../../runtime/include" \
  -I"$src/../../kernels/include")"
grep -n -F -e 'g_particles.x[i] += g_particles.vx[i] * dt;' "$src/particles.cc" | sed 's/^/  source    /'
grep -n -F -e 'g_particles.x[i]))) += g_particles.vx[i] * dt;' <<<"$rewritten" | sed 's/^/  rewritten /'

step "2/6 Run 200 steps: each Step() is a transaction, so each is one epoch whose exact deltas are logged."
"$particles" --log run.tlog --steps 200 --checkpoint --dump live

step "3/6 The log: its stats, what changed between epochs 41 and 42 by field, and a replay checked against the live run."
"$mmsb" log stats run.tlog
"$mmsb" diff run.tlog --from 41 --to 42 --max-fields 6
"$mmsb" replay run.tlog --epoch latest --out replayed --quiet >/dev/null
pages=0
for f in live/*.bin; do
  cmp -s "$f" "replayed/pages/$(basename "$f")" || { echo "demo: replayed page $(basename "$f" .bin) differs from the live run" >&2; exit 1; }
  pages=$((pages + 1))
done
echo "replay of the latest epoch is bit-identical to the live state ($pages pages compared)"

step "4/6 Restart: a new process restores the static pages from the log's latest state and continues it."
"$particles" --log run.tlog --steps 50 --resume
"$mmsb" log verify run.tlog --quiet && echo "the continued log verifies: every record, every epoch, every checkpoint"

step "5/6 Two builds that differ in one function (Damp): the IR store names exactly that function."
export MMSB_IR_STORE="$work/ir.db"
"$build/bin/mmsb-c++" -O2 -c "$src/particles.cc" -I"$src/../../kernels/include" -o particles.o
"$build/bin/mmsb-c++" -O2 -c "$src/particles.cc" -I"$src/../../kernels/include" -DPARTICLES_VARIANT=2 -o particles.o
"$mmsb" ir builds
"$mmsb" ir diff 1 2

step "6/6 Pictures: one offline HTML file each (open them in a browser; no network needed)."
"$mmsb" report run.tlog -o "$work/report.html"
"$mmsb" ir report 1 2 -o "$work/ir.html"
echo "the log's epochs, fields over time and page graph: $work/report.html"
echo "the build delta (treemap, per-function IR diffs, trends):  $work/ir.html"
