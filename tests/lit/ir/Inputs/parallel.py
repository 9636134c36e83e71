"""Compiles many tiny TUs at the same moment into one IR store, optionally killing some of the
compiles (SIGKILL) at random moments or inside the capture's write transaction, then checks
the store: integrity, and that every compile that finished has its complete capture.

Prints one line per fact for FileCheck (concurrency.test, kill.test) and, with --figure, the
number of captures lost (bench/ir_bench.py uses it for ir.concurrent_loss)."""
import argparse
import json
import os
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--cxx", required=True)
ap.add_argument("--mmsb", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--tus", type=int, default=16)
ap.add_argument("--rounds", type=int, default=1)
ap.add_argument("--kill-random", type=int, default=0, help="extra TUs killed at random moments")
ap.add_argument("--kill-in-commit", type=int, default=0, help="TUs killed inside the transaction")
ap.add_argument("--functions", type=int, default=3)
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()

os.makedirs(args.work, exist_ok=True)
store = os.path.join(args.work, "ir.db")
base_env = dict(os.environ, MMSB_IR_STORE=store)
for var in ("MMSB_BUILD_GENERATION", "MMSB_IR_TEST_KILL_IN_COMMIT", "MMSB_IR_CAPTURE"):
    base_env.pop(var, None)
rng = random.Random(args.seed)


def source(name, round_no):
    lines = ["int %s_f%d(int x) { return x * %d + %d; }" % (name, i, i + 2, round_no)
             for i in range(args.functions)]
    return "\n".join(lines) + "\n"


def launch(name, round_no, env):
    src = os.path.join(args.work, name + ".cpp")
    with open(src, "w") as f:
        f.write(source(name, round_no))
    cmd = shlex.split(args.cxx) + ["-c", src, "-o", os.path.join(args.work, name + ".o")]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


finished = {}  # TU name -> round of its last successful compile
failures = []
for round_no in range(args.rounds):
    procs = []
    for i in range(args.tus):
        procs.append(("t%02d" % i, launch("t%02d" % i, round_no, base_env), None))
    for i in range(args.kill_in_commit):
        env = dict(base_env, MMSB_IR_TEST_KILL_IN_COMMIT="1")
        procs.append(("c%02d" % i, launch("c%02d" % i, round_no, env), "commit"))
    for i in range(args.kill_random):
        procs.append(("k%02d" % i, launch("k%02d" % i, round_no, base_env), "random"))
    deadline = {name: time.monotonic() + rng.uniform(0.02, 0.6)
                for name, _, kind in procs if kind == "random"}
    while any(p.poll() is None for _, p, _ in procs):
        now = time.monotonic()
        for name, p, kind in procs:
            if kind == "random" and p.poll() is None and now >= deadline[name]:
                p.send_signal(signal.SIGKILL)
        time.sleep(0.005)
    for name, p, kind in procs:
        out, err = p.communicate()
        if kind == "commit":
            if p.returncode != -signal.SIGKILL:
                failures.append("%s was not killed in its commit (rc %d)" % (name, p.returncode))
        elif kind == "random":
            if p.returncode == 0:
                finished[name] = round_no
        elif p.returncode != 0 or err.strip():
            failures.append("%s: rc %d: %s" % (name, p.returncode, err.strip()))
        else:
            finished[name] = round_no

db = sqlite3.connect(store)
print("integrity:", db.execute("PRAGMA integrity_check").fetchone()[0])
# Every capture is complete: all functions of its TU, both stages.
incomplete = db.execute(
    "SELECT count(*) FROM captures c WHERE (SELECT count(*) FROM entries e "
    "WHERE e.manifest = c.manifest) != ?", (2 * args.functions,)).fetchone()[0]
print("incomplete captures:", incomplete)
db.close()

out = subprocess.run([args.mmsb, "ir", "functions", "--gen", "latest", "--json", "--store", store],
                     check=True, capture_output=True, text=True).stdout
latest = json.loads(out)["functions"]
seen = {}
for f in latest:
    tu = os.path.splitext(os.path.basename(f["tu"]))[0]
    seen.setdefault(tu, set()).add(f["name"])
# A finished compile's latest capture must be visible with its latest content.
lost = 0
for name, round_no in finished.items():
    want = {"_Z%d%s_f%di" % (len(name) + 3, name, i) for i in range(args.functions)}
    if seen.get(name) != want:
        lost += 1
        failures.append("%s: capture missing from the latest generation" % name)
killed_in_commit = sum(1 for n in seen if n.startswith("c"))
print("finished compiles:", len([n for n in finished if n.startswith("t")]))
print("captures lost:", lost)
print("killed-in-commit captures visible:", killed_in_commit)
gens = json.loads(subprocess.run([args.mmsb, "ir", "builds", "--json", "--store", store],
                                 check=True, capture_output=True, text=True).stdout)["generations"]
print("generations:", len(gens))
for g in gens:
    print("generation %d: own %d visible %d changed %s" % (g["id"], g["own_tus"], g["visible_tus"],
                                                          g["changed_pre"]))
for f in failures:
    print("FAILURE:", f)
sys.exit(1 if failures else 0)
