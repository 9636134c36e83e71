#!/usr/bin/env bash
# The build record names the build by its units (docs/Debugging.md, "Which build ran"): two TUs
# compiled with the plugin, linked and run with a log; the log's build record must list both
# units with the content hashes their objects' unit notes carry, and the IR store must map them
# to the generation they were captured in. Then one TU is edited and recompiled alone: only its
# unit's hash changes, the new run maps to the new generation, and the first run's log still maps
# to the first. Objects are byte-identical when compiled twice (no store state, no time in them).
#
# usage: build_units.sh <build dir> <work dir>      (ctest: e2e.build_units)
set -euo pipefail
build="$(cd "${1:?usage: build_units.sh <build dir> <work dir>}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/units_program"
work="${2:?usage: build_units.sh <build dir> <work dir>}"
mmsb="$build/tools/mmsb"
cxx="$build/bin/mmsb-c++"
for f in "$mmsb" "$cxx"; do
  [ -x "$f" ] || { echo "build_units: $f is missing; build first" >&2; exit 1; }
done
rm -rf "$work"
mkdir -p "$work/src"
cd "$work"
export MMSB_IR_STORE="$work/ir.db"
unset MMSB_BUILD_GENERATION MMSB_IR_CAPTURE
failures=0
check() {  # check WHAT GOT WANT
  if [ "$2" != "$3" ]; then
    echo "build_units: FAILED: $1: got '$2', expected '$3'"
    failures=$((failures + 1))
  else
    echo "build_units: ok: $1 = $2"
  fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# The build record's units as "source=hash,..." (sorted by source).
units() {
  "$mmsb" log show "$1" --type build --json |
    json '",".join(sorted(u["source"] + "=" + u["content_hash"] for r in d["records"] for u in r["unit_hashes"]))'
}
unit_hash() { tr ',' '\n' <<<"$1" | sed -n "s#^$2=##p"; }
# `mmsb build`: "generation;source=captured_in,..."
build_of() {
  "$mmsb" build "$1" --json |
    json 'str(d["build"]["generation"]) + ";" + ",".join(sorted(u["source"] + "=" + str(u["generation"]) for u in d["build"]["units"]))'
}

cp "$here/counter.cc" "$here/main.cc" src/
echo "== build 1: both TUs, one generation"
"$cxx" -O0 -c src/counter.cc -o counter.o
"$cxx" -O0 -c src/main.cc -o main.o
"$cxx" counter.o main.o -o app
./app --log run1.tlog

echo "== the same input gives the same object (a second compile, into another store)"
mkdir -p again
MMSB_IR_STORE="$work/other.db" "$cxx" -O0 -c src/counter.cc -o again/counter.o
cmp counter.o again/counter.o && check "counter.o compiled twice" same same ||
  check "counter.o compiled twice" different same

u1="$(units run1.tlog)"
echo "run 1 units: $u1"
check "run 1 lists both units" "$(tr ',' '\n' <<<"$u1" | sed 's/=.*//' | paste -sd,)" \
  "src/counter.cc,src/main.cc"
check "run 1 maps to generation 1" "$(build_of run1.tlog)" "1;src/counter.cc=1,src/main.cc=1"

echo "== build 2: counter.cc edited and recompiled alone"
sed -i 's/#define FACTOR 2/#define FACTOR 3/' src/counter.cc
"$cxx" -O0 -c src/counter.cc -o counter.o
"$cxx" counter.o main.o -o app
./app --log run2.tlog
u2="$(units run2.tlog)"
echo "run 2 units: $u2"
check "main.cc's hash is unchanged" "$(unit_hash "$u2" src/main.cc)" "$(unit_hash "$u1" src/main.cc)"
if [ "$(unit_hash "$u2" src/counter.cc)" = "$(unit_hash "$u1" src/counter.cc)" ]; then
  check "counter.cc's hash changed" unchanged changed
fi
check "run 2 maps to generation 2" "$(build_of run2.tlog)" "2;src/counter.cc=2,src/main.cc=1"
check "run 1 still maps to generation 1" "$(build_of run1.tlog)" \
  "1;src/counter.cc=1,src/main.cc=1"

echo "== mmsb why picks the generation each run was built from"
"$mmsb" why run2.tlog Counter.total
got="$("$mmsb" why run2.tlog Counter.total --json |
  json 'd["generation_from"] + " " + str(d["generation"]) + " " + str(d["previous_generation"]) + " " + ",".join(w["function"].split("(")[0].split()[-1] + ":" + str(w["changed"]) for w in d["writers"])')"
check "why run 2" "$got" "build 2 1 Bump:True"
got="$("$mmsb" why run1.tlog Counter.total --json |
  json 'd["generation_from"] + " " + str(d["generation"]) + " " + str(d["previous_generation"])')"
check "why run 1" "$got" "build 1 0"

if [ "$failures" = 0 ]; then
  echo "build_units: the build record names both units and the IR store maps them"
else
  exit 1
fi
