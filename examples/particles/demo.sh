#!/usr/bin/env bash
# The end-to-end demo (README command one): a particle simulation compiled with the MMSB plugin,
# its log, a field-level diff, a replay checked bit for bit, a restart from the checkpoint, the IR
# diff of a one-function change, the two offline HTML reports, and (with nats-server) a
# replication follower that ends bit-identical to the leader.
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

step "1/7 The plugin rewrote every store to [[mmsb::page]] state into a store followed by its mark (mmsb-rewrite shows it):"
rewritten="$("$build/rewriter/mmsb-rewrite" "$src/particles.cc" -- -std=c++20 -I"$src/../../runtime/include" \
  -I"$src/../../kernels/include")"
grep -n -F -e 'g_particles.x[i] += g_particles.vx[i] * dt;' "$src/particles.cc" | sed 's/^/  source    /'
grep -n -F -e 'ws(&(g_particles.x[i])) += g_particles.vx[i] * dt;' <<<"$rewritten" | sed 's/^/  rewritten /'

step "2/7 Run 200 steps: each Step() is a transaction, so each is one epoch whose exact deltas are logged."
"$particles" --log run.tlog --steps 200 --checkpoint --dump live

step "3/7 The log: its stats, what changed between epochs 41 and 42 by field, and a replay checked against the live run."
"$mmsb" log stats run.tlog
"$mmsb" diff run.tlog --from 41 --to 42 --max-fields 6
"$mmsb" replay run.tlog --epoch latest --out replayed --quiet >/dev/null
pages=0
for f in live/*.bin; do
  cmp -s "$f" "replayed/pages/$(basename "$f")" || { echo "demo: replayed page $(basename "$f" .bin) differs from the live run" >&2; exit 1; }
  pages=$((pages + 1))
done
echo "replay of the latest epoch is bit-identical to the live state ($pages pages compared)"

step "4/7 Restart: a new process restores the static pages from the log's latest state and continues it."
"$particles" --log run.tlog --steps 50 --resume
"$mmsb" log verify run.tlog --quiet && echo "the continued log verifies: every record, every epoch, every checkpoint"

step "5/7 Two builds that differ in one function (Damp): the IR store names exactly that function."
export MMSB_IR_STORE="$work/ir.db"
"$build/bin/mmsb-c++" -O2 -c "$src/particles.cc" -I"$src/../../kernels/include" -o particles.o
"$build/bin/mmsb-c++" -O2 -c "$src/particles.cc" -I"$src/../../kernels/include" -DPARTICLES_VARIANT=2 -o particles.o
"$mmsb" ir builds
"$mmsb" ir diff 1 2

step "6/7 Pictures: one offline HTML file each (open them in a browser; no network needed)."
"$mmsb" report run.tlog --store "$MMSB_IR_STORE" --ir-link ir.html -o "$work/report.html"
"$mmsb" ir report 1 2 -o "$work/ir.html"
echo "the log's epochs (coloured by transaction), fields over time (blame, history), page graph: $work/report.html"
echo "the build delta (treemap, per-function IR diffs, trends):  $work/ir.html"

step "7/7 Replication: the simulation publishes every epoch to NATS JetStream; a follower process ends bit-identical."
nats_server="$(command -v nats-server || true)"
probe="$("$mmsb" follow nats://127.0.0.1:1/x --idle-exit 1 2>&1 || true)"
if [ -z "$nats_server" ]; then
  echo "skipped: nats-server is not installed (scripts/dev setup installs it)"
  exit 0
fi
case "$probe" in
  *"built without replication"*) echo "skipped: mmsb was built without replication (libnats-dev)"; exit 0 ;;
esac
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$nats_server" -js -a 127.0.0.1 -p "$port" -sd "$work/nats" -l "$work/nats.log" &
nats_pid=$!
trap 'kill $nats_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
MMSB_REPLICATE="nats://127.0.0.1:$port/particles" "$particles" --log leader.tlog --steps 100 --dump leader --no-gpu
last="$("$mmsb" replay leader.tlog --epoch latest --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])')"
"$mmsb" follow "nats://127.0.0.1:$port/particles" --out replica.tlog --until "$last" --idle-exit 10000 --quiet
"$mmsb" replay replica.tlog --epoch latest --out replica --quiet >/dev/null
pages=0
for f in leader/*.bin; do
  cmp -s "$f" "replica/pages/$(basename "$f")" || { echo "demo: follower page $(basename "$f" .bin) differs from the leader" >&2; exit 1; }
  pages=$((pages + 1))
done
echo "the follower's replica log replays bit-identical to the leader at epoch $last ($pages pages compared)"
