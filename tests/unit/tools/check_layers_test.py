#!/usr/bin/env python3
"""scripts/check-layers: the tree follows the layers, and each kind of violation is caught."""
import subprocess
import sys

ROOT = sys.argv[1]
SCRIPT = f"{ROOT}/scripts/check-layers"
failures = []


def run(args, stdin=""):
    return subprocess.run([sys.executable, SCRIPT, *args], input=stdin, text=True,
                          capture_output=True)


def expect(name, path, source, rejected, needle=""):
    r = run(["--as", path], source)
    if (r.returncode != 0) != rejected or needle not in r.stderr:
        failures.append(f"{name}: rc={r.returncode} stderr={r.stderr!r}")


tree = run([])
if tree.returncode != 0:
    failures.append(f"the tree breaks the layers:\n{tree.stderr}")

expect("log may not include the bus", "runtime/src/log/log_sink.cc", '#include "bus/bus.h"\n',
       True, "log/ may not include bus/")
expect("device may not include the bus", "runtime/src/device/device_hub.cc",
       '#include "bus/bus.h"\n', True, "device/ may not include bus/")
expect("graph may not include the bus", "runtime/src/graph/graph.cc",
       '#include "bus/tx_gate.h"\n', True, "graph/ may not include bus/")
expect("the bus sits above the device", "runtime/src/bus/bus.cc",
       '#include "device/device_hub.h"\n#include "graph/graph.h"\n', False)
expect("query reads the log", "runtime/src/query/history.cc",
       '#include "log/record_reader.h"\n#include "mmsb/page.h"\n', False)
expect("a public header stays public", "runtime/include/mmsb/page.h",
       '#include "core/mutex.h"\n', True, "public header includes an internal one")
expect("the IR store has no LLVM", "ir-store/src/store.cc", "#include <llvm/IR/Module.h>\n", True,
       "without LLVM")
expect("the IR store links only the core", "ir-store/src/store.cc",
       '#include "mmsb/status.h"\n#include "mmsb/log.h"\n', True, "only mmsb::core")
expect("a new folder needs a layer", "runtime/src/newthing/a.cc", '#include "core/mutex.h"\n',
       True, "has no layer")

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
