#!/usr/bin/env bash
# mmsb-c++ behaves like clang++-19 in every mode and adds only what the mode needs (issue 15).
# A fake clang 19 prints the arguments it receives, one per line, so each case checks exactly
# what the wrapper added. usage: wrapper_modes.sh <mmsb-c++> <scratch>
set -uo pipefail
wrapper="$1"; scratch="$2"
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch"
cat > fake-clang++ <<'SH'
#!/bin/sh
if [ "$1" = "--version" ]; then echo "clang version 19.1.7"; exit 0; fi
for a in "$@"; do printf '%s\n' "$a"; done
SH
chmod +x fake-clang++
touch fake-plugin.so
export MMSB_CXX="$scratch/fake-clang++" MMSB_PLUGIN="$scratch/fake-plugin.so"
failures=0

# check <name> <wanted: space-separated patterns, '!' before one that must be absent> -- args...
check() {
  local name="$1" wanted="$2"; shift 3
  local out
  out="$("$wrapper" "$@" 2>&1)" || { printf 'FAIL %s: exit %d\n%s\n' "$name" $? "$out"; failures=$((failures + 1)); return; }
  for w in $wanted; do
    if [ "${w#!}" != "$w" ]; then
      if grep -qxF -- "${w#!}" <<<"$out"; then
        printf 'FAIL %s: %s was added\n%s\n' "$name" "${w#!}" "$out"; failures=$((failures + 1)); return
      fi
    elif ! grep -qx -- "$w" <<<"$out"; then
      printf 'FAIL %s: no %s\n%s\n' "$name" "$w" "$out"; failures=$((failures + 1)); return
    fi
  done
  printf 'ok   %s\n' "$name"
}

check "link" "-fplugin=.* -std=c++20 -lmmsb -pthread" -- app.cpp -o app
check "compile only" "-fplugin=.* -std=c++20 !-lmmsb !-pthread" -- -c app.cpp -o app.o
check "preprocess" "-fplugin=.* -E !-lmmsb" -- -E app.cpp
check "syntax only" "-fplugin=.* !-lmmsb" -- -fsyntax-only app.cpp
check "PCH with -x c++-header" "-fplugin=.* -std=c++20 !-lmmsb !-pthread" -- -x c++-header h.hpp -o h.pch
check "PCH from a header name" "-fplugin=.* !-lmmsb" -- h.hpp -o h.hpp.pch
check "user's -std kept" "-std=c++23 !-std=c++20" -- -std=c++23 -c app.cpp
check "C with -x c" "!-std=c++20 !-fplugin=$MMSB_PLUGIN !-lmmsb" -- -x c -c f.c -o f.o
check "C by extension" "!-std=c++20 !-lmmsb" -- -c f.c -o f.o
check "C header PCH" "!-std=c++20 !-lmmsb" -- -x c-header h.h -o h.pch
check "C and C++ together" "-fplugin=.* !-std=c++20" -- -c f.c app.cpp
check "link objects" "-lmmsb -pthread" -- a.o b.o -o app
check "option values are not inputs" "-lmmsb !-std=c++20" -- -x c f.c -I inc -o app
check "no input" "!-fplugin=$MMSB_PLUGIN !-lmmsb" -- -print-search-dirs
check "-MM" "!-lmmsb" -- -MM app.cpp

if [ $failures -ne 0 ]; then echo "$failures case(s) failed"; exit 1; fi
echo "mmsb-c++ adds only what each mode needs"
