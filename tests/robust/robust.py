#!/usr/bin/env python3
"""Compiles real code that uses no MMSB with the plugin loaded and checks nothing changes.

  robust.py objects --compdb build/compile_commands.json --plugin mmsb-plugin.so [SELECTION]
      Each selected compile command runs twice, without and with -fplugin; the object files
      must be byte-identical.
  robust.py marker --compdb ... --plugin ... --marker marker.h [SELECTION]
      Each selected compile command runs with the plugin and -include marker.h, which makes the
      plugin analyse the whole TU and compile the rewritten source: it must succeed and every
      edit must be in marker.h (no false store, escape or placement in real code).

SELECTION: --match REGEX (compile_commands entries whose file matches; repeatable),
--all (every entry), --system NAME (third-party sources installed on the system:
gtest-all, gmock-all, fmt, json). Runs --jobs compiles at once (default 2).
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

CLANGXX = "clang++-19"

# Third-party sources installed on Debian 12 (libgtest-dev, libgmock-dev, libfmt-dev,
# nlohmann-json3-dev), compiled as user code (-I, not -isystem) so that the plugin looks at them.
GTEST = "/usr/src/googletest"
FMT_TU = """#define FMT_HEADER_ONLY 1
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fmt/chrono.h>
#include <vector>
std::string Use() { return fmt::format("{} {:>8.3f} {}", 42, 3.5, std::vector<int>{1, 2}); }
"""
JSON_TU = """#include <nlohmann/json.hpp>
#include <string>
std::string Use(const std::string& s) {
  nlohmann::json j = nlohmann::json::parse(s);
  j["added"] = {1, 2, 3};
  j["nested"]["k"] = j.size();
  return j.dump(2);
}
"""


def system_commands(name, scratch):
    """(file, argv without -o) for a third-party source installed on the system."""
    gt = os.path.join(GTEST, "googletest")
    gm = os.path.join(GTEST, "googlemock")
    base = [CLANGXX, "-std=c++20", "-O1", "-g", "-c"]
    if name == "gtest-all":
        src = os.path.join(gt, "src", "gtest-all.cc")
        return src, base + ["-I" + os.path.join(gt, "include"), "-I" + gt, src]
    if name == "gmock-all":
        src = os.path.join(gm, "src", "gmock-all.cc")
        return src, base + ["-I" + os.path.join(gt, "include"), "-I" + os.path.join(gm, "include"),
                            "-I" + gm, src]
    if name in ("fmt", "json"):
        src = os.path.join(scratch, name + "_tu.cc")
        with open(src, "w") as f:
            f.write(FMT_TU if name == "fmt" else JSON_TU)
        # The library headers as user headers: -I/usr/include ahead of the system directories.
        return src, base + ["-I/usr/include", src]
    sys.exit(f"unknown --system source {name}")


def strip_outputs(argv):
    """argv without -o/-MD/-MF/-MT/-MQ/-MMD and their values."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-MD", "-MMD") or a.startswith("-o") and len(a) > 2 and not a.startswith("-obj"):
            continue
        out.append(a)
    return out


def uses_mmsb(path, depth=0):
    """The file, or a header it includes with quotes, uses MMSB attributes in code (not in
    comments or strings)."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    includes = re.findall(r'^\s*#\s*include\s*"([^"]+)"', text, re.M)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    if re.search(r"\[\[\s*mmsb::", text):
        return True
    here = os.path.dirname(path)
    return depth < 3 and any(uses_mmsb(os.path.join(here, inc), depth + 1) for inc in includes)


def load_compdb(path):
    with open(path) as f:
        entries = json.load(f)
    cmds = []
    for e in entries:
        argv = e.get("arguments") or shlex.split(e["command"])
        if "clang" not in os.path.basename(argv[0]):
            continue  # nvcc, the host compiler: the plugin is for clang 19
        if any(a.startswith("-fplugin") for a in argv):
            continue  # instrumented on purpose (tests/e2e): not code that uses no MMSB
        if uses_mmsb(e["file"]):
            continue
        cmds.append((e["file"], e.get("directory", "."), strip_outputs(argv)))
    return cmds


def run(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout + p.stderr


def check_objects(item, plugin, scratch):
    src, cwd, argv = item
    tag = re.sub(r"[^A-Za-z0-9]+", "_", src)[-80:]
    plain_o = os.path.join(scratch, tag + ".plain.o")
    plugin_o = os.path.join(scratch, tag + ".plugin.o")
    rc, log = run(argv + ["-o", plain_o], cwd)
    if rc != 0:
        return f"{src}: the plain compile failed:\n{log}"
    plain_log = log
    rc, log = run(argv + ["-fplugin=" + plugin, "-o", plugin_o], cwd)
    if rc != 0:
        return f"{src}: fails with the plugin:\n{log}"
    if log != plain_log:
        return f"{src}: diagnostics differ with the plugin:\n--- plain\n{plain_log}\n--- plugin\n{log}"
    with open(plain_o, "rb") as a, open(plugin_o, "rb") as b:
        if a.read() != b.read():
            return f"{src}: object code differs with the plugin"
    return None


def check_marker(item, plugin, marker, scratch):
    src, cwd, argv = item
    tag = re.sub(r"[^A-Za-z0-9]+", "_", src)[-80:]
    out = os.path.join(scratch, tag + ".marker.o")
    rc, log = run(argv + ["-include", marker, "-fplugin=" + plugin,
                          "-fplugin-arg-mmsb-dump-rewrite", "-o", out], cwd)
    rewritten = re.findall(r"^// ---- mmsb rewrite of (.*)$", log, re.M)
    if rc != 0:
        errors = "\n".join(l for l in log.splitlines() if "error" in l)
        return f"{src}: fails with the plugin analysing it:\n{errors or log[-4000:]}"
    others = [f for f in rewritten if os.path.realpath(f) != os.path.realpath(marker)]
    if others or not rewritten:
        return f"{src}: the plugin rewrote {others or 'nothing'} (expected only {marker})"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["objects", "marker"])
    ap.add_argument("--compdb")
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--marker")
    ap.add_argument("--match", action="append", default=[])
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--system", action="append", default=[])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    args.plugin = os.path.abspath(args.plugin)
    if args.marker:
        args.marker = os.path.abspath(args.marker)

    with tempfile.TemporaryDirectory(prefix="mmsb-robust-") as scratch:
        items = []
        if args.compdb and (args.all or args.match):
            for src, cwd, argv in load_compdb(args.compdb):
                if args.all or any(re.search(m, src) for m in args.match):
                    items.append((src, cwd, argv))
        for name in args.system:
            src, argv = system_commands(name, scratch)
            items.append((src, scratch, argv))
        if not items:
            sys.exit("robust.py: nothing selected")
        if args.mode == "objects":
            fn = lambda it: check_objects(it, args.plugin, scratch)
        else:
            fn = lambda it: check_marker(it, args.plugin, args.marker, scratch)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(fn, items))
    failures = [r for r in results if r]
    for it, r in zip(items, results):
        print(("FAIL " if r else "ok   ") + it[0])
    for f in failures:
        print("\n" + f, file=sys.stderr)
    print(f"robust.py {args.mode}: {len(items) - len(failures)}/{len(items)} translation units unchanged")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
