#!/usr/bin/env bash
# What a newcomer's mistakes look like: each case must end with a clear, actionable message and
# a non-zero exit (or, for "no GPU", a clear note and success). usage: run.sh <build> <source> <scratch>
set -uo pipefail
build="$1"; src="$2"; scratch="$3"
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch"
failures=0

# expect <name> <exit: zero|nonzero> <regex> -- command...
expect() {
  local name="$1" want="$2" regex="$3"; shift 4
  local out rc
  out="$("$@" 2>&1)"; rc=$?
  if { [ "$want" = zero ] && [ $rc -ne 0 ]; } || { [ "$want" = nonzero ] && [ $rc -eq 0 ]; }; then
    printf 'FAIL %s: exit %d\n%s\n' "$name" "$rc" "$out"; failures=$((failures + 1)); return
  fi
  if ! grep -Eq -- "$regex" <<<"$out"; then
    printf 'FAIL %s: output does not match /%s/:\n%s\n' "$name" "$regex" "$out"; failures=$((failures + 1)); return
  fi
  printf 'ok   %s: %s\n' "$name" "$(grep -Em1 -- "$regex" <<<"$out")"
}

mmsb="$build/tools/mmsb"
cxx="$build/bin/mmsb-c++"

# 1. A log that is not there.
expect "missing log" nonzero "no log at '.*nowhere.tlog'" -- "$mmsb" log stats nowhere.tlog
expect "missing log (replay)" nonzero "no log at|cannot open 'nowhere.tlog'" -- "$mmsb" replay nowhere.tlog --epoch 1

# 2. A corrupt log: the damage is reported with file and offset, nothing is applied past it.
"$build/examples/particles/particles" --log good.tlog --steps 20 --no-gpu >/dev/null
cp -r good.tlog bad.tlog
seg="$(ls bad.tlog/*.seg | head -n1)"
# Damage near the end: the epochs before it replay, the damaged one is reported, never applied.
size="$(stat -c %s "$seg")"
printf 'XXXXXXXXXXXXXXXX' | dd of="$seg" bs=1 seek=$((size - 2500)) conv=notrunc status=none
expect "corrupt log" nonzero "${seg}:[0-9]+: corruption" -- "$mmsb" log verify bad.tlog
expect "corrupt log (how to go on)" nonzero "hint: .*--salvage" -- "$mmsb" replay bad.tlog --epoch latest
expect "corrupt log (salvage)" nonzero "[1-9][0-9]* epochs applied .* [1-9][0-9]* dropped" -- "$mmsb" log verify bad.tlog --salvage

# 3. The wrong clang: clang++ on Debian 12 is clang 14, which would crash loading the plugin.
if command -v clang++-14 >/dev/null 2>&1 || clang++ --version 2>/dev/null | grep -q "version 14"; then
  other="$(command -v clang++-14 || command -v clang++)"
  expect "wrong clang" nonzero "built for clang 19" -- env MMSB_CXX="$other" "$cxx" -c "$src/examples/quickstart/quickstart.cc" -o q.o
fi
expect "not a compiler" nonzero "is not an executable|not clang" -- env MMSB_CXX=/nonexistent/clang++ "$cxx" -c x.cc

# 4. The plugin is not where the wrapper expects it.
expect "plugin not found" nonzero "plugin was not found at /nonexistent/mmsb-plugin.so" -- \
  env MMSB_PLUGIN=/nonexistent/mmsb-plugin.so "$cxx" -c "$src/examples/quickstart/quickstart.cc" -o q.o

# 5. A page type that cannot live in a page.
cat > bad_type.cc <<'CC'
#include <string>
struct [[mmsb::page]] Config { int version; std::string name; };
[[mmsb::page]] Config g_config;
int main() { g_config.version = 2; }
CC
expect "non-trivially-copyable page type" nonzero \
  "page type 'Config' is not trivially copyable" -- "$cxx" -c bad_type.cc -o bad_type.o
expect "...with a note naming the member" nonzero "note: .*'name'" -- "$cxx" -c bad_type.cc -o bad_type.o

# 6. No GPU: the demo says so and runs on without a mirror (or mirrors, on a machine with one).
expect "no GPU" zero "mirrored on|no CUDA device .*running without a GPU mirror" -- \
  "$build/examples/particles/particles" --log gpu.tlog --steps 3

# 7. A log the program cannot create.
expect "unwritable log" nonzero "particles: opening the log: .*" -- \
  "$build/examples/particles/particles" --log /proc/mmsb-cannot-write.tlog --steps 1 --no-gpu

if [ $failures -ne 0 ]; then echo "$failures case(s) failed"; exit 1; fi
echo "all newcomer error cases give clear messages"
