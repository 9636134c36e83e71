#!/usr/bin/env bash
# The walk-through of docs/Debugging.md: two builds of a small bank (versions/bank.v1.cc, then
# bank.v2.cc, which changes the withdrawal fee) into a fresh IR store; the second build's run
# ends with a negative balance. `mmsb bisect` finds the epoch it went wrong, `mmsb blame` the
# transaction that did it, `mmsb why` which of the functions that write the page changed between
# the builds. The script checks each answer (and prints FAILED when one differs).
#
# usage: debugging.sh <build dir> [work dir]      (ctest: example_debugging)
set -euo pipefail
build="$(cd "${1:?usage: debugging.sh <build dir> [work dir]}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${2:-$build/debugging}"
mmsb="$build/tools/mmsb"
cxx="$build/bin/mmsb-c++"
for f in "$mmsb" "$cxx"; do
  [ -x "$f" ] || { echo "debugging: $f is missing; build first (scripts/dev build)" >&2; exit 1; }
done
rm -rf "$work"
mkdir -p "$work/src"
cd "$work"
export MMSB_IR_STORE="$work/ir.db"
unset MMSB_BUILD_GENERATION MMSB_IR_CAPTURE
failures=0
check() {  # check WHAT GOT WANT
  if [ "$2" != "$3" ]; then
    echo "debugging: FAILED: $1: got '$2', expected '$3'"
    failures=$((failures + 1))
  fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== build 1 (fee 1%) and build 2 (the fee 'simplified'), each into the next IR generation"
for v in 1 2; do
  cp "$here/versions/bank.v$v.cc" src/bank.cc
  "$cxx" -O0 src/bank.cc -o bank
done
echo "== run build 2"
./bank --log run.tlog

echo "== mmsb bisect run.tlog --where 'Account.balance < 0'"
"$mmsb" bisect run.tlog --where 'Account.balance < 0'
epoch="$("$mmsb" bisect run.tlog --where 'Account.balance < 0' --json | json 'd["epoch"]')"
check "bisect epoch" "$epoch" 162

echo "== mmsb history run.tlog Account.balance --from $((epoch - 4)) --to $epoch"
"$mmsb" history run.tlog Account.balance --from $((epoch - 4)) --to "$epoch"

echo "== mmsb blame run.tlog Account.balance --at $epoch"
"$mmsb" blame run.tlog Account.balance --at "$epoch"
site="$("$mmsb" blame run.tlog Account.balance --at "$epoch" --json |
  json 'd["commit"]["transactions"][0]["function"].split("(")[0].split()[-1]')"
check "blame site" "$site" Withdraw
together="$("$mmsb" blame run.tlog Account.balance --at "$epoch" --json |
  json '",".join(sorted(c["path"] for c in d["together"]))')"
check "blame together" "$together" "Account.fees,Account.withdrawals"

echo "== mmsb touched run.tlog Account.balance"
"$mmsb" touched run.tlog Account.balance

echo "== mmsb why run.tlog Account.balance --at $epoch"
"$mmsb" why run.tlog Account.balance --at "$epoch"
changed="$("$mmsb" why run.tlog Account.balance --at "$epoch" --json |
  json '",".join(sorted(w["function"].split("(")[0] + ":" + str(w["changed"]) for w in d["writers"]))')"
check "why" "$changed" "Deposit:False,Withdraw:True"

echo "== mmsb slice run.tlog --from $((epoch - 10)) --to $epoch -o window.tlog"
"$mmsb" slice run.tlog --from $((epoch - 10)) --to "$epoch" -o window.tlog
a="$("$mmsb" replay run.tlog --epoch "$epoch" --json | json 'd["state_xxh3"]')"
b="$("$mmsb" replay window.tlog --epoch "$epoch" --json | json 'd["state_xxh3"]')"
check "slice replays the same state" "$b" "$a"

if [ "$failures" = 0 ]; then
  echo "debugging: bisect, blame, why and slice found the bug as expected"
else
  exit 1
fi
