#!/usr/bin/env bash
# Installs this build into a scratch prefix, checks that every public header is there and compiles
# on its own, and uses it the three ways a user would:
#   1. CMake: find_package(mmsb) + mmsb_instrument() in tests/package/consumer;
#   2. mmsb-c++ and pkg-config, without CMake;
#   3. the refusals: a non-clang-19 compiler in CMake and in mmsb-c++.
# usage: run.sh <build dir> <source dir> <scratch dir>
set -euo pipefail
build="$1"; src="$2"; scratch="$3"
prefix="$scratch/prefix"
rm -rf "$scratch"; mkdir -p "$scratch"
cmake --install "$build" --prefix "$prefix" >"$scratch/install.log"
export MMSB_VERIFY=1

echo "== 0. every public header is installed and compiles on its own (one concept per header)"
for h in "$src"/runtime/include/mmsb/*.h "$src"/kernels/include/mmsb/*.h; do
  name="$(basename "$h")"
  [ -f "$prefix/include/mmsb/$name" ] || { echo "mmsb/$name is not installed"; exit 1; }
  echo "#include \"mmsb/$name\"" |
    clang++-19 -std=c++20 -fsyntax-only -I"$prefix/include" -x c++ - ||
    { echo "mmsb/$name does not compile on its own"; exit 1; }
done

echo "== 1. find_package(mmsb) + mmsb_instrument"
cmake -S "$src/tests/package/consumer" -B "$scratch/consumer" -G Ninja \
  -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_PREFIX_PATH="$prefix" >"$scratch/configure.log"
cmake --build "$scratch/consumer" | tee "$scratch/build.log"
# CMake's precompiled-header wrapper includes counter_state.h under #pragma clang system_header;
# the plugin blanks that pragma while the PCH is built, so Tally is instrumented (counter_pch
# checks that it is tracked) and nothing says otherwise.
if grep -q "cannot be instrumented" "$scratch/build.log"; then
  echo "the page type in the precompiled header was not instrumented"; exit 1
fi
"$scratch/consumer/counter"
"$scratch/consumer/counter_pch"
# The build opened an IR generation and captured the consumer's functions into its build tree.
"$prefix/bin/mmsb" ir builds --store "$scratch/consumer/.mmsb/ir.db" | tee "$scratch/ir-builds.txt"
functions="$("$prefix/bin/mmsb" ir functions --gen 1 --store "$scratch/consumer/.mmsb/ir.db")"
grep -q "Record(Counters&, int, double)" <<<"$functions" || { echo "Record was not captured"; exit 1; }

echo "== 2. mmsb-c++ with pkg-config"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists mmsb
plugin="$(pkg-config --variable=plugin mmsb)"
[ -f "$plugin" ] || { echo "pkg-config plugin path $plugin does not exist"; exit 1; }
"$prefix/bin/mmsb-c++" -O2 "$src/tests/package/consumer/counter.cc" -o "$scratch/counter-wrapper"
"$scratch/counter-wrapper"
clang++-19 -fplugin="$plugin" $(pkg-config --cflags mmsb) "$src/tests/package/consumer/counter.cc" \
  $(pkg-config --libs mmsb) -o "$scratch/counter-pc"
"$scratch/counter-pc"

echo "== 3. a mismatched compiler is refused with a clear message"
if out="$(MMSB_CXX=g++ "$prefix/bin/mmsb-c++" -c "$src/tests/package/consumer/counter.cc" -o /dev/null 2>&1)"; then
  echo "mmsb-c++ accepted g++"; exit 1
fi
echo "$out" | grep -q "built for clang 19" || { echo "unexpected message: $out"; exit 1; }
echo "mmsb-c++ refused g++: $out"
if out="$(cmake -S "$src/tests/package/consumer" -B "$scratch/consumer-gcc" -G Ninja \
          -DCMAKE_CXX_COMPILER=g++ -DCMAKE_PREFIX_PATH="$prefix" 2>&1)"; then
  echo "CMake accepted g++"; exit 1
fi
echo "$out" | grep -q "needs clang 19" || { echo "unexpected message: $out"; exit 1; }
echo "mmsb_instrument refused g++"
echo "package test passed"
