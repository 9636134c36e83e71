#!/usr/bin/env bash
# A project that vendors MMSB with add_subdirectory(mmsb) keeps its own flags: MMSB's warnings
# and sanitizer options are set on MMSB's own directory and targets, never on the parent's
# (CMakeLists.txt, mmsb_setup_warnings_and_sanitizers). Configures only (no build): the compile
# commands say which flags each source gets.
#   subproject.sh SOURCE_DIR SCRATCH
set -euo pipefail
src="$1" scratch="$2"
rm -rf "$scratch"
cmake -S "$src/tests/package/subproject" -B "$scratch" -G Ninja -DMMSB_SOURCE_DIR="$src" \
  -DCMAKE_CXX_COMPILER="$(command -v clang++-19)" -DCMAKE_C_COMPILER="$(command -v clang-19)" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DMMSB_SANITIZE=address -DMMSB_WITH_PLUGIN=OFF \
  -DMMSB_WITH_REPLICATION=OFF >"$scratch.log" 2>&1 || { cat "$scratch.log"; exit 1; }
python3 - "$scratch/compile_commands.json" <<'PY'
import json, sys
commands = json.load(open(sys.argv[1]))
def flags(suffix):
    found = [c["command"] for c in commands if c["file"].endswith(suffix)]
    if not found:
        sys.exit(f"FAIL: no compile command for {suffix}")
    return found[0]
app = flags("tests/package/subproject/main.cc")
runtime = flags("runtime/src/bus/bus.cc")
failures = []
for flag in ("-fsanitize=address", "-Wall", "-Wthread-safety"):
    if flag in app:
        failures.append(f"the parent's source inherits {flag}: {app}")
    if flag not in runtime:
        failures.append(f"MMSB's own source lost {flag}: {runtime}")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
PY
echo "ok: the parent project's flags are its own"
