#!/usr/bin/env bash
# ir-history: five builds of one small program (versions/ledger.v1.cc .. v5.cc, each changing one
# thing) into a fresh IR store with the build tree's compiler wrapper; then `mmsb ir builds`,
# `mmsb ir diff` and `mmsb ir history` tell the story. The script checks that every build's diff
# names exactly the function(s) it changed and that each function's history lists exactly the
# generations in which it changed.
#
# usage: ir-history.sh <build dir> [work dir]      (ctest: example_ir_history)
set -euo pipefail
build="$(cd "${1:?usage: ir-history.sh <build dir> [work dir]}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${2:-$build/ir-history}"
mmsb="$build/tools/mmsb"
cxx="$build/bin/mmsb-c++"
for f in "$mmsb" "$cxx"; do
  [ -x "$f" ] || { echo "ir-history: $f is missing; build first (scripts/dev build)" >&2; exit 1; }
done
rm -rf "$work"
mkdir -p "$work/src"
cd "$work"
export MMSB_IR_STORE="$work/ir.db"  # a fresh store; generations open automatically, one per build
unset MMSB_BUILD_GENERATION MMSB_IR_CAPTURE

bold=""; plain=""
if [ -t 1 ]; then bold=$'\033[1m'; plain=$'\033[0m'; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
failures=0
check() {  # check WHAT GOT WANT
  if [ "$2" != "$3" ]; then
    echo "ir-history: FAILED: $1: got '$2', expected '$3'"
    failures=$((failures + 1))
  fi
}

change=(
  ""
  "the first version: a ledger that posts amounts, with tax"
  "a constant: TaxRate() returns 25 instead of 20"
  "an inline helper: Clamp() also caps an amount at 1000.00"
  "a rename: Tax() becomes Levy()"
  "one function goes, one comes: Audit() is removed, Refund() added"
)
# What `mmsb ir diff <previous> <this>` must report at stage pre (as clang generated the code).
expect_diff=(
  "" ""
  "changed TaxRate()"
  "changed Clamp(long)"
  "renamed Tax(long) -> Levy(long); changed Post(int, long)"
  "removed Audit(); added Refund(int, long); changed main"
)

step "Five builds of src/ledger.cc with $(basename "$cxx") -O2, each into the next IR generation:"
for v in 1 2 3 4 5; do
  cp "$here/versions/ledger.v$v.cc" src/ledger.cc
  "$cxx" -O2 src/ledger.cc -o ledger
  prints="$(./ledger | tail -n 1)"
  if [ "$v" = 1 ]; then
    what="$("$mmsb" ir builds --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generations"][-1]["functions"])') functions captured"
  else
    what="$("$mmsb" ir diff $((v - 1)) "$v" --stat --json | python3 "$here/ir_story.py" diff "$mmsb")"
    check "diff $((v - 1)) $v" "$what" "${expect_diff[$v]}"
  fi
  printf 'build %d: %-66s -> %s; prints "%s"\n' "$v" "${change[$v]}" "$what" "$prints"
done

step "mmsb ir builds: one generation per build"
"$mmsb" ir builds
gens="$("$mmsb" ir builds --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["generations"]))')"
check "generations" "$gens" 5

step "mmsb ir diff 3 4: the rename is matched by structural hash; Post() changed only in the name it calls"
"$mmsb" ir diff 3 4

step "mmsb ir diff 2 3 --stage post --stat: optimised, Clamp() is inlined, so its change shows in Post()"
"$mmsb" ir diff 2 3 --stage post --stat

step "mmsb ir history Post: the generations where Post(int, long) changed, as written and as optimised"
"$mmsb" ir history Post
"$mmsb" ir history Post --stage post

step "Every function's history, checked:"
# function, stage, expected history
while read -r func stage want; do
  got="$("$mmsb" ir history "$func" --stage "$stage" --json | python3 "$here/ir_story.py" history)"
  check "history $func ($stage)" "$got" "$want"
  printf '  %-8s %-5s %s\n' "$func" "$stage" "$got"
done <<'HISTORIES'
TaxRate pre added 1, changed 2
Clamp pre added 1, changed 3
Tax pre added 1, removed 4
Levy pre added 4
Post pre added 1, changed 4
Audit pre added 1, removed 5
Refund pre added 5
main pre added 1, changed 5
Post post added 1, changed 2, changed 3
HISTORIES

if [ "$failures" -ne 0 ]; then
  echo "ir-history: $failures check(s) FAILED"
  exit 1
fi
echo "ir-history: every build's diff and every function's history are as expected"
