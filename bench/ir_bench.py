#!/usr/bin/env python3
"""IR capture and store benchmarks (bench/run ir). Prints `FIGURE <key> <value> <unit>` lines.

  ir.capture_overhead          CPU time of a real multi-TU build (every TU of the runtime
                               library, with the build's own -O2 -g flags) compiled with the plugin and IR capture,
                               divided by the same build with the plugin and -fplugin-arg-mmsb-no-ir.
                               Rounds alternate the order of the two variants; each capture round
                               writes a fresh store (all blobs new, the costliest case); the
                               figure is the ratio of the medians.
  ir.store_vs_objects          the IR store's file size after one full build of that library into a
                               fresh store (after a WAL checkpoint), divided by the bytes of the
                               object files the same build wrote; one sample per round.
  ir.unchanged_rebuild_growth  bytes the store grows by when that build is recompiled with no
                               source change, divided by the store's size before it.
  ir.diff_10k_functions_s      wall time of `mmsb ir diff --stat` between two generations of a
                               store of 10,000 functions (10 TUs x 1,000, 1% changed), median of 5.
  ir.concurrent_loss           captures missing after 16 compiles ran at once into one store.

Environment: MMSB_BUILD_DIR (default build/), MMSB_BENCH_ROUNDS (default 3), MMSB_BENCH_JOBS
(default 2). Needs the plugin and the mmsb CLI (built here with ninja if missing).
"""
import json
import os
import resource
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MMSB_BUILD_DIR", os.path.join(ROOT, "build"))
ROUNDS = int(os.environ.get("MMSB_BENCH_ROUNDS", "3"))
JOBS = int(os.environ.get("MMSB_BENCH_JOBS", "2"))
PLUGIN = os.path.join(BUILD, "plugin", "mmsb-plugin.so")
MMSB = os.path.join(BUILD, "tools", "mmsb")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def figure(key, value, unit):
    print("FIGURE %s %.4g %s" % (key, value, unit), flush=True)


def run_batch(commands, env):
    """Runs the commands JOBS at a time; returns the children's CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pending = list(commands)
    running = []
    while pending or running:
        while pending and len(running) < JOBS:
            running.append(subprocess.Popen(pending.pop(0), env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True))
        p = running.pop(0)
        _, err = p.communicate()
        if p.returncode != 0 or "warning: mmsb" in err:
            sys.exit("compile failed or warned: %s\n%s" % (" ".join(p.args), err))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def store_bytes(path):
    """Bytes the store's rows and indexes occupy (SQLite's dbstat: page bytes minus free space),
    after a checkpoint. Falls back to whole pages when dbstat is not compiled in."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    try:
        n = db.execute("SELECT sum(pgsize - unused) FROM dbstat").fetchone()[0]
    except sqlite3.OperationalError:
        n = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return n


def file_bytes(path):
    """The store's size on disk as a user sees it: the database file after a WAL checkpoint."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return os.path.getsize(path)


def object_bytes(work):
    obj = os.path.join(work, "obj")
    return sum(os.path.getsize(os.path.join(obj, f)) for f in os.listdir(obj))


def runtime_build(work):
    """The compile commands of the runtime library, retargeted into `work`, with the plugin."""
    with open(os.path.join(BUILD, "compile_commands.json")) as f:
        entries = json.load(f)

    def library_object(e):
        # The runtime library itself: other targets compile the same sources too (the fuzz
        # targets' copy with ASan, UBSan and libFuzzer instrumentation is not the build measured).
        # Its objects are the layers' object libraries (runtime/CMakeLists.txt: mmsb_core,
        # mmsb_rt_<layer>), which libmmsb is made of.
        args = shlex.split(e["command"])
        out = args[args.index("-o") + 1] if "-o" in args else ""
        return out.startswith(("runtime/CMakeFiles/mmsb.dir/", "runtime/CMakeFiles/mmsb_core.dir/",
                               "runtime/CMakeFiles/mmsb_rt_"))

    entries = [e for e in entries if "/runtime/src/" in e["file"] and library_object(e)]
    if not entries:
        sys.exit("no runtime library sources in compile_commands.json")
    commands = []
    for i, e in enumerate(sorted(entries, key=lambda e: e["file"])):
        args = shlex.split(e["command"])
        out = args.index("-o")
        args[out + 1] = os.path.join(work, "obj", "%02d.o" % i)
        commands.append([args[0], "-fplugin=" + PLUGIN] + args[1:])
    os.makedirs(os.path.join(work, "obj"), exist_ok=True)
    return commands, entries[0]["directory"]


def capture_overhead_and_growth(work):
    commands, _ = runtime_build(work)
    base_env = dict(os.environ)
    base_env.pop("MMSB_BUILD_GENERATION", None)
    no_ir = [c[:1] + ["-fplugin-arg-mmsb-no-ir"] + c[1:] for c in commands]
    with_ir, without = [], []
    store = None
    for r in range(ROUNDS):
        # Every capture round writes a fresh store (every blob new: the most expensive case).
        # Alternate which variant runs first, so that drift on a shared machine cancels.
        store = os.path.join(work, "capture%d.db" % r)
        env = dict(base_env, MMSB_IR_STORE=store)
        order = [("on", commands), ("off", no_ir)] if r % 2 == 0 else [("off", no_ir), ("on", commands)]
        for name, cmds in order:
            t = run_batch(cmds, env)
            (with_ir if name == "on" else without).append(t)
            log("round %d capture %s: %.1f CPU s" % (r, name, t))
            if name == "on":
                sb, ob = file_bytes(store), object_bytes(work)
                log("round %d: store %d bytes, objects %d bytes" % (r, sb, ob))
                figure("ir.store_vs_objects", sb / ob, "x")
    # The unchanged rebuild: the same build again into the last store.
    size_before = store_bytes(store)
    run_batch(commands, dict(base_env, MMSB_IR_STORE=store))
    growth = (store_bytes(store) - size_before) / size_before
    n = json.loads(subprocess.run([MMSB, "ir", "builds", "--json", "--store", store], check=True,
                                  capture_output=True, text=True).stdout)["generations"]
    log("store: %d bytes before the rebuild, %d after; %d functions, %d TUs, %d generations" %
        (size_before, store_bytes(store), n[-1]["functions"], n[-1]["visible_tus"], len(n)))
    figure("ir.capture_overhead", statistics.median(with_ir) / statistics.median(without), "x")
    figure("ir.unchanged_rebuild_growth", growth, "x")


def diff_10k(work):
    src = os.path.join(work, "k")
    os.makedirs(src, exist_ok=True)
    store = os.path.join(work, "10k.db")
    env = dict(os.environ, MMSB_IR_STORE=store)
    env.pop("MMSB_BUILD_GENERATION", None)

    def write(version):
        cmds = []
        for t in range(10):
            path = os.path.join(src, "tu%d.cpp" % t)
            with open(path, "w") as f:
                for i in range(1000):
                    # 1% of the functions change between the two versions.
                    k = i + (version if i % 100 == 7 else 0)
                    f.write("int f%d_%d(int x, int y) { int s = x; for (int j = 0; j < y; ++j) "
                            "s = s * %d + j; return s ^ %d; }\n" % (t, i, k + 3, k))
            cmds.append(["clang++-19", "-O0", "-fplugin=" + PLUGIN, "-c", path, "-o",
                         os.path.join(src, "tu%d.o" % t)])
        return cmds

    run_batch(write(0), env)
    run_batch(write(1), env)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = subprocess.run([MMSB, "ir", "diff", "1", "2", "--stat", "--store", store], check=True,
                             capture_output=True, text=True).stdout
        times.append(time.perf_counter() - t0)
    log(out.splitlines()[0])
    figure("ir.diff_10k_functions_s", statistics.median(times), "s")


def concurrent_loss(work):
    script = os.path.join(ROOT, "tests", "lit", "ir", "Inputs", "parallel.py")
    cxx = "clang++-19 -fplugin=" + PLUGIN
    r = subprocess.run([sys.executable, script, "--cxx", cxx, "--mmsb", MMSB, "--work",
                        os.path.join(work, "par"), "--tus", "16", "--rounds", "2"],
                       capture_output=True, text=True)
    lost = None
    for line in r.stdout.splitlines():
        if line.startswith("captures lost:"):
            lost = int(line.split(":")[1])
    if lost is None:
        sys.exit("parallel.py failed:\n" + r.stdout + r.stderr)
    log(r.stdout.strip())
    figure("ir.concurrent_loss", lost, "captures")


def main():
    if not (os.path.exists(PLUGIN) and os.path.exists(MMSB)):
        subprocess.run(["ninja", "-C", BUILD, "mmsb-plugin", "mmsb-cli"], check=True,
                       stdout=sys.stderr)
    work = tempfile.mkdtemp(prefix="mmsb-ir-bench-")
    try:
        capture_overhead_and_growth(work)
        diff_10k(work)
        concurrent_loss(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
